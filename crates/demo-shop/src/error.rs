//! Error responses: a friendly HTML page for page routes and
//! `{"ok": false, "message"}` JSON for the routes that the page script calls.
//! The caller logs the cause before it builds one of these.

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Template, WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    retry_href: &'a str,
    retry_label: &'a str,
}

#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
    pub retry_href: &'static str,
    pub retry_label: &'static str,
}

impl PageError {
    /// Builds an error whose page links to a new sign-in.
    pub fn sign_in(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
            retry_href: "/login",
            retry_label: "Sign in again",
        }
    }

    /// Builds an error whose page links back to the order page.
    pub fn home(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            title,
            message: message.into(),
            retry_href: "/",
            retry_label: "Back to the shop",
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            title: self.title,
            message: &self.message,
            retry_href: self.retry_href,
            retry_label: self.retry_label,
        };
        (self.status, page).into_response()
    }
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn not_signed_in() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "You are not signed in to the shop. Sign in and try again.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"ok": false, "message": self.message})),
        )
            .into_response()
    }
}
