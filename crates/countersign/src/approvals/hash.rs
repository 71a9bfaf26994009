//! The payload hash: RFC 8785 (JSON Canonicalization Scheme) serialization
//! hashed with SHA-256, written as `sha256:<lowercase hex>`.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

const PREFIX: &str = "sha256:";

/// A payload hash in its `sha256:<hex>` form.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PayloadHash(String);

impl PayloadHash {
    /// Parses `sha256:` followed by 64 hex digits; upper-case hex is accepted
    /// and stored in lower case.
    pub fn parse(text: &str) -> Option<Self> {
        let digest = text.strip_prefix(PREFIX)?;
        let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| Self(format!("{PREFIX}{}", digest.to_ascii_lowercase())))
    }

    /// Wraps a hash read back from storage.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The part of the requester that is covered by the hash.
#[derive(Serialize)]
struct RequesterPart<'a> {
    sub: &'a str,
    name: &'a str,
}

/// The hashed payload: `{"action", "details", "requester": {"sub", "name"}}`.
#[derive(Serialize)]
struct Payload<'a> {
    action: &'a str,
    details: &'a Value,
    requester: RequesterPart<'a>,
}

/// Hashes the payload of a new approval request.
pub fn hash_payload(
    action: &str,
    details: &Value,
    requester_sub: &str,
    requester_name: &str,
) -> Result<PayloadHash, serde_json::Error> {
    let payload = Payload {
        action,
        details,
        requester: RequesterPart {
            sub: requester_sub,
            name: requester_name,
        },
    };
    hash_canonical(&payload)
}

/// Hashes any JSON value in its RFC 8785 canonical form; consume requests
/// that send the whole payload are hashed this way.
pub fn hash_canonical<T: Serialize>(value: &T) -> Result<PayloadHash, serde_json::Error> {
    let canonical = serde_json_canonicalizer::to_vec(value)?;
    let digest = Sha256::digest(&canonical);
    Ok(PayloadHash(format!("{PREFIX}{}", hex::encode(digest))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The example of RFC 8785, section 3.2.3: property sorting, the ES6
    /// number forms and string escaping.
    #[test]
    fn canonical_form_matches_rfc_8785_example() {
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        let value: Value = serde_json::from_str(input).unwrap();

        let canonical = serde_json_canonicalizer::to_string(&value).unwrap();

        let expected = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        assert_eq!(canonical, expected);
    }

    #[test]
    fn hash_ignores_key_order_and_number_form() {
        let first: Value = serde_json::from_str(r#"{"b": 4.50, "a": {"y": 1, "x": 2}}"#).unwrap();
        let second: Value = serde_json::from_str(r#"{"a": {"x": 2.0, "y": 1}, "b": 4.5}"#).unwrap();

        assert_eq!(
            hash_canonical(&first).unwrap(),
            hash_canonical(&second).unwrap()
        );
    }

    #[test]
    fn hash_changes_with_content() {
        let first = json!({"amount": "49.90"});
        let second = json!({"amount": "49.91"});

        assert_ne!(
            hash_canonical(&first).unwrap(),
            hash_canonical(&second).unwrap()
        );
    }

    /// The digest was computed outside this code with
    /// `printf %s '{"action":"refund","details":{"amount":"49.90","order":"1001"},"requester":{"name":"Carla Cashier","sub":"c-1"}}' | sha256sum`.
    #[test]
    fn payload_hash_matches_independent_digest() {
        let details = json!({"order": "1001", "amount": "49.90"});

        let hash = hash_payload("refund", &details, "c-1", "Carla Cashier").unwrap();

        assert_eq!(hash.as_str(), EXPECTED_REFUND_HASH);
    }

    #[test]
    fn whole_payload_hashes_like_its_parts() {
        let details = json!({"order": "1001", "amount": "49.90"});
        let whole = json!({
            "requester": {"name": "Carla Cashier", "sub": "c-1"},
            "details": {"amount": "49.90", "order": "1001"},
            "action": "refund"
        });

        assert_eq!(
            hash_canonical(&whole).unwrap(),
            hash_payload("refund", &details, "c-1", "Carla Cashier").unwrap()
        );
    }

    #[test]
    fn parse_accepts_only_sha256_hex() {
        let upper = format!("sha256:{}", "AB".repeat(32));
        assert_eq!(
            PayloadHash::parse(&upper).unwrap().as_str(),
            format!("sha256:{}", "ab".repeat(32))
        );
        assert_eq!(PayloadHash::parse(&"ab".repeat(32)), None);
        assert_eq!(
            PayloadHash::parse(&format!("sha256:{}", "ab".repeat(31))),
            None
        );
        assert_eq!(
            PayloadHash::parse(&format!("sha256:{}", "zz".repeat(32))),
            None
        );
        assert_eq!(
            PayloadHash::parse(&format!("sha512:{}", "ab".repeat(32))),
            None
        );
    }

    const EXPECTED_REFUND_HASH: &str =
        "sha256:1b6d4d21cd6ca49399dfbd2cd7e84f02e0835ec97d49327d7a2520e79bd3f080";
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    /// Any JSON value up to a few levels deep, with keys and strings that
    /// include escapes and non-ASCII characters.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |number| number.is_finite())
                .prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    /// Writes `value` as JSON text with object members in reverse order and
    /// `space` around every token, so the text differs from the usual form
    /// while it still parses to an equal value.
    fn write_reordered(value: &Value, space: &str, out: &mut String) {
        match value {
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(space);
                    write_reordered(item, space, out);
                    out.push_str(space);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (index, (key, member)) in members.iter().rev().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    out.push_str(space);
                    out.push_str(&Value::String(key.clone()).to_string());
                    out.push_str(space);
                    out.push(':');
                    out.push_str(space);
                    write_reordered(member, space, out);
                }
                out.push_str(space);
                out.push('}');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }

    fn whitespace() -> impl Strategy<Value = String> {
        "[ \t\r\n]{0,3}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn hash_ignores_key_order_and_whitespace(value in json_value(), space in whitespace()) {
            let mut reordered_text = String::new();
            write_reordered(&value, &space, &mut reordered_text);
            let reordered: Value = serde_json::from_str(&reordered_text).unwrap();
            let usual: Value = serde_json::from_str(&value.to_string()).unwrap();

            prop_assert_eq!(hash_canonical(&reordered).unwrap(), hash_canonical(&usual).unwrap());
        }

        #[test]
        fn canonical_form_is_a_fixed_point(value in json_value()) {
            let canonical = serde_json_canonicalizer::to_vec(&value).unwrap();
            let reparsed: Value = serde_json::from_slice(&canonical).unwrap();

            prop_assert_eq!(serde_json_canonicalizer::to_vec(&reparsed).unwrap(), canonical);
        }

        #[test]
        fn hash_is_sha256_in_lowercase_hex(value in json_value()) {
            let hash = hash_canonical(&value).unwrap();

            let digest = hash.as_str().strip_prefix("sha256:").unwrap();
            prop_assert_eq!(digest.len(), 64);
            prop_assert!(digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            prop_assert_eq!(PayloadHash::parse(hash.as_str()), Some(hash.clone()));
        }

        #[test]
        fn payload_hash_ignores_detail_key_order(
            details in json_value(),
            action in "\\PC{0,12}",
            sub in "\\PC{0,12}",
            name in "\\PC{0,12}",
        ) {
            let mut reordered_text = String::new();
            write_reordered(&details, " ", &mut reordered_text);
            let reordered: Value = serde_json::from_str(&reordered_text).unwrap();
            let usual: Value = serde_json::from_str(&details.to_string()).unwrap();

            prop_assert_eq!(
                hash_payload(&action, &reordered, &sub, &name).unwrap(),
                hash_payload(&action, &usual, &sub, &name).unwrap()
            );
        }
    }
}
