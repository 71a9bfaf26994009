//! The shop's router, its shared state and the checks that several routes use.

mod auth;
mod coop;
mod pages;
mod refunds;
#[cfg(test)]
mod router_tests;

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use url::Url;

use crate::countersign::CountersignClient;
use crate::oidc::OidcClient;
use crate::session::SessionStore;

pub struct AppState {
    pub oidc: OidcClient,
    pub countersign: CountersignClient,
    pub sessions: SessionStore,
    /// `SHOP_PUBLIC_URL`, always with the path `/`.
    pub public_url: Url,
    /// Origin of `SHOP_PUBLIC_URL`, for example `http://localhost:18400`.
    pub public_origin: String,
    /// Origin of `SHOP_COUNTERSIGN_URL`, rendered into the page for the SDK.
    pub countersign_origin: String,
    pub sdk_path: PathBuf,
    /// Marks the session cookie `Secure` when the shop is served over HTTPS.
    pub secure_cookies: bool,
}

pub type SharedState = Arc<AppState>;

pub fn router(state: SharedState, content_security_policy: HeaderValue) -> Router {
    Router::new()
        .route("/", get(coop::index))
        .route("/coop-hop", get(coop::hop))
        .route("/login", get(auth::login))
        .route("/callback", get(auth::callback))
        .route("/logout", post(auth::logout))
        .route("/whoami", get(auth::whoami))
        .route("/refunds/{order}/approval", post(refunds::create_approval))
        .route("/refunds/{order}/execute", post(refunds::execute))
        .route("/static/countersign.js", get(pages::sdk_script))
        .route("/static/shop.js", get(pages::shop_script))
        .route("/static/shop.css", get(pages::stylesheet))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .fallback(pages::not_found)
        .with_state(state)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            content_security_policy,
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // The span names the path only: the query of /callback carries the
        // authorization code, which must not reach the logs.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &axum::extract::Request| {
                    tracing::info_span!("request", method = %request.method(), path = request.uri().path())
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO))
                // Each handler logs the cause of its own errors, so a second log line per failure adds nothing.
                .on_failure(()),
        )
}

/// Builds the page's Content-Security-Policy. The SDK's status stream needs
/// `connect-src` for Countersign, the QR code of a remote approval is an
/// image from Countersign, and sign-out ends with a redirect to the
/// identity provider, which `form-action` must allow.
pub fn content_security_policy(countersign_origin: &str, issuer_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' {countersign_origin}; \
         connect-src 'self' {countersign_origin}; form-action 'self' {issuer_origin}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Rejects a state-changing request that a page of another origin sent: the
/// `Origin` header, or else `Sec-Fetch-Site`, must name the shop itself.
pub fn check_same_origin(
    headers: &HeaderMap,
    public_origin: &str,
) -> Result<(), (StatusCode, String)> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        if origin.as_bytes() == public_origin.as_bytes() {
            return Ok(());
        }
        let origin = String::from_utf8_lossy(origin.as_bytes());
        return Err((
            StatusCode::FORBIDDEN,
            format!(
                "The request came from {origin}, not from the shop at {public_origin}. Open the shop at {public_origin} and try again."
            ),
        ));
    }
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes() == b"same-origin"
    {
        return Ok(());
    }
    Err((
        StatusCode::FORBIDDEN,
        format!(
            "The request has no Origin header from the shop. Use the buttons on the shop's page at {public_origin}."
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOP: &str = "http://localhost:18400";

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn same_origin_accepted() {
        assert!(check_same_origin(&headers(&[("origin", SHOP)]), SHOP).is_ok());
        assert!(check_same_origin(&headers(&[("sec-fetch-site", "same-origin")]), SHOP).is_ok());
    }

    #[test]
    fn cross_origin_rejected() {
        let cases = [
            headers(&[("origin", "http://127.0.0.1:18400")]),
            headers(&[("origin", "http://localhost:18400.evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[
                ("origin", "http://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[]),
        ];
        for case in cases {
            assert!(
                check_same_origin(&case, SHOP).is_err(),
                "{case:?} was accepted"
            );
        }
    }
}
