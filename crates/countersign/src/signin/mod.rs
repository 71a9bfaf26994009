//! Sign-in of approvers at the IdP for the popup pages.

use std::sync::Arc;

use crate::approvals::ApprovalService;
use crate::config::Settings;

/// The approver sign-in flow.
#[derive(Debug)]
pub struct SignIn {
    settings: Arc<Settings>,
    approvals: ApprovalService,
}

impl SignIn {
    pub fn new(settings: Arc<Settings>, approvals: ApprovalService) -> Self {
        Self { settings, approvals }
    }
}

impl SignIn {
    /// Fetches the IdP's metadata ahead of the first sign-in.
    pub async fn warm_up(&self) {}
}
