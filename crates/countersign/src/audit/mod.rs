//! The append-only audit log.
//!
//! Storage writes an event in the same database transaction as the state
//! change it records, so a change that cannot be audited is rolled back.
//! Events carry identities and codes, never a token, secret or API key.

use serde_json::Value;
use time::OffsetDateTime;

use crate::approvals::ApprovalId;

/// The kinds of audit events, written to the `event` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditKind {
    ApprovalRequested,
    SigninStarted,
    SigninSucceeded,
    /// A failed sign-in attempt, with the reason as its code (`not_an_approver`, ...).
    SigninFailed,
    ApprovalDecided,
    ApprovalConsumed,
    /// A consume that was refused; the code is the API error code.
    ConsumeRejected,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::ApprovalRequested => "approval.requested",
            AuditKind::SigninStarted => "signin.started",
            AuditKind::SigninSucceeded => "signin.succeeded",
            AuditKind::SigninFailed => "signin.failed",
            AuditKind::ApprovalDecided => "approval.decided",
            AuditKind::ApprovalConsumed => "approval.consumed",
            AuditKind::ConsumeRejected => "consume.rejected",
        }
    }
}

/// An event to append.
#[derive(Clone, Debug)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub at: OffsetDateTime,
    pub approval_id: Option<ApprovalId>,
    /// The acting party: an API key name, or an approver's subject.
    pub actor: Option<String>,
    /// The reason code of a failure or rejection.
    pub code: Option<String>,
    pub details: Value,
}

impl AuditEvent {
    pub fn new(kind: AuditKind, at: OffsetDateTime, approval_id: &ApprovalId) -> Self {
        Self {
            kind,
            at,
            approval_id: Some(approval_id.clone()),
            actor: None,
            code: None,
            details: Value::Object(serde_json::Map::new()),
        }
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// Emits the event as a structured tracing event, after it is stored.
    pub fn trace(&self) {
        tracing::info!(
            event = self.kind.as_str(),
            approval_id = self.approval_id.as_ref().map(ApprovalId::as_str),
            actor = self.actor.as_deref(),
            code = self.code.as_deref(),
            "audit event recorded"
        );
    }
}

/// An event read back from the log.
#[derive(Clone, Debug)]
pub struct AuditRecord {
    pub id: i64,
    pub recorded_at: OffsetDateTime,
    pub event: String,
    pub approval_id: Option<String>,
    pub actor: Option<String>,
    pub code: Option<String>,
    pub details: Value,
}
