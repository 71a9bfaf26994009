//! The popup pages: start, callback, signed-out (decision page), decision.
//!
//! Every page carries a Content-Security-Policy whose only script source is
//! a per-response nonce, `frame-ancestors 'none'` and `Referrer-Policy:
//! no-referrer`. Their Cross-Origin-Opener-Policy is `unsafe-none` (set by
//! the security-header middleware), because any stricter value on a page in
//! the popup's history severs `window.opener`, and the result page could
//! not notify the opener.

use askama::Template;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde_json::Value;
use time::OffsetDateTime;
use time::macros::format_description;

use super::AppState;
use super::problem::{ErrorLog, status_of};
use crate::approvals::{Approver, Status, random_token};
use crate::codes::ErrorCode;
use crate::i18n::{self, Locale, PageLocale};
use crate::signin::{
    CallbackParams, DecisionForm, DecisionView, FlowError, LOGIN_COOKIE, ResultView,
};

const STYLESHEET: &str = include_str!("../../static/popup.css");

/// Name of the cookie that keeps the locale named by the host application
/// for the later pages of the attempt (set by `/popup/start/{id}` only when
/// its `locale` parameter names a supported language).
pub const LOCALE_COOKIE: &str = "countersign_locale";

/// The texts of a page's locale, for the templates.
struct Texts(Locale);

impl Texts {
    fn get<'a>(&self, key: &'a str) -> &'a str {
        i18n::text(self.0, key)
    }

    fn lang(&self) -> &'static str {
        self.0.as_str()
    }
}

#[derive(Template)]
#[template(path = "decision.html")]
struct DecisionPage {
    t: Texts,
    title: String,
    summary: String,
    action: String,
    requester: String,
    time_left: String,
    details: Vec<(String, String)>,
    signed_in_before: String,
    approver: String,
    signed_in_after: String,
    csrf: String,
}

#[derive(Template)]
#[template(path = "popup_error.html")]
struct ErrorPage {
    t: Texts,
    title: String,
    message: String,
    code: &'static str,
    retry_url: Option<String>,
}

#[derive(Template)]
#[template(path = "result.html")]
struct ResultPage {
    t: Texts,
    title: String,
    message: String,
    id: String,
    status: &'static str,
    origin: String,
    nonce: String,
}

/// The query of `/popup/start/{id}`.
#[derive(Debug, Default, serde::Deserialize)]
pub struct StartQuery {
    /// The host application's language for the popup: one BCP 47 tag, or
    /// several separated by spaces in order of preference.
    pub locale: Option<String>,
}

/// `GET /popup/start/{id}`
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    jar: CookieJar,
    query: Result<Query<StartQuery>, QueryRejection>,
) -> Response {
    // A malformed query only loses the host's locale: the sign-in works
    // without it.
    let query = query.map(|Query(query)| query).unwrap_or_default();
    let page_locale = i18n::negotiate(query.locale.as_deref(), accept_language(&headers));
    let previous = jar
        .get(LOGIN_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    let started = state
        .sign_in
        .start_with_locale(&id, previous.as_deref(), Some(page_locale.locale.as_str()))
        .await;
    match started {
        Ok(redirect) => {
            let secure = state.settings.server.public_url.scheme() == "https";
            let cookie = Cookie::build((LOGIN_COOKIE, redirect.cookie_value))
                .http_only(true)
                .same_site(SameSite::Lax)
                .path("/popup")
                .secure(secure)
                .max_age(redirect.cookie_max_age);
            let mut jar = jar.add(cookie);
            if page_locale.from_host {
                let locale = Cookie::build((LOCALE_COOKIE, page_locale.locale.as_str()))
                    .http_only(true)
                    .same_site(SameSite::Lax)
                    .path("/popup")
                    .secure(secure)
                    .max_age(redirect.cookie_max_age);
                jar = jar.add(locale);
            } else if jar.get(LOCALE_COOKIE).is_some() {
                // A new attempt without a host locale must not inherit the
                // language of an earlier one.
                jar = jar.remove(Cookie::build(LOCALE_COOKIE).path("/popup"));
            }
            (jar, Redirect::to(redirect.location.as_str())).into_response()
        }
        Err(error) => error_response(jar, error, page_locale),
    }
}

/// Returns the locale of a page after `/popup/start/{id}`: the host's
/// choice kept in [`LOCALE_COOKIE`], else the browser's `Accept-Language`.
fn page_locale(jar: &CookieJar, headers: &HeaderMap) -> PageLocale {
    let host = jar.get(LOCALE_COOKIE).map(Cookie::value);
    i18n::negotiate(host, accept_language(headers))
}

fn accept_language(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|value| value.to_str().ok())
}

/// `GET /popup/callback`
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    query: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    let params = match query {
        Ok(Query(params)) => params,
        Err(rejection) => CallbackParams {
            error: Some(format!(
                "malformed callback query: {}",
                rejection.body_text()
            )),
            ..CallbackParams::default()
        },
    };
    let cookie = jar
        .get(LOGIN_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    match state.sign_in.callback(cookie.as_deref(), params).await {
        Ok(location) => Redirect::to(location.as_str()).into_response(),
        Err(error) => {
            let locale = page_locale(&jar, &headers);
            error_response(jar, error, locale)
        }
    }
}

/// `GET /popup/signed-out`
pub async fn signed_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
) -> Response {
    let locale = page_locale(&jar, &headers);
    let cookie = jar
        .get(LOGIN_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    match state.sign_in.signed_out(cookie.as_deref()).await {
        Ok(view) => decision_page(&view, locale.locale),
        Err(error) => error_response(jar, error, locale),
    }
}

/// `POST /popup/decision`
pub async fn decision(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
    form: Result<Form<DecisionForm>, FormRejection>,
) -> Response {
    let public_origin = state
        .settings
        .server
        .public_url
        .origin()
        .ascii_serialization();
    let locale = page_locale(&jar, &headers);
    if let Some(reason) = cross_site_reason(&headers, &public_origin) {
        // The cookie and the login transaction stay as they are: another
        // site must not be able to end the approver's attempt.
        let error = FlowError {
            code: ErrorCode::InvalidRequest,
            retry: None,
            log_message: format!("cross-site decision rejected: {reason}"),
        };
        return localized_error_page(error, locale);
    }

    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            let error = FlowError {
                code: ErrorCode::InvalidRequest,
                retry: None,
                log_message: format!("malformed decision form: {}", rejection.body_text()),
            };
            return error_response(jar, error, locale);
        }
    };
    let cookie = jar
        .get(LOGIN_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    let result = state.sign_in.decide(cookie.as_deref(), form).await;
    let jar = jar.remove(Cookie::build(LOGIN_COOKIE).path("/popup"));
    match result {
        Ok(view) => {
            let jar = if jar.get(LOCALE_COOKIE).is_some() {
                jar.remove(Cookie::build(LOCALE_COOKIE).path("/popup"))
            } else {
                jar
            };
            (jar, result_page(&view, locale.locale)).into_response()
        }
        Err(error) => error_response(jar, error, locale),
    }
}

/// Returns why a decision POST comes from another site, or `None` when the
/// browser marks it as same-origin or sends neither header.
///
/// The `SameSite=Lax` cookie already stays off a cross-site POST in current
/// browsers, and the form carries a CSRF token. This check adds the
/// browser's own statement of where the request came from: `Sec-Fetch-Site`
/// (Fetch Metadata) and `Origin` (RFC 6454, section 7). A request without
/// either header (an old browser, or a client that is not a browser) still
/// needs the cookie and the CSRF token.
fn cross_site_reason(headers: &HeaderMap, public_origin: &str) -> Option<String> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|site| site.to_str().unwrap_or_default());
    if let Some(site) = fetch_site
        && site != "same-origin"
    {
        return Some(format!("Sec-Fetch-Site is `{}`", truncate_header(site)));
    }

    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        // The decision page has `Referrer-Policy: no-referrer`, so browsers
        // send `Origin: null` on its own form post (Fetch standard,
        // "serializing a request origin"). `null` passes only together with
        // `Sec-Fetch-Site: same-origin`, because on its own it may also come
        // from a sandboxed frame or a page on another site.
        let same_origin_null = origin == "null" && fetch_site == Some("same-origin");
        if origin != public_origin && !same_origin_null {
            return Some(format!(
                "Origin `{}` is not {public_origin}",
                truncate_header(origin)
            ));
        }
    }
    None
}

fn truncate_header(value: &str) -> String {
    value.chars().take(64).collect()
}

/// `GET /popup/popup.css`
pub async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// Fallback for every unknown path outside `/api`.
pub async fn not_found_page() -> Response {
    let error = FlowError {
        code: ErrorCode::NotFound,
        retry: None,
        log_message: "no such page".to_owned(),
    };
    error_page(error)
}

fn decision_page(view: &DecisionView, locale: Locale) -> Response {
    let approval = &view.approval;
    let time_left = i18n::format_text(
        locale,
        "decision.time_left_until",
        &[
            (
                "duration",
                &describe_time_left(locale, approval.expires_at - view.now),
            ),
            ("clock", &format_clock_time(approval.expires_at)),
        ],
    );
    // The approver's name is set in bold inside the translated sentence.
    let signed_in = i18n::text(locale, "decision.signed_in_as");
    let (signed_in_before, signed_in_after) = signed_in
        .split_once("{approver}")
        .unwrap_or((signed_in, ""));
    let page = DecisionPage {
        t: Texts(locale),
        title: i18n::text(locale, "decision.title").to_owned(),
        summary: approval.summary.clone(),
        action: approval.action.clone(),
        requester: approval.requester.name.clone(),
        time_left,
        details: detail_rows(&approval.details),
        signed_in_before: signed_in_before.to_owned(),
        approver: describe_approver(&view.approver),
        signed_in_after: signed_in_after.to_owned(),
        csrf: view.csrf_token.clone(),
    };
    html_response(StatusCode::OK, &random_token(), page.render())
}

fn result_page(view: &ResultView, locale: Locale) -> Response {
    let nonce = random_token();
    let (title, message) = match view.status {
        Status::Approved => ("result.approved_title", "result.approved_message"),
        _ => ("result.rejected_title", "result.rejected_message"),
    };
    let page = ResultPage {
        t: Texts(locale),
        title: i18n::text(locale, title).to_owned(),
        message: i18n::format_text(
            locale,
            message,
            &[("approver", &describe_approver(&view.approver))],
        ),
        id: view.id.to_string(),
        status: view.status.as_str(),
        origin: view.origin.clone(),
        nonce: nonce.clone(),
    };
    html_response(StatusCode::OK, &nonce, page.render())
}

/// Builds the error page and clears the login cookie, because a failed
/// attempt is over. The locale cookie is kept, and a retry link carries
/// the host's locale anyway.
fn error_response(jar: CookieJar, error: FlowError, locale: PageLocale) -> Response {
    let jar = jar.remove(Cookie::build(LOGIN_COOKIE).path("/popup"));
    (jar, localized_error_page(error, locale)).into_response()
}

/// Builds the error page in English.
pub(super) fn error_page(error: FlowError) -> Response {
    let locale = PageLocale {
        locale: Locale::DEFAULT,
        from_host: false,
    };
    localized_error_page(error, locale)
}

/// Builds the error page in `locale`. The retry link keeps a locale that
/// the host application chose.
pub(super) fn localized_error_page(error: FlowError, locale: PageLocale) -> Response {
    let key = error_key(error.code);
    let retry_url = error.retry.map(|id| {
        if locale.from_host {
            format!("/popup/start/{id}?locale={}", locale.locale)
        } else {
            format!("/popup/start/{id}")
        }
    });
    let page = ErrorPage {
        t: Texts(locale.locale),
        title: i18n::text(locale.locale, &format!("error.{key}.title")).to_owned(),
        message: i18n::text(locale.locale, &format!("error.{key}.message")).to_owned(),
        code: error.code.as_str(),
        retry_url,
    };
    let mut response = html_response(status_of(error.code), &random_token(), page.render());
    response.extensions_mut().insert(ErrorLog {
        code: error.code,
        message: error.log_message,
    });
    response
}

fn html_response(
    status: StatusCode,
    nonce: &str,
    rendered: Result<String, askama::Error>,
) -> Response {
    let mut response = match rendered {
        Ok(html) => (status, html).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "cannot render a popup page");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown.",
            )
                .into_response()
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let policy = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Returns the section of the locale files that contains the title and
/// message of the error page for `code`. Codes that the popup flow never
/// produces share the `invalid_request` texts.
fn error_key(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotAnApprover
        | ErrorCode::OwnRequest
        | ErrorCode::ApprovalExpired
        | ErrorCode::AlreadyDecided
        | ErrorCode::IdpError
        | ErrorCode::SignInCancelled
        | ErrorCode::LoginExpired
        | ErrorCode::SignInNotFresh
        | ErrorCode::NotFound
        | ErrorCode::AuditUnavailable
        | ErrorCode::StorageUnavailable => code.as_str(),
        _ => ErrorCode::InvalidRequest.as_str(),
    }
}

fn describe_approver(approver: &Approver) -> String {
    match (&approver.name, &approver.username) {
        (Some(name), Some(username)) => format!("{name} ({username})"),
        _ => approver.display_name().to_owned(),
    }
}

/// Turns each top-level detail into a row: strings as they are, a list of
/// strings and numbers as a comma-separated line, other values as JSON.
fn detail_rows(details: &Value) -> Vec<(String, String)> {
    let Some(object) = details.as_object() else {
        return Vec::new();
    };
    object
        .iter()
        .map(|(name, value)| (name.clone(), detail_text(value)))
        .collect()
}

fn detail_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) if items.iter().all(is_plain) => {
            items.iter().map(detail_text).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

fn is_plain(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// Spells the time left out in words, so that a screen reader reads
/// "4 minutes and 32 seconds" instead of the abbreviations "min" and "s".
fn describe_time_left(locale: Locale, left: time::Duration) -> String {
    i18n::duration_text(locale, left.whole_seconds())
}

fn format_clock_time(time: OffsetDateTime) -> String {
    let format = format_description!("[hour]:[minute]:[second] UTC");
    time.format(&format).unwrap_or_else(|_| time.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn cross_site_decision_is_detected() {
        let public = "http://127.0.0.1:18300";
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (&[("sec-fetch-site", "same-origin")], false),
            (&[("origin", "http://127.0.0.1:18300")], false),
            (
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "http://127.0.0.1:18300"),
                ],
                false,
            ),
            (&[("sec-fetch-site", "cross-site")], true),
            (&[("sec-fetch-site", "same-site")], true),
            (&[("sec-fetch-site", "none")], true),
            (&[("origin", "http://localhost:18400")], true),
            (&[("origin", "null")], true),
            (
                &[("sec-fetch-site", "same-origin"), ("origin", "null")],
                false,
            ),
            (
                &[("sec-fetch-site", "cross-site"), ("origin", "null")],
                true,
            ),
            (&[("origin", "http://127.0.0.1:18300.evil.test")], true),
            (
                &[
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "http://attacker.test"),
                ],
                true,
            ),
        ];

        for (pairs, cross_site) in cases {
            let reason = cross_site_reason(&headers(pairs), public);
            assert_eq!(reason.is_some(), *cross_site, "{pairs:?}: {reason:?}");
        }
    }

    #[test]
    fn time_left_is_readable() {
        let cases = [
            (Locale::En, 272, "4 minutes and 32 seconds"),
            (Locale::En, 120, "2 minutes"),
            (Locale::En, 9, "9 seconds"),
            (Locale::En, -3, "0 seconds"),
            (Locale::De, 272, "4 Minuten und 32 Sekunden"),
        ];

        for (locale, seconds, expected) in cases {
            let left = time::Duration::seconds(seconds);
            assert_eq!(
                describe_time_left(locale, left),
                expected,
                "{locale}, {seconds} s"
            );
        }
    }

    #[test]
    fn every_error_page_has_texts() {
        let codes = [
            ErrorCode::NotAnApprover,
            ErrorCode::OwnRequest,
            ErrorCode::ApprovalExpired,
            ErrorCode::AlreadyDecided,
            ErrorCode::IdpError,
            ErrorCode::SignInCancelled,
            ErrorCode::LoginExpired,
            ErrorCode::SignInNotFresh,
            ErrorCode::NotFound,
            ErrorCode::AuditUnavailable,
            ErrorCode::StorageUnavailable,
            ErrorCode::InvalidRequest,
            ErrorCode::MethodNotAllowed,
        ];

        for locale in Locale::ALL {
            for code in codes {
                let key = error_key(code);
                for part in ["title", "message"] {
                    let full_key = format!("error.{key}.{part}");
                    assert_ne!(i18n::text(locale, &full_key), full_key, "{locale}: {code}");
                }
            }
        }
    }

    #[test]
    fn templates_use_only_known_keys() {
        let templates = [
            include_str!("../../templates/decision.html"),
            include_str!("../../templates/popup_error.html"),
            include_str!("../../templates/result.html"),
        ];

        for template in templates {
            for call in template.split("t.get(\"").skip(1) {
                let key = call.split('"').next().unwrap();
                for locale in Locale::ALL {
                    assert_ne!(i18n::text(locale, key), key, "{locale}: {key}");
                }
            }
        }
    }

    #[test]
    fn details_become_rows() {
        let rows =
            detail_rows(&serde_json::json!({"order": "1001", "amount": 49.9, "items": [1, 2]}));

        assert_eq!(
            rows,
            [
                ("amount".to_owned(), "49.9".to_owned()),
                ("items".to_owned(), "1, 2".to_owned()),
                ("order".to_owned(), "1001".to_owned()),
            ]
        );
    }

    #[test]
    fn nested_details_stay_json() {
        let rows = detail_rows(&serde_json::json!({
            "items": ["2 × Coffee beans", "1 × Mug"],
            "lines": [{"sku": "A1"}],
            "customer": {"id": 7},
        }));

        assert_eq!(
            rows,
            [
                ("customer".to_owned(), r#"{"id":7}"#.to_owned()),
                ("items".to_owned(), "2 × Coffee beans, 1 × Mug".to_owned()),
                ("lines".to_owned(), r#"[{"sku":"A1"}]"#.to_owned()),
            ]
        );
    }
}
