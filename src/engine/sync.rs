//! Offline-first sync with the account's server (DESIGN §6).
//!
//! Every local write marks its item dirty in the same transaction (the
//! store does it). A sync then, per vault:
//!
//! 1. re-sends a push that was sent but never confirmed (same id: the
//!    server applies a batch once, so a retry after a crash cannot double);
//! 2. pulls every change since its cursor, checks it (no revision, version
//!    or manifest counter going backwards; every record decrypts under its
//!    vault, item and version; the manifest, sealed with the vault key,
//!    describes exactly the resulting state) and only then applies it in
//!    one transaction, merging items changed on both sides ([`super::merge`]);
//! 3. pushes local changes, every unpushed version in order (so the
//!    server's history has them), in batches that carry the manifest of
//!    the state they produce and the head they were computed on.
//!
//! Nothing local is changed by an answer that fails a check.

use std::collections::HashMap;

use openk_server::api::types::{self as wire, B64, Change, PushRequest, Record};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{Error, Result};
use super::merge;
use super::model::{Details, Item, ItemRef, Overview, SyncConflict, now_millis};
use super::{Session, Vault, item_ref, open_full, open_json, seal_item};
use crate::crypto::{self, Aad, Key};
use crate::store::{ItemRecord, ItemSync, StoreError, SyncOp};
use crate::sync::manifest::{self, Line, Manifest};

/// Records per pull page (the server's maximum).
const PULL_PAGE: u32 = 1000;
/// Changes per push batch (the server's maximum).
const PUSH_BATCH: usize = 1000;
/// Pull-merge-push rounds before giving up on a vault that keeps moving.
const ATTEMPTS: usize = 10;

/// What a long sync reports as it goes (for a progress bar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Records pulled so far and the server's head revision.
    Pulling { done: u64, head: i64 },
    /// Changes pushed so far, of `total` dirty items.
    Pushing { done: u64, total: u64 },
}

/// Options of one sync.
#[derive(Default)]
pub struct SyncOptions<'a> {
    /// Also download the whole server state and compare it item by item
    /// with the manifest and the local state.
    pub verify: bool,
    pub progress: Option<&'a (dyn Fn(Progress) + Send + Sync)>,
    /// Give up when the whole sync is not done in this time (e.g.
    /// [`limits::AFTER_WRITE`] after a write). Only server requests are cut
    /// short, never a local transaction: what was verified and applied
    /// stays, a push whose answer did not come stays pending and is re-sent
    /// by the next sync, and nothing else changes. `None`: only the
    /// per-request limits apply.
    pub time_limit: Option<std::time::Duration>,
}

pub use crate::sync::client::{EventStream, ServerEvent, limits};

/// What one sync did to one vault.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VaultReport {
    pub vault_id: Uuid,
    pub name: String,
    /// The server revision this device is now at.
    pub head: i64,
    pub pulled: u64,
    pub pushed: u64,
    /// Items changed on both sides and merged.
    pub merged: Vec<Uuid>,
    /// Merged items where the same part was changed on both sides.
    pub conflicts: Vec<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// Items whose local copy the sync replaced (to refresh loaded overviews).
    #[serde(skip)]
    changed: Vec<Uuid>,
}

/// `openk sync --verify`: the server's whole state against its manifest
/// and against this device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    /// Everything agrees.
    pub matches: bool,
    pub manifest_counter: u64,
    pub server_items: u64,
    pub local_items: u64,
    /// The server's records are the ones its manifest describes.
    pub server_matches_manifest: bool,
    /// Items this device knows the server had, that it no longer has
    /// (pushed again).
    pub missing_on_server: Vec<Uuid>,
    /// Items whose server copy differs from the one this device knows.
    pub differing: Vec<Uuid>,
    /// Items on the server this device has not seen.
    pub unknown_here: Vec<Uuid>,
    /// Items pushed again to repair the server.
    pub repushed: u64,
}

/// The outcome of a sync of every vault.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    pub vaults: Vec<VaultReport>,
}

impl SyncReport {
    #[must_use]
    pub fn changed_locally(&self) -> bool {
        self.vaults
            .iter()
            .any(|v| v.pulled > 0 || !v.merged.is_empty())
    }
}

/// Local sync status for `openk status`.
#[derive(Debug, Clone, Serialize)]
pub struct LocalSyncStatus {
    /// Items with changes not pushed yet.
    pub pending: u64,
    /// Unix ms of the last complete sync of every vault (the oldest).
    pub last_sync: Option<i64>,
    /// Items flagged by a merge.
    pub conflicts: u64,
}

/// A push sent but not confirmed, kept so it is re-sent with the same id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingPush {
    id: Uuid,
    expected_head: i64,
    counter: u64,
    manifest: B64,
    changes: Vec<PendingChange>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PendingChange {
    item_id: Uuid,
    version: u64,
    deleted: bool,
    base_revision: i64,
}

/// Everything a pull returned.
struct Pulled {
    head: i64,
    records: Vec<Record>,
    manifest: Option<Vec<u8>>,
}

enum Pushed {
    Done,
    /// Another device pushed first: pull and merge again.
    Moved,
}

fn backwards(what: String) -> Error {
    Error::Untrusted(format!("server state went backwards: {what}"))
}

/// A fork alarm: the server shows this device a history other than the one
/// it accepted before.
fn fork(vault_id: Uuid, what: String) -> Error {
    Error::Fork { vault_id, what }
}

/// Checks a pulled manifest (`id` is its [`manifest::manifest_id`]) against
/// the last one this device accepted: at the same counter it must be the
/// same manifest; the next one must name it as the one it follows. After a
/// gap (this device missed manifests; the server hands out only the
/// newest) the link cannot be followed, and what holds is the rest of the
/// checks: a higher counter, and a digest that must describe this
/// device's known state plus what the pull brings.
fn check_chain(
    vault_id: Uuid,
    state: &crate::store::SyncState,
    m: &Manifest,
    id: [u8; 32],
) -> Result<()> {
    // No manifest accepted here yet (a first sync, or the first after the
    // upgrade that added the chain): this one is accepted and kept.
    let Some(have) = state.manifest_id else {
        return Ok(());
    };
    if m.counter == state.counter {
        if id != have {
            return Err(fork(
                vault_id,
                format!(
                    "the server's manifest number {} is not the manifest number {} this device accepted",
                    m.counter, state.counter
                ),
            ));
        }
        return Ok(());
    }
    match &m.prev {
        None => Err(Error::UnlinkedManifest {
            vault_id,
            counter: m.counter,
        }),
        Some(prev) if m.counter == state.counter + 1 && *prev != manifest::hex_lower(&have) => {
            Err(fork(
                vault_id,
                format!(
                    "the server's manifest number {} follows another manifest number {} than the one this device accepted",
                    m.counter, state.counter
                ),
            ))
        }
        Some(_) => Ok(()),
    }
}

fn to_record(vault_id: Uuid, r: &Record) -> ItemRecord {
    ItemRecord {
        id: r.item_id,
        vault_id,
        version: r.version,
        wrapped_key: r.wrapped_key.0.clone(),
        overview: r.overview.0.clone(),
        details: r.details.0.clone(),
    }
}

fn hash_of(rec: &ItemRecord) -> [u8; 32] {
    manifest::record_hash(&rec.wrapped_key, &rec.overview, &rec.details)
}

fn line_of(s: &ItemSync) -> Line {
    Line {
        item_id: s.item_id,
        version: s.version,
        deleted: s.deleted,
        hash: s.hash.unwrap_or([0; 32]),
    }
}

/// Same contents, ignoring when and by whom it was saved.
fn same_content(a: &Overview, ad: &Details, b: &Overview, bd: &Details) -> bool {
    let strip = |o: &Overview| {
        let mut o = o.clone();
        o.created_at = 0;
        o.updated_at = 0;
        o.updated_by = None;
        o.conflict = None;
        o.trashed_at = o.trashed_at.map(|_| 1);
        o
    };
    strip(a) == strip(b) && ad == bd
}

/// Re-seals a version under another version number (same item key).
fn reseal(vault_key: &Key, rec: &ItemRecord, version: u64) -> Result<ItemRecord> {
    let (item, ik) =
        open_full(vault_key, rec).map_err(|why| Error::DamagedItem { id: rec.id, why })?;
    let r = ItemRef { version, ..item.r };
    Ok(seal_item(vault_key, &ik, r, &item.overview, &item.details))
}

fn manifest_lines(syncs: &HashMap<Uuid, ItemSync>) -> HashMap<Uuid, Line> {
    syncs
        .values()
        .filter(|s| s.revision > 0)
        .map(|s| (s.item_id, line_of(s)))
        .collect()
}

/// Bytes per line in `sync_state.lines`: id, version, tombstone flag, hash.
const LINE_BYTES: usize = 16 + 8 + 1 + 32;

fn encode_lines(lines: &HashMap<Uuid, Line>) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() * LINE_BYTES);
    for l in lines.values() {
        out.extend_from_slice(l.item_id.as_bytes());
        out.extend_from_slice(&l.version.to_be_bytes());
        out.push(u8::from(l.deleted));
        out.extend_from_slice(&l.hash);
    }
    out
}

fn decode_lines(blob: &[u8]) -> Option<HashMap<Uuid, Line>> {
    if !blob.len().is_multiple_of(LINE_BYTES) {
        return None;
    }
    let mut out = HashMap::with_capacity(blob.len() / LINE_BYTES);
    for c in blob.chunks_exact(LINE_BYTES) {
        let item_id = Uuid::from_slice(&c[..16]).ok()?;
        let version = u64::from_be_bytes(c[16..24].try_into().ok()?);
        let deleted = match c[24] {
            0 => false,
            1 => true,
            _ => return None,
        };
        let hash: [u8; 32] = c[25..].try_into().ok()?;
        out.insert(
            item_id,
            Line {
                item_id,
                version,
                deleted,
                hash,
            },
        );
    }
    Some(out)
}

fn line_of_record(r: &Record) -> Line {
    Line {
        item_id: r.item_id,
        version: r.version,
        deleted: r.deleted,
        hash: if r.deleted {
            [0; 32]
        } else {
            manifest::record_hash(&r.wrapped_key.0, &r.overview.0, &r.details.0)
        },
    }
}

fn digest_of(lines: &HashMap<Uuid, Line>) -> (u64, String) {
    let mut v: Vec<Line> = lines.values().copied().collect();
    (
        v.len() as u64,
        manifest::hex_lower(&manifest::digest(&mut v)),
    )
}

impl Session {
    /// Whether this vault is logged in to a server (sync is possible).
    #[must_use]
    pub fn is_logged_in(&self) -> bool {
        self.remote.as_ref().is_some_and(|r| r.tokens.is_some())
    }

    /// Pending changes, last sync and conflicts, from local state only.
    ///
    /// # Errors
    /// Database errors.
    pub async fn local_sync_status(&mut self) -> Result<LocalSyncStatus> {
        let pending = self.store.pending_count().await?;
        let mut last_sync = None;
        let mut never = false;
        for v in &self.vaults {
            match self.store.sync_state(v.id).await?.last_sync {
                Some(t) => last_sync = Some(last_sync.map_or(t, |l: i64| l.min(t))),
                None => never = true,
            }
        }
        let conflicts = self
            .entries()
            .await?
            .0
            .iter()
            .filter(|e| e.overview.conflict.is_some())
            .count() as u64;
        Ok(LocalSyncStatus {
            pending,
            last_sync: if never { None } else { last_sync },
            conflicts,
        })
    }

    /// Opens the account's server-sent event stream.
    ///
    /// # Errors
    /// Not logged in, unreachable.
    pub async fn events(&mut self) -> Result<crate::sync::client::EventStream> {
        self.authed(|c| async move { c.events().await }).await
    }

    /// Whether a server event says a vault moved past what this device has
    /// (`ready` on connect, `vault` after a push).
    pub async fn event_needs_sync(&mut self, ev: &crate::sync::client::ServerEvent) -> bool {
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

    /// What this device knows the server holds of a vault: from the
    /// recorded blob, else rebuilt from every `item_sync` row.
    async fn load_lines(&self, vault_id: Uuid) -> Result<HashMap<Uuid, Line>> {
        if let Some(lines) = self
            .store
            .lines_blob(vault_id)
            .await?
            .as_deref()
            .and_then(decode_lines)
        {
            return Ok(lines);
        }
        let syncs: HashMap<Uuid, ItemSync> = self
            .store
            .item_syncs(vault_id)
            .await?
            .into_iter()
            .map(|s| (s.item_id, s))
            .collect();
        Ok(manifest_lines(&syncs))
    }

    /// Syncs every vault with the server.
    ///
    /// # Errors
    /// Not logged in (exit 3), unreachable (exit 7: local changes stay
    /// pending), [`Error::Untrusted`] for answers that fail verification.
    pub async fn sync(&mut self, opts: &SyncOptions<'_>) -> Result<SyncReport> {
        let outer = self.deadline;
        self.deadline = opts
            .time_limit
            .map(crate::sync::client::Deadline::after)
            .or(outer);
        let out = self.sync_all(opts).await;
        self.deadline = outer;
        out
    }

    async fn sync_all(&mut self, opts: &SyncOptions<'_>) -> Result<SyncReport> {
        self.remote_or_err()?;
        self.live_tokens().await?;
        self.reconcile_vaults().await?;
        let ids: Vec<Uuid> = self.vaults.iter().map(|v| v.id).collect();
        let mut report = SyncReport::default();
        for id in ids {
            match self.sync_vault(id, opts).await {
                Ok(r) => {
                    self.refresh_loaded(&r.changed).await?;
                    report.vaults.push(r);
                }
                Err(e) => {
                    self.loaded = None;
                    return Err(e);
                }
            }
        }
        Ok(report)
    }

    /// Brings loaded overviews up to date with the items a sync replaced,
    /// decrypting only those; a large change leaves the next listing to
    /// reload everything.
    async fn refresh_loaded(&mut self, ids: &[Uuid]) -> Result<()> {
        if !ids.is_empty() {
            self.refresh_items(ids).await?;
        }
        Ok(())
    }

    /// Creates on the server the local vaults it lacks, and adds here the
    /// vaults another device created.
    async fn reconcile_vaults(&mut self) -> Result<()> {
        let on_server = self.authed(|c| async move { c.vaults().await }).await?;
        let local = self.store.vaults().await?;
        for v in local
            .iter()
            .filter(|v| !on_server.iter().any(|s| s.id == v.id))
        {
            let req = wire::CreateVaultRequest {
                id: v.id,
                wrapped_key: B64(v.wrapped_key.clone()),
                meta: B64(v.meta.clone()),
            };
            self.authed(|c| {
                let req = req.clone();
                async move { c.create_vault(&req).await }
            })
            .await?;
        }
        for s in on_server
            .iter()
            .filter(|s| !local.iter().any(|v| v.id == s.id))
        {
            let key = crypto::unwrap_key(
                &self.account_key,
                &Aad::vault_key(self.header.account_id, s.id),
                &s.wrapped_key.0,
            )
            .map_err(|_| {
                Error::Untrusted(format!(
                    "the server offers vault {} whose key does not decrypt with this account's key",
                    s.id
                ))
            })?;
            let name = open_json::<serde_json::Value>(&key, &Aad::vault_meta(s.id), &s.meta.0)
                .ok()
                .and_then(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "(damaged name)".to_owned());
            self.store
                .insert_vault(&crate::store::VaultRecord {
                    id: s.id,
                    wrapped_key: s.wrapped_key.0.clone(),
                    meta: s.meta.0.clone(),
                    created_at: now_millis(),
                })
                .await?;
            self.vaults.push(Vault {
                id: s.id,
                name,
                key,
            });
        }
        Ok(())
    }

    async fn sync_vault(&mut self, vault_id: Uuid, opts: &SyncOptions<'_>) -> Result<VaultReport> {
        let vk = self.vault_key(vault_id)?.duplicate();
        let mut report = VaultReport {
            vault_id,
            name: self
                .vaults
                .iter()
                .find(|v| v.id == vault_id)
                .map(|v| v.name.clone())
                .unwrap_or_default(),
            ..VaultReport::default()
        };
        if let Some(p) = self.store.sync_state(vault_id).await?.pending {
            self.resend(vault_id, &p, &mut report).await?;
        }
        let mut done = false;
        for _ in 0..ATTEMPTS {
            let state = self.store.sync_state(vault_id).await?;
            let pulled = self.pull_all(vault_id, state.cursor, opts).await?;
            match self
                .apply_pulled(vault_id, &vk, &state, pulled, &mut report)
                .await
            {
                Ok(()) => {}
                // Another process wrote meanwhile: decide again.
                Err(Error::Conflict(_)) => continue,
                Err(e) => return Err(e),
            }
            match self.push_dirty(vault_id, &vk, opts, &mut report).await? {
                Pushed::Done => {
                    done = true;
                    break;
                }
                Pushed::Moved => {}
            }
        }
        if !done {
            return Err(Error::KeptMoving(report.name));
        }
        if opts.verify {
            let v = self.verify_vault(vault_id, &vk).await?;
            let repair = v.repushed > 0;
            report.verify = Some(v);
            if repair {
                self.push_dirty(vault_id, &vk, opts, &mut report).await?;
            }
        }
        report.head = self.store.sync_state(vault_id).await?.cursor;
        Ok(report)
    }

    /// Every page of changes since `since`.
    async fn pull_all(
        &mut self,
        vault_id: Uuid,
        since: i64,
        opts: &SyncOptions<'_>,
    ) -> Result<Pulled> {
        let mut at = since;
        let mut records: Vec<Record> = Vec::new();
        loop {
            let page = self
                .authed(|c| async move { c.pull(vault_id, at, PULL_PAGE).await })
                .await?;
            if page.vault_id != vault_id {
                return Err(Error::Untrusted(format!(
                    "the server answered a pull of vault {vault_id} with vault {}",
                    page.vault_id
                )));
            }
            if let Some(r) = page
                .records
                .iter()
                .find(|r| r.revision <= at || r.revision > page.head)
            {
                return Err(Error::Untrusted(format!(
                    "the server sent item {} at revision {} outside the range it was asked for ({at}..{})",
                    r.item_id, r.revision, page.head
                )));
            }
            records.extend(page.records);
            if let Some(p) = opts.progress {
                p(Progress::Pulling {
                    done: records.len() as u64,
                    head: page.head,
                });
            }
            if !page.has_more {
                return Ok(Pulled {
                    head: page.head,
                    records,
                    manifest: page.manifest.map(|m| m.0),
                });
            }
            if page.next_since <= at {
                return Err(Error::Untrusted(
                    "the server's pages of changes do not move forward".into(),
                ));
            }
            at = page.next_since;
        }
    }

    /// Checks a pull against what this device has seen and against the
    /// manifest, then applies it (merging where both sides changed).
    async fn apply_pulled(
        &mut self,
        vault_id: Uuid,
        vk: &Key,
        state: &crate::store::SyncState,
        pulled: Pulled,
        report: &mut VaultReport,
    ) -> Result<()> {
        if pulled.head < state.cursor {
            return Err(backwards(format!(
                "vault {vault_id} is at revision {} on the server, but this device has already seen revision {}",
                pulled.head, state.cursor
            )));
        }
        let manifest = pulled
            .manifest
            .as_deref()
            .map(|b| Manifest::open(vk, vault_id, b))
            .transpose()
            .map_err(|e| Error::Untrusted(format!("vault {vault_id}: {e}")))?;
        match &manifest {
            Some(m) if m.counter < state.counter => {
                return Err(backwards(format!(
                    "vault {vault_id}'s manifest is number {} on the server, but this device has already seen number {}",
                    m.counter, state.counter
                )));
            }
            None if state.counter > 0 => {
                return Err(backwards(format!(
                    "the server no longer has vault {vault_id}'s manifest (this device has seen number {})",
                    state.counter
                )));
            }
            _ => {}
        }
        let manifest_id = pulled.manifest.as_deref().map(manifest::manifest_id);
        if let (Some(m), Some(id)) = (&manifest, manifest_id) {
            check_chain(vault_id, state, m, id)?;
        }
        let counter = manifest.as_ref().map_or(0, |m| m.counter);
        if pulled.records.is_empty()
            && pulled.head == state.cursor
            && counter == state.counter
            && manifest_id == state.manifest_id
        {
            // Nothing new: nothing to write.
            return Ok(());
        }
        // The latest record of each item (an item can change between pages).
        let mut latest: HashMap<Uuid, Record> = HashMap::with_capacity(pulled.records.len());
        for r in pulled.records {
            match latest.get(&r.item_id) {
                Some(old) if old.revision >= r.revision => {}
                _ => {
                    latest.insert(r.item_id, r);
                }
            }
        }
        let mut records: Vec<Record> = latest.into_values().collect();
        records.sort_unstable_by_key(|r| r.revision);
        // What this device knows of the pulled items: all rows at once for
        // a big pull, one by one for a small one.
        let syncs: HashMap<Uuid, ItemSync> = if records.len() > 256 {
            self.store
                .item_syncs(vault_id)
                .await?
                .into_iter()
                .map(|s| (s.item_id, s))
                .collect()
        } else {
            let mut m = HashMap::with_capacity(records.len());
            for r in &records {
                if let Some(s) = self.store.item_sync(r.item_id).await? {
                    m.insert(r.item_id, s);
                }
            }
            m
        };
        for r in &records {
            if let Some(s) = syncs.get(&r.item_id)
                && s.revision > 0
                && (r.version < s.version || r.revision < s.revision)
            {
                return Err(backwards(format!(
                    "item {} is at version {} on the server, but this device has already seen version {}",
                    r.item_id, r.version, s.version
                )));
            }
        }
        // Every live record must decrypt as itself: its vault, id and version.
        let opened: Vec<std::result::Result<Option<Item>, (Uuid, String)>> = {
            let vk = vk.duplicate();
            let recs: Vec<ItemRecord> = records.iter().map(|r| to_record(vault_id, r)).collect();
            let deleted: Vec<bool> = records.iter().map(|r| r.deleted).collect();
            tokio::task::spawn_blocking(move || {
                recs.par_iter()
                    .zip(deleted.par_iter())
                    .map(|(rec, &del)| {
                        if del {
                            Ok(None)
                        } else {
                            open_full(&vk, rec)
                                .map(|(i, _)| Some(i))
                                .map_err(|why| (rec.id, why))
                        }
                    })
                    .collect()
            })
            .await
            .map_err(|e| Error::Damaged(format!("decryption stopped: {e}")))?
        };
        let damaged: Vec<String> = opened
            .iter()
            .filter_map(|o| o.as_ref().err())
            .map(|(id, why)| format!("{id} ({why})"))
            .collect();
        if !damaged.is_empty() {
            for d in &damaged {
                tracing::warn!(item = %d, "a record from the server does not decrypt");
            }
            return Err(Error::Untrusted(format!(
                "{} record(s) from the server do not decrypt as the items they claim to be \
                 (edited, swapped or moved to another vault on the server): {}",
                damaged.len(),
                damaged.join(", ")
            )));
        }
        // The manifest must describe exactly the state this pull produces.
        let mut lines = self.load_lines(vault_id).await?;
        for r in &records {
            lines.insert(r.item_id, line_of_record(r));
        }
        if manifest.is_none() && pulled.head > 0 {
            return Err(Error::Untrusted(format!(
                "the server sent no manifest for vault {vault_id} at revision {}",
                pulled.head
            )));
        }
        if let Some(m) = &manifest {
            let (items, digest) = digest_of(&lines);
            if m.head != pulled.head || m.items != items || m.digest != digest {
                return Err(Error::ManifestMismatch {
                    vault_id,
                    manifest_items: m.items,
                    manifest_head: m.head,
                    items,
                    head: pulled.head,
                });
            }
        }
        let mut ops = Vec::new();
        let mut new_items = Vec::new();
        for (r, item) in records.iter().zip(opened) {
            let theirs = item.unwrap_or(None);
            // Never seen here (every local item has an item_sync row): no
            // local state to merge with or to guard.
            if !syncs.contains_key(&r.item_id) {
                let rec = to_record(vault_id, r);
                let state = ItemSync {
                    item_id: r.item_id,
                    vault_id,
                    revision: r.revision,
                    version: r.version,
                    hash: (!r.deleted).then(|| hash_of(&rec)),
                    deleted: r.deleted,
                    dirty: false,
                };
                if r.deleted {
                    ops.push(SyncOp::Server {
                        item: state,
                        dirty: Some(false),
                    });
                } else {
                    new_items.push((rec, state));
                }
                continue;
            }
            self.decide(
                vault_id,
                vk,
                r,
                theirs,
                syncs.get(&r.item_id),
                &mut ops,
                report,
            )
            .await?;
        }
        if !new_items.is_empty() {
            ops.push(SyncOp::InsertNew(new_items));
        }
        ops.push(SyncOp::Lines {
            vault_id,
            blob: encode_lines(&lines),
        });
        ops.push(SyncOp::Progress {
            vault_id,
            cursor: pulled.head,
            counter,
            manifest_id,
            complete: false,
        });
        self.store
            .apply_sync(&ops, &self.sync_sealer())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(id) => Error::Conflict(id),
                other => other.into(),
            })?;
        report.pulled += records.len() as u64;
        report.changed.extend(records.iter().map(|r| r.item_id));
        Ok(())
    }

    /// The writes for one pulled record.
    #[allow(clippy::too_many_arguments)]
    async fn decide(
        &mut self,
        vault_id: Uuid,
        vk: &Key,
        r: &Record,
        theirs: Option<Item>,
        s: Option<&ItemSync>,
        ops: &mut Vec<SyncOp>,
        report: &mut VaultReport,
    ) -> Result<()> {
        let id = r.item_id;
        let rec = to_record(vault_id, r);
        let server = |dirty: Option<bool>| SyncOp::Server {
            item: ItemSync {
                item_id: id,
                vault_id,
                revision: r.revision,
                version: r.version,
                hash: (!r.deleted).then(|| hash_of(&rec)),
                deleted: r.deleted,
                dirty: false,
            },
            dirty,
        };
        let current = self.store.item(id).await?;
        let flagged = s.is_some_and(|s| s.dirty);
        // A local version newer than the server's is a local change even
        // without the flag: never replace it, merge it.
        let dirty = flagged || current.as_ref().is_some_and(|c| c.version > r.version);
        ops.push(SyncOp::Expect {
            item_id: id,
            version: current.as_ref().map(|c| c.version),
            dirty: flagged,
        });
        let now = now_millis();
        // Our own push coming back (its answer was lost, or another openk
        // process on this device pushed it): nothing to merge.
        if dirty
            && !r.deleted
            && let Some(mine) = self.store.item_at(id, r.version).await?
            && hash_of(&mine) == hash_of(&rec)
        {
            ops.push(server(None));
            return Ok(());
        }
        match (dirty, r.deleted, current, theirs) {
            // No local changes: take the server's copy.
            (false, true, current, _) => {
                if let Some(c) = current {
                    ops.push(SyncOp::Purge {
                        item_id: id,
                        vault_id,
                        version: c.version.max(r.version),
                        at: now,
                    });
                }
                ops.push(server(Some(false)));
            }
            (false, false, current, _) => {
                if let Some(c) = &current
                    && c.version < r.version
                {
                    if r.version > c.version + 1 {
                        self.fill_history(vault_id, vk, id, c.version, r.version, ops)
                            .await?;
                    }
                    ops.push(SyncOp::PutHistory(c.clone()));
                }
                ops.push(SyncOp::SetCurrent(rec.clone()));
                ops.push(SyncOp::DropTombstone(id));
                ops.push(server(Some(false)));
            }
            // Purged on both sides.
            (true, true, None, _) => ops.push(server(Some(false))),
            // Purged there, edited here: the edit wins and goes back up.
            (true, true, Some(c), _) => {
                let (item, ik) = open_full(vk, &c).map_err(|why| Error::DamagedItem { id, why })?;
                let note = "purged on another device while it was edited here; the edit was kept";
                let next = c.version.max(r.version) + 1;
                let mut overview = item.overview.clone();
                overview.conflict = Some(SyncConflict {
                    fields: vec!["trash".into()],
                    other_version: c.version,
                    note: note.into(),
                    at: now,
                });
                overview.updated_at = now.max(overview.updated_at);
                overview.updated_by = Some(self.header.device_id);
                ops.push(SyncOp::PutHistory(c.clone()));
                ops.push(SyncOp::SetCurrent(seal_item(
                    vk,
                    &ik,
                    ItemRef {
                        version: next,
                        ..item.r
                    },
                    &overview,
                    &item.details,
                )));
                ops.push(server(Some(true)));
                report.merged.push(id);
                report.conflicts.push(id);
            }
            // Purged here, edited there: the edit wins and comes back.
            (true, false, None, Some(theirs)) => {
                let (_, ik) = open_full(vk, &rec).map_err(|why| Error::DamagedItem { id, why })?;
                let mut overview = theirs.overview.clone();
                overview.conflict = Some(SyncConflict {
                    fields: vec!["trash".into()],
                    other_version: r.version,
                    note: "purged on this device while it was edited on another; the edit was kept"
                        .into(),
                    at: now,
                });
                overview.updated_at = now.max(overview.updated_at);
                overview.updated_by = Some(self.header.device_id);
                ops.push(SyncOp::PutHistory(rec.clone()));
                ops.push(SyncOp::SetCurrent(seal_item(
                    vk,
                    &ik,
                    ItemRef {
                        version: r.version + 1,
                        ..theirs.r
                    },
                    &overview,
                    &theirs.details,
                )));
                ops.push(SyncOp::DropTombstone(id));
                ops.push(server(Some(true)));
                report.merged.push(id);
                report.conflicts.push(id);
            }
            (true, false, None, None) => ops.push(server(Some(false))),
            // Changed on both sides: merge.
            (true, false, Some(c), theirs) => {
                let theirs = theirs.ok_or_else(|| Error::DamagedItem {
                    id,
                    why: "the server copy did not decrypt".into(),
                })?;
                let synced = s.map_or(0, |s| if s.deleted { 0 } else { s.version });
                let base = if synced > 0 {
                    match self.store.item_at(id, synced).await? {
                        Some(b) => open_full(vk, &b).ok().map(|(i, _)| i),
                        None => None,
                    }
                } else {
                    None
                };
                let (ours, ik) = open_full(vk, &c).map_err(|why| Error::DamagedItem { id, why })?;
                // Our unpushed versions move above the server's, so that
                // both sides' versions stay in history.
                let mine = self.store.versions_above(id, synced).await?;
                let mut renumbered = Vec::with_capacity(mine.len());
                for (i, m) in mine.iter().enumerate() {
                    renumbered.push(reseal(vk, m, r.version + 1 + i as u64)?);
                }
                let last_mine = renumbered.last().map_or(r.version, |m| m.version);
                let merged = merge::merge(base.as_ref(), &ours, &theirs);
                ops.push(SyncOp::DropHistoryAbove {
                    item_id: id,
                    above: synced,
                });
                ops.push(SyncOp::PutHistory(rec.clone()));
                let plain = merged.conflicts.is_empty() && !merged.untrashed;
                if plain
                    && same_content(
                        &merged.overview,
                        &merged.details,
                        &ours.overview,
                        &ours.details,
                    )
                    && let Some(last) = renumbered.pop()
                {
                    for m in renumbered {
                        ops.push(SyncOp::PutHistory(m));
                    }
                    ops.push(SyncOp::SetCurrent(last));
                } else {
                    for m in renumbered {
                        ops.push(SyncOp::PutHistory(m));
                    }
                    let mut overview = merged.overview;
                    overview.updated_at = now.max(overview.updated_at);
                    overview.updated_by = Some(self.header.device_id);
                    if !plain {
                        let mut note = String::new();
                        if !merged.conflicts.is_empty() {
                            note.push_str(&format!(
                                "changed on two devices: {}; kept the later edit, the other is version {}",
                                merged.conflicts.join(", "),
                                if merged.ours_won { r.version } else { last_mine }
                            ));
                        }
                        if merged.untrashed {
                            if !note.is_empty() {
                                note.push_str("; ");
                            }
                            note.push_str("moved to the trash on one device and edited on another; the edit was kept");
                        }
                        overview.conflict = Some(SyncConflict {
                            fields: merged.conflicts.clone(),
                            other_version: if merged.ours_won {
                                r.version
                            } else {
                                last_mine
                            },
                            note,
                            at: now,
                        });
                    }
                    ops.push(SyncOp::SetCurrent(seal_item(
                        vk,
                        &ik,
                        ItemRef {
                            version: last_mine + 1,
                            ..item_ref(&c)
                        },
                        &overview,
                        &merged.details,
                    )));
                    if !plain {
                        report.conflicts.push(id);
                    }
                }
                ops.push(SyncOp::DropTombstone(id));
                ops.push(server(Some(true)));
                report.merged.push(id);
            }
        }
        Ok(())
    }

    /// Fetches the versions between `have` and `to` from the server's
    /// history (another device saved several versions offline). Versions
    /// that do not decrypt are left out; history is a convenience here.
    ///
    /// # Errors
    /// Only when the server stops answering (or the time limit runs out):
    /// then nothing of the pull is applied, so that the next sync fetches
    /// this history instead of leaving a gap.
    async fn fill_history(
        &mut self,
        vault_id: Uuid,
        vk: &Key,
        id: Uuid,
        have: u64,
        to: u64,
        ops: &mut Vec<SyncOp>,
    ) -> Result<()> {
        let got = self
            .authed(|c| async move { c.item_history(vault_id, id).await })
            .await;
        let history = match got {
            Ok(h) => h,
            Err(e) if e.is_offline() => return Err(e),
            Err(e) => {
                tracing::debug!(item = %id, error = %e, "server history not available");
                return Ok(());
            }
        };
        for h in history
            .iter()
            .filter(|h| h.version > have && h.version < to && !h.deleted)
        {
            let rec = to_record(vault_id, h);
            if open_full(vk, &rec).is_ok() {
                ops.push(SyncOp::PutHistory(rec));
            }
        }
        Ok(())
    }

    /// Pushes every dirty item, one unpushed version per item per batch.
    async fn push_dirty(
        &mut self,
        vault_id: Uuid,
        vk: &Key,
        opts: &SyncOptions<'_>,
        report: &mut VaultReport,
    ) -> Result<Pushed> {
        // Read only when there is something to push (a no-change sync
        // must not decode every line of a big vault).
        let mut lines: Option<HashMap<Uuid, Line>> = None;
        let mut total = 0u64;
        let mut done = 0u64;
        loop {
            // One read of the dirty list per round; an item with several
            // unpushed versions comes back in the next round.
            let dirty = self.store.dirty_items(vault_id).await?;
            if dirty.is_empty() {
                let state = self.store.sync_state(vault_id).await?;
                self.store
                    .apply_sync(
                        &[SyncOp::Progress {
                            vault_id,
                            cursor: state.cursor,
                            counter: state.counter,
                            manifest_id: state.manifest_id,
                            complete: true,
                        }],
                        &self.sync_sealer(),
                    )
                    .await?;
                return Ok(Pushed::Done);
            }
            total = total.max(done + dirty.len() as u64);
            let lines = match &mut lines {
                Some(l) => l,
                None => lines.insert(self.load_lines(vault_id).await?),
            };
            for batch in dirty.chunks(PUSH_BATCH) {
                let mut changes: Vec<(Change, Option<[u8; 32]>)> = Vec::new();
                let mut clean = Vec::new();
                for s in batch {
                    // The oldest version the server lacks (above its live
                    // copy or its tombstone).
                    let next = self
                        .store
                        .versions_above(s.item_id, s.version)
                        .await?
                        .into_iter()
                        .next();
                    match next {
                        Some(rec) => {
                            let hash = hash_of(&rec);
                            changes.push((
                                Change {
                                    item_id: s.item_id,
                                    base_revision: s.revision,
                                    version: rec.version,
                                    deleted: false,
                                    wrapped_key: B64(rec.wrapped_key),
                                    overview: B64(rec.overview),
                                    details: B64(rec.details),
                                },
                                Some(hash),
                            ));
                        }
                        None => match self.store.tombstone(s.item_id).await? {
                            Some(v)
                                if !s.deleted && self.store.item(s.item_id).await?.is_none() =>
                            {
                                changes.push((
                                    Change {
                                        item_id: s.item_id,
                                        base_revision: s.revision,
                                        version: v.max(s.version).max(1),
                                        deleted: true,
                                        wrapped_key: B64::default(),
                                        overview: B64::default(),
                                        details: B64::default(),
                                    },
                                    None,
                                ));
                            }
                            // Nothing this device has that the server lacks.
                            _ => clean.push(SyncOp::Server {
                                item: s.clone(),
                                dirty: Some(false),
                            }),
                        },
                    }
                }
                if !clean.is_empty() {
                    self.store.apply_sync(&clean, &self.sync_sealer()).await?;
                }
                if changes.is_empty() {
                    continue;
                }
                // The manifest of the state this batch produces.
                let state = self.store.sync_state(vault_id).await?;
                let mut after = lines.clone();
                for (c, hash) in &changes {
                    after.insert(
                        c.item_id,
                        Line {
                            item_id: c.item_id,
                            version: c.version,
                            deleted: c.deleted,
                            hash: hash.unwrap_or([0; 32]),
                        },
                    );
                }
                let (items, digest) = digest_of(&after);
                let n = changes.len() as i64;
                let m = Manifest {
                    format: manifest::CHAINED,
                    prev: state.manifest_id.map(|id| manifest::hex_lower(&id)),
                    vault_id,
                    counter: state.counter + 1,
                    head: state.cursor + n,
                    items,
                    digest,
                    device_id: self.header.device_id,
                    created_at: now_millis(),
                };
                let pending = PendingPush {
                    id: Uuid::now_v7(),
                    expected_head: state.cursor,
                    counter: m.counter,
                    manifest: B64(m.seal(vk)),
                    changes: changes
                        .iter()
                        .map(|(c, _)| PendingChange {
                            item_id: c.item_id,
                            version: c.version,
                            deleted: c.deleted,
                            base_revision: c.base_revision,
                        })
                        .collect(),
                };
                let hashes: Vec<Option<[u8; 32]>> = changes.iter().map(|(_, h)| *h).collect();
                let req = PushRequest {
                    client_change_id: pending.id,
                    changes: changes.into_iter().map(|(c, _)| c).collect(),
                    manifest: Some(pending.manifest.clone()),
                    expected_head: Some(state.cursor),
                };
                match self
                    .send_push(vault_id, &pending, &req, &hashes, &after)
                    .await?
                {
                    Some(applied) => {
                        *lines = after;
                        done += applied;
                        report.pushed += applied;
                        if let Some(p) = opts.progress {
                            p(Progress::Pushing {
                                done,
                                total: total.max(done),
                            });
                        }
                    }
                    None => return Ok(Pushed::Moved),
                }
            }
        }
    }

    /// Records a push as pending, sends it, and applies the answer. Returns
    /// the number applied, or `None` when another device pushed first.
    async fn send_push(
        &mut self,
        vault_id: Uuid,
        pending: &PendingPush,
        req: &PushRequest,
        hashes: &[Option<[u8; 32]>],
        after: &HashMap<Uuid, Line>,
    ) -> Result<Option<u64>> {
        let json = serde_json::to_string(pending)
            .map_err(|e| Error::Damaged(format!("cannot record the push: {e}")))?;
        self.store
            .apply_sync(
                &[SyncOp::Pending {
                    vault_id,
                    pending: Some(json),
                }],
                &self.sync_sealer(),
            )
            .await?;
        let sent = self
            .authed(|c| {
                let req = req.clone();
                async move { c.push(vault_id, &req).await }
            })
            .await;
        let clear = SyncOp::Pending {
            vault_id,
            pending: None,
        };
        let resp = match sent {
            Ok(r) => r,
            Err(Error::HeadMoved) => {
                self.store.apply_sync(&[clear], &self.sync_sealer()).await?;
                return Ok(None);
            }
            // Unknown whether it arrived: keep it pending, re-sent next time.
            Err(e) if e.is_offline() => return Err(e),
            Err(e) => {
                self.store.apply_sync(&[clear], &self.sync_sealer()).await?;
                return Err(e);
            }
        };
        if !resp.conflicts.is_empty() {
            self.store.apply_sync(&[clear], &self.sync_sealer()).await?;
            return Ok(None);
        }
        let n = pending.changes.len();
        let fits = resp.applied.len() == n
            && resp.head == pending.expected_head + n as i64
            && resp.applied.iter().zip(&pending.changes).all(|(a, c)| {
                a.item_id == c.item_id
                    && a.revision > pending.expected_head
                    && a.revision <= resp.head
            });
        if !fits {
            self.store.apply_sync(&[clear], &self.sync_sealer()).await?;
            return Err(Error::Untrusted(format!(
                "the server's answer to a push of {n} changes does not fit it (head {}, {} applied)",
                resp.head,
                resp.applied.len()
            )));
        }
        let mut ops = Vec::with_capacity(n + 3);
        for ((a, c), hash) in resp.applied.iter().zip(&pending.changes).zip(hashes) {
            let hash = if c.deleted { None } else { *hash };
            ops.push(SyncOp::Server {
                item: ItemSync {
                    item_id: c.item_id,
                    vault_id,
                    revision: a.revision,
                    version: c.version,
                    hash,
                    deleted: c.deleted,
                    dirty: false,
                },
                dirty: None,
            });
        }
        ops.push(SyncOp::Lines {
            vault_id,
            blob: encode_lines(after),
        });
        ops.push(SyncOp::Progress {
            vault_id,
            cursor: resp.head,
            counter: pending.counter,
            manifest_id: Some(manifest::manifest_id(&pending.manifest.0)),
            complete: false,
        });
        ops.push(clear);
        self.store.apply_sync(&ops, &self.sync_sealer()).await?;
        Ok(Some(n as u64))
    }

    /// Re-sends a push whose answer never arrived (same id, same versions).
    async fn resend(&mut self, vault_id: Uuid, json: &str, report: &mut VaultReport) -> Result<()> {
        let clear = SyncOp::Pending {
            vault_id,
            pending: None,
        };
        let Ok(pending) = serde_json::from_str::<PendingPush>(json) else {
            return Ok(self.store.apply_sync(&[clear], &self.sync_sealer()).await?);
        };
        let mut changes = Vec::with_capacity(pending.changes.len());
        let mut hashes = Vec::with_capacity(pending.changes.len());
        let mut after = self.load_lines(vault_id).await?;
        for c in &pending.changes {
            let blobs = if c.deleted {
                Some((Vec::new(), Vec::new(), Vec::new()))
            } else {
                self.store
                    .item_at(c.item_id, c.version)
                    .await?
                    .map(|r| (r.wrapped_key, r.overview, r.details))
            };
            let Some((wrapped_key, overview, details)) = blobs else {
                // A version that is gone cannot be re-sent; the next pull
                // shows whether the server has it.
                return Ok(self.store.apply_sync(&[clear], &self.sync_sealer()).await?);
            };
            let hash =
                (!c.deleted).then(|| manifest::record_hash(&wrapped_key, &overview, &details));
            after.insert(
                c.item_id,
                Line {
                    item_id: c.item_id,
                    version: c.version,
                    deleted: c.deleted,
                    hash: hash.unwrap_or([0; 32]),
                },
            );
            hashes.push(hash);
            changes.push(Change {
                item_id: c.item_id,
                base_revision: c.base_revision,
                version: c.version,
                deleted: c.deleted,
                wrapped_key: B64(wrapped_key),
                overview: B64(overview),
                details: B64(details),
            });
        }
        let req = PushRequest {
            client_change_id: pending.id,
            changes,
            manifest: Some(pending.manifest.clone()),
            expected_head: Some(pending.expected_head),
        };
        if let Some(n) = self
            .send_push(vault_id, &pending, &req, &hashes, &after)
            .await?
        {
            report.pushed += n;
        }
        Ok(())
    }

    /// Downloads the whole server state of a vault and compares it with
    /// its manifest and with what this device knows. Items the server lost
    /// are marked to be pushed again.
    async fn verify_vault(&mut self, vault_id: Uuid, vk: &Key) -> Result<VerifyReport> {
        let pulled = self.pull_all(vault_id, 0, &SyncOptions::default()).await?;
        let manifest = pulled
            .manifest
            .as_deref()
            .map(|b| Manifest::open(vk, vault_id, b))
            .transpose()
            .map_err(|e| Error::Untrusted(format!("vault {vault_id}: {e}")))?;
        let server: HashMap<Uuid, Line> = pulled
            .records
            .iter()
            .map(|r| {
                (
                    r.item_id,
                    Line {
                        item_id: r.item_id,
                        version: r.version,
                        deleted: r.deleted,
                        hash: if r.deleted {
                            [0; 32]
                        } else {
                            manifest::record_hash(&r.wrapped_key.0, &r.overview.0, &r.details.0)
                        },
                    },
                )
            })
            .collect();
        let syncs: HashMap<Uuid, ItemSync> = self
            .store
            .item_syncs(vault_id)
            .await?
            .into_iter()
            .map(|s| (s.item_id, s))
            .collect();
        let mut local = self.load_lines(vault_id).await?;
        let (items, digest) = digest_of(&server);
        let server_matches_manifest = manifest
            .as_ref()
            .is_some_and(|m| m.items == items && m.digest == digest && m.head == pulled.head)
            || (manifest.is_none() && pulled.head == 0);
        let mut report = VerifyReport {
            manifest_counter: manifest.as_ref().map_or(0, |m| m.counter),
            server_items: items,
            local_items: local.len() as u64,
            server_matches_manifest,
            ..VerifyReport::default()
        };
        let mut repair = Vec::new();
        let mut gone = Vec::new();
        for (id, l) in &local {
            match server.get(id) {
                None => {
                    report.missing_on_server.push(*id);
                    if !l.deleted
                        && let Some(s) = syncs.get(id)
                    {
                        gone.push(*id);
                        repair.push(SyncOp::Server {
                            item: ItemSync {
                                revision: 0,
                                version: 0,
                                hash: None,
                                deleted: false,
                                dirty: true,
                                ..s.clone()
                            },
                            dirty: Some(true),
                        });
                    }
                }
                Some(sl) if sl != l => report.differing.push(*id),
                Some(_) => {}
            }
        }
        for id in server.keys().filter(|id| !local.contains_key(id)) {
            report.unknown_here.push(*id);
        }
        report.missing_on_server.sort_unstable();
        report.differing.sort_unstable();
        report.unknown_here.sort_unstable();
        report.repushed = repair.len() as u64;
        report.matches = server_matches_manifest
            && report.missing_on_server.is_empty()
            && report.differing.is_empty()
            && report.unknown_here.is_empty();
        if !repair.is_empty() {
            for id in &gone {
                local.remove(id);
            }
            repair.push(SyncOp::Lines {
                vault_id,
                blob: encode_lines(&local),
            });
            self.store.apply_sync(&repair, &self.sync_sealer()).await?;
        }
        tracing::info!(vault = %vault_id, matches = report.matches, "verified against the server");
        Ok(report)
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;
    use crate::store::SyncState;

    fn manifest(counter: u64, prev: Option<[u8; 32]>) -> Manifest {
        Manifest {
            format: if prev.is_some() { manifest::CHAINED } else { 1 },
            prev: prev.map(|p| manifest::hex_lower(&p)),
            vault_id: Uuid::from_u128(1),
            counter,
            head: 1,
            items: 0,
            digest: String::new(),
            device_id: Uuid::from_u128(2),
            created_at: 0,
        }
    }

    fn state(counter: u64, id: Option<[u8; 32]>) -> SyncState {
        SyncState {
            counter,
            manifest_id: id,
            ..SyncState::default()
        }
    }

    fn is_fork(r: Result<()>) -> bool {
        matches!(r, Err(Error::Fork { .. }))
    }

    #[test]
    fn an_equal_counter_with_another_manifest_is_a_fork() {
        let v = Uuid::from_u128(1);
        let m = manifest(4, Some([7; 32]));
        assert!(check_chain(v, &state(4, Some([1; 32])), &m, [1; 32]).is_ok());
        assert!(is_fork(check_chain(
            v,
            &state(4, Some([1; 32])),
            &m,
            [2; 32]
        )));
    }

    #[test]
    fn the_next_manifest_must_name_the_one_accepted() {
        let v = Uuid::from_u128(1);
        let have = state(4, Some([1; 32]));
        assert!(check_chain(v, &have, &manifest(5, Some([1; 32])), [9; 32]).is_ok());
        assert!(is_fork(check_chain(
            v,
            &have,
            &manifest(5, Some([3; 32])),
            [9; 32]
        )));
        // After a gap the link cannot be followed (the digest check stands).
        assert!(check_chain(v, &have, &manifest(7, Some([3; 32])), [9; 32]).is_ok());
    }

    #[test]
    fn an_unlinked_manifest_is_accepted_once_during_the_upgrade() {
        let v = Uuid::from_u128(1);
        // A device from before the chain (counter, no id): accepted, kept.
        assert!(check_chain(v, &state(4, None), &manifest(5, None), [9; 32]).is_ok());
        assert!(check_chain(v, &state(4, None), &manifest(4, None), [9; 32]).is_ok());
        // Once a manifest id is kept, an unlinked newer one is refused.
        let r = check_chain(v, &state(5, Some([9; 32])), &manifest(6, None), [8; 32]);
        assert!(matches!(r, Err(Error::UnlinkedManifest { .. })));
    }
}
