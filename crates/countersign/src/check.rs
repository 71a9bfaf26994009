//! `countersign config check`: validate the configuration and reach the IdP.
//!
//! Prints one line per check, starting with OK, WARN, FAIL or INFO, and
//! names the fix for each failure.

use std::path::PathBuf;
use std::process::ExitCode;

use countersign_oidc::JwksCache;

use crate::config::{self, Settings};
use crate::signin::{IDP_TIMEOUT, JWKS_MIN_REFETCH_INTERVAL};

/// Runs every check and returns failure if any of them failed.
pub async fn run(config_path: Option<PathBuf>) -> ExitCode {
    let loaded = match config::load_from_process_env(config_path) {
        Ok(loaded) => loaded,
        Err(error) => {
            println!("FAIL the configuration is invalid:");
            for problem in &error.problems {
                println!("     - {problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    for warning in &loaded.warnings {
        println!("WARN {warning}");
    }
    let settings = loaded.settings;
    println!("OK   configuration is valid");

    let mut failed = !check_database_directory(&settings);
    failed |= !check_crypto_provider();
    failed |= !check_identity_provider(&settings).await;

    if failed {
        println!("FAIL some checks failed; fix them and run `countersign config check` again");
        ExitCode::FAILURE
    } else {
        println!("OK   all checks passed");
        ExitCode::SUCCESS
    }
}

fn check_database_directory(settings: &Settings) -> bool {
    let path = &settings.database.path;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if directory.is_dir() {
        println!(
            "OK   database file {} (its directory exists)",
            path.display()
        );
        true
    } else {
        println!(
            "FAIL the directory of the database file {} does not exist; create {} or change database.path",
            path.display(),
            directory.display()
        );
        false
    }
}

fn check_crypto_provider() -> bool {
    if countersign_oidc::crypto_provider_ready() {
        true
    } else {
        println!(
            "FAIL no crypto provider for token signatures is installed; this is a build problem, not a configuration problem"
        );
        false
    }
}

async fn check_identity_provider(settings: &Settings) -> bool {
    let issuer = &settings.oidc.issuer;
    let http = match countersign_oidc::http_client(IDP_TIMEOUT) {
        Ok(http) => http,
        Err(error) => {
            println!("FAIL cannot create the HTTP client: {error}");
            return false;
        }
    };

    let metadata = match countersign_oidc::discover(&http, issuer).await {
        Ok(metadata) => metadata,
        Err(error) => {
            println!(
                "FAIL discovery at {} failed: {error}",
                countersign_oidc::discovery_url(issuer)
            );
            println!(
                "     check oidc.issuer, and that the IdP is running and reachable from this host"
            );
            return false;
        }
    };
    println!("OK   discovery document of {issuer}");
    println!(
        "OK   authorization endpoint {}",
        metadata.authorization_endpoint
    );
    println!("OK   token endpoint {}", metadata.token_endpoint);

    let mut passed = true;
    match &metadata.end_session_endpoint {
        Some(endpoint) => println!("OK   end-session endpoint {endpoint}"),
        None => {
            println!(
                "FAIL the IdP announces no end_session_endpoint, so approvers' IdP sessions cannot be ended after each attempt; use an IdP that supports RP-initiated logout"
            );
            passed = false;
        }
    }
    let methods = &metadata.code_challenge_methods_supported;
    if !methods.is_empty() && !methods.iter().any(|method| method == "S256") {
        println!(
            "WARN the IdP does not list S256 in code_challenge_methods_supported; PKCE S256 may be rejected"
        );
    }

    let jwks = JwksCache::new(http, metadata.jwks_uri.clone(), JWKS_MIN_REFETCH_INTERVAL);
    match jwks.refresh().await {
        Ok(count) => {
            let keys = if count == 1 { "key" } else { "keys" };
            println!(
                "OK   JWKS at {} has {count} usable signing {keys}",
                metadata.jwks_uri
            );
        }
        Err(error) => {
            println!("FAIL {error}");
            passed = false;
        }
    }

    println!(
        "INFO register the redirect URI {} for client {}",
        settings.redirect_uri(),
        settings.oidc.client_id
    );
    println!(
        "INFO register the post-logout redirect URI {}",
        settings.post_logout_redirect_uri()
    );
    passed
}
