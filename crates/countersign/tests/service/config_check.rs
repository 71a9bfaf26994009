//! `countersign config check` run as a real process against the hostile
//! provider: what it prints and its exit status for a working and for a
//! broken identity provider.

use std::path::PathBuf;
use std::process::Output;

use crate::hostile_idp::{HostileIdp, closed_port_url};

/// Writes a configuration for `issuer` into a new temporary folder.
fn write_config(issuer: &str) -> PathBuf {
    let folder = std::env::temp_dir().join(format!(
        "countersign-check-{}",
        countersign::approvals::random_token()
    ));
    std::fs::create_dir_all(&folder).unwrap();
    let database = folder.join("countersign.sqlite");
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
public_url = "http://127.0.0.1:18300"

[database]
path = "{database}"

[oidc]
issuer = "{issuer}"
client_id = "countersign"

[approvals]
allowed_origins = ["http://localhost:18400"]

[[api_keys]]
name = "shop"
sha256 = "{key_hash}"
"#,
        database = database.display(),
        key_hash = countersign::approvals::sha256_hex("config-check-key"),
    );
    let path = folder.join("countersign.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Runs the binary off the runtime's thread, so the in-process provider
/// keeps serving while the command waits for it.
async fn config_check(issuer: &str) -> (Output, String) {
    let config = write_config(issuer);
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_countersign"))
            .args(["--config", config.to_str().unwrap(), "config", "check"])
            .env("COUNTERSIGN_OIDC_CLIENT_SECRET", "test-secret")
            .env_remove("COUNTERSIGN_CONFIG")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, stdout)
}

#[tokio::test]
async fn config_check_passes_for_working_idp() {
    let idp = HostileIdp::start().await;

    let (output, stdout) = config_check(&idp.issuer).await;

    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("OK   discovery document"), "{stdout}");
    assert!(stdout.contains("usable signing key"), "{stdout}");
    assert!(stdout.contains("OK   all checks passed"), "{stdout}");
}

#[tokio::test]
async fn config_check_reports_unreachable_issuer() {
    let issuer = closed_port_url("/realms/test").await;

    let (output, stdout) = config_check(&issuer).await;

    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL discovery at"), "{stdout}");
    assert!(
        stdout.contains("check oidc.issuer, and that the IdP is running"),
        "{stdout}"
    );
}

#[tokio::test]
async fn config_check_reports_issuer_mismatch() {
    let idp = HostileIdp::start().await;
    idp.set_discovery_issuer("http://127.0.0.1:1/realms/other");

    let (output, stdout) = config_check(&idp.issuer).await;

    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("FAIL discovery at"), "{stdout}");
    assert!(
        stdout.contains("http://127.0.0.1:1/realms/other"),
        "{stdout}"
    );
}

#[tokio::test]
async fn config_check_reports_missing_token_endpoint() {
    let idp = HostileIdp::start().await;
    idp.omit_from_discovery("token_endpoint");

    let (output, stdout) = config_check(&idp.issuer).await;

    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("token_endpoint"), "{stdout}");
}

#[tokio::test]
async fn config_check_reports_missing_end_session_endpoint() {
    let idp = HostileIdp::start().await;
    idp.omit_from_discovery("end_session_endpoint");

    let (output, stdout) = config_check(&idp.issuer).await;

    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL the IdP announces no end_session_endpoint"),
        "{stdout}"
    );
}

#[tokio::test]
async fn config_check_reports_invalid_config() {
    let (output, stdout) = config_check("not a url").await;

    assert!(!output.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL the configuration is invalid"),
        "{stdout}"
    );
    assert!(stdout.contains("oidc.issuer"), "{stdout}");
}
