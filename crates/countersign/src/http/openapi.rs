//! The OpenAPI 3.1 document of the host API, generated from the
//! `#[utoipa::path]` attributes of the handlers.
//!
//! `api_router` registers each documented handler together with its
//! description, so a documented route always exists and a route added here
//! is always documented. Routes outside the document (the popup pages and
//! `/healthz`) are added in `http::router`. A test checks that every route
//! of the router is in the document or excluded with a reason.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::problem::{Problem, ProblemBody};
use super::{AppState, api, events};
use crate::codes::ErrorCode;

/// Name of the API key security scheme in the document.
const API_KEY_SCHEME: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Countersign host API",
        description = "Create approval requests, follow their status and consume the decision once. Every error is `application/problem+json` with a stable `code`.",
    ),
    modifiers(&ApiKeyScheme),
    components(schemas(ProblemBody)),
    tags(
        (name = "approvals", description = "Approval requests of the host backend."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "An API key from `[[api_keys]]`, sent as `Authorization: Bearer <key>`.",
            ))
            .build();
        components.add_security_scheme(API_KEY_SCHEME, SecurityScheme::Http(scheme));
    }
}

/// Builds the documented routes: the host API and this document.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::create))
        .routes(routes!(api::status))
        .routes(routes!(api::consume))
        .routes(routes!(events::stream_status))
        .routes(routes!(openapi_json))
}

/// Returns the document.
pub fn document() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// Returns the document as JSON, serialized once.
fn document_json() -> Result<&'static str, &'static str> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| document().to_json().map_err(|error| error.to_string()))
        .as_ref()
        .map(String::as_str)
        .map_err(String::as_str)
}

/// `GET /api/v1/openapi.json`
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    summary = "This OpenAPI document",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the host API.", body = Object),
    )
)]
pub async fn openapi_json() -> Response {
    match document_json() {
        Ok(json) => {
            let mut response = json.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(error) => Problem::new(
            ErrorCode::InternalError,
            "the OpenAPI document could not be built",
        )
        .with_log_message(format!("cannot serialize the OpenAPI document: {error}"))
        .into_response(),
    }
}
