//! Bad input on every host API endpoint: each rejection has the right
//! status, `application/problem+json`, a stable code, and changes nothing.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use countersign::approvals::Decision;

use crate::support::*;

const CREATE: &str = "/api/v1/approvals";

/// A reply read without the assertions of `support::read`.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// Row counts of every table a request could change.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    approvals: i64,
    consumed: i64,
    decided: i64,
    audit_events: i64,
    login_transactions: i64,
}

async fn snapshot(server: &TestServer) -> Snapshot {
    let pool = server.storage.pool();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    Snapshot {
        approvals: count("SELECT COUNT(*) FROM approvals").await,
        consumed: count("SELECT COUNT(*) FROM approvals WHERE consumed_at IS NOT NULL").await,
        decided: count("SELECT COUNT(*) FROM approvals WHERE status <> 'pending'").await,
        audit_events: count("SELECT COUNT(*) FROM audit_log").await,
        login_transactions: count("SELECT COUNT(*) FROM login_transactions").await,
    }
}

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = server.http.request(method, server.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply {
        status,
        headers,
        body,
    }
}

/// Posts `body` as JSON with the shop's key.
async fn post_json(server: &TestServer, path: &str, body: &str) -> Reply {
    let authorization = format!("Bearer {SHOP_KEY}");
    send(
        server,
        reqwest::Method::POST,
        path,
        &[
            ("authorization", &authorization),
            ("content-type", "application/json"),
        ],
        body.to_owned(),
    )
    .await
}

async fn create_with(server: &TestServer, body: &Value) -> Reply {
    post_json(server, CREATE, &body.to_string()).await
}

/// Checks that a reply is a problem with `status` and `code`.
fn assert_problem(reply: &Reply, status: StatusCode, code: &str, case: &str) {
    assert_eq!(reply.status, status, "{case}: {}", reply.body);
    assert_eq!(
        reply.headers["content-type"], "application/problem+json",
        "{case}"
    );
    assert_eq!(reply.body["code"], code, "{case}: {}", reply.body);
    assert_eq!(
        reply.body["type"],
        format!("urn:countersign:problem:{code}"),
        "{case}"
    );
    assert_eq!(reply.body["status"], status.as_u16(), "{case}");
    assert!(!reply.body["detail"].as_str().unwrap().is_empty(), "{case}");
}

fn assert_detail_contains(reply: &Reply, text: &str, case: &str) {
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(text),
        "{case}: detail {detail:?} lacks {text:?}"
    );
}

/// Returns the refund request with `field` (a top-level name) set to `value`.
fn with_field(field: &str, value: Value) -> Value {
    let mut body = refund_request();
    body[field] = value;
    body
}

async fn create_pending(server: &TestServer) -> String {
    server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn create_rejects_malformed_json() {
    let server = start().await;
    let before = snapshot(&server).await;

    let cases = [
        ("empty body", ""),
        ("unclosed object", "{not json"),
        ("trailing comma", r#"{"action": "refund",}"#),
        ("trailing data", &format!("{} {{}}", refund_request())),
        ("array", "[]"),
        ("null", "null"),
        ("string", r#""refund""#),
        ("single quotes", "{'action': 'refund'}"),
        ("number overflow", r#"{"lifetime_seconds": 1e400}"#),
    ];
    for (case, body) in cases {
        let reply = post_json(&server, CREATE, body).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", case);
    }

    let reply = send(
        &server,
        reqwest::Method::POST,
        CREATE,
        &[
            ("authorization", &format!("Bearer {SHOP_KEY}")),
            ("content-type", "application/json"),
        ],
        vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'],
    )
    .await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "invalid UTF-8",
    );

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_rejects_oversize_body() {
    let server = start().await;
    let before = snapshot(&server).await;

    let mut body = refund_request();
    body["details"] = json!({"padding": "x".repeat(64 * 1024)});
    let reply = create_with(&server, &body).await;
    assert_problem(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "64 KiB",
    );
    assert_detail_contains(&reply, "65536 bytes", "64 KiB");

    let reply = post_json(&server, CREATE, &" ".repeat(10 * 1024 * 1024)).await;
    assert_problem(
        &reply,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "10 MiB",
    );

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_accepts_body_at_limit() {
    let server = start().await;

    // Details stay under their 16 KiB limit; the summary pads the body.
    let mut body = refund_request();
    body["details"] = json!({"note": "x".repeat(16 * 1024 - 20)});
    let text = body.to_string();
    assert!(text.len() < 64 * 1024);

    let reply = post_json(&server, CREATE, &text).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

#[tokio::test]
async fn create_rejects_wrong_types() {
    let server = start().await;
    let before = snapshot(&server).await;

    let cases = [
        (
            "action",
            json!(5),
            "`action` is invalid: invalid type: integer",
        ),
        (
            "summary",
            json!(["a"]),
            "`summary` is invalid: invalid type: sequence",
        ),
        (
            "details",
            json!("text"),
            "`details` is invalid: invalid type: string",
        ),
        (
            "details",
            json!([1, 2]),
            "`details` is invalid: invalid type: sequence",
        ),
        (
            "details",
            json!(null),
            "`details` is invalid: invalid type: null",
        ),
        (
            "requester",
            json!("Carla"),
            "`requester` is invalid: invalid type: string",
        ),
        (
            "required_role",
            json!(true),
            "`required_role` is invalid: invalid type: boolean",
        ),
        (
            "origin",
            json!({"host": "x"}),
            "`origin` is invalid: invalid type: map",
        ),
        (
            "lifetime_seconds",
            json!("300"),
            "`lifetime_seconds` is invalid: invalid type: string",
        ),
        (
            "lifetime_seconds",
            json!(300.5),
            "`lifetime_seconds` is invalid: invalid type: floating point",
        ),
        (
            "lifetime_seconds",
            json!(true),
            "`lifetime_seconds` is invalid: invalid type: boolean",
        ),
    ];
    for (field, value, expected) in cases {
        let case = format!("{field} = {value}");
        let reply = create_with(&server, &with_field(field, value)).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", &case);
        assert_detail_contains(&reply, expected, &case);
    }

    let mut body = refund_request();
    body["requester"]["name"] = json!(42);
    let reply = create_with(&server, &body).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "requester.name",
    );
    assert_detail_contains(&reply, "`requester.name` is invalid", "requester.name");

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_rejects_unknown_fields() {
    let server = start().await;
    let before = snapshot(&server).await;

    let reply = create_with(&server, &with_field("surprise", json!(1))).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "top level",
    );
    assert_detail_contains(&reply, "unknown field `surprise`", "top level");

    let mut body = refund_request();
    body["requester"]["email"] = json!("carla@example.com");
    let reply = create_with(&server, &body).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "requester",
    );
    assert_detail_contains(
        &reply,
        "`requester.email` is invalid: unknown field `email`",
        "requester",
    );

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_rejects_missing_fields() {
    let server = start().await;
    let before = snapshot(&server).await;

    for field in [
        "action",
        "summary",
        "details",
        "requester",
        "required_role",
        "origin",
    ] {
        let mut body = refund_request();
        body.as_object_mut().unwrap().remove(field);
        let reply = create_with(&server, &body).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", field);
        assert_detail_contains(&reply, &format!("missing field `{field}`"), field);
    }

    for field in ["sub", "name"] {
        let mut body = refund_request();
        body["requester"].as_object_mut().unwrap().remove(field);
        let reply = create_with(&server, &body).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", field);
        assert_detail_contains(&reply, &format!("missing field `{field}`"), field);
    }

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_rejects_invalid_origins() {
    let server = start().await;
    let before = snapshot(&server).await;

    let malformed = [
        "http://localhost:18400/shop",
        "http://localhost:18400/?x=1",
        "http://localhost:18400#top",
        "null",
        "",
        "localhost:18400",
        "ftp://localhost:18400",
        "javascript:alert(1)",
        "data:text/html,hi",
        "file:///etc/passwd",
        "http://user:pass@localhost:18400",
        "http://localhost:18400\n",
        "http://local\u{202E}host:18400",
    ];
    for origin in malformed {
        let reply = create_with(&server, &with_field("origin", json!(origin))).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", origin);
    }

    let long = format!("http://{}.example", "a".repeat(3000));
    let reply = create_with(&server, &with_field("origin", json!(long))).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "long origin",
    );
    assert_detail_contains(&reply, "longer than 2048 characters", "long origin");

    let unlisted = [
        "http://evil.example",
        "http://localhost:18401",
        "https://localhost:18400",
        "http://127.0.0.1:18400",
    ];
    for origin in unlisted {
        let reply = create_with(&server, &with_field("origin", json!(origin))).await;
        assert_problem(
            &reply,
            StatusCode::UNPROCESSABLE_ENTITY,
            "origin_not_allowed",
            origin,
        );
    }

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_normalizes_origin_trailing_slash() {
    let server = start().await;

    let reply = create_with(
        &server,
        &with_field("origin", json!(format!("{SHOP_ORIGIN}/"))),
    )
    .await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let stored: String = sqlx::query_scalar("SELECT origin FROM approvals")
        .fetch_one(server.storage.pool())
        .await
        .unwrap();
    assert_eq!(stored, SHOP_ORIGIN);
}

#[tokio::test]
async fn create_rejects_lifetimes_out_of_range() {
    let server = start().await;
    let before = snapshot(&server).await;

    // The test server sets approvals.max_lifetime_seconds to 600.
    for lifetime in [
        json!(0),
        json!(-1),
        json!(29),
        json!(601),
        json!(i64::MAX),
        json!(i64::MIN),
    ] {
        let case = format!("lifetime {lifetime}");
        let reply = create_with(&server, &with_field("lifetime_seconds", lifetime)).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", &case);
        assert_detail_contains(&reply, "it must be from 30 to 600", &case);
    }

    for lifetime in [json!(u64::MAX), json!(1e10), json!(30.0)] {
        let case = format!("lifetime {lifetime}");
        let reply = create_with(&server, &with_field("lifetime_seconds", lifetime)).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", &case);
        assert_detail_contains(&reply, "`lifetime_seconds` is invalid", &case);
    }

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_accepts_lifetime_bounds() {
    let server = start().await;

    for lifetime in [json!(30), json!(600), json!(null)] {
        let reply = create_with(&server, &with_field("lifetime_seconds", lifetime.clone())).await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{lifetime}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn create_rejects_empty_and_oversize_text() {
    let server = start().await;
    let before = snapshot(&server).await;

    let cases = [
        ("action", json!(""), "action must not be empty"),
        ("action", json!("   "), "action must not be empty"),
        (
            "action",
            json!("a".repeat(101)),
            "action is longer than 100 characters",
        ),
        ("summary", json!(""), "summary must not be empty"),
        ("summary", json!("\n\t "), "summary must not be empty"),
        (
            "summary",
            json!("s".repeat(501)),
            "summary is longer than 500 characters",
        ),
        (
            "required_role",
            json!(""),
            "required_role must not be empty",
        ),
        (
            "required_role",
            json!("R".repeat(256)),
            "required_role is longer than 255 characters",
        ),
    ];
    for (field, value, expected) in cases {
        let case = format!(
            "{field} = {}",
            value.to_string().chars().take(20).collect::<String>()
        );
        let reply = create_with(&server, &with_field(field, value)).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", &case);
        assert_detail_contains(&reply, expected, &case);
    }

    let mut body = refund_request();
    body["requester"]["name"] = json!("N".repeat(256));
    let reply = create_with(&server, &body).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "requester.name",
    );
    assert_detail_contains(
        &reply,
        "requester.name is longer than 255 characters",
        "requester.name",
    );

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_accepts_text_at_max_length() {
    let server = start().await;

    let mut body = refund_request();
    body["action"] = json!("a".repeat(100));
    body["summary"] = json!("s".repeat(500));
    body["requester"]["name"] = json!("N".repeat(255));

    let reply = create_with(&server, &body).await;

    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

#[tokio::test]
async fn create_rejects_control_characters() {
    let server = start().await;
    let before = snapshot(&server).await;

    let cases = [
        (
            "summary",
            "Refund\u{0}order",
            "summary contains control characters",
        ),
        (
            "summary",
            "Refund \u{1b}[31mred",
            "summary contains control characters",
        ),
        (
            "summary",
            "Refund\u{7}",
            "summary contains control characters",
        ),
        (
            "summary",
            "Refund\u{85}order",
            "summary contains control characters",
        ),
        ("summary", "Refund \u{202E}09.94", "U+202E"),
        ("summary", "Refund \u{2066}49\u{2069}", "U+2066"),
        (
            "action",
            "refund\u{8}",
            "action contains control characters",
        ),
        ("required_role", "MANA\u{200F}GER", "U+200F"),
    ];
    for (field, value, expected) in cases {
        let case = format!("{field} = {value:?}");
        let reply = create_with(&server, &with_field(field, json!(value))).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", &case);
        assert_detail_contains(&reply, expected, &case);
    }

    let mut body = refund_request();
    body["requester"]["name"] = json!("Carla\r\nCashier");
    let reply = create_with(&server, &body).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "requester.name CR",
    );

    let details_cases = [
        (
            json!({"note": "a\u{0}b"}),
            "details.note contains the control character U+0000",
        ),
        (
            json!({"note": "a\u{1b}b"}),
            "details.note contains the control character U+001B",
        ),
        (
            json!({"x\u{7}": "a"}),
            "a key in details contains the control character U+0007",
        ),
        (
            json!({"list": ["ok", "\u{202E}x"]}),
            "details.list[1] contains the bidirectional formatting character U+202E",
        ),
    ];
    for (details, expected) in details_cases {
        let case = format!("details = {details}");
        let reply = create_with(&server, &with_field("details", details)).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", &case);
        assert_detail_contains(&reply, expected, &case);
    }

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn create_handles_long_unicode() {
    let server = start().await;
    let before = snapshot(&server).await;

    // Limits count Unicode scalar values, not bytes: 500 four-byte emoji fit.
    let reply = create_with(&server, &with_field("summary", json!("💶".repeat(501)))).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "501 emoji",
    );
    assert_detail_contains(&reply, "summary is longer than 500 characters", "501 emoji");

    let combining = format!("e{}", "\u{301}".repeat(500));
    let reply = create_with(&server, &with_field("summary", json!(combining))).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "combining marks",
    );
    assert_eq!(snapshot(&server).await, before);

    let reply = create_with(&server, &with_field("summary", json!("💶".repeat(500)))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let reply = create_with(
        &server,
        &with_field(
            "summary",
            json!("Rückerstattung 注文 1001 — 49,90 €\nzweite Zeile"),
        ),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

#[tokio::test]
async fn create_rejects_deep_or_huge_details() {
    let server = start().await;
    let before = snapshot(&server).await;

    let nested = |levels: usize| {
        let mut value = json!("leaf");
        for _ in 0..levels {
            value = json!({ "n": value });
        }
        value
    };

    let reply = create_with(&server, &with_field("details", nested(11))).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "11 levels",
    );
    assert_detail_contains(&reply, "nested deeper than 10 levels", "11 levels");

    // Deeper than serde_json's recursion limit of 128: still a clean 400.
    let deep = format!(
        r#"{{"action":"refund","summary":"s","details":{}"x"{},"requester":{{"sub":"c","name":"C"}},"required_role":"R","origin":"{SHOP_ORIGIN}"}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let reply = post_json(&server, CREATE, &deep).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "5000 levels",
    );

    let big: serde_json::Map<String, Value> = (0..2000)
        .map(|index| (format!("k{index}"), json!("v")))
        .collect();
    let reply = create_with(&server, &with_field("details", Value::Object(big))).await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "2000 keys",
    );
    assert_detail_contains(&reply, "the maximum is 16384", "2000 keys");

    let reply = create_with(
        &server,
        &with_field("details", json!({"blob": "b".repeat(17 * 1024)})),
    )
    .await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "17 KiB string",
    );

    assert_eq!(snapshot(&server).await, before);

    let reply = create_with(&server, &with_field("details", nested(10))).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

#[tokio::test]
async fn bad_ids_are_not_found() {
    let server = start().await;
    let id = create_pending(&server).await;
    server.decide(&id, Decision::Approved).await;
    let before = snapshot(&server).await;

    let long = "A".repeat(4000);
    let ids = [
        "abc",
        "AAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAA%2F",
        "%FF%FE",
        "%00",
        "..%2F..%2Fetc",
        "AAAAAAAAAAAAAAAAAAAAAA",
        long.as_str(),
    ];
    for bad in ids {
        let status_path = format!("/api/v1/approvals/{bad}");
        let reply = server.get(Some(SHOP_KEY), &status_path).await;
        assert_eq!(reply.0, StatusCode::NOT_FOUND, "status {bad}");
        assert_eq!(reply.1["code"], "not_found", "status {bad}");

        let consume_path = format!("/api/v1/approvals/{bad}/consume");
        let reply = post_json(
            &server,
            &consume_path,
            &json!({"payload": refund_payload()}).to_string(),
        )
        .await;
        assert_problem(&reply, StatusCode::NOT_FOUND, "not_found", &consume_path);

        let events_path = format!("/api/v1/approvals/{bad}/events?token=x");
        let reply = send(&server, reqwest::Method::GET, &events_path, &[], "").await;
        assert_problem(&reply, StatusCode::NOT_FOUND, "not_found", &events_path);
    }

    let reply = send(
        &server,
        reqwest::Method::GET,
        &format!("/api/v1/approvals/{id}/events?token=wrong"),
        &[],
        "",
    )
    .await;
    assert_problem(
        &reply,
        StatusCode::NOT_FOUND,
        "not_found",
        "wrong events token",
    );

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn bad_api_keys_are_unauthorized() {
    let server = start().await;
    let id = create_pending(&server).await;
    server.decide(&id, Decision::Approved).await;
    let before = snapshot(&server).await;

    let consume_path = format!("/api/v1/approvals/{id}/consume");
    let status_path = format!("/api/v1/approvals/{id}");
    let authorizations: [Option<&str>; 9] = [
        None,
        Some(""),
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer    "),
        Some("Basic c2hvcDpzZWNyZXQ="),
        Some("Token shop-key-for-tests"),
        Some("Bearer wrong-key"),
        Some("Bearer shop-key-for-tests-but-longer"),
    ];
    for authorization in authorizations {
        let case = format!("{authorization:?}");
        let mut headers = vec![("content-type", "application/json")];
        if let Some(value) = authorization {
            headers.push(("authorization", value));
        }

        let create_body = refund_request().to_string();
        let consume_body = json!({"payload": refund_payload()}).to_string();
        let replies = [
            send(
                &server,
                reqwest::Method::POST,
                CREATE,
                &headers,
                create_body,
            )
            .await,
            send(&server, reqwest::Method::GET, &status_path, &headers, "").await,
            send(
                &server,
                reqwest::Method::POST,
                &consume_path,
                &headers,
                consume_body,
            )
            .await,
        ];
        for reply in &replies {
            assert_problem(reply, StatusCode::UNAUTHORIZED, "unauthorized", &case);
            assert_eq!(reply.headers["www-authenticate"], "Bearer", "{case}");
        }
    }

    let reply = send(
        &server,
        reqwest::Method::GET,
        &status_path,
        &[("authorization", "Bearer \u{e9}t\u{e9}")],
        "",
    )
    .await;
    assert_problem(
        &reply,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "non-ASCII key",
    );

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn other_keys_request_is_forbidden() {
    let server = start().await;
    let id = create_pending(&server).await;
    server.decide(&id, Decision::Approved).await;
    let before = snapshot(&server).await;

    let reply = server
        .get(Some(OTHER_KEY), &format!("/api/v1/approvals/{id}"))
        .await;

    assert_eq!(reply.0, StatusCode::FORBIDDEN);
    assert_eq!(reply.1["code"], "forbidden");
    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn wrong_content_type_is_unsupported() {
    let server = start().await;
    let id = create_pending(&server).await;
    server.decide(&id, Decision::Approved).await;
    let before = snapshot(&server).await;
    let authorization = format!("Bearer {SHOP_KEY}");
    let consume_path = format!("/api/v1/approvals/{id}/consume");

    let content_types: [Option<&str>; 5] = [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
    ];
    for content_type in content_types {
        let case = format!("{content_type:?}");
        let mut headers = vec![("authorization", authorization.as_str())];
        if let Some(value) = content_type {
            headers.push(("content-type", value));
        }
        for (path, body) in [
            (CREATE, refund_request().to_string()),
            (
                consume_path.as_str(),
                json!({"payload": refund_payload()}).to_string(),
            ),
        ] {
            let reply = send(&server, reqwest::Method::POST, path, &headers, body).await;
            assert_problem(
                &reply,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                &format!("{path} {case}"),
            );
        }
    }

    assert_eq!(snapshot(&server).await, before);

    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", "application/json; charset=utf-8"),
    ];
    let reply = send(
        &server,
        reqwest::Method::POST,
        CREATE,
        &headers,
        refund_request().to_string(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

#[tokio::test]
async fn wrong_method_is_problem() {
    let server = start().await;
    let id = create_pending(&server).await;
    let before = snapshot(&server).await;
    let authorization = format!("Bearer {SHOP_KEY}");
    let headers = [
        ("authorization", authorization.as_str()),
        ("content-type", "application/json"),
    ];

    let status_path = format!("/api/v1/approvals/{id}");
    let consume_path = format!("/api/v1/approvals/{id}/consume");
    let events_path = format!("/api/v1/approvals/{id}/events");
    let cases = [
        (reqwest::Method::GET, CREATE, "POST"),
        (reqwest::Method::PUT, CREATE, "POST"),
        (reqwest::Method::DELETE, CREATE, "POST"),
        (reqwest::Method::POST, status_path.as_str(), "GET,HEAD"),
        (reqwest::Method::DELETE, status_path.as_str(), "GET,HEAD"),
        (reqwest::Method::PATCH, status_path.as_str(), "GET,HEAD"),
        (reqwest::Method::GET, consume_path.as_str(), "POST"),
        (reqwest::Method::PUT, consume_path.as_str(), "POST"),
        (reqwest::Method::POST, events_path.as_str(), "GET,HEAD"),
        (reqwest::Method::POST, "/api/v1/openapi.json", "GET,HEAD"),
    ];
    for (method, path, allow) in cases {
        let case = format!("{method} {path}");
        let reply = send(&server, method, path, &headers, "{}").await;
        assert_problem(
            &reply,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            &case,
        );
        assert_eq!(reply.headers["allow"], allow, "{case}");
    }

    assert_eq!(snapshot(&server).await, before);
}

#[tokio::test]
async fn unknown_api_paths_are_problems() {
    let server = start().await;

    for path in ["/api", "/api/v2/approvals", "/api/v1/approvals/x/y/z"] {
        let reply = send(&server, reqwest::Method::GET, path, &[], "").await;
        assert_problem(&reply, StatusCode::NOT_FOUND, "not_found", path);
        let reply = send(&server, reqwest::Method::DELETE, path, &[], "").await;
        assert_problem(&reply, StatusCode::NOT_FOUND, "not_found", path);
    }
}

#[tokio::test]
async fn consume_rejects_bad_bodies() {
    let server = start().await;
    let id = create_pending(&server).await;
    server.decide(&id, Decision::Approved).await;
    let path = format!("/api/v1/approvals/{id}/consume");
    let before = snapshot(&server).await;
    let hash = refund_request_hash(&server, &id).await;

    let cases = [
        (
            json!({}),
            "send exactly one of `payload` and `payload_hash`",
        ),
        (json!({"payload": null}), "send exactly one of"),
        (
            json!({"payload": refund_payload(), "payload_hash": hash}),
            "send exactly one of",
        ),
        (json!({"payload_hash": "sha256:abc"}), "64 hex digits"),
        (
            json!({"payload_hash": hash.replace("sha256:", "md5:")}),
            "64 hex digits",
        ),
        (
            json!({"payload_hash": 5}),
            "`payload_hash` is invalid: invalid type: integer",
        ),
        (
            json!({"payload_hash": hash, "id": id}),
            "unknown field `id`",
        ),
        (json!([]), "the body is invalid"),
    ];
    for (body, expected) in cases {
        let case = body.to_string();
        let reply = post_json(&server, &path, &body.to_string()).await;
        assert_problem(&reply, StatusCode::BAD_REQUEST, "invalid_request", &case);
        assert_detail_contains(&reply, expected, &case);
    }

    let reply = post_json(&server, &path, "{\"payload\": ").await;
    assert_problem(
        &reply,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "truncated",
    );

    assert_eq!(snapshot(&server).await, before);

    // The approval is still consumable after all of that.
    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload_hash": hash}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Returns the payload hash stored for `id`.
async fn refund_request_hash(server: &TestServer, id: &str) -> String {
    sqlx::query_scalar("SELECT payload_hash FROM approvals WHERE id = ?")
        .bind(id)
        .fetch_one(server.storage.pool())
        .await
        .unwrap()
}
