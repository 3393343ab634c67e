//! Staying current while other writers work on the same vault directory:
//! a second handle on an unlocked vault (for a sync that runs beside the
//! user's work), noticing what another handle or process committed, and
//! saving an edit made on an older version as a merge (DESIGN §6's rules,
//! [`super::merge`]), never as a silent overwrite.

use std::collections::HashSet;

use uuid::Uuid;

use super::error::{Error, Result};
use super::model::{Entry, Item, Overview, SyncConflict, now_millis};
use super::{
    DamagedItem, ItemPatch, Vault, VaultKeyed, apply_patch, merge, open_entry, open_json, remote,
};
use crate::crypto::{AccountKeyPair, Aad, SecretKey, unwrap_key};
use crate::store::Store;

/// More changed items than this reload the whole list instead.
const MAX_INCREMENTAL: usize = 4096;
/// Saves retried when another writer commits between the read and the write.
const SAVE_ATTEMPTS: usize = 5;

/// What [`Vault::catch_up`] found another writer changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Items added, changed or removed (their loaded overviews are current).
    pub items: Vec<Uuid>,
    /// The list was dropped and is read again by the next listing (a big
    /// change, or nothing was loaded).
    pub reloaded: bool,
}

/// The outcome of [`Vault::update_from`].
#[derive(Debug, Clone)]
pub struct Saved {
    pub item: Item,
    /// The version saved elsewhere meanwhile that this edit was merged
    /// with (`None`: the edit applied to the version it was made on).
    pub merged_with: Option<u64>,
    /// Parts both this edit and that version changed: this edit's values
    /// were kept and the item is flagged like a sync conflict; the other
    /// values are `merged_with` in history.
    pub conflicts: Vec<String>,
}

impl Vault {
    /// A second handle on this unlocked vault: the same keys, its own
    /// database connection, nothing loaded. Use it like another process
    /// would (a sync in its own task while this handle keeps serving);
    /// [`Vault::catch_up`] on this handle then picks up what it committed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn handle(&self) -> Result<Self> {
        let store = Store::open(&self.dir, false).await?;
        let remote = remote::load(&store).await?;
        Ok(Self {
            dir: self.dir.clone(),
            store,
            header: self.header.clone(),
            secret_key: SecretKey::parse(&self.secret_key.display())?,
            account_key: self.account_key.duplicate(),
            auth_key: self.auth_key.duplicate(),
            remote,
            keypair: AccountKeyPair::from_private_bytes(&self.keypair.to_private_bytes())?,
            vaults: self
                .vaults
                .iter()
                .map(|v| VaultKeyed {
                    id: v.id,
                    name: v.name.clone(),
                    key: v.key.duplicate(),
                })
                .collect(),
            loaded: None,
            adopted_password_change: false,
            seen: None,
        })
    }

    /// Catches up with what other writers committed since this handle last
    /// looked: the server settings (a sync may have renewed or ended the
    /// session), vaults another device created, and the overviews of items
    /// whose (id, version) changed; only those are decrypted. Costs one
    /// tiny query when nothing changed.
    ///
    /// Returns `None` when nothing changed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn catch_up(&mut self) -> Result<Option<Changes>> {
        let marker = self.store.change_marker().await?;
        if self.seen == Some(marker) {
            return Ok(None);
        }
        let first = self.seen.is_none();
        self.seen = Some(marker);
        self.remote = remote::load(&self.store).await?;
        self.reload_vaults().await?;
        if self.loaded.is_none() {
            return Ok((!first).then(|| Changes {
                items: Vec::new(),
                reloaded: true,
            }));
        }
        let on_disk = self.store.item_versions().await?;
        let changed: Vec<Uuid> = {
            let Some(loaded) = self.loaded.as_ref() else {
                return Ok(None);
            };
            let damaged: HashSet<&str> = loaded.damaged.iter().map(|d| d.id.as_str()).collect();
            let present: HashSet<Uuid> = on_disk.iter().map(|(id, _)| *id).collect();
            let mut changed: Vec<Uuid> = on_disk
                .iter()
                .filter(|(id, version)| match loaded.by_id.get(id) {
                    Some(&i) => loaded.entries[i].r.version != *version,
                    None => !damaged.contains(id.to_string().as_str()),
                })
                .map(|(id, _)| *id)
                .collect();
            changed.extend(loaded.by_id.keys().filter(|id| !present.contains(id)));
            changed
        };
        if changed.is_empty() {
            return Ok(None);
        }
        let reloaded = !self.refresh_items(&changed).await?;
        Ok(Some(Changes {
            items: changed,
            reloaded,
        }))
    }

    /// Adds the vaults (and their keys) another handle stored meanwhile.
    async fn reload_vaults(&mut self) -> Result<()> {
        for v in self.store.vaults().await? {
            if self.vaults.iter().any(|k| k.id == v.id) {
                continue;
            }
            let key = unwrap_key(
                &self.account_key,
                &Aad::vault_key(self.header.account_id, v.id),
                &v.wrapped_key,
            )
            .map_err(|_| {
                Error::Damaged(format!("the key of vault {} cannot be decrypted", v.id))
            })?;
            let name = open_json::<serde_json::Value>(&key, &Aad::vault_meta(v.id), &v.meta)
                .ok()
                .and_then(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "(damaged name)".to_owned());
            self.vaults.push(VaultKeyed {
                id: v.id,
                name,
                key,
            });
        }
        Ok(())
    }

    /// Re-reads the loaded overviews of these items from the store,
    /// decrypting only them. Returns `false` when it gave up and dropped
    /// the list instead (too many), so the next listing reads everything.
    pub(super) async fn refresh_items(&mut self, ids: &[Uuid]) -> Result<bool> {
        if self.loaded.is_none() {
            return Ok(false);
        }
        if ids.len() > MAX_INCREMENTAL {
            self.loaded = None;
            return Ok(false);
        }
        let mut gone = HashSet::new();
        let mut fresh: Vec<Entry> = Vec::new();
        let mut damaged: Vec<DamagedItem> = Vec::new();
        for &id in ids {
            let Some(rec) = self.store.item(id).await? else {
                gone.insert(id);
                continue;
            };
            let opened = self
                .vault_key(rec.vault_id)
                .map_err(|e| e.to_string())
                .and_then(|vk| open_entry(vk, &rec));
            match opened {
                Ok(e) => fresh.push(e),
                Err(why) => {
                    gone.insert(id);
                    damaged.push(DamagedItem {
                        id: id.to_string(),
                        why,
                    });
                }
            }
        }
        self.forget_many(&gone);
        if let Some(loaded) = self.loaded.as_mut() {
            let touched: HashSet<String> = ids.iter().map(Uuid::to_string).collect();
            loaded.damaged.retain(|d| !touched.contains(&d.id));
            for d in &damaged {
                tracing::warn!(item = %d.id, why = %d.why, "damaged item");
            }
            loaded.damaged.extend(damaged);
        }
        for e in fresh {
            self.remember_entry(e);
        }
        Ok(true)
    }

    /// Drops items from the loaded list in one pass.
    fn forget_many(&mut self, ids: &HashSet<Uuid>) {
        if ids.is_empty() {
            return;
        }
        if let Some(loaded) = self.loaded.as_mut() {
            let before = loaded.entries.len();
            loaded.entries.retain(|e| !ids.contains(&e.r.id));
            if loaded.entries.len() != before {
                loaded.by_id = loaded
                    .entries
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (e.r.id, i))
                    .collect();
                loaded.search = None;
            }
        }
    }

    /// Applies a patch made on version `base` of an item. When the item is
    /// still at `base` (or `base` is `None`) this is [`Vault::update`].
    /// When another device or process saved a newer version meanwhile, the
    /// edit is merged with it three ways against `base`, as a sync merges:
    /// parts only one side changed take that side, and a part both changed
    /// differently keeps this edit's value, flags the item (like a sync
    /// conflict) and leaves the other value in history. Nothing is
    /// silently overwritten.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad patch, [`Error::NotFound`],
    /// [`Error::Conflict`] when other writers keep saving first.
    pub async fn update_from(
        &mut self,
        id: Uuid,
        base: Option<u64>,
        patch: &ItemPatch,
    ) -> Result<Saved> {
        let mut last = None;
        for _ in 0..SAVE_ATTEMPTS {
            match self.try_update_from(id, base, patch).await {
                Err(Error::Store(crate::store::StoreError::Conflict(_)) | Error::Conflict(_)) => {
                    last = Some(Error::Conflict(id));
                }
                other => return other,
            }
        }
        Err(last.unwrap_or(Error::Conflict(id)))
    }

    async fn try_update_from(
        &mut self,
        id: Uuid,
        base: Option<u64>,
        patch: &ItemPatch,
    ) -> Result<Saved> {
        let rec = self.load_record(id).await?;
        let (current, ik) = self.open_record(&rec).await?;
        let plain = |item| Saved {
            item,
            merged_with: None,
            conflicts: Vec::new(),
        };
        let base = match base {
            Some(b) if b < current.r.version => b,
            _ => {
                let (overview, details) = apply_patch(&current, patch)?;
                let flagged = patch.resolve && current.overview.conflict.is_some();
                if overview == current.overview && details == current.details && !flagged {
                    return Ok(plain(current));
                }
                return Ok(plain(
                    self.save_version(&current, &ik, overview, details).await?,
                ));
            }
        };
        // The version the edit was made on (kept in history), if it is.
        let before = self.item_version(id, base).await.ok();
        let Some(before) = before else {
            // Without the common version every difference would be a
            // conflict: apply the patch to the newer version instead, which
            // still keeps everything the patch does not name.
            let (overview, details) = apply_patch(&current, patch)?;
            let saved = self.save_version(&current, &ik, overview, details).await?;
            return Ok(Saved {
                merged_with: Some(current.r.version),
                ..plain(saved)
            });
        };
        let (overview, details) = apply_patch(&before, patch)?;
        if overview == before.overview && details == before.details && !patch.resolve {
            return Ok(plain(current));
        }
        let now = now_millis();
        // This edit is the later one, whatever the clocks say: its values
        // win a clash and the other side's stay in history.
        let ours = Item {
            r: before.r,
            overview: Overview {
                updated_at: i64::MAX,
                updated_by: Some(self.header.device_id),
                ..overview
            },
            details,
        };
        let merged = merge::merge(Some(&before), &ours, &current);
        let mut overview = merged.overview;
        overview.updated_at = now.max(current.overview.updated_at);
        overview.updated_by = Some(self.header.device_id);
        overview.conflict = if merged.conflicts.is_empty() && !merged.untrashed {
            // A flag the newer version brought stays until the user saves
            // that version itself; one this edit resolved goes.
            if patch.resolve && current.overview.conflict == before.overview.conflict {
                None
            } else {
                current.overview.conflict.clone()
            }
        } else {
            let mut note = String::new();
            if !merged.conflicts.is_empty() {
                note.push_str(&format!(
                    "changed here and by another save at the same time: {}; kept this edit, the other is version {}",
                    merged.conflicts.join(", "),
                    current.r.version
                ));
            }
            if merged.untrashed {
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str("moved to the trash elsewhere while it was edited here; the edit was kept");
            }
            Some(SyncConflict {
                fields: merged.conflicts.clone(),
                other_version: current.r.version,
                note,
                at: now,
            })
        };
        let saved = self
            .store_version(&current, &ik, overview, merged.details)
            .await?;
        tracing::debug!(item = %id, base, merged_with = current.r.version, "merged an edit");
        Ok(Saved {
            item: saved,
            merged_with: Some(current.r.version),
            conflicts: merged.conflicts,
        })
    }
}
