//! Role extraction from claims by dot paths, on arbitrary claims and paths.
//!
//! Input: a JSON text (the claims), a NUL byte, then lines: the client id
//! first, each further line a role claim path. The harness also derives a
//! path from every chain of object keys in the claims, so that lookups hit.
//! Asserts for each input that extraction does not panic, that every role
//! is a non-empty string value of the claims, and that in claims without
//! dotted keys, a key chain that ends at a string or an array of strings
//! yields those strings.

#![no_main]

use std::collections::BTreeSet;

use countersign_fuzz::{split_at_nul, string_values};
use countersign_oidc::roles::{extract_roles, extract_roles_for_client};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// Upper bound on derived key-chain paths per input, to keep runs fast.
const MAX_DERIVED_PATHS: usize = 64;

fuzz_target!(|data: &[u8]| {
    let (claims_text, rest) = split_at_nul(data);
    let Ok(claims) = serde_json::from_slice::<Value>(claims_text) else {
        return;
    };
    let rest = String::from_utf8_lossy(rest);
    let mut lines = rest.split('\n');
    let client_id = lines.next().unwrap_or_default();
    let mut paths: Vec<String> = lines.map(str::to_owned).collect();

    let mut chains = Vec::new();
    key_chains(&claims, &mut Vec::new(), &mut chains);
    paths.extend(chains.iter().map(|chain| chain.join(".")));

    let mut present = Vec::new();
    string_values(&claims, &mut present);
    let present: BTreeSet<&str> = present.into_iter().collect();

    let literal = extract_roles(&claims, &paths);
    let for_client = extract_roles_for_client(&claims, &paths, client_id);
    for role in literal.iter().chain(&for_client) {
        assert!(!role.is_empty(), "an empty role was returned");
        assert!(
            present.contains(role.as_str()),
            "role {role:?} is not a string value of the claims"
        );
    }

    // With a dotted key anywhere, the longest-key rule may pick another member.
    if has_dotted_key(&claims) {
        return;
    }
    for chain in &chains {
        let Some(found) = follow(&claims, chain) else {
            continue;
        };
        let expected: BTreeSet<String> = match found {
            Value::String(text) => BTreeSet::from([text.clone()]),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => continue,
        };
        let roles = extract_roles(&claims, &[chain.join(".")]);
        for role in expected.iter().filter(|role| !role.is_empty()) {
            assert!(roles.contains(role), "{chain:?} misses role {role:?}");
        }
    }
});

/// Collects the chains of object keys from the root to every member,
/// up to [`MAX_DERIVED_PATHS`] chains.
fn key_chains<'a>(value: &'a Value, prefix: &mut Vec<&'a str>, chains: &mut Vec<Vec<&'a str>>) {
    let Value::Object(members) = value else {
        return;
    };
    for (key, member) in members {
        if chains.len() >= MAX_DERIVED_PATHS {
            return;
        }
        prefix.push(key);
        chains.push(prefix.clone());
        key_chains(member, prefix, chains);
        prefix.pop();
    }
}

fn has_dotted_key(value: &Value) -> bool {
    match value {
        Value::Object(members) => members
            .iter()
            .any(|(key, member)| key.contains('.') || has_dotted_key(member)),
        Value::Array(items) => items.iter().any(has_dotted_key),
        _ => false,
    }
}

fn follow<'a>(value: &'a Value, chain: &[&str]) -> Option<&'a Value> {
    chain
        .iter()
        .try_fold(value, |current, key| current.as_object()?.get(*key))
}
