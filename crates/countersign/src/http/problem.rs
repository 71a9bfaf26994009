//! `application/problem+json` responses (RFC 9457) with stable codes.
//!
//! Turning an error into a response has no side effects: the log message
//! rides along in a response extension and `log_errors` writes it once,
//! inside the request span.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::approvals::ApprovalError;
use crate::codes::ErrorCode;

/// Maps each code to its HTTP status; responses take their status only from here.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorCode::OriginNotAllowed => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::ApprovalPending => StatusCode::CONFLICT,
        ErrorCode::AlreadyConsumed => StatusCode::CONFLICT,
        ErrorCode::AlreadyDecided => StatusCode::CONFLICT,
        ErrorCode::ApprovalExpired => StatusCode::GONE,
        ErrorCode::PayloadMismatch => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::StorageUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NotAnApprover => StatusCode::FORBIDDEN,
        ErrorCode::OwnRequest => StatusCode::FORBIDDEN,
        ErrorCode::IdpError => StatusCode::BAD_GATEWAY,
        ErrorCode::SignInCancelled => StatusCode::FORBIDDEN,
        ErrorCode::LoginExpired => StatusCode::BAD_REQUEST,
        ErrorCode::SignInNotFresh => StatusCode::FORBIDDEN,
    }
}

fn title_of(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::Unauthorized => "Missing or invalid API key",
        ErrorCode::Forbidden => "Approval request belongs to another API key",
        ErrorCode::NotFound => "Not found",
        ErrorCode::InvalidRequest => "Invalid request",
        ErrorCode::OriginNotAllowed => "Origin not allowed",
        ErrorCode::ApprovalPending => "Approval still pending",
        ErrorCode::AlreadyConsumed => "Approval already consumed",
        ErrorCode::AlreadyDecided => "Approval already decided",
        ErrorCode::ApprovalExpired => "Approval expired",
        ErrorCode::PayloadMismatch => "Payload does not match",
        ErrorCode::AuditUnavailable => "Audit log unavailable",
        ErrorCode::StorageUnavailable => "Storage unavailable",
        ErrorCode::NotAnApprover => "Not an approver",
        ErrorCode::OwnRequest => "Own request",
        ErrorCode::IdpError => "Identity provider error",
        ErrorCode::SignInCancelled => "Sign-in cancelled",
        ErrorCode::LoginExpired => "Sign-in expired",
        ErrorCode::SignInNotFresh => "Sign-in not fresh",
    }
}

/// The log side of an error response, read by `log_errors`.
#[derive(Clone, Debug)]
pub struct ErrorLog {
    pub code: ErrorCode,
    pub message: String,
}

/// An API error: a code, a detail for the client and a message for the log.
#[derive(Debug)]
pub struct Problem {
    code: ErrorCode,
    detail: String,
    log_message: String,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self {
            code,
            log_message: detail.clone(),
            detail,
        }
    }

    /// Sets a log message that differs from the detail sent to the client.
    pub fn with_log_message(mut self, message: impl Into<String>) -> Self {
        self.log_message = message.into();
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = status_of(self.code);
        let body = ProblemBody {
            kind: format!("urn:countersign:problem:{}", self.code),
            title: title_of(self.code),
            status: status.as_u16(),
            detail: &self.detail,
            code: self.code.as_str(),
        };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.code == ErrorCode::Unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorLog {
            code: self.code,
            message: self.log_message,
        });
        response
    }
}

impl From<ApprovalError> for Problem {
    fn from(error: ApprovalError) -> Self {
        let code = error.code();
        match &error {
            ApprovalError::InvalidRequest(detail) => Problem::new(code, detail.clone()),
            ApprovalError::OriginNotAllowed(origin) => Problem::new(
                code,
                format!(
                    "origin {origin} is not in approvals.allowed_origins of the Countersign configuration"
                ),
            ),
            ApprovalError::NotFound => Problem::new(code, "no approval request with this id"),
            ApprovalError::Forbidden => Problem::new(
                code,
                "this approval request was created with another API key",
            ),
            ApprovalError::Pending => {
                Problem::new(code, "the approval request has not been decided yet")
            }
            ApprovalError::AlreadyConsumed => Problem::new(
                code,
                "the approval request was already consumed; it can be consumed only once",
            ),
            ApprovalError::AlreadyDecided(_) => {
                Problem::new(code, "the approval request was already decided")
            }
            ApprovalError::Expired => Problem::new(code, "the approval request has expired"),
            ApprovalError::PayloadMismatch => Problem::new(
                code,
                "the payload does not match the one the approval request was created for",
            ),
            ApprovalError::OwnRequest => {
                Problem::new(code, "the requester cannot approve their own request")
            }
            ApprovalError::AuditUnavailable(cause) => Problem::new(
                code,
                "the audit log cannot be written, so nothing was changed; try again later",
            )
            .with_log_message(format!("audit log write failed: {cause}")),
            ApprovalError::Storage(cause) => {
                Problem::new(code, "the database is unavailable; try again later")
                    .with_log_message(format!("storage failed: {cause}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn design_codes_map_to_their_status() {
        let table = [
            ("unauthorized", 401),
            ("forbidden", 403),
            ("not_found", 404),
            ("invalid_request", 400),
            ("origin_not_allowed", 422),
            ("approval_pending", 409),
            ("already_consumed", 409),
            ("already_decided", 409),
            ("approval_expired", 410),
            ("payload_mismatch", 422),
            ("audit_unavailable", 503),
        ];
        for (text, status) in table {
            let code = ErrorCode::parse(text).unwrap();
            assert_eq!(status_of(code).as_u16(), status, "{text}");
        }
    }

    #[tokio::test]
    async fn problem_body_has_type_and_code() {
        let response = Problem::new(ErrorCode::ApprovalExpired, "gone").into_response();

        assert_eq!(response.status(), StatusCode::GONE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["type"], "urn:countersign:problem:approval_expired");
        assert_eq!(body["code"], "approval_expired");
        assert_eq!(body["status"], 410);
        assert_eq!(body["detail"], "gone");
    }
}
