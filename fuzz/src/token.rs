//! The harness of `token_verify`: signing keys made at start-up, a JWKS
//! server on 127.0.0.1, a relying party with a fixed clock, the input
//! format, and a signature check that does not use `jsonwebtoken`.
//!
//! A token spec is one of:
//!
//! - a compact token, used byte for byte;
//! - `sign <signer> [tamper]`, a line with the JOSE header JSON, then the
//!   claims JSON. The harness fills in the placeholders, encodes both parts
//!   exactly as written and signs them.
//!
//! Signers: `rsa`, `es`, `ed` (published in the JWKS) and `rogue-ed`, an
//! Ed25519 key that is not published but uses the `kid` of `ed`. Tampers:
//! `sig` (change the first signature character), `payload` and `header`
//! (append a space after signing), `strip` (empty signature).
//!
//! Placeholders: `$ISS`, `$NONCE`, `$NOW`, `$LATER` (`$NOW` + 300),
//! `$EARLIER` (`$NOW` - 60) and, in the ID token, `$AT_HASH` (the
//! `at_hash` of the access token).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as lc, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    RsaKeyPair, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use countersign_oidc::{
    ClientConfig, ClientSecret, Expectations, FixedClock, JwksCache, Nonce, ProviderMetadata,
    RawToken, RelyingParty, TokenSet, VerifiedLogin, VerifyError,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha384, Sha512};
use url::Url;

/// The time every verification runs at, in Unix seconds.
pub const NOW: i64 = 1_800_000_000;
/// The issuer of the relying party. The `.invalid` name never resolves, and
/// nothing is fetched from it because the JWKS URL points at the local server.
pub const ISSUER: &str = "https://idp.invalid/realms/fuzz";
pub const CLIENT_ID: &str = "countersign";
pub const NONCE: &str = "n-0S6_WzA2Mj";
/// The clock leeway of the relying party, in seconds.
pub const LEEWAY: i64 = 30;

/// The signing keys. `rogue_ed` is never published.
struct Keys {
    rsa: RsaKeyPair,
    es: EcdsaKeyPair,
    ed: Ed25519KeyPair,
    rogue_ed: Ed25519KeyPair,
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Keys {
    fn generate() -> Self {
        Self {
            rsa: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key"),
            es: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("EC key"),
            ed: Ed25519KeyPair::generate().expect("Ed25519 key"),
            rogue_ed: Ed25519KeyPair::generate().expect("Ed25519 key"),
        }
    }

    /// Returns the published JWKS. The RSA key has no `alg`, so that both
    /// PKCS #1 v1.5 and PSS tokens reach the signature check.
    fn jwks(&self) -> Value {
        let rsa = RsaPublicKeyComponents::<Vec<u8>>::from(self.rsa.public_key());
        let point = self.es.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "use": "sig", "n": b64(&rsa.n), "e": b64(&rsa.e)},
            {"kty": "EC", "kid": "es", "use": "sig", "alg": "ES256", "crv": "P-256",
             "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "kid": "ed", "use": "sig", "alg": "EdDSA", "crv": "Ed25519",
             "x": b64(self.ed.public_key().as_ref())},
        ]})
    }

    fn sign(&self, signer: Signer, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match signer {
            Signer::Rsa => {
                let padding: &'static dyn lc::RsaEncoding = match alg {
                    "RS384" => &lc::RSA_PKCS1_SHA384,
                    "RS512" => &lc::RSA_PKCS1_SHA512,
                    "PS256" => &lc::RSA_PSS_SHA256,
                    "PS384" => &lc::RSA_PSS_SHA384,
                    "PS512" => &lc::RSA_PSS_SHA512,
                    _ => &lc::RSA_PKCS1_SHA256,
                };
                let mut signature = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(padding, &rng, message, &mut signature)
                    .expect("RSA signature");
                signature
            }
            Signer::Es => self
                .es
                .sign(&rng, message)
                .expect("EC signature")
                .as_ref()
                .to_vec(),
            Signer::Ed => self.ed.sign(message).as_ref().to_vec(),
            Signer::RogueEd => self.rogue_ed.sign(message).as_ref().to_vec(),
        }
    }

    /// Checks the signature of a compact token against the published keys
    /// with aws-lc-rs directly, picking the key by `kid` as a relying party
    /// must when the set has several keys.
    fn signature_is_valid(&self, token: &str) -> bool {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Some(header_json) = URL_SAFE_NO_PAD
            .decode(header)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        else {
            return false;
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        let alg = header_json.get("alg").and_then(Value::as_str);
        let kid = header_json.get("kid").and_then(Value::as_str);
        let message = format!("{header}.{payload}");

        let rsa_public = self.rsa.public_key().as_ref();
        let (algorithm, public_key): (&'static dyn lc::VerificationAlgorithm, &[u8]) =
            match (kid, alg) {
                (Some("rsa"), Some("RS256")) => (&lc::RSA_PKCS1_2048_8192_SHA256, rsa_public),
                (Some("rsa"), Some("RS384")) => (&lc::RSA_PKCS1_2048_8192_SHA384, rsa_public),
                (Some("rsa"), Some("RS512")) => (&lc::RSA_PKCS1_2048_8192_SHA512, rsa_public),
                (Some("rsa"), Some("PS256")) => (&lc::RSA_PSS_2048_8192_SHA256, rsa_public),
                (Some("rsa"), Some("PS384")) => (&lc::RSA_PSS_2048_8192_SHA384, rsa_public),
                (Some("rsa"), Some("PS512")) => (&lc::RSA_PSS_2048_8192_SHA512, rsa_public),
                (Some("es"), Some("ES256")) => {
                    (&lc::ECDSA_P256_SHA256_FIXED, self.es.public_key().as_ref())
                }
                (Some("ed"), Some("EdDSA")) => (&lc::ED25519, self.ed.public_key().as_ref()),
                _ => return false,
            };
        UnparsedPublicKey::new(algorithm, public_key)
            .verify(message.as_bytes(), &signature)
            .is_ok()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    Rsa,
    Es,
    Ed,
    RogueEd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    Signature,
    Payload,
    Header,
    Strip,
}

/// A token built from a spec, and whether the harness forged it.
pub struct BuiltToken {
    pub compact: String,
    /// True when the harness signed it with an unpublished key or changed
    /// it after signing, so that no relying party may accept it.
    pub forged: bool,
}

/// Starts a server on 127.0.0.1 that returns `body` to every request, and
/// returns its port.
fn serve_jwks(body: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => request.extend_from_slice(&buffer[..read]),
                }
            }
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

/// The keys, the runtime and the relying party, made once per process.
pub struct Harness {
    keys: Keys,
    runtime: tokio::runtime::Runtime,
    relying_party: RelyingParty,
}

impl Harness {
    pub fn get() -> &'static Harness {
        static HARNESS: OnceLock<Harness> = OnceLock::new();
        HARNESS.get_or_init(Harness::start)
    }

    fn start() -> Harness {
        countersign_oidc::install_crypto_provider();
        let keys = Keys::generate();
        let port = serve_jwks(keys.jwks().to_string());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");

        let http = countersign_oidc::http_client(Duration::from_secs(5)).expect("HTTP client");
        let jwks_uri = Url::parse(&format!("http://127.0.0.1:{port}/certs")).expect("JWKS URL");
        // A day between refetches: after the first unknown `kid`, lookups
        // stay in memory.
        let jwks = Arc::new(JwksCache::new(
            http.clone(),
            jwks_uri.clone(),
            Duration::from_secs(86_400),
        ));
        let loaded = runtime.block_on(jwks.refresh()).expect("JWKS loads");
        assert_eq!(loaded, 3);

        let issuer = Url::parse(ISSUER).expect("issuer");
        let endpoint = |path: &str| issuer.join(path).expect("endpoint");
        let metadata = ProviderMetadata {
            issuer: issuer.clone(),
            authorization_endpoint: endpoint("fuzz/auth"),
            token_endpoint: endpoint("fuzz/token"),
            jwks_uri,
            end_session_endpoint: None,
            token_endpoint_auth_methods_supported: vec!["client_secret_basic".into()],
            code_challenge_methods_supported: vec!["S256".into()],
            id_token_signing_alg_values_supported: vec!["RS256".into()],
        };
        let client = ClientConfig {
            client_id: CLIENT_ID.into(),
            client_secret: ClientSecret::new("fuzz-client-secret".into()),
            redirect_uri: Url::parse("http://127.0.0.1:9/popup/callback").expect("redirect URI"),
            scopes: vec!["openid".into()],
            role_claims: vec![
                "realm_access.roles".into(),
                "resource_access.${client_id}.roles".into(),
                "roles".into(),
                "groups".into(),
            ],
            leeway_seconds: LEEWAY,
        };
        let relying_party =
            RelyingParty::new(http, metadata, client, jwks, Arc::new(FixedClock::new(NOW)));

        Harness {
            keys,
            runtime,
            relying_party,
        }
    }

    /// Builds a token from a spec. `at_hash_of` is the access token whose
    /// `at_hash` replaces `$AT_HASH`.
    pub fn build(&self, spec: &str, at_hash_of: Option<&str>) -> BuiltToken {
        let Some(rest) = spec.strip_prefix("sign ") else {
            return BuiltToken {
                compact: spec.to_owned(),
                forged: false,
            };
        };
        let (command, rest) = rest.split_once('\n').unwrap_or((rest, ""));
        let (header_text, claims_text) = rest.split_once('\n').unwrap_or((rest, ""));
        let mut words = command.split(' ');
        let signer = match words.next() {
            Some("rsa") => Signer::Rsa,
            Some("es") => Signer::Es,
            Some("rogue-ed") => Signer::RogueEd,
            _ => Signer::Ed,
        };
        let tamper = match words.next() {
            Some("sig") => Some(Tamper::Signature),
            Some("payload") => Some(Tamper::Payload),
            Some("header") => Some(Tamper::Header),
            Some("strip") => Some(Tamper::Strip),
            _ => None,
        };

        let header_text = fill_placeholders(header_text, None, "");
        let alg = serde_json::from_str::<Value>(&header_text)
            .ok()
            .and_then(|header| header.get("alg")?.as_str().map(str::to_owned))
            .unwrap_or_default();
        let claims_text = fill_placeholders(claims_text, at_hash_of, &alg);

        let signing_input = format!("{}.{}", b64(&header_text), b64(&claims_text));
        let signature = b64(self.keys.sign(signer, &alg, signing_input.as_bytes()));
        let compact = match tamper {
            None => format!("{signing_input}.{signature}"),
            Some(Tamper::Signature) => {
                let mut chars: Vec<char> = signature.chars().collect();
                if let Some(first) = chars.first_mut() {
                    *first = if *first == 'A' { 'B' } else { 'A' };
                }
                let changed: String = chars.into_iter().collect();
                format!("{signing_input}.{changed}")
            }
            Some(Tamper::Payload) => format!(
                "{}.{}.{signature}",
                b64(&header_text),
                b64(format!("{claims_text} "))
            ),
            Some(Tamper::Header) => format!(
                "{}.{}.{signature}",
                b64(format!("{header_text} ")),
                b64(&claims_text)
            ),
            Some(Tamper::Strip) => format!("{signing_input}."),
        };
        BuiltToken {
            compact,
            forged: signer == Signer::RogueEd || tamper.is_some(),
        }
    }

    pub fn verify(&self, id_token: &str, access_token: &str) -> Result<VerifiedLogin, VerifyError> {
        let tokens = TokenSet {
            id_token: RawToken::from_stored(id_token.to_owned()),
            access_token: RawToken::from_stored(access_token.to_owned()),
        };
        let expected = Expectations {
            nonce: Nonce::from_stored(NONCE.to_owned()),
            authenticated_after: NOW - 120,
        };
        self.runtime
            .block_on(self.relying_party.verify(&tokens, &expected))
    }

    pub fn signature_is_valid(&self, token: &str) -> bool {
        self.keys.signature_is_valid(token)
    }
}

/// Returns the `at_hash` of `access_token` for an ID token signed with `alg`
/// (OpenID Connect Core 1.0, section 3.1.3.6).
pub fn at_hash(access_token: &str, alg: &str) -> String {
    let digest = match alg {
        "RS384" | "PS384" | "ES384" => Sha384::digest(access_token).to_vec(),
        "RS512" | "PS512" | "EdDSA" => Sha512::digest(access_token).to_vec(),
        _ => Sha256::digest(access_token).to_vec(),
    };
    b64(&digest[..digest.len() / 2])
}

fn fill_placeholders(text: &str, at_hash_of: Option<&str>, alg: &str) -> String {
    let mut filled = text
        .replace("$ISS", ISSUER)
        .replace("$NONCE", NONCE)
        .replace("$LATER", &(NOW + 300).to_string())
        .replace("$EARLIER", &(NOW - 60).to_string())
        .replace("$NOW", &NOW.to_string());
    if let Some(access_token) = at_hash_of {
        filled = filled.replace("$AT_HASH", &at_hash(access_token, alg));
    }
    filled
}

/// Decodes the claims of a compact token, without checking anything.
pub fn decode_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}
