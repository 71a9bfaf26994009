//! Web hardening: security headers on every kind of response, the request
//! timeout, the rate limits and the trusted-proxy rule.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use countersign::approvals::{Clock as _, ManualClock};
use countersign::config;
use countersign::http::AppState;
use countersign::storage::{SqliteStorage, Storage as _};

use crate::hostile_idp::{HostileIdp, TestUser};
use crate::support::{OTHER_KEY, SHOP_KEY, SHOP_ORIGIN, refund_request, sha256_hex};

/// A server started with extra `COUNTERSIGN_*` settings.
struct Server {
    base: String,
    address: std::net::SocketAddr,
    http: reqwest::Client,
    clock: ManualClock,
    storage: Arc<SqliteStorage>,
    database: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
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

async fn start_with(issuer: &str, extra: &[(&str, &str)]) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let database = std::env::temp_dir().join(format!(
        "countersign-hardening-{}.sqlite",
        countersign::approvals::random_token()
    ));
    let mut env: HashMap<String, String> = [
        ("COUNTERSIGN_SERVER_LISTEN", address.to_string()),
        ("COUNTERSIGN_DATABASE_PATH", database.display().to_string()),
        ("COUNTERSIGN_OIDC_ISSUER", issuer.to_owned()),
        ("COUNTERSIGN_OIDC_CLIENT_ID", "countersign".to_owned()),
        ("COUNTERSIGN_OIDC_CLIENT_SECRET", "test-secret".to_owned()),
        (
            "COUNTERSIGN_APPROVALS_ALLOWED_ORIGINS",
            SHOP_ORIGIN.to_owned(),
        ),
        (
            "COUNTERSIGN_API_KEYS",
            format!(
                "shop:{},other:{}",
                sha256_hex(SHOP_KEY),
                sha256_hex(OTHER_KEY)
            ),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    for (name, value) in extra {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    let settings = Arc::new(config::load(None, &env).unwrap().settings);

    let storage = Arc::new(SqliteStorage::open(&database).await.unwrap());
    storage.migrate().await.unwrap();
    let clock = ManualClock::starting_now();
    let state = AppState::new(settings, storage.clone(), Arc::new(clock.clone()));

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        countersign::server::run(listener, state, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });

    Server {
        base: format!("http://{address}"),
        address,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        clock,
        storage,
        database,
        stop: Some(stop),
    }
}

async fn start() -> Server {
    start_with("http://127.0.0.1:18080/realms/never-contacted", &[]).await
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    async fn create(&self, key: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/approvals"))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn create_id(&self, body: &Value) -> String {
        let response = self.create(SHOP_KEY, body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    async fn count(&self, table: &str) -> i64 {
        let sql = match table {
            "approvals" => "SELECT COUNT(*) FROM approvals",
            "audit_log" => "SELECT COUNT(*) FROM audit_log",
            "login_transactions" => "SELECT COUNT(*) FROM login_transactions",
            other => panic!("no count query for {other}"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(self.storage.pool())
            .await
            .unwrap()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("missing header {name}"))
        .to_str()
        .unwrap()
}

/// Checks the headers every response carries, and the opener policy.
fn assert_common_headers(headers: &HeaderMap, opener_policy: &str, case: &str) {
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{case}"
    );
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{case}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{case}");
    assert_eq!(
        header(headers, "cross-origin-opener-policy"),
        opener_policy,
        "{case}"
    );
    let policy = header(headers, "content-security-policy");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{case}: {policy}"
    );
    assert!(policy.contains("default-src 'none'"), "{case}: {policy}");
    assert!(!policy.contains("unsafe-inline"), "{case}: {policy}");
    assert!(!policy.contains("unsafe-eval"), "{case}: {policy}");
}

/// Returns the nonce of the CSP's `script-src`, if the policy allows scripts.
fn script_nonce(headers: &HeaderMap) -> Option<String> {
    let policy = header(headers, "content-security-policy");
    let start = policy.find("script-src 'nonce-")? + "script-src 'nonce-".len();
    policy[start..].split('\'').next().map(str::to_owned)
}

#[tokio::test]
async fn api_responses_carry_security_headers() {
    let server = start().await;
    let response = server.create(SHOP_KEY, &refund_request()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = {
        assert_common_headers(response.headers(), "same-origin", "create");
        response.json().await.unwrap()
    };

    let id = created["id"].as_str().unwrap();
    let events = Url::parse(created["events_url"].as_str().unwrap()).unwrap();
    let events_path = format!("{}?{}", events.path(), events.query().unwrap());

    let cases = [
        (
            "status",
            format!("/api/v1/approvals/{id}"),
            true,
            StatusCode::OK,
        ),
        (
            "problem",
            "/api/v1/approvals".to_owned(),
            false,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "unauthorized",
            format!("/api/v1/approvals/{id}"),
            false,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "openapi",
            "/api/v1/openapi.json".to_owned(),
            false,
            StatusCode::OK,
        ),
        ("healthz", "/healthz".to_owned(), false, StatusCode::OK),
        (
            "unknown api path",
            "/api/nothing".to_owned(),
            false,
            StatusCode::NOT_FOUND,
        ),
    ];
    for (case, path, with_key, expected) in cases {
        let authorization = format!("Bearer {SHOP_KEY}");
        let headers: Vec<(&str, &str)> = if with_key {
            vec![("authorization", authorization.as_str())]
        } else {
            Vec::new()
        };
        let response = server.get(&path, &headers).await;
        assert_eq!(response.status(), expected, "{case}");
        assert_common_headers(response.headers(), "same-origin", case);
        assert_eq!(script_nonce(response.headers()), None, "{case}");
        assert_eq!(
            header(response.headers(), "cache-control"),
            "no-store",
            "{case}"
        );
    }

    let response = server.get(&events_path, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/event-stream"
    );
    assert_common_headers(response.headers(), "same-origin", "events");
    assert_eq!(
        header(response.headers(), "access-control-allow-origin"),
        SHOP_ORIGIN
    );
}

#[tokio::test]
async fn popup_pages_keep_the_opener() {
    let server = start().await;

    let cases = [
        (
            "start, unknown id",
            "/popup/start/AAAAAAAAAAAAAAAAAAAAAA",
            StatusCode::NOT_FOUND,
        ),
        (
            "signed-out without login",
            "/popup/signed-out",
            StatusCode::BAD_REQUEST,
        ),
        (
            "callback without login",
            "/popup/callback?code=x&state=y",
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown popup page",
            "/popup/nothing",
            StatusCode::NOT_FOUND,
        ),
    ];
    for (case, path, expected) in cases {
        let response = server.get(path, &[]).await;
        assert_eq!(response.status(), expected, "{case}");
        assert_eq!(
            header(response.headers(), "content-type"),
            "text/html; charset=utf-8",
            "{case}"
        );
        assert_common_headers(response.headers(), "unsafe-none", case);
    }

    let response = server.get("/popup/popup.css", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_common_headers(response.headers(), "unsafe-none", "stylesheet");
    assert_eq!(
        header(response.headers(), "cache-control"),
        "public, max-age=3600"
    );
}

#[tokio::test]
async fn popup_error_pages_get_fresh_nonces() {
    let server = start().await;

    let first = server.get("/popup/signed-out", &[]).await;
    let second = server.get("/popup/signed-out", &[]).await;

    let first = script_nonce(first.headers()).expect("nonce in the first policy");
    let second = script_nonce(second.headers()).expect("nonce in the second policy");
    assert!(first.len() >= 22, "{first}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn other_pages_deny_opener_access() {
    let server = start().await;

    let response = server.get("/nothing-here", &[]).await;

    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/html; charset=utf-8"
    );
    assert_common_headers(response.headers(), "same-origin", "fallback page");
}

#[tokio::test]
async fn popup_wrong_method_is_html_page() {
    let server = start().await;

    let response = server
        .http
        .post(server.url("/popup/signed-out"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(header(response.headers(), "allow"), "GET,HEAD");
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/html; charset=utf-8"
    );
    assert_common_headers(response.headers(), "unsafe-none", "405 page");
    let html = response.text().await.unwrap();
    assert!(
        html.contains("<code id=\"error-code\">method_not_allowed</code>"),
        "{html}"
    );
}

/// Drives one sign-in through the popup and returns the decision page's
/// response; the request's texts carry HTML and script.
async fn decision_page(server: &Server, idp: &HostileIdp, id: &str) -> (reqwest::Response, String) {
    let start = server.get(&format!("/popup/start/{id}"), &[]).await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    assert_common_headers(start.headers(), "unsafe-none", "start redirect");
    let cookie = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| value.strip_prefix("countersign_login="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        .expect("login cookie");
    let authorization_url = Url::parse(header(start.headers(), "location")).unwrap();
    let state: HashMap<String, String> = authorization_url.query_pairs().into_owned().collect();

    let code = idp.sign_in(&authorization_url, TestUser::manager());
    let cookie_header = format!("countersign_login={cookie}");
    let callback = server
        .get(
            &format!("/popup/callback?code={code}&state={}", state["state"]),
            &[("cookie", &cookie_header)],
        )
        .await;
    assert_eq!(callback.status(), StatusCode::SEE_OTHER);
    assert_common_headers(callback.headers(), "unsafe-none", "callback redirect");

    let page = server
        .get("/popup/signed-out", &[("cookie", &cookie_header)])
        .await;
    (page, cookie_header)
}

#[tokio::test]
async fn decision_and_result_pages_are_hardened() {
    let idp = HostileIdp::start().await;
    let server = start_with(&idp.issuer, &[]).await;
    let clock = server.clock.clone();
    idp.set_clock(move || clock.now().unix_timestamp());
    let mut body = refund_request();
    body["summary"] = json!("<script>alert('summary')</script>");
    body["details"] = json!({"<b>key</b>": "<img src=x onerror=alert(1)>"});
    body["requester"]["name"] = json!("\"><script>alert('name')</script>");
    let id = server.create_id(&body).await;

    let (page, cookie) = decision_page(&server, &idp, &id).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_common_headers(page.headers(), "unsafe-none", "decision page");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(!html.contains("<b>key</b>"), "{html}");
    // askama escapes with numeric character references.
    assert!(
        html.contains("<p class=\"summary\" id=\"summary\">&#60;script&#62;alert(&#39;summary&#39;)&#60;/script&#62;</p>"),
        "{html}"
    );
    assert!(
        html.contains("<th scope=\"row\">&#60;b&#62;key&#60;/b&#62;</th><td>&#60;img src=x onerror=alert(1)&#62;</td>"),
        "{html}"
    );
    assert!(
        html.contains("<dd id=\"requester\">&#34;&#62;&#60;script&#62;alert(&#39;name&#39;)&#60;/script&#62;</dd>"),
        "{html}"
    );

    let csrf_marker = "name=\"csrf\" value=\"";
    let start = html.find(csrf_marker).unwrap() + csrf_marker.len();
    let csrf = html[start..].split('"').next().unwrap().to_owned();
    let result = server
        .http
        .post(server.url("/popup/decision"))
        .header("cookie", &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("decision", "approve"),
            ("reason", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), StatusCode::OK);
    // The result page needs `window.opener` to post the outcome.
    assert_common_headers(result.headers(), "unsafe-none", "result page");
    let nonce = script_nonce(result.headers()).expect("result page allows its script");
    let html = result.text().await.unwrap();
    assert!(
        html.contains(&format!("<script nonce=\"{nonce}\">")),
        "{html}"
    );
    assert_eq!(html.matches("<script").count(), 1, "{html}");
}

#[tokio::test]
async fn create_limit_is_per_api_key() {
    let server = start_with(
        "http://127.0.0.1:18080/realms/never-contacted",
        &[("COUNTERSIGN_LIMITS_CREATE_PER_MINUTE", "2")],
    )
    .await;

    for _ in 0..2 {
        let response = server.create(SHOP_KEY, &refund_request()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let approvals = server.count("approvals").await;
    let audit = server.count("audit_log").await;

    let response = server.create(SHOP_KEY, &refund_request()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        header(response.headers(), "content-type"),
        "application/problem+json"
    );
    let wait: u64 = header(response.headers(), "retry-after").parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(problem["status"], 429);
    assert_eq!(server.count("approvals").await, approvals);
    assert_eq!(server.count("audit_log").await, audit);

    let response = server.create(OTHER_KEY, &refund_request()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn popup_limit_is_per_client_address() {
    let server = start_with(
        "http://127.0.0.1:18080/realms/never-contacted",
        &[("COUNTERSIGN_LIMITS_POPUP_PER_MINUTE", "3")],
    )
    .await;
    let id = server.create_id(&refund_request()).await;

    let limited = [
        format!("/popup/start/{id}"),
        "/popup/callback?code=x&state=y".to_owned(),
        format!("/popup/start/{id}"),
    ];
    for path in &limited {
        let response = server.get(path, &[]).await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{path}");
    }
    let transactions = server.count("login_transactions").await;

    let response = server.get(&format!("/popup/start/{id}"), &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(
        header(response.headers(), "content-type"),
        "text/html; charset=utf-8"
    );
    assert_common_headers(response.headers(), "unsafe-none", "429 page");
    let html = response.text().await.unwrap();
    assert!(html.contains(">rate_limited<"), "{html}");
    assert_eq!(server.count("login_transactions").await, transactions);

    let response = server
        .http
        .post(server.url("/popup/decision"))
        .form(&[("csrf", "x"), ("decision", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "decision");

    // The decision page itself is not limited: it only reads.
    let response = server.get("/popup/signed-out", &[]).await;
    assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Sends `count` popup callbacks, each with its own `X-Forwarded-For`
/// address, and returns how many were rate-limited.
async fn limited_with_spoofed_addresses(server: &Server, count: usize) -> usize {
    let mut limited = 0;
    for index in 0..count {
        let forwarded = format!("203.0.113.{}", index + 1);
        let response = server
            .get(
                "/popup/callback?code=x&state=y",
                &[("x-forwarded-for", &forwarded)],
            )
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    limited
}

#[tokio::test]
async fn forwarded_for_from_untrusted_peer_is_ignored() {
    // The test client connects from 127.0.0.1, which is not in the list.
    let server = start_with(
        "http://127.0.0.1:18080/realms/never-contacted",
        &[
            ("COUNTERSIGN_LIMITS_POPUP_PER_MINUTE", "2"),
            ("COUNTERSIGN_SERVER_TRUSTED_PROXIES", "10.0.0.0/8,192.0.2.1"),
        ],
    )
    .await;

    let limited = limited_with_spoofed_addresses(&server, 4).await;

    assert_eq!(limited, 2);
}

#[tokio::test]
async fn forwarded_for_from_trusted_proxy_is_used() {
    let server = start_with(
        "http://127.0.0.1:18080/realms/never-contacted",
        &[
            ("COUNTERSIGN_LIMITS_POPUP_PER_MINUTE", "2"),
            ("COUNTERSIGN_SERVER_TRUSTED_PROXIES", "127.0.0.1"),
        ],
    )
    .await;

    let limited = limited_with_spoofed_addresses(&server, 4).await;
    assert_eq!(limited, 0);

    for _ in 0..2 {
        let response = server
            .get(
                "/popup/callback?code=x&state=y",
                &[("x-forwarded-for", "198.51.100.7")],
            )
            .await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let response = server
        .get(
            "/popup/callback?code=x&state=y",
            &[("x-forwarded-for", "198.51.100.7")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn slow_request_body_times_out() {
    let server = start_with(
        "http://127.0.0.1:18080/realms/never-contacted",
        &[("COUNTERSIGN_LIMITS_REQUEST_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let body = refund_request().to_string();
    let half = body.len() / 2;

    // Send the headers and half of the body, then stall.
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let head = format!(
        "POST /api/v1/approvals HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {SHOP_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        server.address,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..half]).await.unwrap();

    let started = std::time::Instant::now();
    let mut reply = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .expect("the server answers within 10 seconds")
                .unwrap();
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..read]);
        if reply.windows(4).any(|window| window == b"\r\n\r\n")
            && String::from_utf8_lossy(&reply).contains("\"code\"")
        {
            break;
        }
    }
    let elapsed = started.elapsed();

    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(
        text.contains("content-type: application/problem+json"),
        "{text}"
    );
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(
        elapsed >= std::time::Duration::from_millis(900),
        "{elapsed:?}"
    );
    assert_eq!(server.count("approvals").await, 0);
}

#[tokio::test]
async fn status_stream_outlives_request_timeout() {
    let server = start_with(
        "http://127.0.0.1:18080/realms/never-contacted",
        &[("COUNTERSIGN_LIMITS_REQUEST_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let response = server.create(SHOP_KEY, &refund_request()).await;
    let created: Value = response.json().await.unwrap();
    let events_url = created["events_url"].as_str().unwrap();

    let mut stream = server.http.get(events_url).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let first = stream.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("pending"));

    // The stream stays open past the timeout: no error arrives in 1.5 s.
    let next = tokio::time::timeout(std::time::Duration::from_millis(1500), stream.chunk()).await;
    assert!(next.is_err(), "stream ended or sent data: {next:?}");
}
