//! Remote approval: the short link `/r/{code}`, its QR image, and the rule
//! that the first device to decide wins, against the mock IdP.

use std::collections::{HashMap, HashSet};

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use reqwest::StatusCode;
use serde_json::Value;
use time::Duration;
use url::Url;

use countersign::approvals::{ApprovalId, REMOTE_CODE_LENGTH, random_token};
use countersign::audit::{AuditEvent, AuditKind};
use countersign::storage::{InsertOutcome, Storage};

use crate::hostile_idp::{HostileIdp, TestUser};
use crate::support::*;

/// Policy of the QR image: nothing may load or run inside the SVG.
const STRICT_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

struct Remote {
    server: TestServer,
    idp: HostileIdp,
}

async fn setup() -> Remote {
    let idp = HostileIdp::start().await;
    let server = start_with_issuer(&idp.issuer).await;
    Remote { server, idp }
}

/// Returns the short code at the end of `remote_url`.
fn code_of(created: &Value) -> String {
    let remote_url = created["remote_url"].as_str().unwrap();
    remote_url.rsplit('/').next().unwrap().to_owned()
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

fn login_cookie(response: &reqwest::Response) -> Option<String> {
    set_cookies(response)
        .iter()
        .find_map(|value| value.strip_prefix("countersign_login="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn assert_error_code(html: &str, code: &str) {
    assert!(
        html.contains(&format!("<code id=\"error-code\">{code}</code>")),
        "{html}"
    );
    assert!(!html.contains("try-again"), "{html}");
}

impl Remote {
    async fn get(&self, path_or_url: &str, cookie: Option<&str>) -> reqwest::Response {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.server.url(path_or_url)
        };
        let mut request = self.server.http.get(url);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("countersign_login={cookie}"));
        }
        request.send().await.unwrap()
    }

    /// Signs `user` in from the start page at `start_url`, as one device
    /// does, and returns that device's login cookie and the CSRF token of
    /// its decision page.
    async fn sign_in_from(&self, start_url: &str, user: TestUser) -> (String, String) {
        let response = self.get(start_url, None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = login_cookie(&response).expect("login cookie");
        let authorization_url = Url::parse(&location(&response)).unwrap();
        let query: HashMap<String, String> =
            authorization_url.query_pairs().into_owned().collect();

        let code = self.idp.sign_in(&authorization_url, user);
        let callback = format!("/popup/callback?code={code}&state={}", query["state"]);
        let response = self.get(&callback, Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);

        let response = self.get("/popup/signed-out", Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let html = response.text().await.unwrap();
        (cookie, csrf_of(&html))
    }

    async fn decide(&self, cookie: &str, csrf: &str, decision: &str) -> (StatusCode, String) {
        let response = self
            .server
            .http
            .post(self.server.url("/popup/decision"))
            .header("cookie", format!("countersign_login={cookie}"))
            .form(&[("csrf", csrf), ("decision", decision)])
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    }
}

#[tokio::test]
async fn create_returns_remote_urls() {
    let server = start().await;

    let created = server.create(&refund_request()).await;

    let code = code_of(&created);
    assert_eq!(code.len(), REMOTE_CODE_LENGTH, "{created}");
    assert!(
        code.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()),
        "{code}"
    );
    assert_eq!(created["remote_url"], server.url(&format!("/r/{code}")));
    assert_eq!(
        created["remote_qr_url"],
        server.url(&format!("/r/{code}/qr.svg"))
    );
}

#[tokio::test]
async fn short_link_redirects_to_start() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap();
    let code = code_of(&created);

    for typed in [code.clone(), code.to_uppercase()] {
        let response = server
            .http
            .get(server.url(&format!("/r/{typed}")))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{typed}");
        assert_eq!(location(&response), server.url(&format!("/popup/start/{id}")));
        assert_eq!(set_cookies(&response), Vec::<String>::new(), "{typed}");
    }
    let login_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_transactions")
        .fetch_one(server.storage.pool())
        .await
        .unwrap();
    assert_eq!(login_rows, 0, "following the link must not start a sign-in");
}

#[tokio::test]
async fn unknown_code_shows_not_found() {
    let server = start().await;
    server.create(&refund_request()).await;

    for path in ["/r/0000000000", "/r/short", "/r/0000000000/qr.svg", "/r/bad!code!/qr.svg"] {
        let response = server.http.get(server.url(path)).send().await.unwrap();

        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(set_cookies(&response), Vec::<String>::new(), "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/html; charset=utf-8",
            "{path}"
        );
        let html = response.text().await.unwrap();
        assert_error_code(&html, "not_found");
        assert!(html.contains("<h1>Link not found</h1>"), "{html}");
        assert!(html.contains("<title>Link not found · Countersign</title>"), "{html}");
    }
}

#[tokio::test]
async fn expired_code_shows_expired_page() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let code = code_of(&created);
    server.clock.advance(Duration::seconds(301));

    let response = server
        .http
        .get(server.url(&format!("/r/{code}")))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(set_cookies(&response), Vec::<String>::new());
    let html = response.text().await.unwrap();
    assert_error_code(&html, "approval_expired");
    assert!(html.contains("<h1>Request expired</h1>"), "{html}");
}

#[tokio::test]
async fn decided_code_shows_already_decided() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let code = code_of(&created);
    server
        .decide(
            created["id"].as_str().unwrap(),
            countersign::approvals::Decision::Approved,
        )
        .await;

    let response = server
        .http
        .get(server.url(&format!("/r/{code}")))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert_error_code(&html, "already_decided");
    assert!(html.contains("<h1>Already decided</h1>"), "{html}");
}

#[tokio::test]
async fn qr_image_is_strict_svg() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let qr_url = created["remote_qr_url"].as_str().unwrap();

    let response = server.http.get(qr_url).send().await.unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    assert_eq!(response.headers()["content-security-policy"], STRICT_POLICY);
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    assert_eq!(set_cookies(&response), Vec::<String>::new());
    let body = response.text().await.unwrap();
    assert!(body.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{body}");
    assert!(!body.contains("style"), "no inline style: {body}");
    assert!(!body.contains("<script"), "{body}");

    // The image is the QR code of the short link and of nothing else.
    let remote_url = created["remote_url"].as_str().unwrap();
    let expected = QrCode::with_error_correction_level(remote_url.as_bytes(), EcLevel::M)
        .unwrap()
        .render::<svg::Color<'_>>()
        .module_dimensions(8, 8)
        .quiet_zone(true)
        .build();
    assert_eq!(body, expected);
}

#[tokio::test]
async fn remote_codes_are_unique() {
    let server = start().await;
    let mut codes = HashSet::new();

    for _ in 0..100 {
        let created = server.create(&refund_request()).await;
        assert!(codes.insert(code_of(&created)), "{created}");
    }

    let distinct: i64 =
        sqlx::query_scalar("SELECT COUNT(DISTINCT remote_code) FROM approvals")
            .fetch_one(server.storage.pool())
            .await
            .unwrap();
    assert_eq!(distinct, 100);
}

#[tokio::test]
async fn taken_code_is_not_stored_twice() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = ApprovalId::parse(created["id"].as_str().unwrap()).unwrap();
    let mut copy = server.storage.approval(&id).await.unwrap().unwrap();
    copy.id = ApprovalId::parse(&random_token()).unwrap();
    let audit = AuditEvent::new(AuditKind::ApprovalRequested, copy.created_at, &copy.id);

    let outcome = server.storage.insert_approval(&copy, &audit).await.unwrap();

    assert_eq!(outcome, InsertOutcome::RemoteCodeTaken);
    assert!(server.storage.approval(&copy.id).await.unwrap().is_none());
    assert_eq!(server.storage.audit_events(&copy.id).await.unwrap().len(), 0);
}

#[tokio::test]
async fn first_device_to_decide_wins() {
    let remote = setup().await;
    let created = remote.server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap();
    let remote_url = created["remote_url"].as_str().unwrap();
    let link = remote.get(remote_url, None).await;
    assert_eq!(link.status(), StatusCode::SEE_OTHER);

    let (phone_cookie, phone_csrf) = remote
        .sign_in_from(&location(&link), TestUser::manager())
        .await;
    let (popup_cookie, popup_csrf) = remote
        .sign_in_from(
            created["approval_url"].as_str().unwrap(),
            TestUser::second_manager(),
        )
        .await;

    let (status, html) = remote.decide(&phone_cookie, &phone_csrf, "approve").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-status=\"approved\""), "{html}");

    let (status, html) = remote.decide(&popup_cookie, &popup_csrf, "reject").await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert_error_code(&html, "already_decided");

    let (_, body) = remote
        .server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(body["status"], "approved");
    assert_eq!(body["approver"]["username"], "manager");
}
