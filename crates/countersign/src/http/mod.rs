//! The HTTP layer: router, shared state and middleware.

pub mod api;
pub mod auth;
pub mod events;
pub mod extract;
pub mod headers;
pub mod input;
pub mod limits;
pub mod openapi;
pub mod popup;
pub mod problem;
pub mod rejection;
pub mod remote;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::watch;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::approvals::{ApprovalService, Clock};
use crate::config::Settings;
use crate::signin::SignIn;
use crate::storage::Storage;
use limits::RateLimits;
use problem::{ErrorLog, status_of};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How often an open status stream re-reads its request.
const EVENTS_POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Tells long-lived responses (status streams) that the server is stopping.
#[derive(Clone, Debug)]
pub struct Shutdown {
    sender: Arc<watch::Sender<bool>>,
}

impl Shutdown {
    pub fn new() -> Self {
        let (sender, _) = watch::channel(false);
        Self {
            sender: Arc::new(sender),
        }
    }

    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }

    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.sender.subscribe()
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

/// State shared by all handlers.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub approvals: ApprovalService,
    pub sign_in: Arc<SignIn>,
    pub shutdown: Shutdown,
    pub events_poll_interval: Duration,
    pub limits: Arc<RateLimits>,
}

impl AppState {
    pub fn new(settings: Arc<Settings>, storage: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        let approvals = ApprovalService::new(storage, clock, settings.approvals.clone());
        let sign_in = Arc::new(SignIn::new(settings.clone(), approvals.clone()));
        let limits = Arc::new(RateLimits::new(&settings.limits));
        limits::spawn_cleanup(&limits);
        Self {
            settings,
            approvals,
            sign_in,
            shutdown: Shutdown::new(),
            events_poll_interval: EVENTS_POLL_INTERVAL,
            limits,
        }
    }
}

/// Builds the router with all routes and middleware.
pub fn router(state: AppState) -> Router {
    let (api, _) = openapi::api_router().split_for_parts();

    // These popup routes write to the database or call the IdP before
    // anyone is authenticated, so they are rate-limited per client address.
    // The remote-approval routes share the limit, because it bounds how
    // fast one client can guess short codes.
    let limited_popup = Router::new()
        .route("/popup/start/{id}", get(popup::start))
        .route("/popup/callback", get(popup::callback))
        .route("/popup/decision", post(popup::decision))
        .route("/r/{code}", get(remote::follow_link))
        .route("/r/{code}/qr.svg", get(remote::qr_image))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limits::limit_popup,
        ));

    let pages = Router::new()
        .route("/popup/signed-out", get(popup::signed_out))
        .route("/popup/popup.css", get(popup::stylesheet))
        .route("/healthz", get(|| async { "ok" }));

    let request_id = HeaderName::from_static("x-request-id");

    // Listed outermost first: the request id must exist before the trace
    // span reads it, and errors are logged inside that span. The security
    // headers wrap everything below them, so rejections made by the timeout,
    // the panic catcher or the router's fallbacks carry them too.
    let layers = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(middleware::from_fn(log_errors))
        .layer(middleware::from_fn(headers::security_headers))
        .layer(CatchPanicLayer::custom(rejection::panic_response))
        .layer(middleware::from_fn_with_state(
            state.settings.limits.request_timeout,
            limits::limit_time,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));

    Router::new()
        .merge(api)
        .merge(limited_popup)
        .merge(pages)
        .fallback(rejection::not_found)
        .method_not_allowed_fallback(rejection::method_not_allowed)
        .layer(layers)
        .with_state(state)
}

/// The request span: method, route pattern and request id. The URI is left
/// out on purpose because its query can hold the events token or an OIDC
/// authorization code.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id,
        api_key = tracing::field::Empty,
    )
}

/// Logs the error carried by a response, once, inside the request span.
async fn log_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(error) = response.extensions().get::<ErrorLog>() {
        let status = status_of(error.code);
        let message = escape_controls(&error.message);
        if status.is_server_error() {
            tracing::error!(
                code = error.code.as_str(),
                status = status.as_u16(),
                "{message}"
            );
        } else {
            tracing::info!(
                code = error.code.as_str(),
                status = status.as_u16(),
                "{message}"
            );
        }
    }
    response
}

/// Escapes control characters, because error messages can quote request
/// values and a line feed in them would forge a log line.
fn escape_controls(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
