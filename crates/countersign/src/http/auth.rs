//! API key authentication: `Authorization: Bearer <key>`.
//!
//! Keys are configured by their SHA-256, and the digest of the presented key
//! is compared with every configured digest in constant time, so neither the
//! key nor the position of a match leaks through timing.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::AppState;
use super::problem::Problem;
use crate::codes::ErrorCode;
use crate::config::ApiKey;

/// The authenticated caller: the name of the API key it presented.
#[derive(Clone, Debug)]
pub struct ApiClient {
    pub name: String,
}

impl FromRequestParts<AppState> for ApiClient {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let presented = bearer_token(parts).ok_or_else(|| {
            Problem::new(
                ErrorCode::Unauthorized,
                "send the API key as `Authorization: Bearer <key>`",
            )
        })?;

        match find_key(&state.settings.api_keys, presented) {
            Some(key) => {
                tracing::Span::current().record("api_key", key.name.as_str());
                Ok(ApiClient {
                    name: key.name.clone(),
                })
            }
            None => Err(Problem::new(
                ErrorCode::Unauthorized,
                "the API key is not valid",
            )),
        }
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Returns the configured key whose digest matches, checking every key.
pub fn find_key<'a>(keys: &'a [ApiKey], presented: &str) -> Option<&'a ApiKey> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = subtle::CtOption::new(0u32, subtle::Choice::from(0));
    for (index, key) in keys.iter().enumerate() {
        let matches = key.sha256.ct_eq(&digest);
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let candidate = subtle::CtOption::new(index, matches);
        found = subtle::CtOption::conditional_select(&found, &candidate, matches);
    }
    let index: Option<u32> = found.into();
    keys.get(usize::try_from(index?).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, secret: &str) -> ApiKey {
        ApiKey {
            name: name.to_owned(),
            sha256: Sha256::digest(secret.as_bytes()).into(),
        }
    }

    #[test]
    fn find_key_matches_by_digest() {
        let keys = [key("shop", "shop-key"), key("till", "till-key")];

        assert_eq!(
            find_key(&keys, "till-key").map(|k| k.name.as_str()),
            Some("till")
        );
        assert_eq!(
            find_key(&keys, "shop-key").map(|k| k.name.as_str()),
            Some("shop")
        );
        assert!(find_key(&keys, "other-key").is_none());
        assert!(find_key(&[], "shop-key").is_none());
    }
}
