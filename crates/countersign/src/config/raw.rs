//! Reading raw values from the environment and the TOML file.
//!
//! Precedence, highest first: `COUNTERSIGN_<SECTION>_<KEY>` environment
//! variables, the config file, then the defaults applied in `settings`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use secrecy::SecretString;

use super::ConfigError;

/// Environment variable naming the config file (the `--config` flag wins).
pub const ENV_CONFIG_PATH: &str = "COUNTERSIGN_CONFIG";
/// Environment variable holding the OIDC client secret itself.
pub const ENV_CLIENT_SECRET: &str = "COUNTERSIGN_OIDC_CLIENT_SECRET";
/// Environment variable holding API keys as `name:sha256hex` pairs,
/// comma-separated; it replaces every `[[api_keys]]` entry of the file.
pub const ENV_API_KEYS: &str = "COUNTERSIGN_API_KEYS";
/// Environment variable choosing the log format (read by the binary).
pub const ENV_LOG_FORMAT: &str = "COUNTERSIGN_LOG_FORMAT";

const ENV_PREFIX: &str = "COUNTERSIGN_";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    List,
}

struct KeySpec {
    section: &'static str,
    name: &'static str,
    kind: Kind,
}

const fn key(section: &'static str, name: &'static str, kind: Kind) -> KeySpec {
    KeySpec {
        section,
        name,
        kind,
    }
}

/// Every scalar or list key of the file; `[[api_keys]]` is handled apart.
const KEYS: &[KeySpec] = &[
    key("server", "listen", Kind::Text),
    key("server", "public_url", Kind::Text),
    key("server", "trusted_proxies", Kind::List),
    key("database", "path", Kind::Text),
    key("oidc", "issuer", Kind::Text),
    key("oidc", "client_id", Kind::Text),
    key("oidc", "client_secret_file", Kind::Text),
    key("oidc", "scopes", Kind::List),
    key("oidc", "role_claims", Kind::List),
    key("oidc", "clock_leeway_seconds", Kind::Integer),
    key("oidc", "sign_in_window_seconds", Kind::Integer),
    key("approvals", "default_lifetime_seconds", Kind::Integer),
    key("approvals", "max_lifetime_seconds", Kind::Integer),
    key("approvals", "allowed_origins", Kind::List),
    key("limits", "request_timeout_seconds", Kind::Integer),
    key("limits", "create_per_minute", Kind::Integer),
    key("limits", "popup_per_minute", Kind::Integer),
];

const API_KEY_FIELDS: &[&str] = &["name", "sha256"];

impl KeySpec {
    fn dotted(&self) -> String {
        format!("{}.{}", self.section, self.name)
    }

    fn env_name(&self) -> String {
        format!("{ENV_PREFIX}{}_{}", self.section, self.name).to_ascii_uppercase()
    }
}

/// A raw value before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawValue {
    Text(String),
    Integer(i64),
    List(Vec<String>),
}

/// A value together with where it came from, for error messages such as
/// "`oidc.issuer` in /etc/countersign.toml" or "COUNTERSIGN_OIDC_ISSUER".
#[derive(Clone, Debug)]
pub struct Sourced<T> {
    pub value: T,
    pub source: String,
}

/// One `[[api_keys]]` entry before validation.
#[derive(Clone, Debug)]
pub struct RawApiKey {
    pub name: String,
    pub sha256: String,
    pub source: String,
}

/// Every value found, keyed by its dotted name (`oidc.issuer`).
#[derive(Debug, Default)]
pub struct RawConfig {
    values: BTreeMap<String, Sourced<RawValue>>,
    pub client_secret: Option<Sourced<SecretString>>,
    pub api_keys: Vec<RawApiKey>,
    pub api_keys_source: String,
}

impl RawConfig {
    /// Reads the file (if any) and the environment; returns the raw values
    /// and warnings about unknown keys.
    pub fn read(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        match file {
            Some(path) => {
                let text = read_file(path)?;
                Self::read_text(Some((&text, path)), env)
            }
            None => Self::read_text(None, env),
        }
    }

    /// Reads TOML text that is already in memory, then the environment.
    ///
    /// `origin` names the text in messages, as the file path does in
    /// [`Self::read`]. An `oidc.client_secret_file` key is still read from
    /// disk unless the environment sets the client secret itself.
    pub fn read_text(
        toml: Option<(&str, &Path)>,
        env: &HashMap<String, String>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let mut raw = RawConfig {
            api_keys_source: "[[api_keys]]".to_owned(),
            ..RawConfig::default()
        };

        if let Some((text, origin)) = toml {
            let table = parse_toml(text, origin)?;
            raw.read_table(&table, origin, &mut problems, &mut warnings);
        }
        raw.read_env(env, &mut problems, &mut warnings);
        raw.read_client_secret(env, &mut problems);

        if problems.is_empty() {
            Ok((raw, warnings))
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Returns the value of a dotted key, if any source set it.
    pub fn get(&self, dotted: &str) -> Option<&Sourced<RawValue>> {
        self.values.get(dotted)
    }

    fn read_table(
        &mut self,
        table: &toml::Table,
        path: &Path,
        problems: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) {
        let file = path.display();
        for (section_name, section) in table {
            if section_name == "api_keys" {
                self.read_api_keys_table(section, path, problems, warnings);
                continue;
            }
            let known: Vec<&KeySpec> = KEYS.iter().filter(|k| k.section == section_name).collect();
            if known.is_empty() {
                warnings.push(format!(
                    "unknown key `{section_name}` in {file} is ignored; known sections are [server], [database], [oidc], [approvals], [limits] and [[api_keys]]"
                ));
                continue;
            }
            let Some(section) = section.as_table() else {
                problems.push(format!(
                    "`{section_name}` in {file} must be a table: write it as [{section_name}]"
                ));
                continue;
            };
            for (name, value) in section {
                if section_name == "oidc" && name == "client_secret" {
                    problems.push(format!(
                        "`oidc.client_secret` in {file} is not allowed because the config file is not a place for secrets; remove it and set {ENV_CLIENT_SECRET}, or name a file holding the secret in `oidc.client_secret_file`"
                    ));
                    continue;
                }
                let Some(spec) = known.iter().find(|k| k.name == name) else {
                    let names: Vec<&str> = known.iter().map(|k| k.name).collect();
                    warnings.push(format!(
                        "unknown key `{section_name}.{name}` in {file} is ignored; known keys in [{section_name}] are {}",
                        names.join(", ")
                    ));
                    continue;
                };
                let source = format!("`{}` in {file}", spec.dotted());
                match value_from_toml(spec.kind, value) {
                    Some(value) => {
                        self.values.insert(spec.dotted(), Sourced { value, source });
                    }
                    None => problems.push(format!("{source} must be {}", kind_words(spec.kind))),
                }
            }
        }
    }

    fn read_api_keys_table(
        &mut self,
        value: &toml::Value,
        path: &Path,
        problems: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) {
        let file = path.display();
        let Some(entries) = value.as_array() else {
            problems.push(format!(
                "`api_keys` in {file} must be an array of tables: write each key as [[api_keys]] with `name` and `sha256`"
            ));
            return;
        };
        self.api_keys_source = format!("[[api_keys]] in {file}");
        for (index, entry) in entries.iter().enumerate() {
            let number = index + 1;
            let source = format!("[[api_keys]] entry {number} in {file}");
            let Some(entry) = entry.as_table() else {
                problems.push(format!("{source} must be a table with `name` and `sha256`"));
                continue;
            };
            for name in entry.keys() {
                if !API_KEY_FIELDS.contains(&name.as_str()) {
                    warnings.push(format!(
                        "unknown key `{name}` in {source} is ignored; known keys are name and sha256"
                    ));
                }
            }
            let name = entry.get("name").and_then(toml::Value::as_str);
            let sha256 = entry.get("sha256").and_then(toml::Value::as_str);
            match (name, sha256) {
                (Some(name), Some(sha256)) => self.api_keys.push(RawApiKey {
                    name: name.to_owned(),
                    sha256: sha256.to_owned(),
                    source,
                }),
                _ => problems.push(format!(
                    "{source} needs both `name` and `sha256` as strings; `sha256` is the hex SHA-256 of the key, for example from `printf %s \"$KEY\" | sha256sum`"
                )),
            }
        }
    }

    fn read_env(
        &mut self,
        env: &HashMap<String, String>,
        problems: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) {
        for spec in KEYS {
            let env_name = spec.env_name();
            let Some(text) = env.get(&env_name) else {
                continue;
            };
            match value_from_env(spec.kind, text) {
                Some(value) => {
                    self.values.insert(
                        spec.dotted(),
                        Sourced {
                            value,
                            source: env_name,
                        },
                    );
                }
                None => problems.push(format!("{env_name} must be {}", kind_words(spec.kind))),
            }
        }

        if let Some(text) = env.get(ENV_API_KEYS) {
            self.read_api_keys_env(text, problems);
        }

        let mut unknown: Vec<&String> = env
            .keys()
            .filter(|name| name.starts_with(ENV_PREFIX) && !is_known_env(name))
            .collect();
        unknown.sort();
        for name in unknown {
            warnings.push(format!("unknown environment variable {name} is ignored"));
        }
    }

    fn read_api_keys_env(&mut self, text: &str, problems: &mut Vec<String>) {
        self.api_keys.clear();
        self.api_keys_source = ENV_API_KEYS.to_owned();
        for (index, pair) in text
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .enumerate()
        {
            let number = index + 1;
            match pair.split_once(':') {
                Some((name, sha256)) => self.api_keys.push(RawApiKey {
                    name: name.trim().to_owned(),
                    sha256: sha256.trim().to_owned(),
                    source: format!("entry {number} of {ENV_API_KEYS}"),
                }),
                None => problems.push(format!(
                    "entry {number} of {ENV_API_KEYS} must be `name:sha256hex`; separate several keys with commas"
                )),
            }
        }
    }

    fn read_client_secret(&mut self, env: &HashMap<String, String>, problems: &mut Vec<String>) {
        let file_env = format!("{ENV_CLIENT_SECRET}_FILE");
        if let Some(secret) = env.get(ENV_CLIENT_SECRET) {
            if env.contains_key(&file_env) {
                problems.push(format!(
                    "both {ENV_CLIENT_SECRET} and {file_env} are set; unset one of them"
                ));
                return;
            }
            self.client_secret = Some(Sourced {
                value: SecretString::from(secret.trim().to_owned()),
                source: ENV_CLIENT_SECRET.to_owned(),
            });
            return;
        }

        // COUNTERSIGN_OIDC_CLIENT_SECRET_FILE is the environment override of
        // `oidc.client_secret_file`, so `read_env` has already applied it.
        let Some(path) = self.values.get("oidc.client_secret_file") else {
            return;
        };
        let RawValue::Text(file) = &path.value else {
            return;
        };
        match std::fs::read_to_string(file) {
            Ok(contents) => {
                self.client_secret = Some(Sourced {
                    value: SecretString::from(contents.trim().to_owned()),
                    source: format!("the file {file} (named by {})", path.source),
                });
            }
            Err(error) => problems.push(format!(
                "cannot read the client secret file {file} (named by {}): {error}; create the file or correct the path",
                path.source
            )),
        }
    }
}

fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| {
        ConfigError::single(format!(
            "cannot read the config file {}: {error}; check the path given by --config or {ENV_CONFIG_PATH}",
            path.display()
        ))
    })
}

fn parse_toml(text: &str, origin: &Path) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>().map_err(|error| {
        ConfigError::single(format!(
            "the config file {} is not valid TOML: {error}",
            origin.display()
        ))
    })
}

fn is_known_env(name: &str) -> bool {
    let fixed = [
        ENV_CONFIG_PATH,
        ENV_CLIENT_SECRET,
        ENV_API_KEYS,
        ENV_LOG_FORMAT,
    ];
    fixed.contains(&name) || KEYS.iter().any(|spec| spec.env_name() == name)
}

fn value_from_toml(kind: Kind, value: &toml::Value) -> Option<RawValue> {
    match kind {
        Kind::Text => value.as_str().map(|s| RawValue::Text(s.to_owned())),
        Kind::Integer => value.as_integer().map(RawValue::Integer),
        Kind::List => {
            let items = value.as_array()?;
            let strings: Option<Vec<String>> = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect();
            strings.map(RawValue::List)
        }
    }
}

fn value_from_env(kind: Kind, text: &str) -> Option<RawValue> {
    match kind {
        Kind::Text => Some(RawValue::Text(text.trim().to_owned())),
        Kind::Integer => text.trim().parse().ok().map(RawValue::Integer),
        Kind::List => Some(RawValue::List(
            text.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
    }
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a string",
        Kind::Integer => "a whole number",
        Kind::List => "a list of strings (in the environment: comma-separated)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_follow_section_and_key() {
        let names: Vec<String> = KEYS.iter().map(KeySpec::env_name).collect();
        assert!(names.contains(&"COUNTERSIGN_SERVER_LISTEN".to_owned()));
        assert!(names.contains(&"COUNTERSIGN_OIDC_CLIENT_SECRET_FILE".to_owned()));
        assert!(names.contains(&"COUNTERSIGN_APPROVALS_ALLOWED_ORIGINS".to_owned()));
    }

    #[test]
    fn env_list_splits_on_commas() {
        let value = value_from_env(Kind::List, " a, b ,,c ");
        assert_eq!(
            value,
            Some(RawValue::List(vec!["a".into(), "b".into(), "c".into()]))
        );
    }

    #[test]
    fn text_is_read_like_a_file() {
        let text = "[oidc]\nclient_id = \"countersign\"\nflavour = \"mild\"\n";

        let (raw, warnings) =
            RawConfig::read_text(Some((text, Path::new("inline.toml"))), &HashMap::new()).unwrap();

        let client_id = raw.get("oidc.client_id").unwrap();
        assert_eq!(client_id.value, RawValue::Text("countersign".into()));
        assert_eq!(client_id.source, "`oidc.client_id` in inline.toml");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("`oidc.flavour`"), "{warnings:?}");
    }

    #[test]
    fn invalid_toml_text_names_its_origin() {
        let error =
            RawConfig::read_text(Some(("[oidc", Path::new("inline.toml"))), &HashMap::new())
                .unwrap_err();

        assert_eq!(error.problems.len(), 1);
        assert!(
            error.problems[0].starts_with("the config file inline.toml is not valid TOML"),
            "{:?}",
            error.problems
        );
    }

    #[test]
    fn env_integer_rejects_words() {
        assert_eq!(value_from_env(Kind::Integer, "ten"), None);
        assert_eq!(
            value_from_env(Kind::Integer, " 10 "),
            Some(RawValue::Integer(10))
        );
    }
}
