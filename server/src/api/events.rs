//! `GET /v1/events`: server-sent events that tell a device when a vault of
//! its account moved, so it can pull at once instead of polling.
//!
//! The stream opens with `ready` (every vault's head), then sends `vault`
//! each time a push (through any node) applies changes, and a keep-alive
//! comment every `events_keepalive_secs`. At each keep-alive the access
//! token is checked again: once it stops being valid (expired, refreshed,
//! logged out, device revoked) the stream ends, and the client reconnects
//! with its current token. Server shutdown ends every stream at once.
//!
//! Events say which vault moved and to which revision, and which device
//! pushed: no item ids and nothing the client encrypted.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::response::sse::{Event, Sse};
use futures::Stream;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use uuid::Uuid;

use super::types::{ReadyEvent, VaultEvent, VaultHead};
use crate::auth::{self, AuthDevice};
use crate::error::{ApiError, ApiResult};
use crate::events::{Notice, VaultChanged, closing};
use crate::metrics::OpenStream;
use crate::state::AppState;

/// Tells nginx-like proxies not to buffer the stream.
static ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");

/// Server-sent events about the account's vaults.
///
/// `event: ready` first (data: `ReadyEvent`), then `event: vault` (data:
/// `VaultEvent`) whenever a push applies changes to one of the account's
/// vaults, and a `: keep-alive` comment every `events_keepalive_secs`
/// (15 s by default). `ready` comes again when the server may have missed
/// changes. The stream ends when the access token stops being valid (the
/// client reconnects with a fresh one) and when the server shuts down.
#[utoipa::path(get, path = "/v1/events", tag = "events", security(("bearer" = [])),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "an endless stream of `ready` (ReadyEvent) and `vault` (VaultEvent) events"),
        (status = 401, body = super::types::Problem)))]
pub async fn stream(
    State(state): State<AppState>,
    who: AuthDevice,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let access_hash = auth::bearer_hash(&headers)?;
    // Subscribe before reading the heads: a push in between is then sent
    // after `ready` instead of being lost.
    let notices = state.events.subscribe();
    let closed = state.events.closed();
    let (ready, shared) = ready(&state, &who).await?;
    let every = Duration::from_secs(state.settings.events_keepalive_secs.max(1));
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tracing::debug!(account = %who.account_id, device = %who.device_id, "event stream opened");
    let feed = Feed {
        _open: state.metrics.event_stream_opened(),
        state,
        who,
        access_hash,
        notices,
        closed,
        tick,
        first: Some(ready),
        shared,
    };
    Ok((
        [(ACCEL_BUFFERING.clone(), HeaderValue::from_static("no"))],
        Sse::new(events(feed)),
    ))
}

/// One device's stream.
struct Feed {
    state: AppState,
    who: AuthDevice,
    access_hash: Vec<u8>,
    notices: Receiver<Notice>,
    closed: watch::Receiver<bool>,
    tick: Interval,
    first: Option<Event>,
    /// The vaults other accounts share with this one, by (owner, vault):
    /// their changes are this stream's too. Re-read with every keep-alive,
    /// so that a vault accepted (or left) meanwhile is heard (or not).
    shared: HashSet<(Uuid, Uuid)>,
    _open: OpenStream,
}

fn events(feed: Feed) -> impl Stream<Item = Result<Event, Infallible>> + Send {
    futures::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok(event), feed))
    })
}

impl Feed {
    /// The next event, or `None` to end the stream.
    async fn next(&mut self) -> Option<Event> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        loop {
            tokio::select! {
                biased;
                () = closing(&mut self.closed) => return None,
                notice = self.notices.recv() => match notice {
                    Ok(Notice::Vault(change))
                        if change.account_id == self.who.account_id
                            || self.shared.contains(&(change.account_id, change.vault_id)) =>
                    {
                        if let Some(event) = vault(&change) {
                            return Some(event);
                        }
                    }
                    Ok(Notice::Vault(_)) => {}
                    // Changes may have gone by unseen: send every head again.
                    Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => {
                        match ready(&self.state, &self.who).await {
                            Ok((event, shared)) => {
                                self.shared = shared;
                                return Some(event);
                            }
                            Err(e) => tracing::warn!(error = %e, "event stream: cannot re-read the vault heads"),
                        }
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = self.tick.tick() => {
                    if let Ok(shared) = shared_with(&self.state, &self.who).await {
                        self.shared = shared;
                    }
                    if self.still_signed_in().await {
                        return Some(Event::default().comment("keep-alive"));
                    }
                    tracing::debug!(device = %self.who.device_id, "event stream closed: the access token is no longer valid");
                    return None;
                }
            }
        }
    }

    /// Whether the stream's access token still belongs to a live session.
    /// A cache or database hiccup is not a reason to drop the stream.
    async fn still_signed_in(&self) -> bool {
        match auth::live_session(&self.state, &self.access_hash).await {
            Ok(session) => session.id == self.who.session_id,
            Err(ApiError::Unauthorized) => false,
            Err(e) => {
                // Debug only: during an outage every stream would say it.
                tracing::debug!(error = %e, "event stream: cannot re-check the session");
                true
            }
        }
    }
}

/// The vaults shared with the account that it accepted, by (owner, vault).
async fn shared_with(state: &AppState, who: &AuthDevice) -> ApiResult<HashSet<(Uuid, Uuid)>> {
    Ok(state
        .store
        .shared_with(who.account_id)
        .await?
        .into_iter()
        .filter(|s| s.membership.status == "active")
        .map(|s| (s.vault.account_id, s.vault.id))
        .collect())
}

/// `event: ready` with the head of every vault of the account and of every
/// vault shared with it; and the latter by (owner, vault).
async fn ready(state: &AppState, who: &AuthDevice) -> ApiResult<(Event, HashSet<(Uuid, Uuid)>)> {
    let mut vaults: Vec<VaultHead> = state
        .store
        .vaults(who.account_id)
        .await?
        .into_iter()
        .map(|v| VaultHead {
            vault_id: v.id,
            head: v.revision,
        })
        .collect();
    let shared = state
        .store
        .shared_with(who.account_id)
        .await?
        .into_iter()
        .filter(|s| s.membership.status == "active")
        .collect::<Vec<_>>();
    vaults.extend(shared.iter().map(|s| VaultHead {
        vault_id: s.vault.id,
        head: s.vault.revision,
    }));
    let set = shared
        .iter()
        .map(|s| (s.vault.account_id, s.vault.id))
        .collect();
    let event = json_event("ready", &ReadyEvent { vaults })
        .map_err(|e| ApiError::Internal(format!("cannot encode the ready event: {e}")))?;
    Ok((event, set))
}

/// `event: vault` for one change (ids and numbers: it always encodes).
fn vault(change: &VaultChanged) -> Option<Event> {
    let data = VaultEvent {
        vault_id: change.vault_id,
        head: change.head,
        device_id: change.device_id,
    };
    json_event("vault", &data).ok()
}

fn json_event(name: &str, data: &impl serde::Serialize) -> serde_json::Result<Event> {
    Ok(Event::default()
        .event(name)
        .data(serde_json::to_string(data)?))
}
