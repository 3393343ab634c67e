//! The event bus: how every server node learns that a vault moved, so that
//! `GET /v1/events` (api/events.rs) can tell the account's devices.
//!
//! A push that applied changes publishes a [`VaultChanged`]. It goes at once
//! to this node's subscribers (a tokio broadcast channel). With Redis
//! configured it is also `PUBLISH`ed on `{prefix}events`; one subscriber
//! task per node receives what the *other* nodes published (each message
//! names its node, so a node never delivers its own twice) and broadcasts it
//! locally. Each event stream then keeps its own account's changes.
//!
//! Delivery is best effort, and clients must not rely on it alone: an event
//! can be lost (Redis unreachable, a stream too slow to keep up). Whenever
//! the bus knows it may have lost some, it says so with [`Notice::Resync`],
//! and the streams send their device fresh heads of every vault.
//!
//! What travels holds ids and revision numbers only: never an item id,
//! never anything a client encrypted.

#[cfg(feature = "redis")]
mod redis;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

/// How many notices a slow subscriber may fall behind before it is told to
/// resync.
const LOCAL_CAPACITY: usize = 1024;

/// A push applied changes to a vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultChanged {
    /// The vault's owner (streams filter on it; never sent to devices).
    pub account_id: Uuid,
    pub vault_id: Uuid,
    /// The vault's head revision after the push.
    pub head: i64,
    /// The device that pushed.
    pub device_id: Uuid,
}

/// What subscribers receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Vault(VaultChanged),
    /// Changes may have been missed (e.g. the Redis subscription was lost
    /// for a while): subscribers should re-read the heads they care about.
    Resync,
}

/// The event bus of one server node. Cheap to share behind an `Arc`.
pub struct Bus {
    local: broadcast::Sender<Notice>,
    closed: watch::Sender<bool>,
    #[cfg(feature = "redis")]
    remote: Option<redis::Remote>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("kind", &self.kind())
            .field("subscribers", &self.local.receiver_count())
            .finish_non_exhaustive()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Self::local()
    }
}

impl Bus {
    /// A bus for one node only.
    #[must_use]
    pub fn local() -> Self {
        Self {
            local: broadcast::channel(LOCAL_CAPACITY).0,
            closed: watch::channel(false).0,
            #[cfg(feature = "redis")]
            remote: None,
        }
    }

    /// A bus shared through Redis by every node with the same `prefix`:
    /// publishes on `conn` (the cache's shared connection) and subscribes
    /// to `{prefix}events` on a connection of its own, which a background
    /// task keeps alive (reconnecting with backoff) until the bus is
    /// dropped or closed.
    ///
    /// # Errors
    /// Redis cannot be reached for the first subscription (the message
    /// never shows the URL's password).
    #[cfg(feature = "redis")]
    pub async fn redis(
        url: &str,
        prefix: &str,
        conn: ::redis::aio::ConnectionManager,
    ) -> crate::cache::CacheResult<Self> {
        let mut bus = Self::local();
        let remote = redis::Remote::start(
            url,
            &format!("{prefix}events"),
            conn,
            bus.local.clone(),
            bus.closed.subscribe(),
        )
        .await?;
        bus.remote = Some(remote);
        Ok(bus)
    }

    /// `memory` or `redis`.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        #[cfg(feature = "redis")]
        if self.remote.is_some() {
            return "redis";
        }
        "memory"
    }

    /// Tells every subscriber, on this node at once and on the others
    /// through Redis. Never waits and never fails: a message that cannot
    /// be sent is logged and dropped.
    pub fn publish(&self, change: VaultChanged) {
        // An error only means that nobody on this node listens.
        let _ = self.local.send(Notice::Vault(change));
        #[cfg(feature = "redis")]
        if let Some(remote) = &self.remote {
            remote.publish(change);
        }
    }

    /// Notices from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.local.subscribe()
    }

    /// Shutting down: every event stream ends and the Redis subscriber
    /// stops. Publishing still works (pushes that are draining).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Watches for [`Bus::close`]; see [`closing`].
    #[must_use]
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

/// Resolves once the bus is closed (or gone).
pub async fn closing(closed: &mut watch::Receiver<bool>) {
    loop {
        if *closed.borrow_and_update() {
            return;
        }
        if closed.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn change(head: i64) -> VaultChanged {
        VaultChanged {
            account_id: Uuid::now_v7(),
            vault_id: Uuid::now_v7(),
            head,
            device_id: Uuid::now_v7(),
        }
    }

    #[tokio::test]
    async fn subscribers_get_what_is_published_after_they_subscribe() {
        let bus = Bus::local();
        assert_eq!(bus.kind(), "memory");
        bus.publish(change(1)); // nobody listens: fine
        let mut a = bus.subscribe();
        let mut b = bus.subscribe();
        let c = change(2);
        bus.publish(c);
        assert_eq!(a.recv().await.expect("a"), Notice::Vault(c));
        assert_eq!(b.recv().await.expect("b"), Notice::Vault(c));
        assert!(a.try_recv().is_err(), "nothing else");
    }

    #[tokio::test]
    async fn closing_resolves_for_early_and_late_watchers() {
        let bus = Bus::local();
        let mut early = bus.closed();
        let pending = tokio::time::timeout(Duration::from_millis(20), closing(&mut early)).await;
        assert!(pending.is_err(), "open bus");
        bus.close();
        closing(&mut early).await;
        closing(&mut bus.closed()).await;
        let mut orphan = Bus::local().closed();
        closing(&mut orphan).await;
    }
}
