//! Remote approval: the short link `/r/{code}` that an approver opens on
//! their own device, and the QR code of that link for the requester's
//! screen. `docs/remote-approval.md` describes the flow and its threats.
//!
//! Neither route sets a cookie or starts a sign-in. The link only redirects
//! a pending request to `/popup/start/{id}`, so the login cookie is set on
//! the device that follows the link, never on the one that shows the QR code.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use url::Url;

use super::AppState;
use super::problem::{ErrorLog, status_of};
use crate::approvals::{Approval, ApprovalError, RemoteCode, Status};
use crate::codes::ErrorCode;
use crate::config::Settings;

/// Edge length of one QR module in the SVG's user units. The image scales
/// anyway, so this only sets its default size: 296 px for a 35-character
/// link, which needs a version 3 code (29 modules plus the quiet zone).
const MODULE_SIZE: u32 = 8;

/// Content-Security-Policy of the error page: no script at all.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Content-Security-Policy of the QR image. An SVG is a document that can
/// hold script and styles, so nothing may run or load in it. The SVG uses
/// presentation attributes (`fill`) only, which `style-src` does not cover.
const SVG_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[derive(Template)]
#[template(path = "remote_error.html")]
struct ErrorPage {
    code: &'static str,
}

/// Why the link or image could not be served: the page's code and the
/// message for the log.
#[derive(Debug)]
struct LinkError {
    code: ErrorCode,
    log_message: String,
}

impl LinkError {
    fn new(code: ErrorCode, log_message: impl Into<String>) -> Self {
        Self {
            code,
            log_message: log_message.into(),
        }
    }
}

/// Returns the short link of a request and the URL of its QR image.
pub fn remote_urls(settings: &Settings, code: &RemoteCode) -> (Url, Url) {
    (
        settings.public_url_for(&format!("r/{code}")),
        settings.public_url_for(&format!("r/{code}/qr.svg")),
    )
}

/// `GET /r/{code}`: redirects to the popup's start page while the request
/// is pending, and shows the error page otherwise.
pub async fn follow_link(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let approval = match find(&state, &code).await {
        Ok(approval) => approval,
        Err(error) => return error_page(error),
    };

    let code = match approval.status(state.approvals.now()) {
        Status::Pending => {
            let start = state
                .settings
                .public_url_for(&format!("popup/start/{}", approval.id));
            return Redirect::to(start.as_str()).into_response();
        }
        Status::Expired => ErrorCode::ApprovalExpired,
        Status::Approved | Status::Rejected => ErrorCode::AlreadyDecided,
    };
    error_page(LinkError::new(
        code,
        format!("remote link of approval {} followed after it ended", approval.id),
    ))
}

/// `GET /r/{code}/qr.svg`: the QR code of the short link, for any status,
/// so a page that still shows it after the decision gets no broken image.
pub async fn qr_image(State(state): State<AppState>, Path(code): Path<String>) -> Response {
    let approval = match find(&state, &code).await {
        Ok(approval) => approval,
        Err(error) => return error_page(error),
    };
    let Some(code) = approval.remote_code else {
        // `find` reads the request by this code, so it is always set.
        return error_page(LinkError::new(ErrorCode::NotFound, "the request has no remote code"));
    };

    let (link, _) = remote_urls(&state.settings, &code);
    match render_svg(link.as_str()) {
        Ok(svg) => svg_response(svg),
        Err(error) => error_page(LinkError::new(
            ErrorCode::InternalError,
            format!("cannot make the QR code of {link}: {error}"),
        )),
    }
}

async fn find(state: &AppState, text: &str) -> Result<Approval, LinkError> {
    let code = RemoteCode::parse(text)
        .ok_or_else(|| LinkError::new(ErrorCode::NotFound, "malformed remote code"))?;
    state
        .approvals
        .get_by_remote_code(&code)
        .await
        .map_err(|error| match error {
            ApprovalError::NotFound => LinkError::new(ErrorCode::NotFound, "unknown remote code"),
            other => LinkError::new(other.code(), other.to_string()),
        })
}

/// Renders the error page. It sets no cookie: the device that shows it may
/// be the requester's.
fn error_page(error: LinkError) -> Response {
    let status = status_of(error.code);
    let page = ErrorPage {
        code: error.code.as_str(),
    };
    let mut response = match page.render() {
        Ok(html) => (status, html).into_response(),
        Err(render_error) => {
            tracing::error!(error = %render_error, "cannot render the remote-link error page");
            (status, "The page could not be shown.").into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_POLICY),
    );
    response.extensions_mut().insert(ErrorLog {
        code: error.code,
        message: error.log_message,
    });
    response
}

/// Renders `text` as a QR code in SVG with error correction level M (about
/// 15 % of the code may be damaged) and the standard quiet zone of four
/// modules.
fn render_svg(text: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)?;
    Ok(code
        .render::<svg::Color<'_>>()
        .module_dimensions(MODULE_SIZE, MODULE_SIZE)
        .quiet_zone(true)
        .build())
}

fn svg_response(svg: String) -> Response {
    let mut response = (StatusCode::OK, svg).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(SVG_POLICY),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_has_no_style_or_script() {
        let svg = render_svg("http://127.0.0.1:18300/r/7k2m9qdx4h").unwrap_or_default();

        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("<path"), "{svg}");
        assert!(!svg.contains("style"), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
    }
}
