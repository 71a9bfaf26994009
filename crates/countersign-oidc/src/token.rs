//! The token request: exchanging the authorization code for tokens
//! (RFC 6749, section 4.1.3; OpenID Connect Core 1.0, section 3.1.3).
//!
//! The client authenticates with `client_secret_basic` unless the provider
//! announces only `client_secret_post`. The response body is never put
//! into an error or a log, because a successful one contains tokens.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde::Deserialize;
use url::form_urlencoded;

use crate::client::RelyingParty;
use crate::http::{FetchFailure, describe_transport_error, read_body};
use crate::secret::{PkceVerifier, RawToken};

/// Maximum size of a token response: room for an ID, access and refresh
/// token of [`crate::MAX_TOKEN_BYTES`] each, plus the other members.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Maximum length of an `error_description` kept from the provider.
const MAX_ERROR_DESCRIPTION_CHARS: usize = 300;

/// The tokens from a successful code exchange.
#[derive(Clone)]
pub struct TokenSet {
    /// The ID token (a signed JWT).
    pub id_token: RawToken,
    /// The access token; Keycloak issues it as a signed JWT.
    pub access_token: RawToken,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSet([redacted])")
    }
}

/// Errors from the token request.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token endpoint could not be reached. Check that the provider is
    /// up. The user can retry the sign-in.
    #[error("could not reach the token endpoint: {}", describe_transport_error(.0))]
    Unreachable(#[source] reqwest::Error),

    /// The provider rejected the request with an OAuth 2.0 error
    /// (RFC 6749, section 5.2). `invalid_grant` means the code expired,
    /// was used already or belongs to another PKCE verifier or redirect
    /// URI: the user should sign in again. `invalid_client` and
    /// `unauthorized_client` mean the client id or secret is wrong.
    #[error("the token endpoint returned {error}{}", .description.as_ref().map(|text| format!(": {text}")).unwrap_or_default())]
    Provider {
        /// The HTTP status.
        status: StatusCode,
        /// The provider's `error` code.
        error: String,
        /// The provider's `error_description`, shortened.
        description: Option<String>,
    },

    /// The provider returned a status that carries no OAuth 2.0 error,
    /// including a redirect, which is never followed. Check `token_endpoint`
    /// in the discovery document.
    #[error("the token endpoint returned HTTP {0}")]
    Status(StatusCode),

    /// The response was larger than the limit of this crate.
    #[error("the token response is larger than {0} bytes")]
    TooLarge(usize),

    /// The response was not a JSON token response.
    #[error("the token response is not valid JSON: {0}")]
    InvalidResponse(#[source] serde_json::Error),

    /// The response has no `id_token`. Check that the scopes include `openid`.
    #[error("the token response contains no id_token; request the openid scope")]
    MissingIdToken,

    /// The response has a `token_type` other than `Bearer`.
    #[error("the token response has token_type {0:?}, expected Bearer")]
    UnsupportedTokenType(String),
}

impl TokenError {
    /// Returns a stable code for logs, audit records and error pages.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "token_endpoint_unreachable",
            Self::Provider { .. } => "token_error_response",
            Self::Status(_) => "token_endpoint_status",
            Self::TooLarge(_) => "token_response_too_large",
            Self::InvalidResponse(_) => "invalid_token_response",
            Self::MissingIdToken => "missing_id_token",
            Self::UnsupportedTokenType(_) => "unsupported_token_type",
        }
    }

    /// Returns the provider's OAuth 2.0 `error` code, when the provider sent one.
    pub fn provider_error(&self) -> Option<&str> {
        match self {
            Self::Provider { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
    error_description: Option<String>,
}

/// The client authentication method at the token endpoint (RFC 6749, section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuthentication {
    Basic,
    Post,
}

impl RelyingParty {
    /// Exchanges an authorization code for tokens.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &PkceVerifier,
    ) -> Result<TokenSet, TokenError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.client.redirect_uri.as_str()),
            ("code_verifier", pkce_verifier.secret()),
        ];

        let mut request = self
            .http
            .post(self.metadata.token_endpoint.clone())
            .header(ACCEPT, "application/json");
        match self.client_authentication() {
            ClientAuthentication::Basic => {
                request = request.header(AUTHORIZATION, self.basic_authorization());
            }
            ClientAuthentication::Post => {
                form.push(("client_id", &self.client.client_id));
                form.push(("client_secret", self.client.client_secret.secret()));
            }
        }

        let response = request
            .form(&form)
            .send()
            .await
            .map_err(TokenError::Unreachable)?;
        let status = response.status();
        let body = read_body(response, MAX_TOKEN_RESPONSE_BYTES)
            .await
            .map_err(|failure| match failure {
                FetchFailure::Unreachable(error) => TokenError::Unreachable(error),
                _ => TokenError::TooLarge(MAX_TOKEN_RESPONSE_BYTES),
            })?;

        if !status.is_success() {
            return Err(error_from_response(status, &body));
        }
        parse_token_response(&body)
    }

    fn client_authentication(&self) -> ClientAuthentication {
        let methods = &self.metadata.token_endpoint_auth_methods_supported;
        let basic_allowed =
            methods.is_empty() || methods.iter().any(|method| method == "client_secret_basic");
        let post_allowed = methods.iter().any(|method| method == "client_secret_post");

        if !basic_allowed && post_allowed {
            ClientAuthentication::Post
        } else {
            ClientAuthentication::Basic
        }
    }

    /// Builds the `Authorization: Basic` value. RFC 6749, section 2.3.1,
    /// form-encodes the id and secret before base64, so a secret with `:`
    /// or non-ASCII characters survives.
    fn basic_authorization(&self) -> HeaderValue {
        let id: String =
            form_urlencoded::byte_serialize(self.client.client_id.as_bytes()).collect();
        let secret: String =
            form_urlencoded::byte_serialize(self.client.client_secret.secret().as_bytes())
                .collect();
        let encoded = STANDARD.encode(format!("{id}:{secret}"));

        // Base64 output is always a valid header value.
        let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
        value.set_sensitive(true);
        value
    }
}

fn parse_token_response(body: &[u8]) -> Result<TokenSet, TokenError> {
    let response: TokenResponse =
        serde_json::from_slice(body).map_err(TokenError::InvalidResponse)?;

    if !response.token_type.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::UnsupportedTokenType(response.token_type));
    }
    let id_token = response
        .id_token
        .filter(|token| !token.is_empty())
        .ok_or(TokenError::MissingIdToken)?;

    Ok(TokenSet {
        id_token: RawToken::from_stored(id_token),
        access_token: RawToken::from_stored(response.access_token),
    })
}

fn error_from_response(status: StatusCode, body: &[u8]) -> TokenError {
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(parsed) => TokenError::Provider {
            status,
            error: parsed.error.chars().take(64).collect(),
            description: parsed
                .error_description
                .map(|text| text.chars().take(MAX_ERROR_DESCRIPTION_CHARS).collect()),
        },
        Err(_) => TokenError::Status(status),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{TestServer, relying_party_on};

    const TOKEN_PATH: &str = "/realms/demo/token";

    fn form_of(body: &str) -> std::collections::HashMap<String, String> {
        form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect()
    }

    #[tokio::test]
    async fn exchange_sends_code_verifier_and_basic_auth() {
        let server = TestServer::start().await;
        server.set_json(
            TOKEN_PATH,
            json!({"access_token": "access", "token_type": "Bearer", "id_token": "id", "expires_in": 60}),
        );
        let rp = relying_party_on(&server);
        let verifier = PkceVerifier::from_stored("verifier-value".into());

        let tokens = rp
            .exchange_code("the-code", &verifier)
            .await
            .expect("exchange");

        assert_eq!(tokens.id_token.secret(), "id");
        assert_eq!(tokens.access_token.secret(), "access");
        let requests = server.requests();
        let request = requests
            .iter()
            .find(|request| request.path == TOKEN_PATH)
            .expect("token request");
        assert_eq!(request.method, "POST");
        assert_eq!(
            request
                .headers
                .get("content-type")
                .and_then(|value| value.to_str().ok()),
            Some("application/x-www-form-urlencoded")
        );
        let expected_auth = format!("Basic {}", STANDARD.encode("countersign:demo%3Asecret"));
        assert_eq!(
            request
                .headers
                .get("authorization")
                .and_then(|value| value.to_str().ok()),
            Some(expected_auth.as_str())
        );
        let form = form_of(&request.body);
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], "the-code");
        assert_eq!(form["code_verifier"], "verifier-value");
        assert_eq!(
            form["redirect_uri"],
            "http://127.0.0.1:18300/popup/callback"
        );
        assert!(!form.contains_key("client_secret"));
    }

    #[tokio::test]
    async fn exchange_uses_post_when_basic_is_not_offered() {
        let server = TestServer::start().await;
        server.set_json(
            TOKEN_PATH,
            json!({"access_token": "a", "token_type": "bearer", "id_token": "i"}),
        );
        let mut rp = relying_party_on(&server);
        rp.metadata.token_endpoint_auth_methods_supported = vec!["client_secret_post".into()];

        rp.exchange_code("c", &PkceVerifier::from_stored("v".into()))
            .await
            .expect("exchange");

        let requests = server.requests();
        let request = requests
            .iter()
            .find(|request| request.path == TOKEN_PATH)
            .expect("token request");
        let form = form_of(&request.body);
        assert_eq!(form["client_id"], "countersign");
        assert_eq!(form["client_secret"], "demo:secret");
        assert!(request.headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn provider_error_keeps_error_code() {
        let server = TestServer::start().await;
        server.set_json_status(
            TOKEN_PATH,
            400,
            json!({"error": "invalid_grant", "error_description": "Code not valid"}),
        );
        let rp = relying_party_on(&server);

        let result = rp
            .exchange_code("used", &PkceVerifier::from_stored("v".into()))
            .await;

        let Err(error) = result else {
            panic!("expected an error")
        };
        assert_eq!(error.provider_error(), Some("invalid_grant"));
        assert_eq!(error.code(), "token_error_response");
        assert_eq!(
            error.to_string(),
            "the token endpoint returned invalid_grant: Code not valid"
        );
    }

    #[tokio::test]
    async fn non_oauth_error_reports_status() {
        let server = TestServer::start().await;
        server.set_json_status(TOKEN_PATH, 502, json!({"message": "bad gateway"}));
        let rp = relying_party_on(&server);

        let result = rp
            .exchange_code("c", &PkceVerifier::from_stored("v".into()))
            .await;

        assert!(
            matches!(result, Err(TokenError::Status(StatusCode::BAD_GATEWAY))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn redirect_from_token_endpoint_is_not_followed() {
        let server = TestServer::start().await;
        server.redirect(TOKEN_PATH, "/elsewhere");
        server.set_json(
            "/elsewhere",
            json!({"access_token": "a", "token_type": "Bearer", "id_token": "i"}),
        );
        let rp = relying_party_on(&server);

        let result = rp
            .exchange_code("c", &PkceVerifier::from_stored("v".into()))
            .await;

        assert!(
            matches!(result, Err(TokenError::Status(StatusCode::FOUND))),
            "{result:?}"
        );
        assert_eq!(server.hits("/elsewhere"), 0);
    }

    #[tokio::test]
    async fn response_without_id_token_is_rejected() {
        let server = TestServer::start().await;
        server.set_json(
            TOKEN_PATH,
            json!({"access_token": "a", "token_type": "Bearer"}),
        );
        let rp = relying_party_on(&server);

        let result = rp
            .exchange_code("c", &PkceVerifier::from_stored("v".into()))
            .await;

        assert!(
            matches!(result, Err(TokenError::MissingIdToken)),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn non_bearer_token_type_is_rejected() {
        let server = TestServer::start().await;
        server.set_json(
            TOKEN_PATH,
            json!({"access_token": "a", "token_type": "DPoP", "id_token": "i"}),
        );
        let rp = relying_party_on(&server);

        let result = rp
            .exchange_code("c", &PkceVerifier::from_stored("v".into()))
            .await;

        assert!(
            matches!(result, Err(TokenError::UnsupportedTokenType(_))),
            "{result:?}"
        );
    }

    #[test]
    fn token_set_debug_is_redacted() {
        let tokens = TokenSet {
            id_token: RawToken::from_stored("eyJ.id.sig".into()),
            access_token: RawToken::from_stored("eyJ.access.sig".into()),
        };

        let rendered = format!("{tokens:?}");

        assert!(!rendered.contains("eyJ"), "{rendered}");
    }
}
