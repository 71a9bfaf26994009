//! Configuration: a TOML file plus `COUNTERSIGN_*` environment overrides.
//!
//! Loading happens in two steps. [`raw`] reads every known key from the
//! environment or the file, remembering where each value came from, and
//! collects warnings for unknown keys. [`settings`] then validates the raw
//! values into the typed [`Settings`] that the rest of the service uses.
//! Every problem is reported with the key, its source and how to fix it.

mod error;
mod raw;
mod settings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub use error::ConfigError;
pub use raw::{ENV_CONFIG_PATH, RawConfig};
pub use settings::{
    ApiKey, ApprovalSettings, DatabaseSettings, LimitSettings, OidcSettings, ServerSettings,
    Settings,
};

/// Validated settings plus the warnings found while loading them.
#[derive(Debug)]
pub struct Loaded {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

/// Loads the configuration from an optional file and the given environment.
///
/// The environment is passed in (rather than read here) so that tests do not
/// have to change the process environment.
pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Loaded, ConfigError> {
    let (raw, warnings) = RawConfig::read(file, env)?;
    let settings = Settings::validate(raw)?;
    Ok(Loaded { settings, warnings })
}

/// Loads the configuration from TOML text that is already in memory and the
/// given environment, as [`load`] does with a file.
///
/// `origin` names the text in messages, in place of a file path.
pub fn load_toml_str(
    text: &str,
    origin: &Path,
    env: &HashMap<String, String>,
) -> Result<Loaded, ConfigError> {
    let (raw, warnings) = RawConfig::read_text(Some((text, origin)), env)?;
    let settings = Settings::validate(raw)?;
    Ok(Loaded { settings, warnings })
}

/// Loads the configuration from the file named by `file` or by
/// `COUNTERSIGN_CONFIG`, using the process environment.
pub fn load_from_process_env(file: Option<PathBuf>) -> Result<Loaded, ConfigError> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let file = file.or_else(|| env.get(ENV_CONFIG_PATH).map(PathBuf::from));
    load(file.as_deref(), &env)
}

#[cfg(test)]
mod tests;
