//! Rejections made by the router and the middleware rather than by a
//! handler: unknown paths, wrong methods, rate limits, timeouts and caught
//! panics. Under `/popup/` the browser gets the popup's error page, since a
//! person reads it; everywhere else the client gets problem+json.

use std::any::Any;

use askama::Template;
use axum::http::{HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};

use super::popup;
use super::problem::{ErrorLog, Problem, status_of};
use crate::codes::ErrorCode;

/// Content-Security-Policy of the error pages made here: they have no
/// script, so none may run.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    message: &'static str,
    code: &'static str,
    retry_url: Option<String>,
}

/// Returns the rejection as an HTML error page for paths under `/popup/`
/// and as problem+json elsewhere.
pub fn reject(path: &str, problem: Problem) -> Response {
    if is_page_path(path) {
        error_page(problem)
    } else {
        problem.into_response()
    }
}

/// Paths whose responses a person reads: the popup window and the
/// remote-approval link.
pub fn is_page_path(path: &str) -> bool {
    path.starts_with("/popup/") || path.starts_with("/r/")
}

/// Fallback for unknown paths: problem+json under `/api`, the HTML
/// not-found page elsewhere.
pub async fn not_found(uri: Uri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        Problem::new(ErrorCode::NotFound, "no such API endpoint").into_response()
    } else {
        popup::not_found_page().await
    }
}

/// Fallback for a known path with a method it does not serve. Axum adds
/// the `Allow` header listing the methods that the path serves.
pub async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let detail = format!("{method} is not allowed on {}", uri.path());
    reject(
        uri.path(),
        Problem::new(ErrorCode::MethodNotAllowed, detail),
    )
}

/// Turns a caught panic into a 500 problem. The panic message goes to the
/// log only, because it can name internals.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("a panic without a message");
    Problem::new(
        ErrorCode::InternalError,
        "the request failed inside Countersign; nothing was changed",
    )
    .with_log_message(format!("handler panicked: {message}"))
    .into_response()
}

fn error_page(problem: Problem) -> Response {
    let code = problem.code();
    let (title, message) = page_text(code);
    let page = ErrorPage {
        title,
        message,
        code: code.as_str(),
        retry_url: None,
    };
    let mut response = match page.render() {
        Ok(html) => (status_of(code), html).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "cannot render an error page");
            (status_of(code), message).into_response()
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
    if let Some(seconds) = problem.retry_after_seconds() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response.extensions_mut().insert(ErrorLog {
        code,
        message: problem.log_message().to_owned(),
    });
    response
}

fn page_text(code: ErrorCode) -> (&'static str, &'static str) {
    match code {
        ErrorCode::RateLimited => (
            "Too many attempts",
            "This device sent too many sign-in requests. Wait a minute, then try again.",
        ),
        ErrorCode::RequestTimeout => (
            "Request timed out",
            "Countersign took too long to answer. Try again.",
        ),
        ErrorCode::MethodNotAllowed => (
            "Not available",
            "This page cannot be opened this way. Open the approval link again.",
        ),
        _ => (
            "Something went wrong",
            "Countersign could not handle this request.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_paths_are_the_popup() {
        assert!(is_page_path("/popup/start/abc"));
        assert!(!is_page_path("/popupx"));
        assert!(!is_page_path("/api/v1/approvals"));
    }

    #[test]
    fn panic_response_is_problem() {
        let response = panic_response(Box::new("boom"));

        assert_eq!(response.status(), 500);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let log = response.extensions().get::<ErrorLog>().unwrap();
        assert_eq!(log.message, "handler panicked: boom");
    }
}
