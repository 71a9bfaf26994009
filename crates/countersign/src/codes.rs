//! The stable error codes shared by the API, the popup pages and the audit
//! log. `http::problem` maps each to its HTTP status.

/// A stable, greppable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    Unauthorized,
    Forbidden,
    NotFound,
    InvalidRequest,
    OriginNotAllowed,
    ApprovalPending,
    AlreadyConsumed,
    AlreadyDecided,
    ApprovalExpired,
    PayloadMismatch,
    AuditUnavailable,
    /// The database failed for a reason other than the audit log.
    StorageUnavailable,
    /// The approver signed in but lacks the required role.
    NotAnApprover,
    /// The approver is the requester.
    OwnRequest,
    /// The IdP returned an error, or its response failed verification.
    IdpError,
    /// The approver cancelled the sign-in at the IdP.
    SignInCancelled,
    /// The login transaction is missing, expired, or does not match.
    LoginExpired,
    /// The IdP did not prove a fresh sign-in (`auth_time`, `acr`).
    SignInNotFresh,
    /// The path exists, but not for this HTTP method.
    MethodNotAllowed,
    /// The request body is larger than the body limit.
    PayloadTooLarge,
    /// The request body is not sent as `application/json`.
    UnsupportedMediaType,
    /// The caller sent more requests than its rate limit allows.
    RateLimited,
    /// The request took longer than `limits.request_timeout_seconds`.
    RequestTimeout,
    /// A handler panicked; the panic was caught and logged.
    InternalError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::OriginNotAllowed => "origin_not_allowed",
            ErrorCode::ApprovalPending => "approval_pending",
            ErrorCode::AlreadyConsumed => "already_consumed",
            ErrorCode::AlreadyDecided => "already_decided",
            ErrorCode::ApprovalExpired => "approval_expired",
            ErrorCode::PayloadMismatch => "payload_mismatch",
            ErrorCode::AuditUnavailable => "audit_unavailable",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::NotAnApprover => "not_an_approver",
            ErrorCode::OwnRequest => "own_request",
            ErrorCode::IdpError => "idp_error",
            ErrorCode::SignInCancelled => "sign_in_cancelled",
            ErrorCode::LoginExpired => "login_expired",
            ErrorCode::SignInNotFresh => "sign_in_not_fresh",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// Parses a code stored in a login transaction.
    pub fn parse(text: &str) -> Option<Self> {
        ALL.iter().copied().find(|code| code.as_str() == text)
    }
}

const ALL: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::NotFound,
    ErrorCode::InvalidRequest,
    ErrorCode::OriginNotAllowed,
    ErrorCode::ApprovalPending,
    ErrorCode::AlreadyConsumed,
    ErrorCode::AlreadyDecided,
    ErrorCode::ApprovalExpired,
    ErrorCode::PayloadMismatch,
    ErrorCode::AuditUnavailable,
    ErrorCode::StorageUnavailable,
    ErrorCode::NotAnApprover,
    ErrorCode::OwnRequest,
    ErrorCode::IdpError,
    ErrorCode::SignInCancelled,
    ErrorCode::LoginExpired,
    ErrorCode::SignInNotFresh,
    ErrorCode::MethodNotAllowed,
    ErrorCode::PayloadTooLarge,
    ErrorCode::UnsupportedMediaType,
    ErrorCode::RateLimited,
    ErrorCode::RequestTimeout,
    ErrorCode::InternalError,
];

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back() {
        for code in ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
        assert_eq!(ErrorCode::parse("signed_in"), None);
    }
}
