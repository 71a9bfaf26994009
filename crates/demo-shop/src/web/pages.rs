//! The order page and the static files.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::CookieJar;

use super::SharedState;
use crate::error::PageError;
use crate::orders::ORDERS;
use crate::session::session_id;

pub struct UserView {
    pub username: String,
    pub name: String,
}

pub struct OrderRow {
    pub id: &'static str,
    pub items: String,
    pub amount: String,
    pub currency: &'static str,
    pub refunded: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
pub struct IndexPage {
    user: Option<UserView>,
    orders: Vec<OrderRow>,
    countersign_origin: String,
}

pub async fn index(State(state): State<SharedState>, jar: CookieJar) -> IndexPage {
    let signed_in = session_id(&jar).and_then(|id| {
        state.sessions.with(&id, |session| {
            let user = session.user.as_ref()?;
            let view = UserView {
                username: user.username.clone(),
                name: user.name.clone(),
            };
            Some((view, session.refunded_orders.clone()))
        })?
    });

    let (user, orders) = match signed_in {
        Some((user, refunded)) => {
            let orders = ORDERS
                .iter()
                .map(|order| OrderRow {
                    id: order.id,
                    items: order.item_lines().join(", "),
                    amount: order.amount(),
                    currency: order.currency,
                    refunded: refunded.contains(order.id),
                })
                .collect();
            (Some(user), orders)
        }
        None => (None, Vec::new()),
    };

    IndexPage {
        user,
        orders,
        countersign_origin: state.countersign_origin.clone(),
    }
}

/// Serves the built SDK, read on every request so that a rebuild shows up
/// without restarting the shop.
pub async fn sdk_script(State(state): State<SharedState>) -> Response {
    match tokio::fs::read(&state.sdk_path).await {
        Ok(script) => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            script,
        )
            .into_response(),
        Err(error) => {
            let path = state.sdk_path.display();
            tracing::warn!(%path, %error, "the browser SDK file cannot be read");
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!(
                    "The Countersign browser SDK is not built: reading {path} failed ({error}). \
                     Run `npm ci && npm run build` in sdk/, or point SHOP_SDK_PATH at countersign.js."
                ),
            )
                .into_response()
        }
    }
}

pub async fn shop_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../static/shop.js"),
    )
}

pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        include_str!("../../static/shop.css"),
    )
}

pub async fn not_found() -> PageError {
    PageError::home(
        StatusCode::NOT_FOUND,
        "Page not found",
        "The shop has no page at this address.",
    )
}
