//! `GET /api/v1/approvals/{id}/events?token=…`: the status as Server-Sent
//! Events.
//!
//! The stream sends the current status on connect and each change after it,
//! and ends after a final status. It learns of changes from decisions made
//! in this process and, as a fallback for changes made elsewhere and for
//! expiry, by re-reading the request every `poll_interval`. It also ends
//! when the server shuts down, so open streams do not hold up shutdown.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::{broadcast, watch};

use super::AppState;
use super::extract::ApiPath;
use super::problem::{Problem, ProblemBody};
use crate::approvals::{ApprovalId, ApprovalService, Status};

const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// `GET /api/v1/approvals/{id}/events`
#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}/events",
    tag = super::api::TAG,
    summary = "Follow the status as Server-Sent Events",
    description = "Use the `events_url` from create as it is; no API key is needed. Each event is `event: status` with `data: {\"id\": \"...\", \"status\": \"...\"}`. The current status is sent on connect and every change after it; the stream ends after `approved`, `rejected` or `expired`. `Access-Control-Allow-Origin` is the request's registered origin.",
    params(
        ("id" = String, Path, description = "The id returned by create."),
        ("token" = String, Query, description = "The events token from `events_url`."),
    ),
    security(()),
    responses(
        (status = 200, description = "The status stream.", body = String, content_type = "text/event-stream"),
        (status = 404, description = "`not_found`: no request with this id, or a missing or wrong token.", body = ProblemBody, content_type = "application/problem+json"),
        (status = 503, description = "`storage_unavailable` or `request_timeout`: try again later.", body = ProblemBody, content_type = "application/problem+json"),
    )
)]
pub async fn stream_status(
    State(state): State<AppState>,
    ApiPath(id): ApiPath,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    let token = query
        .as_deref()
        .and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value.into_owned())
        })
        .unwrap_or_default();

    // A missing or wrong token gets the same response as an unknown id.
    let approval = state.approvals.get_with_events_token(&id, &token).await?;

    let status = approval.status(state.approvals.now());
    let watcher = Watcher {
        service: state.approvals.clone(),
        id: approval.id.clone(),
        last: None,
        first: Some(status),
        changes: state.approvals.subscribe(),
        shutdown: state.shutdown.subscribe(),
        poll_interval: state.events_poll_interval,
    };

    let sse =
        Sse::new(status_events(watcher)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL));
    let mut response = sse.into_response();
    let headers = response.headers_mut();
    // CORS for the registered origin only: EventSource sends a simple GET,
    // so no preflight is involved.
    if let Ok(origin) = HeaderValue::from_str(&approval.origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

struct Watcher {
    service: ApprovalService,
    id: ApprovalId,
    last: Option<Status>,
    first: Option<Status>,
    changes: broadcast::Receiver<ApprovalId>,
    shutdown: watch::Receiver<bool>,
    poll_interval: Duration,
}

fn status_event(id: &ApprovalId, status: Status) -> Event {
    let data = json!({ "id": id, "status": status }).to_string();
    Event::default().event("status").data(data)
}

fn status_events(watcher: Watcher) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(Some(watcher), |watcher| async move {
        let mut watcher = watcher?;

        if let Some(status) = watcher.first.take() {
            watcher.last = Some(status);
            let event = status_event(&watcher.id, status);
            let next = (!status.is_final()).then_some(watcher);
            return Some((Ok(event), next));
        }

        let status = watcher.next_change().await?;
        watcher.last = Some(status);
        let event = status_event(&watcher.id, status);
        let next = (!status.is_final()).then_some(watcher);
        Some((Ok(event), next))
    })
}

impl Watcher {
    /// Waits until the status differs from the last one sent. Returns `None`
    /// on shutdown or when the request can no longer be read.
    async fn next_change(&mut self) -> Option<Status> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            tokio::select! {
                received = self.changes.recv() => match received {
                    Ok(id) if id != self.id => continue,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = tokio::time::sleep(self.poll_interval) => {}
                _ = self.shutdown.changed() => return None,
            }

            let status = match self.service.get(&self.id).await {
                Ok(approval) => approval.status(self.service.now()),
                Err(error) => {
                    tracing::warn!(approval_id = %self.id, error = %error, "status stream stopped: cannot read the approval request");
                    return None;
                }
            };
            if Some(status) != self.last {
                return Some(status);
            }
        }
    }
}
