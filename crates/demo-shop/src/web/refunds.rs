//! Refunds: create the approval request at Countersign, then consume the
//! approval and execute the refund only when Countersign confirms it.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum_extra::extract::CookieJar;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{SharedState, check_same_origin};
use crate::countersign::CountersignError;
use crate::error::ApiError;
use crate::orders::{
    Requester, approval_request, decision_reason, executed_message, find_order, refund_payload,
    refused_message,
};
use crate::session::{MAX_APPROVALS_PER_SESSION, RememberedApproval, session_id};

fn forbidden((status, message): (StatusCode, String)) -> ApiError {
    ApiError::new(status, message)
}

/// Creates the approval request for a refund and returns Countersign's
/// response (`id`, `approval_url`, `events_url`, `expires_at`) to the SDK.
pub async fn create_approval(
    State(state): State<SharedState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(order_id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    check_same_origin(&headers, &state.public_origin).map_err(forbidden)?;
    let session_id = session_id(&jar).ok_or_else(ApiError::not_signed_in)?;
    let order = find_order(&order_id).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("Order {order_id} does not exist."),
        )
    })?;

    let requester = state
        .sessions
        .with(&session_id, |session| {
            let user = session.user.as_ref()?;
            if session.refunded_orders.contains(order.id) {
                return Some(Err(ApiError::new(StatusCode::CONFLICT, format!("Order {} is already refunded.", order.id))));
            }
            if session.approvals.len() >= MAX_APPROVALS_PER_SESSION {
                return Some(Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("This session already requested {MAX_APPROVALS_PER_SESSION} approvals. Sign out and in again."),
                )));
            }
            Some(Ok((user.sub.clone(), user.name.clone())))
        })
        .flatten()
        .ok_or_else(ApiError::not_signed_in)??;

    let (sub, name) = requester;
    let payload = refund_payload(
        order,
        &Requester {
            sub: &sub,
            name: &name,
        },
    );
    let request = approval_request(order, &payload, &state.public_origin);

    let (approval_id, created) =
        state
            .countersign
            .create_approval(&request)
            .await
            .map_err(|error| {
                tracing::error!(%error, order = order.id, "creating the approval request failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("Countersign did not create the approval request: {error}"),
                )
            })?;
    tracing::info!(%approval_id, order = order.id, requester = %sub, "approval requested");

    state.sessions.with(&session_id, |session| {
        let remembered = RememberedApproval {
            order_id: order.id.to_owned(),
            payload,
        };
        session.approvals.insert(approval_id, remembered);
    });
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Deserialize)]
pub struct ExecuteRequest {
    approval_id: String,
}

#[derive(Debug, Serialize)]
pub struct ExecuteResponse {
    ok: bool,
    message: String,
}

/// Consumes the approval with the payload that the shop remembered when it
/// created the request, and executes the refund only on an approved decision.
/// The browser names the approval but never supplies what it covers.
pub async fn execute(
    State(state): State<SharedState>,
    jar: CookieJar,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Result<Json<ExecuteRequest>, JsonRejection>,
) -> Result<Json<ExecuteResponse>, ApiError> {
    check_same_origin(&headers, &state.public_origin).map_err(forbidden)?;
    let session_id = session_id(&jar).ok_or_else(ApiError::not_signed_in)?;
    let Json(ExecuteRequest { approval_id }) = body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            format!(
                "The request body must be JSON {{\"approval_id\": \"...\"}}: {}",
                rejection.body_text()
            ),
        )
    })?;

    let payload = state
        .sessions
        .with(&session_id, |session| {
            session.user.as_ref()?;
            let remembered = session
                .approvals
                .get(&approval_id)
                .filter(|remembered| remembered.order_id == order_id);
            Some(remembered.map(|remembered| remembered.payload.clone()))
        })
        .flatten()
        .ok_or_else(ApiError::not_signed_in)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                refused_message(
                    &order_id,
                    "this session did not request that approval for this order",
                ),
            )
        })?;

    let consumed = match state.countersign.consume(&approval_id, &payload).await {
        Ok(consumed) => consumed,
        Err(CountersignError::Problem { code, detail, .. }) => {
            tracing::warn!(%approval_id, order = %order_id, %code, "Countersign rejected the consume call");
            let message = refused_message(&order_id, &format!("{detail} ({code})"));
            return Ok(Json(ExecuteResponse { ok: false, message }));
        }
        Err(error) => {
            tracing::error!(%approval_id, order = %order_id, %error, "consuming the approval failed");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!(
                    "Refund of order {order_id} not done: consuming the approval at Countersign failed: {error}"
                ),
            ));
        }
    };

    if consumed.decision != "approved" {
        tracing::info!(%approval_id, order = %order_id, decision = %consumed.decision, "refund rejected by the approver");
        let message = refused_message(&order_id, &decision_reason(&consumed));
        return Ok(Json(ExecuteResponse { ok: false, message }));
    }

    let newly_refunded = state.sessions.with(&session_id, |session| {
        session.refunded_orders.insert(order_id.clone())
    });
    match newly_refunded {
        Some(true) => {
            let approver = consumed
                .approver
                .as_ref()
                .map(|approver| approver.sub.as_str())
                .unwrap_or_default();
            tracing::info!(%approval_id, order = %order_id, approver, "refund executed");
            Ok(Json(ExecuteResponse {
                ok: true,
                message: executed_message(&order_id, &consumed),
            }))
        }
        Some(false) => Ok(Json(ExecuteResponse {
            ok: false,
            message: refused_message(&order_id, "the order was already refunded"),
        })),
        None => Err(ApiError::not_signed_in()),
    }
}
