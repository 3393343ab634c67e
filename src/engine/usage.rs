//! Item usage (issue 12): how often this account used each item (copied
//! it, printed it with `get`, revealed it) and when it last did, on every
//! one of its devices.
//!
//! # Whose, and where
//! Usage belongs to the account, not to the vault: a viewer of a shared
//! vault records its use without any write access, and a use never makes
//! an item version, a history entry or a sync conflict. Each device keeps
//! its own counters, item id → (count, last use); the account's view is the
//! merge over its devices (counts added, the latest time), so two devices
//! using one item at once never conflict: each device only ever grows its
//! own counters (grow-only counters, one per device).
//!
//! # Cheap to record
//! Recording a use seals one small event (the item and the time) under the
//! account key and inserts it: nothing else is read or decrypted, whatever
//! the vault's size. Events are added into the device's counters (a
//! *fold*, which bumps their generation) every 256 uses and
//! before each upload. Nothing about which items were used, or when, is in
//! the vault file in plaintext.
//!
//! # Sync
//! The counters travel as one opaque blob per device (`PUT`/`GET
//! /v1/usage`), sealed with the account key and associated data naming the
//! account and the device, so the server can neither read them nor pass one
//! device's off as another's; the generation inside a blob must never go
//! down, so an older copy played back is refused. A blob that does not open,
//! does not parse or goes backwards is reported in the sync's
//! [`UsageReport`] and ignored: it never fails the item sync. Revoked
//! devices' blobs still count. Each device keeps at most [`MAX_ITEMS`]
//! items, the most recently used, which always fits the server's bound.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{Error, Result};
use super::model::now_millis;
use super::{Session, open_json, seal_json};
use crate::crypto::{Aad, Key};
use crate::store::UsageRow;

/// Items a device's counters keep at most: the most recently used ones.
/// At the widest a counter can be written (an 82-byte JSON entry), 4096 of
/// them seal to about 330 KiB, under the server's 512 KiB.
pub const MAX_ITEMS: usize = 4096;
/// Uses recorded between two folds of this device's events.
const FOLD_EVERY: i64 = 256;
/// The counters' format this build writes and reads.
const FORMAT: u32 = 1;

/// How often and when the account used an item (on all its devices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemUse {
    /// Uses counted (copies, `get`s, reveals).
    pub count: u64,
    /// Unix milliseconds of the latest use; `None`: never used.
    pub last_used: Option<i64>,
}

impl ItemUse {
    fn add(&mut self, count: u64, at: i64) {
        self.count = self.count.saturating_add(count);
        self.last_used = Some(self.last_used.map_or(at, |t| t.max(at)));
    }
}

/// The account's usage of its items: the merge over its devices.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    items: HashMap<Uuid, ItemUse>,
}

impl Usage {
    /// The usage of one item (never used: a zero count, no time).
    #[must_use]
    pub fn of(&self, id: Uuid) -> ItemUse {
        self.items.get(&id).copied().unwrap_or_default()
    }

    /// Items used at least once.
    #[must_use]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// What a sync did with the usage counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UsageReport {
    /// This device's counters had changed and were uploaded.
    pub uploaded: bool,
    /// Other devices' counters that were new and taken in.
    pub received: u64,
    /// Counters from the server that were ignored because they do not open,
    /// do not parse or went backwards: which device, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// Why the counters were not exchanged (the items synced all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// One device's counters, as sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Counters {
    format: u32,
    device: Uuid,
    generation: u64,
    /// `[item id, count, last use]`, by item id.
    items: Vec<(Uuid, u64, i64)>,
}

/// One use, as sealed (short keys: it pads to 64 bytes); `n` uses at once
/// when an item's count moves to its new id ([`Session::carry_use`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Event {
    i: Uuid,
    t: i64,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    n: u64,
}

fn one() -> u64 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_one(n: &u64) -> bool {
    *n == 1
}

impl Counters {
    fn new(device: Uuid, generation: u64, items: &HashMap<Uuid, ItemUse>) -> Self {
        let mut items: Vec<(Uuid, u64, i64)> = items
            .iter()
            .map(|(id, u)| (*id, u.count, u.last_used.unwrap_or(0)))
            .collect();
        items.sort_unstable_by_key(|(id, _, _)| *id);
        Self {
            format: FORMAT,
            device,
            generation,
            items,
        }
    }

    fn seal(&self, key: &Key, account_id: Uuid) -> Vec<u8> {
        seal_json(key, &Aad::usage_counters(account_id, self.device), self)
    }

    /// Opens the counters of `device`; `Err` says why they cannot be used.
    fn open(
        key: &Key,
        account_id: Uuid,
        device: Uuid,
        sealed: &[u8],
    ) -> std::result::Result<Self, String> {
        let c: Self = open_json(key, &Aad::usage_counters(account_id, device), sealed)?;
        if c.format != FORMAT {
            return Err(format!(
                "format {} is not one this OpenK reads (update it)",
                c.format
            ));
        }
        if c.device != device {
            return Err(format!("they name device {}", c.device));
        }
        Ok(c)
    }

    /// Adds these counters into `view`.
    fn merge_into(&self, view: &mut HashMap<Uuid, ItemUse>) {
        for &(id, count, at) in &self.items {
            view.entry(id).or_default().add(count, at);
        }
    }
}

/// Keeps the [`MAX_ITEMS`] most recently used items.
fn cap(items: &mut HashMap<Uuid, ItemUse>) {
    if items.len() <= MAX_ITEMS {
        return;
    }
    let mut all: Vec<(Uuid, ItemUse)> = items.drain().collect();
    all.select_nth_unstable_by(MAX_ITEMS - 1, |a, b| {
        (b.1.last_used, b.1.count, b.0).cmp(&(a.1.last_used, a.1.count, a.0))
    });
    all.truncate(MAX_ITEMS);
    items.extend(all);
}

impl Session {
    /// Records one use of the item `id` on this device. It never fails the
    /// command that used the item: a use that cannot be recorded (a
    /// read-only vault, a busy database) is logged at debug level and
    /// forgotten. It never syncs.
    pub async fn record_use(&self, id: Uuid) {
        if let Err(e) = self.try_record_use(id).await {
            tracing::debug!(item = %id, error = %e, "use not recorded");
        }
    }

    async fn try_record_use(&self, id: Uuid) -> Result<()> {
        self.add_event(Event {
            i: id,
            t: now_millis(),
            n: 1,
        })
        .await
    }

    /// Gives the item `to` the uses the account made of the item `from` (a
    /// move to another vault, which gives the item a new id), as this
    /// device knows them; never fails (as [`Session::record_use`]).
    pub(super) async fn carry_use(&self, from: Uuid, to: Uuid) {
        let carried = async {
            let used = self.item_use(from).await?;
            match used.last_used.filter(|_| used.count > 0) {
                Some(t) => {
                    self.add_event(Event {
                        i: to,
                        t,
                        n: used.count,
                    })
                    .await
                }
                None => Ok(()),
            }
        };
        if let Err(e) = carried.await {
            tracing::debug!(item = %to, error = %e, "usage not carried over");
        }
    }

    async fn add_event(&self, event: Event) -> Result<()> {
        let sealed = seal_json(&self.account_key, &self.event_aad(), &event);
        let seq = self.store.add_usage_event(&sealed).await?;
        if seq % FOLD_EVERY == 0 {
            self.fold_usage().await?;
        }
        Ok(())
    }

    fn event_aad(&self) -> Aad {
        Aad::usage_event(self.header.account_id, self.header.device_id)
    }

    /// The account's usage of every item, from this device's counters and
    /// uses and the other devices' counters the last sync brought (no
    /// server request). Counters or uses that do not open are skipped with
    /// a warning.
    ///
    /// # Errors
    /// Database errors.
    pub async fn usage(&self) -> Result<Usage> {
        let state = self.store.usage_state().await?;
        let account = self.header.account_id;
        let mut items = HashMap::new();
        for row in &state.counters {
            match Counters::open(&self.account_key, account, row.device_id, &row.sealed) {
                Ok(c) => c.merge_into(&mut items),
                Err(why) => tracing::warn!(
                    device = %row.device_id,
                    %why,
                    "usage counters are damaged or were tampered with; skipped"
                ),
            }
        }
        let aad = self.event_aad();
        for (seq, sealed) in &state.events {
            match open_json::<Event>(&self.account_key, &aad, sealed) {
                Ok(e) => items.entry(e.i).or_default().add(e.n, e.t),
                Err(why) => tracing::warn!(
                    event = seq,
                    %why,
                    "a recorded use is damaged or was tampered with; skipped"
                ),
            }
        }
        Ok(Usage { items })
    }

    /// The account's usage of one item ([`Session::usage`]).
    ///
    /// # Errors
    /// Database errors.
    pub async fn item_use(&self, id: Uuid) -> Result<ItemUse> {
        Ok(self.usage().await?.of(id))
    }

    /// Adds this device's recorded uses into its counters (a new
    /// generation), keeping the most recently used [`MAX_ITEMS`]. Nothing
    /// to add: nothing written. Another process folding at the same time
    /// wins and this one changes nothing.
    async fn fold_usage(&self) -> Result<()> {
        let state = self.store.usage_state().await?;
        let Some(&(through, _)) = state.events.last() else {
            return Ok(());
        };
        let (account, me) = (self.header.account_id, self.header.device_id);
        let own = state.counters.iter().find(|r| r.device_id == me);
        let mut items = HashMap::new();
        let mut generation = own.map_or(0, |r| r.generation);
        if let Some(row) = own {
            match Counters::open(&self.account_key, account, me, &row.sealed) {
                Ok(c) => {
                    generation = generation.max(c.generation);
                    c.merge_into(&mut items);
                }
                Err(why) => tracing::warn!(
                    %why,
                    "this device's usage counters are damaged or were tampered with; they start afresh"
                ),
            }
        }
        let aad = self.event_aad();
        for (_, sealed) in &state.events {
            if let Ok(e) = open_json::<Event>(&self.account_key, &aad, sealed) {
                items.entry(e.i).or_default().add(e.n, e.t);
            }
        }
        cap(&mut items);
        let next = Counters::new(me, generation + 1, &items);
        let row = UsageRow {
            device_id: me,
            sealed: next.seal(&self.account_key, account),
            generation: next.generation,
            revision: 0,
            uploaded: false,
        };
        if !self
            .store
            .fold_usage(own.map(|r| r.generation), &row, through)
            .await?
        {
            tracing::debug!("another process folded the usage counters first");
        }
        Ok(())
    }

    /// The usage part of a sync: uploads this device's counters when they
    /// changed, takes in the other devices' new ones. One request each way
    /// (more only for an account with more than 32 devices' new counters).
    /// It never fails: what went wrong is in the report.
    pub(super) async fn sync_usage(&mut self) -> UsageReport {
        let mut report = UsageReport::default();
        match self.exchange_usage(&mut report).await {
            Ok(()) => {}
            // A server from before usage tracking: the counters stay here.
            Err(Error::NotFound(_)) => {
                tracing::debug!("the server does not keep usage counters");
            }
            Err(e) => {
                tracing::debug!(error = %e, "usage counters not exchanged");
                report.problem = Some(e.to_string());
            }
        }
        report
    }

    async fn exchange_usage(&mut self, report: &mut UsageReport) -> Result<()> {
        if self.store.is_read_only() {
            return Ok(());
        }
        let (account, me) = (self.header.account_id, self.header.device_id);
        self.fold_usage().await?;
        let state = self.store.usage_state().await?;
        if let Some(own) = state
            .counters
            .iter()
            .find(|r| r.device_id == me && !r.uploaded)
        {
            let blob = own.sealed.clone();
            self.authed(|c| {
                let blob = blob.clone();
                async move { c.put_usage(&blob).await }
            })
            .await?;
            self.store.usage_uploaded(me, own.generation).await?;
            report.uploaded = true;
        }
        let held: HashMap<Uuid, u64> = state
            .counters
            .iter()
            .filter(|r| r.device_id != me)
            .map(|r| (r.device_id, r.generation))
            .collect();
        let start = self.store.usage_cursor().await?;
        let mut cursor = start;
        let mut taken: HashMap<Uuid, UsageRow> = HashMap::new();
        loop {
            let since = cursor;
            let page = self
                .authed(move |c| async move { c.usage(since).await })
                .await?;
            for d in page.devices {
                if d.device_id == me {
                    continue;
                }
                let c = match Counters::open(&self.account_key, account, d.device_id, &d.blob.0) {
                    Ok(c) => c,
                    Err(why) => {
                        report.refused.push(format!(
                            "the usage counters of device {} do not open ({why}); ignored",
                            d.device_id
                        ));
                        continue;
                    }
                };
                let before = taken
                    .get(&d.device_id)
                    .map(|r| r.generation)
                    .or_else(|| held.get(&d.device_id).copied());
                match before {
                    Some(g) if c.generation < g => report.refused.push(format!(
                        "the usage counters of device {} went backwards (generation {} after {g}); ignored",
                        d.device_id, c.generation
                    )),
                    Some(g) if c.generation == g => {}
                    _ => {
                        taken.insert(
                            d.device_id,
                            UsageRow {
                                device_id: d.device_id,
                                sealed: d.blob.0,
                                generation: c.generation,
                                revision: d.revision,
                                uploaded: true,
                            },
                        );
                    }
                }
            }
            let advanced = page.next_since > cursor;
            cursor = cursor.max(page.next_since);
            // A server that says "more" without moving on is not followed.
            if !page.has_more || !advanced {
                break;
            }
        }
        report.received = taken.len() as u64;
        if !taken.is_empty() || cursor != start {
            let rows: Vec<UsageRow> = taken.into_values().collect();
            self.store.take_usage(&rows, cursor).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(device: Uuid, items: &[(Uuid, u64, i64)]) -> Counters {
        Counters {
            format: FORMAT,
            device,
            generation: 1,
            items: items.to_vec(),
        }
    }

    #[test]
    fn two_devices_merge_by_adding_counts_and_keeping_the_latest_time() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let (shared, only_a, only_b) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let mut view = HashMap::new();
        counters(a, &[(shared, 2, 1_000), (only_a, 1, 500)]).merge_into(&mut view);
        counters(b, &[(shared, 3, 900), (only_b, 4, 2_000)]).merge_into(&mut view);
        let usage = Usage { items: view };
        assert_eq!(
            usage.of(shared),
            ItemUse {
                count: 5,
                last_used: Some(1_000)
            }
        );
        assert_eq!(usage.of(only_a).count, 1);
        assert_eq!(usage.of(only_b).last_used, Some(2_000));
        assert_eq!(usage.of(Uuid::now_v7()), ItemUse::default(), "never used");
        assert_eq!(usage.len(), 3);
    }

    #[test]
    fn counters_open_only_as_the_device_and_account_they_were_sealed_for() {
        let key = Key::random();
        let (account, me, other) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let c = counters(me, &[(Uuid::now_v7(), 1, 5)]);
        let sealed = c.seal(&key, account);
        assert_eq!(Counters::open(&key, account, me, &sealed), Ok(c.clone()));
        assert!(
            Counters::open(&key, account, other, &sealed).is_err(),
            "another device"
        );
        assert!(
            Counters::open(&key, other, me, &sealed).is_err(),
            "another account"
        );
        assert!(
            Counters::open(&Key::random(), account, me, &sealed).is_err(),
            "another key"
        );
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(
            Counters::open(&key, account, me, &flipped).is_err(),
            "altered"
        );
        assert!(Counters::open(&key, account, me, b"garbage").is_err());
        // Sealed for the right device but naming another inside, or of a
        // format from the future: refused too.
        let lying = Counters {
            device: other,
            ..c.clone()
        };
        let sealed = seal_json(&key, &Aad::usage_counters(account, me), &lying);
        assert!(
            Counters::open(&key, account, me, &sealed)
                .is_err_and(|why| why.contains("name device"))
        );
        let future = Counters { format: 2, ..c };
        let sealed = seal_json(&key, &Aad::usage_counters(account, me), &future);
        assert!(
            Counters::open(&key, account, me, &sealed).is_err_and(|why| why.contains("format 2"))
        );
    }

    #[test]
    fn a_device_keeps_its_most_recently_used_items_within_the_servers_bound() {
        let mut items: HashMap<Uuid, ItemUse> = (0..MAX_ITEMS + 100)
            .map(|i| {
                (
                    Uuid::now_v7(),
                    ItemUse {
                        count: u64::MAX,
                        last_used: Some(i64::MIN + i as i64),
                    },
                )
            })
            .collect();
        let newest: Vec<Uuid> = {
            let mut all: Vec<(Uuid, ItemUse)> = items.iter().map(|(k, v)| (*k, *v)).collect();
            all.sort_by_key(|(_, u)| std::cmp::Reverse(u.last_used));
            all.into_iter().take(MAX_ITEMS).map(|(id, _)| id).collect()
        };
        cap(&mut items);
        assert_eq!(items.len(), MAX_ITEMS);
        assert!(
            newest.iter().all(|id| items.contains_key(id)),
            "the oldest went"
        );
        // The widest numbers there are still fit what the server stores.
        let sealed = Counters::new(Uuid::max(), u64::MAX, &items).seal(&Key::random(), Uuid::max());
        assert!(
            sealed.len() <= openk_server::api::usage::MAX_USAGE_BLOB,
            "{} bytes",
            sealed.len()
        );
    }

    #[test]
    fn the_counters_wire_format_is_stable() {
        let id = Uuid::nil();
        let c = counters(Uuid::max(), &[(id, 3, 1_765_000_000_000)]);
        assert_eq!(
            serde_json::to_string(&c).expect("json"),
            r#"{"format":1,"device":"ffffffff-ffff-ffff-ffff-ffffffffffff","generation":1,"items":[["00000000-0000-0000-0000-000000000000",3,1765000000000]]}"#
        );
        let e = Event { i: id, t: 7, n: 1 };
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"i":"00000000-0000-0000-0000-000000000000","t":7}"#
        );
        let carried = Event { i: id, t: 7, n: 4 };
        let json = serde_json::to_string(&carried).expect("json");
        assert_eq!(
            json,
            r#"{"i":"00000000-0000-0000-0000-000000000000","t":7,"n":4}"#
        );
        assert_eq!(
            serde_json::from_str::<Event>(&json).expect("parse"),
            carried
        );
        assert_eq!(
            serde_json::from_str::<Event>(r#"{"i":"00000000-0000-0000-0000-000000000000","t":7}"#)
                .expect("parse")
                .n,
            1
        );
    }
}
