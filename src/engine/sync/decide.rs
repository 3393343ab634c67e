//! What one pulled record does to the local copy: take it, keep the local
//! edit, or merge both ([`super::super::merge`]).

use openk_server::api::types::Record;
use uuid::Uuid;

use super::super::error::{Error, Result};
use super::super::members::{Authorship, content_hash};
use super::super::merge;
use super::super::model::{Details, Item, ItemRef, Overview, SyncConflict, now_millis};
use super::super::{Session, item_ref, open_full, seal_item};
use super::{VaultReport, hash_of, synced, to_record};
use crate::crypto::Key;
use crate::store::{ActivityKey, ItemRecord, ItemSync, SyncOp};

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

/// Re-seals a version under another version number.
fn reseal(vault_key: &Key, rec: &ItemRecord, version: u64) -> Result<ItemRecord> {
    let item = open_full(vault_key, rec).map_err(|why| Error::DamagedItem { id: rec.id, why })?;
    let r = ItemRef { version, ..item.r };
    Ok(seal_item(vault_key, r, &item.overview, &item.details))
}

impl Session {
    /// The writes for one pulled record.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn decide(
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
            item: synced(vault_id, r, &rec),
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
        // process on this device pushed it): nothing to merge. After a key
        // rotation the server's copy is re-wrapped (other bytes, same
        // contents).
        if dirty
            && !r.deleted
            && let Some(mine) = self.store.item_at(id, r.version).await?
            && (hash_of(&mine) == hash_of(&rec)
                || theirs.as_ref().is_some_and(|t| {
                    open_full(vk, &mine).is_ok_and(|m| {
                        same_content(&m.overview, &m.details, &t.overview, &t.details)
                            && m.overview.updated_at == t.overview.updated_at
                    })
                }))
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
                let item = open_full(vk, &c).map_err(|why| Error::DamagedItem { id, why })?;
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
                        Some(b) => open_full(vk, &b).ok(),
                        None => None,
                    }
                } else {
                    None
                };
                let ours = open_full(vk, &c).map_err(|why| Error::DamagedItem { id, why })?;
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
        // In a shared vault each version in between is also a line of
        // its activity, told from the one before it.
        let shared = self.share_logs.contains_key(&vault_id);
        let mut prev = match self.store.item_at(id, have).await? {
            Some(c) if shared => open_full(vk, &c).ok(),
            _ => None,
        };
        let mut between: Vec<&Record> = history
            .iter()
            .filter(|h| h.version > have && h.version < to && !h.deleted)
            .collect();
        between.sort_unstable_by_key(|h| h.version);
        for h in between {
            let rec = to_record(vault_id, h);
            if let Ok(item) = open_full(vk, &rec) {
                if shared && self.refusal(vault_id, h).is_none() {
                    ops.push(self.activity_op(
                        vault_id,
                        ActivityKey {
                            item_id: id,
                            version: h.version,
                            deleted: false,
                        },
                        prev.as_ref(),
                        Some(&item),
                        Authorship::from_wire(h.authorship.as_ref()),
                        Some(content_hash(&h.overview.0, &h.details.0)),
                    ));
                }
                prev = Some(item);
                ops.push(SyncOp::PutHistory(rec));
            }
        }
        Ok(())
    }
}
