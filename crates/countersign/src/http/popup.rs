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
use crate::signin::{
    CallbackParams, DecisionForm, DecisionView, FlowError, LOGIN_COOKIE, ResultView,
};

const STYLESHEET: &str = include_str!("../../static/popup.css");

#[derive(Template)]
#[template(path = "decision.html")]
struct DecisionPage {
    title: String,
    summary: String,
    action: String,
    requester: String,
    time_left: String,
    expires_at: String,
    details: Vec<(String, String)>,
    approver: String,
    csrf: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    message: &'static str,
    code: &'static str,
    retry_url: Option<String>,
}

#[derive(Template)]
#[template(path = "result.html")]
struct ResultPage {
    title: &'static str,
    message: String,
    id: String,
    status: &'static str,
    origin: String,
    nonce: String,
}

/// `GET /popup/start/{id}`
pub async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    jar: CookieJar,
) -> Response {
    let previous = jar
        .get(LOGIN_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    match state.sign_in.start(&id, previous.as_deref()).await {
        Ok(redirect) => {
            let cookie = Cookie::build((LOGIN_COOKIE, redirect.cookie_value))
                .http_only(true)
                .same_site(SameSite::Lax)
                .path("/popup")
                .secure(state.settings.server.public_url.scheme() == "https")
                .max_age(redirect.cookie_max_age);
            (jar.add(cookie), Redirect::to(redirect.location.as_str())).into_response()
        }
        Err(error) => error_response(jar, error),
    }
}

/// `GET /popup/callback`
pub async fn callback(
    State(state): State<AppState>,
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
        Err(error) => error_response(jar, error),
    }
}

/// `GET /popup/signed-out`
pub async fn signed_out(State(state): State<AppState>, jar: CookieJar) -> Response {
    let cookie = jar
        .get(LOGIN_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    match state.sign_in.signed_out(cookie.as_deref()).await {
        Ok(view) => decision_page(&view),
        Err(error) => error_response(jar, error),
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
    if let Some(reason) = cross_site_reason(&headers, &public_origin) {
        // The cookie and the login transaction stay as they are: another
        // site must not be able to end the approver's attempt.
        let error = FlowError {
            code: ErrorCode::InvalidRequest,
            retry: None,
            log_message: format!("cross-site decision rejected: {reason}"),
        };
        return error_page(error);
    }

    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => {
            let error = FlowError {
                code: ErrorCode::InvalidRequest,
                retry: None,
                log_message: format!("malformed decision form: {}", rejection.body_text()),
            };
            return error_response(jar, error);
        }
    };
    let cookie = jar
        .get(LOGIN_COOKIE)
        .map(|cookie| cookie.value().to_owned());
    let result = state.sign_in.decide(cookie.as_deref(), form).await;
    let jar = jar.remove(Cookie::build(LOGIN_COOKIE).path("/popup"));
    match result {
        Ok(view) => (jar, result_page(&view)).into_response(),
        Err(error) => error_response(jar, error),
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

fn decision_page(view: &DecisionView) -> Response {
    let approval = &view.approval;
    let page = DecisionPage {
        title: "Approve this request?".to_owned(),
        summary: approval.summary.clone(),
        action: approval.action.clone(),
        requester: approval.requester.name.clone(),
        time_left: describe_time_left(approval.expires_at - view.now),
        expires_at: format_clock_time(approval.expires_at),
        details: detail_rows(&approval.details),
        approver: describe_approver(&view.approver),
        csrf: view.csrf_token.clone(),
    };
    html_response(StatusCode::OK, &random_token(), page.render())
}

fn result_page(view: &ResultView) -> Response {
    let nonce = random_token();
    let (title, verb) = match view.status {
        Status::Approved => ("Request approved", "approved"),
        _ => ("Request rejected", "rejected"),
    };
    let page = ResultPage {
        title,
        message: format!(
            "You {verb} the request as {}.",
            describe_approver(&view.approver)
        ),
        id: view.id.to_string(),
        status: view.status.as_str(),
        origin: view.origin.clone(),
        nonce: nonce.clone(),
    };
    html_response(StatusCode::OK, &nonce, page.render())
}

/// Builds the error page and clears the login cookie, because a failed
/// attempt is over.
fn error_response(jar: CookieJar, error: FlowError) -> Response {
    let jar = jar.remove(Cookie::build(LOGIN_COOKIE).path("/popup"));
    (jar, error_page(error)).into_response()
}

fn error_page(error: FlowError) -> Response {
    let (title, message) = error_text(error.code);
    let page = ErrorPage {
        title,
        message,
        code: error.code.as_str(),
        retry_url: error.retry.map(|id| format!("/popup/start/{id}")),
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

/// Returns the title and message of each error page.
fn error_text(code: ErrorCode) -> (&'static str, &'static str) {
    match code {
        ErrorCode::NotAnApprover => (
            "Not allowed to approve",
            "The account you signed in with does not hold the role this request needs. Ask someone who holds it to sign in.",
        ),
        ErrorCode::OwnRequest => (
            "You cannot approve your own request",
            "The account you signed in with made this request. Another person has to sign in and approve it.",
        ),
        ErrorCode::ApprovalExpired => (
            "Request expired",
            "This approval request has expired. Ask for a new one in the application.",
        ),
        ErrorCode::AlreadyDecided => (
            "Already decided",
            "Someone has already decided this request.",
        ),
        ErrorCode::IdpError => (
            "Sign-in failed",
            "The sign-in service returned an error or could not be reached.",
        ),
        ErrorCode::SignInCancelled => ("Sign-in cancelled", "The sign-in was cancelled."),
        ErrorCode::LoginExpired => (
            "Sign-in expired",
            "The sign-in took too long, or it was started in another window.",
        ),
        ErrorCode::SignInNotFresh => (
            "Please sign in again",
            "The sign-in service reused an existing session instead of asking for your password.",
        ),
        ErrorCode::NotFound => ("Not found", "There is no approval request at this address."),
        ErrorCode::AuditUnavailable => (
            "Not recorded",
            "The audit log could not be written, so nothing was changed.",
        ),
        ErrorCode::StorageUnavailable => (
            "Service unavailable",
            "Countersign cannot reach its database.",
        ),
        _ => (
            "Invalid request",
            "The page received a request it cannot handle.",
        ),
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

fn describe_time_left(left: time::Duration) -> String {
    let seconds = left.whole_seconds().max(0);
    match (seconds / 60, seconds % 60) {
        (0, seconds) => format!("{seconds} s"),
        (minutes, 0) => format!("{minutes} min"),
        (minutes, seconds) => format!("{minutes} min {seconds} s"),
    }
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
        assert_eq!(
            describe_time_left(time::Duration::seconds(272)),
            "4 min 32 s"
        );
        assert_eq!(describe_time_left(time::Duration::seconds(120)), "2 min");
        assert_eq!(describe_time_left(time::Duration::seconds(9)), "9 s");
        assert_eq!(describe_time_left(time::Duration::seconds(-3)), "0 s");
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
