//! The short code of a request's remote-approval link (`/r/<code>`).
//!
//! Ten characters of Crockford's base32 alphabet in lower case carry 50
//! random bits. `docs/remote-approval.md` explains why that length is enough
//! for a request that lives at most `approvals.max_lifetime_seconds` behind
//! the popup rate limit.

/// Crockford's base32 alphabet in lower case: digits and letters without
/// `i`, `l`, `o` and `u`, so a code read off a screen is hard to mistype.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Number of characters in a code; each carries 5 random bits.
pub const REMOTE_CODE_LENGTH: usize = 10;

/// A request's short code, always in the canonical form that `generate`
/// produces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct RemoteCode(String);

impl RemoteCode {
    /// Draws a new code from the thread-local CSPRNG.
    pub fn generate() -> Self {
        let bytes: [u8; REMOTE_CODE_LENGTH] = rand::random();
        // 256 is a multiple of 32, so the low five bits of a uniform byte
        // are uniform as well.
        let code = bytes
            .iter()
            .map(|byte| char::from(ALPHABET[usize::from(byte & 0x1f)]))
            .collect();
        Self(code)
    }

    /// Parses a code as a person may type it: upper or lower case, with
    /// `i` and `l` read as `1` and `o` as `0`, as Crockford's decoding does.
    /// Anything else that is not in the alphabet, or a wrong length, is
    /// rejected before the database is asked.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != REMOTE_CODE_LENGTH {
            return None;
        }
        let mut code = String::with_capacity(REMOTE_CODE_LENGTH);
        for c in text.chars() {
            let c = match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                other => other,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            code.push(c);
        }
        Some(Self(code))
    }

    /// Wraps a code read back from storage.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RemoteCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_code_parses_back() {
        for _ in 0..100 {
            let code = RemoteCode::generate();
            assert_eq!(code.as_str().len(), REMOTE_CODE_LENGTH);
            assert_eq!(RemoteCode::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn parse_accepts_typing_variants() {
        assert_eq!(
            RemoteCode::parse("AB12CD34EF").map(|code| code.0),
            Some("ab12cd34ef".to_owned())
        );
        assert_eq!(
            RemoteCode::parse("Il0Oabcdef").map(|code| code.0),
            Some("1100abcdef".to_owned())
        );
    }

    #[test]
    fn malformed_codes_are_rejected() {
        for text in [
            "",
            "abc",
            "abcdefghjkm",
            "abcdefghj",
            "abcdefghju",
            "abcd-fghjk",
            "abcdefghj\u{e9}",
            "abcdefgh\u{e9}",
        ] {
            assert_eq!(RemoteCode::parse(text), None, "{text}");
        }
    }
}
