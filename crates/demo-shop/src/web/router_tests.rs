//! In-process tests of the shop's router against a fake Countersign host API
//! on 127.0.0.1. Sessions are put into the store directly, so no identity
//! provider is needed.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use secrecy::SecretString;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use url::Url;

use super::{AppState, SharedState, router};
use crate::countersign::CountersignClient;
use crate::oidc::OidcClient;
use crate::session::{Session, SessionStore, User};

const SHOP: &str = "http://localhost:18400";
const API_KEY: &str = "test-api-key";

/// What the fake Countersign received, and what its consume call returns.
#[derive(Default)]
struct FakeCountersign {
    created: Vec<(Option<String>, Value)>,
    consumed: Vec<(String, Value)>,
    consume_response: Option<(StatusCode, Value)>,
}

type Fake = Arc<Mutex<FakeCountersign>>;

async fn fake_create(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> impl IntoResponse {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut fake = fake.lock().unwrap();
    let id = format!("approval-{}", fake.created.len() + 1);
    fake.created.push((authorization, body.0));

    let created = json!({
        "id": id,
        "status": "pending",
        "approval_url": format!("http://127.0.0.1:18300/popup/start/{id}"),
        "events_url": format!("http://127.0.0.1:18300/api/v1/approvals/{id}/events?token=t"),
        "expires_at": "2026-12-04T20:40:00Z",
    });
    (StatusCode::CREATED, axum::Json(created))
}

async fn fake_consume(
    State(fake): State<Fake>,
    Path(id): Path<String>,
    body: axum::Json<Value>,
) -> impl IntoResponse {
    let mut fake = fake.lock().unwrap();
    fake.consumed.push((id, body.0));
    let (status, response) = fake.consume_response.clone().unwrap();
    (status, axum::Json(response))
}

struct Harness {
    app: Router,
    state: SharedState,
    fake: Fake,
}

async fn harness() -> Harness {
    let fake = Fake::default();
    let fake_router = Router::new()
        .route("/api/v1/approvals", post(fake_create))
        .route("/api/v1/approvals/{id}/consume", post(fake_consume))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, fake_router).await });

    let http = reqwest::Client::new();
    let state = Arc::new(AppState {
        // Port 9 (discard) on loopback: these tests never reach the identity provider.
        oidc: OidcClient::new(
            http.clone(),
            Url::parse("http://127.0.0.1:9/realms/none").unwrap(),
            "demo-shop".to_owned(),
            SecretString::from("secret"),
            Url::parse("http://localhost:18400/callback").unwrap(),
        ),
        countersign: CountersignClient::new(http, fake_url, SecretString::from(API_KEY)),
        sessions: SessionStore::default(),
        public_url: Url::parse(SHOP).unwrap(),
        public_origin: SHOP.to_owned(),
        countersign_origin: "http://127.0.0.1:18300".to_owned(),
        sdk_path: PathBuf::from("/nonexistent/countersign.js"),
        secure_cookies: false,
    });
    let policy = header::HeaderValue::from_static("default-src 'none'");
    Harness {
        app: router(state.clone(), policy),
        state,
        fake,
    }
}

impl Harness {
    fn sign_in(&self) -> String {
        let user = User {
            sub: "cashier-sub".to_owned(),
            username: "cashier".to_owned(),
            name: "Carla Cashier".to_owned(),
            id_token: "id-token".to_owned(),
            refresh_token: None,
        };
        self.state.sessions.insert(Session {
            user: Some(user),
            ..Session::default()
        })
    }

    fn set_consume_response(&self, status: StatusCode, response: Value) {
        self.fake.lock().unwrap().consume_response = Some((status, response));
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn get(&self, path: &str, session: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::get(path);
        if let Some(session) = session {
            request = request.header(header::COOKIE, format!("shop_session={session}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    async fn post(
        &self,
        path: &str,
        session: &str,
        origin: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request =
            Request::post(path).header(header::COOKIE, format!("shop_session={session}"));
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let (status, text) = self.send(request.body(body).unwrap()).await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create(&self, session: &str, order: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/refunds/{order}/approval"),
            session,
            Some(SHOP),
            None,
        )
        .await
    }

    async fn execute(&self, session: &str, order: &str, approval_id: &str) -> (StatusCode, Value) {
        let body = json!({"approval_id": approval_id});
        self.post(
            &format!("/refunds/{order}/execute"),
            session,
            Some(SHOP),
            Some(body),
        )
        .await
    }
}

fn approved() -> Value {
    json!({
        "id": "approval-1", "decision": "approved", "reason": null,
        "approver": {"sub": "manager-sub", "name": "Maria Manager", "username": "manager"},
        "decided_at": "2026-12-04T20:36:00Z", "consumed_at": "2026-12-04T20:36:01Z", "payload_hash": "sha256:00",
    })
}

#[tokio::test]
async fn index_signed_out_links_sign_in() {
    let harness = harness().await;

    let (status, page) = harness.get("/", None).await;

    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"id="sign-in" href="/login""#));
    assert!(!page.contains("refund-1001"));
    assert!(page.contains("Demo only"));
}

#[tokio::test]
async fn index_signed_in_lists_orders() {
    let harness = harness().await;
    let session = harness.sign_in();

    let (status, page) = harness.get("/", Some(&session)).await;

    assert_eq!(status, StatusCode::OK);
    assert!(page.contains(r#"<strong id="signed-in-as">cashier</strong>"#));
    for order in ["1001", "1002", "1003"] {
        assert!(
            page.contains(&format!(r#"id="refund-{order}""#)),
            "no button for order {order}"
        );
    }
    assert!(page.contains(r#"<span id="refund-status" role="status"></span>"#));
    assert!(page.contains(r#"data-countersign-origin="http://127.0.0.1:18300""#));
    assert!(page.contains(r#"src="/static/shop.js""#));
}

#[tokio::test]
async fn create_sends_request_and_key() {
    let harness = harness().await;
    let session = harness.sign_in();

    let (status, created) = harness.create(&session, "1001").await;

    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(created["id"], "approval-1");
    assert_eq!(
        created["approval_url"],
        "http://127.0.0.1:18300/popup/start/approval-1"
    );
    let fake = harness.fake.lock().unwrap();
    let (authorization, request) = &fake.created[0];
    assert_eq!(authorization.as_deref(), Some("Bearer test-api-key"));
    assert_eq!(request["action"], "refund");
    assert_eq!(
        request["summary"],
        "Refund order 1001: 49.90 EUR (2 × Coffee beans)"
    );
    assert_eq!(request["details"]["order"], "1001");
    assert_eq!(
        request["requester"],
        json!({"sub": "cashier-sub", "name": "Carla Cashier"})
    );
    assert_eq!(request["required_role"], "MANAGER");
    assert_eq!(request["origin"], SHOP);
    assert_eq!(request["lifetime_seconds"], 300);
}

#[tokio::test]
async fn create_rejects_bad_requests() {
    let harness = harness().await;
    let session = harness.sign_in();

    let (status, _) = harness
        .post("/refunds/1001/approval", &session, None, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no Origin header");

    let (status, _) = harness
        .post(
            "/refunds/1001/approval",
            &session,
            Some("http://evil.example"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "foreign Origin");

    let (status, _) = harness.create("unknown-session", "1001").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed out");

    let (status, body) = harness.create(&session, "9999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown order");
    assert_eq!(body["ok"], false);

    assert!(harness.fake.lock().unwrap().created.is_empty());
}

#[tokio::test]
async fn execute_approved_refunds_once() {
    let harness = harness().await;
    let session = harness.sign_in();
    harness.create(&session, "1001").await;
    harness.set_consume_response(StatusCode::OK, approved());

    let (status, response) = harness.execute(&session, "1001", "approval-1").await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        response,
        json!({"ok": true, "message": "Refund of order 1001 executed, approved by Maria Manager (manager)"})
    );
    let (status, _) = harness.create(&session, "1001").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a refunded order gets no second approval request"
    );
    let (_, page) = harness.get("/", Some(&session)).await;
    assert!(page.contains(r#"<td id="order-status-1001">refunded</td>"#));
}

#[tokio::test]
async fn execute_sends_remembered_payload() {
    let harness = harness().await;
    let session = harness.sign_in();
    harness.create(&session, "1003").await;
    harness.set_consume_response(StatusCode::OK, approved());

    harness.execute(&session, "1003", "approval-1").await;

    let fake = harness.fake.lock().unwrap();
    let (consumed_id, body) = &fake.consumed[0];
    let request = &fake.created[0].1;
    assert_eq!(consumed_id, "approval-1");
    assert_eq!(
        body,
        &json!({"payload": {
            "action": request["action"],
            "details": request["details"],
            "requester": request["requester"],
        }})
    );
}

#[tokio::test]
async fn execute_rejected_reports_reason() {
    let harness = harness().await;
    let session = harness.sign_in();
    harness.create(&session, "1002").await;
    let mut rejected = approved();
    rejected["decision"] = json!("rejected");
    rejected["reason"] = json!("customer kept the goods");
    harness.set_consume_response(StatusCode::OK, rejected);

    let (_, response) = harness.execute(&session, "1002", "approval-1").await;

    assert_eq!(response["ok"], false);
    assert_eq!(
        response["message"],
        "Refund of order 1002 refused: rejected by Maria Manager (manager): customer kept the goods"
    );
    let (_, page) = harness.get("/", Some(&session)).await;
    assert!(page.contains(r#"<td id="order-status-1002">paid</td>"#));
}

#[tokio::test]
async fn execute_problem_reports_code() {
    let harness = harness().await;
    let session = harness.sign_in();
    harness.create(&session, "1001").await;
    harness.set_consume_response(
        StatusCode::CONFLICT,
        json!({
            "type": "urn:countersign:problem:already_consumed", "title": "Already consumed",
            "status": 409, "detail": "The approval was already consumed.", "code": "already_consumed",
        }),
    );

    let (_, response) = harness.execute(&session, "1001", "approval-1").await;

    assert_eq!(response["ok"], false);
    assert_eq!(
        response["message"],
        "Refund of order 1001 refused: The approval was already consumed. (already_consumed)"
    );
}

#[tokio::test]
async fn execute_rejects_foreign_approval() {
    let harness = harness().await;
    let session = harness.sign_in();
    let other_session = harness.sign_in();
    harness.create(&session, "1001").await;
    harness.set_consume_response(StatusCode::OK, approved());

    let (status, _) = harness.execute(&session, "1002", "approval-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "approval of another order");

    let (status, _) = harness.execute(&other_session, "1001", "approval-1").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "approval of another session");

    let (status, _) = harness.execute(&session, "1001", "made-up").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown approval id");

    let (status, _) = harness
        .post(
            "/refunds/1001/execute",
            &session,
            Some(SHOP),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "missing approval_id"
    );

    assert!(harness.fake.lock().unwrap().consumed.is_empty());
}

#[tokio::test]
async fn whoami_returns_session_user() {
    let harness = harness().await;
    let session = harness.sign_in();

    let (status, body) = harness.get("/whoami", Some(&session)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"username": "cashier", "sub": "cashier-sub"})
    );

    let (status, _) = harness.get("/whoami", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn missing_sdk_gets_clear_404() {
    let harness = harness().await;

    let (status, body) = harness.get("/static/countersign.js", None).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("The Countersign browser SDK is not built"));
    assert!(body.contains("/nonexistent/countersign.js"));
}

/// Returns the Cross-Origin-Opener-Policy header and the body of a GET response.
async fn get_with_coop(harness: &Harness, path: &str) -> (StatusCode, Option<String>, String) {
    let request = Request::get(path).body(Body::empty()).unwrap();
    let response = harness.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let coop = response
        .headers()
        .get("cross-origin-opener-policy")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, coop, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn index_sends_coop_only_when_asked() {
    let harness = harness().await;

    let (status, coop, _) = get_with_coop(&harness, "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(coop, None);

    for value in super::coop::COOP_VALUES {
        let (status, coop, _) = get_with_coop(&harness, &format!("/?coop={value}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(coop.as_deref(), Some(value));
    }

    let (status, coop, page) = get_with_coop(&harness, "/?coop=same-site").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(coop, None);
    assert!(page.contains("expected one of unsafe-none"), "{page}");
}

#[tokio::test]
async fn coop_hop_redirects_to_countersign() {
    let harness = harness().await;
    let target = "http://127.0.0.1:18300/popup/start/abc?x=1&y=2";

    let (status, coop, page) = get_with_coop(
        &harness,
        "/coop-hop?to=http%3A%2F%2F127.0.0.1%3A18300%2Fpopup%2Fstart%2Fabc%3Fx%3D1%26y%3D2",
    )
    .await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(coop.as_deref(), Some("same-origin"));
    let escaped = target.replace('&', "&#38;");
    assert!(
        page.contains(&format!(
            r#"<meta http-equiv="refresh" content="0; url={escaped}">"#
        )),
        "{page}"
    );
}

#[tokio::test]
async fn coop_hop_rejects_other_targets() {
    let harness = harness().await;
    let targets = [
        "/coop-hop",
        "/coop-hop?to=",
        "/coop-hop?to=http%3A%2F%2Fevil.example%2F",
        "/coop-hop?to=http%3A%2F%2F127.0.0.1%3A18301%2F",
        "/coop-hop?to=javascript%3Aalert(1)",
        "/coop-hop?to=%2Fpopup%2Fstart%2Fabc",
    ];
    for target in targets {
        let (status, _, page) = get_with_coop(&harness, target).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{target} was accepted");
        assert!(
            page.contains("expected a URL on Countersign at http://127.0.0.1:18300"),
            "{page}"
        );
    }
}
