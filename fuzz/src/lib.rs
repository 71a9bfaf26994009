//! Helpers shared by the fuzz targets: splitting an input into its parts,
//! and the signing keys, JWKS server and relying party of `token_verify`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod token;

use serde_json::Value;

/// Splits `data` at the first NUL byte into the text before it and the
/// bytes after it. Without a NUL byte the second part is empty.
pub fn split_at_nul(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&byte| byte == 0) {
        Some(index) => (&data[..index], &data[index + 1..]),
        None => (data, &[]),
    }
}

/// Collects every string value in `value` at any depth, object keys left out.
pub fn string_values<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::String(text) => found.push(text),
        Value::Array(items) => items.iter().for_each(|item| string_values(item, found)),
        Value::Object(members) => members
            .values()
            .for_each(|member| string_values(member, found)),
        _ => {}
    }
}
