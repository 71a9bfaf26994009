//! The host API under `/api/v1`. Handlers authenticate, parse, call one
//! service function and shape the response. The request and response types
//! here are the wire format; the `#[utoipa::path]` attributes describe them
//! in the OpenAPI document served at `/api/v1/openapi.json`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::AppState;
use super::auth::ApiClient;
use super::extract::{ApiJson, ApiPath};
use super::input::{check_details, check_origin_text, check_plain_text};
use super::problem::{Problem, ProblemBody};
use crate::approvals::{
    Approval, ApprovalId, Approver, Decision, NewApproval, PayloadHash, PayloadProof, Requester,
    Status,
};
use crate::codes::ErrorCode;

pub(super) const TAG: &str = "approvals";

fn parse_id(text: &str) -> Result<ApprovalId, Problem> {
    ApprovalId::parse(text)
        .ok_or_else(|| Problem::new(ErrorCode::NotFound, "no approval request with this id"))
}

/// A new approval request.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "action": "refund",
    "summary": "Refund order 1001: 49.90 EUR",
    "details": {"order": "1001", "amount": "49.90", "currency": "EUR"},
    "requester": {"sub": "c1", "name": "Carla Cashier"},
    "required_role": "MANAGER",
    "origin": "http://localhost:18400",
    "lifetime_seconds": 300
}))]
pub struct CreateRequest {
    /// The action to approve, 1 to 100 characters.
    #[schema(example = "refund", min_length = 1, max_length = 100)]
    action: String,
    /// The line the approver reads first, 1 to 500 characters.
    #[schema(
        example = "Refund order 1001: 49.90 EUR",
        min_length = 1,
        max_length = 500
    )]
    summary: String,
    /// Facts shown to the approver as a table of the top-level fields. At
    /// most 16 KiB as canonical JSON, nested at most 10 levels deep.
    #[schema(value_type = Object, example = json!({"order": "1001", "amount": "49.90", "currency": "EUR"}))]
    details: Map<String, Value>,
    requester: RequesterBody,
    /// The role the approver must hold, 1 to 255 characters.
    #[schema(example = "MANAGER", min_length = 1, max_length = 255)]
    required_role: String,
    /// The origin of the frontend that opens the popup; it must be in
    /// `approvals.allowed_origins`.
    #[schema(example = "http://localhost:18400")]
    origin: String,
    /// Lifetime in seconds, from 30 to `approvals.max_lifetime_seconds`;
    /// `approvals.default_lifetime_seconds` when absent or null.
    #[schema(example = 300, minimum = 30)]
    lifetime_seconds: Option<i64>,
}

/// The person who asked for the approval, as vouched for by the host backend.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequesterBody {
    /// The requester's subject at the IdP; an approver with this subject is refused.
    #[schema(example = "c1", min_length = 1, max_length = 255)]
    sub: String,
    /// The requester's name as shown to the approver.
    #[schema(example = "Carla Cashier", min_length = 1, max_length = 255)]
    name: String,
}

impl CreateRequest {
    /// Checks what the wire format adds to the rules of the approvals
    /// service, then converts to the service's input.
    fn into_new_approval(self) -> Result<NewApproval, Problem> {
        check_plain_text("action", &self.action)?;
        check_plain_text("summary", &self.summary)?;
        check_plain_text("requester.sub", &self.requester.sub)?;
        check_plain_text("requester.name", &self.requester.name)?;
        check_plain_text("required_role", &self.required_role)?;
        check_origin_text(&self.origin)?;
        check_details(&self.details)?;

        Ok(NewApproval {
            action: self.action,
            summary: self.summary,
            details: Value::Object(self.details),
            requester: Requester {
                sub: self.requester.sub,
                name: self.requester.name,
            },
            required_role: self.required_role,
            origin: self.origin,
            lifetime_seconds: self.lifetime_seconds,
        })
    }
}

/// The status of an approval request.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl From<Status> for ApprovalStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => ApprovalStatus::Pending,
            Status::Approved => ApprovalStatus::Approved,
            Status::Rejected => ApprovalStatus::Rejected,
            Status::Expired => ApprovalStatus::Expired,
        }
    }
}

/// The decision of the approver.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecisionName {
    Approved,
    Rejected,
}

impl From<Decision> for DecisionName {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Approved => DecisionName::Approved,
            Decision::Rejected => DecisionName::Rejected,
        }
    }
}

/// The person who decided, as proven by their sign-in at the IdP.
#[derive(Serialize, ToSchema)]
pub struct ApproverBody {
    #[schema(example = "5e0c1a2b")]
    sub: String,
    #[schema(example = "Maria Manager")]
    name: Option<String>,
    #[schema(example = "manager")]
    username: Option<String>,
}

impl From<Approver> for ApproverBody {
    fn from(approver: Approver) -> Self {
        Self {
            sub: approver.sub,
            name: approver.name,
            username: approver.username,
        }
    }
}

/// A created approval request.
#[derive(Serialize, ToSchema)]
pub struct CreatedResponse {
    /// 128 random bits, base64url.
    #[schema(value_type = String, example = "m_B2vdAC0287nxqOjwxsTQ")]
    id: ApprovalId,
    status: ApprovalStatus,
    /// The popup URL to open for the approver.
    approval_url: String,
    /// The Server-Sent Events URL with the events token; returned only here.
    events_url: String,
    /// The short link for approving on another device, `<public_url>/r/<code>`.
    /// It redirects to `approval_url` while the request is pending.
    #[schema(example = "http://127.0.0.1:18300/r/7k2m9qdx4h")]
    remote_url: String,
    /// An SVG image of a QR code of `remote_url`, for the requester's screen.
    #[schema(example = "http://127.0.0.1:18300/r/7k2m9qdx4h/qr.svg")]
    remote_qr_url: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
    /// SHA-256 of the RFC 8785 canonical payload.
    #[schema(value_type = String, pattern = "^sha256:[0-9a-f]{64}$")]
    payload_hash: PayloadHash,
}

/// `POST /api/v1/approvals`
#[utoipa::path(
    post,
    path = "/api/v1/approvals",
    tag = TAG,
    summary = "Create an approval request",
    request_body = CreateRequest,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The request was created.", body = CreatedResponse,
            links(
                ("status" = (operation_id = "status", parameters(("id" = "$response.body#/id")))),
                ("consume" = (operation_id = "consume", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "`invalid_request`: the body is not valid JSON, has an unknown field, misses a field, or a value is out of range.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no API key or an unknown one.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is larger than 64 KiB.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `application/json`.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`origin_not_allowed`: `origin` is not in `approvals.allowed_origins`.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: this API key created more than `limits.create_per_minute` requests in a minute; see `Retry-After`.", body = ProblemBody, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before the next request."))),
        (status = 503, description = "`audit_unavailable`, `storage_unavailable` or `request_timeout`: nothing was changed; try again later.", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    client: ApiClient,
    State(state): State<AppState>,
    ApiJson(input): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<CreatedResponse>), Problem> {
    let input = input.into_new_approval()?;
    state.limits.check_create(&client.name)?;
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

    let (remote_url, remote_qr_url) = match &approval.remote_code {
        Some(code) => super::remote::remote_urls(&state.settings, code),
        None => {
            return Err(Problem::new(
                ErrorCode::InternalError,
                "the created request has no remote code",
            ));
        }
    };

    let body = CreatedResponse {
        id: approval.id.clone(),
        status: approval.status(state.approvals.now()).into(),
        approval_url: approval_url.into(),
        events_url: events_url.into(),
        remote_url: remote_url.into(),
        remote_qr_url: remote_qr_url.into(),
        expires_at: approval.expires_at,
        payload_hash: approval.payload_hash.clone(),
    };
    Ok((StatusCode::CREATED, Json(body)))
}

/// The state of an approval request.
#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    #[schema(value_type = String, example = "m_B2vdAC0287nxqOjwxsTQ")]
    id: ApprovalId,
    status: ApprovalStatus,
    /// Whether the decision was consumed.
    consumed: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    decided_at: Option<OffsetDateTime>,
    approver: Option<ApproverBody>,
    /// The approver's reason, when one was given.
    reason: Option<String>,
}

impl StatusResponse {
    fn new(approval: &Approval, now: OffsetDateTime) -> Self {
        let decision = approval.decision.as_ref();
        Self {
            id: approval.id.clone(),
            status: approval.status(now).into(),
            consumed: approval.consumed_at.is_some(),
            expires_at: approval.expires_at,
            decided_at: decision.map(|d| d.decided_at),
            approver: decision.map(|d| d.approver.clone().into()),
            reason: decision.and_then(|d| d.reason.clone()),
        }
    }
}

/// `GET /api/v1/approvals/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}",
    tag = TAG,
    summary = "Read the status of an approval request",
    params(("id" = String, Path, description = "The id returned by create.")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The current status.", body = StatusResponse),
        (status = 401, description = "`unauthorized`: no API key or an unknown one.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the request was created with another API key.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no request with this id.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`storage_unavailable` or `request_timeout`: try again later.", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn status(
    client: ApiClient,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
) -> Result<Json<StatusResponse>, Problem> {
    let id = parse_id(&id)?;
    let approval = state.approvals.get_owned(&client.name, &id).await?;
    Ok(Json(StatusResponse::new(&approval, state.approvals.now())))
}

/// The proof of the payload: exactly one of `payload` and `payload_hash`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumeRequest {
    /// The payload `{"action", "details", "requester": {"sub", "name"}}`
    /// of the action about to be executed.
    #[schema(value_type = Option<Object>)]
    payload: Option<Value>,
    /// `sha256:` and the lowercase hex SHA-256 of the canonical payload.
    #[schema(pattern = "^sha256:[0-9a-fA-F]{64}$")]
    payload_hash: Option<String>,
}

/// A consumed decision.
#[derive(Serialize, ToSchema)]
pub struct ConsumeResponse {
    #[schema(value_type = String, example = "m_B2vdAC0287nxqOjwxsTQ")]
    id: ApprovalId,
    decision: DecisionName,
    /// The approver's reason, when one was given.
    reason: Option<String>,
    approver: ApproverBody,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    decided_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    consumed_at: OffsetDateTime,
    #[schema(value_type = String, pattern = "^sha256:[0-9a-f]{64}$")]
    payload_hash: PayloadHash,
}

/// `POST /api/v1/approvals/{id}/consume`
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}/consume",
    tag = TAG,
    summary = "Consume the decision, once",
    params(("id" = String, Path, description = "The id returned by create.")),
    request_body = ConsumeRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The decision; execute the action only when it is `approved`.", body = ConsumeResponse),
        (status = 400, description = "`invalid_request`: the body is not valid JSON, has an unknown field, or does not send exactly one of `payload` and `payload_hash`.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "`unauthorized`: no API key or an unknown one.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the request was created with another API key.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no request with this id.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`approval_pending` or `already_consumed`.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 410, description = "`approval_expired`.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`: the body is larger than 64 KiB.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: the body is not sent as `application/json`.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "`payload_mismatch`: the payload is not the one the request was created for.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`audit_unavailable`, `storage_unavailable` or `request_timeout`: nothing was changed; try again later.", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn consume(
    client: ApiClient,
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    ApiJson(request): ApiJson<ConsumeRequest>,
) -> Result<Json<ConsumeResponse>, Problem> {
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
    Ok(Json(ConsumeResponse {
        id: approval.id,
        decision: decision.decision.into(),
        reason: decision.reason,
        approver: decision.approver.into(),
        decided_at: decision.decided_at,
        consumed_at,
        payload_hash: approval.payload_hash,
    }))
}
