//! Pushing: every unpushed version in order, in batches that carry the
//! manifest of the state they produce; a push whose answer never came is
//! re-sent with the same id.

use std::collections::HashMap;

use openk_server::api::types::{B64, Change, PushRequest};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::super::Session;
use super::super::error::{Error, Result};
use super::super::members::{Authorship, content_hash};
use super::super::model::now_millis;
use super::super::open_full;
use super::{PUSH_BATCH, Progress, Pushed, SyncOptions, VaultReport, hash_of};
use crate::crypto::Key;
use crate::store::{ActivityKey, ItemSync, SyncOp};
use crate::sync::lines::{digest_of, encode_lines};
use crate::sync::manifest::{self, Line, Manifest};

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

impl Session {
    /// Pushes every dirty item, one unpushed version per item per batch.
    pub(super) async fn push_dirty(
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
                                    authorship: self.authorship(
                                        vault_id,
                                        s.item_id,
                                        rec.version,
                                        Some(content_hash(&rec.overview, &rec.details)),
                                    ),
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
                                let version = v.max(s.version).max(1);
                                changes.push((
                                    Change {
                                        item_id: s.item_id,
                                        base_revision: s.revision,
                                        version,
                                        deleted: true,
                                        authorship: self
                                            .authorship(vault_id, s.item_id, version, None),
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
                    after.insert(c.item_id, Line::new(c.item_id, c.version, c.deleted, *hash));
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
                    key_epoch: Some(self.vault_epoch(vault_id)).filter(|e| *e > 1),
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
        if self.share_logs.contains_key(&vault_id) {
            self.pushed_activity(vault_id, req, &mut ops).await?;
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

    /// The activity rows of the versions a push to a shared vault applied.
    async fn pushed_activity(
        &self,
        vault_id: Uuid,
        req: &PushRequest,
        ops: &mut Vec<SyncOp>,
    ) -> Result<()> {
        let vk = self.vault_key(vault_id)?;
        for c in &req.changes {
            let key = ActivityKey {
                item_id: c.item_id,
                version: c.version,
                deleted: c.deleted,
            };
            let authorship = Authorship::from_wire(c.authorship.as_ref());
            if c.deleted {
                ops.push(self.pushed_purge_op(vault_id, key, authorship).await?);
                continue;
            }
            let open = |r: Option<crate::store::ItemRecord>| r.and_then(|r| open_full(vk, &r).ok());
            let new = open(self.store.item_at(c.item_id, c.version).await?);
            let prev = match c.version.checked_sub(1).filter(|v| *v > 0) {
                Some(v) => open(self.store.item_at(c.item_id, v).await?),
                None => None,
            };
            ops.push(self.activity_op(
                vault_id,
                key,
                prev.as_ref(),
                new.as_ref(),
                authorship,
                Some(content_hash(&c.overview.0, &c.details.0)),
            ));
        }
        Ok(())
    }

    /// Re-sends a push whose answer never arrived (same id, same versions).
    pub(super) async fn resend(
        &mut self,
        vault_id: Uuid,
        json: &str,
        report: &mut VaultReport,
    ) -> Result<()> {
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
            after.insert(c.item_id, Line::new(c.item_id, c.version, c.deleted, hash));
            hashes.push(hash);
            changes.push(Change {
                item_id: c.item_id,
                base_revision: c.base_revision,
                version: c.version,
                deleted: c.deleted,
                authorship: self.authorship(
                    vault_id,
                    c.item_id,
                    c.version,
                    (!c.deleted).then(|| content_hash(&overview, &details)),
                ),
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
            key_epoch: Some(self.vault_epoch(vault_id)).filter(|e| *e > 1),
        };
        if let Some(n) = self
            .send_push(vault_id, &pending, &req, &hashes, &after)
            .await?
        {
            report.pushed += n;
        }
        Ok(())
    }
}
