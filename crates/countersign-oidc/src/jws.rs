//! Compact JWS parsing and signature verification (RFC 7515).
//!
//! The header is parsed here instead of by `jsonwebtoken`, so that the
//! algorithm allow-list runs first and each failure gets its own error.
//! `none` and the HMAC algorithms are rejected before any key is looked up.
//! This closes the confusion attack where a token is signed with HS256 and
//! the provider's public key as the secret.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::crypto::CryptoProvider;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::jwks::{JwksCache, KeyLookupError};
use crate::verify::{TokenKind, VerifyError};

/// Maximum size of a token in compact serialization, checked before any
/// parsing. Each role adds only its name to a token, so the limit leaves
/// room for hundreds of roles (an estimate).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token whose signature checked out, with its claims not yet validated.
#[derive(Debug)]
pub(crate) struct SignedClaims {
    pub(crate) alg: Algorithm,
    /// The claims, always a JSON object.
    pub(crate) claims: Value,
}

/// The JOSE header members this crate reads.
#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Maps an `alg` header value to an allowed asymmetric algorithm.
fn allowed_algorithm(alg: &str) -> Option<Algorithm> {
    match alg {
        "RS256" => Some(Algorithm::RS256),
        "RS384" => Some(Algorithm::RS384),
        "RS512" => Some(Algorithm::RS512),
        "PS256" => Some(Algorithm::PS256),
        "PS384" => Some(Algorithm::PS384),
        "PS512" => Some(Algorithm::PS512),
        "ES256" => Some(Algorithm::ES256),
        "ES384" => Some(Algorithm::ES384),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// Checks the size, the header, the key and the signature of `token`, and
/// returns its claims.
pub(crate) async fn verify_signature(
    token: &str,
    kind: TokenKind,
    jwks: &JwksCache,
) -> Result<SignedClaims, VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::TooLarge {
            token: kind,
            size: token.len(),
            limit: MAX_TOKEN_BYTES,
        });
    }
    let malformed = |reason: &'static str| VerifyError::Malformed {
        token: kind,
        reason,
    };

    let mut parts = token.split('.');
    let (Some(header_part), Some(payload_part), Some(signature_part), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed(
            "a signed JWT has exactly three dot-separated parts",
        ));
    };

    let header_bytes = URL_SAFE_NO_PAD
        .decode(header_part)
        .map_err(|_| malformed("the header is not base64url"))?;
    let header: JoseHeader = serde_json::from_slice(&header_bytes)
        .map_err(|_| malformed("the header is not a JSON object with alg"))?;
    if header.crit.is_some() {
        return Err(malformed(
            "the header has critical extensions (crit), which are not supported",
        ));
    }
    let alg = allowed_algorithm(&header.alg).ok_or_else(|| VerifyError::UnsupportedAlgorithm {
        token: kind,
        alg: header.alg.chars().take(32).collect(),
    })?;

    URL_SAFE_NO_PAD
        .decode(signature_part)
        .map_err(|_| malformed("the signature is not base64url"))?;

    let key = jwks
        .find_key(header.kid.as_deref())
        .await
        .map_err(|error| match error {
            KeyLookupError::UnknownKey { kid } => VerifyError::UnknownKey { token: kind, kid },
            KeyLookupError::MissingKeyId { keys } => {
                VerifyError::MissingKeyId { token: kind, keys }
            }
            KeyLookupError::Unavailable(source) => VerifyError::JwksUnavailable {
                token: kind,
                source,
            },
        })?;

    let pinned_to_other_alg = key
        .alg
        .as_deref()
        .is_some_and(|key_alg| key_alg != header.alg);
    if !key.kind.fits(alg) || pinned_to_other_alg {
        return Err(VerifyError::KeyAlgorithmMismatch {
            token: kind,
            alg: header.alg,
            kid: key.kid,
        });
    }

    // `jsonwebtoken` panics when it has no crypto provider, so check first.
    if CryptoProvider::try_get_default().is_none() {
        return Err(VerifyError::CryptoProviderMissing);
    }
    let signing_input_length = header_part.len() + 1 + payload_part.len();
    let signing_input = token.get(..signing_input_length).unwrap_or_default();
    let valid = jsonwebtoken::crypto::verify(
        signature_part,
        signing_input.as_bytes(),
        &key.decoding_key,
        alg,
    )
    .unwrap_or(false);
    if !valid {
        return Err(VerifyError::BadSignature { token: kind });
    }

    let payload_bytes = URL_SAFE_NO_PAD
        .decode(payload_part)
        .map_err(|_| malformed("the payload is not base64url"))?;
    let claims: Map<String, Value> = serde_json::from_slice(&payload_bytes)
        .map_err(|_| malformed("the payload is not a JSON object"))?;

    Ok(SignedClaims {
        alg,
        claims: Value::Object(claims),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::http::http_client;
    use crate::test_support::{TestKey, TestServer, b64, jwks_of, sign_hs256};

    async fn cache_with(server: &TestServer, keys: &[&TestKey]) -> JwksCache {
        server.set_json("/certs", jwks_of(keys));
        let http = http_client(Duration::from_secs(5)).expect("client");
        JwksCache::new(http, server.url("/certs"), Duration::from_secs(60))
    }

    fn claims() -> Value {
        json!({"sub": "user", "iss": "issuer"})
    }

    async fn check(token: &str, cache: &JwksCache) -> Result<SignedClaims, VerifyError> {
        verify_signature(token, TokenKind::IdToken, cache).await
    }

    fn code_of(result: Result<SignedClaims, VerifyError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(error) => error.code(),
        }
    }

    #[tokio::test]
    async fn each_key_type_verifies() {
        let server = TestServer::start().await;
        let rsa = TestKey::rsa("rsa");
        let ec = TestKey::es256("ec");
        let ed = TestKey::ed25519("ed");
        let cache = cache_with(&server, &[&rsa, &ec, &ed]).await;

        for key in [&rsa, &ec, &ed] {
            let verified = check(&key.sign(&claims()), &cache).await;

            let verified = verified.unwrap_or_else(|error| panic!("{}: {error}", key.kid));
            assert_eq!(verified.claims["sub"], "user");
        }
    }

    #[tokio::test]
    async fn rsa_pss_verifies() {
        let server = TestServer::start().await;
        let rsa = TestKey::rsa("rsa");
        server.set_json("/certs", json!({"keys": [rsa.jwk_without_alg()]}));
        let http = http_client(Duration::from_secs(5)).expect("client");
        let cache = JwksCache::new(http, server.url("/certs"), Duration::from_secs(60));

        let token = rsa.sign_with_header(&json!({"alg": "PS256", "kid": "rsa"}), &claims());

        assert_eq!(code_of(check(&token, &cache).await), "ok");
    }

    #[tokio::test]
    async fn altered_payload_fails_signature() {
        let server = TestServer::start().await;
        let key = TestKey::es256("k");
        let cache = cache_with(&server, &[&key]).await;
        let token = key.sign(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(json!({"sub": "admin"}).to_string()),
            parts[2]
        );

        assert_eq!(code_of(check(&forged, &cache).await), "bad_signature");
    }

    #[tokio::test]
    async fn signature_from_other_key_fails() {
        let server = TestServer::start().await;
        let published = TestKey::es256("k");
        let attacker = TestKey::es256("k");
        let cache = cache_with(&server, &[&published]).await;

        assert_eq!(
            code_of(check(&attacker.sign(&claims()), &cache).await),
            "bad_signature"
        );
    }

    #[tokio::test]
    async fn alg_none_is_rejected() {
        let server = TestServer::start().await;
        let key = TestKey::es256("k");
        let cache = cache_with(&server, &[&key]).await;
        let token = format!(
            "{}.{}.",
            b64(json!({"alg": "none", "kid": "k"}).to_string()),
            b64(claims().to_string())
        );

        let result = check(&token, &cache).await;

        assert_eq!(code_of(result), "unsupported_algorithm");
        assert_eq!(server.hits("/certs"), 0);
    }

    #[tokio::test]
    async fn hs256_signed_with_public_key_is_rejected() {
        let server = TestServer::start().await;
        let key = TestKey::rsa("k");
        let cache = cache_with(&server, &[&key]).await;
        let token = sign_hs256(&key.public_key_bytes(), "k", &claims());

        let result = check(&token, &cache).await;

        assert_eq!(code_of(result), "unsupported_algorithm");
        assert_eq!(server.hits("/certs"), 0);
    }

    #[tokio::test]
    async fn alg_not_matching_key_is_rejected() {
        let server = TestServer::start().await;
        let rsa = TestKey::rsa("rsa");
        let cache = cache_with(&server, &[&rsa]).await;
        let rs384 = rsa.sign_with_header(&json!({"alg": "RS384", "kid": "rsa"}), &claims());
        let claims_es256 = rsa.sign_with_header(&json!({"alg": "ES256", "kid": "rsa"}), &claims());

        assert_eq!(
            code_of(check(&rs384, &cache).await),
            "key_algorithm_mismatch"
        );
        assert_eq!(
            code_of(check(&claims_es256, &cache).await),
            "key_algorithm_mismatch"
        );
    }

    #[tokio::test]
    async fn malformed_tokens_are_rejected() {
        let server = TestServer::start().await;
        let key = TestKey::es256("k");
        let cache = cache_with(&server, &[&key]).await;
        let valid = key.sign(&claims());
        let crit_header = json!({"alg": "ES256", "kid": "k", "crit": ["exp"]});
        let cases = [
            String::new(),
            "abc".to_owned(),
            "a.b".to_owned(),
            format!("{valid}.extra.parts"),
            format!("!!.{}", valid.split('.').nth(1).unwrap_or_default()) + ".sig",
            format!("{}.e30.sig", b64("not json")),
            key.sign_with_header(&crit_header, &claims()),
            format!("{}=", valid),
        ];

        for token in cases {
            assert_eq!(
                code_of(check(&token, &cache).await),
                "malformed_token",
                "{token}"
            );
        }
    }

    #[tokio::test]
    async fn payload_must_be_an_object() {
        let server = TestServer::start().await;
        let key = TestKey::es256("k");
        let cache = cache_with(&server, &[&key]).await;

        let token = key.sign(&json!(["sub", "user"]));

        assert_eq!(code_of(check(&token, &cache).await), "malformed_token");
    }

    #[tokio::test]
    async fn oversized_token_is_rejected_before_parsing() {
        let server = TestServer::start().await;
        let key = TestKey::es256("k");
        let cache = cache_with(&server, &[&key]).await;
        let token = key.sign(&json!({"sub": "user", "padding": "x".repeat(MAX_TOKEN_BYTES)}));

        assert_eq!(code_of(check(&token, &cache).await), "token_too_large");
        assert_eq!(server.hits("/certs"), 0);
    }
}
