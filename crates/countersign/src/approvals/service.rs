//! The approvals service: create, read, decide and consume requests.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use time::Duration;
use tokio::sync::broadcast;

use super::error::ApprovalError;
use super::hash::{PayloadHash, hash_canonical, hash_payload};
use super::ids::{ApprovalId, constant_time_eq, random_token, sha256_hex};
use super::model::{Approval, Approver, Decision, Requester};
use super::remote_code::RemoteCode;
use super::{Clock, parse_origin};
use crate::audit::{AuditEvent, AuditKind};
use crate::config::ApprovalSettings;
use crate::storage::{
    ConsumeChange, ConsumeOutcome, DecideChange, DecideOutcome, InsertOutcome, Storage,
};

/// Shortest lifetime a request may ask for: a sign-in takes time.
pub const MIN_LIFETIME_SECONDS: i64 = 30;

const MAX_ACTION_CHARS: usize = 100;
const MAX_SUMMARY_CHARS: usize = 500;
const MAX_NAME_CHARS: usize = 255;
const MAX_REASON_CHARS: usize = 500;
/// Maximum size of `details` in its canonical JSON form.
const MAX_DETAILS_BYTES: usize = 16 * 1024;
/// Remote codes drawn per request before create fails. With 50 random bits
/// per code and a hundred million stored requests, one draw collides with a
/// chance of about 1 in 11 million, so three collisions in a row are less
/// likely than 1 in 10^21.
const REMOTE_CODE_ATTEMPTS: usize = 3;

/// A new approval request as the host backend sends it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApproval {
    pub action: String,
    pub summary: String,
    pub details: Value,
    pub requester: Requester,
    pub required_role: String,
    pub origin: String,
    pub lifetime_seconds: Option<i64>,
}

/// A created request and the events token, which is returned once and
/// stored only as a hash.
#[derive(Debug)]
pub struct Created {
    pub approval: Approval,
    pub events_token: String,
}

/// The proof of the payload in a consume request.
#[derive(Clone, Debug)]
pub enum PayloadProof {
    Payload(Value),
    Hash(PayloadHash),
}

#[derive(Clone, Debug)]
pub struct ApprovalService {
    storage: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
    settings: ApprovalSettings,
    changes: broadcast::Sender<ApprovalId>,
}

impl ApprovalService {
    pub fn new(
        storage: Arc<dyn Storage>,
        clock: Arc<dyn Clock>,
        settings: ApprovalSettings,
    ) -> Self {
        let (changes, _) = broadcast::channel(256);
        Self {
            storage,
            clock,
            settings,
            changes,
        }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    /// Receives the id of every request whose decision this process records.
    pub fn subscribe(&self) -> broadcast::Receiver<ApprovalId> {
        self.changes.subscribe()
    }

    /// Validates and stores a new request owned by the API key `owner`.
    pub async fn create(&self, owner: &str, input: NewApproval) -> Result<Created, ApprovalError> {
        let origin = self.check_new(&input)?;
        let lifetime = input
            .lifetime_seconds
            .unwrap_or(self.settings.default_lifetime_seconds);

        let payload_hash = hash_payload(
            &input.action,
            &input.details,
            &input.requester.sub,
            &input.requester.name,
        )
        .map_err(|error| {
            ApprovalError::InvalidRequest(format!("details cannot be hashed: {error}"))
        })?;

        let now = self.clock.now();
        let events_token = random_token();
        let mut approval = Approval {
            id: ApprovalId::generate(),
            api_key_name: owner.to_owned(),
            action: input.action,
            summary: input.summary,
            details: input.details,
            requester: input.requester,
            required_role: input.required_role,
            origin,
            payload_hash,
            events_token_hash: sha256_hex(&events_token),
            remote_code: Some(RemoteCode::generate()),
            created_at: now,
            expires_at: now + Duration::seconds(lifetime),
            decision: None,
            consumed_at: None,
        };

        let audit = AuditEvent::new(AuditKind::ApprovalRequested, now, &approval.id)
            .actor(owner)
            .details(json!({
                "action": approval.action,
                "required_role": approval.required_role,
                "requester_sub": approval.requester.sub,
                "origin": approval.origin,
                "payload_hash": approval.payload_hash,
                "expires_at": approval.expires_at.unix_timestamp(),
            }));
        self.insert_with_unique_code(&mut approval, &audit).await?;
        audit.trace();

        Ok(Created {
            approval,
            events_token,
        })
    }

    /// Inserts the request, drawing a new remote code while the drawn one
    /// belongs to another request.
    async fn insert_with_unique_code(
        &self,
        approval: &mut Approval,
        audit: &AuditEvent,
    ) -> Result<(), ApprovalError> {
        for _ in 0..REMOTE_CODE_ATTEMPTS {
            match self.storage.insert_approval(approval, audit).await? {
                InsertOutcome::Inserted => return Ok(()),
                InsertOutcome::RemoteCodeTaken => {
                    tracing::warn!(approval_id = %approval.id, "remote code already taken; drawing another");
                    approval.remote_code = Some(RemoteCode::generate());
                }
            }
        }
        Err(ApprovalError::Storage(format!(
            "no unused remote code after {REMOTE_CODE_ATTEMPTS} attempts"
        )))
    }

    /// Reads a request by the short code of its remote-approval link.
    pub async fn get_by_remote_code(&self, code: &RemoteCode) -> Result<Approval, ApprovalError> {
        self.storage
            .approval_by_remote_code(code)
            .await?
            .ok_or(ApprovalError::NotFound)
    }

    /// Reads a request owned by `owner`.
    pub async fn get_owned(&self, owner: &str, id: &ApprovalId) -> Result<Approval, ApprovalError> {
        let approval = self.get(id).await?;
        if approval.api_key_name != owner {
            return Err(ApprovalError::Forbidden);
        }
        Ok(approval)
    }

    /// Reads a request regardless of its owner (for the popup).
    pub async fn get(&self, id: &ApprovalId) -> Result<Approval, ApprovalError> {
        self.storage
            .approval(id)
            .await?
            .ok_or(ApprovalError::NotFound)
    }

    /// Reads a request for its events stream; a wrong token looks exactly
    /// like an unknown id.
    pub async fn get_with_events_token(
        &self,
        id: &str,
        token: &str,
    ) -> Result<Approval, ApprovalError> {
        let id = ApprovalId::parse(id).ok_or(ApprovalError::NotFound)?;
        let approval = self.get(&id).await?;
        if constant_time_eq(&sha256_hex(token), &approval.events_token_hash) {
            Ok(approval)
        } else {
            Err(ApprovalError::NotFound)
        }
    }

    /// Records a decision; only a pending, unexpired request can be decided,
    /// and never by its requester.
    pub async fn decide(
        &self,
        id: &ApprovalId,
        decision: Decision,
        approver: Approver,
        reason: Option<String>,
    ) -> Result<Approval, ApprovalError> {
        let reason = reason
            .map(|reason| reason.trim().to_owned())
            .filter(|reason| !reason.is_empty());
        if let Some(reason) = &reason {
            check_length("reason", reason, MAX_REASON_CHARS)?;
        }

        let current = self.get(id).await?;
        if current.requester.sub == approver.sub {
            return Err(ApprovalError::OwnRequest);
        }

        let now = self.clock.now();
        let audit = AuditEvent::new(AuditKind::ApprovalDecided, now, id)
            .actor(approver.sub.clone())
            .details(json!({
                "decision": decision.as_str(),
                "approver_username": approver.username,
                "reason": reason,
            }));
        let change = DecideChange {
            id: id.clone(),
            decision,
            approver,
            reason,
            now,
        };

        match self.storage.decide(&change, &audit).await? {
            DecideOutcome::Decided(approval) => {
                audit.trace();
                // A send error only means that no status stream is open.
                let _ = self.changes.send(id.clone());
                Ok(*approval)
            }
            DecideOutcome::NotFound => Err(ApprovalError::NotFound),
            DecideOutcome::AlreadyDecided(approval) => Err(ApprovalError::AlreadyDecided(approval)),
            DecideOutcome::Expired => Err(ApprovalError::Expired),
        }
    }

    /// Marks a decided request used, once, for the payload it was created for.
    pub async fn consume(
        &self,
        owner: &str,
        id: &ApprovalId,
        proof: PayloadProof,
    ) -> Result<Approval, ApprovalError> {
        let payload_hash = match proof {
            PayloadProof::Hash(hash) => hash,
            PayloadProof::Payload(payload) => hash_canonical(&payload).map_err(|error| {
                ApprovalError::InvalidRequest(format!("payload cannot be hashed: {error}"))
            })?,
        };

        let now = self.clock.now();
        let audit = AuditEvent::new(AuditKind::ApprovalConsumed, now, id)
            .actor(owner)
            .details(json!({ "payload_hash": payload_hash }));
        let change = ConsumeChange {
            id: id.clone(),
            api_key_name: owner.to_owned(),
            payload_hash,
            now,
        };

        let rejection = match self.storage.consume(&change, &audit).await? {
            ConsumeOutcome::Consumed(approval) => {
                audit.trace();
                return Ok(*approval);
            }
            ConsumeOutcome::NotFound => return Err(ApprovalError::NotFound),
            ConsumeOutcome::Forbidden => ApprovalError::Forbidden,
            ConsumeOutcome::PayloadMismatch => ApprovalError::PayloadMismatch,
            ConsumeOutcome::AlreadyConsumed => ApprovalError::AlreadyConsumed,
            ConsumeOutcome::Pending => ApprovalError::Pending,
            ConsumeOutcome::Expired => ApprovalError::Expired,
        };

        self.audit_rejected_consume(owner, &change, &rejection)
            .await;
        Err(rejection)
    }

    /// Appends `consume.rejected`. The rejection changed nothing, so it is
    /// returned even when this write fails; the failure is logged.
    async fn audit_rejected_consume(
        &self,
        owner: &str,
        change: &ConsumeChange,
        rejection: &ApprovalError,
    ) {
        let code = rejection.code().as_str();
        let audit = AuditEvent::new(AuditKind::ConsumeRejected, change.now, &change.id)
            .actor(owner)
            .code(code)
            .details(json!({ "payload_hash": change.payload_hash }));
        match self.storage.append_audit(&audit).await {
            Ok(()) => audit.trace(),
            Err(error) => tracing::error!(
                approval_id = %change.id,
                code,
                error = %error,
                "cannot write consume.rejected to the audit log"
            ),
        }
    }

    /// Checks a new request and returns its origin in serialized form.
    fn check_new(&self, input: &NewApproval) -> Result<String, ApprovalError> {
        check_text("action", &input.action, MAX_ACTION_CHARS)?;
        check_text("summary", &input.summary, MAX_SUMMARY_CHARS)?;
        check_text("requester.sub", &input.requester.sub, MAX_NAME_CHARS)?;
        check_text("requester.name", &input.requester.name, MAX_NAME_CHARS)?;
        check_text("required_role", &input.required_role, MAX_NAME_CHARS)?;

        if !input.details.is_object() {
            return Err(ApprovalError::InvalidRequest(
                "details must be a JSON object".to_owned(),
            ));
        }
        let details_size = serde_json_canonicalizer::to_vec(&input.details)
            .map_err(|error| {
                ApprovalError::InvalidRequest(format!("details cannot be serialized: {error}"))
            })?
            .len();
        if details_size > MAX_DETAILS_BYTES {
            return Err(ApprovalError::InvalidRequest(format!(
                "details are {details_size} bytes as canonical JSON; the maximum is {MAX_DETAILS_BYTES}"
            )));
        }

        if let Some(lifetime) = input.lifetime_seconds {
            let max = self.settings.max_lifetime_seconds;
            if !(MIN_LIFETIME_SECONDS..=max).contains(&lifetime) {
                return Err(ApprovalError::InvalidRequest(format!(
                    "lifetime_seconds is {lifetime}; it must be from {MIN_LIFETIME_SECONDS} to {max}"
                )));
            }
        }

        let origin = parse_origin(&input.origin).ok_or_else(|| {
            ApprovalError::InvalidRequest(format!(
                "origin `{}` is not an origin; send scheme, host and port only, like http://localhost:18400",
                input.origin
            ))
        })?;
        if !self.settings.allowed_origins.contains(&origin) {
            return Err(ApprovalError::OriginNotAllowed(origin));
        }
        Ok(origin)
    }
}

fn check_text(field: &str, value: &str, max_chars: usize) -> Result<(), ApprovalError> {
    if value.trim().is_empty() {
        return Err(ApprovalError::InvalidRequest(format!(
            "{field} must not be empty"
        )));
    }
    check_length(field, value, max_chars)
}

fn check_length(field: &str, value: &str, max_chars: usize) -> Result<(), ApprovalError> {
    if value.chars().count() > max_chars {
        return Err(ApprovalError::InvalidRequest(format!(
            "{field} is longer than {max_chars} characters"
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApprovalError::InvalidRequest(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}
