//! The host API over HTTP. Decisions are made through the approvals
//! service, since the popup would need an IdP.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use countersign::approvals::{ApprovalId, Approver, Clock, Decision};

use crate::support::*;

#[tokio::test]
async fn create_then_status() {
    let server = start().await;

    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap();

    assert_eq!(id.len(), 22);
    assert_eq!(created["status"], "pending");
    assert_eq!(
        created["approval_url"],
        server.url(&format!("/popup/start/{id}"))
    );
    let events_url = created["events_url"].as_str().unwrap();
    assert!(
        events_url.starts_with(&server.url(&format!("/api/v1/approvals/{id}/events?token="))),
        "{events_url}"
    );
    assert_eq!(
        created["payload_hash"],
        countersign::approvals::hash_canonical(&refund_payload())
            .unwrap()
            .as_str()
    );
    let expires_at = OffsetDateTime::parse(
        created["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(
        expires_at,
        server.clock.now() + time::Duration::seconds(300)
    );

    let (status, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], id);
    assert_eq!(body["status"], "pending");
    assert_eq!(body["consumed"], false);
    assert_eq!(body["approver"], Value::Null);
    assert_eq!(body["decided_at"], Value::Null);

    assert_eq!(
        server.audit_events(id).await,
        [event("approval.requested", None)]
    );
}

#[tokio::test]
async fn consume_before_decision_is_pending() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;

    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["code"], "approval_pending");
    assert_eq!(body["type"], "urn:countersign:problem:approval_pending");
    assert_eq!(
        server.audit_events(&id).await,
        [
            event("approval.requested", None),
            event("consume.rejected", Some("approval_pending"))
        ]
    );
}

#[tokio::test]
async fn consume_succeeds_once() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Approved).await;

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], id);
    assert_eq!(body["decision"], "approved");
    assert_eq!(body["reason"], "checked the receipt");
    assert_eq!(
        body["approver"],
        json!({"sub": "manager-sub", "name": "Maria Manager", "username": "manager"})
    );
    assert!(body["decided_at"].is_string());
    assert!(body["consumed_at"].is_string());

    let (status, again) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(again["code"], "already_consumed");

    let (_, status_body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(status_body["status"], "approved");
    assert_eq!(status_body["consumed"], true);
    assert_eq!(status_body["approver"]["username"], "manager");

    assert_eq!(
        server.audit_events(&id).await,
        [
            event("approval.requested", None),
            event("approval.decided", None),
            event("approval.consumed", None),
            event("consume.rejected", Some("already_consumed")),
        ]
    );
}

#[tokio::test]
async fn rejected_decision_is_consumed_as_rejected() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Rejected).await;

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["decision"], "rejected");
}

#[tokio::test]
async fn concurrent_consumes_succeed_once() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Approved).await;
    let body = json!({"payload": refund_payload()});

    let attempts =
        futures_util::future::join_all((0..8).map(|_| server.consume(SHOP_KEY, &id, &body))).await;

    let successes = attempts
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    let already = attempts
        .iter()
        .filter(|(_, body)| body["code"] == "already_consumed")
        .count();
    assert_eq!(successes, 1, "{attempts:?}");
    assert_eq!(already, 7, "{attempts:?}");
}

#[tokio::test]
async fn different_payload_is_rejected_without_change() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Approved).await;
    let mut payload = refund_payload();
    payload["details"]["amount"] = json!("4990.00");

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": payload}))
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "payload_mismatch");
    let (_, status_body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(status_body["consumed"], false);

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the right payload still works: {body}"
    );
}

#[tokio::test]
async fn consume_with_payload_hash() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap();
    server.decide(id, Decision::Approved).await;

    let wrong = format!("sha256:{}", "0".repeat(64));
    let (status, body) = server
        .consume(SHOP_KEY, id, &json!({"payload_hash": wrong}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "payload_mismatch");

    let (status, body) = server
        .consume(
            SHOP_KEY,
            id,
            &json!({"payload_hash": created["payload_hash"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["payload_hash"], created["payload_hash"]);
}

#[tokio::test]
async fn consume_needs_exactly_one_proof() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap();

    let both = json!({"payload": refund_payload(), "payload_hash": created["payload_hash"]});
    let (status, body) = server.consume(SHOP_KEY, id, &both).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");

    let (status, body) = server.consume(SHOP_KEY, id, &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");

    let (status, body) = server
        .consume(SHOP_KEY, id, &json!({"payload_hash": "md5:abc"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");
}

#[tokio::test]
async fn expired_request_cannot_be_consumed_or_decided() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    server.clock.advance(time::Duration::seconds(301));

    let (_, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(body["status"], "expired");

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["code"], "approval_expired");

    let approval_id = ApprovalId::parse(&id).unwrap();
    let decided = server
        .state
        .approvals
        .decide(&approval_id, Decision::Approved, manager(), None)
        .await;
    let error = decided.unwrap_err();
    assert_eq!(error.code().as_str(), "approval_expired");

    let (_, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(
        body["status"], "expired",
        "a refused decision changes nothing"
    );
}

#[tokio::test]
async fn decided_request_cannot_be_consumed_after_expiry() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Approved).await;

    server.clock.advance(time::Duration::seconds(300));

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(body["code"], "approval_expired");
}

#[tokio::test]
async fn second_decision_is_refused() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Approved).await;

    let approval_id = ApprovalId::parse(&id).unwrap();
    let second = server
        .state
        .approvals
        .decide(&approval_id, Decision::Rejected, manager(), None)
        .await;

    assert_eq!(second.unwrap_err().code().as_str(), "already_decided");
    let (_, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(body["status"], "approved");
}

#[tokio::test]
async fn requester_cannot_decide_own_request() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let requester = Approver {
        sub: "cashier-sub".to_owned(),
        name: Some("Carla Cashier".to_owned()),
        username: Some("cashier".to_owned()),
    };

    let approval_id = ApprovalId::parse(&id).unwrap();
    let result = server
        .state
        .approvals
        .decide(&approval_id, Decision::Approved, requester, None)
        .await;

    assert_eq!(result.unwrap_err().code().as_str(), "own_request");
    let (_, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(body["status"], "pending");
}

#[tokio::test]
async fn unlisted_origin_is_rejected() {
    let server = start().await;
    let mut request = refund_request();
    request["origin"] = json!("http://evil.localhost:18400");

    let (status, body) = server
        .post(Some(SHOP_KEY), "/api/v1/approvals", &request)
        .await;

    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "origin_not_allowed");
}

#[tokio::test]
async fn lifetime_over_cap_is_rejected() {
    let server = start().await;
    let mut request = refund_request();
    request["lifetime_seconds"] = json!(601);

    let (status, body) = server
        .post(Some(SHOP_KEY), "/api/v1/approvals", &request)
        .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("lifetime_seconds is 601"),
        "{body}"
    );
}

#[tokio::test]
async fn missing_or_wrong_api_key_is_unauthorized() {
    let server = start().await;

    let (status, body) = server
        .post(None, "/api/v1/approvals", &refund_request())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");

    let (status, body) = server
        .post(Some("wrong-key"), "/api/v1/approvals", &refund_request())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");

    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = server
        .get(Some("wrong-key"), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn another_keys_request_is_forbidden() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Approved).await;

    let (status, body) = server
        .get(Some(OTHER_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");

    let (status, body) = server
        .consume(OTHER_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");

    let (status, _) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    assert_eq!(status, StatusCode::OK, "the owner can still consume");
}

#[tokio::test]
async fn unknown_id_is_not_found() {
    let server = start().await;
    let unknown = ApprovalId::generate();

    let (status, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{unknown}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "not_found");

    let (status, _) = server
        .get(Some(SHOP_KEY), "/api/v1/approvals/not-an-id")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_need_the_right_token() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap();

    let without = server
        .http
        .get(server.url(&format!("/api/v1/approvals/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::NOT_FOUND);

    let wrong = server
        .http
        .get(server.url(&format!("/api/v1/approvals/{id}/events?token=wrong")))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);

    let other_id = ApprovalId::generate();
    let token = created["events_url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap();
    let other = server
        .http
        .get(server.url(&format!(
            "/api/v1/approvals/{other_id}/events?token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

/// Reads the stream until `count` events arrived or the stream ended.
async fn read_events(response: reqwest::Response, count: usize) -> Vec<Value> {
    let mut response = response;
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .expect("event in time")
            .unwrap();
        let Some(chunk) = chunk else { break };
        buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.lines().any(|line| line == "event: status")
                && let Some(data) = block.lines().find_map(|line| line.strip_prefix("data: "))
            {
                events.push(serde_json::from_str(data).unwrap());
            }
        }
    }
    events
}

#[tokio::test]
async fn events_stream_current_status_then_decision() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let response = server
        .http
        .get(created["events_url"].as_str().unwrap())
        .header("Origin", SHOP_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        SHOP_ORIGIN
    );

    let decider = {
        let id = id.clone();
        let approvals = server.state.approvals.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let id = ApprovalId::parse(&id).unwrap();
            approvals
                .decide(&id, Decision::Approved, manager(), None)
                .await
                .unwrap();
        })
    };

    let events = read_events(response, 3).await;
    decider.await.unwrap();

    assert_eq!(
        events,
        [
            json!({"id": id, "status": "pending"}),
            json!({"id": id, "status": "approved"})
        ],
        "the stream ends after the final status"
    );
}

#[tokio::test]
async fn events_report_expiry() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let response = server
        .http
        .get(created["events_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let clock = server.clock.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        clock.advance(time::Duration::seconds(301));
    });

    let events = read_events(response, 3).await;

    assert_eq!(
        events,
        [
            json!({"id": id, "status": "pending"}),
            json!({"id": id, "status": "expired"})
        ]
    );
}

#[tokio::test]
async fn events_of_decided_request_end_at_once() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    server.decide(&id, Decision::Rejected).await;

    let response = server
        .http
        .get(created["events_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let events = read_events(response, 2).await;

    assert_eq!(events, [json!({"id": id, "status": "rejected"})]);
}

#[tokio::test]
async fn failing_audit_write_blocks_the_decision() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sqlx::query(
        "CREATE TRIGGER audit_log_broken BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'audit disk full'); END",
    )
    .execute(server.storage.pool())
    .await
    .unwrap();

    let approval_id = ApprovalId::parse(&id).unwrap();
    let result = server
        .state
        .approvals
        .decide(&approval_id, Decision::Approved, manager(), None)
        .await;

    assert_eq!(result.unwrap_err().code().as_str(), "audit_unavailable");
    let (_, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(
        body["status"], "pending",
        "no decision without its audit event"
    );
}

#[tokio::test]
async fn failing_audit_write_blocks_the_consume() {
    let server = start().await;
    let id = server.create(&refund_request()).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    server.decide(&id, Decision::Approved).await;
    sqlx::query("DROP TABLE audit_log")
        .execute(server.storage.pool())
        .await
        .unwrap();

    let (status, body) = server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "audit_unavailable");
    let (_, body) = server
        .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
        .await;
    assert_eq!(
        body["consumed"], false,
        "no consume without its audit event"
    );
}

#[tokio::test]
async fn failing_audit_write_blocks_creation() {
    let server = start().await;
    sqlx::query("DROP TABLE audit_log")
        .execute(server.storage.pool())
        .await
        .unwrap();

    let (status, body) = server
        .post(Some(SHOP_KEY), "/api/v1/approvals", &refund_request())
        .await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["code"], "audit_unavailable");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM approvals")
        .fetch_one(server.storage.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn audit_log_is_append_only() {
    let server = start().await;
    server.create(&refund_request()).await;

    let update = sqlx::query("UPDATE audit_log SET event = 'x'")
        .execute(server.storage.pool())
        .await;
    let delete = sqlx::query("DELETE FROM audit_log")
        .execute(server.storage.pool())
        .await;

    assert!(update.unwrap_err().to_string().contains("append-only"));
    assert!(delete.unwrap_err().to_string().contains("append-only"));
}

#[tokio::test]
async fn audit_rows_hold_no_secrets() {
    let server = start().await;
    let created = server.create(&refund_request()).await;
    let id = created["id"].as_str().unwrap().to_owned();
    server.decide(&id, Decision::Approved).await;
    server
        .consume(SHOP_KEY, &id, &json!({"payload": refund_payload()}))
        .await;
    let token = created["events_url"]
        .as_str()
        .unwrap()
        .split("token=")
        .nth(1)
        .unwrap()
        .to_owned();

    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT event, actor, details FROM audit_log")
            .fetch_all(server.storage.pool())
            .await
            .unwrap();

    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0].1.as_deref(),
        Some("shop"),
        "the actor is the key name"
    );
    for (event, actor, details) in rows {
        let text = format!("{event} {actor:?} {details}");
        assert!(!text.contains(SHOP_KEY), "{text}");
        assert!(!text.contains(&token), "{text}");
    }
}

#[tokio::test]
async fn invalid_bodies_are_problems() {
    let server = start().await;

    let response = server
        .http
        .post(server.url("/api/v1/approvals"))
        .bearer_auth(SHOP_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_request");

    let mut request = refund_request();
    request["surprise"] = json!(1);
    let (status, body) = server
        .post(Some(SHOP_KEY), "/api/v1/approvals", &request)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("surprise"),
        "{body}"
    );

    let mut request = refund_request();
    request["details"] = json!("not an object");
    let (status, body) = server
        .post(Some(SHOP_KEY), "/api/v1/approvals", &request)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("`details` is invalid: invalid type: string"),
        "{body}"
    );

    let huge = json!({"x": "a".repeat(100 * 1024)});
    let mut request = refund_request();
    request["details"] = huge;
    let (status, body) = server
        .post(Some(SHOP_KEY), "/api/v1/approvals", &request)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "payload_too_large");
}
