//! A programmable OpenID Connect provider on 127.0.0.1 for the popup tests.
//!
//! By default it behaves like a well-configured Keycloak realm. It serves a
//! discovery document and a JWKS with one RS256 key. Its token endpoint
//! checks the client's Basic authentication and PKCE, then signs an ID
//! token and a JWT access token (roles in `realm_access.roles`) for the
//! user a test signed in. Each test can then make it hostile: change the
//! discovery `issuer`, publish other keys, reply to the JWKS or the token
//! call with an error, a delay or a redirect, edit the claims of either
//! token, or replace the ID token with any string. Its end-session endpoint is never called: the
//! tests only read the redirects to it.

pub mod keys;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, FromRequest as _, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use tokio::net::TcpListener;

pub use keys::SigningKey;

pub const CLIENT_ID: &str = "countersign";

/// Who signs in at the provider, and how.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub sub: String,
    pub name: String,
    pub username: String,
    pub roles: Vec<String>,
    /// Seconds added to the issue time for `auth_time`. A negative value
    /// means an older sign-in.
    pub auth_time_offset: i64,
    pub acr: String,
}

impl TestUser {
    pub fn manager() -> Self {
        Self {
            sub: "manager-sub".to_owned(),
            name: "Maria Manager".to_owned(),
            username: "manager".to_owned(),
            roles: vec!["MANAGER".to_owned()],
            auth_time_offset: 0,
            acr: "1".to_owned(),
        }
    }

    pub fn second_manager() -> Self {
        Self {
            sub: "manager2-sub".to_owned(),
            name: "Max Manager".to_owned(),
            username: "manager2".to_owned(),
            ..Self::manager()
        }
    }
}

/// The JWKS endpoint's reply.
#[derive(Clone, Debug)]
pub enum JwksReply {
    /// The published keys.
    Keys,
    /// An empty response with this status.
    Status(u16),
    /// A `302 Found` to this URL.
    Redirect(String),
}

/// The token endpoint's reply to a valid code.
#[derive(Clone, Debug)]
pub enum TokenReply {
    /// Signed tokens for the signed-in user.
    Issue,
    /// This JSON body with this status, for example an OAuth 2.0 error.
    Json(u16, Value),
    /// A plain-text body with this status.
    Status(u16),
    /// Signed tokens, sent after this delay.
    Delay(Duration),
    /// A `302 Found` to this URL.
    Redirect(String),
}

/// Changes the claims of a token before it is signed.
pub type ClaimsEdit = Arc<dyn Fn(&mut Value) + Send + Sync>;

/// Builds the whole ID token from its claims and the provider's current
/// signing key, in place of the normal signature.
pub type TokenForge = Arc<dyn Fn(&Value, &SigningKey) -> String + Send + Sync>;

/// What the provider does, set per test.
struct Script {
    /// The `issuer` member of the discovery document, when it lies.
    discovery_issuer: Option<String>,
    /// Members left out of the discovery document.
    discovery_omitted: Vec<String>,
    /// The `jwks_uri` member of the discovery document, when it points elsewhere.
    jwks_uri: Option<String>,
    signing_key: Arc<SigningKey>,
    published: Vec<Arc<SigningKey>>,
    jwks: JwksReply,
    token: TokenReply,
    id_token_edit: Option<ClaimsEdit>,
    access_token_edit: Option<ClaimsEdit>,
    id_token_forge: Option<TokenForge>,
    /// The provider's time in Unix seconds.
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
}

struct PendingCode {
    user: TestUser,
    nonce: String,
    code_challenge: String,
}

#[derive(Clone)]
struct IdpState {
    issuer: String,
    script: Arc<Mutex<Script>>,
    codes: Arc<Mutex<HashMap<String, PendingCode>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

pub struct HostileIdp {
    pub issuer: String,
    /// The key the provider signs with and publishes at the start.
    pub key: Arc<SigningKey>,
    state: IdpState,
}

impl HostileIdp {
    /// Starts a well-behaved provider on 127.0.0.1:0 with one RS256 key.
    pub async fn start() -> Self {
        countersign_oidc::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/realms/test", listener.local_addr().unwrap());
        let key = SigningKey::rsa("rsa-1");
        let script = Script {
            discovery_issuer: None,
            discovery_omitted: Vec::new(),
            jwks_uri: None,
            signing_key: key.clone(),
            published: vec![key.clone()],
            jwks: JwksReply::Keys,
            token: TokenReply::Issue,
            id_token_edit: None,
            access_token_edit: None,
            id_token_forge: None,
            now: Arc::new(|| time::OffsetDateTime::now_utc().unix_timestamp()),
        };
        let state = IdpState {
            issuer: issuer.clone(),
            script: Arc::new(Mutex::new(script)),
            codes: Arc::new(Mutex::new(HashMap::new())),
            hits: Arc::new(Mutex::new(HashMap::new())),
        };
        let app = Router::new().fallback(route).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { issuer, key, state }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.state.script.lock().unwrap()
    }

    pub fn end_session_endpoint(&self) -> String {
        format!("{}/logout", self.issuer)
    }

    pub fn token_path(&self) -> &'static str {
        "/realms/test/token"
    }

    pub fn jwks_path(&self) -> &'static str {
        "/realms/test/certs"
    }

    /// Sets the provider's clock, in Unix seconds.
    pub fn set_clock(&self, now: impl Fn() -> i64 + Send + Sync + 'static) {
        self.script().now = Arc::new(now);
    }

    /// Returns the provider's current time in Unix seconds.
    pub fn now(&self) -> i64 {
        let now = self.script().now.clone();
        now()
    }

    pub fn set_discovery_issuer(&self, issuer: &str) {
        self.script().discovery_issuer = Some(issuer.to_owned());
    }

    /// Leaves `member` out of the discovery document.
    pub fn omit_from_discovery(&self, member: &str) {
        self.script().discovery_omitted.push(member.to_owned());
    }

    pub fn set_jwks_uri(&self, jwks_uri: &str) {
        self.script().jwks_uri = Some(jwks_uri.to_owned());
    }

    /// Signs both tokens with `key` from now on.
    pub fn sign_with(&self, key: Arc<SigningKey>) {
        self.script().signing_key = key;
    }

    /// Publishes exactly `keys` in the JWKS.
    pub fn publish(&self, keys: &[Arc<SigningKey>]) {
        self.script().published = keys.to_vec();
    }

    pub fn set_jwks_reply(&self, reply: JwksReply) {
        self.script().jwks = reply;
    }

    pub fn set_token_reply(&self, reply: TokenReply) {
        self.script().token = reply;
    }

    pub fn edit_id_token(&self, edit: impl Fn(&mut Value) + Send + Sync + 'static) {
        self.script().id_token_edit = Some(Arc::new(edit));
    }

    pub fn edit_access_token(&self, edit: impl Fn(&mut Value) + Send + Sync + 'static) {
        self.script().access_token_edit = Some(Arc::new(edit));
    }

    pub fn forge_id_token(
        &self,
        forge: impl Fn(&Value, &SigningKey) -> String + Send + Sync + 'static,
    ) {
        self.script().id_token_forge = Some(Arc::new(forge));
    }

    /// Returns how many requests reached `path`.
    pub fn hits(&self, path: &str) -> usize {
        self.state
            .hits
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Plays the user's sign-in for an authorization URL: returns the code
    /// that the provider would send back to the redirect URI.
    pub fn sign_in(&self, authorization_url: &url::Url, user: TestUser) -> String {
        let query: HashMap<String, String> = authorization_url.query_pairs().into_owned().collect();
        let code = countersign::approvals::random_token();
        self.state.codes.lock().unwrap().insert(
            code.clone(),
            PendingCode {
                user,
                nonce: query.get("nonce").cloned().unwrap_or_default(),
                code_challenge: query["code_challenge"].clone(),
            },
        );
        code
    }
}

async fn route(State(state): State<IdpState>, headers: HeaderMap, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    *state.hits.lock().unwrap().entry(path.clone()).or_default() += 1;

    match path.as_str() {
        "/realms/test/.well-known/openid-configuration" => discovery(&state),
        "/realms/test/certs" => jwks(&state),
        "/realms/test/token" => {
            let Ok(Form(form)) = Form::<HashMap<String, String>>::from_request(request, &()).await
            else {
                return token_error("invalid_request");
            };
            token(&state, &headers, &form).await
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn discovery(state: &IdpState) -> Response {
    let issuer = &state.issuer;
    let script = state.script.lock().unwrap();
    let announced = script.discovery_issuer.clone().unwrap_or(issuer.clone());
    let jwks_uri = script.jwks_uri.clone().unwrap_or(format!("{issuer}/certs"));
    let mut document = json!({
        "issuer": announced,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": jwks_uri,
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"]
    });
    if let Some(members) = document.as_object_mut() {
        for member in &script.discovery_omitted {
            members.remove(member);
        }
    }
    Json(document).into_response()
}

fn jwks(state: &IdpState) -> Response {
    let script = state.script.lock().unwrap();
    match &script.jwks {
        JwksReply::Keys => {
            let keys: Vec<Value> = script.published.iter().map(|key| key.jwk()).collect();
            Json(json!({ "keys": keys })).into_response()
        }
        JwksReply::Status(status) => StatusCode::from_u16(*status).unwrap().into_response(),
        JwksReply::Redirect(location) => redirect(location),
    }
}

fn redirect(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

fn token_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

async fn token(state: &IdpState, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
    let authorized = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("Basic "));
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    // A code is used once, whatever happens next (RFC 6749, section 4.1.2).
    let Some(pending) = form
        .get("code")
        .and_then(|code| state.codes.lock().unwrap().remove(code))
    else {
        return token_error("invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != pending.code_challenge {
        return token_error("invalid_grant");
    }

    let reply = state.script.lock().unwrap().token.clone();
    match reply {
        TokenReply::Issue => issue_tokens(state, &pending),
        TokenReply::Json(status, body) => {
            (StatusCode::from_u16(status).unwrap(), Json(body)).into_response()
        }
        TokenReply::Status(status) => (
            StatusCode::from_u16(status).unwrap(),
            "the token endpoint failed",
        )
            .into_response(),
        TokenReply::Delay(delay) => {
            tokio::time::sleep(delay).await;
            issue_tokens(state, &pending)
        }
        TokenReply::Redirect(location) => redirect(&location),
    }
}

/// Builds, edits and signs the ID token and the access token.
fn issue_tokens(state: &IdpState, pending: &PendingCode) -> Response {
    let script = state.script.lock().unwrap();
    let now = (script.now)();
    let user = &pending.user;

    let mut access_claims = json!({
        "iss": state.issuer,
        "sub": user.sub,
        "aud": "account",
        "azp": CLIENT_ID,
        "exp": now + 60,
        "iat": now,
        "realm_access": {"roles": user.roles},
    });
    if let Some(edit) = &script.access_token_edit {
        edit(&mut access_claims);
    }
    let access_token = script.signing_key.sign(&access_claims);

    let mut id_claims = json!({
        "iss": state.issuer,
        "sub": user.sub,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "auth_time": now + user.auth_time_offset,
        "nonce": pending.nonce,
        "acr": user.acr,
        "at_hash": at_hash(&access_token, script.signing_key.alg()),
        "name": user.name,
        "preferred_username": user.username,
    });
    if let Some(edit) = &script.id_token_edit {
        edit(&mut id_claims);
    }
    let id_token = match &script.id_token_forge {
        Some(forge) => forge(&id_claims, &script.signing_key),
        None => script.signing_key.sign(&id_claims),
    };

    Json(json!({
        "access_token": access_token,
        "id_token": id_token,
        "token_type": "Bearer",
        "expires_in": 60
    }))
    .into_response()
}

/// Returns `at_hash`: the left half of the access token's hash, base64url
/// (OpenID Connect Core 1.0, section 3.1.3.6). The hash is the one of the
/// signature algorithm: SHA-256 for RS256 and ES256, SHA-512 for Ed25519.
fn at_hash(access_token: &str, alg: &str) -> String {
    let digest = match alg {
        "EdDSA" => Sha512::digest(access_token.as_bytes()).to_vec(),
        _ => Sha256::digest(access_token.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// A server on 127.0.0.1 that only counts the requests it receives: the
/// target of a redirect that must never be followed.
pub struct Witness {
    pub url: String,
    hits: Arc<Mutex<usize>>,
}

impl Witness {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/stolen", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(0));
        let counter = hits.clone();
        let app = Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                *counter.lock().unwrap() += 1;
                StatusCode::OK
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, hits }
    }

    pub fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

/// Returns a URL on 127.0.0.1 where nothing listens: a port this test
/// bound and released again.
pub async fn closed_port_url(path: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}{path}")
}
