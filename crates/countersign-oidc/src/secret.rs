//! Newtypes for protocol strings that must stay out of logs: `state`,
//! `nonce`, the PKCE verifier, raw tokens and the client secret.
//!
//! Each type prints `[redacted]` in `Debug`, has no `Display` and no
//! `Serialize`, so a stray `{:?}` or a serialized struct cannot leak it.
//! Comparisons against untrusted input use [`constant_time_eq`].

use std::fmt;

macro_rules! secret_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(String);

        impl $name {
            /// Wraps a value read back from storage (or generated here).
            pub fn from_stored(value: String) -> Self {
                Self(value)
            }

            /// Returns the value, for storage or for a protocol message.
            pub fn secret(&self) -> &str {
                &self.0
            }

            /// Returns the value, like [`Self::secret`].
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Compares the value with `other` in constant time.
            pub fn matches(&self, other: &str) -> bool {
                constant_time_eq(self.0.as_bytes(), other.as_bytes())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_string!(
    /// The OAuth 2.0 `state` parameter that binds the callback to the
    /// browser that started the login (RFC 6749, section 10.12).
    State
);

secret_string!(
    /// The OpenID Connect `nonce` that binds the ID token to the login
    /// transaction (OpenID Connect Core 1.0, section 3.1.2.1).
    Nonce
);

secret_string!(
    /// The PKCE `code_verifier` (RFC 7636, section 4.1).
    PkceVerifier
);

secret_string!(
    /// A token in compact serialization, exactly as the provider sent it.
    RawToken
);

secret_string!(
    /// The OAuth 2.0 client secret of the relying party.
    ClientSecret
);

impl ClientSecret {
    /// Wraps a client secret read from configuration.
    pub fn new(value: String) -> Self {
        Self(value)
    }
}

/// Compares two byte strings without stopping at the first difference.
///
/// The length is not hidden, because every caller compares values whose
/// length is public (random strings of a fixed length, hashes).
pub fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }

    let difference = left
        .iter()
        .zip(right)
        .fold(0u8, |accumulated, (a, b)| accumulated | (a ^ b));
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_is_redacted() {
        let rendered = format!(
            "{:?} {:?} {:?} {:?} {:?}",
            State::from_stored("state-value".into()),
            Nonce::from_stored("nonce-value".into()),
            PkceVerifier::from_stored("verifier-value".into()),
            RawToken::from_stored("token-value".into()),
            ClientSecret::new("secret-value".into()),
        );

        assert!(!rendered.contains("value"), "secret leaked: {rendered}");
        assert_eq!(rendered.matches("[redacted]").count(), 5);
    }

    #[test]
    fn stored_value_round_trips() {
        let nonce = Nonce::from_stored("abc".into());

        assert_eq!(nonce.secret(), "abc");
        assert_eq!(nonce.as_str(), "abc");
    }

    #[test]
    fn matches_compares_whole_value() {
        let state = State::from_stored("abcdef".into());

        assert!(state.matches("abcdef"));
        assert!(!state.matches("abcdeg"));
        assert!(!state.matches("abcde"));
        assert!(!state.matches(""));
    }
}
