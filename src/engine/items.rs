//! Items: loading overviews, finding, reading, history, and every write.

use std::collections::HashMap;

use rayon::prelude::*;
use uuid::Uuid;

use super::error::{Error, Result};
use super::model::{self, Details, Entry, Item, ItemKind, ItemRef, Overview, now_millis};
use super::search::{self, Query, SearchIndex};
use super::{
    DamagedItem, ItemDraft, ItemPatch, Loaded, Session, VersionSummary, apply_patch, clean_field,
    clean_folder, clean_name, clean_tags, describe_changes, item_ref, open_entry, open_full,
    seal_item,
};
use crate::crypto::Key;
use crate::store::{self, ItemRecord};

/// The order of a listing ([`Session::list_by`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Favourites first, then by name.
    #[default]
    Name,
    /// Most recently used first (by this account, on any device); never
    /// used last.
    Used,
    /// Most recently changed first.
    Updated,
    /// Newest first.
    Created,
}

impl Session {
    /// Decrypts every item's overview (never details), on all cores.
    pub(super) async fn ensure_loaded(&mut self) -> Result<&mut Loaded> {
        if self.loaded.is_none() {
            self.loaded = Some(self.load_overviews().await?);
        }
        self.loaded
            .as_mut()
            .ok_or_else(|| Error::Damaged("the vault could not be loaded".into()))
    }

    /// Streams the current records from the store and decrypts them in
    /// chunks on the rayon pool while later rows are still being read, so
    /// reading and decrypting overlap and no more than a chunk of raw rows
    /// is held at once.
    pub(super) async fn load_overviews(&self) -> Result<Loaded> {
        use futures::StreamExt as _;
        const CHUNK: usize = 4096;
        type Opened = Vec<std::result::Result<Entry, DamagedItem>>;
        let keys: std::sync::Arc<HashMap<Uuid, Key>> = std::sync::Arc::new(
            self.vaults
                .iter()
                .map(|v| (v.id, v.key.duplicate()))
                .collect(),
        );
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Opened)>();
        let decrypt = |n: usize, chunk: Vec<ItemRecord>| {
            let keys = keys.clone();
            let tx = tx.clone();
            rayon::spawn(move || {
                let opened: Opened = chunk
                    .iter()
                    .map(|rec| {
                        keys.get(&rec.vault_id)
                            .ok_or_else(|| "unknown vault".to_owned())
                            .and_then(|k| open_entry(k, rec))
                            .map_err(|why| DamagedItem {
                                id: rec.id.to_string(),
                                why,
                            })
                    })
                    .collect();
                let _ = tx.send((n, opened));
            });
        };
        let mut damaged = Vec::new();
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut chunks = 0;
        let mut rows = self.store.overview_stream();
        while let Some(row) = rows.next().await {
            match row {
                Ok(rec) => chunk.push(rec),
                Err(e @ store::StoreError::DamagedRecord { .. }) => {
                    let id = match &e {
                        store::StoreError::DamagedRecord { id, .. } => id.clone(),
                        _ => String::new(),
                    };
                    damaged.push(DamagedItem {
                        id,
                        why: e.to_string(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            if chunk.len() == CHUNK {
                decrypt(
                    chunks,
                    std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)),
                );
                chunks += 1;
            }
        }
        drop(rows);
        if !chunk.is_empty() {
            decrypt(chunks, chunk);
            chunks += 1;
        }
        drop(tx);
        let mut parts: Vec<(usize, Opened)> =
            tokio::task::spawn_blocking(move || rx.iter().collect())
                .await
                .map_err(|e| Error::Damaged(format!("decryption stopped: {e}")))?;
        if parts.len() != chunks {
            return Err(Error::Damaged("decryption stopped early".into()));
        }
        parts.sort_unstable_by_key(|(n, _)| *n);
        let mut entries = Vec::with_capacity(parts.iter().map(|(_, p)| p.len()).sum());
        for opened in parts.into_iter().flat_map(|(_, p)| p) {
            match opened {
                Ok(e) => entries.push(e),
                Err(d) => damaged.push(d),
            }
        }
        for d in &damaged {
            tracing::warn!(item = %d.id, why = %d.why, "damaged item");
        }
        let by_id = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.r.id, i))
            .collect();
        Ok(Loaded {
            entries,
            by_id,
            damaged,
            search: None,
        })
    }

    /// Every current item (overviews only), and the items that failed to decrypt.
    ///
    /// # Errors
    /// Database errors.
    pub async fn entries(&mut self) -> Result<(&[Entry], &[DamagedItem])> {
        let loaded = self.ensure_loaded().await?;
        Ok((&loaded.entries, &loaded.damaged))
    }

    /// Items that pass the filters of `query` (free text ignored), favourites
    /// first, then by name.
    ///
    /// # Errors
    /// Database errors; [`Error::NoSuchVault`] or [`Error::AmbiguousVault`]
    /// for a `vault:` filter that names no vault or several.
    pub async fn list(&mut self, query: &Query) -> Result<(Vec<&Entry>, &[DamagedItem])> {
        self.list_by(query, ListOrder::Name).await
    }

    /// Items that pass the filters of `query` (free text ignored), in
    /// `order`; ties go by name.
    ///
    /// # Errors
    /// As [`Session::list`].
    pub async fn list_by(
        &mut self,
        query: &Query,
        order: ListOrder,
    ) -> Result<(Vec<&Entry>, &[DamagedItem])> {
        let query = self.with_vault_id(query)?;
        let usage = match order {
            ListOrder::Used => Some(self.usage().await?),
            _ => None,
        };
        let loaded = self.ensure_loaded().await?;
        let mut listed: Vec<&Entry> = loaded.entries.iter().filter(|e| query.admits(e)).collect();
        let name = |e: &Entry| (e.overview.name.to_lowercase(), e.r.id);
        match (order, usage) {
            (ListOrder::Used, Some(usage)) => listed.sort_by_cached_key(|e| {
                let u = usage.of(e.r.id);
                (std::cmp::Reverse(u.last_used), name(e))
            }),
            (ListOrder::Updated, _) => {
                listed.sort_by_cached_key(|e| (std::cmp::Reverse(e.overview.updated_at), name(e)))
            }
            (ListOrder::Created, _) => {
                listed.sort_by_cached_key(|e| (std::cmp::Reverse(e.overview.created_at), name(e)))
            }
            _ => listed.sort_by_cached_key(|e| (!e.overview.favorite, name(e))),
        }
        Ok((listed, &loaded.damaged))
    }

    /// Fuzzy search (see [`search`]): the best `limit` hits, ranked, and
    /// the number of matches; hits index into [`Session::entries`].
    ///
    /// # Errors
    /// As [`Session::list`].
    pub async fn search(&mut self, query: &Query, limit: usize) -> Result<search::Results> {
        let query = self.with_vault_id(query)?;
        let loaded = self.ensure_loaded().await?;
        let index = loaded
            .search
            .get_or_insert_with(|| SearchIndex::build(&loaded.entries));
        Ok(index.search(&loaded.entries, &query, limit))
    }

    /// The query with its `vault:` filter resolved to a vault id (both
    /// given: they must name the same vault).
    fn with_vault_id<'q>(&self, query: &'q Query) -> Result<std::borrow::Cow<'q, Query>> {
        let Some(named) = &query.vault else {
            return Ok(std::borrow::Cow::Borrowed(query));
        };
        let id = self.resolve_vault(named)?;
        if query.vault_id.is_some_and(|v| v != id) {
            return Err(Error::Invalid(format!(
                "the query names two vaults: {:?} and {:?}",
                self.vault_name(id),
                query.vault_id.map_or("?", |v| self.vault_name(v))
            )));
        }
        let mut q = query.clone();
        q.vault_id = Some(id);
        Ok(std::borrow::Cow::Owned(q))
    }

    /// Finds one item by full id, unique id prefix (4+ characters) or exact
    /// name (case-insensitive). Items in the trash are considered only when no
    /// live item matches, or first when `prefer_trashed`.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Ambiguous`] listing the candidates.
    pub async fn resolve(&mut self, query: &str, prefer_trashed: bool) -> Result<ItemRef> {
        self.resolve_in(query, prefer_trashed, None).await
    }

    /// [`Session::resolve`] among the items of one vault only (`None`: all
    /// vaults), so that two items of one name in two vaults can be told
    /// apart.
    ///
    /// # Errors
    /// As [`Session::resolve`]; [`Error::NotFoundIn`] when only another
    /// vault has a match.
    pub async fn resolve_in(
        &mut self,
        query: &str,
        prefer_trashed: bool,
        vault: Option<Uuid>,
    ) -> Result<ItemRef> {
        let q = query.trim();
        let not_found = |s: &Self| match vault {
            Some(v) => Error::NotFoundIn {
                query: q.to_owned(),
                vault: s.vault_name(v).to_owned(),
            },
            None => Error::NotFound(q.to_owned()),
        };
        if let Ok(id) = Uuid::parse_str(q) {
            if let Some(rec) = self.store.item(id).await?
                && vault.is_none_or(|v| v == rec.vault_id)
            {
                return Ok(item_ref(&rec));
            }
            return Err(not_found(self));
        }
        // With more than one vault, each candidate names its vault.
        let names: HashMap<Uuid, String> = if self.vaults.len() > 1 {
            self.vaults.iter().map(|v| (v.id, v.name.clone())).collect()
        } else {
            HashMap::new()
        };
        let loaded = self.ensure_loaded().await?;
        let lower = q.to_lowercase();
        let is_prefix = q.len() >= 4 && q.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        let matches: Vec<&Entry> = loaded
            .entries
            .iter()
            .filter(|e| {
                vault.is_none_or(|v| v == e.r.vault_id)
                    && ((is_prefix && e.r.id.to_string().starts_with(&lower))
                        || e.overview.name.to_lowercase() == lower)
            })
            .collect();
        let (trashed, live): (Vec<&Entry>, Vec<&Entry>) = matches
            .into_iter()
            .partition(|e| e.overview.trashed_at.is_some());
        let preferred = if prefer_trashed {
            (&trashed, &live)
        } else {
            (&live, &trashed)
        };
        let mut pick = if preferred.0.is_empty() {
            preferred.1.clone()
        } else {
            preferred.0.clone()
        };
        // "GitHub" and "github" (made on two devices, or before names were
        // checked): the exact spelling wins.
        if pick.len() > 1 && pick.iter().any(|e| e.overview.name == q) {
            pick.retain(|e| e.overview.name == q);
        }
        match pick.as_slice() {
            [] => Err(not_found(self)),
            [one] => Ok(one.r),
            many => Err(Error::Ambiguous {
                query: q.to_owned(),
                across_vaults: many.iter().any(|e| e.r.vault_id != many[0].r.vault_id),
                candidates: many
                    .iter()
                    .map(|e| {
                        let mut notes = vec![e.overview.kind.to_string()];
                        if let Some(name) = names.get(&e.r.vault_id) {
                            notes.push(format!("vault {name}"));
                        }
                        if e.overview.trashed_at.is_some() {
                            notes.push("in trash".into());
                        }
                        format!("  {}  {} ({})", e.r.id, e.overview.name, notes.join(", "))
                    })
                    .collect(),
            }),
        }
    }

    /// A vault's name ("?" for an id this account has no vault of).
    #[must_use]
    pub fn vault_name(&self, vault_id: Uuid) -> &str {
        self.vaults
            .iter()
            .find(|v| v.id == vault_id)
            .map_or("?", |v| v.name.as_str())
    }

    pub(super) async fn load_record(&self, id: Uuid) -> Result<ItemRecord> {
        self.store
            .item(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_string()))
    }

    pub(super) async fn open_record(&self, rec: &ItemRecord) -> Result<Item> {
        let vk = self
            .vault_key(rec.vault_id)
            .map_err(|_| Error::DamagedItem {
                id: rec.id,
                why: format!("it refers to unknown vault {}", rec.vault_id),
            })?;
        open_full(vk, rec).map_err(|why| Error::DamagedItem { id: rec.id, why })
    }

    /// The current version of an item, decrypted (details included).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::DamagedItem`] (also when the stored
    /// version is not newer than its history: a rollback).
    pub async fn item(&self, id: Uuid) -> Result<Item> {
        let (rec, newest_old) = self
            .store
            .item_and_newest_history(id)
            .await?
            .ok_or_else(|| Error::NotFound(id.to_string()))?;
        if newest_old >= rec.version {
            return Err(Error::DamagedItem {
                id,
                why: format!(
                    "version {} is not newer than its history (version {newest_old}): an old copy was put back",
                    rec.version
                ),
            });
        }
        self.open_record(&rec).await
    }

    /// A given version of an item (current or from history).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a version that does not exist.
    pub async fn item_version(&self, id: Uuid, version: u64) -> Result<Item> {
        let current = self.load_record(id).await?;
        if current.version == version {
            return self.item(id).await;
        }
        let rec = self
            .store
            .history(id)
            .await?
            .into_iter()
            .find(|r| r.version == version)
            .ok_or(Error::NoVersion { id, version })?;
        self.open_record(&rec).await
    }

    /// Every version of an item, oldest first, with what changed in each.
    ///
    /// # Errors
    /// [`Error::NotFound`]; damaged versions are reported in their summary.
    pub async fn history(&self, id: Uuid) -> Result<Vec<VersionSummary>> {
        let current = self.load_record(id).await?;
        let mut records = self.store.history(id).await?;
        records.push(current);
        let mut out = Vec::with_capacity(records.len());
        let mut previous: Option<Item> = None;
        let last = records.len().saturating_sub(1);
        for (i, rec) in records.iter().enumerate() {
            match self.open_record(rec).await {
                Ok(item) => {
                    let changes = previous.as_ref().map_or_else(
                        || vec!["created".to_owned()],
                        |p| describe_changes(p, &item),
                    );
                    out.push(VersionSummary {
                        version: rec.version,
                        updated_at: item.overview.updated_at,
                        current: i == last,
                        changes,
                        damaged: None,
                    });
                    previous = Some(item);
                }
                Err(e) => {
                    previous = None;
                    out.push(VersionSummary {
                        version: rec.version,
                        updated_at: 0,
                        current: i == last,
                        changes: Vec::new(),
                        damaged: Some(e.to_string()),
                    });
                }
            }
        }
        Ok(out)
    }

    pub(super) fn build_new(
        &self,
        draft: ItemDraft,
        vault_id: Uuid,
        now: i64,
    ) -> Result<(ItemRecord, Item)> {
        let fields = draft
            .fields
            .into_iter()
            .map(clean_field)
            .collect::<Result<Vec<_>>>()?;
        let details = Details { fields };
        let mut overview = Overview {
            name: clean_name(&draft.name)?,
            kind: draft.kind,
            subtitle: None,
            urls: Vec::new(),
            tags: clean_tags(&draft.tags)?,
            folder: clean_folder(draft.folder.as_deref())?,
            favorite: draft.favorite,
            has_totp: false,
            created_at: now,
            updated_at: now,
            trashed_at: None,
            updated_by: Some(self.header.device_id),
            conflict: None,
            source: None,
        };
        model::derive_overview(draft.kind, &details, &mut overview);
        let r = ItemRef {
            id: Uuid::now_v7(),
            vault_id,
            version: 1,
        };
        let rec = seal_item(self.vault_key(vault_id)?, r, &overview, &details);
        Ok((
            rec,
            Item {
                r,
                overview,
                details,
            },
        ))
    }

    pub(super) fn remember(&mut self, item: &Item) {
        self.remember_entry(Entry {
            r: item.r,
            overview: item.overview.clone(),
        });
    }

    /// Puts a changed or new entry into the loaded list and search index.
    pub(super) fn remember_entry(&mut self, entry: Entry) {
        if let Some(loaded) = self.loaded.as_mut() {
            let id = entry.r.id;
            let index = match loaded.by_id.get(&id) {
                Some(&i) => {
                    loaded.entries[i] = entry;
                    i
                }
                None => {
                    loaded.entries.push(entry);
                    loaded.by_id.insert(id, loaded.entries.len() - 1);
                    loaded.entries.len() - 1
                }
            };
            if let Some(search) = loaded.search.as_mut() {
                search.update(index, &loaded.entries[index]);
            }
        }
    }

    /// Drops a destroyed item from the loaded list (the search index is
    /// rebuilt by the next search).
    pub(super) fn forget(&mut self, id: Uuid) {
        if let Some(loaded) = self.loaded.as_mut()
            && let Some(i) = loaded.by_id.remove(&id)
        {
            loaded.entries.remove(i);
            loaded.reindex();
        }
    }

    /// Adds an item to the default vault.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad draft; database errors.
    pub async fn add(&mut self, draft: ItemDraft) -> Result<Item> {
        let vault_id = self.default_vault().0;
        self.add_to(vault_id, draft).await
    }

    /// Adds an item to the vault `vault_id` ([`Session::resolve_vault`]).
    ///
    /// # Errors
    /// As [`Session::add`]; [`Error::Invalid`] for a vault this account
    /// only views; [`Error::NameTaken`].
    pub async fn add_to(&mut self, vault_id: Uuid, draft: ItemDraft) -> Result<Item> {
        self.check_name_free(vault_id, &draft.name, None).await?;
        let mut items = self.add_many_to(vault_id, vec![draft]).await?;
        items
            .pop()
            .ok_or_else(|| Error::Damaged("the item was not saved".into()))
    }

    /// Refuses `name` when another live item of the vault (`except` aside)
    /// already has it, compared case-insensitively: names are how the user
    /// fetches an item, and two that differ only by case could not be told
    /// apart. Two vaults may each have an item of one name (`--vault` tells
    /// them apart).
    pub(super) async fn check_name_free(
        &mut self,
        vault_id: Uuid,
        name: &str,
        except: Option<Uuid>,
    ) -> Result<()> {
        let wanted = name.trim().to_lowercase();
        let vault = (self.vaults.len() > 1).then(|| self.vault_name(vault_id).to_owned());
        let loaded = self.ensure_loaded().await?;
        if let Some(e) = loaded.entries.iter().find(|e| {
            Some(e.r.id) != except
                && e.r.vault_id == vault_id
                && e.overview.trashed_at.is_none()
                && e.overview.name.to_lowercase() == wanted
        }) {
            return Err(Error::NameTaken {
                name: e.overview.name.clone(),
                kind: e.overview.kind.to_string(),
                id: e.r.id,
                vault,
            });
        }
        Ok(())
    }

    /// Adds many items in one transaction (imports, benchmarks; names are
    /// not checked against each other or the vault, unlike [`Session::add`]).
    ///
    /// # Errors
    /// As [`Session::add`]; nothing is saved if any draft is invalid.
    pub async fn add_many(&mut self, drafts: Vec<ItemDraft>) -> Result<Vec<Item>> {
        let vault_id = self.default_vault().0;
        self.add_many_to(vault_id, drafts).await
    }

    /// [`Session::add_many`] into the vault `vault_id`.
    ///
    /// # Errors
    /// As [`Session::add_to`].
    pub async fn add_many_to(
        &mut self,
        vault_id: Uuid,
        drafts: Vec<ItemDraft>,
    ) -> Result<Vec<Item>> {
        self.vault_key(vault_id)?;
        self.check_writable(vault_id).await?;
        let now = now_millis();
        let built = drafts
            .into_par_iter()
            .map(|d| self.build_new(d, vault_id, now))
            .collect::<Result<Vec<_>>>()?;
        let (records, items): (Vec<ItemRecord>, Vec<Item>) = built.into_iter().unzip();
        self.store.insert_items(&records).await?;
        for item in &items {
            tracing::debug!(item = %item.r.id, kind = %item.overview.kind, "added item");
            self.remember(item);
        }
        Ok(items)
    }

    pub(super) async fn save_version(
        &mut self,
        item: &Item,
        mut overview: Overview,
        details: Details,
    ) -> Result<Item> {
        self.check_writable(item.r.vault_id).await?;
        overview.updated_at = now_millis().max(item.overview.updated_at);
        overview.updated_by = Some(self.header.device_id);
        // The user has seen the item again: a merge's flag is done.
        overview.conflict = None;
        self.store_version(item, overview, details).await
    }

    /// Saves `overview` and `details` as the version after `item`, as given.
    pub(super) async fn store_version(
        &mut self,
        item: &Item,
        overview: Overview,
        details: Details,
    ) -> Result<Item> {
        let r = ItemRef {
            version: item.r.version + 1,
            ..item.r
        };
        let rec = seal_item(self.vault_key(r.vault_id)?, r, &overview, &details);
        self.store.update_item(&rec).await?;
        let saved = Item {
            r,
            overview,
            details,
        };
        tracing::debug!(item = %r.id, version = r.version, "saved item version");
        self.remember(&saved);
        Ok(saved)
    }

    /// Applies a patch, keeping the previous version in history. A patch that
    /// changes nothing saves nothing and returns the item as it was.
    ///
    /// # Errors
    /// [`Error::Invalid`], [`Error::Conflict`] when another process saved first.
    pub async fn update(&mut self, id: Uuid, patch: &ItemPatch) -> Result<Item> {
        let rec = self.load_record(id).await?;
        let item = self.open_record(&rec).await?;
        if item.overview.kind == ItemKind::Key
            && (!patch.set_fields.is_empty()
                || !patch.remove_fields.is_empty()
                || patch.urls.is_some())
        {
            return Err(Error::Invalid(format!(
                "{:?} is a named key: its fields change only through `openk key rotate` (its \
                 name, tags, folder and favourite can be edited)",
                item.overview.name
            )));
        }
        if let Some(name) = &patch.name {
            self.check_name_free(rec.vault_id, name, Some(id)).await?;
        }
        let (overview, details) = apply_patch(&item, patch)?;
        let flagged = patch.resolve && item.overview.conflict.is_some();
        if overview == item.overview && details == item.details && !flagged {
            return Ok(item);
        }
        self.save_version(&item, overview, details).await
    }

    /// Moves an item to the trash (a new version; nothing is destroyed).
    ///
    /// # Errors
    /// [`Error::Invalid`] when it is already there.
    pub async fn trash(&mut self, id: Uuid) -> Result<Item> {
        self.set_trashed(id, true).await
    }

    /// Brings an item back from the trash.
    ///
    /// # Errors
    /// [`Error::Invalid`] when it is not in the trash.
    pub async fn restore(&mut self, id: Uuid) -> Result<Item> {
        self.set_trashed(id, false).await
    }

    pub(super) async fn set_trashed(&mut self, id: Uuid, trashed: bool) -> Result<Item> {
        let rec = self.load_record(id).await?;
        let item = self.open_record(&rec).await?;
        if item.overview.trashed_at.is_some() == trashed {
            return Err(Error::Invalid(format!(
                "{:?} is {} the trash",
                item.overview.name,
                if trashed { "already in" } else { "not in" }
            )));
        }
        let mut overview = item.overview.clone();
        overview.trashed_at = trashed.then(now_millis);
        let details = item.details.clone();
        self.save_version(&item, overview, details).await
    }

    /// Destroys an item and all its history. The only operation that loses data.
    ///
    /// # Errors
    /// [`Error::NotFound`]; database errors.
    pub async fn purge(&mut self, id: Uuid) -> Result<()> {
        let rec = self.load_record(id).await?;
        self.check_writable(rec.vault_id).await?;
        // In a shared vault, its activity keeps the name that goes now.
        if let Ok(item) = self.open_record(&rec).await {
            self.note_purge(&item, rec.version).await?;
        }
        self.store
            .purge_item(id, rec.vault_id, rec.version, now_millis())
            .await?;
        tracing::debug!(item = %id, "purged item");
        self.forget(id);
        Ok(())
    }
}
