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
//! After every vault, the account's item usage counters are exchanged
//! ([`super::usage`]): never a reason for the item sync to fail.
//!
//! Nothing local is changed by an answer that fails a check.

mod decide;
mod events;
mod pull;
mod push;
mod rotate;
mod verify;

use std::collections::HashMap;

use openk_server::api::types::{self as wire, B64, Record};
use serde::Serialize;
use uuid::Uuid;

use super::error::{Error, Result};
use super::model::now_millis;
use super::vault::own_copy_epoch;
use super::{Session, Vault};
use crate::crypto::Key;
use crate::store::{ItemRecord, ItemSync};
use crate::sync::lines::decode_lines;
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
    /// Leave a shared vault's due key rotation to a later sync (the
    /// rotation itself syncs with this set).
    pub skip_rotation: bool,
}

pub use crate::sync::client::limits;
pub use events::{EventStream, ServerEvent};

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
    /// Versions of a shared vault's items that were refused because their
    /// author was not allowed to write them (or their signature does not
    /// verify); the last good version is kept. Each says which and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<String>,
    /// A shared vault's rotated key this sync took (its new epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_key_epoch: Option<u32>,
    /// This device rotated the shared vault's key (a member had left).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rotated: bool,
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
    /// Shared vaults this device no longer has (removed from, or left).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left: Vec<super::LeftVault>,
    /// What went wrong without stopping the sync (e.g. a key rotation that
    /// is due but could not be done now).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The account's item usage counters (exchanged after the vaults).
    pub usage: super::usage::UsageReport,
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
    Line::new(s.item_id, s.version, s.deleted, s.hash)
}

/// The sync state of a server record taken as it is (`rec` is its local
/// form): this device is at its revision and has nothing to push.
fn synced(vault_id: Uuid, r: &Record, rec: &ItemRecord) -> ItemSync {
    ItemSync {
        item_id: r.item_id,
        vault_id,
        revision: r.revision,
        version: r.version,
        hash: (!r.deleted).then(|| hash_of(rec)),
        deleted: r.deleted,
        dirty: false,
    }
}

/// The manifest a vault's pull brought, opened and checked with the vault
/// key (`None` when the server has none yet).
fn open_manifest(vk: &Key, vault_id: Uuid, blob: Option<&[u8]>) -> Result<Option<Manifest>> {
    blob.map(|b| Manifest::open(vk, vault_id, b))
        .transpose()
        .map_err(|e| Error::Untrusted(format!("vault {vault_id}: {e}")))
}

fn manifest_lines(syncs: &HashMap<Uuid, ItemSync>) -> HashMap<Uuid, Line> {
    syncs
        .values()
        .filter(|s| s.revision > 0)
        .map(|s| (s.item_id, line_of(s)))
        .collect()
}

impl Session {
    /// Whether this vault is logged in to a server (sync is possible).
    #[must_use]
    pub fn is_logged_in(&self) -> bool {
        self.remote.as_ref().is_some_and(|r| r.tokens.is_some())
    }

    /// Whether a write just committed here is followed by a sync: the vault
    /// is logged in and the front end's user did not turn it off (`wanted`:
    /// `auto_sync` in the config, no `--no-sync`).
    #[must_use]
    pub fn syncs_after_write(&self, wanted: bool) -> bool {
        wanted && self.is_logged_in()
    }

    /// After a local write: syncs when [`Session::syncs_after_write`] says
    /// so, giving up after [`limits::AFTER_WRITE`] so that a slow or silent
    /// server never holds the front end. `None`: no sync was due. The write
    /// is already committed, so a failed sync leaves the change pending.
    pub async fn after_write(&mut self, wanted: bool) -> Option<Result<SyncReport>> {
        if !self.syncs_after_write(wanted) {
            return None;
        }
        // A due key rotation waits for a sync of its own: a write stays quick.
        let opts = SyncOptions {
            time_limit: Some(limits::AFTER_WRITE),
            skip_rotation: true,
            ..SyncOptions::default()
        };
        Some(self.sync(&opts).await)
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
        Ok(manifest_lines(&self.syncs_by_item(vault_id).await?))
    }

    /// A vault's sync states by item id.
    async fn syncs_by_item(&self, vault_id: Uuid) -> Result<HashMap<Uuid, ItemSync>> {
        Ok(self
            .store
            .item_syncs(vault_id)
            .await?
            .into_iter()
            .map(|s| (s.item_id, s))
            .collect())
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
        if self.rotation_unfinished().await? {
            self.take_rotated_account_key().await?;
        }
        let mut report = SyncReport {
            left: self.reconcile_vaults().await?,
            ..SyncReport::default()
        };
        let ids: Vec<Uuid> = self.vaults.iter().map(|v| v.id).collect();
        let mut due = Vec::new();
        for id in ids {
            match self.sync_vault(id, opts).await {
                Ok(r) => {
                    self.refresh_loaded(&r.changed).await?;
                    if self.rotation_due_here(id) {
                        due.push(report.vaults.len());
                    }
                    report.vaults.push(r);
                }
                // Taken away between the vault list and now: the next sync
                // says so.
                Err(Error::NotFound(_)) if self.is_others(id).await? => {}
                Err(e) => {
                    self.loaded = None;
                    return Err(e);
                }
            }
        }
        // A vault's name sealed under a key this device took only now.
        if report.vaults.iter().any(|v| v.new_key_epoch.is_some()) {
            self.retake_names().await?;
        }
        // A member left since the key was rotated, and this account
        // manages the vault: its key is rotated now.
        for i in due.into_iter().filter(|_| !opts.skip_rotation) {
            let id = report.vaults[i].vault_id;
            match Box::pin(self.rotate_vault_key(id)).await {
                Ok(()) => report.vaults[i].rotated = true,
                Err(e) if e.is_offline() => return Err(e),
                Err(e) => report.warnings.push(format!(
                    "the key of shared vault {:?} is due for a rotation (a member left), which \
                     failed: {e}; the next sync tries again",
                    report.vaults[i].name
                )),
            }
        }
        report.usage = self.sync_usage().await;
        match self.push_security().await {
            Ok(_) => {}
            Err(e @ Error::HistoryTampered(_)) => report.warnings.push(format!(
                "{e}; this device's security events stay queued (`openk audit` shows the history)"
            )),
            Err(e) => tracing::debug!(error = %e, "security events not sent; the next sync tries"),
        }
        Ok(report)
    }

    /// Takes every vault's name from the server again (after a rotated key
    /// made names readable that were not before).
    async fn retake_names(&mut self) -> Result<()> {
        let own = self.authed(|c| async move { c.vaults().await }).await?;
        let shared = self.authed(|c| async move { c.shared().await }).await?;
        let metas: Vec<(Uuid, Vec<u8>)> = own
            .into_iter()
            .map(|v| (v.id, v.meta.0))
            .chain(shared.into_iter().map(|s| (s.id, s.meta.0)))
            .collect();
        for (id, meta) in metas {
            self.take_name(id, &meta).await?;
        }
        Ok(())
    }

    /// Whether this device should rotate the vault's key now: a member left
    /// since the last rotation, and this account manages the vault.
    fn rotation_due_here(&self, vault_id: Uuid) -> bool {
        self.share_logs.get(&vault_id).is_some_and(|m| {
            m.rotation_due()
                && m.members
                    .get(&self.header.account_id)
                    .is_some_and(|s| s.role.manages())
        })
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
    pub(super) async fn reconcile_vaults(&mut self) -> Result<Vec<super::LeftVault>> {
        let on_server = self.authed(|c| async move { c.vaults().await }).await?;
        let local = self.store.vaults().await?;
        for s in &on_server {
            self.take_name(s.id, &s.meta.0).await?;
        }
        for v in local
            .iter()
            .filter(|v| !on_server.iter().any(|s| s.id == v.id))
        {
            // Another account's vault is on the server under its owner.
            if self.is_others(v.id).await? {
                continue;
            }
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
            let vault = Vault::unwrap(
                &self.account_key,
                self.header.account_id,
                s.id,
                &s.wrapped_key.0,
                &s.meta.0,
                own_copy_epoch(s),
            )
            .map_err(|_| {
                Error::Untrusted(format!(
                    "the server offers vault {} whose key does not decrypt with this account's key",
                    s.id
                ))
            })?;
            self.store
                .insert_vault(&crate::store::VaultRecord {
                    id: s.id,
                    wrapped_key: s.wrapped_key.0.clone(),
                    meta: s.meta.0.clone(),
                    created_at: now_millis(),
                    key_epoch: own_copy_epoch(s),
                })
                .await?;
            self.vaults.push(vault);
        }
        // This account's vaults whose key another of its devices rotated.
        for s in on_server.iter().filter(|s| !s.shared) {
            self.take_own_rotated_key(s).await?;
        }
        // This account's vaults that another of its devices shared.
        for s in on_server.iter().filter(|s| s.shared) {
            self.note_own_shared(s.id).await?;
        }
        // Vaults shared with this account that another of its devices
        // accepted.
        let shared = match self.authed(|c| async move { c.shared().await }).await {
            // A server from before shared vaults: it shares nothing, and
            // takes nothing away either.
            Err(Error::NotFound(_)) => return Ok(Vec::new()),
            other => other?,
        };
        for s in shared.iter().filter(|s| s.status == "active") {
            if local.iter().any(|v| v.id == s.id) {
                self.note_role(s.id, &s.role).await?;
                self.take_name(s.id, &s.meta.0).await?;
            } else {
                self.adopt_shared(s).await?;
            }
        }
        // Shared with this account here, but no longer on the server: the
        // member was removed (or left on another device).
        let mut left = Vec::new();
        for (id, state) in self.shares().await? {
            if !state.mine
                && self.vaults.iter().any(|v| v.id == id)
                && !shared.iter().any(|s| s.id == id)
            {
                left.push(self.drop_shared(id).await?);
            }
        }
        Ok(left)
    }

    /// Before sealing something with a shared vault's key outside a sync
    /// (its name): the key of the log's current epoch.
    pub(super) async fn take_current_key(&mut self, vault_id: Uuid) -> Result<()> {
        let mut report = VaultReport::default();
        self.refresh_membership(vault_id, &mut report).await
    }

    /// Reads a shared vault's membership log again (verified) and takes
    /// its key when the log moved to a new epoch.
    async fn refresh_membership(&mut self, vault_id: Uuid, report: &mut VaultReport) -> Result<()> {
        let mut tries = 0;
        loop {
            match self.sync_membership(vault_id).await? {
                Some(m) => self.share_logs.insert(vault_id, m),
                None => self.share_logs.remove(&vault_id),
            };
            match self.catch_up_key(vault_id).await {
                Ok(Some(epoch)) => report.new_key_epoch = Some(epoch),
                Ok(None) => {}
                // Rotated again since the log was read.
                Err(Error::KeyRotated) if tries < 3 => {
                    tries += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            return Ok(());
        }
    }

    async fn sync_vault(&mut self, vault_id: Uuid, opts: &SyncOptions<'_>) -> Result<VaultReport> {
        let mut report = VaultReport {
            vault_id,
            name: self.vault_name(vault_id).to_owned(),
            ..VaultReport::default()
        };
        // A shared vault: its verified log says who may author versions,
        // and under which key epoch.
        self.refresh_membership(vault_id, &mut report).await?;
        if let Some(p) = self.store.sync_state(vault_id).await?.pending {
            match self.resend(vault_id, &p, &mut report).await {
                // Sent under a key rotated meanwhile: its items go up again.
                Err(Error::KeyRotated) => self.refresh_membership(vault_id, &mut report).await?,
                other => other?,
            }
        }
        let mut done = false;
        for _ in 0..ATTEMPTS {
            let vk = self.vault_key(vault_id)?.duplicate();
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
            match self.push_dirty(vault_id, &vk, opts, &mut report).await {
                Ok(Pushed::Done) => {
                    done = true;
                    break;
                }
                Ok(Pushed::Moved) => {}
                // Rotated meanwhile: take the new key, then pull and push.
                Err(Error::KeyRotated) => self.refresh_membership(vault_id, &mut report).await?,
                Err(e) => return Err(e),
            }
        }
        if !done {
            return Err(Error::KeptMoving(report.name));
        }
        let vk = self.vault_key(vault_id)?.duplicate();
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
}
