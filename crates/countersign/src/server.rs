//! Starting and stopping the HTTP server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::approvals::SystemClock;
use crate::config::Settings;
use crate::http::{AppState, router};
use crate::storage::{SqliteStorage, Storage};

/// How long open connections may take to finish after a shutdown signal.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(10);

/// Opens the database and applies pending migrations.
pub async fn open_storage(settings: &Settings) -> anyhow::Result<Arc<SqliteStorage>> {
    let path = &settings.database.path;
    let storage = SqliteStorage::open(path).await.with_context(|| {
        format!(
            "cannot open the database {}; check that its directory exists and is writable, or change database.path",
            path.display()
        )
    })?;
    storage
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the database {}", path.display()))?;
    Ok(Arc::new(storage))
}

/// Runs `countersign serve` until SIGINT or SIGTERM.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let settings = Arc::new(settings);
    let storage = open_storage(&settings).await?;
    let state = AppState::new(settings.clone(), storage, Arc::new(SystemClock));

    let listen = settings.server.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen}; choose a free address and port in server.listen")
    })?;
    tracing::info!(
        listen = %listen,
        public_url = %settings.server.public_url,
        database = %settings.database.path.display(),
        issuer = %settings.oidc.issuer,
        "countersign started"
    );

    // Fetch the IdP's metadata early so that a wrong issuer shows in the log
    // at startup; the popup retries on first use if this fails.
    let sign_in = state.sign_in.clone();
    tokio::spawn(async move { sign_in.warm_up().await });

    run(listener, state, shutdown_signal()).await?;
    tracing::info!("countersign stopped");
    Ok(())
}

/// Serves `state` on `listener` until `stop` completes, then ends the status
/// streams and waits at most `SHUTDOWN_DRAIN` for open connections.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shutdown = state.shutdown.clone();
    let mut stopping = shutdown.subscribe();
    // The peer address feeds the per-client rate limits of the popup.
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();

    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        stop.await;
        tracing::info!("shutting down: closing status streams");
        shutdown.trigger();
    });

    tokio::select! {
        result = server => result,
        () = async {
            // Either side ending the watch means shutdown has begun.
            let _ = stopping.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(SHUTDOWN_DRAIN).await;
        } => {
            tracing::warn!(seconds = SHUTDOWN_DRAIN.as_secs(), "connections still open after the shutdown drain time; stopping anyway");
            Ok(())
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %error, "cannot listen for Ctrl-C");
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
                tracing::error!(error = %error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();

    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
