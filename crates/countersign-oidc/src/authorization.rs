//! The authorization request: code flow with PKCE, `state` and `nonce`
//! (OpenID Connect Core 1.0, section 3.1.2.1; RFC 7636).
//!
//! Every request forces a fresh sign-in with `prompt=login` and
//! `max_age=0`. A provider may ignore both, so verification checks
//! `auth_time` itself.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;

use crate::client::RelyingParty;
use crate::secret::{Nonce, PkceVerifier, State};

/// Bytes of randomness in `state`, `nonce` and the PKCE verifier: 256 bits,
/// which encode to 43 base64url characters, the minimum verifier length of
/// RFC 7636, section 4.1.
const RANDOM_BYTES: usize = 32;

/// A prepared authorization request: the URL to send the browser to and
/// the values to keep on the server until the callback.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The provider's authorization endpoint with all parameters.
    pub url: Url,
    /// The `state` to compare with the callback's `state`.
    pub state: State,
    /// The `nonce` the ID token must carry.
    pub nonce: Nonce,
    /// The PKCE verifier for the token request.
    pub pkce_verifier: PkceVerifier,
}

impl RelyingParty {
    /// Builds an authorization request with fresh random `state`, `nonce`
    /// and PKCE verifier.
    ///
    /// `ui_locales` is passed on as the `ui_locales` parameter (space
    /// separated BCP 47 tags) when given.
    pub fn authorization_request(&self, ui_locales: Option<&str>) -> AuthorizationRequest {
        let state = State::from_stored(random_token());
        let nonce = Nonce::from_stored(random_token());
        let pkce_verifier = PkceVerifier::from_stored(random_token());
        let challenge = pkce_challenge(&pkce_verifier);

        let mut url = self.metadata.authorization_endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client.client_id)
                .append_pair("redirect_uri", self.client.redirect_uri.as_str())
                .append_pair("scope", &scope_parameter(&self.client.scopes))
                .append_pair("state", state.secret())
                .append_pair("nonce", nonce.secret())
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("prompt", "login")
                .append_pair("max_age", "0");
            if let Some(locales) = ui_locales.filter(|locales| !locales.is_empty()) {
                query.append_pair("ui_locales", locales);
            }
        }

        AuthorizationRequest {
            url,
            state,
            nonce,
            pkce_verifier,
        }
    }
}

/// Generates 256 random bits as unpadded base64url.
pub(crate) fn random_token() -> String {
    let bytes: [u8; RANDOM_BYTES] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Computes the S256 code challenge: BASE64URL(SHA-256(verifier)) (RFC 7636, section 4.2).
pub fn pkce_challenge(verifier: &PkceVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.secret().as_bytes()))
}

/// Joins the scopes with spaces and puts `openid` first when it is missing.
fn scope_parameter(scopes: &[String]) -> String {
    let mut all: Vec<&str> = Vec::with_capacity(scopes.len() + 1);
    if !scopes.iter().any(|scope| scope == "openid") {
        all.push("openid");
    }
    all.extend(
        scopes
            .iter()
            .map(String::as_str)
            .filter(|scope| !scope.is_empty()),
    );
    all.join(" ")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::test_support::relying_party_for_tests;

    fn query_of(url: &Url) -> HashMap<String, String> {
        url.query_pairs()
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect()
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_example() {
        // RFC 7636, appendix B.
        let verifier =
            PkceVerifier::from_stored("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());

        assert_eq!(
            pkce_challenge(&verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let first = random_token();
        let second = random_token();

        assert_eq!(first.len(), 43);
        assert!(
            first
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        );
        assert_ne!(first, second);
    }

    #[test]
    fn scope_parameter_adds_openid_once() {
        let without = vec!["profile".to_owned(), "email".to_owned()];
        let with = vec!["email".to_owned(), "openid".to_owned()];

        assert_eq!(scope_parameter(&without), "openid profile email");
        assert_eq!(scope_parameter(&with), "email openid");
        assert_eq!(scope_parameter(&[]), "openid");
    }

    #[tokio::test]
    async fn request_carries_code_flow_parameters() {
        let rp = relying_party_for_tests("http://127.0.0.1:9/realms/demo");

        let request = rp.authorization_request(Some("de en"));
        let query = query_of(&request.url);

        assert!(
            request
                .url
                .as_str()
                .starts_with("http://127.0.0.1:9/realms/demo/auth?")
        );
        assert_eq!(query["response_type"], "code");
        assert_eq!(query["client_id"], "countersign");
        assert_eq!(
            query["redirect_uri"],
            "http://127.0.0.1:18300/popup/callback"
        );
        assert_eq!(query["scope"], "openid profile email");
        assert_eq!(query["state"], request.state.secret());
        assert_eq!(query["nonce"], request.nonce.secret());
        assert_eq!(
            query["code_challenge"],
            pkce_challenge(&request.pkce_verifier)
        );
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["prompt"], "login");
        assert_eq!(query["max_age"], "0");
        assert_eq!(query["ui_locales"], "de en");
        assert!(!query.contains_key("code_verifier"));
    }

    #[tokio::test]
    async fn each_request_gets_new_values() {
        let rp = relying_party_for_tests("http://127.0.0.1:9/realms/demo");

        let first = rp.authorization_request(None);
        let second = rp.authorization_request(None);

        assert!(!query_of(&first.url).contains_key("ui_locales"));
        assert_ne!(first.state.secret(), second.state.secret());
        assert_ne!(first.nonce.secret(), second.nonce.secret());
        assert_ne!(first.pkce_verifier.secret(), second.pkce_verifier.secret());
        assert_ne!(first.state.secret(), first.nonce.secret());
    }

    #[tokio::test]
    async fn existing_endpoint_query_is_kept() {
        let mut rp = relying_party_for_tests("http://127.0.0.1:9/realms/demo");
        rp.metadata.authorization_endpoint =
            Url::parse("http://127.0.0.1:9/authorize?tenant=demo").expect("url");

        let request = rp.authorization_request(None);

        assert_eq!(query_of(&request.url)["tenant"], "demo");
        assert_eq!(query_of(&request.url)["response_type"], "code");
    }
}
