//! Persistence behind the [`Storage`] trait, with a SQLite implementation.
//!
//! State changes that must be audited take the audit event and write both in
//! one database transaction: if the audit insert fails, the change is rolled
//! back and the call returns [`StorageError::AuditUnavailable`].

mod sqlite;

use futures_util::future::BoxFuture;
use time::OffsetDateTime;

use crate::approvals::{Approval, ApprovalId, Approver, Decision, PayloadHash, RemoteCode};
use crate::audit::{AuditEvent, AuditRecord};

pub use sqlite::SqliteStorage;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Database(String),
    #[error("audit log write failed: {0}")]
    AuditUnavailable(String),
}

/// A decision to record, only from `pending` and only before `expires_at`.
#[derive(Clone, Debug)]
pub struct DecideChange {
    pub id: ApprovalId,
    pub decision: Decision,
    pub approver: Approver,
    pub reason: Option<String>,
    pub now: OffsetDateTime,
}

#[derive(Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// Another request, current or old, already has this remote code;
    /// nothing was written.
    RemoteCodeTaken,
}

#[derive(Debug)]
pub enum DecideOutcome {
    Decided(Box<Approval>),
    NotFound,
    AlreadyDecided(Box<Approval>),
    Expired,
}

/// A consume to record: succeeds once, for the owner's decided and unexpired
/// request whose payload hash matches.
#[derive(Clone, Debug)]
pub struct ConsumeChange {
    pub id: ApprovalId,
    pub api_key_name: String,
    pub payload_hash: PayloadHash,
    pub now: OffsetDateTime,
}

#[derive(Debug)]
pub enum ConsumeOutcome {
    Consumed(Box<Approval>),
    NotFound,
    Forbidden,
    PayloadMismatch,
    AlreadyConsumed,
    Pending,
    Expired,
}

/// The server side of one sign-in attempt in the popup. It never contains a
/// token: only what the callback needs to check the IdP's response, and the
/// outcome and identity found there.
#[derive(Clone, Debug)]
pub struct LoginTransaction {
    /// SHA-256 hex of the random value in the `countersign_login` cookie.
    pub key_hash: String,
    pub approval_id: ApprovalId,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub csrf_token: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// `None` until the callback; then `signed_in` or an error code.
    pub outcome: Option<String>,
    pub approver: Option<Approver>,
}

/// The outcome of a callback, recorded with its audit event.
#[derive(Clone, Debug)]
pub struct LoginOutcome {
    pub key_hash: String,
    pub outcome: String,
    pub approver: Option<Approver>,
}

pub trait Storage: Send + Sync + std::fmt::Debug {
    /// Applies pending migrations.
    fn migrate(&self) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Inserts a new request together with its `approval.requested` event.
    fn insert_approval<'a>(
        &'a self,
        approval: &'a Approval,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<InsertOutcome, StorageError>>;

    fn approval<'a>(
        &'a self,
        id: &'a ApprovalId,
    ) -> BoxFuture<'a, Result<Option<Approval>, StorageError>>;

    /// Finds the request whose remote-approval link has this code, at any
    /// status.
    fn approval_by_remote_code<'a>(
        &'a self,
        code: &'a RemoteCode,
    ) -> BoxFuture<'a, Result<Option<Approval>, StorageError>>;

    /// Records a decision atomically with its audit event.
    fn decide<'a>(
        &'a self,
        change: &'a DecideChange,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<DecideOutcome, StorageError>>;

    /// Marks a request consumed atomically with its audit event.
    fn consume<'a>(
        &'a self,
        change: &'a ConsumeChange,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<ConsumeOutcome, StorageError>>;

    /// Appends an event that records no state change, such as a rejection.
    fn append_audit<'a>(&'a self, audit: &'a AuditEvent)
    -> BoxFuture<'a, Result<(), StorageError>>;

    /// Reads the audit events of one request, oldest first.
    fn audit_events<'a>(
        &'a self,
        id: &'a ApprovalId,
    ) -> BoxFuture<'a, Result<Vec<AuditRecord>, StorageError>>;

    /// Inserts a login transaction with its `signin.started` event, and
    /// deletes transactions that expired more than a day ago.
    fn insert_login<'a>(
        &'a self,
        login: &'a LoginTransaction,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<(), StorageError>>;

    fn login<'a>(
        &'a self,
        key_hash: &'a str,
    ) -> BoxFuture<'a, Result<Option<LoginTransaction>, StorageError>>;

    fn login_by_state<'a>(
        &'a self,
        state: &'a str,
    ) -> BoxFuture<'a, Result<Option<LoginTransaction>, StorageError>>;

    /// Records the callback's outcome with its `signin.*` event, once: a
    /// transaction that already has an outcome is left alone and `false` is
    /// returned.
    fn record_login_outcome<'a>(
        &'a self,
        outcome: &'a LoginOutcome,
        audit: &'a AuditEvent,
    ) -> BoxFuture<'a, Result<bool, StorageError>>;

    fn delete_login<'a>(&'a self, key_hash: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;
}
