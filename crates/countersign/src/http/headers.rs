//! Security headers on every response. `docs/hardening.md` explains each
//! header and its value.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::rejection::is_page_path;

/// Content-Security-Policy of responses that do not set their own: JSON,
/// the status stream, the stylesheet. Nothing in them may load or run
/// anything, or be framed. The popup's HTML pages set a stricter-than-
/// default policy themselves, with a nonce for their one inline script.
const DEFAULT_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

const CROSS_ORIGIN_OPENER_POLICY: HeaderName =
    HeaderName::from_static("cross-origin-opener-policy");

/// Adds the security headers, keeping a `Content-Security-Policy` or
/// `Cache-Control` that the handler set.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let popup_page = is_page_path(request.uri().path());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();

    set_if_absent(headers, header::CONTENT_SECURITY_POLICY, DEFAULT_POLICY);
    set_if_absent(headers, header::CACHE_CONTROL, "no-store");
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));

    // A popup page with any other value would move the popup into a new
    // browsing context group, which severs `window.opener` for the rest of
    // the popup's life, and the result page could not notify the opener.
    let opener_policy = if popup_page {
        "unsafe-none"
    } else {
        "same-origin"
    };
    headers.insert(
        CROSS_ORIGIN_OPENER_POLICY,
        HeaderValue::from_static(opener_policy),
    );
    response
}

fn set_if_absent(headers: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !headers.contains_key(&name) {
        headers.insert(name, HeaderValue::from_static(value));
    }
}
