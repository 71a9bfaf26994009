//! Token header and claims parsing and verification, on arbitrary tokens.
//!
//! Input: the ID token spec, a NUL byte, then the access token spec (see
//! `countersign_fuzz::token` for the spec format). Both go through
//! `RelyingParty::verify` against a fixed JWKS of three keys. Asserts for
//! each input that verification does not panic, that a token is accepted
//! only when its signature verifies with aws-lc-rs directly against a
//! published key, that a forged token is never accepted, and that an
//! accepted login matches the claims it came from.

#![no_main]

use countersign_fuzz::token::{CLIENT_ID, Harness, LEEWAY, NONCE, NOW, decode_claims};
use countersign_fuzz::{split_at_nul, string_values};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let (id_spec, access_spec) = split_at_nul(data);
    let (Ok(id_spec), Ok(access_spec)) = (
        std::str::from_utf8(id_spec),
        std::str::from_utf8(access_spec),
    ) else {
        return;
    };
    let harness = Harness::get();

    let access_token = harness.build(access_spec, None);
    let id_token = harness.build(id_spec, Some(&access_token.compact));

    let Ok(login) = harness.verify(&id_token.compact, &access_token.compact) else {
        return;
    };

    assert!(!id_token.forged, "a forged ID token was accepted");
    assert!(!access_token.forged, "a forged access token was accepted");
    assert!(
        harness.signature_is_valid(&id_token.compact),
        "an ID token without a valid signature was accepted"
    );
    assert!(
        harness.signature_is_valid(&access_token.compact),
        "an access token without a valid signature was accepted"
    );

    let id_claims = decode_claims(&id_token.compact).expect("accepted claims decode");
    let access_claims = decode_claims(&access_token.compact).expect("accepted claims decode");
    assert_eq!(id_claims.get("nonce").and_then(Value::as_str), Some(NONCE));
    assert_eq!(
        id_claims.get("sub").and_then(Value::as_str),
        Some(login.subject.as_str())
    );
    assert_eq!(
        access_claims.get("sub").and_then(Value::as_str),
        Some(login.subject.as_str())
    );
    let exp = id_claims.get("exp").and_then(Value::as_f64).expect("exp");
    assert!(
        exp + LEEWAY as f64 > NOW as f64,
        "an expired ID token was accepted"
    );
    let names_client = id_claims.get("aud").is_some_and(|aud| match aud {
        Value::String(single) => single == CLIENT_ID,
        Value::Array(list) => list.iter().any(|entry| entry == CLIENT_ID),
        _ => false,
    });
    assert!(
        names_client,
        "an ID token for another audience was accepted"
    );

    let mut present = Vec::new();
    string_values(&id_claims, &mut present);
    string_values(&access_claims, &mut present);
    for role in &login.roles {
        assert!(
            present.contains(&role.as_str()),
            "role {role:?} is not a string value of either token"
        );
    }
});
