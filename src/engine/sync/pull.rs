//! Pulling: every page of changes since the cursor, checked against what
//! this device has seen and against the vault manifest, then applied.

use std::collections::HashMap;

use openk_server::api::types::Record;
use rayon::prelude::*;
use uuid::Uuid;

use super::super::error::{Error, Result};
use super::super::members::{Authorship, content_hash};
use super::super::model::Item;
use super::super::{Session, open_full};
use super::{
    PULL_PAGE, Progress, Pulled, SyncOptions, VaultReport, backwards, fork, open_manifest, synced,
    to_record,
};
use crate::crypto::Key;
use crate::store::{ActivityKey, ItemRecord, ItemSync, StoreError, SyncOp};
use crate::sync::lines::{digest_of, encode_lines, line_of_record};
use crate::sync::manifest::{self, Manifest};

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

impl Session {
    /// The activity row of a pulled version of a shared vault, told from
    /// `before` (else this device's current copy).
    async fn pulled_activity(
        &self,
        vault_id: Uuid,
        vk: &Key,
        r: &Record,
        before: Option<ItemRecord>,
        theirs: Option<&Item>,
    ) -> Result<SyncOp> {
        let before = match before {
            Some(b) => Some(b),
            None => self.store.item(r.item_id).await?,
        };
        let prev = before.and_then(|c| open_full(vk, &c).ok());
        let hash = if r.deleted {
            [0; 32]
        } else {
            content_hash(&r.overview.0, &r.details.0)
        };
        let key = ActivityKey {
            item_id: r.item_id,
            version: r.version,
            deleted: r.deleted,
        };
        let authorship = Authorship::from_wire(r.authorship.as_ref());
        Ok(self.activity_op(vault_id, key, prev.as_ref(), theirs, authorship, Some(hash)))
    }

    /// Every page of changes since `since`.
    pub(super) async fn pull_all(
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
    pub(super) async fn apply_pulled(
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
        let manifest = open_manifest(vk, vault_id, pulled.manifest.as_deref())?;
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
                            open_full(&vk, rec).map(Some).map_err(|why| (rec.id, why))
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
            // A shared vault's version by someone who may not write it
            // (a viewer with a server that took it): the local copy stays.
            if let Some(why) = self.refusal(vault_id, r) {
                tracing::warn!(item = %r.item_id, version = r.version, "refused a version of a shared vault");
                report.refused.push(why);
                continue;
            }
            let theirs = item.unwrap_or(None);
            let activity = self.share_logs.contains_key(&vault_id)
                && syncs
                    .get(&r.item_id)
                    .is_none_or(|s| r.version > s.version || (r.deleted && !s.deleted));
            let theirs_for_activity = if activity { theirs.clone() } else { None };
            // Never seen here (every local item has an item_sync row): no
            // local state to merge with or to guard.
            if !syncs.contains_key(&r.item_id) {
                if activity {
                    ops.push(
                        self.pulled_activity(vault_id, vk, r, None, theirs_for_activity.as_ref())
                            .await?,
                    );
                }
                let rec = to_record(vault_id, r);
                let state = synced(vault_id, r, &rec);
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
            let from = ops.len();
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
            if activity {
                // Told from the version before it: one the server's
                // history filled in, else the local copy.
                let filled = ops[from..]
                    .iter()
                    .filter_map(|op| match op {
                        SyncOp::PutHistory(h) if h.id == r.item_id && h.version < r.version => {
                            Some(h)
                        }
                        _ => None,
                    })
                    .max_by_key(|h| h.version)
                    .cloned();
                let op = self
                    .pulled_activity(vault_id, vk, r, filled, theirs_for_activity.as_ref())
                    .await?;
                ops.push(op);
            }
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
