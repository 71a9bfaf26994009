//! In-memory sessions, keyed by a random id in an `HttpOnly`, `SameSite=Lax`
//! cookie. Demo only: a restart signs everyone out and clears the refunds.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde_json::Value;

use crate::oidc::{LoginTransaction, random_token};

pub const SESSION_COOKIE: &str = "shop_session";

/// Time after which an unused session is dropped.
const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(8 * 60 * 60);

/// Time that a user has to finish signing in at the identity provider.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// Number of approval requests that one session may remember.
pub const MAX_APPROVALS_PER_SESSION: usize = 100;

/// Signed-in user. It has no `Debug` because it contains tokens.
pub struct User {
    pub sub: String,
    pub username: String,
    pub name: String,
    /// Kept for RP-initiated logout (`id_token_hint`).
    pub id_token: String,
    pub refresh_token: Option<String>,
}

/// An approval request that the shop created, with the payload that its
/// consume call must send. The browser only ever names the approval id.
pub struct RememberedApproval {
    pub order_id: String,
    pub payload: Value,
}

pub struct PendingLogin {
    pub transaction: LoginTransaction,
    pub started: Instant,
}

#[derive(Default)]
pub struct Session {
    pub login: Option<PendingLogin>,
    pub user: Option<User>,
    pub approvals: HashMap<String, RememberedApproval>,
    /// Orders refunded in this session. Each sign-in starts with fresh demo orders.
    pub refunded_orders: HashSet<String>,
}

struct Entry {
    session: Session,
    last_used: Instant,
}

#[derive(Default)]
pub struct SessionStore {
    entries: Mutex<HashMap<String, Entry>>,
}

impl SessionStore {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while the lock was held cannot leave a session half-written
        // in a way that matters for the demo, so a poisoned lock is reused.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores a new session and returns its id.
    pub fn insert(&self, session: Session) -> String {
        let id = random_token();
        let now = Instant::now();
        let mut entries = self.lock();

        entries.retain(|_, entry| now.duration_since(entry.last_used) < SESSION_IDLE_TIMEOUT);
        entries.insert(
            id.clone(),
            Entry {
                session,
                last_used: now,
            },
        );
        id
    }

    /// Runs `action` on the session with this id, or returns `None` when it does not exist.
    pub fn with<R>(&self, id: &str, action: impl FnOnce(&mut Session) -> R) -> Option<R> {
        let now = Instant::now();
        let mut entries = self.lock();
        let entry = entries.get_mut(id)?;
        if now.duration_since(entry.last_used) >= SESSION_IDLE_TIMEOUT {
            entries.remove(id);
            return None;
        }
        entry.last_used = now;
        Some(action(&mut entry.session))
    }

    pub fn remove(&self, id: &str) -> Option<Session> {
        self.lock().remove(id).map(|entry| entry.session)
    }
}

pub fn session_id(jar: &CookieJar) -> Option<String> {
    jar.get(SESSION_COOKIE)
        .map(|cookie| cookie.value().to_owned())
}

pub fn session_cookie(id: String, secure: bool) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, id))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build()
}

pub fn removal_cookie() -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, "")).path("/").build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_found_by_id() {
        let store = SessionStore::default();
        let id = store.insert(Session::default());

        assert_eq!(
            store.with(&id, |session| session.user.is_none()),
            Some(true)
        );
        assert!(store.with("unknown", |_| ()).is_none());
    }

    #[test]
    fn removed_session_gone() {
        let store = SessionStore::default();
        let id = store.insert(Session::default());

        assert!(store.remove(&id).is_some());
        assert!(store.with(&id, |_| ()).is_none());
    }

    #[test]
    fn session_ids_differ() {
        let store = SessionStore::default();
        let first = store.insert(Session::default());
        let second = store.insert(Session::default());

        assert_ne!(first, second);
        assert_eq!(first.len(), 43);
    }

    #[test]
    fn cookie_is_http_only_and_lax() {
        let cookie = session_cookie("id".to_owned(), false);

        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(cookie.path(), Some("/"));
    }
}
