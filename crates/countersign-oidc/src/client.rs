//! The relying party: its client registration and the provider it talks to.
//!
//! The protocol steps live in their own modules as `impl RelyingParty`
//! blocks: [`crate::authorization`], [`crate::token`], [`crate::verify`]
//! and [`crate::logout`].

use std::sync::Arc;

use url::Url;

use crate::clock::Clock;
use crate::discovery::ProviderMetadata;
use crate::jwks::JwksCache;
use crate::roles::RoleClaimPath;
use crate::secret::ClientSecret;

/// The relying party's registration at the provider.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The OAuth 2.0 client id.
    pub client_id: String,
    /// The client secret for the token endpoint.
    pub client_secret: ClientSecret,
    /// The registered redirect URI that receives the authorization code.
    pub redirect_uri: Url,
    /// The requested scopes. `openid` is added when missing.
    pub scopes: Vec<String>,
    /// Dot paths of the claims that carry roles, for example
    /// `realm_access.roles` or `resource_access.${client_id}.roles`. See
    /// [`crate::roles`] for the path syntax.
    pub role_claims: Vec<String>,
    /// Allowed clock difference with the provider, in seconds, for `exp`,
    /// `iat`, `nbf` and `auth_time`.
    pub leeway_seconds: i64,
}

/// An OpenID Connect relying party for one client at one provider.
pub struct RelyingParty {
    pub(crate) http: reqwest::Client,
    pub(crate) metadata: ProviderMetadata,
    pub(crate) client: ClientConfig,
    pub(crate) jwks: Arc<JwksCache>,
    pub(crate) clock: Arc<dyn Clock>,
    /// `client.role_claims` split into segments, with `${client_id}` replaced.
    pub(crate) role_paths: Vec<RoleClaimPath>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("issuer", &self.metadata.issuer.as_str())
            .field("client_id", &self.client.client_id)
            .finish_non_exhaustive()
    }
}

impl RelyingParty {
    /// Creates a relying party from discovered metadata and the client registration.
    pub fn new(
        http: reqwest::Client,
        metadata: ProviderMetadata,
        client_config: ClientConfig,
        jwks: Arc<JwksCache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let role_paths = client_config
            .role_claims
            .iter()
            .map(|path| RoleClaimPath::for_client(path, &client_config.client_id))
            .collect();

        Self {
            http,
            metadata,
            client: client_config,
            jwks,
            clock,
            role_paths,
        }
    }

    /// Returns the provider's metadata.
    pub fn metadata(&self) -> &ProviderMetadata {
        &self.metadata
    }

    /// Returns the client registration.
    pub fn client_config(&self) -> &ClientConfig {
        &self.client
    }

    /// Returns the JWKS cache that verification uses.
    pub fn jwks(&self) -> &Arc<JwksCache> {
        &self.jwks
    }
}
