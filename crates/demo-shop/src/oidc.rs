//! The shop's own OpenID Connect login: discovery, the authorization code flow
//! with PKCE S256, the refresh-token grant and the ID token claim checks.
//!
//! The shop receives every token directly from the token endpoint, on a
//! connection that it opened itself and authenticated with the client secret.
//! OpenID Connect Core 1.0, section 3.1.3.7, then allows TLS server validation
//! in place of checking the ID token's signature. This module therefore checks
//! the claims that the shop relies on (`iss`, `aud`, `azp`, `exp`, `nonce`) and
//! not the signature.
//!
//! NOTE: the demo reaches Keycloak over plain HTTP on loopback, where no TLS
//! validation happens. Outside a demo the issuer must be an https URL.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use tokio::sync::OnceCell;
use url::Url;

/// Accepted clock difference between the shop and the identity provider.
const CLOCK_LEEWAY_SECONDS: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("fetching the OpenID Connect discovery document from {url} failed: {source}")]
    Discovery { url: String, source: reqwest::Error },
    #[error("the discovery document names issuer {found}, expected {expected}")]
    IssuerMismatch { expected: String, found: String },
    #[error("the token endpoint request failed: {0}")]
    TokenRequest(reqwest::Error),
    #[error("the token endpoint rejected the request with HTTP {status}: {error}")]
    TokenEndpoint { status: u16, error: String },
    #[error("the token response has no {0}")]
    MissingToken(&'static str),
    #[error("invalid token: {0}")]
    InvalidToken(String),
}

/// The parts of the provider's discovery document that the shop uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub end_session_endpoint: Option<Url>,
}

/// Token endpoint response. It has no `Debug` so that tokens cannot end up in a log.
#[derive(Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: String,
    error_description: Option<String>,
}

/// Claims of the ID token that the shop relies on.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub azp: Option<String>,
    pub exp: i64,
    pub nonce: Option<String>,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

/// The `aud` claim, which is a single string or an array (OpenID Connect Core 1.0, section 2).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, client_id: &str) -> bool {
        match self {
            Self::One(audience) => audience == client_id,
            Self::Many(audiences) => audiences.iter().any(|audience| audience == client_id),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Many(audiences) => audiences.len(),
        }
    }
}

/// Claims of an access token that `/whoami?refresh=1` reads.
#[derive(Debug, Deserialize)]
pub struct AccessTokenClaims {
    pub sub: Option<String>,
    pub preferred_username: Option<String>,
}

/// Random values of one login attempt, kept in the session until the callback.
#[derive(Clone)]
pub struct LoginTransaction {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

impl LoginTransaction {
    pub fn generate() -> Self {
        Self {
            state: random_token(),
            nonce: random_token(),
            pkce_verifier: random_token(),
        }
    }
}

impl std::fmt::Debug for LoginTransaction {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("LoginTransaction(<redacted>)")
    }
}

/// Returns 256 random bits, base64url-encoded (43 characters, also a valid PKCE verifier).
pub fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Computes the S256 code challenge of a PKCE verifier (RFC 7636, section 4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub struct OidcClient {
    http: reqwest::Client,
    issuer: Url,
    client_id: String,
    client_secret: SecretString,
    redirect_uri: Url,
    metadata: OnceCell<ProviderMetadata>,
}

impl OidcClient {
    pub fn new(
        http: reqwest::Client,
        issuer: Url,
        client_id: String,
        client_secret: SecretString,
        redirect_uri: Url,
    ) -> Self {
        Self {
            http,
            issuer,
            client_id,
            client_secret,
            redirect_uri,
            metadata: OnceCell::new(),
        }
    }

    /// Returns the discovery document, fetching it on first use. A failed fetch
    /// is not cached, so the shop can start before the identity provider.
    pub async fn metadata(&self) -> Result<&ProviderMetadata, OidcError> {
        self.metadata.get_or_try_init(|| self.discover()).await
    }

    async fn discover(&self) -> Result<ProviderMetadata, OidcError> {
        let issuer = self.issuer.as_str().trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let discovery_error = |source| OidcError::Discovery {
            url: url.clone(),
            source,
        };

        let metadata: ProviderMetadata = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(discovery_error)?
            .json()
            .await
            .map_err(discovery_error)?;

        if metadata.issuer != issuer {
            return Err(OidcError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: metadata.issuer,
            });
        }
        tracing::info!(issuer, "fetched the OpenID Connect discovery document");
        Ok(metadata)
    }

    pub async fn authorization_url(&self, login: &LoginTransaction) -> Result<Url, OidcError> {
        let mut url = self.metadata().await?.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", self.redirect_uri.as_str())
            .append_pair("scope", "openid profile")
            .append_pair("state", &login.state)
            .append_pair("nonce", &login.nonce)
            .append_pair("code_challenge", &pkce_challenge(&login.pkce_verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url)
    }

    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<TokenResponse, OidcError> {
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", pkce_verifier),
        ])
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, OidcError> {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<TokenResponse, OidcError> {
        let token_endpoint = self.metadata().await?.token_endpoint.clone();

        // client_secret_basic: RFC 6749, section 2.3.1 form-encodes both parts first.
        let client_id: String =
            url::form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
        let client_secret: String =
            url::form_urlencoded::byte_serialize(self.client_secret.expose_secret().as_bytes())
                .collect();

        let response = self
            .http
            .post(token_endpoint)
            .basic_auth(client_id, Some(client_secret))
            .form(form)
            .send()
            .await
            .map_err(OidcError::TokenRequest)?;

        let status = response.status();
        if !status.is_success() {
            let error = match response.json::<TokenErrorResponse>().await {
                Ok(body) => match body.error_description {
                    Some(description) => format!("{} ({description})", body.error),
                    None => body.error,
                },
                Err(_) => "no OAuth error body".to_owned(),
            };
            return Err(OidcError::TokenEndpoint {
                status: status.as_u16(),
                error,
            });
        }
        response.json().await.map_err(OidcError::TokenRequest)
    }

    /// Checks the ID token claims of a token response from [`Self::exchange_code`].
    pub async fn verify_id_token(
        &self,
        id_token: &str,
        expected_nonce: &str,
    ) -> Result<IdTokenClaims, OidcError> {
        let issuer = self.metadata().await?.issuer.clone();
        let claims: IdTokenClaims = decode_jwt_payload(id_token)?;
        check_id_token_claims(
            &claims,
            &issuer,
            &self.client_id,
            expected_nonce,
            unix_now(),
        )?;
        Ok(claims)
    }

    /// Builds the RP-initiated logout URL, or `None` when the provider has no end-session endpoint.
    pub async fn end_session_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: &Url,
    ) -> Option<Url> {
        let mut url = self.metadata().await.ok()?.end_session_endpoint.clone()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair(
                "post_logout_redirect_uri",
                post_logout_redirect_uri.as_str(),
            )
            .append_pair("client_id", &self.client_id);
        Some(url)
    }
}

/// Checks the claims of an ID token that came from the token endpoint
/// (OpenID Connect Core 1.0, section 3.1.3.7, steps 2 to 5, 9 and 11).
pub fn check_id_token_claims(
    claims: &IdTokenClaims,
    issuer: &str,
    client_id: &str,
    expected_nonce: &str,
    now: i64,
) -> Result<(), OidcError> {
    if claims.iss != issuer {
        return Err(OidcError::InvalidToken(format!(
            "iss is {}, expected {issuer}",
            claims.iss
        )));
    }
    if !claims.aud.contains(client_id) {
        return Err(OidcError::InvalidToken(format!(
            "aud does not contain {client_id}"
        )));
    }
    if claims.aud.len() > 1 && claims.azp.is_none() {
        return Err(OidcError::InvalidToken(
            "azp is missing although aud has several values".to_owned(),
        ));
    }
    if let Some(azp) = &claims.azp
        && azp != client_id
    {
        return Err(OidcError::InvalidToken(format!(
            "azp is {azp}, expected {client_id}"
        )));
    }
    if claims.exp + CLOCK_LEEWAY_SECONDS < now {
        return Err(OidcError::InvalidToken(
            "the ID token has expired".to_owned(),
        ));
    }
    if claims.nonce.as_deref() != Some(expected_nonce) {
        return Err(OidcError::InvalidToken(
            "nonce does not match the login attempt".to_owned(),
        ));
    }
    Ok(())
}

/// Decodes the payload of a compact JWT without checking its signature.
pub fn decode_jwt_payload<T: DeserializeOwned>(jwt: &str) -> Result<T, OidcError> {
    let mut parts = jwt.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(payload), Some(_), None) => payload,
        _ => {
            return Err(OidcError::InvalidToken(
                "not a JWT with three parts".to_owned(),
            ));
        }
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|error| OidcError::InvalidToken(format!("payload is not base64url: {error}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|error| OidcError::InvalidToken(format!("invalid payload claims: {error}")))
}

fn unix_now() -> i64 {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "http://localhost:18080/realms/countersign-demo";

    fn claims() -> IdTokenClaims {
        IdTokenClaims {
            iss: ISSUER.to_owned(),
            sub: "cashier-sub".to_owned(),
            aud: Audience::One("demo-shop".to_owned()),
            azp: Some("demo-shop".to_owned()),
            exp: 1_000,
            nonce: Some("n0nce".to_owned()),
            preferred_username: Some("cashier".to_owned()),
            name: Some("Carla Cashier".to_owned()),
        }
    }

    fn check(claims: &IdTokenClaims) -> Result<(), OidcError> {
        check_id_token_claims(claims, ISSUER, "demo-shop", "n0nce", 900)
    }

    #[test]
    fn id_token_claims_accepted() {
        assert!(check(&claims()).is_ok());
    }

    #[test]
    fn id_token_claims_rejected() {
        let cases: Vec<(&str, IdTokenClaims)> = vec![
            (
                "other issuer",
                IdTokenClaims {
                    iss: "http://127.0.0.1:18080/realms/countersign-demo".to_owned(),
                    ..claims()
                },
            ),
            (
                "other audience",
                IdTokenClaims {
                    aud: Audience::One("countersign".to_owned()),
                    ..claims()
                },
            ),
            (
                "other azp",
                IdTokenClaims {
                    azp: Some("countersign".to_owned()),
                    ..claims()
                },
            ),
            (
                "several audiences without azp",
                IdTokenClaims {
                    aud: Audience::Many(vec!["demo-shop".to_owned(), "account".to_owned()]),
                    azp: None,
                    ..claims()
                },
            ),
            (
                "expired",
                IdTokenClaims {
                    exp: 900 - CLOCK_LEEWAY_SECONDS - 1,
                    ..claims()
                },
            ),
            (
                "other nonce",
                IdTokenClaims {
                    nonce: Some("replayed".to_owned()),
                    ..claims()
                },
            ),
            (
                "missing nonce",
                IdTokenClaims {
                    nonce: None,
                    ..claims()
                },
            ),
        ];
        for (name, case) in cases {
            assert!(check(&case).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn audience_array_accepted() {
        let case = IdTokenClaims {
            aud: Audience::Many(vec!["demo-shop".to_owned(), "account".to_owned()]),
            ..claims()
        };
        assert!(check(&case).is_ok());
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_example() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn jwt_payload_decoded() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"sub":"s1","preferred_username":"cashier"}"#);
        let claims: AccessTokenClaims = decode_jwt_payload(&format!("e30.{payload}.c2ln")).unwrap();
        assert_eq!(claims.preferred_username.as_deref(), Some("cashier"));
        assert_eq!(claims.sub.as_deref(), Some("s1"));
    }

    #[test]
    fn malformed_jwt_rejected() {
        for jwt in ["", "a.b", "a.b.c.d", "e30.!!!.c2ln", "e30.bm90IGpzb24.c2ln"] {
            assert!(
                decode_jwt_payload::<AccessTokenClaims>(jwt).is_err(),
                "{jwt:?} was accepted"
            );
        }
    }
}
