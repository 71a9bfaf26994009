//! The shop's own sign-in (authorization code flow with PKCE S256), sign-out
//! with RP-initiated logout, and `/whoami`.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum_extra::extract::CookieJar;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{SharedState, check_same_origin};
use crate::error::{ApiError, PageError};
use crate::oidc::{AccessTokenClaims, LoginTransaction, OidcError, decode_jwt_payload};
use crate::session::{
    LOGIN_TIMEOUT, PendingLogin, Session, User, removal_cookie, session_cookie, session_id,
};

fn identity_provider_unavailable(error: &dyn std::fmt::Display) -> PageError {
    PageError::sign_in(
        StatusCode::BAD_GATEWAY,
        "Sign-in is unavailable",
        format!(
            "The shop cannot reach its identity provider: {error}. Check that Keycloak runs, then try again."
        ),
    )
}

/// Starts the code flow. A new login always gets a new session id.
pub async fn login(
    State(state): State<SharedState>,
    jar: CookieJar,
) -> Result<(CookieJar, Redirect), PageError> {
    let old_session = session_id(&jar);
    if let Some(id) = &old_session
        && state.sessions.with(id, |session| session.user.is_some()) == Some(true)
    {
        return Ok((jar, Redirect::to("/")));
    }

    let transaction = LoginTransaction::generate();
    let authorization_url = state
        .oidc
        .authorization_url(&transaction)
        .await
        .map_err(|error| {
            tracing::error!(%error, "starting the sign-in failed");
            identity_provider_unavailable(&error)
        })?;

    if let Some(id) = &old_session {
        state.sessions.remove(id);
    }
    let session = Session {
        login: Some(PendingLogin {
            transaction,
            started: std::time::Instant::now(),
        }),
        ..Session::default()
    };
    let id = state.sessions.insert(session);
    Ok((
        jar.add(session_cookie(id, state.secure_cookies)),
        Redirect::to(authorization_url.as_str()),
    ))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// Finishes the code flow: checks `state`, exchanges the code with the PKCE
/// verifier, checks the ID token's claims and signs the user in under a new
/// session id.
pub async fn callback(
    State(state): State<SharedState>,
    jar: CookieJar,
    Query(query): Query<CallbackQuery>,
) -> Result<(CookieJar, Redirect), PageError> {
    let lost = || {
        PageError::sign_in(
            StatusCode::BAD_REQUEST,
            "Sign-in not found",
            "The shop has no sign-in in progress for this browser, or it was already used. Start again.",
        )
    };
    let old_id = session_id(&jar).ok_or_else(lost)?;
    let pending = state
        .sessions
        .with(&old_id, |session| session.login.take())
        .flatten()
        .ok_or_else(lost)?;

    if let Some(error) = query.error {
        let description = query.error_description.unwrap_or_default();
        tracing::warn!(%error, %description, "the identity provider returned an error to the callback");
        return Err(PageError::sign_in(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            format!("The identity provider did not sign you in: {error} {description}"),
        ));
    }
    if pending.started.elapsed() > LOGIN_TIMEOUT {
        return Err(PageError::sign_in(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            format!(
                "The sign-in took longer than {} minutes. Start again.",
                LOGIN_TIMEOUT.as_secs() / 60
            ),
        ));
    }
    if query.state.as_deref() != Some(pending.transaction.state.as_str()) {
        tracing::warn!("the callback's state does not match the sign-in in progress");
        return Err(lost());
    }
    let Some(code) = query.code else {
        return Err(PageError::sign_in(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The callback has no authorization code.",
        ));
    };

    let user = sign_in_user(&state, &code, &pending.transaction).await?;
    tracing::info!(sub = %user.sub, username = %user.username, "user signed in");

    state.sessions.remove(&old_id);
    let session = Session {
        user: Some(user),
        ..Session::default()
    };
    let id = state.sessions.insert(session);
    Ok((
        jar.add(session_cookie(id, state.secure_cookies)),
        Redirect::to("/"),
    ))
}

async fn sign_in_user(
    state: &SharedState,
    code: &str,
    transaction: &LoginTransaction,
) -> Result<User, PageError> {
    let failed = |error: &dyn std::fmt::Display| {
        tracing::error!(%error, "the sign-in callback failed");
        PageError::sign_in(
            StatusCode::BAD_GATEWAY,
            "Sign-in failed",
            format!("The shop could not complete the sign-in: {error}."),
        )
    };

    let tokens = state
        .oidc
        .exchange_code(code, &transaction.pkce_verifier)
        .await
        .map_err(|error| failed(&error))?;
    let id_token = tokens
        .id_token
        .ok_or(OidcError::MissingToken("ID token"))
        .map_err(|error| failed(&error))?;
    let claims = state
        .oidc
        .verify_id_token(&id_token, &transaction.nonce)
        .await
        .map_err(|error| failed(&error))?;

    let username = claims
        .preferred_username
        .unwrap_or_else(|| claims.sub.clone());
    let name = claims.name.unwrap_or_else(|| username.clone());
    Ok(User {
        sub: claims.sub,
        username,
        name,
        id_token,
        refresh_token: tokens.refresh_token,
    })
}

/// Ends the shop session, then ends the Keycloak session through
/// RP-initiated logout with `id_token_hint`, so that the next sign-in requires
/// a password again.
pub async fn logout(
    State(state): State<SharedState>,
    jar: CookieJar,
    headers: HeaderMap,
) -> Result<(CookieJar, Redirect), PageError> {
    check_same_origin(&headers, &state.public_origin)
        .map_err(|(status, message)| PageError::home(status, "Sign-out rejected", message))?;

    let user = session_id(&jar)
        .and_then(|id| state.sessions.remove(&id))
        .and_then(|session| session.user);
    let jar = jar.remove(removal_cookie());
    let Some(user) = user else {
        return Ok((jar, Redirect::to("/")));
    };
    tracing::info!(sub = %user.sub, username = %user.username, "user signed out");

    match state
        .oidc
        .end_session_url(&user.id_token, &state.public_url)
        .await
    {
        Some(url) => Ok((jar, Redirect::to(url.as_str()))),
        None => {
            tracing::warn!(
                "the identity provider has no end_session_endpoint, so its session stays"
            );
            Ok((jar, Redirect::to("/")))
        }
    }
}

#[derive(Deserialize)]
pub struct WhoamiQuery {
    refresh: Option<String>,
}

/// Returns `{"username", "sub"}` of the signed-in user. With `refresh=1` it
/// first runs a refresh-token grant and reads both from the new access token,
/// which shows who the identity provider's session belongs to now.
pub async fn whoami(
    State(state): State<SharedState>,
    jar: CookieJar,
    Query(query): Query<WhoamiQuery>,
) -> Result<Json<Value>, ApiError> {
    let id = session_id(&jar).ok_or_else(ApiError::not_signed_in)?;
    let (username, sub, refresh_token) = state
        .sessions
        .with(&id, |session| {
            session.user.as_ref().map(|user| {
                (
                    user.username.clone(),
                    user.sub.clone(),
                    user.refresh_token.clone(),
                )
            })
        })
        .flatten()
        .ok_or_else(ApiError::not_signed_in)?;

    if !matches!(query.refresh.as_deref(), Some("1" | "true")) {
        return Ok(Json(json!({"username": username, "sub": sub})));
    }

    let refresh_token = refresh_token.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "The session has no refresh token. Sign in again.",
        )
    })?;
    let tokens = state.oidc.refresh(&refresh_token).await.map_err(|error| {
        tracing::warn!(%error, %sub, "the refresh-token grant failed");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("The refresh-token grant at the identity provider failed: {error}"),
        )
    })?;
    let claims: AccessTokenClaims = decode_jwt_payload(&tokens.access_token).map_err(|error| {
        tracing::error!(%error, "the refreshed access token cannot be read");
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("The refreshed access token cannot be read: {error}"),
        )
    })?;

    state.sessions.with(&id, |session| {
        if let Some(user) = session.user.as_mut() {
            if let Some(refresh_token) = tokens.refresh_token {
                user.refresh_token = Some(refresh_token);
            }
            if let Some(id_token) = tokens.id_token {
                user.id_token = id_token;
            }
        }
    });
    Ok(Json(
        json!({"username": claims.preferred_username, "sub": claims.sub}),
    ))
}
