//! The approver's sign-in and decision behind the popup pages.
//!
//! One sign-in attempt is one login transaction row, found through the
//! random value in the `countersign_login` cookie (stored only as its
//! SHA-256). The row contains `state`, `nonce`, the PKCE verifier, a CSRF
//! token and, after the callback, the outcome and the approver's identity.
//! Tokens live only in memory during the callback request: they are
//! verified there, and the ID token is used once more as `id_token_hint` to
//! end the IdP session before any decision page is shown.

mod provider;

use std::sync::Arc;

use countersign_oidc::{Expectations, Nonce, PkceVerifier, RelyingParty, TokenSet};
use serde::Deserialize;
use serde_json::json;
use time::{Duration, OffsetDateTime};
use url::Url;

use crate::approvals::{
    Approval, ApprovalError, ApprovalId, ApprovalService, Approver, Decision, Status,
    constant_time_eq, random_token, sha256_hex,
};
use crate::audit::{AuditEvent, AuditKind};
use crate::codes::ErrorCode;
use crate::config::Settings;
use crate::storage::{LoginOutcome, LoginTransaction, StorageError};

pub use provider::{
    IDP_TIMEOUT, IdpLimits, JWKS_MIN_REFETCH_INTERVAL, Provider, build as build_relying_party,
};

/// Name of the cookie that binds a login transaction to the browser.
pub const LOGIN_COOKIE: &str = "countersign_login";

/// Outcome stored in a login transaction after a successful callback.
const SIGNED_IN: &str = "signed_in";

/// The failure of a popup step, shown on an error page.
#[derive(Debug)]
pub struct FlowError {
    pub code: ErrorCode,
    /// The request to retry with `/popup/start/{id}`, set only where a new
    /// attempt can succeed.
    pub retry: Option<ApprovalId>,
    /// The message for the log, which never contains a token.
    pub log_message: String,
}

impl FlowError {
    fn new(code: ErrorCode, log_message: impl Into<String>) -> Self {
        Self {
            code,
            retry: None,
            log_message: log_message.into(),
        }
    }

    fn for_approval(mut self, id: &ApprovalId) -> Self {
        if is_retryable(self.code) {
            self.retry = Some(id.clone());
        }
        self
    }
}

/// Returns whether another sign-in attempt can succeed after this error. A decided
/// or expired request, or an unknown id, stays that way. Another person can
/// sign in after `not_an_approver` and `own_request`.
pub fn is_retryable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotAnApprover
            | ErrorCode::OwnRequest
            | ErrorCode::IdpError
            | ErrorCode::SignInCancelled
            | ErrorCode::LoginExpired
            | ErrorCode::SignInNotFresh
            | ErrorCode::AuditUnavailable
            | ErrorCode::StorageUnavailable
    )
}

impl From<StorageError> for FlowError {
    fn from(error: StorageError) -> Self {
        let code = match error {
            StorageError::AuditUnavailable(_) => ErrorCode::AuditUnavailable,
            StorageError::Database(_) => ErrorCode::StorageUnavailable,
        };
        FlowError::new(code, error.to_string())
    }
}

impl From<ApprovalError> for FlowError {
    fn from(error: ApprovalError) -> Self {
        FlowError::new(error.code(), error.to_string())
    }
}

/// The redirect of `/popup/start` and the new cookie value.
#[derive(Debug)]
pub struct StartRedirect {
    pub location: Url,
    pub cookie_value: String,
    pub cookie_max_age: Duration,
}

/// The query of `/popup/callback`.
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

/// The form of `/popup/decision`.
#[derive(Debug, Deserialize)]
pub struct DecisionForm {
    pub csrf: String,
    pub decision: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The content of the decision page.
#[derive(Debug)]
pub struct DecisionView {
    pub approval: Approval,
    pub approver: Approver,
    pub csrf_token: String,
    pub now: OffsetDateTime,
}

/// The content of the result page and of its message to the opener.
#[derive(Debug)]
pub struct ResultView {
    pub id: ApprovalId,
    pub status: Status,
    pub origin: String,
    pub approver: Approver,
}

/// The popup flow.
#[derive(Debug)]
pub struct SignIn {
    settings: Arc<Settings>,
    approvals: ApprovalService,
    provider: Provider,
}

impl SignIn {
    pub fn new(settings: Arc<Settings>, approvals: ApprovalService) -> Self {
        Self::with_idp_limits(settings, approvals, IdpLimits::default())
    }

    /// Creates the flow with other time limits for the IdP calls, so that
    /// tests of a slow or rotating IdP need not wait for the defaults.
    pub fn with_idp_limits(
        settings: Arc<Settings>,
        approvals: ApprovalService,
        limits: IdpLimits,
    ) -> Self {
        let provider = Provider::new(settings.clone(), approvals.clock().clone(), limits);
        Self {
            settings,
            approvals,
            provider,
        }
    }

    /// Fetches the IdP's metadata ahead of the first sign-in and logs the result.
    pub async fn warm_up(&self) {
        match self.provider.relying_party().await {
            Ok(relying_party) => tracing::info!(
                issuer = %relying_party.metadata().issuer,
                "identity provider discovered"
            ),
            Err(error) => tracing::warn!(
                error = %error,
                "identity provider not reachable yet; the popup retries on first use"
            ),
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.approvals.now()
    }

    fn signed_out_url(&self) -> Url {
        self.settings.post_logout_redirect_uri()
    }

    /// `GET /popup/start/{id}`: stores a login transaction and returns the
    /// IdP's authorization URL. `previous_cookie` is a leftover attempt of
    /// this browser, deleted here.
    pub async fn start(
        &self,
        id: &str,
        previous_cookie: Option<&str>,
    ) -> Result<StartRedirect, FlowError> {
        self.start_with_locale(id, previous_cookie, None).await
    }

    /// Does what [`SignIn::start`] does and requests that the IdP show its
    /// pages in `ui_locales` (space-separated BCP 47 tags, OpenID Connect Core 1.0,
    /// section 3.1.2.1).
    pub async fn start_with_locale(
        &self,
        id: &str,
        previous_cookie: Option<&str>,
        ui_locales: Option<&str>,
    ) -> Result<StartRedirect, FlowError> {
        let id = ApprovalId::parse(id)
            .ok_or_else(|| FlowError::new(ErrorCode::NotFound, "malformed approval id"))?;
        let approval = self.approvals.get(&id).await?;
        let now = self.now();
        check_pending(&approval, now)?;

        if let Some(previous) = previous_cookie {
            self.approvals
                .storage()
                .delete_login(&sha256_hex(previous))
                .await?;
        }

        let relying_party = match self.provider.relying_party().await {
            Ok(relying_party) => relying_party,
            Err(error) => {
                let error = FlowError::new(ErrorCode::IdpError, error).for_approval(&id);
                self.audit_failure(&id, &error).await;
                return Err(error);
            }
        };
        let request = relying_party.authorization_request(ui_locales);

        let cookie_value = random_token();
        let window = Duration::seconds(self.settings.oidc.sign_in_window_seconds);
        let login = LoginTransaction {
            key_hash: sha256_hex(&cookie_value),
            approval_id: id.clone(),
            state: request.state.secret().to_owned(),
            nonce: request.nonce.secret().to_owned(),
            pkce_verifier: request.pkce_verifier.secret().to_owned(),
            csrf_token: random_token(),
            created_at: now,
            expires_at: now + window,
            outcome: None,
            approver: None,
        };
        let audit = AuditEvent::new(AuditKind::SigninStarted, now, &id);
        self.approvals
            .storage()
            .insert_login(&login, &audit)
            .await
            .map_err(|error| FlowError::from(error).for_approval(&id))?;
        audit.trace();

        Ok(StartRedirect {
            location: request.url,
            cookie_value,
            cookie_max_age: window,
        })
    }

    /// `GET /popup/callback`: checks the IdP's response, records the outcome
    /// and returns where to send the browser: the IdP's logout when a
    /// session was created there, else the signed-out page.
    pub async fn callback(
        &self,
        cookie: Option<&str>,
        params: CallbackParams,
    ) -> Result<Url, FlowError> {
        let Some(login) = self.find_login(cookie).await? else {
            return Err(self.missing_login(params.state.as_deref()).await);
        };
        if login.outcome.is_some() {
            // A repeated callback: the signed-out page shows the first outcome.
            return Ok(self.signed_out_url());
        }

        let state_matches = params
            .state
            .as_deref()
            .is_some_and(|state| constant_time_eq(state, &login.state));
        if !state_matches {
            return self
                .fail(
                    &login,
                    ErrorCode::LoginExpired,
                    None,
                    "state does not match",
                )
                .await;
        }
        if self.now() >= login.expires_at {
            return self
                .fail(
                    &login,
                    ErrorCode::LoginExpired,
                    None,
                    "sign-in window passed",
                )
                .await;
        }
        if let Some(error) = params.error.as_deref() {
            // RFC 6749, section 4.1.2.1: `access_denied` is what Keycloak
            // returns when the user cancels the login.
            let code = if error == "access_denied" {
                ErrorCode::SignInCancelled
            } else {
                ErrorCode::IdpError
            };
            let detail = format!("authorization error `{}`", truncate(error, 64));
            return self.fail(&login, code, None, &detail).await;
        }
        let Some(code) = params.code.as_deref() else {
            return self
                .fail(&login, ErrorCode::IdpError, None, "callback without code")
                .await;
        };

        let relying_party = match self.provider.relying_party().await {
            Ok(relying_party) => relying_party,
            Err(error) => return self.fail(&login, ErrorCode::IdpError, None, &error).await,
        };
        let verifier = PkceVerifier::from_stored(login.pkce_verifier.clone());
        let tokens = match relying_party.exchange_code(code, &verifier).await {
            Ok(tokens) => tokens,
            Err(error) => {
                // NOTE: without an ID token there is no id_token_hint, so the
                // IdP session of this sign-in is not ended here. It cannot
                // approve anything, because each sign-in must be fresh.
                let detail = format!("code exchange failed ({}): {error}", error.code());
                return self.fail(&login, ErrorCode::IdpError, None, &detail).await;
            }
        };

        // From here the IdP has a session for this sign-in: every outcome
        // leaves through its end_session_endpoint.
        let logout = relying_party
            .end_session_url(&tokens.id_token, &self.signed_out_url(), &random_token())
            .unwrap_or_else(|| self.signed_out_url());

        let checked = self.check_tokens(&relying_party, &tokens, &login).await;
        drop(tokens);
        let recorded = match checked {
            Ok(approver) => self.record_success(&login, approver).await,
            Err((code, approver, detail)) => {
                self.record_failure(&login, code, approver, &detail).await
            }
        };
        if let Err(error) = recorded {
            // NOTE: the signed-out page then finds no outcome and shows
            // login_expired; the IdP session is still ended.
            tracing::error!(approval_id = %login.approval_id, error = %error.log_message, "cannot record the sign-in outcome");
        }
        Ok(logout)
    }

    /// Verifies the tokens and checks the approver against the request.
    async fn check_tokens(
        &self,
        relying_party: &RelyingParty,
        tokens: &TokenSet,
        login: &LoginTransaction,
    ) -> Result<Approver, (ErrorCode, Option<Approver>, String)> {
        let expectations = Expectations {
            nonce: Nonce::from_stored(login.nonce.clone()),
            authenticated_after: login.created_at.unix_timestamp(),
        };
        let verified = relying_party
            .verify(tokens, &expectations)
            .await
            .map_err(|error| {
                let code = if error.is_not_fresh() {
                    ErrorCode::SignInNotFresh
                } else {
                    ErrorCode::IdpError
                };
                (
                    code,
                    None,
                    format!("token verification failed ({}): {error}", error.code()),
                )
            })?;

        let approver = Approver {
            sub: verified.subject,
            name: verified.name,
            username: verified.preferred_username,
        };
        let approval = match self.approvals.get(&login.approval_id).await {
            Ok(approval) => approval,
            Err(error) => return Err((error.code(), Some(approver), error.to_string())),
        };

        if approval.requester.sub == approver.sub {
            return Err((
                ErrorCode::OwnRequest,
                Some(approver),
                "approver is the requester".to_owned(),
            ));
        }
        if !verified.roles.contains(&approval.required_role) {
            let detail = format!("approver lacks the role {}", approval.required_role);
            return Err((ErrorCode::NotAnApprover, Some(approver), detail));
        }
        if let Err(error) = check_pending(&approval, self.now()) {
            return Err((error.code, Some(approver), error.log_message));
        }
        Ok(approver)
    }

    async fn record_success(
        &self,
        login: &LoginTransaction,
        approver: Approver,
    ) -> Result<(), FlowError> {
        let audit = AuditEvent::new(AuditKind::SigninSucceeded, self.now(), &login.approval_id)
            .actor(approver.sub.clone())
            .details(json!({ "username": approver.username }));
        let outcome = LoginOutcome {
            key_hash: login.key_hash.clone(),
            outcome: SIGNED_IN.to_owned(),
            approver: Some(approver),
        };
        if self
            .approvals
            .storage()
            .record_login_outcome(&outcome, &audit)
            .await?
        {
            audit.trace();
        }
        Ok(())
    }

    async fn record_failure(
        &self,
        login: &LoginTransaction,
        code: ErrorCode,
        approver: Option<Approver>,
        detail: &str,
    ) -> Result<(), FlowError> {
        let mut audit = AuditEvent::new(AuditKind::SigninFailed, self.now(), &login.approval_id)
            .code(code.as_str())
            .details(json!({ "detail": detail }));
        if let Some(approver) = &approver {
            audit = audit
                .actor(approver.sub.clone())
                .details(json!({ "detail": detail, "username": approver.username }));
        }
        let outcome = LoginOutcome {
            key_hash: login.key_hash.clone(),
            outcome: code.as_str().to_owned(),
            approver,
        };
        if self
            .approvals
            .storage()
            .record_login_outcome(&outcome, &audit)
            .await?
        {
            audit.trace();
        }
        Ok(())
    }

    /// Records a failure that happened before any token was issued and
    /// returns the signed-out page as the next stop.
    async fn fail(
        &self,
        login: &LoginTransaction,
        code: ErrorCode,
        approver: Option<Approver>,
        detail: &str,
    ) -> Result<Url, FlowError> {
        self.record_failure(login, code, approver, detail)
            .await
            .map_err(|error| error.for_approval(&login.approval_id))?;
        Ok(self.signed_out_url())
    }

    /// The error for a callback without a matching transaction. The `state`
    /// finds the request for the retry link but never signs anyone in,
    /// because only the cookie binds the response to this browser.
    async fn missing_login(&self, state: Option<&str>) -> FlowError {
        let error = FlowError::new(
            ErrorCode::LoginExpired,
            "callback without a login transaction",
        );
        let Some(state) = state else {
            return error;
        };
        match self.approvals.storage().login_by_state(state).await {
            Ok(Some(login)) => {
                let error = error.for_approval(&login.approval_id);
                self.audit_failure(&login.approval_id, &error).await;
                error
            }
            _ => error,
        }
    }

    /// Appends `signin.failed` for a failure that has no login transaction
    /// to record it in. The error page is shown anyway, so a failed write
    /// is only logged.
    async fn audit_failure(&self, id: &ApprovalId, error: &FlowError) {
        let audit = AuditEvent::new(AuditKind::SigninFailed, self.now(), id)
            .code(error.code.as_str())
            .details(json!({ "detail": error.log_message }));
        match self.approvals.storage().append_audit(&audit).await {
            Ok(()) => audit.trace(),
            Err(storage_error) => tracing::error!(
                approval_id = %id,
                code = error.code.as_str(),
                error = %storage_error,
                "cannot write signin.failed to the audit log"
            ),
        }
    }

    async fn find_login(
        &self,
        cookie: Option<&str>,
    ) -> Result<Option<LoginTransaction>, FlowError> {
        let Some(cookie) = cookie else {
            return Ok(None);
        };
        Ok(self.approvals.storage().login(&sha256_hex(cookie)).await?)
    }

    /// Deletes the transaction of a finished attempt; a failure is logged
    /// because the transaction expires anyway.
    async fn delete_attempt(&self, login: &LoginTransaction) {
        if let Err(error) = self.approvals.storage().delete_login(&login.key_hash).await {
            tracing::error!(approval_id = %login.approval_id, error = %error, "cannot delete the login transaction");
        }
    }

    /// Ends a failed attempt: deletes its transaction and returns `error`.
    async fn end_attempt(&self, login: &LoginTransaction, error: FlowError) -> FlowError {
        self.delete_attempt(login).await;
        error.for_approval(&login.approval_id)
    }

    /// `GET /popup/signed-out`: the decision page for a successful sign-in,
    /// else the recorded error (which ends the attempt).
    pub async fn signed_out(&self, cookie: Option<&str>) -> Result<DecisionView, FlowError> {
        let Some(login) = self.find_login(cookie).await? else {
            return Err(FlowError::new(
                ErrorCode::LoginExpired,
                "signed-out page without a login transaction",
            ));
        };

        let signed_in = match login.outcome.as_deref() {
            Some(SIGNED_IN) => login.approver.clone(),
            Some(code) => {
                let code = ErrorCode::parse(code).unwrap_or(ErrorCode::IdpError);
                let error = FlowError::new(code, format!("sign-in failed: {code}"));
                return Err(self.end_attempt(&login, error).await);
            }
            None => None,
        };
        let Some(approver) = signed_in else {
            let error = FlowError::new(
                ErrorCode::LoginExpired,
                "signed-out page before the callback",
            );
            return Err(self.end_attempt(&login, error).await);
        };

        let now = self.now();
        if now >= login.expires_at {
            let error = FlowError::new(ErrorCode::LoginExpired, "sign-in window passed");
            return Err(self.end_attempt(&login, error).await);
        }
        let approval = match self.approvals.get(&login.approval_id).await {
            Ok(approval) => approval,
            Err(error) => return Err(self.end_attempt(&login, error.into()).await),
        };
        if let Err(error) = check_pending(&approval, now) {
            return Err(self.end_attempt(&login, error).await);
        }

        Ok(DecisionView {
            approval,
            approver,
            csrf_token: login.csrf_token,
            now,
        })
    }

    /// `POST /popup/decision`: records the decision of the signed-in
    /// approver and ends the attempt.
    pub async fn decide(
        &self,
        cookie: Option<&str>,
        form: DecisionForm,
    ) -> Result<ResultView, FlowError> {
        let Some(login) = self.find_login(cookie).await? else {
            return Err(FlowError::new(
                ErrorCode::LoginExpired,
                "decision without a login transaction",
            ));
        };
        if !constant_time_eq(&form.csrf, &login.csrf_token) {
            let error = FlowError::new(ErrorCode::LoginExpired, "decision with a wrong CSRF token");
            return Err(self.end_attempt(&login, error).await);
        }
        let approver = match (login.outcome.as_deref(), &login.approver) {
            (Some(SIGNED_IN), Some(approver)) => approver.clone(),
            _ => {
                let error = FlowError::new(
                    ErrorCode::LoginExpired,
                    "decision without a successful sign-in",
                );
                return Err(self.end_attempt(&login, error).await);
            }
        };
        if self.now() >= login.expires_at {
            let error = FlowError::new(
                ErrorCode::LoginExpired,
                "sign-in window passed before the decision",
            );
            return Err(self.end_attempt(&login, error).await);
        }
        let decision = match form.decision.as_str() {
            "approve" => Decision::Approved,
            "reject" => Decision::Rejected,
            other => {
                let detail = format!("unknown decision `{}`", truncate(other, 32));
                let error = FlowError::new(ErrorCode::InvalidRequest, detail);
                return Err(self.end_attempt(&login, error).await);
            }
        };

        let decided = self
            .approvals
            .decide(&login.approval_id, decision, approver.clone(), form.reason)
            .await;
        let error = match decided {
            Ok(approval) => {
                self.delete_attempt(&login).await;
                return Ok(ResultView {
                    status: approval.status(self.now()),
                    id: approval.id,
                    origin: approval.origin,
                    approver,
                });
            }
            Err(error) => FlowError::from(error),
        };
        Err(self.end_attempt(&login, error).await)
    }
}

/// Checks that a request can still be decided.
fn check_pending(approval: &Approval, now: OffsetDateTime) -> Result<(), FlowError> {
    match approval.status(now) {
        Status::Pending => Ok(()),
        Status::Expired => Err(FlowError::new(
            ErrorCode::ApprovalExpired,
            "approval request expired",
        )),
        Status::Approved | Status::Rejected => Err(FlowError::new(
            ErrorCode::AlreadyDecided,
            "approval request already decided",
        )),
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
