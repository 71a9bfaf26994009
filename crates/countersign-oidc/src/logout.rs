//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0, section 2).
//!
//! Ending the provider session after each approval attempt keeps a
//! lingering session from approving the next request. `id_token_hint` lets
//! the provider skip its "do you want to log out?" page (Keycloak 18 and
//! later show it without the hint).

use url::Url;

use crate::client::RelyingParty;
use crate::jws::MAX_TOKEN_BYTES;
use crate::secret::RawToken;

impl RelyingParty {
    /// Builds the URL that ends the user's session at the provider and then
    /// returns the browser to `post_logout_redirect_uri` with `state`.
    ///
    /// Returns `None` when the provider announces no `end_session_endpoint`.
    /// The redirect URI must be registered at the provider.
    ///
    /// An ID token longer than [`MAX_TOKEN_BYTES`] is left out of the URL,
    /// because verification rejects it anyway and a URL of that size risks
    /// exceeding the provider's request-line limit. `client_id` still names
    /// the client, and the provider may then ask the user to confirm.
    pub fn end_session_url(
        &self,
        id_token: &RawToken,
        post_logout_redirect_uri: &Url,
        state: &str,
    ) -> Option<Url> {
        let mut url = self.metadata.end_session_endpoint.clone()?;
        let hint = id_token.secret();
        if hint.len() <= MAX_TOKEN_BYTES {
            url.query_pairs_mut().append_pair("id_token_hint", hint);
        }
        url.query_pairs_mut()
            .append_pair("client_id", &self.client.client_id)
            .append_pair(
                "post_logout_redirect_uri",
                post_logout_redirect_uri.as_str(),
            )
            .append_pair("state", state);
        Some(url)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::test_support::relying_party_for_tests;

    #[tokio::test]
    async fn end_session_url_carries_hint_and_redirect() {
        let rp = relying_party_for_tests("http://127.0.0.1:9/realms/demo");
        let redirect = Url::parse("http://127.0.0.1:18300/popup/signed-out").expect("url");

        let url = rp
            .end_session_url(
                &RawToken::from_stored("id.token.value".into()),
                &redirect,
                "state-1",
            )
            .expect("end session URL");
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();

        assert!(
            url.as_str()
                .starts_with("http://127.0.0.1:9/realms/demo/logout?")
        );
        assert_eq!(query["id_token_hint"], "id.token.value");
        assert_eq!(query["client_id"], "countersign");
        assert_eq!(
            query["post_logout_redirect_uri"],
            "http://127.0.0.1:18300/popup/signed-out"
        );
        assert_eq!(query["state"], "state-1");
    }

    #[tokio::test]
    async fn oversized_id_token_is_no_hint() {
        let rp = relying_party_for_tests("http://127.0.0.1:9/realms/demo");
        let redirect = Url::parse("http://127.0.0.1:18300/popup/signed-out").expect("url");
        let huge = RawToken::from_stored("x".repeat(MAX_TOKEN_BYTES + 1));

        let url = rp
            .end_session_url(&huge, &redirect, "state-1")
            .expect("end session URL");
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();

        assert!(!query.contains_key("id_token_hint"), "{url}");
        assert_eq!(query["client_id"], "countersign");
        assert_eq!(
            query["post_logout_redirect_uri"],
            "http://127.0.0.1:18300/popup/signed-out"
        );
    }

    #[tokio::test]
    async fn no_end_session_endpoint_gives_none() {
        let mut rp = relying_party_for_tests("http://127.0.0.1:9/realms/demo");
        rp.metadata.end_session_endpoint = None;
        let redirect = Url::parse("http://127.0.0.1:18300/popup/signed-out").expect("url");

        let url = rp.end_session_url(&RawToken::from_stored("t".into()), &redirect, "s");

        assert_eq!(url, None);
    }
}
