//! Verification tests: tokens signed with keys generated here, the JWKS
//! served from a local test server, and a fixed clock.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;
use crate::clock::FixedClock;
use crate::secret::RawToken;
use crate::test_support::{
    NOW, TestKey, TestServer, b64, jwks_of, relying_party_with_clock, sign_hs256,
};

const NONCE: &str = "nonce-of-this-transaction";
const SUBJECT: &str = "manager-subject";
const JWKS_PATH: &str = "/realms/demo/certs";

struct Fixture {
    server: TestServer,
    key: TestKey,
    clock: Arc<FixedClock>,
    rp: RelyingParty,
}

impl Fixture {
    async fn start() -> Self {
        Self::with_key(TestKey::rsa("rsa-1")).await
    }

    async fn with_key(key: TestKey) -> Self {
        let server = TestServer::start().await;
        server.set_json(JWKS_PATH, jwks_of(&[&key]));
        let clock = Arc::new(FixedClock::new(NOW));
        let rp = relying_party_with_clock(
            &server.url("/realms/demo"),
            clock.clone(),
            Duration::from_secs(60),
        );
        Self {
            server,
            key,
            clock,
            rp,
        }
    }

    fn issuer(&self) -> String {
        self.server.url("/realms/demo").to_string()
    }

    /// ID token claims as Keycloak 26 sends them after a password sign-in.
    fn id_claims(&self) -> Value {
        json!({
            "iss": self.issuer(),
            "aud": "countersign",
            "azp": "countersign",
            "sub": SUBJECT,
            "exp": NOW + 300,
            "iat": NOW - 2,
            "auth_time": NOW - 5,
            "nonce": NONCE,
            "acr": "1",
            "sid": "session-1",
            "typ": "ID",
            "name": "Maria Manager",
            "preferred_username": "manager",
            "email": "manager@example.test",
        })
    }

    /// Access token claims as Keycloak 26 sends them with an audience mapper.
    fn access_claims(&self) -> Value {
        json!({
            "iss": self.issuer(),
            "aud": ["countersign", "account"],
            "azp": "countersign",
            "sub": SUBJECT,
            "exp": NOW + 60,
            "iat": NOW - 2,
            "typ": "Bearer",
            "realm_access": {"roles": ["MANAGER", "offline_access"]},
            "resource_access": {
                "countersign": {"roles": ["approver"]},
                "account": {"roles": ["manage-account"]},
            },
        })
    }

    async fn verify(
        &self,
        id_claims: &Value,
        access_claims: &Value,
    ) -> Result<VerifiedLogin, VerifyError> {
        self.verify_tokens(self.key.sign(id_claims), self.key.sign(access_claims))
            .await
    }

    async fn verify_tokens(
        &self,
        id_token: String,
        access_token: String,
    ) -> Result<VerifiedLogin, VerifyError> {
        let tokens = TokenSet {
            id_token: RawToken::from_stored(id_token),
            access_token: RawToken::from_stored(access_token),
        };
        self.rp.verify(&tokens, &expectations()).await
    }

    /// Verifies the default tokens with one ID token claim changed (`Value::Null` removes it).
    async fn verify_id_with(
        &self,
        claim: &str,
        value: Value,
    ) -> Result<VerifiedLogin, VerifyError> {
        let id_claims = with_claim(self.id_claims(), claim, value);
        self.verify(&id_claims, &self.access_claims()).await
    }

    /// Verifies the default tokens with one access token claim changed (`Value::Null` removes it).
    async fn verify_access_with(
        &self,
        claim: &str,
        value: Value,
    ) -> Result<VerifiedLogin, VerifyError> {
        let access_claims = with_claim(self.access_claims(), claim, value);
        self.verify(&self.id_claims(), &access_claims).await
    }
}

fn expectations() -> Expectations {
    Expectations {
        nonce: Nonce::from_stored(NONCE.into()),
        authenticated_after: NOW - 60,
    }
}

fn with_claim(mut claims: Value, claim: &str, value: Value) -> Value {
    let object = claims.as_object_mut().expect("claims object");
    if value.is_null() {
        object.remove(claim);
    } else {
        object.insert(claim.into(), value);
    }
    claims
}

fn code(result: &Result<VerifiedLogin, VerifyError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(error) => error.code(),
    }
}

fn token_of(result: &Result<VerifiedLogin, VerifyError>) -> Option<TokenKind> {
    match result {
        Err(
            VerifyError::WrongIssuer { token, .. }
            | VerifyError::WrongAudience { token }
            | VerifyError::Expired { token, .. }
            | VerifyError::BadSignature { token }
            | VerifyError::MissingSubject { token }
            | VerifyError::UnsupportedAlgorithm { token, .. },
        ) => Some(*token),
        _ => None,
    }
}

#[tokio::test]
async fn valid_login_verifies() {
    let fixture = Fixture::start().await;

    let login = fixture
        .verify(&fixture.id_claims(), &fixture.access_claims())
        .await
        .expect("verified login");

    assert_eq!(login.subject, SUBJECT);
    assert_eq!(login.name.as_deref(), Some("Maria Manager"));
    assert_eq!(login.preferred_username.as_deref(), Some("manager"));
    assert_eq!(login.email.as_deref(), Some("manager@example.test"));
    assert_eq!(login.auth_time, NOW - 5);
    assert_eq!(login.acr.as_deref(), Some("1"));
    assert_eq!(login.session_id.as_deref(), Some("session-1"));
    let roles: Vec<&str> = login.roles.iter().map(String::as_str).collect();
    assert_eq!(roles, ["MANAGER", "approver", "offline_access"]);
}

#[tokio::test]
async fn each_signature_algorithm_verifies() {
    for key in [TestKey::es256("ec-1"), TestKey::ed25519("ed-1")] {
        let fixture = Fixture::with_key(key).await;

        let result = fixture
            .verify(&fixture.id_claims(), &fixture.access_claims())
            .await;

        assert_eq!(code(&result), "ok", "{}", fixture.key.kid);
    }
}

#[tokio::test]
async fn bad_signature_is_rejected() {
    let fixture = Fixture::start().await;
    let impostor = TestKey::es256("rsa-1");
    fixture.server.set_json(JWKS_PATH, jwks_of(&[&fixture.key]));

    let forged_id = impostor.sign_with_header(
        &json!({"alg": "RS256", "kid": "rsa-1"}),
        &fixture.id_claims(),
    );
    let id_result = fixture
        .verify_tokens(forged_id, fixture.key.sign(&fixture.access_claims()))
        .await;

    let id_token = fixture.key.sign(&fixture.id_claims());
    let mut parts: Vec<String> = fixture
        .key
        .sign(&fixture.access_claims())
        .split('.')
        .map(str::to_owned)
        .collect();
    parts[1] = b64(with_claim(
        fixture.access_claims(),
        "realm_access",
        json!({"roles": ["ADMIN"]}),
    )
    .to_string());
    let access_result = fixture.verify_tokens(id_token, parts.join(".")).await;

    assert_eq!(code(&id_result), "bad_signature");
    assert_eq!(token_of(&id_result), Some(TokenKind::IdToken));
    assert_eq!(code(&access_result), "bad_signature");
    assert_eq!(token_of(&access_result), Some(TokenKind::AccessToken));
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let fixture = Fixture::start().await;
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"}).to_string()),
        b64(fixture.id_claims().to_string())
    );

    let result = fixture
        .verify_tokens(unsigned, fixture.key.sign(&fixture.access_claims()))
        .await;

    assert_eq!(code(&result), "unsupported_algorithm");
    assert_eq!(token_of(&result), Some(TokenKind::IdToken));
}

#[tokio::test]
async fn hs256_with_public_key_is_rejected() {
    let fixture = Fixture::start().await;
    let confused = sign_hs256(
        &fixture.key.public_key_bytes(),
        "rsa-1",
        &fixture.id_claims(),
    );
    let confused_access = sign_hs256(
        &fixture.key.public_key_bytes(),
        "rsa-1",
        &fixture.access_claims(),
    );

    let id_result = fixture
        .verify_tokens(confused, fixture.key.sign(&fixture.access_claims()))
        .await;
    let access_result = fixture
        .verify_tokens(fixture.key.sign(&fixture.id_claims()), confused_access)
        .await;

    assert_eq!(code(&id_result), "unsupported_algorithm");
    assert_eq!(code(&access_result), "unsupported_algorithm");
    assert_eq!(token_of(&access_result), Some(TokenKind::AccessToken));
}

#[tokio::test]
async fn wrong_issuer_is_rejected() {
    let fixture = Fixture::start().await;

    let other_host = fixture
        .verify_id_with(
            "iss",
            json!("http://localhost:18080/realms/countersign-demo"),
        )
        .await;
    let trailing_slash = fixture
        .verify_id_with("iss", json!(format!("{}/", fixture.issuer())))
        .await;
    let missing = fixture.verify_id_with("iss", Value::Null).await;
    let access = fixture
        .verify_access_with(
            "iss",
            json!("http://localhost:18080/realms/countersign-demo"),
        )
        .await;

    assert_eq!(code(&other_host), "wrong_issuer");
    assert_eq!(code(&trailing_slash), "wrong_issuer");
    assert_eq!(code(&missing), "wrong_issuer");
    assert_eq!(code(&access), "wrong_issuer");
    assert_eq!(token_of(&access), Some(TokenKind::AccessToken));
}

#[tokio::test]
async fn wrong_audience_is_rejected() {
    let fixture = Fixture::start().await;

    let other_client = fixture.verify_id_with("aud", json!("demo-shop")).await;
    let other_list = fixture
        .verify_id_with("aud", json!(["demo-shop", "account"]))
        .await;
    let missing = fixture.verify_id_with("aud", Value::Null).await;
    let not_strings = fixture.verify_id_with("aud", json!([1, 2])).await;

    assert_eq!(code(&other_client), "wrong_audience");
    assert_eq!(code(&other_list), "wrong_audience");
    assert_eq!(code(&missing), "wrong_audience");
    assert_eq!(code(&not_strings), "invalid_claim");
}

#[tokio::test]
async fn azp_rules_for_several_audiences() {
    let fixture = Fixture::start().await;
    let several = with_claim(
        fixture.id_claims(),
        "aud",
        json!(["countersign", "account"]),
    );

    let missing_azp = fixture
        .verify(
            &with_claim(several.clone(), "azp", Value::Null),
            &fixture.access_claims(),
        )
        .await;
    let wrong_azp = fixture
        .verify(
            &with_claim(several.clone(), "azp", json!("demo-shop")),
            &fixture.access_claims(),
        )
        .await;
    let right_azp = fixture.verify(&several, &fixture.access_claims()).await;
    let single_without_azp = fixture.verify_id_with("azp", Value::Null).await;
    let single_wrong_azp = fixture.verify_id_with("azp", json!("demo-shop")).await;

    assert_eq!(code(&missing_azp), "wrong_authorized_party");
    assert_eq!(code(&wrong_azp), "wrong_authorized_party");
    assert_eq!(code(&right_azp), "ok");
    assert_eq!(code(&single_without_azp), "ok");
    assert_eq!(code(&single_wrong_azp), "wrong_authorized_party");
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let fixture = Fixture::start().await;

    let id_expired = fixture.verify_id_with("exp", json!(NOW - 31)).await;
    let id_within_leeway = fixture.verify_id_with("exp", json!(NOW - 29)).await;
    let id_without_exp = fixture.verify_id_with("exp", Value::Null).await;
    let access_expired = fixture.verify_access_with("exp", json!(NOW - 31)).await;

    assert_eq!(code(&id_expired), "expired");
    assert_eq!(code(&id_within_leeway), "ok");
    assert_eq!(code(&id_without_exp), "missing_claim");
    assert_eq!(code(&access_expired), "expired");
    assert_eq!(token_of(&access_expired), Some(TokenKind::AccessToken));
}

#[tokio::test]
async fn clock_moving_past_exp_expires_tokens() {
    let fixture = Fixture::start().await;
    let id_token = fixture.key.sign(&fixture.id_claims());
    let access_token = fixture.key.sign(&fixture.access_claims());

    let before = fixture
        .verify_tokens(id_token.clone(), access_token.clone())
        .await;
    fixture.clock.advance(60 + 30);
    let after = fixture.verify_tokens(id_token, access_token).await;

    assert_eq!(code(&before), "ok");
    assert_eq!(code(&after), "expired");
    assert_eq!(token_of(&after), Some(TokenKind::AccessToken));
}

#[tokio::test]
async fn future_iat_or_nbf_is_rejected() {
    let fixture = Fixture::start().await;

    let future_iat = fixture.verify_id_with("iat", json!(NOW + 31)).await;
    let iat_within_leeway = fixture.verify_id_with("iat", json!(NOW + 29)).await;
    let missing_iat = fixture.verify_id_with("iat", Value::Null).await;
    let future_nbf = fixture.verify_id_with("nbf", json!(NOW + 31)).await;
    let access_future_nbf = fixture.verify_access_with("nbf", json!(NOW + 31)).await;
    let access_without_iat = fixture.verify_access_with("iat", Value::Null).await;
    let string_iat = fixture.verify_id_with("iat", json!("yesterday")).await;
    let fractional_iat = fixture
        .verify_id_with("iat", json!((NOW as f64) - 1.5))
        .await;

    assert_eq!(code(&future_iat), "not_yet_valid");
    assert_eq!(code(&iat_within_leeway), "ok");
    assert_eq!(code(&missing_iat), "missing_claim");
    assert_eq!(code(&future_nbf), "not_yet_valid");
    assert_eq!(code(&access_future_nbf), "not_yet_valid");
    assert_eq!(code(&access_without_iat), "ok");
    assert_eq!(code(&string_iat), "invalid_claim");
    assert_eq!(code(&fractional_iat), "ok");
}

#[tokio::test]
async fn missing_subject_is_rejected() {
    let fixture = Fixture::start().await;

    let missing = fixture.verify_id_with("sub", Value::Null).await;
    let empty = fixture.verify_id_with("sub", json!("")).await;
    let access_missing = fixture.verify_access_with("sub", Value::Null).await;

    assert_eq!(code(&missing), "missing_subject");
    assert_eq!(code(&empty), "missing_subject");
    assert_eq!(code(&access_missing), "missing_subject");
    assert_eq!(token_of(&access_missing), Some(TokenKind::AccessToken));
}

#[tokio::test]
async fn nonce_mismatch_is_rejected() {
    let fixture = Fixture::start().await;

    let other = fixture
        .verify_id_with("nonce", json!("nonce-of-another-transaction"))
        .await;
    let missing = fixture.verify_id_with("nonce", Value::Null).await;
    let not_string = fixture.verify_id_with("nonce", json!(42)).await;

    assert_eq!(code(&other), "nonce_mismatch");
    assert_eq!(code(&missing), "nonce_mismatch");
    assert_eq!(code(&not_string), "nonce_mismatch");
}

#[tokio::test]
async fn stale_auth_time_is_rejected() {
    let fixture = Fixture::start().await;
    let started = expectations().authenticated_after;

    let stale = fixture
        .verify_id_with("auth_time", json!(started - 31))
        .await;
    let within_leeway = fixture
        .verify_id_with("auth_time", json!(started - 29))
        .await;

    assert_eq!(code(&stale), "stale_auth_time");
    assert!(stale.as_ref().is_err_and(VerifyError::is_not_fresh));
    assert_eq!(code(&within_leeway), "ok");
}

#[tokio::test]
async fn missing_auth_time_is_rejected() {
    let fixture = Fixture::start().await;

    let result = fixture.verify_id_with("auth_time", Value::Null).await;

    assert_eq!(code(&result), "missing_auth_time");
}

#[tokio::test]
async fn acr_zero_is_rejected() {
    let fixture = Fixture::start().await;

    let cookie = fixture.verify_id_with("acr", json!("0")).await;
    let numeric_cookie = fixture.verify_id_with("acr", json!(0)).await;
    let without_acr = fixture.verify_id_with("acr", Value::Null).await;

    assert_eq!(code(&cookie), "cookie_login");
    assert_eq!(code(&numeric_cookie), "cookie_login");
    assert_eq!(code(&without_acr), "ok");
}

#[tokio::test]
async fn missing_roles_claims_give_no_roles() {
    let fixture = Fixture::start().await;
    let access = with_claim(
        with_claim(fixture.access_claims(), "realm_access", Value::Null),
        "resource_access",
        Value::Null,
    );

    let login = fixture
        .verify(&fixture.id_claims(), &access)
        .await
        .expect("login without roles still verifies");

    assert!(login.roles.is_empty(), "{:?}", login.roles);
    assert_eq!(login.subject, SUBJECT);
}

#[tokio::test]
async fn roles_combine_both_tokens() {
    let fixture = Fixture::start().await;
    let id_claims = with_claim(fixture.id_claims(), "groups", json!(["/MANAGER"]));
    let access = with_claim(
        fixture.access_claims(),
        "realm_access",
        json!({"roles": ["CASHIER"]}),
    );

    let login = fixture
        .verify(&id_claims, &access)
        .await
        .expect("verified login");

    let roles: Vec<&str> = login.roles.iter().map(String::as_str).collect();
    assert_eq!(roles, ["/MANAGER", "CASHIER", "approver"]);
}

#[tokio::test]
async fn access_token_must_be_issued_to_client() {
    let fixture = Fixture::start().await;
    let foreign = with_claim(
        with_claim(fixture.access_claims(), "azp", json!("demo-shop")),
        "aud",
        json!("account"),
    );
    let by_aud_only = with_claim(fixture.access_claims(), "azp", Value::Null);
    let by_client_id = with_claim(
        with_claim(
            with_claim(fixture.access_claims(), "azp", Value::Null),
            "aud",
            json!("https://api.example"),
        ),
        "client_id",
        json!("countersign"),
    );

    let foreign_result = fixture.verify(&fixture.id_claims(), &foreign).await;
    let aud_result = fixture.verify(&fixture.id_claims(), &by_aud_only).await;
    let client_id_result = fixture.verify(&fixture.id_claims(), &by_client_id).await;

    assert_eq!(code(&foreign_result), "wrong_audience");
    assert_eq!(token_of(&foreign_result), Some(TokenKind::AccessToken));
    assert_eq!(code(&aud_result), "ok");
    assert_eq!(code(&client_id_result), "ok");
}

#[tokio::test]
async fn access_token_of_other_user_is_rejected() {
    let fixture = Fixture::start().await;

    let result = fixture
        .verify_access_with("sub", json!("cashier-subject"))
        .await;

    assert_eq!(code(&result), "subject_mismatch");
}

#[tokio::test]
async fn at_hash_is_checked_when_present() {
    let fixture = Fixture::start().await;
    let access_token = fixture.key.sign(&fixture.access_claims());
    let digest = Sha256::digest(access_token.as_bytes());
    let right_hash = b64(&digest[..16]);

    let matching = with_claim(fixture.id_claims(), "at_hash", json!(right_hash));
    let other = with_claim(fixture.id_claims(), "at_hash", json!(b64([0u8; 16])));
    let matching_result = fixture
        .verify_tokens(fixture.key.sign(&matching), access_token.clone())
        .await;
    let other_result = fixture
        .verify_tokens(fixture.key.sign(&other), access_token)
        .await;

    assert_eq!(code(&matching_result), "ok");
    assert_eq!(code(&other_result), "at_hash_mismatch");
}

#[tokio::test]
async fn opaque_access_token_is_rejected() {
    let fixture = Fixture::start().await;

    let result = fixture
        .verify_tokens(
            fixture.key.sign(&fixture.id_claims()),
            "opaque-access-token".into(),
        )
        .await;

    assert_eq!(code(&result), "malformed_token");
}

#[tokio::test]
async fn unknown_kid_refetches_rotated_jwks() {
    let fixture = Fixture::start().await;
    let rotated = TestKey::es256("rotated");
    let unpublished = TestKey::es256("unpublished");
    fixture.rp.jwks().refresh().await.expect("initial JWKS");
    fixture
        .server
        .set_json(JWKS_PATH, jwks_of(&[&fixture.key, &rotated]));

    let after_rotation = fixture
        .verify_tokens(
            rotated.sign(&fixture.id_claims()),
            rotated.sign(&fixture.access_claims()),
        )
        .await;

    assert_eq!(code(&after_rotation), "ok");
    assert_eq!(fixture.server.hits(JWKS_PATH), 2);

    fixture
        .server
        .set_json(JWKS_PATH, jwks_of(&[&fixture.key, &rotated, &unpublished]));
    let within_interval = fixture
        .verify_tokens(
            unpublished.sign(&fixture.id_claims()),
            unpublished.sign(&fixture.access_claims()),
        )
        .await;

    assert_eq!(code(&within_interval), "unknown_key");
    assert_eq!(fixture.server.hits(JWKS_PATH), 2);
}

#[tokio::test]
async fn token_without_kid_needs_single_key() {
    let fixture = Fixture::with_key(TestKey::es256("only")).await;
    let header = json!({"alg": "ES256", "typ": "JWT"});
    let id_token = fixture.key.sign_with_header(&header, &fixture.id_claims());
    let access_token = fixture
        .key
        .sign_with_header(&header, &fixture.access_claims());

    let single = fixture
        .verify_tokens(id_token.clone(), access_token.clone())
        .await;
    let second = TestKey::es256("second");
    fixture
        .server
        .set_json(JWKS_PATH, jwks_of(&[&fixture.key, &second]));
    fixture.rp.jwks().refresh().await.expect("refresh");
    let several = fixture.verify_tokens(id_token, access_token).await;

    assert_eq!(code(&single), "ok");
    assert_eq!(code(&several), "missing_key_id");
}

#[tokio::test]
async fn jwks_outage_reports_unavailable() {
    let fixture = Fixture::start().await;
    fixture.server.set_json_status(JWKS_PATH, 503, json!({}));

    let result = fixture
        .verify(&fixture.id_claims(), &fixture.access_claims())
        .await;

    assert_eq!(code(&result), "jwks_unavailable");
}

#[tokio::test]
async fn error_messages_contain_no_token() {
    let fixture = Fixture::start().await;
    let id_token = fixture
        .key
        .sign(&with_claim(fixture.id_claims(), "nonce", json!("other")));
    let signature = id_token.rsplit('.').next().unwrap_or_default().to_owned();

    let result = fixture
        .verify_tokens(id_token.clone(), fixture.key.sign(&fixture.access_claims()))
        .await;

    let error = result.expect_err("nonce mismatch");
    let rendered = format!("{error} {error:?}");
    assert!(!rendered.contains(&signature), "{rendered}");
    assert!(!rendered.contains(&id_token), "{rendered}");
}
