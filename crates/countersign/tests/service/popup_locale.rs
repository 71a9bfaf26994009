//! The language of the popup pages: the host's `locale` parameter, the
//! browser's `Accept-Language`, the locale cookie, the retry link and the
//! `ui_locales` parameter sent to the IdP.

use std::collections::HashMap;

use reqwest::StatusCode;
use url::Url;

use crate::hostile_idp::{HostileIdp, TestUser};
use crate::support::*;

struct Fixture {
    server: TestServer,
    idp: HostileIdp,
}

/// A browser with a cookie jar for the popup's cookies and a fixed
/// `Accept-Language` header.
struct Browser<'a> {
    fixture: &'a Fixture,
    accept_language: Option<&'static str>,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<Url>,
    /// The raw `Set-Cookie` headers of the response.
    set_cookies: Vec<String>,
    html: String,
}

impl Page {
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|value| value.starts_with(&format!("{name}=")))
    }
}

async fn setup() -> Fixture {
    let idp = HostileIdp::start().await;
    let server = start_with_issuer(&idp.issuer).await;
    Fixture { server, idp }
}

impl Fixture {
    async fn create(&self) -> String {
        self.server.create(&refund_request()).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn browser(&self, accept_language: Option<&'static str>) -> Browser<'_> {
        Browser {
            fixture: self,
            accept_language,
            cookies: HashMap::new(),
        }
    }
}

impl Browser<'_> {
    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let mut request = request;
        if let Some(accept_language) = self.accept_language {
            request = request.header("accept-language", accept_language);
        }
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();

        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                Url::parse(&self.fixture.server.base)
                    .unwrap()
                    .join(value)
                    .unwrap()
            });
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .map(str::to_owned)
            .collect();
        for set_cookie in &set_cookies {
            let pair = set_cookie.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || set_cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let html = response.text().await.unwrap();
        Page {
            status,
            location,
            set_cookies,
            html,
        }
    }

    async fn get(&mut self, path_or_url: &str) -> Page {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.fixture.server.url(path_or_url)
        };
        let request = self.fixture.server.http.get(url);
        self.send(request).await
    }

    /// Opens `start_path`, signs `user` in at the IdP and returns the
    /// authorization URL and the page at `/popup/signed-out`.
    async fn sign_in(&mut self, start_path: &str, user: TestUser) -> (Url, Page) {
        let start = self.get(start_path).await;
        assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.html);
        let authorization_url = start.location.unwrap();
        let code = self.fixture.idp.sign_in(&authorization_url, user);
        let state = ui_query(&authorization_url)["state"].clone();
        let callback = self
            .get(&format!("/popup/callback?code={code}&state={state}"))
            .await;
        assert_eq!(callback.status, StatusCode::SEE_OTHER, "{}", callback.html);
        let page = self.get("/popup/signed-out").await;
        (authorization_url, page)
    }

    async fn decide(&mut self, page: &Page, decision: &str) -> Page {
        let marker = "name=\"csrf\" value=\"";
        let start = page.html.find(marker).expect("decision page") + marker.len();
        let csrf = page.html[start..].split('"').next().unwrap().to_owned();
        let server = &self.fixture.server;
        let request = server
            .http
            .post(server.url("/popup/decision"))
            .header("origin", &server.base)
            .header("sec-fetch-site", "same-origin")
            .form(&[("csrf", csrf.as_str()), ("decision", decision)]);
        self.send(request).await
    }
}

fn ui_query(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn assert_lang(html: &str, lang: &str) {
    assert!(
        html.starts_with(&format!("<!doctype html>\n<html lang=\"{lang}\">")),
        "expected lang {lang}: {html}"
    );
}

fn clerk() -> TestUser {
    TestUser {
        sub: "clerk-sub".to_owned(),
        username: "clerk".to_owned(),
        roles: vec!["CASHIER".to_owned()],
        ..TestUser::manager()
    }
}

#[tokio::test]
async fn accept_language_gives_german_pages() {
    let fixture = setup().await;
    let id = fixture.create().await;
    let mut browser = fixture.browser(Some("de-AT,de;q=0.9,en;q=0.5"));

    let (authorization_url, page) = browser
        .sign_in(&format!("/popup/start/{id}"), TestUser::manager())
        .await;

    assert_eq!(ui_query(&authorization_url)["ui_locales"], "de");
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert_lang(&page.html, "de");
    for text in [
        "<title>Diese Anfrage genehmigen? · Countersign</title>",
        "<h1 id=\"page-title\">Diese Anfrage genehmigen?</h1>",
        "<dt>Angefordert von</dt><dd id=\"requester\">Carla Cashier</dd>",
        "<dt>Verbleibende Zeit</dt><dd id=\"time-left\">5 Minuten (bis ",
        "Sie haben sich als <strong id=\"approver\">Maria Manager (manager)</strong> angemeldet.",
        "<label for=\"reason\">Begründung (optional)</label>",
        "id=\"approve\" class=\"approve\">Genehmigen</button>",
        "id=\"reject\" class=\"reject\">Ablehnen</button>",
    ] {
        assert!(page.html.contains(text), "missing {text:?}: {}", page.html);
    }

    let result = browser.decide(&page, "approve").await;

    assert_eq!(result.status, StatusCode::OK, "{}", result.html);
    assert_lang(&result.html, "de");
    assert!(
        result.html.contains("<h1>Anfrage genehmigt</h1>"),
        "{}",
        result.html
    );
    assert!(
        result
            .html
            .contains("Sie haben die Anfrage als Maria Manager (manager) genehmigt."),
        "{}",
        result.html
    );
}

#[tokio::test]
async fn browser_without_language_gets_english() {
    let fixture = setup().await;
    let id = fixture.create().await;
    let mut browser = fixture.browser(None);

    let (authorization_url, page) = browser
        .sign_in(&format!("/popup/start/{id}"), TestUser::manager())
        .await;

    assert_eq!(ui_query(&authorization_url)["ui_locales"], "en");
    assert_lang(&page.html, "en");
    assert!(
        page.html
            .contains("<h1 id=\"page-title\">Approve this request?</h1>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("<dd id=\"time-left\">5 minutes (until "),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn host_locale_wins_over_accept_language() {
    let fixture = setup().await;
    let id = fixture.create().await;
    let mut browser = fixture.browser(Some("de"));

    let start = browser.get(&format!("/popup/start/{id}?locale=fr")).await;

    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.html);
    let authorization_url = start.location.clone().unwrap();
    assert_eq!(ui_query(&authorization_url)["ui_locales"], "fr");
    let cookie = start
        .set_cookie("countersign_locale")
        .expect("locale cookie");
    assert!(cookie.starts_with("countersign_locale=fr;"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/popup"), "{cookie}");

    let code = fixture.idp.sign_in(&authorization_url, TestUser::manager());
    let state = ui_query(&authorization_url)["state"].clone();
    browser
        .get(&format!("/popup/callback?code={code}&state={state}"))
        .await;
    let page = browser.get("/popup/signed-out").await;

    assert_lang(&page.html, "fr");
    assert!(
        page.html
            .contains("<h1 id=\"page-title\">Approuver cette demande\u{a0}?</h1>"),
        "{}",
        page.html
    );
    assert!(page.html.contains(">Approuver</button>"), "{}", page.html);

    let result = browser.decide(&page, "reject").await;

    assert_lang(&result.html, "fr");
    assert!(
        result.html.contains("<h1>Demande refusée</h1>"),
        "{}",
        result.html
    );
    let removed = result
        .set_cookie("countersign_locale")
        .expect("locale cookie removed");
    assert!(removed.starts_with("countersign_locale=;"), "{removed}");
}

#[tokio::test]
async fn error_page_keeps_host_locale_for_retry() {
    let fixture = setup().await;
    let id = fixture.create().await;
    let mut browser = fixture.browser(Some("de"));

    let (_, page) = browser
        .sign_in(&format!("/popup/start/{id}?locale=es-MX"), clerk())
        .await;

    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_lang(&page.html, "es");
    assert!(
        page.html.contains("<h1>Sin permiso para aprobar</h1>"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains(&format!(
            "<a href=\"/popup/start/{id}?locale=es\" id=\"try-again\" class=\"button\">Intentar de nuevo</a>"
        )),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains("Código de error: <code id=\"error-code\">not_an_approver</code>"),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn error_page_follows_accept_language() {
    let fixture = setup().await;
    let id = fixture.create().await;
    let mut browser = fixture.browser(Some("fr-CH, fr;q=0.9, en;q=0.8"));

    let (_, page) = browser
        .sign_in(&format!("/popup/start/{id}"), clerk())
        .await;

    assert_lang(&page.html, "fr");
    assert!(
        page.html.contains("<h1>Approbation non autorisée</h1>"),
        "{}",
        page.html
    );
    assert!(
        page.html
            .contains(&format!("href=\"/popup/start/{id}\" id=\"try-again\"")),
        "a browser locale is not added to the retry link: {}",
        page.html
    );

    let unknown = browser.get("/popup/start/AAAAAAAAAAAAAAAAAAAAAA").await;

    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_lang(&unknown.html, "fr");
    assert!(
        unknown.html.contains("<h1>Introuvable</h1>"),
        "{}",
        unknown.html
    );
}

#[tokio::test]
async fn unsupported_locale_falls_back() {
    let fixture = setup().await;
    let id = fixture.create().await;

    let mut italian = fixture.browser(Some("it, ja;q=0.5"));
    let start = italian.get(&format!("/popup/start/{id}?locale=it")).await;

    assert_eq!(start.status, StatusCode::SEE_OTHER, "{}", start.html);
    assert_eq!(
        ui_query(start.location.as_ref().unwrap())["ui_locales"],
        "en"
    );
    assert_eq!(start.set_cookie("countersign_locale"), None);

    let mut german = fixture.browser(Some("it, de;q=0.5"));
    let start = german
        .get(&format!("/popup/start/{id}?locale=not%20a%20tag%21"))
        .await;

    assert_eq!(ui_query(&start.location.unwrap())["ui_locales"], "de");
}

#[tokio::test]
async fn start_without_locale_forgets_the_old_one() {
    let fixture = setup().await;
    let id = fixture.create().await;
    let mut browser = fixture.browser(Some("es"));

    browser.get(&format!("/popup/start/{id}?locale=de")).await;
    assert_eq!(
        browser
            .cookies
            .get("countersign_locale")
            .map(String::as_str),
        Some("de")
    );

    let start = browser.get(&format!("/popup/start/{id}")).await;

    assert_eq!(
        ui_query(start.location.as_ref().unwrap())["ui_locales"],
        "es"
    );
    assert!(
        start
            .set_cookie("countersign_locale")
            .is_some_and(|cookie| cookie.starts_with("countersign_locale=;")),
        "{:?}",
        start.set_cookies
    );
    assert!(!browser.cookies.contains_key("countersign_locale"));
}
