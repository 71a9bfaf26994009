//! The approvals domain: requests, the canonical payload hash, decisions and
//! the single-use consume.

mod clock;
mod error;
mod hash;
mod ids;
mod model;
mod remote_code;
mod service;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::ApprovalError;
pub use hash::{PayloadHash, hash_canonical, hash_payload};
pub use ids::{ApprovalId, constant_time_eq, random_token, sha256_hex};
pub use model::{Approval, Approver, Decision, DecisionRecord, Requester, Status};
pub use remote_code::{REMOTE_CODE_LENGTH, RemoteCode};
pub use service::{ApprovalService, Created, MIN_LIFETIME_SECONDS, NewApproval, PayloadProof};

use url::Url;

/// Parses a web origin (`scheme://host[:port]`, optionally with a trailing
/// slash) and returns its serialized form, which drops a default port.
pub fn parse_origin(text: &str) -> Option<String> {
    let url = Url::parse(text).ok()?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    plain.then(|| url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_parsing_normalizes() {
        assert_eq!(
            parse_origin("http://localhost:18400").as_deref(),
            Some("http://localhost:18400")
        );
        assert_eq!(
            parse_origin("http://localhost:18400/").as_deref(),
            Some("http://localhost:18400")
        );
        assert_eq!(
            parse_origin("https://Shop.Example:443").as_deref(),
            Some("https://shop.example")
        );
    }

    #[test]
    fn origin_parsing_rejects_paths_and_other_schemes() {
        for text in [
            "http://localhost:18400/shop",
            "http://localhost:18400?x=1",
            "ftp://localhost",
            "localhost:18400",
            "http://user@localhost:18400",
            "null",
        ] {
            assert_eq!(parse_origin(text), None, "{text}");
        }
    }
}
