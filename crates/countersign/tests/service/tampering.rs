//! The popup flow against a tampering browser: replayed, swapped or
//! missing `state`, a replayed callback, a missing or stale login cookie,
//! cross-site and repeated decision posts, racing decisions and racing
//! consumes. Each browser keeps its own cookie jar.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::flow::{Browser, Fixture, Page, query_of};
use crate::hostile_idp::TestUser;
use crate::support::*;

/// Returns the decision page of a fresh manager sign-in in `browser`.
async fn signed_in(fixture: &Fixture, browser: &Browser, id: &str, user: TestUser) -> Page {
    let attempt = fixture.attempt(browser, id, user).await;
    fixture.assert_decision_page(&attempt);
    attempt.page
}

async fn login_rows(fixture: &Fixture) -> Vec<(String, Option<String>)> {
    sqlx::query_as("SELECT approval_id, outcome FROM login_transactions ORDER BY created_at")
        .fetch_all(fixture.server.storage.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn replayed_callback_records_one_outcome() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let attempt = fixture.attempt(&browser, &id, TestUser::manager()).await;
    fixture.assert_decision_page(&attempt);
    let state = query_of(&attempt.authorization_url)["state"].clone();
    let callback = Fixture::callback_path(&attempt.code, &state);

    let replay = browser.get(&callback).await;

    assert_eq!(replay.status, StatusCode::SEE_OTHER);
    assert_eq!(
        replay.location.unwrap().as_str(),
        fixture.signed_out_url(),
        "the replay shows the first outcome"
    );
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 1);
    assert_eq!(fixture.count_events(&id, "signin.succeeded").await, 1);

    let page = browser.get("/popup/signed-out").await;
    let result = browser.decide(&page, "approve").await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.html);
    assert_eq!(browser.cookie(), None, "the decision clears the cookie");

    // The replay after the decision, from the same browser.
    let replay = browser.get(&callback).await;

    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.error_code(), Some("login_expired"));
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 1);
    assert_eq!(fixture.count_events(&id, "signin.succeeded").await, 1);
    assert_eq!(fixture.count_events(&id, "approval.decided").await, 1);
    assert_eq!(fixture.status(&id).await["status"], "approved");
}

#[tokio::test]
async fn replayed_callback_with_old_cookie_is_rejected() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let attempt = fixture.attempt(&browser, &id, TestUser::manager()).await;
    let cookie = browser.cookie();
    let state = query_of(&attempt.authorization_url)["state"].clone();
    let result = browser.decide(&attempt.page, "approve").await;
    assert_eq!(result.status, StatusCode::OK);

    browser.set_cookie(cookie);
    let replay = browser
        .get(&Fixture::callback_path(&attempt.code, &state))
        .await;

    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert_eq!(replay.error_code(), Some("login_expired"));
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 1);
    assert_eq!(fixture.count_events(&id, "signin.succeeded").await, 1);
    assert_eq!(fixture.count_events(&id, "approval.decided").await, 1);
}

#[tokio::test]
async fn state_of_earlier_attempt_is_rejected() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let first = fixture.start_popup(&browser, &id).await;
    let old_state = query_of(&first)["state"].clone();

    let second = fixture.start_popup(&browser, &id).await;
    let code = fixture.idp.sign_in(&second, TestUser::manager());
    let callback = browser
        .get(&Fixture::callback_path(&code, &old_state))
        .await;
    let page = browser.get("/popup/signed-out").await;

    assert_eq!(
        callback.location.unwrap().as_str(),
        fixture.signed_out_url()
    );
    fixture.assert_failed(&id, &page, "login_expired").await;
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 0);
    assert!(
        fixture
            .last_detail(&id)
            .await
            .contains("state does not match")
    );
}

#[tokio::test]
async fn state_swapped_between_approvals_signs_nobody_in() {
    let fixture = Fixture::start().await;
    let first_id = fixture.create().await;
    let second_id = fixture.create().await;
    let first_browser = fixture.browser();
    let second_browser = fixture.browser();
    let first_url = fixture.start_popup(&first_browser, &first_id).await;
    fixture.start_popup(&second_browser, &second_id).await;
    let first_code = fixture.idp.sign_in(&first_url, TestUser::manager());
    let first_state = query_of(&first_url)["state"].clone();
    let callback = Fixture::callback_path(&first_code, &first_state);

    // The first approval's response arrives in the second browser.
    second_browser.get(&callback).await;
    let page = second_browser.get("/popup/signed-out").await;

    fixture
        .assert_failed(&second_id, &page, "login_expired")
        .await;
    assert_eq!(fixture.status(&first_id).await["status"], "pending");
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 0);

    // The code was not spent: its own browser still signs in with it.
    let response = first_browser.get(&callback).await;
    let page = first_browser.get("/popup/signed-out").await;
    assert_eq!(response.status, StatusCode::SEE_OTHER);
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("name=\"csrf\""));
}

#[tokio::test]
async fn code_of_other_attempt_fails_pkce() {
    let fixture = Fixture::start().await;
    let first_id = fixture.create().await;
    let second_id = fixture.create().await;
    let first_browser = fixture.browser();
    let second_browser = fixture.browser();
    let first_url = fixture.start_popup(&first_browser, &first_id).await;
    let second_url = fixture.start_popup(&second_browser, &second_id).await;
    let first_code = fixture.idp.sign_in(&first_url, TestUser::manager());
    let second_state = query_of(&second_url)["state"].clone();

    // The second browser's own state with a code issued to the first.
    second_browser
        .get(&Fixture::callback_path(&first_code, &second_state))
        .await;
    let page = second_browser.get("/popup/signed-out").await;

    fixture.assert_failed(&second_id, &page, "idp_error").await;
    assert!(
        fixture
            .last_detail(&second_id)
            .await
            .contains("invalid_grant")
    );
    assert_eq!(fixture.status(&first_id).await["status"], "pending");
}

#[tokio::test]
async fn missing_state_is_login_expired() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let url = fixture.start_popup(&browser, &id).await;
    let code = fixture.idp.sign_in(&url, TestUser::manager());

    let callback = browser.get(&format!("/popup/callback?code={code}")).await;
    let page = browser.get("/popup/signed-out").await;

    assert_eq!(
        callback.location.unwrap().as_str(),
        fixture.signed_out_url()
    );
    fixture.assert_failed(&id, &page, "login_expired").await;
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 0);
}

#[tokio::test]
async fn missing_cookie_signs_nobody_in() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let url = fixture.start_popup(&browser, &id).await;
    let code = fixture.idp.sign_in(&url, TestUser::manager());
    let callback = Fixture::callback_path(&code, &query_of(&url)["state"]);
    let cookie = browser.cookie();

    browser.set_cookie(None);
    let page = browser.get(&callback).await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    fixture.assert_failed(&id, &page, "login_expired").await;
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 0);
    assert_eq!(login_rows(&fixture).await, [(id.clone(), None)]);

    // The browser with the cookie still completes the sign-in.
    browser.set_cookie(cookie);
    browser.get(&callback).await;
    let page = browser.get("/popup/signed-out").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
}

#[tokio::test]
async fn stale_cookie_of_earlier_attempt_is_rejected() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    fixture.start_popup(&browser, &id).await;
    let stale_cookie = browser.cookie();
    let url = fixture.start_popup(&browser, &id).await;
    let code = fixture.idp.sign_in(&url, TestUser::manager());

    browser.set_cookie(stale_cookie);
    let page = browser
        .get(&Fixture::callback_path(&code, &query_of(&url)["state"]))
        .await;

    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    fixture.assert_failed(&id, &page, "login_expired").await;
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 0);
    assert_eq!(
        login_rows(&fixture).await,
        [(id.clone(), None)],
        "the second attempt is untouched, and the second start deleted the first"
    );
}

/// Posts an approval with the right cookie and CSRF token plus `headers`,
/// and checks that it is rejected without changing anything.
async fn assert_cross_site_rejected(headers: &[(&str, &str)]) {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &id, TestUser::manager()).await;
    let csrf = page.csrf();
    let events_before = fixture.audit(&id).await;

    let response = browser
        .post_decision(&[("csrf", &csrf), ("decision", "approve")], headers)
        .await;

    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), Some("invalid_request"));
    assert_eq!(response.set_cookie, None, "the cookie is left alone");
    assert_eq!(fixture.status(&id).await["status"], "pending");
    assert_eq!(fixture.audit(&id).await, events_before);

    // The approver's own same-origin post still works.
    let result = browser.decide(&page, "approve").await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.html);
    assert_eq!(fixture.status(&id).await["status"], "approved");
}

#[tokio::test]
async fn cross_site_origin_decision_is_rejected() {
    assert_cross_site_rejected(&[("origin", "http://attacker.test")]).await;
}

#[tokio::test]
async fn cross_site_fetch_metadata_decision_is_rejected() {
    assert_cross_site_rejected(&[("sec-fetch-site", "cross-site")]).await;
}

#[tokio::test]
async fn null_origin_decision_is_rejected() {
    assert_cross_site_rejected(&[("origin", "null")]).await;
}

/// Chromium's own post from the decision page: `Referrer-Policy: no-referrer`
/// turns its `Origin` into `null`, and `Sec-Fetch-Site` is `same-origin`.
#[tokio::test]
async fn same_origin_post_with_null_origin_is_accepted() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &id, TestUser::manager()).await;
    let csrf = page.csrf();

    let response = browser
        .post_decision(
            &[("csrf", &csrf), ("decision", "approve")],
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        )
        .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.html);
    assert_eq!(fixture.status(&id).await["status"], "approved");
}

#[tokio::test]
async fn lax_cookie_stays_off_cross_site_post() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let start = browser.get(&format!("/popup/start/{id}")).await;
    let set_cookie = start.set_cookie.clone().unwrap();
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    let url = start.location.unwrap();
    let code = fixture.idp.sign_in(&url, TestUser::manager());
    browser
        .get(&Fixture::callback_path(&code, &query_of(&url)["state"]))
        .await;
    let page = browser.get("/popup/signed-out").await;
    let csrf = page.csrf();

    // A cross-site form post: the browser leaves the Lax cookie off and
    // this old browser sends neither Origin nor Sec-Fetch-Site.
    let cookie = browser.cookie();
    browser.set_cookie(None);
    let response = browser
        .post_decision(&[("csrf", &csrf), ("decision", "approve")], &[])
        .await;

    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), Some("login_expired"));
    assert_eq!(fixture.status(&id).await["status"], "pending");

    browser.set_cookie(cookie);
    let result = browser.decide(&page, "approve").await;
    assert_eq!(result.status, StatusCode::OK, "{}", result.html);
}

#[tokio::test]
async fn decision_posted_twice_keeps_first() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &id, TestUser::manager()).await;
    let cookie = browser.cookie();
    let first = browser.decide(&page, "approve").await;
    assert_eq!(first.status, StatusCode::OK);

    browser.set_cookie(cookie);
    let second = browser.decide(&page, "reject").await;

    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(second.error_code(), Some("login_expired"));
    assert_eq!(fixture.status(&id).await["status"], "approved");
    assert_eq!(fixture.count_events(&id, "approval.decided").await, 1);
}

#[tokio::test]
async fn decision_after_sign_in_window_is_rejected() {
    let fixture = Fixture::start().await;
    // The request outlives the sign-in window of 300 seconds.
    let mut request = refund_request();
    request["lifetime_seconds"] = json!(600);
    let id = fixture.server.create(&request).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &id, TestUser::manager()).await;

    fixture.server.clock.advance(time::Duration::seconds(301));
    let response = browser.decide(&page, "approve").await;

    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), Some("login_expired"));
    assert_eq!(fixture.status(&id).await["status"], "pending");
    assert_eq!(fixture.count_events(&id, "approval.decided").await, 0);
}

#[tokio::test]
async fn decision_after_request_expiry_is_rejected() {
    let fixture = Fixture::start().await;
    let mut request = refund_request();
    request["lifetime_seconds"] = json!(60);
    let id = fixture.server.create(&request).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &id, TestUser::manager()).await;

    fixture.server.clock.advance(time::Duration::seconds(61));
    let response = browser.decide(&page, "approve").await;

    assert_eq!(response.status, StatusCode::GONE);
    assert_eq!(response.error_code(), Some("approval_expired"));
    assert_eq!(fixture.status(&id).await["status"], "expired");
    assert_eq!(fixture.count_events(&id, "approval.decided").await, 0);
}

#[tokio::test]
async fn csrf_of_other_approval_decides_nothing() {
    let fixture = Fixture::start().await;
    let first_id = fixture.create().await;
    let second_id = fixture.create().await;
    let first_browser = fixture.browser();
    let second_browser = fixture.browser();
    let first_page = signed_in(&fixture, &first_browser, &first_id, TestUser::manager()).await;
    signed_in(
        &fixture,
        &second_browser,
        &second_id,
        TestUser::second_manager(),
    )
    .await;

    let response = second_browser.decide(&first_page, "approve").await;

    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), Some("login_expired"));
    assert_eq!(fixture.status(&first_id).await["status"], "pending");
    assert_eq!(fixture.status(&second_id).await["status"], "pending");
}

#[tokio::test]
async fn decision_form_cannot_name_other_request() {
    let fixture = Fixture::start().await;
    let first_id = fixture.create().await;
    let second_id = fixture.create().await;
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &first_id, TestUser::manager()).await;
    let csrf = page.csrf();

    let response = browser
        .post_decision(
            &[
                ("csrf", &csrf),
                ("decision", "approve"),
                ("id", &second_id),
                ("approval_id", &second_id),
            ],
            &[],
        )
        .await;

    assert_eq!(response.status, StatusCode::OK, "{}", response.html);
    assert!(response.html.contains(&format!("data-id=\"{first_id}\"")));
    assert_eq!(fixture.status(&first_id).await["status"], "approved");
    assert_eq!(fixture.status(&second_id).await["status"], "pending");
}

#[tokio::test]
async fn approve_and_reject_race_decides_once() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let approving = fixture.browser();
    let rejecting = fixture.browser();
    let approve_page = signed_in(&fixture, &approving, &id, TestUser::manager()).await;
    let reject_page = signed_in(&fixture, &rejecting, &id, TestUser::second_manager()).await;

    let (approved, rejected) = tokio::join!(
        approving.decide(&approve_page, "approve"),
        rejecting.decide(&reject_page, "reject"),
    );

    let statuses = [approved.status, rejected.status];
    let winners = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!(winners, 1, "{statuses:?}");
    let loser = if approved.status == StatusCode::OK {
        &rejected
    } else {
        &approved
    };
    assert_eq!(loser.status, StatusCode::CONFLICT);
    assert_eq!(loser.error_code(), Some("already_decided"));
    let expected = if approved.status == StatusCode::OK {
        "approved"
    } else {
        "rejected"
    };
    assert_eq!(fixture.status(&id).await["status"], expected);
    assert_eq!(fixture.count_events(&id, "approval.decided").await, 1);
}

#[tokio::test]
async fn same_form_posted_concurrently_decides_once() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &id, TestUser::manager()).await;

    let results = join_all((0..5).map(|_| browser.decide(&page, "approve"))).await;

    let successes = results
        .iter()
        .filter(|result| result.status == StatusCode::OK)
        .count();
    assert_eq!(successes, 1);
    for failure in results.iter().filter(|r| r.status != StatusCode::OK) {
        let code = failure.error_code();
        assert!(
            matches!(code, Some("already_decided" | "login_expired")),
            "{code:?}"
        );
    }
    assert_eq!(fixture.count_events(&id, "approval.decided").await, 1);
}

#[tokio::test]
async fn concurrent_consumes_of_popup_approval_succeed_once() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let browser = fixture.browser();
    let page = signed_in(&fixture, &browser, &id, TestUser::manager()).await;
    let result = browser.decide(&page, "approve").await;
    assert_eq!(result.status, StatusCode::OK);
    let body = json!({"payload": refund_payload()});

    let attempts = join_all((0..200).map(|_| fixture.server.consume(SHOP_KEY, &id, &body))).await;

    let successes: Vec<_> = attempts
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .collect();
    assert_eq!(successes.len(), 1);
    assert_eq!(successes[0].1["approver"]["sub"], "manager-sub");
    let already_consumed = attempts
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::CONFLICT && body["code"] == "already_consumed"
        })
        .count();
    assert_eq!(already_consumed, 199);
    assert_eq!(fixture.count_events(&id, "approval.consumed").await, 1);
    assert_eq!(fixture.count_events(&id, "consume.rejected").await, 199);
}
