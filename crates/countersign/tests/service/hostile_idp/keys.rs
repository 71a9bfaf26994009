//! Signing keys generated in the test, and JWS tokens built by hand so that
//! a test can put anything into the header: a lying `alg`, no `kid`, `none`.

use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self as lc_signature, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// Encodes bytes as unpadded base64url, as JOSE does.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

enum Material {
    Rsa(Arc<RsaKeyPair>),
    EcP256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private signing key of the provider, with its key id.
pub struct SigningKey {
    pub kid: String,
    material: Material,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} {})", self.alg(), self.kid)
    }
}

/// Returns the one 2048-bit RSA key pair of the test binary, generated once
/// because RSA key generation is slow in an unoptimized build. Every RSA
/// `SigningKey` shares it under its own `kid`.
fn shared_rsa_key() -> Arc<RsaKeyPair> {
    static KEY: OnceLock<Arc<RsaKeyPair>> = OnceLock::new();
    KEY.get_or_init(|| {
        Arc::new(RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("RSA key"))
    })
    .clone()
}

impl SigningKey {
    pub fn rsa(kid: &str) -> Arc<Self> {
        Arc::new(Self {
            kid: kid.to_owned(),
            material: Material::Rsa(shared_rsa_key()),
        })
    }

    pub fn es256(kid: &str) -> Arc<Self> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key");
        Arc::new(Self {
            kid: kid.to_owned(),
            material: Material::EcP256(key),
        })
    }

    pub fn ed25519(kid: &str) -> Arc<Self> {
        let key = Ed25519KeyPair::generate().expect("Ed25519 key");
        Arc::new(Self {
            kid: kid.to_owned(),
            material: Material::Ed25519(key),
        })
    }

    /// Returns the JWS algorithm of this key.
    pub fn alg(&self) -> &'static str {
        match self.material {
            Material::Rsa(_) => "RS256",
            Material::EcP256(_) => "ES256",
            Material::Ed25519(_) => "EdDSA",
        }
    }

    /// Returns the public key as a JWK with `kid`, `use` and `alg`.
    pub fn jwk(&self) -> Value {
        match &self.material {
            Material::Rsa(key) => {
                let components = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                       "n": b64(&components.n), "e": b64(&components.e)})
            }
            Material::EcP256(key) => {
                let point = key.public_key().as_ref();
                json!({"kty": "EC", "kid": self.kid, "use": "sig", "alg": "ES256",
                       "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Material::Ed25519(key) => {
                json!({"kty": "OKP", "kid": self.kid, "use": "sig", "alg": "EdDSA",
                       "crv": "Ed25519", "x": b64(key.public_key().as_ref())})
            }
        }
    }

    /// Returns the public key bytes, which an algorithm-confusion attack
    /// uses as the HMAC secret.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match &self.material {
            Material::Rsa(key) => key.public_key().as_ref().to_vec(),
            Material::EcP256(key) => key.public_key().as_ref().to_vec(),
            Material::Ed25519(key) => key.public_key().as_ref().to_vec(),
        }
    }

    /// Returns the header a well-behaved provider sends: `alg`, `kid` and `typ`.
    pub fn header(&self) -> Value {
        json!({"alg": self.alg(), "kid": self.kid, "typ": "JWT"})
    }

    /// Signs `claims` under the key's own header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&self.header(), claims)
    }

    /// Signs `claims` with this key's algorithm under any `header`.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let signing_input = signing_input(header, claims);
        let signature = self.raw_signature(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(signature))
    }

    /// Signs any signing input, even one whose parts are not base64url,
    /// and returns the base64url signature.
    pub fn signature_of(&self, signing_input: &str) -> String {
        b64(self.raw_signature(signing_input.as_bytes()))
    }

    fn raw_signature(&self, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.material {
            Material::Rsa(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(
                    &lc_signature::RSA_PKCS1_SHA256,
                    &rng,
                    message,
                    &mut signature,
                )
                .expect("RSA signature");
                signature
            }
            Material::EcP256(key) => key
                .sign(&rng, message)
                .expect("P-256 signature")
                .as_ref()
                .to_vec(),
            Material::Ed25519(key) => key.sign(message).as_ref().to_vec(),
        }
    }
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64(header.to_string()), b64(claims.to_string()))
}

/// Builds an unsecured JWS (`alg: none`, RFC 7515, appendix A.5): header,
/// payload and an empty signature.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "kid": kid, "typ": "JWT"});
    format!("{}.", signing_input(&header, claims))
}

/// Signs `claims` with HS256 and `secret`, as in the algorithm-confusion
/// attack that uses the provider's public key as the HMAC secret.
pub fn sign_hs256(secret: &[u8], kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
    let signing_input = signing_input(&header, claims);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(tag.as_ref()))
}

/// Flips one bit in the middle of a token's signature.
pub fn corrupt_signature(token: &str) -> String {
    let (signing_input, signature) = token.rsplit_once('.').expect("three-part token");
    let mut bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .expect("base64url signature");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    format!("{signing_input}.{}", b64(bytes))
}
