//! Canonical payload hashing (RFC 8785 + SHA-256) on arbitrary bytes.
//!
//! Input: a JSON text, optionally followed by a NUL byte and a second JSON
//! text. Asserts for each input that hashing does not panic, that the
//! canonical form is a fixed point, that key order and whitespace do not
//! change the hash, and that two texts which parse to equal values hash
//! equally.

#![no_main]

use countersign::approvals::{hash_canonical, hash_payload};
use countersign_fuzz::split_at_nul;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let (first_text, second_text) = split_at_nul(data);

    let Ok(first) = serde_json::from_slice::<Value>(first_text) else {
        return;
    };
    check_canonical_form(&first);

    if let Ok(second) = serde_json::from_slice::<Value>(second_text) {
        if first == second {
            assert_eq!(hash_canonical(&first).ok(), hash_canonical(&second).ok());
        }
    }
});

fn check_canonical_form(value: &Value) {
    let canonical =
        serde_json_canonicalizer::to_vec(value).expect("a parsed JSON value has a canonical form");
    let hash = hash_canonical(value).expect("a parsed JSON value hashes");

    // Canonicalizing the canonical form again must give the same bytes.
    let reparsed: Value =
        serde_json::from_slice(&canonical).expect("the canonical form is valid JSON");
    let canonical_again = serde_json_canonicalizer::to_vec(&reparsed).expect("canonical form");
    assert_eq!(
        String::from_utf8_lossy(&canonical_again),
        String::from_utf8_lossy(&canonical),
        "canonicalization is not idempotent"
    );
    assert_eq!(hash_canonical(&reparsed).ok().as_ref(), Some(&hash));

    // Members in reverse order with whitespace around every token parse to
    // an equal value, so they must hash the same.
    let mut reordered_text = String::new();
    write_reordered(value, " \n", &mut reordered_text);
    let reordered: Value =
        serde_json::from_str(&reordered_text).expect("the reordered text is valid JSON");
    let usual: Value = serde_json::from_str(&value.to_string()).expect("serde_json output");
    assert_eq!(hash_canonical(&reordered).ok(), hash_canonical(&usual).ok());

    // The payload of an approval hashes like the same object sent whole.
    let whole = json!({
        "action": "refund",
        "details": value,
        "requester": {"sub": "c-1", "name": "Carla Cashier"},
    });
    assert_eq!(
        hash_payload("refund", value, "c-1", "Carla Cashier").ok(),
        hash_canonical(&whole).ok()
    );
}

/// Writes `value` as JSON with object members in reverse order and `space`
/// around every token.
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
            }
            out.push_str(space);
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
                write_reordered(member, space, out);
            }
            out.push_str(space);
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}
