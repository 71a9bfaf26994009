//! A small OpenID Connect provider on 127.0.0.1 for the popup tests. It
//! serves a discovery document and a JWKS with one Ed25519 key. Its token
//! endpoint checks PKCE and signs tokens for the user a test signed in. Its
//! end-session endpoint is never called: the tests only read redirects to it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

/// A test-only Ed25519 key, made with `openssl genpkey -algorithm ed25519`.
const PRIVATE_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIAfhEKYlQ3iIIOZXGJPAPQqp5lfIHBlYQYUYwE1He0q0
-----END PRIVATE KEY-----
";
/// The public half of `PRIVATE_KEY_PEM`, base64url.
const PUBLIC_KEY_X: &str = "4o6bUgsqIrTtSgHc6Ay4GbkI1pt5cj0YffAceRhiHXA";
const KEY_ID: &str = "test-key-1";
pub const CLIENT_ID: &str = "countersign";

/// Who signs in at the mock provider, and how.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub sub: String,
    pub name: String,
    pub username: String,
    pub roles: Vec<String>,
    /// Seconds to add to the current time for `auth_time`; negative means
    /// an older sign-in.
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
}

struct PendingCode {
    user: TestUser,
    nonce: String,
    code_challenge: String,
}

#[derive(Clone)]
struct IdpState {
    issuer: String,
    now: Arc<dyn Fn() -> i64 + Send + Sync>,
    codes: Arc<Mutex<HashMap<String, PendingCode>>>,
}

pub struct MockIdp {
    pub issuer: String,
    state: IdpState,
}

impl MockIdp {
    /// Starts the provider; `now` gives the time the tokens are issued at.
    pub async fn start(now: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        countersign_oidc::install_crypto_provider();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/realms/test", listener.local_addr().unwrap());
        let state = IdpState {
            issuer: issuer.clone(),
            now: Arc::new(now),
            codes: Arc::new(Mutex::new(HashMap::new())),
        };
        let app = Router::new()
            .route(
                "/realms/test/.well-known/openid-configuration",
                get(discovery),
            )
            .route("/realms/test/certs", get(jwks))
            .route("/realms/test/token", post(token))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { issuer, state }
    }

    pub fn end_session_endpoint(&self) -> String {
        format!("{}/logout", self.issuer)
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
                nonce: query["nonce"].clone(),
                code_challenge: query["code_challenge"].clone(),
            },
        );
        code
    }
}

async fn discovery(State(state): State<IdpState>) -> Json<Value> {
    let issuer = &state.issuer;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/certs"),
        "end_session_endpoint": format!("{issuer}/logout"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"]
    }))
}

async fn jwks() -> Json<Value> {
    Json(json!({
        "keys": [{"kty": "OKP", "crv": "Ed25519", "x": PUBLIC_KEY_X, "kid": KEY_ID, "alg": "EdDSA", "use": "sig"}]
    }))
}

fn token_error(error: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": error}))).into_response()
}

async fn token(
    State(state): State<IdpState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
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

    let now = (state.now)();
    let user = &pending.user;
    let id_claims = json!({
        "iss": state.issuer,
        "sub": user.sub,
        "aud": CLIENT_ID,
        "azp": CLIENT_ID,
        "exp": now + 300,
        "iat": now,
        "auth_time": now + user.auth_time_offset,
        "nonce": pending.nonce,
        "acr": user.acr,
        "name": user.name,
        "preferred_username": user.username,
    });
    let access_claims = json!({
        "iss": state.issuer,
        "sub": user.sub,
        "aud": "account",
        "azp": CLIENT_ID,
        "exp": now + 60,
        "iat": now,
        "realm_access": {"roles": user.roles},
    });
    Json(json!({
        "access_token": sign(&access_claims),
        "id_token": sign(&id_claims),
        "token_type": "Bearer",
        "expires_in": 60
    }))
    .into_response()
}

fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(KEY_ID.to_owned());
    let key = EncodingKey::from_ed_pem(PRIVATE_KEY_PEM.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}
