//! The host API under `/api/v1`. Handlers authenticate, parse, call one
//! service function and shape the response.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::AppState;
use super::auth::ApiClient;
use super::problem::Problem;
use crate::approvals::{
    Approval, ApprovalId, Approver, NewApproval, PayloadHash, PayloadProof, Status,
};
use crate::codes::ErrorCode;

/// JSON body extractor whose rejections are problem+json `invalid_request`.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> Problem {
    let detail = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "send the body as JSON with `Content-Type: application/json`".to_owned()
        }
        JsonRejection::BytesRejection(_) => {
            format!("the body could not be read: {}", rejection.body_text())
        }
        _ => rejection.body_text(),
    };
    Problem::new(ErrorCode::InvalidRequest, detail)
}

fn parse_id(text: &str) -> Result<ApprovalId, Problem> {
    ApprovalId::parse(text)
        .ok_or_else(|| Problem::new(ErrorCode::NotFound, "no approval request with this id"))
}

#[derive(Serialize)]
pub struct CreatedResponse {
    id: ApprovalId,
    status: Status,
    approval_url: String,
    events_url: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    payload_hash: PayloadHash,
}

/// `POST /api/v1/approvals`
pub async fn create(
    client: ApiClient,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewApproval>,
) -> Result<(StatusCode, Json<CreatedResponse>), Problem> {
    let created = state.approvals.create(&client.name, input).await?;
    let approval = &created.approval;

    let approval_url = state
        .settings
        .public_url_for(&format!("popup/start/{}", approval.id));
    let mut events_url = state
        .settings
        .public_url_for(&format!("api/v1/approvals/{}/events", approval.id));
    events_url
        .query_pairs_mut()
        .append_pair("token", &created.events_token);

    let body = CreatedResponse {
        id: approval.id.clone(),
        status: approval.status(state.approvals.now()),
        approval_url: approval_url.into(),
        events_url: events_url.into(),
        expires_at: approval.expires_at,
        payload_hash: approval.payload_hash.clone(),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Serialize)]
pub struct StatusResponse {
    id: ApprovalId,
    status: Status,
    consumed: bool,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    decided_at: Option<OffsetDateTime>,
    approver: Option<Approver>,
    reason: Option<String>,
}

impl StatusResponse {
    fn new(approval: &Approval, now: OffsetDateTime) -> Self {
        let decision = approval.decision.as_ref();
        Self {
            id: approval.id.clone(),
            status: approval.status(now),
            consumed: approval.consumed_at.is_some(),
            expires_at: approval.expires_at,
            decided_at: decision.map(|d| d.decided_at),
            approver: decision.map(|d| d.approver.clone()),
            reason: decision.and_then(|d| d.reason.clone()),
        }
    }
}

/// `GET /api/v1/approvals/{id}`
pub async fn status(
    client: ApiClient,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StatusResponse>, Problem> {
    let id = parse_id(&id)?;
    let approval = state.approvals.get_owned(&client.name, &id).await?;
    Ok(Json(StatusResponse::new(&approval, state.approvals.now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumeRequest {
    payload: Option<Value>,
    payload_hash: Option<String>,
}

#[derive(Serialize)]
pub struct ConsumeResponse {
    id: ApprovalId,
    decision: &'static str,
    reason: Option<String>,
    approver: Approver,
    #[serde(with = "time::serde::rfc3339")]
    decided_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    consumed_at: OffsetDateTime,
    payload_hash: PayloadHash,
}

/// `POST /api/v1/approvals/{id}/consume`
pub async fn consume(
    client: ApiClient,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ConsumeRequest>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let proof = match (request.payload, request.payload_hash) {
        (Some(payload), None) => PayloadProof::Payload(payload),
        (None, Some(hash)) => PayloadProof::Hash(PayloadHash::parse(&hash).ok_or_else(|| {
            Problem::new(
                ErrorCode::InvalidRequest,
                "payload_hash must be `sha256:` followed by 64 hex digits",
            )
        })?),
        _ => {
            return Err(Problem::new(
                ErrorCode::InvalidRequest,
                "send exactly one of `payload` and `payload_hash`",
            ));
        }
    };

    let approval = state.approvals.consume(&client.name, &id, proof).await?;

    // The storage only consumes decided requests, so both are present.
    let (Some(decision), Some(consumed_at)) = (approval.decision, approval.consumed_at) else {
        return Err(Problem::new(
            ErrorCode::StorageUnavailable,
            "the stored approval is incomplete",
        )
        .with_log_message(format!(
            "consumed approval {id} has no decision or consume time"
        )));
    };
    let body = ConsumeResponse {
        id: approval.id,
        decision: decision.decision.as_str(),
        reason: decision.reason,
        approver: decision.approver,
        decided_at: decision.decided_at,
        consumed_at,
        payload_hash: approval.payload_hash,
    };
    Ok(Json(body).into_response())
}

/// Fallback for unknown paths under `/api`.
pub async fn not_found() -> Problem {
    Problem::new(ErrorCode::NotFound, "no such API endpoint")
}
