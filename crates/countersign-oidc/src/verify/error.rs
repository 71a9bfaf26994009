//! Token verification errors, each with a stable code.

use crate::jwks::JwksError;

/// One of the two tokens from the code exchange, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// The ID token.
    IdToken,
    /// The access token.
    AccessToken,
}

impl std::fmt::Display for TokenKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::IdToken => "ID token",
            Self::AccessToken => "access token",
        })
    }
}

/// Errors from verifying the tokens of a sign-in.
///
/// The messages name claims and values but never contain a token.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The token is longer than [`crate::MAX_TOKEN_BYTES`]. Reduce the
    /// claims the provider puts into it (for example, role mappers).
    #[error("the {token} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The token.
        token: TokenKind,
        /// Its size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// The token is not a signed JWT in compact serialization, or its header
    /// or payload is not valid JSON. An encrypted ID token (five parts) is
    /// not supported, so turn off ID token encryption for the client.
    #[error("the {token} is malformed: {reason}")]
    Malformed {
        /// The token.
        token: TokenKind,
        /// The problem, in words.
        reason: &'static str,
    },

    /// The header names an algorithm outside the allow-list (RS256, RS384,
    /// RS512, PS256, PS384, PS512, ES256, ES384, EdDSA). `none` and HS*
    /// land here. Configure the provider to sign with an allowed algorithm.
    #[error("the {token} uses the signature algorithm {alg:?}, which is not allowed")]
    UnsupportedAlgorithm {
        /// The token.
        token: TokenKind,
        /// The `alg` header value, shortened.
        alg: String,
    },

    /// No key in the JWKS has the token's `kid`, even after one refetch, or
    /// the refetch was skipped because of the rate limit. After a key
    /// rotation, a retry after the minimum refetch interval succeeds.
    #[error("no key in the provider's JWKS matches the {token}'s key id {kid:?}")]
    UnknownKey {
        /// The token.
        token: TokenKind,
        /// The `kid` header value.
        kid: Option<String>,
    },

    /// The token has no `kid` and the JWKS has several keys, so the key is
    /// ambiguous. Configure the provider to send `kid`.
    #[error("the {token} has no key id and the JWKS has {keys} keys")]
    MissingKeyId {
        /// The token.
        token: TokenKind,
        /// How many keys the JWKS has.
        keys: usize,
    },

    /// The key found for `kid` does not fit the `alg` header, because its
    /// type or curve or the JWK's own `alg` differs. This points to a
    /// forged token or a broken provider key set.
    #[error("the {token}'s algorithm {alg} does not match key {kid:?}")]
    KeyAlgorithmMismatch {
        /// The token.
        token: TokenKind,
        /// The `alg` header value.
        alg: String,
        /// The key's `kid`.
        kid: Option<String>,
    },

    /// The JWKS could not be fetched. Check that the provider is reachable;
    /// the source error gives the cause.
    #[error("the provider's keys for the {token} are unavailable: {source}")]
    JwksUnavailable {
        /// The token.
        token: TokenKind,
        /// The fetch error.
        #[source]
        source: JwksError,
    },

    /// No `jsonwebtoken` crypto provider is installed, so no signature can
    /// be checked. Call [`crate::install_crypto_provider`] at the top of `main`.
    #[error(
        "no jsonwebtoken crypto provider is installed; call countersign_oidc::install_crypto_provider() in main"
    )]
    CryptoProviderMissing,

    /// The signature does not verify with the provider's key. The token
    /// was altered or signed by someone else.
    #[error("the {token}'s signature is invalid")]
    BadSignature {
        /// The token.
        token: TokenKind,
    },

    /// `iss` is missing or differs from the configured issuer. With
    /// Keycloak, check that Countersign reaches it under the host name in
    /// the configured issuer.
    #[error("the {token} was issued by {found:?}, not by the configured issuer")]
    WrongIssuer {
        /// The token.
        token: TokenKind,
        /// The `iss` claim, if any.
        found: Option<String>,
    },

    /// The token was not issued to this client. The ID token's `aud` lacks
    /// the client id, or the access token names the client in none of
    /// `azp`, `client_id` or `aud`. Check the client id in the configuration.
    #[error("the {token} was not issued to this client")]
    WrongAudience {
        /// The token.
        token: TokenKind,
    },

    /// The ID token's `azp` names another client, or is missing although
    /// `aud` lists several audiences (OpenID Connect Core 1.0, section 3.1.3.7).
    #[error("the {token}'s authorized party is {found:?}, not this client")]
    WrongAuthorizedParty {
        /// The token.
        token: TokenKind,
        /// The `azp` claim, if any.
        found: Option<String>,
    },

    /// `exp` has passed, beyond the configured leeway. If this happens to
    /// fresh tokens, the clocks of this host and the provider differ.
    #[error("the {token} expired at {exp} (now {now})")]
    Expired {
        /// The token.
        token: TokenKind,
        /// The `exp` claim in Unix seconds.
        exp: i64,
        /// The current time in Unix seconds.
        now: i64,
    },

    /// `iat` or `nbf` lies in the future, beyond the configured leeway.
    /// Synchronize the clocks or raise the leeway.
    #[error("the {token}'s {claim} is {value}, later than now ({now}) plus leeway")]
    NotYetValid {
        /// The token.
        token: TokenKind,
        /// `iat` or `nbf`.
        claim: &'static str,
        /// The claim in Unix seconds.
        value: i64,
        /// The current time in Unix seconds.
        now: i64,
    },

    /// A required claim other than `sub` and `auth_time` is missing
    /// (`exp`, or `iat` in the ID token).
    #[error("the {token} has no {claim} claim")]
    MissingClaim {
        /// The token.
        token: TokenKind,
        /// The missing claim.
        claim: &'static str,
    },

    /// A claim has the wrong JSON type, for example a string `exp`.
    #[error("the {token}'s {claim} claim has an invalid value")]
    InvalidClaim {
        /// The token.
        token: TokenKind,
        /// The claim.
        claim: &'static str,
    },

    /// `sub` is missing or empty. With Keycloak, check the client's default
    /// client scopes, because one of them must map `sub` into the access token.
    #[error("the {token} has no subject (sub)")]
    MissingSubject {
        /// The token.
        token: TokenKind,
    },

    /// The access token belongs to another user than the ID token.
    #[error("the access token's subject differs from the ID token's")]
    SubjectMismatch,

    /// The ID token's `nonce` is missing or differs from the login
    /// transaction's. The callback does not belong to this transaction
    /// (a replayed or injected response). The user should sign in again.
    #[error("the ID token's nonce does not match the login transaction")]
    NonceMismatch,

    /// The ID token's `at_hash` does not match the access token
    /// (OpenID Connect Core 1.0, section 3.1.3.8): the two tokens do not
    /// belong together.
    #[error("the ID token's at_hash does not match the access token")]
    AccessTokenHashMismatch,

    /// The ID token has no `auth_time`, so the freshness of the sign-in is
    /// unknown. The request sends `max_age`, which obliges the provider to
    /// include it (OpenID Connect Core 1.0, section 3.1.2.1).
    #[error("the ID token has no auth_time")]
    MissingAuthTime,

    /// The user authenticated before the login transaction started. The
    /// provider reused an existing session although `prompt=login` and
    /// `max_age=0` were sent. The user should sign in again.
    #[error(
        "the sign-in at {auth_time} happened before the transaction started at {authenticated_after}"
    )]
    StaleAuthTime {
        /// The `auth_time` claim in Unix seconds.
        auth_time: i64,
        /// The earliest accepted time in Unix seconds, before leeway.
        authenticated_after: i64,
    },

    /// `acr` is `"0"`: Keycloak marks a sign-in from an SSO cookie this
    /// way, so the user did not enter credentials. The user should sign in again.
    #[error("the ID token's acr is \"0\", a sign-in from an existing session")]
    CookieLogin,
}

impl VerifyError {
    /// Returns a stable code for logs, audit records and error pages.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "token_too_large",
            Self::Malformed { .. } => "malformed_token",
            Self::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Self::UnknownKey { .. } => "unknown_key",
            Self::MissingKeyId { .. } => "missing_key_id",
            Self::KeyAlgorithmMismatch { .. } => "key_algorithm_mismatch",
            Self::JwksUnavailable { .. } => "jwks_unavailable",
            Self::CryptoProviderMissing => "crypto_provider_missing",
            Self::BadSignature { .. } => "bad_signature",
            Self::WrongIssuer { .. } => "wrong_issuer",
            Self::WrongAudience { .. } => "wrong_audience",
            Self::WrongAuthorizedParty { .. } => "wrong_authorized_party",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::MissingClaim { .. } => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::MissingSubject { .. } => "missing_subject",
            Self::SubjectMismatch => "subject_mismatch",
            Self::NonceMismatch => "nonce_mismatch",
            Self::AccessTokenHashMismatch => "at_hash_mismatch",
            Self::MissingAuthTime => "missing_auth_time",
            Self::StaleAuthTime { .. } => "stale_auth_time",
            Self::CookieLogin => "cookie_login",
        }
    }

    /// Tells whether the sign-in was not fresh (`stale_auth_time`,
    /// `cookie_login`, `missing_auth_time`), as opposed to a broken or
    /// forged token.
    pub fn is_not_fresh(&self) -> bool {
        matches!(
            self,
            Self::StaleAuthTime { .. } | Self::CookieLogin | Self::MissingAuthTime
        )
    }
}
