//! Configuration loading from arbitrary TOML text and environment overrides.
//!
//! Input: the TOML text, a NUL byte, then `NAME=value` lines for the
//! environment. The harness always sets `COUNTERSIGN_OIDC_CLIENT_SECRET`
//! to a marker value, so no input makes the loader read a secret file from
//! disk. Asserts for each input that loading does not panic, that a
//! failure lists at least one non-empty problem, and that the client
//! secret shows up in no problem, warning or `Debug` output.

#![no_main]

use std::collections::HashMap;
use std::path::Path;

use countersign::config::load_toml_str;
use countersign_fuzz::split_at_nul;
use libfuzzer_sys::fuzz_target;

const CLIENT_SECRET_ENV: &str = "COUNTERSIGN_OIDC_CLIENT_SECRET";
const CLIENT_SECRET: &str = "fuzz-marker-secret-5d1c";

fuzz_target!(|data: &[u8]| {
    let (toml_bytes, env_bytes) = split_at_nul(data);
    let Ok(toml_text) = std::str::from_utf8(toml_bytes) else {
        return;
    };

    let mut env: HashMap<String, String> = String::from_utf8_lossy(env_bytes)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    env.insert(CLIENT_SECRET_ENV.to_owned(), CLIENT_SECRET.to_owned());

    // An input that contains the marker may have it quoted back legitimately.
    let marker_in_input = String::from_utf8_lossy(data).contains(CLIENT_SECRET);

    match load_toml_str(toml_text, Path::new("fuzz.toml"), &env) {
        Ok(loaded) => {
            let printed = format!("{:?}", loaded.settings);
            assert!(
                marker_in_input || !printed.contains(CLIENT_SECRET),
                "Debug output shows the secret"
            );
            for warning in &loaded.warnings {
                assert!(!warning.is_empty(), "empty warning");
                assert!(
                    marker_in_input || !warning.contains(CLIENT_SECRET),
                    "warning shows the secret"
                );
            }
        }
        Err(error) => {
            assert!(!error.problems.is_empty(), "an error without problems");
            for problem in &error.problems {
                assert!(!problem.is_empty(), "empty problem");
                assert!(
                    marker_in_input || !problem.contains(CLIENT_SECRET),
                    "problem shows the secret"
                );
            }
        }
    }
});
