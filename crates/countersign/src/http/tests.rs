//! In-process router tests with `oneshot` and an in-memory database.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::{AppState, router};
use crate::approvals::{ApprovalId, Approver, Decision, ManualClock, sha256_hex};
use crate::config;
use crate::storage::{SqliteStorage, Storage};

const KEY: &str = "router-test-key";

/// Returns an issuer URL on a loopback port that was just free, so no server listens there.
async fn closed_issuer() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/realms/test")
}

async fn state() -> (AppState, ManualClock) {
    state_with_issuer("http://127.0.0.1:18080/realms/never-contacted").await
}

async fn state_with_issuer(issuer: &str) -> (AppState, ManualClock) {
    let env = HashMap::from([
        ("COUNTERSIGN_OIDC_ISSUER".to_owned(), issuer.to_owned()),
        (
            "COUNTERSIGN_OIDC_CLIENT_ID".to_owned(),
            "countersign".to_owned(),
        ),
        (
            "COUNTERSIGN_OIDC_CLIENT_SECRET".to_owned(),
            "secret".to_owned(),
        ),
        (
            "COUNTERSIGN_APPROVALS_ALLOWED_ORIGINS".to_owned(),
            "http://localhost:18400".to_owned(),
        ),
        (
            "COUNTERSIGN_API_KEYS".to_owned(),
            format!("shop:{}", sha256_hex(KEY)),
        ),
    ]);
    let settings = Arc::new(config::load(None, &env).unwrap().settings);
    let storage = SqliteStorage::in_memory().await.unwrap();
    storage.migrate().await.unwrap();
    let clock = ManualClock::starting_now();
    let state = AppState::new(settings, Arc::new(storage), Arc::new(clock.clone()));
    (state, clock)
}

async fn send(state: &AppState, request: Request<Body>) -> Response {
    router(state.clone()).oneshot(request).await.unwrap()
}

async fn body_text(response: Response) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

async fn body_json(response: Response) -> Value {
    serde_json::from_str(&body_text(response).await).unwrap()
}

fn create_request(body: &Value) -> Request<Body> {
    Request::post("/api/v1/approvals")
        .header(header::AUTHORIZATION, format!("Bearer {KEY}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn refund() -> Value {
    json!({
        "action": "refund",
        "summary": "Refund order 1001: 49.90 EUR",
        "details": {"order": "1001", "amount": "49.90"},
        "requester": {"sub": "cashier-sub", "name": "Carla Cashier"},
        "required_role": "MANAGER",
        "origin": "http://localhost:18400"
    })
}

async fn create(state: &AppState) -> String {
    let response = send(state, create_request(&refund())).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    body_json(response).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_uses_default_lifetime() {
    let (state, clock) = state().await;

    let response = send(&state, create_request(&refund())).await;

    assert_eq!(response.status(), StatusCode::CREATED);
    let body = body_json(response).await;
    let expires_at = time::OffsetDateTime::parse(
        body["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        expires_at - crate::approvals::Clock::now(&clock),
        time::Duration::seconds(300)
    );
}

#[tokio::test]
async fn create_rejects_short_lifetime_and_empty_fields() {
    let (state, _) = state().await;

    let mut short = refund();
    short["lifetime_seconds"] = json!(5);
    let response = send(&state, create_request(&short)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let mut empty = refund();
    empty["summary"] = json!("  ");
    let response = send(&state, create_request(&empty)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(response).await["detail"],
        "summary must not be empty"
    );

    let mut no_role = refund();
    no_role.as_object_mut().unwrap().remove("required_role");
    let response = send(&state, create_request(&no_role)).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn unauthorized_carries_challenge() {
    let (state, _) = state().await;
    let request = Request::post("/api/v1/approvals")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(refund().to_string()))
        .unwrap();

    let response = send(&state, request).await;

    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
}

#[tokio::test]
async fn unknown_api_path_is_problem() {
    let (state, _) = state().await;

    let response = send(
        &state,
        Request::get("/api/v2/whatever")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(body_json(response).await["code"], "not_found");
}

#[tokio::test]
async fn responses_carry_request_id() {
    let (state, _) = state().await;

    let response = send(
        &state,
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(
        response.headers()[header::X_CONTENT_TYPE_OPTIONS],
        "nosniff"
    );
}

#[tokio::test]
async fn popup_start_for_unknown_id_is_not_found_page() {
    let (state, _) = state().await;
    let id = ApprovalId::generate();

    let response = send(
        &state,
        Request::get(format!("/popup/start/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'nonce-"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
    let html = body_text(response).await;
    assert!(
        html.contains("<code id=\"error-code\">not_found</code>"),
        "{html}"
    );
    assert!(!html.contains("try-again"), "{html}");
}

#[tokio::test]
async fn popup_start_for_expired_request_offers_no_retry() {
    let (state, clock) = state().await;
    let id = create(&state).await;
    clock.advance(time::Duration::seconds(301));

    let response = send(
        &state,
        Request::get(format!("/popup/start/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::GONE);
    let html = body_text(response).await;
    assert!(html.contains(">approval_expired<"), "{html}");
    assert!(!html.contains("try-again"), "{html}");
}

#[tokio::test]
async fn popup_start_for_decided_request_offers_no_retry() {
    let (state, _) = state().await;
    let id = create(&state).await;
    let approver = Approver {
        sub: "manager-sub".to_owned(),
        name: None,
        username: None,
    };
    state
        .approvals
        .decide(
            &ApprovalId::parse(&id).unwrap(),
            Decision::Approved,
            approver,
            None,
        )
        .await
        .unwrap();

    let response = send(
        &state,
        Request::get(format!("/popup/start/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = body_text(response).await;
    assert!(html.contains(">already_decided<"), "{html}");
    assert!(!html.contains("try-again"), "{html}");
}

#[tokio::test]
async fn popup_start_with_unreachable_idp_offers_retry() {
    let (state, _) = state_with_issuer(&closed_issuer().await).await;
    let id = create(&state).await;

    let response = send(
        &state,
        Request::get(format!("/popup/start/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let html = body_text(response).await;
    assert!(html.contains(">idp_error<"), "{html}");
    assert!(
        html.contains(&format!("href=\"/popup/start/{id}\" id=\"try-again\"")),
        "{html}"
    );
}

#[tokio::test]
async fn signed_out_without_cookie_is_login_expired() {
    let (state, _) = state().await;

    let response = send(
        &state,
        Request::get("/popup/signed-out")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = body_text(response).await;
    assert!(html.contains(">login_expired<"), "{html}");
}

#[tokio::test]
async fn decision_without_login_changes_nothing() {
    let (state, _) = state().await;
    let id = create(&state).await;
    let request = Request::post("/popup/decision")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, "countersign_login=made-up")
        .body(Body::from("csrf=x&decision=approve"))
        .unwrap();

    let response = send(&state, request).await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let cleared = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cleared.starts_with("countersign_login=;"), "{cleared}");
    let approval = state
        .approvals
        .get(&ApprovalId::parse(&id).unwrap())
        .await
        .unwrap();
    assert!(approval.decision.is_none());
}

#[tokio::test]
async fn unknown_page_is_html_not_found() {
    let (state, _) = state().await;

    let response = send(
        &state,
        Request::get("/nothing-here").body(Body::empty()).unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
}

#[tokio::test]
async fn stylesheet_is_served() {
    let (state, _) = state().await;

    let response = send(
        &state,
        Request::get("/popup/popup.css")
            .body(Body::empty())
            .unwrap(),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
}
