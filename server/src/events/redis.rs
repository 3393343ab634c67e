//! The bus across nodes: Redis pub/sub on one channel, `{prefix}events`.
//!
//! - Publishing goes through a small queue to one task that `PUBLISH`es on
//!   the cache's shared connection, in order, so a push never waits for
//!   Redis (a full queue drops the message, with a warning).
//! - Receiving is one task per node on a connection of its own (a
//!   subscribed connection can do nothing else). It checks the connection
//!   with a `PING` now and then, and when the connection is lost it
//!   reconnects with exponential backoff, then announces
//!   [`Notice::Resync`]: whatever was published meanwhile is lost.
//!
//! A message is `{"node": …, "account_id": …, "vault_id": …, "head": …,
//! "device_id": …}` in JSON; a node skips its own (it delivered them
//! locally when it published).

use std::time::Duration;

use ::redis::aio::{ConnectionManager, PubSub};
use ::redis::{Client, RedisError, cmd};
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, sleep, timeout};
use uuid::Uuid;

use super::{Notice, VaultChanged, closing};
use crate::cache::{CacheError, CacheResult, redact_redis_url, scrub_password};

/// Opening and subscribing a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often an idle subscription is checked.
const PING_EVERY: Duration = Duration::from_secs(10);
/// How long a `PING` may take before the connection counts as lost.
const PING_TIMEOUT: Duration = Duration::from_secs(3);
/// First pause before resubscribing; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Messages waiting to be published.
const PUBLISH_QUEUE: usize = 1024;

/// One message on the channel.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    /// The node that published it.
    node: Uuid,
    #[serde(flatten)]
    change: VaultChanged,
}

/// The Redis half of a [`super::Bus`]; its tasks end when it is dropped.
pub(super) struct Remote {
    node: Uuid,
    queue: mpsc::Sender<String>,
}

impl Remote {
    pub(super) async fn start(
        url: &str,
        channel: &str,
        conn: ConnectionManager,
        local: broadcast::Sender<Notice>,
        closed: watch::Receiver<bool>,
    ) -> CacheResult<Self> {
        let unavailable = |e: String| {
            CacheError::Unavailable(format!(
                "redis at {} (events): {}",
                redact_redis_url(url),
                scrub_password(&e, url)
            ))
        };
        let client = Client::open(url).map_err(|e| unavailable(e.to_string()))?;
        let first = subscribe(&client, channel).await.map_err(unavailable)?;
        let node = Uuid::now_v7();
        tokio::spawn(listen(Listener {
            client,
            channel: channel.to_owned(),
            url: url.to_owned(),
            node,
            local,
            closed,
            first: Some(first),
        }));
        let (queue, outbox) = mpsc::channel(PUBLISH_QUEUE);
        tokio::spawn(publish_all(
            conn,
            channel.to_owned(),
            url.to_owned(),
            outbox,
        ));
        Ok(Self { node, queue })
    }

    pub(super) fn publish(&self, change: VaultChanged) {
        let wire = Wire {
            node: self.node,
            change,
        };
        let Ok(json) = serde_json::to_string(&wire) else {
            return;
        };
        match self.queue.try_send(json) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!(
                    "event bus: the Redis publish queue is full; a vault change is dropped"
                );
            }
        }
    }
}

/// A connection subscribed to `channel`.
async fn subscribe(client: &Client, channel: &str) -> Result<PubSub, String> {
    let open = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channel).await?;
        Ok::<_, RedisError>(pubsub)
    };
    match timeout(CONNECT_TIMEOUT, open).await {
        Ok(Ok(pubsub)) => Ok(pubsub),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer in {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// Publishes queued messages in order until the bus is dropped.
async fn publish_all(
    mut conn: ConnectionManager,
    channel: String,
    url: String,
    mut outbox: mpsc::Receiver<String>,
) {
    while let Some(json) = outbox.recv().await {
        let sent: Result<i64, RedisError> = cmd("PUBLISH")
            .arg(&channel)
            .arg(&json)
            .query_async(&mut conn)
            .await;
        if let Err(e) = sent {
            tracing::warn!(
                error = %scrub_password(&e.to_string(), &url),
                "event bus: cannot publish a vault change to Redis"
            );
        }
    }
}

struct Listener {
    client: Client,
    channel: String,
    /// For scrubbing error messages only.
    url: String,
    node: Uuid,
    local: broadcast::Sender<Notice>,
    closed: watch::Receiver<bool>,
    /// The subscription made at start-up.
    first: Option<PubSub>,
}

/// Relays other nodes' messages until the bus closes, resubscribing with
/// backoff whenever the subscription is lost.
async fn listen(mut l: Listener) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let pubsub = match l.first.take() {
            Some(pubsub) => pubsub,
            None => {
                tokio::select! {
                    () = closing(&mut l.closed) => return,
                    () = sleep(backoff) => {}
                }
                match subscribe(&l.client, &l.channel).await {
                    Ok(pubsub) => {
                        tracing::info!("event bus: Redis subscription restored");
                        backoff = MIN_BACKOFF;
                        // Whatever was published meanwhile never reached us.
                        let _ = l.local.send(Notice::Resync);
                        pubsub
                    }
                    Err(e) => {
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        tracing::warn!(
                            error = %scrub_password(&e, &l.url),
                            retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                            "event bus: cannot subscribe to Redis"
                        );
                        continue;
                    }
                }
            }
        };
        match relay(&mut l, pubsub).await {
            None => return,
            Some(why) => tracing::warn!(
                error = %scrub_password(&why, &l.url),
                "event bus: lost the Redis subscription; reconnecting"
            ),
        }
    }
}

/// Relays messages from one subscribed connection; `None` when the bus
/// closed, else why the connection is no good any more.
async fn relay(l: &mut Listener, pubsub: PubSub) -> Option<String> {
    let (mut sink, mut messages) = pubsub.split();
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = closing(&mut l.closed) => return None,
            message = messages.next() => match message {
                Some(message) => deliver(message.get_payload_bytes(), l.node, &l.local),
                None => return Some("the connection closed".to_owned()),
            },
            _ = ping.tick() => match timeout(PING_TIMEOUT, sink.ping::<::redis::Value>()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Some(e.to_string()),
                Err(_) => return Some(format!("no answer to PING in {} s", PING_TIMEOUT.as_secs())),
            },
        }
    }
}

/// Broadcasts another node's message on this node.
fn deliver(payload: &[u8], node: Uuid, local: &broadcast::Sender<Notice>) {
    match serde_json::from_slice::<Wire>(payload) {
        Ok(wire) if wire.node == node => {}
        Ok(wire) => {
            let _ = local.send(Notice::Vault(wire.change));
        }
        Err(e) => tracing::warn!(error = %e, "event bus: ignoring an unreadable message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_stable() {
        let nil = Uuid::nil();
        let wire = Wire {
            node: nil,
            change: VaultChanged {
                account_id: nil,
                vault_id: nil,
                head: 7,
                device_id: nil,
            },
        };
        let zero = "00000000-0000-0000-0000-000000000000";
        assert_eq!(
            serde_json::to_string(&wire).expect("json"),
            format!(
                r#"{{"node":"{zero}","account_id":"{zero}","vault_id":"{zero}","head":7,"device_id":"{zero}"}}"#
            )
        );
    }

    /// The health check: a subscribed connection answers `PING`, and
    /// messages still arrive after it (against `OPENK_TEST_REDIS_URL`).
    #[tokio::test]
    async fn a_subscribed_connection_answers_ping() {
        let Some(url) = std::env::var("OPENK_TEST_REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
        else {
            println!("skipped: OPENK_TEST_REDIS_URL not set");
            return;
        };
        let client = Client::open(url.as_str()).expect("redis url");
        let channel = format!("openk-test-{}:events", Uuid::now_v7());
        let (mut sink, mut messages) = subscribe(&client, &channel)
            .await
            .unwrap_or_else(|e| panic!("OPENK_TEST_REDIS_URL is set but Redis is unreachable: {e}"))
            .split();
        for _ in 0..3 {
            timeout(PING_TIMEOUT, sink.ping::<::redis::Value>())
                .await
                .expect("an answer in time")
                .expect("PING while subscribed");
        }
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("a connection");
        let receivers: i64 = cmd("PUBLISH")
            .arg(&channel)
            .arg("hello")
            .query_async(&mut conn)
            .await
            .expect("publish");
        assert_eq!(receivers, 1);
        let message = timeout(Duration::from_secs(2), messages.next())
            .await
            .expect("a message in time")
            .expect("a message");
        assert_eq!(message.get_payload_bytes(), b"hello");
    }

    #[test]
    fn own_and_unreadable_messages_are_not_delivered() {
        let (local, mut rx) = broadcast::channel(8);
        let me = Uuid::now_v7();
        let change = VaultChanged {
            account_id: Uuid::now_v7(),
            vault_id: Uuid::now_v7(),
            head: 3,
            device_id: Uuid::now_v7(),
        };
        let own = serde_json::to_vec(&Wire { node: me, change }).expect("json");
        let other = serde_json::to_vec(&Wire {
            node: Uuid::now_v7(),
            change,
        })
        .expect("json");
        deliver(&own, me, &local);
        deliver(b"not json", me, &local);
        deliver(br#"{"node":"x"}"#, me, &local);
        deliver(&other, me, &local);
        assert_eq!(rx.try_recv().expect("one"), Notice::Vault(change));
        assert!(rx.try_recv().is_err(), "only the other node's message");
    }
}
