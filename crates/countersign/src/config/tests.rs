use std::collections::HashMap;
use std::path::PathBuf;

use secrecy::ExposeSecret;

use super::*;

const SHOP_KEY_HASH: &str = "8b1a9953c4611296a827abf8c47804d7e6c49c6b0bd8cb93b5f2d5b86c9e8d9f";

fn minimal_env() -> HashMap<String, String> {
    HashMap::from([
        (
            "COUNTERSIGN_OIDC_ISSUER".to_owned(),
            "http://127.0.0.1:18080/realms/countersign-demo".to_owned(),
        ),
        (
            "COUNTERSIGN_OIDC_CLIENT_ID".to_owned(),
            "countersign".to_owned(),
        ),
        (
            "COUNTERSIGN_OIDC_CLIENT_SECRET".to_owned(),
            "s3cret".to_owned(),
        ),
        (
            "COUNTERSIGN_APPROVALS_ALLOWED_ORIGINS".to_owned(),
            "http://localhost:18400".to_owned(),
        ),
        (
            "COUNTERSIGN_API_KEYS".to_owned(),
            format!("demo-shop:{SHOP_KEY_HASH}"),
        ),
    ])
}

/// Creates a fresh directory below the system temporary directory.
fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "countersign-config-{}",
        crate::approvals::random_token()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn problems(result: Result<Loaded, ConfigError>) -> Vec<String> {
    match result {
        Ok(loaded) => panic!("expected a configuration error, got {:?}", loaded.settings),
        Err(error) => error.problems,
    }
}

#[test]
fn environment_alone_is_enough() {
    let loaded = load(None, &minimal_env()).unwrap();
    let settings = loaded.settings;

    assert_eq!(settings.server.listen.to_string(), "127.0.0.1:18300");
    assert_eq!(
        settings.server.public_url.as_str(),
        "http://127.0.0.1:18300/"
    );
    assert_eq!(settings.oidc.scopes, ["openid", "profile", "email"]);
    assert!(
        settings
            .oidc
            .role_claims
            .contains(&"resource_access.countersign.roles".to_owned())
    );
    assert_eq!(settings.approvals.default_lifetime_seconds, 300);
    assert_eq!(settings.approvals.max_lifetime_seconds, 1800);
    assert_eq!(settings.api_keys[0].name, "demo-shop");
    assert_eq!(hex::encode(settings.api_keys[0].sha256), SHOP_KEY_HASH);
    assert_eq!(
        settings.redirect_uri().as_str(),
        "http://127.0.0.1:18300/popup/callback"
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn missing_issuer_says_how_to_fix() {
    let mut env = minimal_env();
    env.remove("COUNTERSIGN_OIDC_ISSUER");

    let problems = problems(load(None, &env));

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("`oidc.issuer` is missing"),
        "{}",
        problems[0]
    );
    assert!(
        problems[0].contains("COUNTERSIGN_OIDC_ISSUER"),
        "{}",
        problems[0]
    );
}

#[test]
fn bad_issuer_url_names_its_source() {
    let mut env = minimal_env();
    env.insert("COUNTERSIGN_OIDC_ISSUER".to_owned(), "not a url".to_owned());

    let problems = problems(load(None, &env));

    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("COUNTERSIGN_OIDC_ISSUER is `not a url`"),
        "{}",
        problems[0]
    );
}

#[test]
fn issuer_must_be_http() {
    let dir = temp_dir();
    let file = write(
        &dir,
        "countersign.toml",
        "[oidc]\nissuer = \"ftp://idp.example\"\n",
    );
    let mut env = minimal_env();
    env.remove("COUNTERSIGN_OIDC_ISSUER");

    let problems = problems(load(Some(&file), &env));

    assert!(problems[0].contains("`oidc.issuer` in"), "{}", problems[0]);
    assert!(
        problems[0].contains("not an http or https URL"),
        "{}",
        problems[0]
    );
}

#[test]
fn secret_from_environment() {
    let settings = load(None, &minimal_env()).unwrap().settings;

    assert_eq!(settings.oidc.client_secret.expose_secret(), "s3cret");
}

#[test]
fn secret_from_file_named_in_environment() {
    let dir = temp_dir();
    let secret_file = write(&dir, "secret", "from-file\n");
    let mut env = minimal_env();
    env.remove("COUNTERSIGN_OIDC_CLIENT_SECRET");
    env.insert(
        "COUNTERSIGN_OIDC_CLIENT_SECRET_FILE".to_owned(),
        secret_file.display().to_string(),
    );

    let settings = load(None, &env).unwrap().settings;

    assert_eq!(settings.oidc.client_secret.expose_secret(), "from-file");
}

#[test]
fn secret_from_file_named_in_config() {
    let dir = temp_dir();
    let secret_file = write(&dir, "secret", "in-toml-file");
    let config = write(
        &dir,
        "countersign.toml",
        &format!(
            "[oidc]\nclient_secret_file = \"{}\"\n",
            secret_file.display()
        ),
    );
    let mut env = minimal_env();
    env.remove("COUNTERSIGN_OIDC_CLIENT_SECRET");

    let settings = load(Some(&config), &env).unwrap().settings;

    assert_eq!(settings.oidc.client_secret.expose_secret(), "in-toml-file");
}

#[test]
fn missing_secret_file_is_reported() {
    let mut env = minimal_env();
    env.remove("COUNTERSIGN_OIDC_CLIENT_SECRET");
    env.insert(
        "COUNTERSIGN_OIDC_CLIENT_SECRET_FILE".to_owned(),
        "/nonexistent/countersign-secret".to_owned(),
    );

    let problems = problems(load(None, &env));

    assert!(
        problems[0].contains("cannot read the client secret file /nonexistent/countersign-secret"),
        "{}",
        problems[0]
    );
}

#[test]
fn secret_in_config_file_is_rejected() {
    let dir = temp_dir();
    let config = write(
        &dir,
        "countersign.toml",
        "[oidc]\nclient_secret = \"oops\"\n",
    );

    let problems = problems(load(Some(&config), &minimal_env()));

    assert!(
        problems[0].contains("`oidc.client_secret`"),
        "{}",
        problems[0]
    );
    assert!(
        !problems[0].contains("oops"),
        "the secret itself must not be echoed: {}",
        problems[0]
    );
}

#[test]
fn missing_secret_is_reported() {
    let mut env = minimal_env();
    env.remove("COUNTERSIGN_OIDC_CLIENT_SECRET");

    let problems = problems(load(None, &env));

    assert!(
        problems[0].contains("client secret is missing"),
        "{}",
        problems[0]
    );
}

#[test]
fn unknown_keys_warn() {
    let dir = temp_dir();
    let config = write(
        &dir,
        "countersign.toml",
        "[oidc]\nisuer = \"x\"\n\n[loging]\nlevel = \"debug\"\n\n[[api_keys]]\nname = \"shop\"\nsha256 = \"8b1a9953c4611296a827abf8c47804d7e6c49c6b0bd8cb93b5f2d5b86c9e8d9f\"\ncomment = \"x\"\n",
    );
    let mut env = minimal_env();
    env.insert("COUNTERSIGN_OIDC_ISUER".to_owned(), "x".to_owned());

    let warnings = load(Some(&config), &env).unwrap().warnings;

    assert!(
        warnings.iter().any(|w| w.contains("`oidc.isuer`")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("`loging`")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("`comment`")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("COUNTERSIGN_OIDC_ISUER")),
        "{warnings:?}"
    );
    assert_eq!(warnings.len(), 4, "{warnings:?}");
}

#[test]
fn environment_overrides_file() {
    let dir = temp_dir();
    let config = write(
        &dir,
        "countersign.toml",
        "[server]\nlisten = \"127.0.0.1:1\"\n\n[database]\npath = \"file.sqlite\"\n",
    );
    let mut env = minimal_env();
    env.insert(
        "COUNTERSIGN_SERVER_LISTEN".to_owned(),
        "127.0.0.1:2".to_owned(),
    );

    let settings = load(Some(&config), &env).unwrap().settings;

    assert_eq!(settings.server.listen.port(), 2);
    assert_eq!(settings.database.path, PathBuf::from("file.sqlite"));
}

#[test]
fn full_file_is_read() {
    let dir = temp_dir();
    let config = write(
        &dir,
        "countersign.toml",
        r#"
[server]
listen = "127.0.0.1:18300"
public_url = "http://127.0.0.1:18300"

[database]
path = "countersign.sqlite"

[oidc]
issuer = "http://127.0.0.1:18080/realms/countersign-demo"
client_id = "countersign"
scopes = ["openid", "profile"]
role_claims = ["resource_access.${client_id}.roles"]
clock_leeway_seconds = 10
sign_in_window_seconds = 120

[approvals]
default_lifetime_seconds = 60
max_lifetime_seconds = 600
allowed_origins = ["http://localhost:18400/"]

[[api_keys]]
name = "demo-shop"
sha256 = "8B1A9953C4611296A827ABF8C47804D7E6C49C6B0BD8CB93B5F2D5B86C9E8D9F"
"#,
    );
    let env = HashMap::from([("COUNTERSIGN_OIDC_CLIENT_SECRET".to_owned(), "s".to_owned())]);

    let loaded = load(Some(&config), &env).unwrap();
    let settings = loaded.settings;

    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(
        settings.oidc.role_claims,
        ["resource_access.countersign.roles"]
    );
    assert_eq!(settings.oidc.clock_leeway_seconds, 10);
    assert_eq!(settings.oidc.sign_in_window_seconds, 120);
    assert_eq!(
        settings.approvals.allowed_origins,
        ["http://localhost:18400"]
    );
    assert_eq!(settings.approvals.max_lifetime_seconds, 600);
    assert_eq!(hex::encode(settings.api_keys[0].sha256), SHOP_KEY_HASH);
}

#[test]
fn all_problems_are_reported_together() {
    let env = HashMap::from([
        (
            "COUNTERSIGN_SERVER_LISTEN".to_owned(),
            "localhost".to_owned(),
        ),
        (
            "COUNTERSIGN_APPROVALS_DEFAULT_LIFETIME_SECONDS".to_owned(),
            "soon".to_owned(),
        ),
    ]);

    let problems = problems(load(None, &env));

    assert!(
        problems
            .iter()
            .any(|p| p
                .contains("COUNTERSIGN_APPROVALS_DEFAULT_LIFETIME_SECONDS must be a whole number")),
        "{problems:?}"
    );
}

#[test]
fn validation_problems_are_listed() {
    let mut env = minimal_env();
    env.insert(
        "COUNTERSIGN_SERVER_LISTEN".to_owned(),
        "localhost".to_owned(),
    );
    env.insert(
        "COUNTERSIGN_APPROVALS_DEFAULT_LIFETIME_SECONDS".to_owned(),
        "3600".to_owned(),
    );
    env.insert(
        "COUNTERSIGN_APPROVALS_ALLOWED_ORIGINS".to_owned(),
        "http://localhost:18400/shop".to_owned(),
    );
    env.insert(
        "COUNTERSIGN_API_KEYS".to_owned(),
        "demo-shop:abc".to_owned(),
    );
    env.insert("COUNTERSIGN_OIDC_SCOPES".to_owned(), "profile".to_owned());

    let problems = problems(load(None, &env));

    assert!(
        problems
            .iter()
            .any(|p| p.contains("COUNTERSIGN_SERVER_LISTEN is `localhost`")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("longer than approvals.max_lifetime_seconds")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`http://localhost:18400/shop`, which is not an origin")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("not 64 hex digits")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("must contain `openid`")),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 5, "{problems:?}");
}

#[test]
fn unreadable_config_file_is_reported() {
    let problems = problems(load(
        Some(std::path::Path::new("/nonexistent/countersign.toml")),
        &minimal_env(),
    ));

    assert!(
        problems[0].contains("cannot read the config file /nonexistent/countersign.toml"),
        "{}",
        problems[0]
    );
}

#[test]
fn invalid_toml_is_reported() {
    let dir = temp_dir();
    let config = write(&dir, "countersign.toml", "[server\nlisten = 1");

    let problems = problems(load(Some(&config), &minimal_env()));

    assert!(problems[0].contains("is not valid TOML"), "{}", problems[0]);
}

#[test]
fn limits_and_proxies_have_defaults() {
    let settings = load(None, &minimal_env()).unwrap().settings;

    assert!(settings.server.trusted_proxies.is_empty());
    assert_eq!(
        settings.limits.request_timeout,
        std::time::Duration::from_secs(60)
    );
    assert_eq!(settings.limits.create_per_minute, 120);
    assert_eq!(settings.limits.popup_per_minute, 60);
}

#[test]
fn limits_and_proxies_are_read_from_file() {
    let dir = temp_dir();
    let config = write(
        &dir,
        "countersign.toml",
        r#"
[server]
trusted_proxies = ["10.0.0.5", "10.1.0.0/16", "::1"]

[limits]
request_timeout_seconds = 5
create_per_minute = 10
popup_per_minute = 20
"#,
    );

    let loaded = load(Some(&config), &minimal_env()).unwrap();

    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let proxies: Vec<String> = loaded
        .settings
        .server
        .trusted_proxies
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(proxies, ["10.0.0.5/32", "10.1.0.0/16", "::1/128"]);
    let limits = &loaded.settings.limits;
    assert_eq!(limits.request_timeout, std::time::Duration::from_secs(5));
    assert_eq!(limits.create_per_minute, 10);
    assert_eq!(limits.popup_per_minute, 20);
}

#[test]
fn invalid_limits_and_proxies_are_reported() {
    let mut env = minimal_env();
    env.insert(
        "COUNTERSIGN_SERVER_TRUSTED_PROXIES".to_owned(),
        "10.0.0.1,proxy.example".to_owned(),
    );
    env.insert(
        "COUNTERSIGN_LIMITS_REQUEST_TIMEOUT_SECONDS".to_owned(),
        "0".to_owned(),
    );
    env.insert(
        "COUNTERSIGN_LIMITS_CREATE_PER_MINUTE".to_owned(),
        "0".to_owned(),
    );
    env.insert(
        "COUNTERSIGN_LIMITS_POPUP_PER_MINUTE".to_owned(),
        "1000000".to_owned(),
    );

    let problems = problems(load(None, &env));

    assert_eq!(problems.len(), 4, "{problems:?}");
    assert!(
        problems[0].contains("COUNTERSIGN_SERVER_TRUSTED_PROXIES contains `proxy.example`, which is not an IP address or network"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains("COUNTERSIGN_LIMITS_REQUEST_TIMEOUT_SECONDS is 0"),
        "{}",
        problems[1]
    );
    assert!(
        problems[2].contains("COUNTERSIGN_LIMITS_CREATE_PER_MINUTE is 0, which is out of range; use a value from 1 to 100000 (requests per minute)"),
        "{}",
        problems[2]
    );
    assert!(
        problems[3].contains("COUNTERSIGN_LIMITS_POPUP_PER_MINUTE is 1000000"),
        "{}",
        problems[3]
    );
}
