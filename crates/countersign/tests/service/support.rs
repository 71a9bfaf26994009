//! The test server and helpers shared by the API and popup tests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use countersign::approvals::{ApprovalId, Approver, Decision, ManualClock};
use countersign::config;
use countersign::http::AppState;
use countersign::signin::{IdpLimits, SignIn};
use countersign::storage::{SqliteStorage, Storage};

pub const SHOP_KEY: &str = "shop-key-for-tests";
pub const OTHER_KEY: &str = "other-key-for-tests";
pub const SHOP_ORIGIN: &str = "http://localhost:18400";

pub struct TestServer {
    pub base: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub clock: ManualClock,
    pub storage: Arc<SqliteStorage>,
    pub database: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.database.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

pub fn sha256_hex(text: &str) -> String {
    countersign::approvals::sha256_hex(text)
}

pub async fn start() -> TestServer {
    start_with_issuer("http://127.0.0.1:18080/realms/never-contacted").await
}

/// Starts the server with the given OIDC issuer.
pub async fn start_with_issuer(issuer: &str) -> TestServer {
    start_with_limits(issuer, IdpLimits::default()).await
}

/// Starts the server with the given OIDC issuer and time limits for the
/// calls to it.
pub async fn start_with_limits(issuer: &str, limits: IdpLimits) -> TestServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let database = std::env::temp_dir().join(format!(
        "countersign-test-{}.sqlite",
        countersign::approvals::random_token()
    ));

    let env = HashMap::from([
        ("COUNTERSIGN_SERVER_LISTEN".to_owned(), address.to_string()),
        (
            "COUNTERSIGN_DATABASE_PATH".to_owned(),
            database.display().to_string(),
        ),
        ("COUNTERSIGN_OIDC_ISSUER".to_owned(), issuer.to_owned()),
        (
            "COUNTERSIGN_OIDC_CLIENT_ID".to_owned(),
            "countersign".to_owned(),
        ),
        (
            "COUNTERSIGN_OIDC_CLIENT_SECRET".to_owned(),
            "test-secret".to_owned(),
        ),
        (
            "COUNTERSIGN_APPROVALS_ALLOWED_ORIGINS".to_owned(),
            SHOP_ORIGIN.to_owned(),
        ),
        (
            "COUNTERSIGN_APPROVALS_MAX_LIFETIME_SECONDS".to_owned(),
            "600".to_owned(),
        ),
        (
            "COUNTERSIGN_API_KEYS".to_owned(),
            format!(
                "shop:{},other:{}",
                sha256_hex(SHOP_KEY),
                sha256_hex(OTHER_KEY)
            ),
        ),
    ]);
    let settings = Arc::new(config::load(None, &env).unwrap().settings);

    let storage = Arc::new(SqliteStorage::open(&database).await.unwrap());
    storage.migrate().await.unwrap();
    let clock = ManualClock::starting_now();
    let mut state = AppState::new(settings.clone(), storage.clone(), Arc::new(clock.clone()));
    state.events_poll_interval = Duration::from_millis(50);
    state.sign_in = Arc::new(SignIn::with_idp_limits(
        settings,
        state.approvals.clone(),
        limits,
    ));

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server_state = state.clone();
    tokio::spawn(async move {
        countersign::server::run(listener, server_state, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });

    TestServer {
        base: format!("http://{address}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        clock,
        storage,
        database,
        stop: Some(stop),
    }
}

pub fn refund_request() -> Value {
    json!({
        "action": "refund",
        "summary": "Refund order 1001: 49.90 EUR",
        "details": {"order": "1001", "amount": "49.90", "currency": "EUR"},
        "requester": {"sub": "cashier-sub", "name": "Carla Cashier"},
        "required_role": "MANAGER",
        "origin": SHOP_ORIGIN,
        "lifetime_seconds": 300
    })
}

pub fn refund_payload() -> Value {
    json!({
        "action": "refund",
        "details": {"order": "1001", "amount": "49.90", "currency": "EUR"},
        "requester": {"sub": "cashier-sub", "name": "Carla Cashier"}
    })
}

pub fn manager() -> Approver {
    Approver {
        sub: "manager-sub".to_owned(),
        name: Some("Maria Manager".to_owned()),
        username: Some("manager".to_owned()),
    }
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, key: Option<&str>, path: &str, body: &Value) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url(path)).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn get(&self, key: Option<&str>, path: &str) -> (StatusCode, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        read(request.send().await.unwrap()).await
    }

    pub async fn create(&self, body: &Value) -> Value {
        let (status, created) = self.post(Some(SHOP_KEY), "/api/v1/approvals", body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        created
    }

    pub async fn decide(&self, id: &str, decision: Decision) {
        let id = ApprovalId::parse(id).unwrap();
        self.state
            .approvals
            .decide(
                &id,
                decision,
                manager(),
                Some("checked the receipt".to_owned()),
            )
            .await
            .unwrap();
    }

    pub async fn consume(&self, key: &str, id: &str, body: &Value) -> (StatusCode, Value) {
        self.post(Some(key), &format!("/api/v1/approvals/{id}/consume"), body)
            .await
    }

    pub async fn audit_events(&self, id: &str) -> Vec<(String, Option<String>)> {
        let id = ApprovalId::parse(id).unwrap();
        self.storage
            .audit_events(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|record| (record.event, record.code))
            .collect()
    }
}

pub async fn read(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = response.text().await.unwrap();
    if !status.is_success() {
        assert_eq!(
            content_type, "application/problem+json",
            "error body: {text}"
        );
    }
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub fn event(name: &str, code: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), code.map(str::to_owned))
}
