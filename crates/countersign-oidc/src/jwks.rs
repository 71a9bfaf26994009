//! A JSON Web Key Set cache that follows the provider's key rotation.
//!
//! Providers rotate signing keys (Keycloak adds a new key, then retires the
//! old one), so a token may name a `kid` that the cache has not seen. The
//! cache then refetches the JWKS once, and at most once per
//! `min_refetch_interval`, so tokens with made-up key ids cannot turn the
//! relying party into a load generator against the provider. A failed
//! fetch keeps the keys already cached.
//!
//! Only public signature keys are kept: RSA, EC on P-256 or P-384, and
//! Ed25519. Symmetric (`oct`) keys and keys marked for encryption are
//! dropped, so no JWKS entry can ever verify an HMAC token.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use crate::http::{FetchFailure, describe_transport_error, fetch_json};

/// Maximum size of a JWKS document. It is an estimate that leaves room for
/// dozens of RSA keys with certificate chains of a few KiB each.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The family and curve of a public key. Together with the JWS `alg`, it
/// decides whether the key may verify a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    /// Tells whether a key of this kind can verify a signature made with `alg`.
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        match self {
            Self::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            Self::EcP256 => alg == Algorithm::ES256,
            Self::EcP384 => alg == Algorithm::ES384,
            Self::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

/// A public key from the provider's JWKS, ready to verify signatures.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) kid: Option<String>,
    /// The `alg` member of the JWK, when the provider pins the key to one algorithm.
    pub(crate) alg: Option<String>,
    pub(crate) kind: KeyKind,
    pub(crate) decoding_key: DecodingKey,
}

/// Errors from fetching the JWKS.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The JWKS could not be fetched at all. Check that the provider is up
    /// and reachable from this host.
    #[error("could not reach the JWKS at {url}: {}", describe_transport_error(.source))]
    Unreachable {
        /// The JWKS URL.
        url: Url,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },

    /// The provider returned a status other than 2xx (a redirect is
    /// never followed). Check `jwks_uri` in the discovery document.
    #[error("the JWKS at {url} returned HTTP {status}")]
    Status {
        /// The JWKS URL.
        url: Url,
        /// The HTTP status.
        status: StatusCode,
    },

    /// The JWKS was larger than the limit of this crate.
    #[error("the JWKS at {url} is larger than {limit} bytes")]
    TooLarge {
        /// The JWKS URL.
        url: Url,
        /// The limit in bytes.
        limit: usize,
    },

    /// The body was not a JWKS (a JSON object with a `keys` array).
    #[error("the JWKS at {url} is not a valid JSON Web Key Set: {source}")]
    Invalid {
        /// The JWKS URL.
        url: Url,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },

    /// The JWKS contains no key this crate can verify with. The provider
    /// must publish a signature key of type RSA, EC (P-256 or P-384) or
    /// OKP (Ed25519).
    #[error("the JWKS at {url} contains no usable signature key ({total} keys in total)")]
    NoUsableKeys {
        /// The JWKS URL.
        url: Url,
        /// How many keys the document contained.
        total: usize,
    },

    /// No keys are cached yet and the last attempt to fetch them failed less
    /// than the minimum refetch interval ago. See the earlier error.
    #[error(
        "the JWKS at {url} has not been loaded yet and the last attempt failed less than {interval:?} ago"
    )]
    NotLoaded {
        /// The JWKS URL.
        url: Url,
        /// The minimum refetch interval.
        interval: Duration,
    },
}

/// The reason no key was found for a token.
#[derive(Debug)]
pub(crate) enum KeyLookupError {
    /// No key has this `kid`, even after the refetch allowed by the rate limit.
    UnknownKey { kid: Option<String> },
    /// The token has no `kid` and the JWKS has several keys.
    MissingKeyId { keys: usize },
    /// The JWKS could not be fetched.
    Unavailable(JwksError),
}

#[derive(Default)]
struct CacheState {
    keys: Arc<Vec<VerificationKey>>,
    loaded: bool,
    last_failed_load: Option<Instant>,
    last_refetch: Option<Instant>,
}

/// The provider's signing keys, fetched on first use and refetched when a
/// token names an unknown key.
pub struct JwksCache {
    http: reqwest::Client,
    jwks_uri: Url,
    min_refetch_interval: Duration,
    state: Mutex<CacheState>,
    /// Serializes fetches, so that concurrent logins with a new `kid` cause one fetch.
    fetch_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("jwks_uri", &self.jwks_uri.as_str())
            .field("min_refetch_interval", &self.min_refetch_interval)
            .field("cached_keys", &self.snapshot().0.len())
            .finish()
    }
}

enum Selection {
    Found(VerificationKey),
    NotFound,
    Ambiguous(usize),
}

impl JwksCache {
    /// Creates an empty cache. The first lookup or [`Self::refresh`] fetches the keys.
    ///
    /// `min_refetch_interval` is the minimum time between two refetches
    /// caused by an unknown `kid`, and between two attempts to load an
    /// empty cache after a failure.
    pub fn new(http: reqwest::Client, jwks_uri: Url, min_refetch_interval: Duration) -> Self {
        Self {
            http,
            jwks_uri,
            min_refetch_interval,
            state: Mutex::new(CacheState::default()),
            fetch_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Returns the JWKS URL.
    pub fn jwks_uri(&self) -> &Url {
        &self.jwks_uri
    }

    /// Fetches the JWKS now, regardless of the rate limit, and returns the
    /// number of usable keys. On failure the cached keys stay.
    ///
    /// A refresh does not count against the rate limit of unknown-`kid`
    /// refetches, so calling it at startup does not delay a key rotation.
    pub async fn refresh(&self) -> Result<usize, JwksError> {
        let _fetching = self.fetch_lock.lock().await;
        let keys = self.fetch().await?;
        let count = keys.len();
        self.store(keys);
        Ok(count)
    }

    /// Finds the key for a token header's `kid`, refetching once if needed.
    pub(crate) async fn find_key(
        &self,
        kid: Option<&str>,
    ) -> Result<VerificationKey, KeyLookupError> {
        let (keys, loaded) = self.snapshot();
        if loaded {
            match select(&keys, kid) {
                Selection::Found(key) => return Ok(key),
                Selection::Ambiguous(count) => {
                    return Err(KeyLookupError::MissingKeyId { keys: count });
                }
                Selection::NotFound => {}
            }
        }

        let _fetching = self.fetch_lock.lock().await;

        // Another task may have fetched while this one waited for the lock.
        let (keys, loaded) = self.snapshot();
        if loaded && let Selection::Found(key) = select(&keys, kid) {
            return Ok(key);
        }

        if !self.may_fetch(loaded) {
            return Err(if loaded {
                KeyLookupError::UnknownKey {
                    kid: kid.map(str::to_owned),
                }
            } else {
                KeyLookupError::Unavailable(JwksError::NotLoaded {
                    url: self.jwks_uri.clone(),
                    interval: self.min_refetch_interval,
                })
            });
        }

        self.record_lookup_fetch(loaded);
        let keys = match self.fetch().await {
            Ok(keys) => keys,
            Err(error) => {
                if !loaded {
                    self.lock_state().last_failed_load = Some(Instant::now());
                }
                return Err(KeyLookupError::Unavailable(error));
            }
        };
        self.store(keys);

        let (keys, _) = self.snapshot();
        match select(&keys, kid) {
            Selection::Found(key) => Ok(key),
            Selection::Ambiguous(count) => Err(KeyLookupError::MissingKeyId { keys: count }),
            Selection::NotFound => Err(KeyLookupError::UnknownKey {
                kid: kid.map(str::to_owned),
            }),
        }
    }

    /// Applies the rate limit. A loaded cache refetches at most once per
    /// interval, and an empty cache retries a failed load at most once per interval.
    fn may_fetch(&self, loaded: bool) -> bool {
        let state = self.lock_state();
        let last = if loaded {
            state.last_refetch
        } else {
            state.last_failed_load
        };
        last.is_none_or(|at| at.elapsed() >= self.min_refetch_interval)
    }

    fn record_lookup_fetch(&self, loaded: bool) {
        if loaded {
            self.lock_state().last_refetch = Some(Instant::now());
        }
    }

    fn snapshot(&self) -> (Arc<Vec<VerificationKey>>, bool) {
        let state = self.lock_state();
        (state.keys.clone(), state.loaded)
    }

    fn store(&self, keys: Vec<VerificationKey>) {
        let mut state = self.lock_state();
        state.keys = Arc::new(keys);
        state.loaded = true;
        state.last_failed_load = None;
    }

    /// Locks the state. A poisoned lock still holds consistent data, because
    /// every critical section only assigns whole fields.
    fn lock_state(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch(&self) -> Result<Vec<VerificationKey>, JwksError> {
        let url = &self.jwks_uri;
        let document: JwkSetDocument =
            fetch_json(&self.http, url, MAX_JWKS_BYTES)
                .await
                .map_err(|failure| match failure {
                    FetchFailure::Unreachable(source) => JwksError::Unreachable {
                        url: url.clone(),
                        source,
                    },
                    FetchFailure::Status(status) => JwksError::Status {
                        url: url.clone(),
                        status,
                    },
                    FetchFailure::TooLarge => JwksError::TooLarge {
                        url: url.clone(),
                        limit: MAX_JWKS_BYTES,
                    },
                    FetchFailure::NotJson(source) => JwksError::Invalid {
                        url: url.clone(),
                        source,
                    },
                })?;

        let total = document.keys.len();
        let keys: Vec<VerificationKey> = document.keys.iter().filter_map(parse_jwk).collect();
        if keys.is_empty() {
            return Err(JwksError::NoUsableKeys {
                url: url.clone(),
                total,
            });
        }
        Ok(keys)
    }
}

/// Picks the key for `kid`. Without a `kid`, only a single-key set is unambiguous.
fn select(keys: &[VerificationKey], kid: Option<&str>) -> Selection {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|key| key.kid.as_deref() == Some(kid))
            .map_or(Selection::NotFound, |key| Selection::Found(key.clone())),
        None => match keys {
            [] => Selection::NotFound,
            [only] => Selection::Found(only.clone()),
            several => Selection::Ambiguous(several.len()),
        },
    }
}

#[derive(Deserialize)]
struct JwkSetDocument {
    keys: Vec<serde_json::Value>,
}

/// The JWK members this crate reads (RFC 7517, section 4; RFC 7518, section 6).
#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    alg: Option<String>,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// Turns one JWK into a verification key, or `None` for a key this crate
/// must not or cannot use for signatures.
fn parse_jwk(value: &serde_json::Value) -> Option<VerificationKey> {
    let jwk: RawJwk = serde_json::from_value(value.clone()).ok()?;

    let for_signatures = jwk
        .public_key_use
        .as_deref()
        .is_none_or(|usage| usage == "sig")
        && jwk
            .key_ops
            .as_ref()
            .is_none_or(|operations| operations.iter().any(|operation| operation == "verify"));
    if !for_signatures {
        return None;
    }

    let (kind, decoding_key) = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
        ("RSA", _) => {
            let n = jwk.n.as_deref()?;
            let e = jwk.e.as_deref()?;
            (KeyKind::Rsa, DecodingKey::from_rsa_components(n, e).ok()?)
        }
        ("EC", Some(curve @ ("P-256" | "P-384"))) => {
            let (kind, coordinate_length) = if curve == "P-256" {
                (KeyKind::EcP256, 32)
            } else {
                (KeyKind::EcP384, 48)
            };
            let x = jwk.x.as_deref()?;
            let y = jwk.y.as_deref()?;
            if decoded_length(x)? != coordinate_length || decoded_length(y)? != coordinate_length {
                return None;
            }
            (kind, DecodingKey::from_ec_components(x, y).ok()?)
        }
        ("OKP", Some("Ed25519")) => {
            let x = jwk.x.as_deref()?;
            if decoded_length(x)? != 32 {
                return None;
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_components(x).ok()?)
        }
        _ => return None,
    };

    Some(VerificationKey {
        kid: jwk.kid,
        alg: jwk.alg,
        kind,
        decoding_key,
    })
}

fn decoded_length(value: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(value).ok().map(|bytes| bytes.len())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::http_client;
    use crate::test_support::{TestKey, TestServer, jwks_of};

    const JWKS_PATH: &str = "/certs";

    fn cache_for(server: &TestServer, interval: Duration) -> JwksCache {
        let http = http_client(Duration::from_secs(5)).expect("client");
        JwksCache::new(http, server.url(JWKS_PATH), interval)
    }

    #[test]
    fn parse_jwk_keeps_signature_keys_only() {
        let ec = TestKey::es256("ec");
        let ed = TestKey::ed25519("ed");
        let rsa = TestKey::rsa("rsa");
        let mut encryption_key = rsa.jwk();
        encryption_key["use"] = json!("enc");
        let mut wrap_only = ec.jwk();
        wrap_only["key_ops"] = json!(["wrapKey"]);
        let symmetric = json!({"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"});
        let unknown_curve =
            json!({"kty": "EC", "kid": "k", "crv": "secp256k1", "x": "AA", "y": "AA"});
        let short_coordinate =
            json!({"kty": "EC", "kid": "k", "crv": "P-256", "x": "AAAA", "y": "AAAA"});

        assert_eq!(
            parse_jwk(&ec.jwk()).map(|key| key.kind),
            Some(KeyKind::EcP256)
        );
        assert_eq!(
            parse_jwk(&ed.jwk()).map(|key| key.kind),
            Some(KeyKind::Ed25519)
        );
        assert_eq!(
            parse_jwk(&rsa.jwk()).map(|key| key.kind),
            Some(KeyKind::Rsa)
        );
        assert!(parse_jwk(&encryption_key).is_none());
        assert!(parse_jwk(&wrap_only).is_none());
        assert!(parse_jwk(&symmetric).is_none());
        assert!(parse_jwk(&unknown_curve).is_none());
        assert!(parse_jwk(&short_coordinate).is_none());
    }

    #[test]
    fn key_kind_fits_only_its_algorithms() {
        assert!(KeyKind::Rsa.fits(Algorithm::RS256));
        assert!(KeyKind::Rsa.fits(Algorithm::PS256));
        assert!(!KeyKind::Rsa.fits(Algorithm::ES256));
        assert!(!KeyKind::Rsa.fits(Algorithm::HS256));
        assert!(KeyKind::EcP256.fits(Algorithm::ES256));
        assert!(!KeyKind::EcP256.fits(Algorithm::ES384));
        assert!(KeyKind::EcP384.fits(Algorithm::ES384));
        assert!(KeyKind::Ed25519.fits(Algorithm::EdDSA));
        assert!(!KeyKind::Ed25519.fits(Algorithm::RS256));
    }

    #[tokio::test]
    async fn refresh_counts_usable_keys() {
        let server = TestServer::start().await;
        let first = TestKey::es256("first");
        let second = TestKey::ed25519("second");
        let mut body = jwks_of(&[&first, &second]);
        body["keys"]
            .as_array_mut()
            .expect("keys")
            .push(json!({"kty": "oct", "k": "c2VjcmV0"}));
        server.set_json(JWKS_PATH, body);
        let cache = cache_for(&server, Duration::from_secs(60));

        let count = cache.refresh().await.expect("refresh");

        assert_eq!(count, 2);
    }

    #[tokio::test]
    async fn refresh_rejects_set_without_usable_keys() {
        let server = TestServer::start().await;
        server.set_json(
            JWKS_PATH,
            json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
        );
        let cache = cache_for(&server, Duration::from_secs(60));

        let result = cache.refresh().await;

        assert!(
            matches!(result, Err(JwksError::NoUsableKeys { total: 1, .. })),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn first_lookup_loads_keys() {
        let server = TestServer::start().await;
        let key = TestKey::es256("k1");
        server.set_json(JWKS_PATH, jwks_of(&[&key]));
        let cache = cache_for(&server, Duration::from_secs(60));

        let found = cache.find_key(Some("k1")).await.expect("key");

        assert_eq!(found.kid.as_deref(), Some("k1"));
        assert_eq!(server.hits(JWKS_PATH), 1);
    }

    #[tokio::test]
    async fn unknown_kid_refetches_once_per_interval() {
        let server = TestServer::start().await;
        let old = TestKey::es256("old");
        let new = TestKey::es256("new");
        let newer = TestKey::es256("newer");
        server.set_json(JWKS_PATH, jwks_of(&[&old]));
        let cache = cache_for(&server, Duration::from_secs(60));
        cache.refresh().await.expect("refresh");

        server.set_json(JWKS_PATH, jwks_of(&[&old, &new]));
        let rotated = cache.find_key(Some("new")).await;

        assert!(
            rotated.is_ok(),
            "{rotated:?}",
            rotated = rotated.as_ref().err()
        );
        assert_eq!(server.hits(JWKS_PATH), 2);

        server.set_json(JWKS_PATH, jwks_of(&[&old, &new, &newer]));
        let limited = cache.find_key(Some("newer")).await;

        assert!(
            matches!(limited, Err(KeyLookupError::UnknownKey { .. })),
            "{:?}",
            limited.err()
        );
        assert_eq!(server.hits(JWKS_PATH), 2);
    }

    #[tokio::test]
    async fn unknown_kid_refetches_after_interval() {
        let server = TestServer::start().await;
        let old = TestKey::es256("old");
        let new = TestKey::es256("new");
        server.set_json(JWKS_PATH, jwks_of(&[&old]));
        let cache = cache_for(&server, Duration::from_millis(100));
        cache.refresh().await.expect("refresh");
        let missing = cache.find_key(Some("new")).await;
        assert!(
            matches!(missing, Err(KeyLookupError::UnknownKey { .. })),
            "{:?}",
            missing.err()
        );

        server.set_json(JWKS_PATH, jwks_of(&[&old, &new]));
        tokio::time::sleep(Duration::from_millis(150)).await;
        let found = cache.find_key(Some("new")).await;

        assert!(found.is_ok(), "{:?}", found.err());
        assert_eq!(server.hits(JWKS_PATH), 3);
    }

    #[tokio::test]
    async fn failed_refetch_keeps_cached_keys() {
        let server = TestServer::start().await;
        let key = TestKey::es256("cached");
        server.set_json(JWKS_PATH, jwks_of(&[&key]));
        let cache = cache_for(&server, Duration::from_secs(60));
        cache.refresh().await.expect("refresh");
        server.set_json_status(JWKS_PATH, 500, json!({"error": "unavailable"}));

        let unknown = cache.find_key(Some("other")).await;
        let refreshed = cache.refresh().await;
        let cached = cache.find_key(Some("cached")).await;

        assert!(
            matches!(
                unknown,
                Err(KeyLookupError::Unavailable(JwksError::Status { .. }))
            ),
            "{:?}",
            unknown.err()
        );
        assert!(
            matches!(refreshed, Err(JwksError::Status { .. })),
            "{refreshed:?}"
        );
        assert!(cached.is_ok(), "{:?}", cached.err());
    }

    #[tokio::test]
    async fn failed_first_load_is_rate_limited() {
        let server = TestServer::start().await;
        server.set_json_status(JWKS_PATH, 503, json!({}));
        let cache = cache_for(&server, Duration::from_secs(60));

        let first = cache.find_key(Some("k")).await;
        let second = cache.find_key(Some("k")).await;

        assert!(
            matches!(
                first,
                Err(KeyLookupError::Unavailable(JwksError::Status { .. }))
            ),
            "{:?}",
            first.err()
        );
        assert!(
            matches!(
                second,
                Err(KeyLookupError::Unavailable(JwksError::NotLoaded { .. }))
            ),
            "{:?}",
            second.err()
        );
        assert_eq!(server.hits(JWKS_PATH), 1);
    }

    #[tokio::test]
    async fn missing_kid_uses_single_key_only() {
        let server = TestServer::start().await;
        let only = TestKey::es256("only");
        let other = TestKey::es256("other");
        server.set_json(JWKS_PATH, jwks_of(&[&only]));
        let cache = cache_for(&server, Duration::from_secs(60));

        let single = cache.find_key(None).await;
        server.set_json(JWKS_PATH, jwks_of(&[&only, &other]));
        cache.refresh().await.expect("refresh");
        let several = cache.find_key(None).await;

        assert_eq!(single.ok().and_then(|key| key.kid).as_deref(), Some("only"));
        assert!(
            matches!(several, Err(KeyLookupError::MissingKeyId { keys: 2 })),
            "{:?}",
            several.err()
        );
    }

    #[tokio::test]
    async fn redirect_from_jwks_uri_is_not_followed() {
        let server = TestServer::start().await;
        let key = TestKey::es256("k");
        server.redirect(JWKS_PATH, "/elsewhere");
        server.set_json("/elsewhere", jwks_of(&[&key]));
        let cache = cache_for(&server, Duration::from_secs(60));

        let refreshed = cache.refresh().await;
        let looked_up = cache.find_key(Some("k")).await;

        assert!(
            matches!(
                refreshed,
                Err(JwksError::Status {
                    status: StatusCode::FOUND,
                    ..
                })
            ),
            "{refreshed:?}"
        );
        assert!(
            matches!(looked_up, Err(KeyLookupError::Unavailable(_))),
            "{:?}",
            looked_up.err()
        );
        assert_eq!(server.hits("/elsewhere"), 0);
    }
}
