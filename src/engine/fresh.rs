//! Staying current while other writers work on the same vault directory:
//! a second handle on an unlocked vault (for a sync that runs beside the
//! user's work), noticing what another handle or process committed, and
//! saving an edit made on an older version as a merge (DESIGN §6's rules,
//! [`super::merge`]), never as a silent overwrite.

use std::collections::HashSet;

use uuid::Uuid;

use super::error::{Error, Result};
use super::model::{Entry, Item, Overview, SyncConflict, now_millis};
use super::{DamagedItem, ItemPatch, Session, Vault, apply_patch, merge, open_entry, remote};
use crate::crypto::{AccountKeyPair, SecretKey};
use crate::store::Store;

/// More changed items than this reload the whole list instead.
const MAX_INCREMENTAL: usize = 4096;
/// Saves retried when another writer commits between the read and the write.
const SAVE_ATTEMPTS: usize = 5;

/// What [`Session::catch_up`] found another writer changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Items added, changed or removed (their loaded overviews are current).
    pub items: Vec<Uuid>,
    /// The list was dropped and is read again by the next listing (a big
    /// change, or nothing was loaded).
    pub reloaded: bool,
}

/// The outcome of [`Session::update_from`].
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

impl Session {
    /// A second handle on this unlocked vault: the same keys, its own
    /// database connection, nothing loaded. Use it like another process
    /// would (a sync in its own task while this handle keeps serving);
    /// [`Session::catch_up`] on this handle then picks up what it committed.
    ///
    /// # Errors
    /// Database errors.
    pub async fn handle(&self) -> Result<Self> {
        let store = Store::open(&self.dir, false).await?;
        let remote = remote::load(&store).await?;
        // The record is read afresh: it is checked like an unlock checks it.
        if let Some(r) = &remote {
            super::state::verify_remote(&self.state_key, &self.header, r)?;
        }
        let keys = super::SessionKeys {
            secret_key: SecretKey::parse(&self.secret_key.display())?,
            account_key: self.account_key.duplicate(),
            derived: crate::crypto::keys::DerivedKeys {
                unlock: self.unlock_key.duplicate(),
                auth: self.auth_key.duplicate(),
            },
            keypair: AccountKeyPair::from_private_bytes(&self.keypair.to_private_bytes())?,
        };
        let vaults = self.vaults.iter().map(Vault::duplicate).collect();
        let mut handle = Self::from_parts(&self.dir, store, self.header.clone(), keys, vaults);
        handle.remote = remote;
        Ok(handle)
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
        let remote = remote::load(&self.store).await?;
        // Another writer's record is trusted only if its MAC holds.
        if let Some(r) = &remote {
            super::state::verify_remote(&self.state_key, &self.header, r)?;
        }
        super::state::verify_sync(&self.store, &self.state_key, self.header.account_id).await?;
        self.remote = remote;
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
            let present: HashSet<Uuid> = on_disk.iter().map(|(id, _)| *id).collect();
            // New, changed, and damaged ones (few; a newer version may
            // have repaired them) are read again.
            let mut changed: Vec<Uuid> = on_disk
                .iter()
                .filter(|(id, version)| {
                    loaded
                        .by_id
                        .get(id)
                        .is_none_or(|&i| loaded.entries[i].r.version != *version)
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

    /// Takes the vaults as another handle stored them meanwhile: new ones
    /// (created, joined), a rotated key or a new name, and drops those gone
    /// from the store (left, or no longer shared). A key unwrap per vault,
    /// and only when another writer committed something.
    async fn reload_vaults(&mut self) -> Result<()> {
        let stored = self.store.vaults().await?;
        self.vaults.retain(|k| stored.iter().any(|v| v.id == k.id));
        for v in &stored {
            let keyed = Vault::open(&self.account_key, self.header.account_id, v)?;
            match self.vaults.iter_mut().find(|k| k.id == v.id) {
                Some(known) => *known = keyed,
                None => self.vaults.push(keyed),
            }
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
    pub(super) fn forget_many(&mut self, ids: &HashSet<Uuid>) {
        if ids.is_empty() {
            return;
        }
        if let Some(loaded) = self.loaded.as_mut() {
            let before = loaded.entries.len();
            loaded.entries.retain(|e| !ids.contains(&e.r.id));
            if loaded.entries.len() != before {
                loaded.reindex();
            }
        }
    }

    /// Applies a patch made on version `base` of an item. When the item is
    /// still at `base` (or `base` is `None`) this is [`Session::update`].
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
        let current = self.open_record(&rec).await?;
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
                return Ok(plain(self.save_version(&current, overview, details).await?));
            }
        };
        // The version the edit was made on (kept in history), if it is.
        let before = self.item_version(id, base).await.ok();
        let Some(before) = before else {
            // Without the common version every difference would be a
            // conflict: apply the patch to the newer version instead, which
            // still keeps everything the patch does not name.
            let (overview, details) = apply_patch(&current, patch)?;
            let saved = self.save_version(&current, overview, details).await?;
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
                note.push_str(
                    "moved to the trash elsewhere while it was edited here; the edit was kept",
                );
            }
            Some(SyncConflict {
                fields: merged.conflicts.clone(),
                other_version: current.r.version,
                note,
                at: now,
            })
        };
        let saved = self
            .store_version(&current, overview, merged.details)
            .await?;
        tracing::debug!(item = %id, base, merged_with = current.r.version, "merged an edit");
        Ok(Saved {
            item: saved,
            merged_with: Some(current.r.version),
            conflicts: merged.conflicts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{Field, FieldKind, label};
    use super::super::sync::SyncOptions;
    use super::super::test_server::TestServer;
    use super::super::{ItemDraft, ItemPatch, Session, remote};
    use crate::crypto::KdfParams;

    use super::super::test_fixtures::password as pw;

    fn draft(name: &str, password: &str) -> ItemDraft {
        super::super::test_fixtures::login(name, "alice", password)
    }

    fn set(l: &str, v: &str) -> ItemPatch {
        let kind = if l == label::PASSWORD {
            FieldKind::Secret
        } else {
            FieldKind::Text
        };
        ItemPatch {
            set_fields: vec![Field::new(l, v, kind)],
            ..ItemPatch::default()
        }
    }

    fn value(item: &super::Item, l: &str) -> String {
        item.field(l)
            .map(|f| f.value.expose().to_owned())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn catch_up_reads_only_what_another_writer_changed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("v");
        let mut v = Session::init(&dir, pw(), KdfParams::FLOOR)
            .await
            .expect("init");
        let items = v
            .add_many((0..50).map(|i| draft(&format!("item {i}"), "p")).collect())
            .await
            .expect("add");
        v.entries().await.expect("load");
        let _ = v.catch_up().await.expect("baseline");
        assert_eq!(v.catch_up().await.expect("quiet"), None, "nothing changed");

        // This handle's own writes are already in its list.
        v.update(items[0].r.id, &set(label::USERNAME, "mine"))
            .await
            .expect("own edit");
        assert_eq!(v.catch_up().await.expect("own"), None);

        // Another handle (another process) edits one, adds one, purges one.
        let mut other = v.handle().await.expect("second handle");
        other
            .update(items[1].r.id, &set(label::USERNAME, "theirs"))
            .await
            .expect("edit");
        let added = other.add(draft("new", "q")).await.expect("add");
        other.purge(items[2].r.id).await.expect("purge");
        other.close().await;

        let changes = v.catch_up().await.expect("catch up").expect("changes");
        let mut got = changes.items.clone();
        got.sort_unstable();
        let mut want = vec![items[1].r.id, added.r.id, items[2].r.id];
        want.sort_unstable();
        assert_eq!(got, want, "only the changed items are read again");
        assert!(!changes.reloaded);
        let (entries, _) = v.entries().await.expect("entries");
        assert_eq!(entries.len(), 50);
        let e1 = entries
            .iter()
            .find(|e| e.r.id == items[1].r.id)
            .expect("e1");
        assert_eq!(e1.r.version, 2);
        assert!(entries.iter().any(|e| e.r.id == added.r.id));
        assert!(!entries.iter().any(|e| e.r.id == items[2].r.id));
        assert_eq!(v.catch_up().await.expect("quiet again"), None);
        v.close().await;
    }

    #[tokio::test]
    async fn an_update_from_an_older_version_merges_and_never_overwrites() {
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("v");
        let mut v = Session::init(&dir, pw(), KdfParams::FLOOR)
            .await
            .expect("init");
        let id = v.add(draft("GitHub", "one")).await.expect("add").r.id;
        let mut other = v.handle().await.expect("second handle");

        // Different fields: both kept, no flag.
        other
            .update(id, &set(label::USERNAME, "bob"))
            .await
            .expect("v2");
        let saved = v
            .update_from(id, Some(1), &set(label::PASSWORD, "two"))
            .await
            .expect("merge");
        assert_eq!(saved.merged_with, Some(2));
        assert!(saved.conflicts.is_empty());
        assert_eq!(saved.item.r.version, 3);
        assert_eq!(value(&saved.item, label::USERNAME), "bob");
        assert_eq!(value(&saved.item, label::PASSWORD), "two");
        assert!(saved.item.overview.conflict.is_none());

        // The same field: this edit wins, flagged, the other in history.
        other
            .update(id, &set(label::PASSWORD, "theirs"))
            .await
            .expect("v4");
        let saved = v
            .update_from(id, Some(3), &set(label::PASSWORD, "ours"))
            .await
            .expect("merge");
        assert_eq!(saved.merged_with, Some(4));
        assert_eq!(saved.conflicts, vec!["password".to_owned()]);
        assert_eq!(value(&saved.item, label::PASSWORD), "ours");
        let flag = saved.item.overview.conflict.clone().expect("flagged");
        assert_eq!(flag.other_version, 4);
        assert!(flag.note.contains("password"), "{}", flag.note);
        let theirs = v.item_version(id, 4).await.expect("history");
        assert_eq!(value(&theirs, label::PASSWORD), "theirs");

        // On the current version, it is a plain update.
        let saved = v
            .update_from(id, Some(5), &set(label::USERNAME, "carol"))
            .await
            .expect("plain");
        assert_eq!(saved.merged_with, None);
        assert_eq!(saved.item.r.version, 6);
        other.close().await;
        v.close().await;
    }

    /// Aborting a sync at any await (Esc in the TUI) loses nothing: the
    /// next sync pushes everything, and another device sees it all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_aborted_at_any_point_loses_nothing() {
        let server = TestServer::start("memory").await;
        let tmp = tempfile::tempdir().expect("tmp");
        let mut a = Session::init(&tmp.path().join("a"), pw(), KdfParams::FLOOR)
            .await
            .expect("init");
        a.register(&server.url, "abort@example.org", "a")
            .await
            .expect("register");
        let secret_key = a.secret_key.display().to_string();
        let first = a.add(draft("first", "0")).await.expect("add").r.id;
        let mut names = vec!["first".to_owned()];
        for (round, delay_us) in [0u64, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000]
            .into_iter()
            .enumerate()
        {
            let name = format!("round {round}");
            a.add(draft(&name, "x")).await.expect("add");
            names.push(name);
            a.update(first, &set(label::PASSWORD, &format!("p{round}")))
                .await
                .expect("edit");
            let mut fork = a.handle().await.expect("handle");
            let task = tokio::spawn(async move {
                let _ = fork.sync(&SyncOptions::default()).await;
            });
            tokio::time::sleep(std::time::Duration::from_micros(delay_us)).await;
            task.abort();
            let _ = task.await;
        }
        a.sync(&SyncOptions::default()).await.expect("final sync");
        assert_eq!(a.local_sync_status().await.expect("status").pending, 0);
        assert!(a.is_logged_in(), "no refresh token was lost");

        let mut b = remote::login(
            &tmp.path().join("b"),
            &server.url,
            "abort@example.org",
            pw(),
            &secret_key,
            true,
            "b",
        )
        .await
        .expect("login");
        b.sync(&SyncOptions::default()).await.expect("b sync");
        let (entries, _) = b.entries().await.expect("entries");
        let mut got: Vec<String> = entries.iter().map(|e| e.overview.name.clone()).collect();
        got.sort();
        names.sort();
        assert_eq!(got, names);
        let f = b.item(first).await.expect("first");
        assert_eq!(value(&f, label::PASSWORD), "p8");
        a.close().await;
        b.close().await;
    }
}
