//! The relying party at the configured IdP, discovered on first use.

use std::sync::Arc;
use std::time::Duration;

use countersign_oidc::{ClientConfig, ClientSecret, JwksCache, RelyingParty};
use secrecy::ExposeSecret;
use tokio::sync::OnceCell;

use crate::approvals::Clock;
use crate::config::Settings;

/// Timeout of every request to the IdP (discovery, JWKS, token endpoint).
pub const IDP_TIMEOUT: Duration = Duration::from_secs(10);

/// Minimum time between two JWKS refetches caused by an unknown key id.
pub const JWKS_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// Time limits of the calls to the IdP. The defaults are [`IDP_TIMEOUT`]
/// and [`JWKS_MIN_REFETCH_INTERVAL`]; tests shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdpLimits {
    /// Timeout of every request to the IdP.
    pub timeout: Duration,
    /// Minimum time between two JWKS refetches caused by an unknown key id.
    pub jwks_min_refetch_interval: Duration,
}

impl Default for IdpLimits {
    fn default() -> Self {
        Self {
            timeout: IDP_TIMEOUT,
            jwks_min_refetch_interval: JWKS_MIN_REFETCH_INTERVAL,
        }
    }
}

/// Passes the service clock to the OIDC crate, so that token expiry and
/// freshness use the same time as approval expiry.
struct OidcClock(Arc<dyn Clock>);

impl countersign_oidc::Clock for OidcClock {
    fn now_unix(&self) -> i64 {
        self.0.now().unix_timestamp()
    }
}

/// Builds the relying party once and keeps it; a failed discovery is
/// retried on the next use.
pub struct Provider {
    settings: Arc<Settings>,
    clock: Arc<dyn Clock>,
    limits: IdpLimits,
    relying_party: OnceCell<Arc<RelyingParty>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.settings.oidc.issuer.as_str())
            .field("discovered", &self.relying_party.initialized())
            .finish()
    }
}

impl Provider {
    pub fn new(settings: Arc<Settings>, clock: Arc<dyn Clock>, limits: IdpLimits) -> Self {
        Self {
            settings,
            clock,
            limits,
            relying_party: OnceCell::new(),
        }
    }

    /// Returns the relying party, fetching the discovery document first if
    /// no earlier call succeeded.
    pub async fn relying_party(&self) -> Result<Arc<RelyingParty>, String> {
        self.relying_party
            .get_or_try_init(|| async {
                build_with_limits(&self.settings, self.clock.clone(), self.limits)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }
}

/// Discovers the IdP and builds a relying party for the configured client,
/// with the default [`IdpLimits`].
pub async fn build(settings: &Settings, clock: Arc<dyn Clock>) -> Result<RelyingParty, String> {
    build_with_limits(settings, clock, IdpLimits::default()).await
}

/// Discovers the IdP and builds a relying party for the configured client.
pub async fn build_with_limits(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    limits: IdpLimits,
) -> Result<RelyingParty, String> {
    let oidc = &settings.oidc;
    let http = countersign_oidc::http_client(limits.timeout)
        .map_err(|error| format!("cannot create the HTTP client: {error}"))?;
    let metadata = countersign_oidc::discover(&http, &oidc.issuer)
        .await
        .map_err(|error| format!("discovery of {} failed: {error}", oidc.issuer))?;
    let jwks = Arc::new(JwksCache::new(
        http.clone(),
        metadata.jwks_uri.clone(),
        limits.jwks_min_refetch_interval,
    ));
    let client = ClientConfig {
        client_id: oidc.client_id.clone(),
        client_secret: ClientSecret::new(oidc.client_secret.expose_secret().to_owned()),
        redirect_uri: settings.redirect_uri(),
        scopes: oidc.scopes.clone(),
        role_claims: oidc.role_claims.clone(),
        leeway_seconds: i64::try_from(oidc.clock_leeway_seconds).unwrap_or(i64::MAX),
    };
    Ok(RelyingParty::new(
        http,
        metadata,
        client,
        jwks,
        Arc::new(OidcClock(clock)),
    ))
}
