//! The `countersign` command: `serve`, `migrate` and `config check`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use countersign::config;

#[derive(Parser)]
#[command(
    name = "countersign",
    version,
    about = "A second person's OpenID Connect sign-off for one action"
)]
struct Cli {
    /// Configuration file (TOML); environment variables COUNTERSIGN_<SECTION>_<KEY> override it.
    #[arg(long, global = true, env = "COUNTERSIGN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log format; the level is set with RUST_LOG (default: info).
    #[arg(
        long,
        global = true,
        env = "COUNTERSIGN_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Apply database migrations, then serve the API and the popup pages.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Work with the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and reach the IdP: discovery document and JWKS.
    Check,
}

fn main() -> ExitCode {
    // jsonwebtoken picks its crypto backend at run time; choose it before
    // any token is verified.
    countersign_oidc::install_crypto_provider();
    let cli = Cli::parse();
    init_tracing(cli.log_format);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };

    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            runtime.block_on(countersign::check::run(cli.config))
        }
        Command::Serve => exit_code(runtime.block_on(serve(cli.config))),
        Command::Migrate => exit_code(runtime.block_on(migrate(cli.config))),
    }
}

async fn serve(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = load_settings(config_path)?;
    countersign::server::serve(settings).await
}

async fn migrate(config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let settings = load_settings(config_path)?;
    countersign::server::open_storage(&settings).await?;
    tracing::info!(database = %settings.database.path.display(), "database is up to date");
    Ok(())
}

fn load_settings(config_path: Option<PathBuf>) -> anyhow::Result<config::Settings> {
    let loaded = config::load_from_process_env(config_path)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded.settings)
}

fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal, so that log files stay plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
