//! A shared vault's key rotation as the server applies it: every live item
//! key the server holds re-wrapped under the new vault key, and the manifest
//! of the state that results, computed on this device's synced state (the
//! caller syncs first and sends the rotation only while the vault's head is
//! still the one it was computed on).

use std::collections::HashMap;

use openk_server::api::types::{B64, Rewrapped};
use uuid::Uuid;

use super::super::Session;
use super::super::error::{Error, Result};
use super::super::members::{Membership, content_hash};
use super::super::model::now_millis;
use super::to_record;
use crate::crypto::{self, Aad, Key};
use crate::store::{ItemRecord, ItemSync, SyncOp};
use crate::sync::lines::{digest_of, encode_lines};
use crate::sync::manifest::{self, Line, Manifest, record_hash};

/// What a rotation sends besides the log entry and the sealed keys, and
/// what this device writes once the server took it.
pub(in crate::engine) struct RewrapPlan {
    pub records: Vec<Rewrapped>,
    pub manifest: Vec<u8>,
    pub expected_head: i64,
    /// The local writes that make this device's copy the server's after
    /// the rotation (the re-wrapped current versions with their new
    /// revisions, the lines, the cursor and manifest), so that the sync
    /// after it pulls nothing.
    pub local: Vec<SyncOp>,
}

/// `rec`'s item key, re-wrapped from `old` to `new` (same associated data:
/// vault, item, version).
fn rewrap(old: &Key, new: &Key, rec: &ItemRecord) -> Option<Vec<u8>> {
    let aad = Aad::item_key(rec.vault_id, rec.id, rec.version);
    let ik = crypto::unwrap_key(old, &aad, &rec.wrapped_key).ok()?;
    Some(crypto::wrap_key(new, &aad, &ik))
}

impl Session {
    /// The re-wrapped records and the manifest of a rotation of `vault_id`
    /// from `old` to `new`, on the state this device last synced: every
    /// live record the server's manifest lists, at the version it lists
    /// (from this device's copy, or, for a version this device refused or
    /// never kept, the server's own).
    ///
    /// # Errors
    /// A listed version this device cannot find or open (nothing is sent).
    ///
    /// A version the vault held before it was shared carries no author
    /// signature, only its revision says it is the creator's; the rotation
    /// renumbers it, so this manager vouches for it with a signature of its
    /// own ([`Membership::attest_version`]).
    pub(in crate::engine) async fn rewrap_plan(
        &mut self,
        vault_id: Uuid,
        m: Option<&Membership>,
        old: &Key,
        new: &Key,
    ) -> Result<RewrapPlan> {
        let state = self.store.sync_state(vault_id).await?;
        // The server revision of each version this device holds.
        let mut revisions: HashMap<Uuid, (u64, i64)> = self
            .store
            .item_syncs(vault_id)
            .await?
            .into_iter()
            .map(|s| (s.item_id, (s.version, s.revision)))
            .collect();
        let lines = self.load_lines(vault_id).await?;
        let current: HashMap<Uuid, ItemRecord> = self
            .store
            .vault_records(vault_id)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
        let mut live: Vec<&Line> = lines.values().filter(|l| !l.deleted).collect();
        live.sort_unstable_by_key(|l| l.item_id);
        let mut found: HashMap<Uuid, ItemRecord> = HashMap::with_capacity(live.len());
        let mut missing = Vec::new();
        for l in &live {
            let rec = match current.get(&l.item_id) {
                Some(r) if r.version == l.version => Some(r.clone()),
                _ => self.store.item_at(l.item_id, l.version).await?,
            };
            match rec {
                Some(r) if super::hash_of(&r) == l.hash => {
                    found.insert(l.item_id, r);
                }
                _ => {
                    revisions.remove(&l.item_id);
                    missing.push(l.item_id);
                }
            }
        }
        if !missing.is_empty() {
            // Versions only the server has (refused here): its copies.
            let pulled = self
                .pull_all(vault_id, 0, &super::SyncOptions::default())
                .await?;
            for r in pulled.records {
                if let Some(l) = lines.get(&r.item_id)
                    && !r.deleted
                    && r.version == l.version
                {
                    let rec = to_record(vault_id, &r);
                    if super::hash_of(&rec) == l.hash {
                        if r.authorship.is_none() {
                            revisions.insert(r.item_id, (r.version, r.revision));
                        }
                        found.insert(r.item_id, rec);
                    }
                }
            }
        }
        let mut after = lines.clone();
        let mut records = Vec::with_capacity(live.len());
        let mut local = Vec::with_capacity(live.len() * 2 + 2);
        for (i, l) in live.iter().enumerate() {
            let rec = found.get(&l.item_id).ok_or_else(|| {
                Error::Untrusted(format!(
                    "the server's manifest of vault {vault_id} lists item {} at version {}, which \
                     neither this device nor the server has: the key is not rotated",
                    l.item_id, l.version
                ))
            })?;
            let wrapped = rewrap(old, new, rec).ok_or_else(|| Error::DamagedItem {
                id: rec.id,
                why: "its item key does not open with the vault key".into(),
            })?;
            let hash = record_hash(&wrapped, &rec.overview, &rec.details);
            after.insert(
                l.item_id,
                Line::new(l.item_id, l.version, false, Some(hash)),
            );
            // This device's current copy is this version: it takes the
            // server's bytes and revision at once.
            if current
                .get(&l.item_id)
                .is_some_and(|c| c.version == l.version)
            {
                local.push(SyncOp::SetCurrent(ItemRecord {
                    wrapped_key: wrapped.clone(),
                    ..rec.clone()
                }));
                local.push(SyncOp::Server {
                    item: ItemSync {
                        item_id: l.item_id,
                        vault_id,
                        revision: state.cursor + i as i64 + 1,
                        version: l.version,
                        hash: Some(hash),
                        deleted: false,
                        dirty: false,
                    },
                    dirty: Some(false),
                });
            }
            let pre_share = m.filter(|m| {
                revisions
                    .get(&l.item_id)
                    .is_some_and(|&(v, rev)| v == l.version && rev <= m.shared_at())
            });
            let authorship = pre_share.and_then(|m| {
                let a = m.attest_version(
                    &self.keypair,
                    self.header.account_id,
                    l.item_id,
                    l.version,
                    &content_hash(&rec.overview, &rec.details),
                );
                serde_json::to_vec(&a).ok().map(B64)
            });
            records.push(Rewrapped {
                item_id: l.item_id,
                version: l.version,
                wrapped_key: B64(wrapped),
                authorship,
            });
        }
        let (items, digest) = digest_of(&after);
        let m = Manifest {
            format: manifest::CHAINED,
            prev: state.manifest_id.map(|id| manifest::hex_lower(&id)),
            vault_id,
            counter: state.counter + 1,
            head: state.cursor + records.len() as i64,
            items,
            digest,
            device_id: self.header.device_id,
            created_at: now_millis(),
        };
        let sealed = m.seal(new);
        local.push(SyncOp::Lines {
            vault_id,
            blob: encode_lines(&after),
        });
        local.push(SyncOp::Progress {
            vault_id,
            cursor: m.head,
            counter: m.counter,
            manifest_id: Some(manifest::manifest_id(&sealed)),
            complete: false,
        });
        Ok(RewrapPlan {
            records,
            manifest: sealed,
            expected_head: state.cursor,
            local,
        })
    }
}
