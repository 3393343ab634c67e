//! Bulk operations: one change applied to every item a query (the search
//! language, [`Query`]) matches, or to a set of items the front end chose
//! (the TUI's selection), written in ONE local transaction
//! (`Store::write_items`) so that a crash leaves every item
//! either all old or all new, and pushed by the one sync that follows.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use uuid::Uuid;

use super::error::{Error, Result};
use super::model::{Entry, Item, ItemRef, now_millis};
use super::search::Query;
use super::{Session, clean_folder, clean_tags, seal_item};
use crate::store::{ItemBatch, ItemMove};

/// What a bulk operation does to each item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkOp {
    /// Adds these tags (an item that has them all is unchanged).
    AddTags(Vec<String>),
    /// Removes these tags (compared in any letter case).
    RemoveTags(Vec<String>),
    /// Puts the items in this folder (`None`: in no folder).
    Folder(Option<String>),
    /// Moves the items to the trash (a new version; nothing is destroyed).
    Trash,
    /// Moves the items to another vault, with their history, sealed anew
    /// under its key (as [`Session::move_item`]).
    MoveVault(Uuid),
}

/// One item a bulk operation changed (or, with a dry run, would change).
#[derive(Debug, Clone, Serialize)]
pub struct BulkChange {
    /// The item's id before the change.
    pub id: Uuid,
    /// Its id after the change (a move gives the item a new id).
    pub new_id: Uuid,
    pub name: String,
    pub kind: String,
    /// The vault it was in.
    pub vault_id: Uuid,
    /// Its version after the change.
    pub version: u64,
}

/// The outcome of a bulk operation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BulkReport {
    /// Items that were changed (or would be, with a dry run).
    pub changed: Vec<BulkChange>,
    /// Items that matched but needed no change (they had the tags already,
    /// were in that folder or vault, or in the trash).
    pub unchanged: Vec<Uuid>,
    /// Whether nothing was written (a dry run).
    pub dry_run: bool,
}

impl Session {
    /// The items `query` matches, as a bulk operation sees them: with free
    /// text, every fuzzy match, best first; without, every item that passes
    /// the filters, favourites first, then by name. Live items only unless
    /// the query has `is:trash`.
    ///
    /// # Errors
    /// Database errors; [`Error::NoSuchVault`] / [`Error::AmbiguousVault`]
    /// for a `vault:` filter.
    pub async fn matching(&mut self, query: &Query) -> Result<Vec<Entry>> {
        if query.text.trim().is_empty() {
            let (listed, _) = self.list(query).await?;
            return Ok(listed.into_iter().cloned().collect());
        }
        let results = self.search(query, usize::MAX).await?;
        let (entries, _) = self.entries().await?;
        Ok(results
            .hits
            .iter()
            .filter_map(|h| entries.get(h.index).cloned())
            .collect())
    }

    /// Applies `op` to every item `query` matches ([`Session::matching`]),
    /// in one transaction; with `dry_run`, only says what would change.
    ///
    /// # Errors
    /// [`Error::NotFound`] (naming the query) when nothing matches; as
    /// [`Session::bulk_ids`]. Nothing is changed on error.
    pub async fn bulk(
        &mut self,
        query: &Query,
        query_text: &str,
        op: &BulkOp,
        dry_run: bool,
    ) -> Result<BulkReport> {
        let ids: Vec<Uuid> = self.matching(query).await?.iter().map(|e| e.r.id).collect();
        if ids.is_empty() {
            return Err(Error::NotFound(query_text.trim().to_owned()));
        }
        self.bulk_ids(&ids, op, dry_run).await
    }

    /// Applies `op` to the items `ids`, in one transaction: every changed
    /// item gets a new version (its previous one goes to history) or, for a
    /// move, is sealed anew in the other vault; items that need no change
    /// are left alone. With `dry_run`, nothing is written.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an id with no item; [`Error::Invalid`] for a
    /// bad tag or folder, a vault this account only views, or (a move) an
    /// item whose history does not decrypt; [`Error::NameTaken`] when a
    /// moved item's name is taken in the target vault (or two moved items
    /// share one); [`Error::Conflict`] when another process changed an item
    /// meanwhile. Nothing is changed on error.
    pub async fn bulk_ids(
        &mut self,
        ids: &[Uuid],
        op: &BulkOp,
        dry_run: bool,
    ) -> Result<BulkReport> {
        let op = clean_op(op)?;
        if let BulkOp::MoveVault(to) = op {
            self.check_vault(to)?;
            self.check_writable(to).await?;
        }
        let mut seen = HashSet::new();
        let mut checked = HashSet::new();
        let mut report = BulkReport {
            dry_run,
            ..BulkReport::default()
        };
        let mut batch = ItemBatch {
            at: now_millis(),
            ..ItemBatch::default()
        };
        let mut saved: Vec<Item> = Vec::new();
        let mut moved: Vec<(Item, Item)> = Vec::new();
        // Names taken in the target vault by the items moved so far.
        let mut move_names: HashMap<String, Uuid> = HashMap::new();
        let now = now_millis();
        for &id in ids {
            if !seen.insert(id) {
                continue;
            }
            let item = self.item(id).await?;
            let from = item.r.vault_id;
            let change = |item: &Item, r: ItemRef| BulkChange {
                id: item.r.id,
                new_id: r.id,
                name: item.overview.name.clone(),
                kind: item.overview.kind.to_string(),
                vault_id: item.r.vault_id,
                version: r.version,
            };
            if let BulkOp::MoveVault(to) = op {
                if from == to {
                    report.unchanged.push(id);
                    continue;
                }
                if checked.insert(from) {
                    self.check_writable(from).await?;
                }
                if item.overview.trashed_at.is_none() {
                    self.check_name_free(to, &item.overview.name, None).await?;
                    let lower = item.overview.name.trim().to_lowercase();
                    if move_names.insert(lower, id).is_some() {
                        return Err(Error::NameTaken {
                            name: item.overview.name.clone(),
                            kind: item.overview.kind.to_string(),
                            id,
                            vault: Some(self.vault_name(to).to_owned()),
                        });
                    }
                }
                let mut versions = Vec::new();
                for rec in self.store.history(id).await? {
                    let old = self.open_record(&rec).await.map_err(|e| {
                        Error::Invalid(format!(
                            "version {} of {:?} does not decrypt ({e}): moving the item would \
                             lose it, so nothing was changed",
                            rec.version, item.overview.name
                        ))
                    })?;
                    versions.push(old);
                }
                let new_id = Uuid::now_v7();
                let vault_key = self.vault_key(to)?;
                let mut records: Vec<_> = versions
                    .iter()
                    .map(|v| {
                        let r = ItemRef {
                            id: new_id,
                            vault_id: to,
                            version: v.r.version,
                        };
                        seal_item(vault_key, r, &v.overview, &v.details)
                    })
                    .collect();
                let r = ItemRef {
                    id: new_id,
                    vault_id: to,
                    version: item.r.version,
                };
                records.push(seal_item(vault_key, r, &item.overview, &item.details));
                report.changed.push(change(&item, r));
                batch.moves.push(ItemMove {
                    id,
                    vault_id: from,
                    version: item.r.version,
                    records,
                });
                let new = Item {
                    r,
                    overview: item.overview.clone(),
                    details: item.details.clone(),
                };
                moved.push((item, new));
                continue;
            }
            let mut overview = item.overview.clone();
            match &op {
                BulkOp::AddTags(tags) => {
                    for t in tags {
                        if !overview.tags.iter().any(|o| o.eq_ignore_ascii_case(t)) {
                            overview.tags.push(t.clone());
                        }
                    }
                    overview.tags = clean_tags(&overview.tags)?;
                }
                BulkOp::RemoveTags(tags) => overview
                    .tags
                    .retain(|o| !tags.iter().any(|t| t.eq_ignore_ascii_case(o))),
                BulkOp::Folder(folder) => overview.folder.clone_from(folder),
                BulkOp::Trash => {
                    if overview.trashed_at.is_none() {
                        overview.trashed_at = Some(now);
                    }
                }
                BulkOp::MoveVault(_) => {}
            }
            if overview == item.overview {
                report.unchanged.push(id);
                continue;
            }
            if checked.insert(from) {
                self.check_writable(from).await?;
            }
            overview.updated_at = now.max(item.overview.updated_at);
            overview.updated_by = Some(self.header.device_id);
            overview.conflict = None;
            let r = ItemRef {
                version: item.r.version + 1,
                ..item.r
            };
            batch.updates.push(seal_item(
                self.vault_key(from)?,
                r,
                &overview,
                &item.details,
            ));
            report.changed.push(change(&item, r));
            saved.push(Item {
                r,
                overview,
                details: item.details,
            });
        }
        if dry_run || report.changed.is_empty() {
            return Ok(report);
        }
        self.store.write_items(&batch).await?;
        tracing::debug!(changed = report.changed.len(), "bulk change saved");
        for item in &saved {
            self.remember(item);
        }
        if !moved.is_empty() {
            let gone: HashSet<Uuid> = moved.iter().map(|(old, _)| old.r.id).collect();
            for (old, new) in &moved {
                // A shared source vault's activity keeps the name of what
                // left it, as for a single move.
                self.note_purge(old, old.r.version).await?;
                self.carry_use(old.r.id, new.r.id).await;
            }
            self.forget_many(&gone);
            for (_, new) in &moved {
                self.remember(new);
            }
        }
        Ok(report)
    }
}

/// The op with its tags and folder checked and trimmed as a single edit
/// would.
fn clean_op(op: &BulkOp) -> Result<BulkOp> {
    Ok(match op {
        BulkOp::AddTags(t) | BulkOp::RemoveTags(t) if t.is_empty() => {
            return Err(Error::Invalid("name at least one tag".into()));
        }
        BulkOp::AddTags(t) => BulkOp::AddTags(clean_tags(t)?),
        BulkOp::RemoveTags(t) => {
            BulkOp::RemoveTags(t.iter().map(|t| t.trim().to_owned()).collect())
        }
        BulkOp::Folder(f) => BulkOp::Folder(clean_folder(f.as_deref())?),
        other => other.clone(),
    })
}
