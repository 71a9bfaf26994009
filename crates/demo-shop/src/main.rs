//! Demo point-of-sale app for Countersign: a cashier's refund needs a
//! manager's approval in a popup. Demo only: everything lives in memory.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod config;
mod countersign;
mod error;
mod oidc;
mod orders;
mod session;
mod web;

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::http::HeaderValue;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;
use url::Url;

use crate::config::Config;
use crate::countersign::CountersignClient;
use crate::oidc::OidcClient;
use crate::session::SessionStore;
use crate::web::AppState;

const HTTP_TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        // Colours only on a terminal, so that log files stay plain text.
        .with_ansi(std::io::stdout().is_terminal())
        .init();

    let config = Config::parse();
    let listen = config.listen;
    let issuer_origin = origin_of(&config.oidc_issuer)?;
    let state = build_state(config)?;
    let content_security_policy =
        web::content_security_policy(&state.countersign_origin, &issuer_origin);
    let content_security_policy = HeaderValue::from_str(&content_security_policy)
        .context("the Content-Security-Policy built from SHOP_COUNTERSIGN_URL and SHOP_OIDC_ISSUER is not a valid header")?;

    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen} failed; set SHOP_LISTEN to a free address"))?;
    tracing::info!(%listen, public_url = %state.public_url, "demo shop started");

    let app = web::router(Arc::new(state), content_security_policy);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP failed")?;
    tracing::info!("demo shop stopped");
    Ok(())
}

fn build_state(config: Config) -> anyhow::Result<AppState> {
    if config.public_url.path() != "/" || config.public_url.query().is_some() {
        bail!(
            "SHOP_PUBLIC_URL must be an origin without a path, for example http://localhost:18400; got {}",
            config.public_url
        );
    }
    let public_origin = origin_of(&config.public_url)?;
    let countersign_origin = origin_of(&config.countersign_url)?;
    let redirect_uri = config
        .public_url
        .join("callback")
        .context("building the redirect URI from SHOP_PUBLIC_URL failed")?;

    // Redirects stay off, so responses from the identity provider and Countersign
    // are used as they are, and a bearer credential never follows a redirect.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .user_agent(concat!("countersign-demo-shop/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client failed")?;

    Ok(AppState {
        oidc: OidcClient::new(
            http.clone(),
            config.oidc_issuer,
            config.oidc_client_id,
            config.oidc_client_secret,
            redirect_uri,
        ),
        countersign: CountersignClient::new(
            http,
            config.countersign_url,
            config.countersign_api_key,
        ),
        sessions: SessionStore::default(),
        secure_cookies: config.public_url.scheme() == "https",
        public_url: config.public_url,
        public_origin,
        countersign_origin,
        sdk_path: config.sdk_path,
    })
}

/// Returns the ASCII origin of an `http` or `https` URL, for example `http://localhost:18400`.
fn origin_of(url: &Url) -> anyhow::Result<String> {
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{url} must be an http or https URL");
    }
    Ok(url.origin().ascii_serialization())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "listening for Ctrl-C failed");
            std::future::pending::<()>().await;
        }
    };

    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "listening for SIGTERM failed");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
