//! The account's server-sent events, and whether one calls for a sync.

use serde::Deserialize;
use uuid::Uuid;

use super::super::Session;
use super::super::error::{Error, Result};
use crate::sync::client;

/// One event from the account's server: its type and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerEvent {
    pub event: String,
    pub data: String,
}

/// The account's server-sent event stream ([`Session::events`]).
pub struct EventStream(client::EventStream);

impl EventStream {
    /// The next event; `None` when the server closed the stream.
    pub async fn next(&mut self) -> Option<Result<ServerEvent>> {
        let next = self.0.next().await?;
        Some(
            next.map(|e| ServerEvent {
                event: e.event,
                data: e.data,
            })
            .map_err(Error::from),
        )
    }
}

impl Session {
    /// Opens the account's server-sent event stream.
    ///
    /// # Errors
    /// Not logged in, unreachable.
    pub async fn events(&mut self) -> Result<EventStream> {
        let stream = self.authed(|c| async move { c.events().await }).await?;
        Ok(EventStream(stream))
    }

    /// Whether a server event says a vault moved past what this device has
    /// (`ready` on connect, `vault` after a push).
    pub async fn event_needs_sync(&mut self, ev: &ServerEvent) -> bool {
        #[derive(Deserialize)]
        struct Head {
            vault_id: Uuid,
            head: i64,
        }
        #[derive(Deserialize)]
        struct Ready {
            vaults: Vec<Head>,
        }
        let heads = match ev.event.as_str() {
            "ready" => serde_json::from_str::<Ready>(&ev.data)
                .map(|r| r.vaults)
                .ok(),
            "vault" => serde_json::from_str::<Head>(&ev.data).map(|h| vec![h]).ok(),
            _ => None,
        };
        let Some(heads) = heads else { return false };
        for h in heads {
            let known = self.vaults.iter().any(|v| v.id == h.vault_id);
            let cursor = self
                .store
                .sync_state(h.vault_id)
                .await
                .map_or(0, |s| s.cursor);
            if !known || h.head != cursor {
                return true;
            }
        }
        false
    }
}
