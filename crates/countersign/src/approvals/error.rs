use super::model::Approval;
use crate::codes::ErrorCode;
use crate::storage::StorageError;

/// The reason an approvals operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("origin {0} is not in approvals.allowed_origins")]
    OriginNotAllowed(String),
    #[error("approval request not found")]
    NotFound,
    #[error("approval request belongs to another API key")]
    Forbidden,
    #[error("approval request is still pending")]
    Pending,
    #[error("approval request was already consumed")]
    AlreadyConsumed,
    #[error("approval request was already decided")]
    AlreadyDecided(Box<Approval>),
    #[error("approval request has expired")]
    Expired,
    #[error("payload does not match the approval request")]
    PayloadMismatch,
    #[error("the approver is the requester")]
    OwnRequest,
    #[error("audit log write failed: {0}")]
    AuditUnavailable(String),
    #[error("storage failed: {0}")]
    Storage(String),
}

impl ApprovalError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApprovalError::InvalidRequest(_) => ErrorCode::InvalidRequest,
            ApprovalError::OriginNotAllowed(_) => ErrorCode::OriginNotAllowed,
            ApprovalError::NotFound => ErrorCode::NotFound,
            ApprovalError::Forbidden => ErrorCode::Forbidden,
            ApprovalError::Pending => ErrorCode::ApprovalPending,
            ApprovalError::AlreadyConsumed => ErrorCode::AlreadyConsumed,
            ApprovalError::AlreadyDecided(_) => ErrorCode::AlreadyDecided,
            ApprovalError::Expired => ErrorCode::ApprovalExpired,
            ApprovalError::PayloadMismatch => ErrorCode::PayloadMismatch,
            ApprovalError::OwnRequest => ErrorCode::OwnRequest,
            ApprovalError::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
            ApprovalError::Storage(_) => ErrorCode::StorageUnavailable,
        }
    }
}

impl From<StorageError> for ApprovalError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::AuditUnavailable(cause) => ApprovalError::AuditUnavailable(cause),
            StorageError::Database(cause) => ApprovalError::Storage(cause),
        }
    }
}
