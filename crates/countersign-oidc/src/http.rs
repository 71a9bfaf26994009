//! The HTTP client for provider calls and a size-capped JSON fetch.
//!
//! Every call to the provider goes through a client that follows no
//! redirects. A redirect from the discovery, JWKS or token endpoint is an
//! error, so a compromised or misconfigured endpoint cannot send the
//! relying party (and the client secret) somewhere else.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use url::Url;

/// Errors from setting up the relying party's HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The HTTP client could not be built, usually because the TLS
    /// configuration failed to load. Check the TLS root store of the host.
    #[error("failed to build the HTTP client for the identity provider")]
    HttpClient(#[source] reqwest::Error),
}

/// Builds the HTTP client for discovery, JWKS and token calls.
///
/// Redirects are disabled and `timeout` bounds each whole request. The
/// connect phase gets at most 10 seconds of it.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, OidcError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("countersign-oidc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(OidcError::HttpClient)
}

/// The reason a GET of a JSON document failed. Discovery and the JWKS
/// cache build their public errors from it.
#[derive(Debug)]
pub(crate) enum FetchFailure {
    Unreachable(reqwest::Error),
    Status(StatusCode),
    TooLarge,
    NotJson(serde_json::Error),
}

/// Fetches `url` and parses the body as JSON, reading at most `limit` bytes.
pub(crate) async fn fetch_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
    limit: usize,
) -> Result<T, FetchFailure> {
    let response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(FetchFailure::Unreachable)?;

    if !response.status().is_success() {
        return Err(FetchFailure::Status(response.status()));
    }

    let body = read_body(response, limit).await?;
    serde_json::from_slice(&body).map_err(FetchFailure::NotJson)
}

/// Reads a response body, failing as soon as it grows past `limit` bytes.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, FetchFailure> {
    let declared_too_large = response
        .content_length()
        .is_some_and(|length| length > limit as u64);
    if declared_too_large {
        return Err(FetchFailure::TooLarge);
    }

    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(FetchFailure::Unreachable)? {
        if body.len() + chunk.len() > limit {
            return Err(FetchFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Names the kind of transport failure in words an operator can act on.
pub(crate) fn describe_transport_error(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "the request timed out"
    } else if error.is_connect() {
        "the connection failed"
    } else if error.is_body() || error.is_decode() {
        "reading the response failed"
    } else {
        "the request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn client_does_not_follow_redirects() {
        let server = crate::test_support::TestServer::start().await;
        server.redirect("/moved", "/target");
        server.set_json("/target", serde_json::json!({"reached": true}));
        let http = http_client(Duration::from_secs(5));
        assert!(http.is_ok());
        let Ok(http) = http else { return };

        let response = http.get(server.url("/moved")).send().await;

        let Ok(response) = response else {
            panic!("request failed: {response:?}");
        };
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(server.hits("/target"), 0);
    }

    #[tokio::test]
    async fn fetch_json_rejects_oversized_body() {
        let server = crate::test_support::TestServer::start().await;
        let big = "x".repeat(2_000);
        server.set_json("/big", serde_json::json!({ "padding": big }));
        let Ok(http) = http_client(Duration::from_secs(5)) else {
            panic!("client");
        };

        let result = fetch_json::<serde_json::Value>(&http, &server.url("/big"), 1_000).await;

        assert!(matches!(result, Err(FetchFailure::TooLarge)), "{result:?}");
    }
}
