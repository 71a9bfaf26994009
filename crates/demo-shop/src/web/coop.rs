//! Switches that show how the SDK behaves under Cross-Origin-Opener-Policy
//! (COOP). A COOP page in the popup's history cuts the popup off from the
//! shop, so the SDK must learn the outcome from the status stream.
//!
//! - `GET /?coop=<value>` sends the order page with that COOP value, so the
//!   popup that the page opens loses `window.opener` on its way to Countersign.
//! - `GET /coop-hop?to=<Countersign URL>` is a shop page with
//!   `Cross-Origin-Opener-Policy: same-origin` that sends the browser on to
//!   `to`. A popup that passes through it loses `window.opener`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use url::Url;

use super::SharedState;
use super::pages;
use crate::error::PageError;

/// `http` 1.x has no constant for this header.
const COOP_HEADER: HeaderName = HeaderName::from_static("cross-origin-opener-policy");

/// Values of the Cross-Origin-Opener-Policy header (HTML Living Standard).
pub const COOP_VALUES: [&str; 4] = [
    "unsafe-none",
    "same-origin-allow-popups",
    "same-origin",
    "noopener-allow-popups",
];

#[derive(Deserialize)]
pub struct IndexQuery {
    coop: Option<String>,
}

/// Serves the order page, with the COOP header that `?coop=` names.
pub async fn index(
    State(state): State<SharedState>,
    jar: CookieJar,
    Query(query): Query<IndexQuery>,
) -> Result<Response, PageError> {
    let policy = query.coop.as_deref().map(coop_header).transpose()?;
    let mut response = pages::index(State(state), jar).await.into_response();
    if let Some(policy) = policy {
        response.headers_mut().insert(COOP_HEADER, policy);
    }
    Ok(response)
}

fn coop_header(value: &str) -> Result<HeaderValue, PageError> {
    let known = COOP_VALUES.iter().find(|known| **known == value);
    known
        .map(|known| HeaderValue::from_static(known))
        .ok_or_else(|| {
            tracing::warn!(coop = value, "invalid coop parameter on the order page");
            PageError::home(
                StatusCode::BAD_REQUEST,
                "Invalid coop parameter",
                format!(
                    "The coop parameter is {value:?}, expected one of {}.",
                    COOP_VALUES.join(", ")
                ),
            )
        })
}

#[derive(Deserialize)]
pub struct HopQuery {
    to: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "coop-hop.html")]
struct HopPage {
    to: String,
}

/// Serves a page with `Cross-Origin-Opener-Policy: same-origin` that
/// redirects to `to` with a meta refresh. The page must render, because the
/// policy of the page that a browser shows is what severs the opener. Only
/// Countersign URLs are accepted, so the hop is no open redirect.
pub async fn hop(
    State(state): State<SharedState>,
    Query(query): Query<HopQuery>,
) -> Result<Response, PageError> {
    let to = query.to.unwrap_or_default();
    let target = Url::parse(&to).ok().filter(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.origin().ascii_serialization() == state.countersign_origin
    });
    let Some(target) = target else {
        tracing::warn!(to = %to, "invalid target of the COOP hop page");
        return Err(PageError::home(
            StatusCode::BAD_REQUEST,
            "Invalid hop target",
            format!(
                "The to parameter is {to:?}, expected a URL on Countersign at {}.",
                state.countersign_origin
            ),
        ));
    };

    let page = HopPage {
        to: target.to_string(),
    };
    let coop = [(COOP_HEADER, HeaderValue::from_static("same-origin"))];
    Ok((coop, page).into_response())
}
