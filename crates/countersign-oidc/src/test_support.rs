//! Test helpers: signing keys generated in the test, tokens signed with
//! them, and a small HTTP server on 127.0.0.1 whose replies a test sets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as lc_signature, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use url::Url;

/// Encodes bytes as unpadded base64url, as JOSE does.
pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum KeyMaterial {
    Rsa(Arc<RsaKeyPair>),
    EcP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A signing key with its key id.
pub(crate) struct TestKey {
    pub(crate) kid: String,
    material: KeyMaterial,
}

/// Returns the one 2048-bit RSA key of the test binary, generated once
/// because RSA key generation is slow in an unoptimized build.
fn shared_rsa_key() -> Arc<RsaKeyPair> {
    static KEY: OnceLock<Arc<RsaKeyPair>> = OnceLock::new();
    KEY.get_or_init(|| {
        Arc::new(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("generate RSA key"))
    })
    .clone()
}

impl TestKey {
    pub(crate) fn rsa(kid: &str) -> Self {
        Self {
            kid: kid.into(),
            material: KeyMaterial::Rsa(shared_rsa_key()),
        }
    }

    pub(crate) fn es256(kid: &str) -> Self {
        let key =
            EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("generate EC key");
        Self {
            kid: kid.into(),
            material: KeyMaterial::EcP256(key),
        }
    }

    pub(crate) fn ed25519(kid: &str) -> Self {
        let key = Ed25519KeyPair::generate().expect("generate Ed25519 key");
        Self {
            kid: kid.into(),
            material: KeyMaterial::Ed25519(key),
        }
    }

    /// Returns the algorithm this key signs with by default.
    pub(crate) fn default_alg(&self) -> &'static str {
        match self.material {
            KeyMaterial::Rsa(_) => "RS256",
            KeyMaterial::EcP256(_) => "ES256",
            KeyMaterial::Ed25519(_) => "EdDSA",
        }
    }

    /// Returns the public key as a JWK, with `kid`, `use` and `alg`.
    pub(crate) fn jwk(&self) -> Value {
        match &self.material {
            KeyMaterial::Rsa(key) => {
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                       "n": b64(&components.n), "e": b64(&components.e)})
            }
            KeyMaterial::EcP256(key) => {
                let point = key.public_key().as_ref();
                json!({"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            KeyMaterial::Ed25519(key) => {
                json!({"kty": "OKP", "kid": self.kid, "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
                       "x": b64(key.public_key().as_ref())})
            }
        }
    }

    /// Returns the JWK without its `alg` member, as some providers publish keys.
    pub(crate) fn jwk_without_alg(&self) -> Value {
        let mut jwk = self.jwk();
        if let Some(object) = jwk.as_object_mut() {
            object.remove("alg");
        }
        jwk
    }

    /// Returns the public key bytes that an attacker would use as an HMAC secret.
    pub(crate) fn public_key_bytes(&self) -> Vec<u8> {
        match &self.material {
            KeyMaterial::Rsa(key) => key.public_key().as_ref().to_vec(),
            KeyMaterial::EcP256(key) => key.public_key().as_ref().to_vec(),
            KeyMaterial::Ed25519(key) => key.public_key().as_ref().to_vec(),
        }
    }

    /// Signs `claims` with the key's default algorithm and its `kid`.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": self.default_alg(), "kid": self.kid, "typ": "JWT"}),
            claims,
        )
    }

    /// Signs `claims` under an explicit header (which may lie about `alg`).
    pub(crate) fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let alg = header["alg"].as_str().unwrap_or(self.default_alg());
        let signing_input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let signature = self.raw_signature(alg, signing_input.as_bytes());
        format!("{signing_input}.{}", b64(signature))
    }

    fn raw_signature(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.material {
            KeyMaterial::Rsa(key) => {
                let padding: &'static dyn lc_signature::RsaEncoding = match alg {
                    "PS256" => &lc_signature::RSA_PSS_SHA256,
                    "RS384" => &lc_signature::RSA_PKCS1_SHA384,
                    "RS512" => &lc_signature::RSA_PKCS1_SHA512,
                    _ => &lc_signature::RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(padding, &rng, message, &mut signature)
                    .expect("RSA signature");
                signature
            }
            KeyMaterial::EcP256(key) => key
                .sign(&rng, message)
                .expect("EC signature")
                .as_ref()
                .to_vec(),
            KeyMaterial::Ed25519(key) => key.sign(message).as_ref().to_vec(),
        }
    }
}

/// Builds a JWKS document from keys.
pub(crate) fn jwks_of(keys: &[&TestKey]) -> Value {
    json!({"keys": keys.iter().map(|key| key.jwk()).collect::<Vec<_>>()})
}

/// Signs a token with the HMAC secret `secret`, as an alg-confusion attack would.
pub(crate) fn sign_hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
    let signing_input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(tag.as_ref()))
}

/// A canned reply of the test server.
#[derive(Clone)]
enum Reply {
    Json(StatusCode, Value),
    Redirect(String),
}

/// A request the test server received.
#[derive(Clone, Debug)]
pub(crate) struct RecordedRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

#[derive(Default)]
struct ServerState {
    replies: HashMap<String, Reply>,
    hits: HashMap<String, usize>,
    requests: Vec<RecordedRequest>,
}

/// An HTTP server on 127.0.0.1:0 that replies per path with what the test set.
pub(crate) struct TestServer {
    address: SocketAddr,
    state: Arc<Mutex<ServerState>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        let state = Arc::new(Mutex::new(ServerState::default()));
        let router = axum::Router::new()
            .fallback(reply)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("test server");
        });
        Self {
            address,
            state,
            task,
        }
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        Url::parse(&format!("http://{}{}", self.address, path)).expect("test URL")
    }

    pub(crate) fn set_json(&self, path: &str, body: Value) {
        self.set_reply(path, Reply::Json(StatusCode::OK, body));
    }

    pub(crate) fn set_json_status(&self, path: &str, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).expect("status code");
        self.set_reply(path, Reply::Json(status, body));
    }

    pub(crate) fn redirect(&self, path: &str, location: &str) {
        self.set_reply(path, Reply::Redirect(location.into()));
    }

    fn set_reply(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .expect("state lock")
            .replies
            .insert(path.into(), reply);
    }

    pub(crate) fn hits(&self, path: &str) -> usize {
        self.state
            .lock()
            .expect("state lock")
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().expect("state lock").requests.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn reply(State(state): State<Arc<Mutex<ServerState>>>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap_or_default();

    let found = {
        let mut state = state.lock().expect("state lock");
        *state.hits.entry(path.clone()).or_default() += 1;
        state.requests.push(RecordedRequest {
            method,
            path: path.clone(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        state.replies.get(&path).cloned()
    };

    match found {
        Some(Reply::Json(status, value)) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response(),
        Some(Reply::Redirect(location)) => Response::builder()
            .status(StatusCode::FOUND)
            .header(header::LOCATION, location)
            .body(Body::empty())
            .expect("redirect response"),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The time every verification test runs at.
pub(crate) const NOW: i64 = 1_800_000_000;

/// Metadata for an issuer, with endpoints below it.
pub(crate) fn metadata_for(issuer: &Url) -> crate::ProviderMetadata {
    let endpoint = |name: &str| {
        Url::parse(&format!("{}/{name}", issuer.as_str().trim_end_matches('/'))).expect("endpoint")
    };
    crate::ProviderMetadata {
        issuer: issuer.clone(),
        authorization_endpoint: endpoint("auth"),
        token_endpoint: endpoint("token"),
        jwks_uri: endpoint("certs"),
        end_session_endpoint: Some(endpoint("logout")),
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
        ],
        code_challenge_methods_supported: vec!["S256".into()],
        id_token_signing_alg_values_supported: vec!["RS256".into()],
    }
}

pub(crate) fn client_config() -> crate::ClientConfig {
    crate::ClientConfig {
        client_id: "countersign".into(),
        client_secret: crate::ClientSecret::new("demo:secret".into()),
        redirect_uri: Url::parse("http://127.0.0.1:18300/popup/callback").expect("redirect URI"),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        role_claims: vec![
            "realm_access.roles".into(),
            "resource_access.${client_id}.roles".into(),
            "roles".into(),
            "groups".into(),
        ],
        leeway_seconds: 30,
    }
}

/// Builds a relying party for `issuer` with the given fixed clock.
pub(crate) fn relying_party_with_clock(
    issuer: &Url,
    clock: Arc<crate::FixedClock>,
    min_refetch_interval: std::time::Duration,
) -> crate::RelyingParty {
    let http = crate::http_client(std::time::Duration::from_secs(5)).expect("client");
    let metadata = metadata_for(issuer);
    let jwks = Arc::new(crate::JwksCache::new(
        http.clone(),
        metadata.jwks_uri.clone(),
        min_refetch_interval,
    ));
    crate::RelyingParty::new(http, metadata, client_config(), jwks, clock)
}

pub(crate) fn relying_party_for_tests(issuer: &str) -> crate::RelyingParty {
    let issuer = Url::parse(issuer).expect("issuer");
    relying_party_with_clock(
        &issuer,
        Arc::new(crate::FixedClock::new(NOW)),
        std::time::Duration::from_secs(60),
    )
}

/// Builds a relying party whose issuer is `/realms/demo` on the test server.
pub(crate) fn relying_party_on(server: &TestServer) -> crate::RelyingParty {
    relying_party_for_tests(server.url("/realms/demo").as_str())
}
