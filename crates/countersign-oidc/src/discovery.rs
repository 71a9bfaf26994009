//! OpenID Provider discovery (OpenID Connect Discovery 1.0, section 4).
//!
//! The relying party trusts only the issuer it was configured with. The
//! document's `issuer` must name it exactly (section 4.3), so a discovery
//! document cannot move the relying party to another issuer.

use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::http::{FetchFailure, describe_transport_error, fetch_json};

/// Maximum size of a discovery document, far above what a provider needs
/// for the metadata of OpenID Connect Discovery 1.0, section 3 (an estimate).
const MAX_DISCOVERY_BYTES: usize = 256 * 1024;

/// The parts of the provider's discovery document that the relying party uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    /// The issuer identifier, equal to the configured issuer.
    pub issuer: Url,
    /// The endpoint that the browser is sent to for the sign-in.
    pub authorization_endpoint: Url,
    /// The endpoint that exchanges the authorization code for tokens.
    pub token_endpoint: Url,
    /// The URL of the provider's signing keys (JWKS).
    pub jwks_uri: Url,
    /// The RP-initiated logout endpoint, when the provider supports it.
    pub end_session_endpoint: Option<Url>,
    /// The client authentication methods the token endpoint accepts. It is
    /// empty when the document omits them, and the default is then
    /// `client_secret_basic`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// The PKCE methods the provider announces, empty when not announced.
    pub code_challenge_methods_supported: Vec<String>,
    /// The ID token signing algorithms the provider announces.
    pub id_token_signing_alg_values_supported: Vec<String>,
}

/// The document as sent, with every field optional so that a missing one
/// gets an error that names it.
#[derive(Deserialize)]
struct RawMetadata {
    issuer: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    end_session_endpoint: Option<String>,
    #[serde(default)]
    token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

/// Errors from fetching or checking the discovery document.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The document could not be fetched at all (connection refused, DNS,
    /// TLS or a timeout). Check the issuer URL and that the provider is up.
    #[error("could not reach the identity provider at {url}: {}", describe_transport_error(.source))]
    Unreachable {
        /// The discovery URL.
        url: Url,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// The provider returned a status other than 2xx, including a
    /// redirect, which is never followed. Check the issuer URL: for
    /// Keycloak it ends in `/realms/<realm>`.
    #[error("the discovery document at {url} returned HTTP {status}; check the issuer URL")]
    Status {
        /// The discovery URL.
        url: Url,
        /// The HTTP status.
        status: StatusCode,
    },

    /// The document was larger than the limit of this crate.
    #[error("the discovery document at {url} is larger than {limit} bytes")]
    TooLarge {
        /// The discovery URL.
        url: Url,
        /// The limit in bytes.
        limit: usize,
    },

    /// The body was not a JSON object of the expected shape.
    #[error("the discovery document at {url} is not valid JSON metadata: {source}")]
    NotJson {
        /// The discovery URL.
        url: Url,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// The document names another issuer than the configured one. Set the
    /// issuer exactly as the provider spells it: Keycloak builds it from
    /// the host name of the request unless `--hostname` is set.
    #[error(
        "the discovery document names issuer {found:?}, but the configured issuer is {expected:?}"
    )]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// The issuer in the document.
        found: String,
    },

    /// A required field is missing from the document.
    #[error("the discovery document has no {field}")]
    MissingEndpoint {
        /// The missing field.
        field: &'static str,
    },

    /// An endpoint in the document is not an absolute URL.
    #[error("the discovery document's {field} is not a valid URL: {value:?}")]
    InvalidEndpoint {
        /// The field with the invalid value.
        field: &'static str,
        /// The value as sent.
        value: String,
    },
}

/// Returns the discovery URL for `issuer`: the issuer without a trailing
/// slash, followed by `/.well-known/openid-configuration`.
pub fn discovery_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = format!(
        "{}/.well-known/openid-configuration",
        issuer.path().trim_end_matches('/')
    );
    url.set_path(&path);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// Compares an issuer string from a document or token with the configured
/// issuer, character by character.
///
/// One difference is allowed. The `url` crate writes a URL without a path
/// as `https://host/`, so for such an issuer `https://host` matches as well.
pub fn issuer_matches(configured: &Url, found: &str) -> bool {
    let configured_text = configured.as_str();
    if found == configured_text {
        return true;
    }

    let bare_host = configured.path() == "/" && configured.query().is_none();
    bare_host && configured_text.strip_suffix('/') == Some(found)
}

/// Fetches and checks the provider's discovery document.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &Url,
) -> Result<ProviderMetadata, DiscoveryError> {
    let url = discovery_url(issuer);

    let raw: RawMetadata =
        fetch_json(http, &url, MAX_DISCOVERY_BYTES)
            .await
            .map_err(|failure| match failure {
                FetchFailure::Unreachable(source) => DiscoveryError::Unreachable {
                    url: url.clone(),
                    source,
                },
                FetchFailure::Status(status) => DiscoveryError::Status {
                    url: url.clone(),
                    status,
                },
                FetchFailure::TooLarge => DiscoveryError::TooLarge {
                    url: url.clone(),
                    limit: MAX_DISCOVERY_BYTES,
                },
                FetchFailure::NotJson(source) => DiscoveryError::NotJson {
                    url: url.clone(),
                    source,
                },
            })?;

    let found_issuer = raw
        .issuer
        .ok_or(DiscoveryError::MissingEndpoint { field: "issuer" })?;
    if !issuer_matches(issuer, &found_issuer) {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.as_str().to_owned(),
            found: found_issuer,
        });
    }

    Ok(ProviderMetadata {
        issuer: issuer.clone(),
        authorization_endpoint: required_url("authorization_endpoint", raw.authorization_endpoint)?,
        token_endpoint: required_url("token_endpoint", raw.token_endpoint)?,
        jwks_uri: required_url("jwks_uri", raw.jwks_uri)?,
        end_session_endpoint: raw
            .end_session_endpoint
            .map(|value| parse_endpoint("end_session_endpoint", value))
            .transpose()?,
        token_endpoint_auth_methods_supported: raw.token_endpoint_auth_methods_supported,
        code_challenge_methods_supported: raw.code_challenge_methods_supported,
        id_token_signing_alg_values_supported: raw.id_token_signing_alg_values_supported,
    })
}

fn required_url(field: &'static str, value: Option<String>) -> Result<Url, DiscoveryError> {
    let value = value.ok_or(DiscoveryError::MissingEndpoint { field })?;
    parse_endpoint(field, value)
}

fn parse_endpoint(field: &'static str, value: String) -> Result<Url, DiscoveryError> {
    match Url::parse(&value) {
        Ok(url) if matches!(url.scheme(), "https" | "http") => Ok(url),
        _ => Err(DiscoveryError::InvalidEndpoint { field, value }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::*;
    use crate::http::http_client;
    use crate::test_support::TestServer;

    const DISCOVERY_PATH: &str = "/realms/demo/.well-known/openid-configuration";

    fn document(server: &TestServer) -> Value {
        json!({
            "issuer": server.url("/realms/demo").as_str(),
            "authorization_endpoint": server.url("/realms/demo/auth").as_str(),
            "token_endpoint": server.url("/realms/demo/token").as_str(),
            "jwks_uri": server.url("/realms/demo/certs").as_str(),
            "end_session_endpoint": server.url("/realms/demo/logout").as_str(),
            "code_challenge_methods_supported": ["plain", "S256"],
        })
    }

    async fn discover_from(server: &TestServer) -> Result<ProviderMetadata, DiscoveryError> {
        let http = http_client(Duration::from_secs(5)).expect("client");
        discover(&http, &server.url("/realms/demo")).await
    }

    #[test]
    fn discovery_url_appends_well_known_path() {
        let with_path = Url::parse("http://127.0.0.1:8080/realms/demo").expect("url");
        let with_slash = Url::parse("http://127.0.0.1:8080/realms/demo/").expect("url");
        let bare = Url::parse("https://idp.example").expect("url");

        assert_eq!(
            discovery_url(&with_path).as_str(),
            "http://127.0.0.1:8080/realms/demo/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url(&with_slash).as_str(),
            "http://127.0.0.1:8080/realms/demo/.well-known/openid-configuration"
        );
        assert_eq!(
            discovery_url(&bare).as_str(),
            "https://idp.example/.well-known/openid-configuration"
        );
    }

    #[test]
    fn issuer_match_is_exact() {
        let issuer = Url::parse("http://127.0.0.1:8080/realms/demo").expect("url");
        let bare = Url::parse("https://idp.example").expect("url");

        assert!(issuer_matches(&issuer, "http://127.0.0.1:8080/realms/demo"));
        assert!(!issuer_matches(
            &issuer,
            "http://127.0.0.1:8080/realms/demo/"
        ));
        assert!(!issuer_matches(
            &issuer,
            "http://localhost:8080/realms/demo"
        ));
        assert!(issuer_matches(&bare, "https://idp.example"));
        assert!(issuer_matches(&bare, "https://idp.example/"));
        assert!(!issuer_matches(&bare, "https://idp.example/x"));
    }

    #[tokio::test]
    async fn discover_reads_endpoints() {
        let server = TestServer::start().await;
        server.set_json(DISCOVERY_PATH, document(&server));

        let metadata = discover_from(&server).await.expect("discovery");

        assert_eq!(metadata.issuer, server.url("/realms/demo"));
        assert_eq!(
            metadata.authorization_endpoint,
            server.url("/realms/demo/auth")
        );
        assert_eq!(metadata.token_endpoint, server.url("/realms/demo/token"));
        assert_eq!(metadata.jwks_uri, server.url("/realms/demo/certs"));
        assert_eq!(
            metadata.end_session_endpoint,
            Some(server.url("/realms/demo/logout"))
        );
        assert_eq!(
            metadata.code_challenge_methods_supported,
            vec!["plain", "S256"]
        );
    }

    #[tokio::test]
    async fn discover_rejects_issuer_mismatch() {
        let server = TestServer::start().await;
        let mut body = document(&server);
        body["issuer"] = json!("http://localhost:8080/realms/demo");
        server.set_json(DISCOVERY_PATH, body);

        let result = discover_from(&server).await;

        let Err(DiscoveryError::IssuerMismatch { expected, found }) = result else {
            panic!("expected an issuer mismatch, got {result:?}");
        };
        assert_eq!(expected, server.url("/realms/demo").as_str());
        assert_eq!(found, "http://localhost:8080/realms/demo");
    }

    #[tokio::test]
    async fn discover_rejects_missing_endpoint() {
        for field in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
        ] {
            let server = TestServer::start().await;
            let mut body = document(&server);
            body.as_object_mut().expect("object").remove(field);
            server.set_json(DISCOVERY_PATH, body);

            let result = discover_from(&server).await;

            assert!(
                matches!(result, Err(DiscoveryError::MissingEndpoint { field: missing }) if missing == field),
                "{field}: {result:?}"
            );
        }
    }

    #[tokio::test]
    async fn discover_allows_missing_end_session_endpoint() {
        let server = TestServer::start().await;
        let mut body = document(&server);
        body.as_object_mut()
            .expect("object")
            .remove("end_session_endpoint");
        server.set_json(DISCOVERY_PATH, body);

        let metadata = discover_from(&server).await.expect("discovery");

        assert_eq!(metadata.end_session_endpoint, None);
    }

    #[tokio::test]
    async fn discover_rejects_invalid_endpoint() {
        let server = TestServer::start().await;
        let mut body = document(&server);
        body["token_endpoint"] = json!("/relative/token");
        server.set_json(DISCOVERY_PATH, body);

        let result = discover_from(&server).await;

        assert!(
            matches!(
                result,
                Err(DiscoveryError::InvalidEndpoint {
                    field: "token_endpoint",
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn discover_reports_http_status() {
        let server = TestServer::start().await;

        let result = discover_from(&server).await;

        assert!(
            matches!(
                result,
                Err(DiscoveryError::Status {
                    status: StatusCode::NOT_FOUND,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn discover_does_not_follow_redirect() {
        let server = TestServer::start().await;
        server.redirect(DISCOVERY_PATH, "/elsewhere");
        server.set_json("/elsewhere", document(&server));

        let result = discover_from(&server).await;

        assert!(
            matches!(
                result,
                Err(DiscoveryError::Status {
                    status: StatusCode::FOUND,
                    ..
                })
            ),
            "{result:?}"
        );
        assert_eq!(server.hits("/elsewhere"), 0);
    }

    #[tokio::test]
    async fn discover_reports_non_json_body() {
        let server = TestServer::start().await;
        server.set_json(DISCOVERY_PATH, json!(["not", "an", "object"]));

        let result = discover_from(&server).await;

        assert!(
            matches!(result, Err(DiscoveryError::NotJson { .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn discover_reports_unreachable_provider() {
        let server = TestServer::start().await;
        let issuer = server.url("/realms/demo");
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let http = http_client(Duration::from_secs(5)).expect("client");

        let result = discover(&http, &issuer).await;

        assert!(
            matches!(result, Err(DiscoveryError::Unreachable { .. })),
            "{result:?}"
        );
    }
}
