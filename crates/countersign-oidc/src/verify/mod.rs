//! ID token and access token validation (OpenID Connect Core 1.0,
//! section 3.1.3.7; RFC 9068, section 4 for JWT access tokens).
//!
//! Both tokens come straight from this relying party's own code exchange,
//! never from a browser. Verification still checks everything, because the
//! approval rests on it: the signature against the provider's JWKS, the
//! issuer, the audience, the validity window, the nonce and a fresh
//! `auth_time`. Roles are read from both tokens.
//!
//! NOTE: an opaque (non-JWT) access token fails with `malformed_token`,
//! because roles and the subject check need its claims. Providers that
//! issue opaque tokens need a userinfo or introspection call, which this
//! crate does not make.

mod claims;
mod error;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};

use self::claims::ClaimChecks;
pub use self::error::{TokenKind, VerifyError};
use crate::client::RelyingParty;
use crate::jws::verify_signature;
use crate::roles::extract_roles_at;
use crate::secret::{Nonce, constant_time_eq};
use crate::token::TokenSet;

/// The values of the login transaction that the ID token must match.
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The nonce sent in the authorization request.
    pub nonce: Nonce,
    /// The start of the login transaction in Unix seconds. `auth_time` must
    /// not be earlier than this minus the leeway.
    pub authenticated_after: i64,
}

/// The identity and roles of a user whose sign-in passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedLogin {
    /// The provider's stable user id (`sub`).
    pub subject: String,
    /// The display name (`name`), from the ID token or else the access token.
    pub name: Option<String>,
    /// The user name (`preferred_username`), from the ID token or else the access token.
    pub preferred_username: Option<String>,
    /// The e-mail address (`email`), from the ID token or else the access token.
    pub email: Option<String>,
    /// When the user entered credentials, in Unix seconds.
    pub auth_time: i64,
    /// The authentication context class (`acr`), if sent.
    pub acr: Option<String>,
    /// The union of the roles found in the access token and the ID token.
    pub roles: BTreeSet<String>,
    /// The provider's session id (`sid`), if sent.
    pub session_id: Option<String>,
}

impl RelyingParty {
    /// Verifies the ID token and the access token of a code exchange and
    /// returns who signed in, with their roles.
    pub async fn verify(
        &self,
        tokens: &TokenSet,
        expected: &Expectations,
    ) -> Result<VerifiedLogin, VerifyError> {
        let checks = ClaimChecks {
            issuer: &self.metadata.issuer,
            client_id: &self.client.client_id,
            now: self.clock.now_unix(),
            leeway: self.client.leeway_seconds.max(0),
        };

        let id_token =
            verify_signature(tokens.id_token.secret(), TokenKind::IdToken, &self.jwks).await?;
        let identity = checks.id_token(&id_token.claims, expected)?;

        let access_token = verify_signature(
            tokens.access_token.secret(),
            TokenKind::AccessToken,
            &self.jwks,
        )
        .await?;
        checks.access_token(&access_token.claims, &identity.subject)?;
        check_access_token_hash(&id_token.claims, id_token.alg, tokens.access_token.secret())?;

        let mut roles = extract_roles_at(&access_token.claims, &self.role_paths);
        roles.extend(extract_roles_at(&id_token.claims, &self.role_paths));

        let profile = |claim: &str| {
            string_claim(&id_token.claims, claim)
                .or_else(|| string_claim(&access_token.claims, claim))
        };
        Ok(VerifiedLogin {
            name: profile("name"),
            preferred_username: profile("preferred_username"),
            email: profile("email"),
            subject: identity.subject,
            auth_time: identity.auth_time,
            acr: identity.acr,
            roles,
            session_id: string_claim(&id_token.claims, "sid"),
        })
    }
}

fn string_claim(claims: &Value, name: &str) -> Option<String> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// Checks `at_hash` when the ID token has one. It is the left half of the
/// hash of the access token, with the hash of the signature algorithm
/// (SHA-512 for Ed25519).
fn check_access_token_hash(
    id_claims: &Value,
    alg: Algorithm,
    access_token: &str,
) -> Result<(), VerifyError> {
    let Some(claimed) = id_claims.get("at_hash") else {
        return Ok(());
    };
    let claimed = claimed.as_str().ok_or(VerifyError::InvalidClaim {
        token: TokenKind::IdToken,
        claim: "at_hash",
    })?;

    let digest: Vec<u8> = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 => {
            Sha384::digest(access_token).to_vec()
        }
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => {
            Sha512::digest(access_token).to_vec()
        }
        _ => Sha256::digest(access_token).to_vec(),
    };
    let left_half = digest.get(..digest.len() / 2).unwrap_or_default();
    let expected = URL_SAFE_NO_PAD.encode(left_half);

    if constant_time_eq(expected.as_bytes(), claimed.as_bytes()) {
        Ok(())
    } else {
        Err(VerifyError::AccessTokenHashMismatch)
    }
}
