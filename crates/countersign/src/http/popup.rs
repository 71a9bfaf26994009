//! The popup pages.

use axum::http::StatusCode;
use axum::response::IntoResponse;

pub async fn start() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

pub async fn callback() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

pub async fn signed_out() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

pub async fn decision() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

pub async fn stylesheet() -> impl IntoResponse {
    StatusCode::NOT_IMPLEMENTED
}

pub async fn not_found_page() -> impl IntoResponse {
    StatusCode::NOT_FOUND
}
