//! `application/problem+json` responses (RFC 9457) with stable codes.
//!
//! Turning an error into a response has no side effects: the log message
//! rides along in a response extension and `log_errors` writes it once,
//! inside the request span.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

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
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RequestTimeout => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
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
        ErrorCode::MethodNotAllowed => "Method not allowed",
        ErrorCode::PayloadTooLarge => "Request body too large",
        ErrorCode::UnsupportedMediaType => "Unsupported media type",
        ErrorCode::RateLimited => "Too many requests",
        ErrorCode::RequestTimeout => "Request timed out",
        ErrorCode::InternalError => "Internal error",
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
    retry_after_seconds: Option<u64>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        Self {
            code,
            log_message: detail.clone(),
            detail,
            retry_after_seconds: None,
        }
    }

    /// Adds a `Retry-After` header with the given number of seconds.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    /// Sets a log message that differs from the detail sent to the client.
    pub fn with_log_message(mut self, message: impl Into<String>) -> Self {
        self.log_message = message.into();
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn log_message(&self) -> &str {
        &self.log_message
    }

    pub fn retry_after_seconds(&self) -> Option<u64> {
        self.retry_after_seconds
    }
}

/// The problem+json body (RFC 9457) with the stable `code` added.
#[derive(Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody<'a> {
    /// `urn:countersign:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(example = "urn:countersign:problem:invalid_request")]
    kind: String,
    /// A short text for people; it may change.
    #[schema(example = "Invalid request")]
    title: &'a str,
    /// The HTTP status code of the response.
    #[schema(example = 400)]
    status: u16,
    /// The reason for the rejection and how to fix it, for people; it may change.
    #[schema(example = "lifetime_seconds is 5; it must be from 30 to 1800")]
    detail: &'a str,
    /// The stable error code to match on.
    #[schema(example = "invalid_request")]
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
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
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
            ("method_not_allowed", 405),
            ("payload_too_large", 413),
            ("unsupported_media_type", 415),
            ("rate_limited", 429),
            ("request_timeout", 503),
            ("internal_error", 500),
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
