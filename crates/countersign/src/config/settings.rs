//! Validation of raw values into typed settings, with defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use url::Url;

use super::ConfigError;
use super::raw::{ENV_CLIENT_SECRET, RawConfig, RawValue, Sourced};

const DEFAULT_LISTEN: &str = "127.0.0.1:18300";
const DEFAULT_DATABASE_PATH: &str = "countersign.sqlite";
const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email"];
const DEFAULT_ROLE_CLAIMS: &[&str] = &[
    "realm_access.roles",
    "resource_access.${client_id}.roles",
    "roles",
    "groups",
];
const DEFAULT_CLOCK_LEEWAY_SECONDS: i64 = 30;
const DEFAULT_SIGN_IN_WINDOW_SECONDS: i64 = 300;
const DEFAULT_LIFETIME_SECONDS: i64 = 300;
const DEFAULT_MAX_LIFETIME_SECONDS: i64 = 1800;
const DEFAULT_REQUEST_TIMEOUT_SECONDS: i64 = 60;
const DEFAULT_CREATE_PER_MINUTE: i64 = 120;
const DEFAULT_POPUP_PER_MINUTE: i64 = 60;
/// Largest per-minute rate limit; higher values would make the limit useless.
const MAX_PER_MINUTE: i64 = 100_000;

/// The validated configuration of the service.
#[derive(Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub oidc: OidcSettings,
    pub approvals: ApprovalSettings,
    pub limits: LimitSettings,
    pub api_keys: Vec<ApiKey>,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    /// Base URL that browsers and the IdP use to reach the service, without
    /// a path; the approval and redirect URLs are built from it.
    pub public_url: Url,
    /// Addresses of reverse proxies whose `X-Forwarded-For` header is
    /// believed; a single address is stored as a host network (`/32`, `/128`).
    pub trusted_proxies: Vec<IpNet>,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// SQLite file, created if missing; relative paths are resolved against
    /// the working directory.
    pub path: PathBuf,
}

#[derive(Debug)]
pub struct OidcSettings {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    pub scopes: Vec<String>,
    /// Dotted claim paths that hold role names, with `${client_id}` replaced.
    pub role_claims: Vec<String>,
    pub clock_leeway_seconds: u64,
    /// Maximum time from the redirect to the IdP to the decision.
    pub sign_in_window_seconds: i64,
}

#[derive(Debug, Clone)]
pub struct ApprovalSettings {
    pub default_lifetime_seconds: i64,
    pub max_lifetime_seconds: i64,
    /// Origins in their serialized form (`scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
}

/// Time and rate limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct LimitSettings {
    /// Maximum time from receiving a request to sending the response head.
    pub request_timeout: Duration,
    /// Approval requests one API key may create per minute (also the burst).
    pub create_per_minute: u32,
    /// Popup sign-in starts, callbacks and decisions per minute from one
    /// client address (also the burst).
    pub popup_per_minute: u32,
}

/// An API key given by name and the SHA-256 of the key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub name: String,
    pub sha256: [u8; 32],
}

impl Settings {
    /// Validates raw values into settings, reporting every problem at once.
    pub fn validate(raw: RawConfig) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut check = Checker {
            raw: &raw,
            problems: &mut problems,
        };

        let server = check.server();
        let database = DatabaseSettings {
            path: PathBuf::from(check.text_or("database.path", DEFAULT_DATABASE_PATH)),
        };
        let oidc = check.oidc();
        let approvals = check.approvals();
        let limits = check.limits();
        let api_keys = check.api_keys();

        match (server, oidc, approvals, limits) {
            (Some(server), Some(oidc), Some(approvals), Some(limits)) if problems.is_empty() => {
                Ok(Settings {
                    server,
                    database,
                    oidc,
                    approvals,
                    limits,
                    api_keys,
                })
            }
            _ => Err(ConfigError { problems }),
        }
    }

    /// Returns the OIDC `redirect_uri`: `<public_url>/popup/callback`.
    pub fn redirect_uri(&self) -> Url {
        join_path(&self.server.public_url, "popup/callback")
    }

    /// Returns the `post_logout_redirect_uri`: `<public_url>/popup/signed-out`.
    pub fn post_logout_redirect_uri(&self) -> Url {
        join_path(&self.server.public_url, "popup/signed-out")
    }

    /// Returns the URL of a path below the public URL, such as `popup/start/<id>`.
    pub fn public_url_for(&self, path: &str) -> Url {
        join_path(&self.server.public_url, path)
    }
}

fn join_path(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    url.set_path(path);
    url
}

struct Checker<'a> {
    raw: &'a RawConfig,
    problems: &'a mut Vec<String>,
}

impl Checker<'_> {
    fn server(&mut self) -> Option<ServerSettings> {
        let listen_text = self.text_or("server.listen", DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(listen) => Some(listen),
            Err(_) => {
                let source = self.source_of("server.listen");
                self.problems.push(format!(
                    "{source} is `{listen_text}`, which is not an address and port; write it like 127.0.0.1:18300"
                ));
                None
            }
        };

        let public_url = match self.text("server.public_url") {
            Some(text) => self.public_url(&text),
            None => match listen {
                Some(listen) if !listen.ip().is_unspecified() => {
                    Url::parse(&format!("http://{listen}/")).ok()
                }
                Some(listen) => {
                    self.problems.push(format!(
                        "`server.public_url` is missing and server.listen ({listen}) listens on all interfaces; set `server.public_url` (or COUNTERSIGN_SERVER_PUBLIC_URL) to the URL browsers use to reach this service"
                    ));
                    None
                }
                None => None,
            },
        };

        let trusted_proxies = self.trusted_proxies();

        Some(ServerSettings {
            listen: listen?,
            public_url: public_url?,
            trusted_proxies,
        })
    }

    fn trusted_proxies(&mut self) -> Vec<IpNet> {
        let mut networks = Vec::new();
        for text in self.list_or("server.trusted_proxies", &[]) {
            let text = text.trim();
            let parsed = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from));
            match parsed {
                Ok(network) => networks.push(network.trunc()),
                Err(_) => {
                    let source = self.source_of("server.trusted_proxies");
                    self.problems.push(format!(
                        "{source} contains `{text}`, which is not an IP address or network; write an address like 10.0.0.5 or a network like 10.0.0.0/24"
                    ));
                }
            }
        }
        networks
    }

    fn limits(&mut self) -> Option<LimitSettings> {
        let timeout = self.integer_in(
            "limits.request_timeout_seconds",
            DEFAULT_REQUEST_TIMEOUT_SECONDS,
            1,
            600,
        );
        let create = self.count_in(
            "limits.create_per_minute",
            DEFAULT_CREATE_PER_MINUTE,
            MAX_PER_MINUTE,
        );
        let popup = self.count_in(
            "limits.popup_per_minute",
            DEFAULT_POPUP_PER_MINUTE,
            MAX_PER_MINUTE,
        );
        Some(LimitSettings {
            request_timeout: Duration::from_secs(u64::try_from(timeout?).ok()?),
            create_per_minute: u32::try_from(create?).ok()?,
            popup_per_minute: u32::try_from(popup?).ok()?,
        })
    }

    fn public_url(&mut self, text: &str) -> Option<Url> {
        let source = self.source_of("server.public_url");
        let url = self.http_url(&source, text)?;
        if url.path() != "/" {
            self.problems.push(format!(
                "{source} is `{text}`, which has a path; the service must be reached at the root of its host, so remove the path"
            ));
            return None;
        }
        Some(url)
    }

    fn oidc(&mut self) -> Option<OidcSettings> {
        let issuer = match self.text("oidc.issuer") {
            Some(text) => {
                let source = self.source_of("oidc.issuer");
                self.http_url(&source, &text)
            }
            None => {
                self.problems.push(
                    "`oidc.issuer` is missing; set it to the issuer URL of your OpenID Connect provider, for example http://127.0.0.1:18080/realms/countersign-demo, in the config file or in COUNTERSIGN_OIDC_ISSUER".to_owned(),
                );
                None
            }
        };

        let client_id = match self.text("oidc.client_id") {
            Some(id) if !id.trim().is_empty() => Some(id),
            _ => {
                self.problems.push(
                    "`oidc.client_id` is missing; set it to the client id registered for Countersign at the IdP, in the config file or in COUNTERSIGN_OIDC_CLIENT_ID".to_owned(),
                );
                None
            }
        };

        let client_secret = match &self.raw.client_secret {
            Some(Sourced { value, source }) => {
                if secrecy::ExposeSecret::expose_secret(value).is_empty() {
                    self.problems.push(format!(
                        "the client secret from {source} is empty; put the client secret there"
                    ));
                }
                Some(value.clone())
            }
            None => {
                self.problems.push(format!(
                    "the OIDC client secret is missing; set {ENV_CLIENT_SECRET}, or {ENV_CLIENT_SECRET}_FILE or `oidc.client_secret_file` to a file that contains it"
                ));
                None
            }
        };

        let scopes = self.list_or("oidc.scopes", DEFAULT_SCOPES);
        if !scopes.iter().any(|scope| scope == "openid") {
            let source = self.source_of("oidc.scopes");
            self.problems
                .push(format!("{source} must contain `openid`"));
        }

        let role_claims = self.list_or("oidc.role_claims", DEFAULT_ROLE_CLAIMS);
        if role_claims.is_empty() {
            let source = self.source_of("oidc.role_claims");
            self.problems.push(format!(
                "{source} is empty, so no approver could ever hold a role; list the claims that carry roles, such as realm_access.roles"
            ));
        }

        let leeway = self.integer_in(
            "oidc.clock_leeway_seconds",
            DEFAULT_CLOCK_LEEWAY_SECONDS,
            0,
            300,
        );
        let window = self.integer_in(
            "oidc.sign_in_window_seconds",
            DEFAULT_SIGN_IN_WINDOW_SECONDS,
            30,
            3600,
        );

        let client_id = client_id?;
        let role_claims = role_claims
            .iter()
            .map(|claim| claim.replace("${client_id}", &client_id))
            .collect();
        Some(OidcSettings {
            issuer: issuer?,
            client_id,
            client_secret: client_secret?,
            scopes,
            role_claims,
            clock_leeway_seconds: u64::try_from(leeway?).ok()?,
            sign_in_window_seconds: window?,
        })
    }

    fn approvals(&mut self) -> Option<ApprovalSettings> {
        let default_lifetime = self.integer_in(
            "approvals.default_lifetime_seconds",
            DEFAULT_LIFETIME_SECONDS,
            30,
            86_400,
        );
        let max_lifetime = self.integer_in(
            "approvals.max_lifetime_seconds",
            DEFAULT_MAX_LIFETIME_SECONDS,
            30,
            86_400,
        );
        if let (Some(default), Some(max)) = (default_lifetime, max_lifetime)
            && default > max
        {
            self.problems.push(format!(
                "approvals.default_lifetime_seconds ({default}) is longer than approvals.max_lifetime_seconds ({max}); lower the default or raise the maximum"
            ));
        }

        let mut allowed_origins = Vec::new();
        let origins = self.list_or("approvals.allowed_origins", &[]);
        if origins.is_empty() {
            self.problems.push(
                "`approvals.allowed_origins` is empty; list the origins of the web applications that open the approval popup, for example [\"http://localhost:18400\"], or set COUNTERSIGN_APPROVALS_ALLOWED_ORIGINS".to_owned(),
            );
        }
        for origin in origins {
            match crate::approvals::parse_origin(&origin) {
                Some(serialized) => allowed_origins.push(serialized),
                None => {
                    let source = self.source_of("approvals.allowed_origins");
                    self.problems.push(format!(
                        "{source} contains `{origin}`, which is not an origin; write scheme, host and port only, like http://localhost:18400"
                    ));
                }
            }
        }

        Some(ApprovalSettings {
            default_lifetime_seconds: default_lifetime?,
            max_lifetime_seconds: max_lifetime?,
            allowed_origins,
        })
    }

    fn api_keys(&mut self) -> Vec<ApiKey> {
        let mut keys: Vec<ApiKey> = Vec::new();
        for raw in &self.raw.api_keys {
            let name = raw.name.trim();
            if name.is_empty() {
                self.problems.push(format!(
                    "{} has an empty `name`; give every key a name",
                    raw.source
                ));
                continue;
            }
            if keys.iter().any(|key| key.name == name) {
                self.problems.push(format!(
                    "{} repeats the name `{name}`; API key names must be unique because approvals are owned by the key name",
                    raw.source
                ));
                continue;
            }
            let digest = hex::decode(raw.sha256.trim())
                .ok()
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            match digest {
                Some(sha256) => keys.push(ApiKey {
                    name: name.to_owned(),
                    sha256,
                }),
                None => self.problems.push(format!(
                    "{} has a `sha256` that is not 64 hex digits; store the SHA-256 of the key, for example from `printf %s \"$KEY\" | sha256sum`, never the key itself",
                    raw.source
                )),
            }
        }
        if keys.is_empty() && self.raw.api_keys.is_empty() {
            self.problems.push(format!(
                "no API keys are configured, so no application could create approvals; add a [[api_keys]] entry with `name` and `sha256`, or set {}",
                super::raw::ENV_API_KEYS
            ));
        }
        keys
    }

    fn http_url(&mut self, source: &str, text: &str) -> Option<Url> {
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                if url.query().is_some() || url.fragment().is_some() {
                    self.problems.push(format!(
                        "{source} is `{text}`, which has a query or fragment; remove it"
                    ));
                    return None;
                }
                Some(url)
            }
            Ok(_) => {
                self.problems.push(format!(
                    "{source} is `{text}`, which is not an http or https URL; write it like https://idp.example.com/realms/main"
                ));
                None
            }
            Err(error) => {
                self.problems.push(format!(
                    "{source} is `{text}`, which is not a valid URL ({error}); write it like https://idp.example.com/realms/main"
                ));
                None
            }
        }
    }

    fn source_of(&self, dotted: &str) -> String {
        self.raw
            .get(dotted)
            .map_or_else(|| format!("`{dotted}`"), |value| value.source.clone())
    }

    fn text(&self, dotted: &str) -> Option<String> {
        match self.raw.get(dotted).map(|v| &v.value) {
            Some(RawValue::Text(text)) => Some(text.clone()),
            _ => None,
        }
    }

    fn text_or(&self, dotted: &str, default: &str) -> String {
        self.text(dotted).unwrap_or_else(|| default.to_owned())
    }

    fn list_or(&self, dotted: &str, default: &[&str]) -> Vec<String> {
        match self.raw.get(dotted).map(|v| &v.value) {
            Some(RawValue::List(items)) => items.clone(),
            _ => default.iter().map(|item| (*item).to_owned()).collect(),
        }
    }

    /// Reads a per-minute count from 1 to `max`.
    fn count_in(&mut self, dotted: &str, default: i64, max: i64) -> Option<i64> {
        let value = match self.raw.get(dotted).map(|v| &v.value) {
            Some(RawValue::Integer(value)) => *value,
            _ => default,
        };
        if (1..=max).contains(&value) {
            Some(value)
        } else {
            let source = self.source_of(dotted);
            self.problems.push(format!(
                "{source} is {value}, which is out of range; use a value from 1 to {max} (requests per minute)"
            ));
            None
        }
    }

    fn integer_in(&mut self, dotted: &str, default: i64, min: i64, max: i64) -> Option<i64> {
        let value = match self.raw.get(dotted).map(|v| &v.value) {
            Some(RawValue::Integer(value)) => *value,
            _ => default,
        };
        if (min..=max).contains(&value) {
            Some(value)
        } else {
            let source = self.source_of(dotted);
            self.problems.push(format!(
                "{source} is {value}, which is out of range; use a value from {min} to {max} (seconds)"
            ));
            None
        }
    }
}
