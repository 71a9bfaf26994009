//! The OpenID Connect relying party of Countersign.
//!
//! It covers what an approval sign-in needs and nothing more: discovery,
//! a JWKS cache that follows key rotation, the authorization request with
//! PKCE, the code exchange, verification of the ID token and the access
//! token, role claims, and RP-initiated logout. It verifies tokens itself
//! (with `jsonwebtoken` for the signature math), so that it can refetch the
//! JWKS when the provider rotates its signing keys.
//!
//! # Crypto provider
//!
//! `jsonwebtoken` 12 picks its crypto backend at run time. It selects
//! aws-lc-rs by itself only while `aws_lc_rs` is its one enabled backend
//! feature. If any crate in the build also enables `rust_crypto`, it
//! panics on first use. The binary should therefore call
//! [`install_crypto_provider`] at the top of `main`, before any token is
//! verified. Verification returns [`VerifyError::CryptoProviderMissing`]
//! instead of panicking when no provider is available.
//!
//! # Logging
//!
//! This crate does not log. Its errors carry the details, and no error
//! message contains a token or a secret.
//!
//! # Sign-in flow
//!
//! 1. [`discover`] the provider and build a [`JwksCache`] and a [`RelyingParty`].
//! 2. [`RelyingParty::authorization_request`]: store `state`, `nonce` and
//!    the PKCE verifier server-side, redirect the browser to `url`.
//! 3. On the callback, compare `state`, then [`RelyingParty::exchange_code`].
//! 4. [`RelyingParty::verify`] the tokens against the stored nonce and the
//!    transaction start time.
//! 5. Redirect to [`RelyingParty::end_session_url`] to end the provider session.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod authorization;
mod client;
mod clock;
mod discovery;
mod http;
mod jwks;
mod jws;
mod logout;
pub mod roles;
mod secret;
mod token;
mod verify;

#[cfg(test)]
mod test_support;

pub use authorization::{AuthorizationRequest, pkce_challenge};
pub use client::{ClientConfig, RelyingParty};
pub use clock::{Clock, FixedClock, SystemClock};
pub use discovery::{DiscoveryError, ProviderMetadata, discover, discovery_url, issuer_matches};
pub use http::{OidcError, http_client};
pub use jwks::{JwksCache, JwksError};
pub use jws::MAX_TOKEN_BYTES;
pub use roles::{extract_roles, extract_roles_for_client};
pub use secret::{ClientSecret, Nonce, PkceVerifier, RawToken, State, constant_time_eq};
pub use token::{TokenError, TokenSet};
pub use verify::{Expectations, TokenKind, VerifiedLogin, VerifyError};

/// Selects aws-lc-rs as the process-wide crypto backend of `jsonwebtoken`.
///
/// Call it once at the top of `main`. Calling it again, or after another
/// provider was installed, changes nothing.
pub fn install_crypto_provider() {
    // An error only means that a provider is already installed.
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// Tells whether `jsonwebtoken` has a crypto provider, so that a startup
/// check can fail early with a clear message.
pub fn crypto_provider_ready() -> bool {
    jsonwebtoken::crypto::CryptoProvider::try_get_default().is_some()
}
