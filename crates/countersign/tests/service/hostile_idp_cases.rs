//! The popup flow against a hostile or broken identity provider: forged
//! and altered tokens (the OpenID Foundation RP certification cases that
//! apply to a confidential code-flow client, and more), a lying discovery
//! document, and a failing token endpoint or JWKS.
//!
//! Each test drives the real popup flow and checks the error page, that
//! the request is still pending, the `signin.failed` audit row and its
//! reason, and, once tokens were issued, the redirect to the IdP's logout.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use countersign::signin::IdpLimits;

use crate::flow::{Fixture, query_of};
use crate::hostile_idp::keys::{b64, corrupt_signature, sign_hs256, unsigned};
use crate::hostile_idp::{
    CLIENT_ID, JwksReply, SigningKey, TestUser, TokenReply, Witness, closed_port_url,
};
use crate::support::event;

/// Sets one claim of a token's claims object.
fn set(claims: &mut Value, name: &str, value: Value) {
    claims[name] = value;
}

fn remove(claims: &mut Value, name: &str) {
    claims.as_object_mut().unwrap().remove(name);
}

/// Runs one manager sign-in on a new request and checks that the tokens
/// are rejected with `code` because of `reason`.
async fn assert_tokens_rejected(fixture: &Fixture, code: &str, reason: &str) {
    let id = fixture.create().await;

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    fixture
        .assert_rejected_tokens(&id, &attempt, code, reason)
        .await;
}

/// Runs one manager sign-in on a new request and checks that it reaches
/// the decision page.
async fn assert_tokens_accepted(fixture: &Fixture) {
    let id = fixture.create().await;

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    fixture.assert_decision_page(&attempt);
    assert_eq!(
        fixture.audit(&id).await.last(),
        Some(&event("signin.succeeded", None))
    );
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let fixture = Fixture::start().await;
    fixture
        .idp
        .forge_id_token(|claims, key| unsigned(&key.kid, claims));

    assert_tokens_rejected(&fixture, "idp_error", "unsupported_algorithm").await;
}

#[tokio::test]
async fn bad_rs256_signature_is_rejected() {
    let fixture = Fixture::start().await;
    fixture
        .idp
        .forge_id_token(|claims, key| corrupt_signature(&key.sign(claims)));

    assert_tokens_rejected(&fixture, "idp_error", "bad_signature").await;
}

#[tokio::test]
async fn bad_es256_signature_is_rejected() {
    let fixture = Fixture::start().await;
    let published = SigningKey::es256("ec-1");
    fixture.idp.publish(std::slice::from_ref(&published));
    fixture.idp.sign_with(published);
    // Another P-256 key signs under the published key id.
    let attacker = SigningKey::es256("ec-1");
    fixture
        .idp
        .forge_id_token(move |claims, _| attacker.sign(claims));

    assert_tokens_rejected(&fixture, "idp_error", "bad_signature").await;
}

#[tokio::test]
async fn hs256_with_public_key_is_rejected() {
    let fixture = Fixture::start().await;
    fixture
        .idp
        .forge_id_token(|claims, key| sign_hs256(&key.public_key_bytes(), &key.kid, claims));

    assert_tokens_rejected(&fixture, "idp_error", "unsupported_algorithm").await;
}

#[tokio::test]
async fn missing_kid_with_one_key_is_accepted() {
    let fixture = Fixture::start().await;
    fixture.idp.forge_id_token(|claims, key| {
        key.sign_with_header(&json!({"alg": key.alg(), "typ": "JWT"}), claims)
    });

    assert_tokens_accepted(&fixture).await;
}

#[tokio::test]
async fn missing_kid_with_several_keys_is_rejected() {
    let fixture = Fixture::start().await;
    let other = SigningKey::es256("ec-1");
    fixture.idp.publish(&[fixture.idp.key.clone(), other]);
    fixture.idp.forge_id_token(|claims, key| {
        key.sign_with_header(&json!({"alg": key.alg(), "typ": "JWT"}), claims)
    });

    assert_tokens_rejected(&fixture, "idp_error", "missing_key_id").await;
}

#[tokio::test]
async fn unknown_kid_works_once_key_is_published() {
    let interval = Duration::from_millis(400);
    let fixture = Fixture::start_with(IdpLimits {
        jwks_min_refetch_interval: interval,
        ..IdpLimits::default()
    })
    .await;
    let jwks = fixture.idp.jwks_path();
    assert_tokens_accepted(&fixture).await;
    assert_eq!(
        fixture.idp.hits(jwks),
        1,
        "the first sign-in loads the keys"
    );

    // The provider signs with a key it has not published yet.
    let rotated = SigningKey::es256("ec-2");
    fixture.idp.sign_with(rotated.clone());
    assert_tokens_rejected(&fixture, "idp_error", "unknown_key").await;
    assert_eq!(fixture.idp.hits(jwks), 2, "an unknown kid refetches once");

    fixture.idp.publish(&[fixture.idp.key.clone(), rotated]);
    assert_tokens_rejected(&fixture, "idp_error", "unknown_key").await;
    assert_eq!(
        fixture.idp.hits(jwks),
        2,
        "no refetch within the minimum interval"
    );

    tokio::time::sleep(interval + Duration::from_millis(100)).await;
    assert_tokens_accepted(&fixture).await;
    assert_eq!(fixture.idp.hits(jwks), 3);
}

#[tokio::test]
async fn wrong_iss_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| {
        set(claims, "iss", json!("http://127.0.0.1:1/realms/other"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "wrong_issuer").await;
}

#[tokio::test]
async fn access_token_from_other_issuer_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_access_token(|claims| {
        set(claims, "iss", json!("http://127.0.0.1:1/realms/other"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "wrong_issuer").await;
}

#[tokio::test]
async fn discovery_issuer_mix_up_signs_nobody_in() {
    let fixture = Fixture::start().await;
    fixture
        .idp
        .set_discovery_issuer("http://127.0.0.1:1/realms/attacker");
    let id = fixture.create().await;
    let browser = fixture.browser();

    let page = browser.get(&format!("/popup/start/{id}")).await;

    assert_eq!(page.status, StatusCode::BAD_GATEWAY);
    assert_eq!(page.location, None, "the browser is not sent to any IdP");
    assert_eq!(browser.cookie(), None);
    fixture.assert_failed(&id, &page, "idp_error").await;
    assert!(
        fixture.last_detail(&id).await.contains("names issuer"),
        "{}",
        fixture.last_detail(&id).await
    );
    assert_eq!(fixture.idp.hits(fixture.idp.jwks_path()), 0);
    assert_eq!(fixture.idp.hits(fixture.idp.token_path()), 0);
    let transactions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM login_transactions")
        .fetch_one(fixture.server.storage.pool())
        .await
        .unwrap();
    assert_eq!(transactions, 0);
}

#[tokio::test]
async fn wrong_aud_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| {
        set(claims, "aud", json!("other-client"));
        set(claims, "azp", json!("other-client"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "wrong_audience").await;
}

#[tokio::test]
async fn several_audiences_without_azp_are_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| {
        set(claims, "aud", json!([CLIENT_ID, "other-client"]));
        remove(claims, "azp");
    });

    assert_tokens_rejected(&fixture, "idp_error", "wrong_authorized_party").await;
}

#[tokio::test]
async fn several_audiences_with_foreign_azp_are_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| {
        set(claims, "aud", json!([CLIENT_ID, "other-client"]));
        set(claims, "azp", json!("other-client"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "wrong_authorized_party").await;
}

#[tokio::test]
async fn access_token_for_other_client_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_access_token(|claims| {
        set(claims, "azp", json!("other-client"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "wrong_audience").await;
}

#[tokio::test]
async fn access_token_of_other_user_is_rejected() {
    let fixture = Fixture::start().await;
    // The ID token names another user than the access token, which
    // carries the manager's role.
    fixture.idp.edit_id_token(|claims| {
        set(claims, "sub", json!("clerk-sub"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "subject_mismatch").await;
}

#[tokio::test]
async fn expired_id_token_is_rejected() {
    let fixture = Fixture::start().await;
    let now = fixture.idp.now();
    fixture.idp.edit_id_token(move |claims| {
        set(claims, "iat", json!(now - 400));
        set(claims, "exp", json!(now - 60));
    });

    assert_tokens_rejected(&fixture, "idp_error", "expired").await;
}

#[tokio::test]
async fn expired_access_token_is_rejected() {
    let fixture = Fixture::start().await;
    let now = fixture.idp.now();
    fixture.idp.edit_access_token(move |claims| {
        set(claims, "exp", json!(now - 60));
    });

    assert_tokens_rejected(&fixture, "idp_error", "expired").await;
}

#[tokio::test]
async fn iat_beyond_leeway_is_rejected() {
    let fixture = Fixture::start().await;
    let now = fixture.idp.now();
    fixture.idp.edit_id_token(move |claims| {
        set(claims, "iat", json!(now + 120));
    });

    assert_tokens_rejected(&fixture, "idp_error", "not_yet_valid").await;
}

#[tokio::test]
async fn nbf_beyond_leeway_is_rejected() {
    let fixture = Fixture::start().await;
    let now = fixture.idp.now();
    fixture.idp.edit_id_token(move |claims| {
        set(claims, "nbf", json!(now + 120));
    });

    assert_tokens_rejected(&fixture, "idp_error", "not_yet_valid").await;
}

#[tokio::test]
async fn iat_and_nbf_within_leeway_are_accepted() {
    let fixture = Fixture::start().await;
    let now = fixture.idp.now();
    // The default leeway is 30 seconds.
    fixture.idp.edit_id_token(move |claims| {
        set(claims, "iat", json!(now + 25));
        set(claims, "nbf", json!(now + 25));
    });

    assert_tokens_accepted(&fixture).await;
}

#[tokio::test]
async fn missing_sub_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| remove(claims, "sub"));

    assert_tokens_rejected(&fixture, "idp_error", "missing_subject").await;
}

#[tokio::test]
async fn missing_nonce_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| remove(claims, "nonce"));

    assert_tokens_rejected(&fixture, "idp_error", "nonce_mismatch").await;
}

#[tokio::test]
async fn different_nonce_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| {
        set(claims, "nonce", json!("nonce-of-another-sign-in"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "nonce_mismatch").await;
}

#[tokio::test]
async fn at_hash_mismatch_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| {
        set(claims, "at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA"));
    });

    assert_tokens_rejected(&fixture, "idp_error", "at_hash_mismatch").await;
}

#[tokio::test]
async fn stale_auth_time_is_not_fresh() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let lingering = TestUser {
        auth_time_offset: -600,
        ..TestUser::manager()
    };

    let attempt = fixture.attempt(&fixture.browser(), &id, lingering).await;

    fixture
        .assert_rejected_tokens(&id, &attempt, "sign_in_not_fresh", "stale_auth_time")
        .await;
}

#[tokio::test]
async fn missing_auth_time_is_not_fresh() {
    let fixture = Fixture::start().await;
    fixture
        .idp
        .edit_id_token(|claims| remove(claims, "auth_time"));

    assert_tokens_rejected(&fixture, "sign_in_not_fresh", "missing_auth_time").await;
}

#[tokio::test]
async fn acr_zero_is_not_fresh() {
    let fixture = Fixture::start().await;
    let id = fixture.create().await;
    let cookie_login = TestUser {
        acr: "0".to_owned(),
        ..TestUser::manager()
    };

    let attempt = fixture.attempt(&fixture.browser(), &id, cookie_login).await;

    fixture
        .assert_rejected_tokens(&id, &attempt, "sign_in_not_fresh", "cookie_login")
        .await;
}

#[tokio::test]
async fn token_error_response_is_idp_error() {
    let fixture = Fixture::start().await;
    fixture.idp.set_token_reply(TokenReply::Json(
        400,
        json!({"error": "invalid_grant", "error_description": "Code not valid"}),
    ));
    let id = fixture.create().await;

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    fixture
        .assert_failed_without_tokens(&id, &attempt, "idp_error", "invalid_grant")
        .await;
}

#[tokio::test]
async fn token_timeout_is_idp_error() {
    let fixture = Fixture::start_with(IdpLimits {
        timeout: Duration::from_secs(2),
        ..IdpLimits::default()
    })
    .await;
    fixture
        .idp
        .set_token_reply(TokenReply::Delay(Duration::from_secs(30)));
    let id = fixture.create().await;
    let started = std::time::Instant::now();

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    assert!(started.elapsed() < Duration::from_secs(20));
    fixture
        .assert_failed_without_tokens(&id, &attempt, "idp_error", "timed out")
        .await;
}

#[tokio::test]
async fn token_http_500_is_idp_error() {
    let fixture = Fixture::start().await;
    fixture.idp.set_token_reply(TokenReply::Status(500));
    let id = fixture.create().await;

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    fixture
        .assert_failed_without_tokens(&id, &attempt, "idp_error", "HTTP 500")
        .await;
}

#[tokio::test]
async fn token_redirect_is_not_followed() {
    let fixture = Fixture::start().await;
    let witness = Witness::start().await;
    fixture
        .idp
        .set_token_reply(TokenReply::Redirect(witness.url.clone()));
    let id = fixture.create().await;

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    fixture
        .assert_failed_without_tokens(&id, &attempt, "idp_error", "HTTP 302")
        .await;
    assert_eq!(witness.hits(), 0, "the code and secret stay at the IdP");
}

#[tokio::test]
async fn jwks_redirect_is_not_followed() {
    let fixture = Fixture::start().await;
    let witness = Witness::start().await;
    fixture
        .idp
        .set_jwks_reply(JwksReply::Redirect(witness.url.clone()));

    assert_tokens_rejected(&fixture, "idp_error", "jwks_unavailable").await;

    assert_eq!(fixture.idp.hits(fixture.idp.jwks_path()), 1);
    assert_eq!(witness.hits(), 0);
}

#[tokio::test]
async fn jwks_outage_keeps_cached_keys() {
    let fixture = Fixture::start().await;
    assert_tokens_accepted(&fixture).await;

    fixture.idp.set_jwks_reply(JwksReply::Status(503));

    assert_tokens_accepted(&fixture).await;
    assert_eq!(fixture.idp.hits(fixture.idp.jwks_path()), 1);
}

#[tokio::test]
async fn unreachable_jwks_without_keys_fails_closed() {
    let fixture = Fixture::start().await;
    fixture
        .idp
        .set_jwks_uri(&closed_port_url("/realms/test/certs").await);

    assert_tokens_rejected(&fixture, "idp_error", "jwks_unavailable").await;
}

#[tokio::test]
async fn jwks_error_without_keys_fails_closed() {
    let fixture = Fixture::start().await;
    fixture.idp.set_jwks_reply(JwksReply::Status(500));

    assert_tokens_rejected(&fixture, "idp_error", "jwks_unavailable").await;
}

#[tokio::test]
async fn huge_id_token_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_id_token(|claims| {
        set(claims, "padding", json!("x".repeat(20_000)));
    });
    let id = fixture.create().await;

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    fixture
        .assert_rejected_tokens(&id, &attempt, "idp_error", "token_too_large")
        .await;
    let logout = query_of(&attempt.after_callback);
    assert!(
        !logout.contains_key("id_token_hint"),
        "the huge token stays out of the logout URL"
    );
    assert_eq!(logout["client_id"], CLIENT_ID);
}

#[tokio::test]
async fn huge_token_response_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.edit_access_token(|claims| {
        set(claims, "padding", json!("x".repeat(70_000)));
    });
    let id = fixture.create().await;

    let attempt = fixture
        .attempt(&fixture.browser(), &id, TestUser::manager())
        .await;

    fixture
        .assert_failed_without_tokens(&id, &attempt, "idp_error", "token_response_too_large")
        .await;
}

#[tokio::test]
async fn malformed_id_token_is_rejected() {
    let fixture = Fixture::start().await;
    fixture.idp.forge_id_token(|_, _| "not-a-jwt".to_owned());

    assert_tokens_rejected(&fixture, "idp_error", "malformed_token").await;
}

#[tokio::test]
async fn signed_garbage_payload_is_rejected() {
    let fixture = Fixture::start().await;
    // The signature is valid, the payload is not base64url.
    fixture.idp.forge_id_token(|_, key| {
        let signing_input = format!("{}.%%%", b64(key.header().to_string()));
        format!("{signing_input}.{}", key.signature_of(&signing_input))
    });

    assert_tokens_rejected(&fixture, "idp_error", "malformed_token").await;
}

/// The flow keeps working with every key type the provider may use.
#[tokio::test]
async fn es256_and_eddsa_keys_are_accepted() {
    let fixture = Fixture::start().await;
    let ec = SigningKey::es256("ec-1");
    let ed = SigningKey::ed25519("ed-1");
    fixture
        .idp
        .publish(&[fixture.idp.key.clone(), ec.clone(), ed.clone()]);

    for key in [ec, ed] {
        fixture.idp.sign_with(Arc::clone(&key));
        assert_tokens_accepted(&fixture).await;
    }
}
