//! A browser with a cookie jar and a fixture of one Countersign server and
//! one hostile IdP, for the tests that drive the popup flow step by step.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use countersign::approvals::{ApprovalId, Clock as _};
use countersign::signin::IdpLimits;
use countersign::storage::Storage as _;

use crate::hostile_idp::{HostileIdp, TestUser};
use crate::support::*;

/// One browser: it keeps the `countersign_login` cookie as a browser
/// would (set, replaced and cleared by `Set-Cookie`) and follows no redirects.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Mutex<Option<String>>,
}

/// A response as the tests read it.
pub struct Page {
    pub status: StatusCode,
    pub location: Option<Url>,
    /// The raw `Set-Cookie` header for the login cookie, if any.
    pub set_cookie: Option<String>,
    pub html: String,
}

impl Page {
    /// Returns the error code shown on an error page.
    pub fn error_code(&self) -> Option<&str> {
        let start = self.html.find("<code id=\"error-code\">")? + "<code id=\"error-code\">".len();
        self.html[start..].split('<').next()
    }

    /// Returns the CSRF token of the decision page.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.html.find(marker).expect("decision page") + marker.len();
        self.html[start..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    pub fn new(server: &TestServer) -> Self {
        Self {
            http: server.http.clone(),
            base: server.base.clone(),
            cookie: Mutex::new(None),
        }
    }

    pub fn cookie(&self) -> Option<String> {
        self.cookie.lock().unwrap().clone()
    }

    /// Replaces the cookie, as a tampering user or another tab would.
    pub fn set_cookie(&self, cookie: Option<String>) {
        *self.cookie.lock().unwrap() = cookie;
    }

    fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        }
    }

    pub async fn get(&self, path_or_url: &str) -> Page {
        let request = self.http.get(self.url(path_or_url));
        self.send(request).await
    }

    /// Posts the decision form, with extra request headers.
    pub async fn post_decision(&self, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut request = self.http.post(self.url("/popup/decision")).form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Posts `decision` with the CSRF token of `page`, same-origin.
    pub async fn decide(&self, page: &Page, decision: &str) -> Page {
        let csrf = page.csrf();
        self.post_decision(
            &[("csrf", csrf.as_str()), ("decision", decision)],
            &[("origin", &self.base), ("sec-fetch-site", "same-origin")],
        )
        .await
    }

    async fn send(&self, mut request: reqwest::RequestBuilder) -> Page {
        if let Some(cookie) = self.cookie() {
            request = request.header("cookie", format!("countersign_login={cookie}"));
        }
        let response = request.send().await.unwrap();

        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .map(|value| Url::parse(&self.base).unwrap().join(value).unwrap());
        let set_cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("countersign_login="))
            .map(str::to_owned);
        if let Some(set_cookie) = &set_cookie {
            self.store_cookie(set_cookie);
        }
        let html = response.text().await.unwrap();
        Page {
            status,
            location,
            set_cookie,
            html,
        }
    }

    fn store_cookie(&self, set_cookie: &str) {
        let value = set_cookie
            .strip_prefix("countersign_login=")
            .and_then(|rest| rest.split(';').next())
            .unwrap_or_default();
        let removed = value.is_empty() || set_cookie.contains("Max-Age=0");
        self.set_cookie((!removed).then(|| value.to_owned()));
    }
}

pub fn query_of(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// One Countersign server and the IdP it trusts, sharing one clock.
pub struct Fixture {
    pub server: TestServer,
    pub idp: HostileIdp,
}

/// The pages of one sign-in attempt.
pub struct Attempt {
    pub authorization_url: Url,
    pub code: String,
    /// Where the callback sent the browser.
    pub after_callback: Url,
    /// The page at `/popup/signed-out`: the decision page or an error page.
    pub page: Page,
}

impl Fixture {
    pub async fn start() -> Self {
        Self::start_with(IdpLimits::default()).await
    }

    pub async fn start_with(limits: IdpLimits) -> Self {
        let idp = HostileIdp::start().await;
        let server = start_with_limits(&idp.issuer, limits).await;
        let clock = server.clock.clone();
        idp.set_clock(move || clock.now().unix_timestamp());
        Self { server, idp }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.server)
    }

    pub async fn create(&self) -> String {
        self.server.create(&refund_request()).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Opens `/popup/start/{id}` and returns the authorization URL.
    pub async fn start_popup(&self, browser: &Browser, id: &str) -> Url {
        let page = browser.get(&format!("/popup/start/{id}")).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.html);
        page.location.expect("redirect to the IdP")
    }

    /// Returns the callback path the IdP would redirect to.
    pub fn callback_path(code: &str, state: &str) -> String {
        format!("/popup/callback?code={code}&state={state}")
    }

    /// Runs a whole attempt: start, sign-in at the IdP, callback, and the
    /// signed-out page (skipping the IdP's logout page in between).
    pub async fn attempt(&self, browser: &Browser, id: &str, user: TestUser) -> Attempt {
        let authorization_url = self.start_popup(browser, id).await;
        let code = self.idp.sign_in(&authorization_url, user);
        let state = query_of(&authorization_url)["state"].clone();

        let callback = browser.get(&Self::callback_path(&code, &state)).await;
        assert_eq!(callback.status, StatusCode::SEE_OTHER, "{}", callback.html);
        let after_callback = callback.location.expect("callback redirect");

        let page = browser.get("/popup/signed-out").await;
        Attempt {
            authorization_url,
            code,
            after_callback,
            page,
        }
    }

    /// Returns the status object of a request, read through the host API.
    pub async fn status(&self, id: &str) -> Value {
        let (status, body) = self
            .server
            .get(Some(SHOP_KEY), &format!("/api/v1/approvals/{id}"))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn audit(&self, id: &str) -> Vec<(String, Option<String>)> {
        self.server.audit_events(id).await
    }

    /// Counts the audit events named `name` for a request.
    pub async fn count_events(&self, id: &str, name: &str) -> usize {
        self.audit(id)
            .await
            .iter()
            .filter(|(event, _)| event == name)
            .count()
    }

    pub fn signed_out_url(&self) -> String {
        self.server.url("/popup/signed-out")
    }

    /// Returns the `detail` of the last audit event of a request: the log
    /// message, which names the check that failed.
    pub async fn last_detail(&self, id: &str) -> String {
        let id = ApprovalId::parse(id).unwrap();
        let records = self.server.storage.audit_events(&id).await.unwrap();
        let last = records.last().expect("an audit event");
        last.details["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Checks that an attempt whose tokens the IdP issued failed with
    /// `code` because of the check named `reason`: the error page, the IdP
    /// logout, no decision and the audit row.
    pub async fn assert_rejected_tokens(
        &self,
        id: &str,
        attempt: &Attempt,
        code: &str,
        reason: &str,
    ) {
        assert!(
            attempt
                .after_callback
                .as_str()
                .starts_with(&format!("{}?", self.idp.end_session_endpoint())),
            "the IdP session is ended: {}",
            attempt.after_callback
        );
        self.assert_failed(id, &attempt.page, code).await;
        let detail = self.last_detail(id).await;
        assert!(detail.contains(reason), "{reason}: {detail}");
    }

    /// Checks that an attempt failed before any token was issued, because
    /// of `reason`: the callback went straight to the signed-out page.
    pub async fn assert_failed_without_tokens(
        &self,
        id: &str,
        attempt: &Attempt,
        code: &str,
        reason: &str,
    ) {
        assert_eq!(attempt.after_callback.as_str(), self.signed_out_url());
        self.assert_failed(id, &attempt.page, code).await;
        let detail = self.last_detail(id).await;
        assert!(detail.contains(reason), "{reason}: {detail}");
    }

    /// Checks an error page for `code`, that the request is still pending
    /// and that the last audit event is `signin.failed` with `code`.
    pub async fn assert_failed(&self, id: &str, page: &Page, code: &str) {
        assert_eq!(page.error_code(), Some(code), "{}", page.html);
        assert!(!page.html.contains("name=\"csrf\""), "no decision form");
        let status = self.status(id).await;
        assert_eq!(status["status"], "pending", "{status}");
        assert_eq!(status["approver"], Value::Null, "{status}");
        assert_eq!(
            self.audit(id).await.last(),
            Some(&event("signin.failed", Some(code)))
        );
        assert_eq!(self.count_events(id, "signin.succeeded").await, 0);
    }

    /// Checks that an attempt reached the decision page as the manager.
    pub fn assert_decision_page(&self, attempt: &Attempt) {
        assert_eq!(attempt.page.status, StatusCode::OK, "{}", attempt.page.html);
        assert!(
            attempt.page.html.contains("name=\"csrf\""),
            "{}",
            attempt.page.html
        );
        assert!(
            attempt
                .after_callback
                .as_str()
                .starts_with(&self.idp.end_session_endpoint())
        );
    }
}
