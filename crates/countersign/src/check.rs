//! `countersign config check`: validate the configuration and reach the IdP.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config;

/// Prints one line per check and returns failure if any check failed.
pub async fn run(config_path: Option<PathBuf>) -> ExitCode {
    let loaded = match config::load_from_process_env(config_path) {
        Ok(loaded) => loaded,
        Err(error) => {
            println!("FAIL configuration:");
            for problem in &error.problems {
                println!("  - {problem}");
            }
            return ExitCode::FAILURE;
        }
    };
    for warning in &loaded.warnings {
        println!("WARN {warning}");
    }
    println!("OK   configuration is valid");
    ExitCode::SUCCESS
}
