//! The popup flow against the mock IdP: start, callback, signed-out page,
//! decision, and the failures that must end on an error page.

use std::collections::HashMap;

use reqwest::StatusCode;
use serde_json::json;
use url::Url;

use countersign::approvals::ApprovalId;
use countersign::storage::Storage;

use crate::hostile_idp::{CLIENT_ID, HostileIdp, TestUser};
use crate::support::*;

struct Popup {
    server: TestServer,
    idp: HostileIdp,
}

async fn setup() -> Popup {
    let idp = HostileIdp::start().await;
    let server = start_with_issuer(&idp.issuer).await;
    Popup { server, idp }
}

/// Returns the value of the `countersign_login` cookie set by a response, if any.
fn login_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("countersign_login="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
}

fn location(response: &reqwest::Response) -> Url {
    Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query_of(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// Returns the value of the hidden CSRF field on the decision page.
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

impl Popup {
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

    async fn create(&self) -> String {
        self.server.create(&refund_request()).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens `/popup/start/{id}`; returns the authorization URL and the cookie.
    async fn start(&self, id: &str) -> (Url, String) {
        let response = self.get(&format!("/popup/start/{id}"), None).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let cookie = login_cookie(&response).expect("login cookie");
        (location(&response), cookie)
    }

    /// Signs `user` in and follows the callback; returns its redirect.
    async fn sign_in(&self, id: &str, user: TestUser) -> (Url, String) {
        let (authorization_url, cookie) = self.start(id).await;
        let code = self.idp.sign_in(&authorization_url, user);
        let state = &query_of(&authorization_url)["state"];
        let callback = format!("/popup/callback?code={code}&state={state}");
        let response = self.get(&callback, Some(&cookie)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        (location(&response), cookie)
    }

    async fn signed_out(&self, cookie: &str) -> (StatusCode, String) {
        let response = self.get("/popup/signed-out", Some(cookie)).await;
        (response.status(), response.text().await.unwrap())
    }

    async fn audit_events(&self, id: &str) -> Vec<(String, Option<String>)> {
        self.server.audit_events(id).await
    }
}

fn event(name: &str, code: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), code.map(str::to_owned))
}

#[tokio::test]
async fn start_redirects_with_fresh_login_parameters() {
    let popup = setup().await;
    let id = popup.create().await;

    let response = popup.get(&format!("/popup/start/{id}"), None).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("Path=/popup"), "{set_cookie}");
    let url = location(&response);
    assert!(
        url.as_str()
            .starts_with(&format!("{}/auth?", popup.idp.issuer)),
        "{url}"
    );
    let query = query_of(&url);
    assert_eq!(query["prompt"], "login");
    assert_eq!(query["max_age"], "0");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["redirect_uri"], popup.server.url("/popup/callback"));
    assert!(!query["state"].is_empty());
    assert!(!query["nonce"].is_empty());

    let rows: Vec<(String, String)> = sqlx::query_as("SELECT state, nonce FROM login_transactions")
        .fetch_all(popup.server.storage.pool())
        .await
        .unwrap();
    assert_eq!(rows, [(query["state"].clone(), query["nonce"].clone())]);
    assert_eq!(
        popup.audit_events(&id).await,
        [
            event("approval.requested", None),
            event("signin.started", None)
        ]
    );
}

#[tokio::test]
async fn manager_approves_and_host_consumes() {
    let popup = setup().await;
    let id = popup.create().await;

    let (after_callback, cookie) = popup.sign_in(&id, TestUser::manager()).await;

    assert_eq!(
        after_callback.as_str().split('?').next().unwrap(),
        popup.idp.end_session_endpoint()
    );
    let logout = query_of(&after_callback);
    assert_eq!(
        logout["post_logout_redirect_uri"],
        popup.server.url("/popup/signed-out")
    );
    assert!(!logout["id_token_hint"].is_empty());

    let columns: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT outcome, approver_username FROM login_transactions")
            .fetch_all(popup.server.storage.pool())
            .await
            .unwrap();
    assert_eq!(
        columns,
        [(Some("signed_in".to_owned()), Some("manager".to_owned()))]
    );
    let stored: String = sqlx::query_scalar(
        "SELECT state || nonce || pkce_verifier || csrf_token || approver_sub || approver_name FROM login_transactions",
    )
    .fetch_one(popup.server.storage.pool())
    .await
    .unwrap();
    assert!(
        !stored.contains(&logout["id_token_hint"]),
        "no token is stored"
    );

    let response = popup.get("/popup/signed-out", Some(&cookie)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("Refund order 1001: 49.90 EUR"), "{html}");
    assert!(html.contains("Carla Cashier"), "{html}");
    assert!(html.contains("Maria Manager (manager)"), "{html}");
    assert!(
        html.contains("<th scope=\"row\">amount</th><td>49.90</td>"),
        "{html}"
    );
    let csrf = csrf_of(&html);

    let response = popup
        .server
        .http
        .post(popup.server.url("/popup/decision"))
        .header("cookie", format!("countersign_login={cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
            ("reason", "receipt checked"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        login_cookie(&response).as_deref(),
        Some(""),
        "the cookie is cleared"
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
    let html = response.text().await.unwrap();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "{html}"
    );
    assert!(html.contains(&format!("data-id=\"{id}\"")), "{html}");
    assert!(html.contains("data-status=\"approved\""), "{html}");
    assert!(
        html.contains(&format!("data-origin=\"{SHOP_ORIGIN}\"")),
        "{html}"
    );
    assert!(
        html.contains("postMessage(message, outcome.dataset.origin)"),
        "{html}"
    );

    let (status, body) = popup
        .server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "approved");
    assert_eq!(body["reason"], "receipt checked");
    assert_eq!(
        body["approver"],
        json!({"sub": "manager-sub", "name": "Maria Manager", "username": "manager"})
    );

    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_transactions")
        .fetch_one(popup.server.storage.pool())
        .await
        .unwrap();
    assert_eq!(
        left, 0,
        "the login transaction is deleted after the decision"
    );
    assert_eq!(
        popup.audit_events(&id).await,
        [
            event("approval.requested", None),
            event("signin.started", None),
            event("signin.succeeded", None),
            event("approval.decided", None),
            event("approval.consumed", None),
        ]
    );
}

#[tokio::test]
async fn manager_rejects_with_reason() {
    let popup = setup().await;
    let id = popup.create().await;
    let (_, cookie) = popup.sign_in(&id, TestUser::manager()).await;
    let (_, html) = popup.signed_out(&cookie).await;

    let response = popup
        .server
        .http
        .post(popup.server.url("/popup/decision"))
        .header("cookie", format!("countersign_login={cookie}"))
        .form(&[
            ("csrf", csrf_of(&html).as_str()),
            ("decision", "reject"),
            ("reason", "no receipt"),
        ])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("data-status=\"rejected\"")
    );
    let (_, status) = popup
        .server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(status["status"], "rejected");
    assert_eq!(status["reason"], "no receipt");
}

/// Signs `user` in and returns the page shown after the IdP logout.
async fn failed_sign_in(popup: &Popup, id: &str, user: TestUser) -> (Url, StatusCode, String) {
    let (after_callback, cookie) = popup.sign_in(id, user).await;
    let (status, html) = popup.signed_out(&cookie).await;
    (after_callback, status, html)
}

fn assert_error_page(html: &str, code: &str, retry_id: Option<&str>) {
    assert!(
        html.contains(&format!("<code id=\"error-code\">{code}</code>")),
        "{html}"
    );
    match retry_id {
        Some(id) => assert!(
            html.contains(&format!("href=\"/popup/start/{id}\" id=\"try-again\"")),
            "{html}"
        ),
        None => assert!(!html.contains("try-again"), "{html}"),
    }
}

#[tokio::test]
async fn user_without_role_is_not_an_approver() {
    let popup = setup().await;
    let id = popup.create().await;
    let clerk = TestUser {
        sub: "clerk-sub".to_owned(),
        username: "clerk".to_owned(),
        roles: vec!["CASHIER".to_owned()],
        ..TestUser::manager()
    };

    let (after_callback, status, html) = failed_sign_in(&popup, &id, clerk).await;

    assert!(
        after_callback
            .as_str()
            .starts_with(&popup.idp.end_session_endpoint()),
        "the IdP session is ended"
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_page(&html, "not_an_approver", Some(&id));
    assert_eq!(
        popup.audit_events(&id).await.last().unwrap(),
        &event("signin.failed", Some("not_an_approver"))
    );
    let approval = popup
        .server
        .state
        .approvals
        .get(&ApprovalId::parse(&id).unwrap())
        .await
        .unwrap();
    assert!(approval.decision.is_none());
}

#[tokio::test]
async fn requester_cannot_sign_off_own_request() {
    let popup = setup().await;
    let id = popup.create().await;
    let cashier_with_role = TestUser {
        sub: "cashier-sub".to_owned(),
        ..TestUser::manager()
    };

    let (after_callback, status, html) = failed_sign_in(&popup, &id, cashier_with_role).await;

    assert!(
        after_callback
            .as_str()
            .starts_with(&popup.idp.end_session_endpoint())
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_page(&html, "own_request", Some(&id));
    assert_eq!(
        popup.audit_events(&id).await.last().unwrap(),
        &event("signin.failed", Some("own_request"))
    );
}

#[tokio::test]
async fn old_sign_in_is_not_fresh() {
    let popup = setup().await;
    let id = popup.create().await;
    let lingering = TestUser {
        auth_time_offset: -600,
        ..TestUser::manager()
    };

    let (after_callback, status, html) = failed_sign_in(&popup, &id, lingering).await;

    assert!(
        after_callback
            .as_str()
            .starts_with(&popup.idp.end_session_endpoint())
    );
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_page(&html, "sign_in_not_fresh", Some(&id));
    assert_eq!(
        popup.audit_events(&id).await.last().unwrap(),
        &event("signin.failed", Some("sign_in_not_fresh"))
    );
}

#[tokio::test]
async fn cookie_login_is_not_fresh() {
    let popup = setup().await;
    let id = popup.create().await;
    let cookie_login = TestUser {
        acr: "0".to_owned(),
        ..TestUser::manager()
    };

    let (_, _, html) = failed_sign_in(&popup, &id, cookie_login).await;

    assert_error_page(&html, "sign_in_not_fresh", Some(&id));
}

#[tokio::test]
async fn cancelled_sign_in_offers_retry() {
    let popup = setup().await;
    let id = popup.create().await;
    let (authorization_url, cookie) = popup.start(&id).await;
    let state = &query_of(&authorization_url)["state"];

    let response = popup
        .get(
            &format!("/popup/callback?error=access_denied&state={state}"),
            Some(&cookie),
        )
        .await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&response).as_str(),
        popup.server.url("/popup/signed-out")
    );
    let (status, html) = popup.signed_out(&cookie).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_error_page(&html, "sign_in_cancelled", Some(&id));
    assert_eq!(
        popup.audit_events(&id).await.last().unwrap(),
        &event("signin.failed", Some("sign_in_cancelled"))
    );
}

#[tokio::test]
async fn callback_with_wrong_state_is_login_expired() {
    let popup = setup().await;
    let id = popup.create().await;
    let (authorization_url, cookie) = popup.start(&id).await;
    let code = popup.idp.sign_in(&authorization_url, TestUser::manager());

    let response = popup
        .get(
            &format!("/popup/callback?code={code}&state=forged"),
            Some(&cookie),
        )
        .await;

    assert_eq!(
        location(&response).as_str(),
        popup.server.url("/popup/signed-out")
    );
    let (_, html) = popup.signed_out(&cookie).await;
    assert_error_page(&html, "login_expired", Some(&id));
}

#[tokio::test]
async fn callback_without_cookie_signs_nobody_in() {
    let popup = setup().await;
    let id = popup.create().await;
    let (authorization_url, _) = popup.start(&id).await;
    let code = popup.idp.sign_in(&authorization_url, TestUser::manager());
    let state = &query_of(&authorization_url)["state"];

    let response = popup
        .get(&format!("/popup/callback?code={code}&state={state}"), None)
        .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_error_page(&response.text().await.unwrap(), "login_expired", Some(&id));
    let outcome: Option<String> = sqlx::query_scalar("SELECT outcome FROM login_transactions")
        .fetch_one(popup.server.storage.pool())
        .await
        .unwrap();
    assert_eq!(outcome, None);
}

#[tokio::test]
async fn wrong_csrf_token_decides_nothing() {
    let popup = setup().await;
    let id = popup.create().await;
    let (_, cookie) = popup.sign_in(&id, TestUser::manager()).await;
    let (status, _) = popup.signed_out(&cookie).await;
    assert_eq!(status, StatusCode::OK);

    let response = popup
        .server
        .http
        .post(popup.server.url("/popup/decision"))
        .header("cookie", format!("countersign_login={cookie}"))
        .form(&[("csrf", "forged"), ("decision", "approve")])
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_error_page(&response.text().await.unwrap(), "login_expired", Some(&id));
    let approval = popup
        .server
        .state
        .approvals
        .get(&ApprovalId::parse(&id).unwrap())
        .await
        .unwrap();
    assert!(approval.decision.is_none());
}

#[tokio::test]
async fn request_decided_meanwhile_shows_already_decided() {
    let popup = setup().await;
    let id = popup.create().await;
    let (_, cookie) = popup.sign_in(&id, TestUser::manager()).await;
    popup
        .server
        .decide(&id, countersign::approvals::Decision::Rejected)
        .await;

    let (status, html) = popup.signed_out(&cookie).await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_error_page(&html, "already_decided", None);
}

#[tokio::test]
async fn sign_in_window_expires() {
    let popup = setup().await;
    let id = popup.create().await;
    let (_, cookie) = popup.sign_in(&id, TestUser::manager()).await;

    popup.server.clock.advance(time::Duration::seconds(301));
    let (status, html) = popup.signed_out(&cookie).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error_page(&html, "login_expired", Some(&id));
    let stored = popup
        .server
        .storage
        .login(&countersign::approvals::sha256_hex(&cookie))
        .await
        .unwrap();
    assert!(stored.is_none(), "the attempt is over");
}
