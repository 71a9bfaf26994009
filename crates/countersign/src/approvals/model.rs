//! The approval request and the values around it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::hash::PayloadHash;
use super::ids::ApprovalId;
use super::remote_code::RemoteCode;

/// The person who asked for the approval, as vouched for by the host backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    pub sub: String,
    pub name: String,
}

/// The person who decided, as proven by their sign-in at the IdP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approver {
    pub sub: String,
    pub name: Option<String>,
    pub username: Option<String>,
}

impl Approver {
    /// Returns a name to show: the display name, else the username, else the subject.
    pub fn display_name(&self) -> &str {
        self.name
            .as_deref()
            .or(self.username.as_deref())
            .unwrap_or(&self.sub)
    }
}

/// The decision of an approver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }
}

/// The status reported to API clients and on the events stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Expired => "expired",
        }
    }

    /// Returns whether the status can no longer change.
    pub fn is_final(self) -> bool {
        self != Status::Pending
    }
}

/// The decision part of a decided request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionRecord {
    pub decision: Decision,
    pub approver: Approver,
    pub reason: Option<String>,
    pub decided_at: OffsetDateTime,
}

/// An approval request as stored.
#[derive(Clone, Debug)]
pub struct Approval {
    pub id: ApprovalId,
    /// Name of the API key that created the request; only it may read or
    /// consume the request.
    pub api_key_name: String,
    pub action: String,
    pub summary: String,
    pub details: Value,
    pub requester: Requester,
    pub required_role: String,
    pub origin: String,
    pub payload_hash: PayloadHash,
    /// SHA-256 hex of the events token; the token itself is never stored.
    pub events_token_hash: String,
    /// The short code of the remote-approval link; `None` for requests
    /// stored before remote approval existed.
    pub remote_code: Option<RemoteCode>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub decision: Option<DecisionRecord>,
    pub consumed_at: Option<OffsetDateTime>,
}

impl Approval {
    /// Returns the status at `now`: a decision is final, and an undecided
    /// request expires at `expires_at`.
    pub fn status(&self, now: OffsetDateTime) -> Status {
        match &self.decision {
            Some(record) => match record.decision {
                Decision::Approved => Status::Approved,
                Decision::Rejected => Status::Rejected,
            },
            None if self.is_expired(now) => Status::Expired,
            None => Status::Pending,
        }
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        now >= self.expires_at
    }
}
