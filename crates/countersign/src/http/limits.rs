//! Rate limits and the request timeout.
//!
//! Creating approval requests is limited per API key. The popup's sign-in
//! start, callback and decision are limited per client address, because
//! each of them writes to the database or calls the IdP before anyone is
//! authenticated. The client address is the TCP peer, or the address in
//! `X-Forwarded-For` when the peer is one of `server.trusted_proxies`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

use super::AppState;
use super::problem::Problem;
use super::rejection::reject;
use crate::codes::ErrorCode;
use crate::config::LimitSettings;

/// How often the keyed limiters drop the state of keys that are back to a
/// full burst, so that the maps do not grow with every address ever seen.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60);

/// The keyed rate limiters of the service.
#[derive(Debug)]
pub struct RateLimits {
    create: DefaultKeyedRateLimiter<String>,
    popup: DefaultKeyedRateLimiter<IpAddr>,
}

impl RateLimits {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            create: RateLimiter::keyed(per_minute(settings.create_per_minute)),
            popup: RateLimiter::keyed(per_minute(settings.popup_per_minute)),
        }
    }

    /// Counts one create request of the API key `key_name`.
    pub fn check_create(&self, key_name: &str) -> Result<(), Problem> {
        let key = key_name.to_owned();
        check(&self.create, &key).map_err(|wait| {
            Problem::new(
                ErrorCode::RateLimited,
                format!(
                    "this API key created too many approval requests; retry after {wait} seconds"
                ),
            )
            .with_retry_after(wait)
        })
    }

    /// Counts one popup request from `client`; returns the seconds to wait
    /// when the limit is reached.
    pub fn check_popup(&self, client: IpAddr) -> Result<(), u64> {
        check(&self.popup, &limit_key(client))
    }

    /// Drops the state of keys whose limit is back to a full burst.
    pub fn retain_recent(&self) {
        self.create.retain_recent();
        self.create.shrink_to_fit();
        self.popup.retain_recent();
        self.popup.shrink_to_fit();
    }

    /// Returns the number of keys with stored state, for tests.
    pub fn tracked_keys(&self) -> usize {
        self.create.len() + self.popup.len()
    }
}

fn per_minute(count: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(count).unwrap_or(NonZeroU32::MIN))
}

/// Counts one request for `key`; on rejection returns the whole seconds
/// until the next request would pass (at least 1).
fn check<K>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), u64>
where
    K: std::hash::Hash + Eq + Clone,
{
    limiter.check_key(key).map_err(|not_until| {
        let wait = not_until.wait_time_from(limiter.clock().now());
        let rounded_up = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        rounded_up.max(1)
    })
}

/// Keys IPv6 clients by their /64 network, because one host usually gets
/// a whole /64 and could otherwise pick a fresh address per request.
fn limit_key(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V4(_) => client,
        IpAddr::V6(address) => {
            let segments = address.segments();
            IpAddr::V6(Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            ))
        }
    }
}

/// Starts a task that cleans the limiters every `CLEANUP_INTERVAL` until
/// the limiters are dropped. Without a Tokio runtime nothing is started, and
/// the maps are then only bounded by the number of clients.
pub fn spawn_cleanup(limits: &Arc<RateLimits>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let limits: Weak<RateLimits> = Arc::downgrade(limits);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(CLEANUP_INTERVAL);
        interval.tick().await;
        loop {
            interval.tick().await;
            let Some(limits) = limits.upgrade() else {
                return;
            };
            limits.retain_recent();
        }
    });
}

/// Returns the address of the client that sent a request.
///
/// `X-Forwarded-For` is read only when the TCP peer is a trusted proxy. The
/// header is then walked from the right, skipping trusted proxies, and the
/// first other address is the client. An entry that is not an IP address
/// ends the walk at the proxy that added it, so a client cannot choose its
/// own key by sending garbage. Without a peer address (requests that did
/// not come through a TCP listener, as in router tests) this returns `None`.
pub fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |address: &IpAddr| trusted.iter().any(|network| network.contains(address));
    if !is_trusted(&peer) {
        return Some(peer);
    }

    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();

    let mut client = peer;
    for entry in forwarded.iter().rev() {
        let Ok(address) = entry.parse::<IpAddr>() else {
            return Some(client);
        };
        client = address.to_canonical();
        if !is_trusted(&client) {
            return Some(client);
        }
    }
    Some(client)
}

/// Middleware for the popup routes that start a sign-in, take the IdP's
/// callback or record a decision: limits them per client address.
pub async fn limit_popup(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let trusted = &state.settings.server.trusted_proxies;
    // Requests without a peer address share one key.
    let client = client_address(peer, request.headers(), trusted)
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));

    match state.limits.check_popup(client) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            let detail =
                format!("too many sign-in requests from {client}; retry after {wait} seconds");
            reject(
                request.uri().path(),
                Problem::new(ErrorCode::RateLimited, detail).with_retry_after(wait),
            )
        }
    }
}

/// Middleware that ends a request whose response head is not ready within
/// `limits.request_timeout_seconds`. The body of a response (a status
/// stream) is not limited. A dropped handler rolls back its open database
/// transaction, so a timed-out request normally changes nothing.
pub async fn limit_time(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let seconds = timeout.as_secs();
            reject(
                &path,
                Problem::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request took longer than {seconds} seconds and was stopped; try again"
                    ),
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_header() {
        let headers = forwarded(&["203.0.113.9"]);

        let client = client_address(Some(ip("198.51.100.7")), &headers, &[net("10.0.0.0/8")]);

        assert_eq!(client, Some(ip("198.51.100.7")));
    }

    #[test]
    fn no_trusted_proxies_ignores_forwarded_header() {
        let headers = forwarded(&["203.0.113.9"]);

        let client = client_address(Some(ip("10.0.0.2")), &headers, &[]);

        assert_eq!(client, Some(ip("10.0.0.2")));
    }

    #[test]
    fn trusted_peer_gives_rightmost_untrusted_entry() {
        let headers = forwarded(&["1.1.1.1, 203.0.113.9", "10.0.0.3"]);

        let client = client_address(Some(ip("10.0.0.2")), &headers, &[net("10.0.0.0/8")]);

        assert_eq!(client, Some(ip("203.0.113.9")));
    }

    #[test]
    fn garbage_entry_stops_at_its_proxy() {
        let headers = forwarded(&["203.0.113.9, not-an-address"]);

        let client = client_address(Some(ip("10.0.0.2")), &headers, &[net("10.0.0.0/8")]);

        assert_eq!(client, Some(ip("10.0.0.2")));
    }

    #[test]
    fn only_trusted_entries_give_leftmost() {
        let headers = forwarded(&["10.0.0.9, 10.0.0.8"]);

        let client = client_address(Some(ip("10.0.0.2")), &headers, &[net("10.0.0.0/8")]);

        assert_eq!(client, Some(ip("10.0.0.9")));
    }

    #[test]
    fn mapped_ipv4_peer_matches_ipv4_network() {
        let headers = forwarded(&["203.0.113.9"]);

        let client = client_address(Some(ip("::ffff:10.0.0.2")), &headers, &[net("10.0.0.0/8")]);

        assert_eq!(client, Some(ip("203.0.113.9")));
    }

    #[test]
    fn missing_peer_gives_none() {
        assert_eq!(client_address(None, &HeaderMap::new(), &[]), None);
    }

    #[test]
    fn ipv6_clients_share_their_64_network() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn cleanup_drops_replenished_keys() {
        let limits = RateLimits::new(&LimitSettings {
            request_timeout: Duration::from_secs(30),
            create_per_minute: 100_000,
            popup_per_minute: 100_000,
        });
        for last in 0..50u8 {
            limits.check_popup(IpAddr::from([192, 0, 2, last])).unwrap();
        }
        limits.check_create("shop").unwrap();
        assert_eq!(limits.tracked_keys(), 51);

        // At 100000 a minute one request is replenished every 0.6 ms.
        std::thread::sleep(Duration::from_millis(20));
        limits.retain_recent();

        assert_eq!(limits.tracked_keys(), 0);
    }

    #[test]
    fn popup_limit_rejects_after_burst() {
        let limits = RateLimits::new(&LimitSettings {
            request_timeout: Duration::from_secs(30),
            create_per_minute: 1,
            popup_per_minute: 2,
        });
        let client = ip("192.0.2.1");

        assert_eq!(limits.check_popup(client), Ok(()));
        assert_eq!(limits.check_popup(client), Ok(()));
        let wait = limits.check_popup(client).unwrap_err();

        assert!((1..=30).contains(&wait), "{wait}");
        assert_eq!(limits.check_popup(ip("192.0.2.2")), Ok(()));
    }
}
