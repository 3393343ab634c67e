//! A batch of item operations (`openk apply`): adds, edits and moves to the
//! trash, checked in order (a later operation sees the names and contents
//! the earlier ones give) and written in ONE local transaction, or not at
//! all.

use std::collections::HashMap;

use serde::Serialize;
use uuid::Uuid;

use super::error::{Error, Result};
use super::model::{Item, ItemKind, ItemRef, now_millis};
use super::{ItemDraft, ItemPatch, Session, apply_patch, seal_item};
use crate::store::ItemBatch;

/// One operation of a batch.
#[derive(Debug, Clone)]
pub enum BatchOp {
    /// A new item, in `vault` (name or id; default: the personal vault).
    Add {
        vault: Option<String>,
        draft: ItemDraft,
    },
    /// A change to the item `item` (id, id prefix or name; looked up in
    /// `vault` only, when given), as `openk edit` makes it.
    Edit {
        item: String,
        vault: Option<String>,
        patch: ItemPatch,
    },
    /// The item `item` to the trash, as `openk rm` does.
    Trash { item: String, vault: Option<String> },
}

impl BatchOp {
    fn verb(&self) -> &'static str {
        match self {
            Self::Add { .. } => "add",
            Self::Edit { .. } => "edit",
            Self::Trash { .. } => "rm",
        }
    }
}

/// An operation and the line of the input it came from (for errors).
#[derive(Debug, Clone)]
pub struct BatchLine {
    pub line: usize,
    pub op: BatchOp,
}

/// What one operation of a batch did (or, with a dry run, would do).
#[derive(Debug, Clone, Serialize)]
pub struct BatchOutcome {
    pub line: usize,
    pub op: &'static str,
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub vault_id: Uuid,
    /// False for an edit that changes nothing.
    pub changed: bool,
}

/// An item the batch writes: its version in the store (`None`: new) and
/// its contents after the operations so far.
struct Pending {
    stored: Option<u64>,
    item: Item,
}

impl Session {
    /// Checks every operation of `lines` in order, then writes all of them
    /// in one transaction (unless `dry_run`). An item the batch touches
    /// several times is written once, as the last operation leaves it.
    ///
    /// # Errors
    /// [`Error::BatchLine`] naming the first line that fails and why (a
    /// name taken, an item not found, a bad field, …); [`Error::Conflict`]
    /// when another process changed an item meanwhile. Nothing is written
    /// on error.
    pub async fn apply_batch(
        &mut self,
        lines: Vec<BatchLine>,
        dry_run: bool,
    ) -> Result<Vec<BatchOutcome>> {
        self.ensure_loaded().await?;
        let result = self.check_batch(lines).await;
        let (outcomes, pending, order) = match result {
            Ok(r) => r,
            Err(e) => {
                // The checks put the batch's items into the loaded list:
                // it is read again from the store when next needed.
                self.loaded = None;
                return Err(e);
            }
        };
        if dry_run || order.is_empty() {
            self.loaded = None;
            return Ok(outcomes);
        }
        let mut batch = ItemBatch {
            at: now_millis(),
            ..ItemBatch::default()
        };
        let mut saved = Vec::with_capacity(order.len());
        for id in &order {
            let Some(p) = pending.get(id) else { continue };
            let r = ItemRef {
                version: p.stored.map_or(1, |v| v + 1),
                ..p.item.r
            };
            let rec = seal_item(
                self.vault_key(r.vault_id)?,
                r,
                &p.item.overview,
                &p.item.details,
            );
            if p.stored.is_some() {
                batch.updates.push(rec);
            } else {
                batch.inserts.push(rec);
            }
            saved.push(Item {
                r,
                overview: p.item.overview.clone(),
                details: p.item.details.clone(),
            });
        }
        if let Err(e) = self.store.write_items(&batch).await {
            self.loaded = None;
            return Err(e.into());
        }
        tracing::debug!(items = saved.len(), "batch saved");
        for item in &saved {
            self.remember(item);
        }
        Ok(outcomes)
    }

    async fn check_batch(
        &mut self,
        lines: Vec<BatchLine>,
    ) -> Result<(Vec<BatchOutcome>, HashMap<Uuid, Pending>, Vec<Uuid>)> {
        let mut pending: HashMap<Uuid, Pending> = HashMap::new();
        let mut order = Vec::new();
        let mut outcomes = Vec::with_capacity(lines.len());
        let now = now_millis();
        for BatchLine { line, op } in lines {
            let verb = op.verb();
            let step = self.check_op(op, &mut pending, &mut order, now).await;
            let (item, changed) = step.map_err(|e| Error::BatchLine {
                line,
                source: Box::new(e),
            })?;
            outcomes.push(BatchOutcome {
                line,
                op: verb,
                id: item.r.id,
                name: item.overview.name.clone(),
                kind: item.overview.kind.to_string(),
                vault_id: item.r.vault_id,
                changed,
            });
        }
        Ok((outcomes, pending, order))
    }

    /// Checks one operation against the state the earlier ones left, and
    /// records its result in `pending` and the loaded list.
    async fn check_op(
        &mut self,
        op: BatchOp,
        pending: &mut HashMap<Uuid, Pending>,
        order: &mut Vec<Uuid>,
        now: i64,
    ) -> Result<(Item, bool)> {
        match op {
            BatchOp::Add { vault, draft } => {
                let vault_id = match vault {
                    Some(v) => self.resolve_vault(&v)?,
                    None => self.default_vault().0,
                };
                self.check_writable(vault_id).await?;
                self.check_name_free(vault_id, &draft.name, None).await?;
                let (_, item) = self.build_new(draft, vault_id, now)?;
                self.remember(&item);
                order.push(item.r.id);
                pending.insert(
                    item.r.id,
                    Pending {
                        stored: None,
                        item: item.clone(),
                    },
                );
                Ok((item, true))
            }
            BatchOp::Edit { item, vault, patch } => {
                let current = self.batch_item(&item, vault.as_deref(), pending).await?;
                if current.overview.kind == ItemKind::Key
                    && (!patch.set_fields.is_empty()
                        || !patch.remove_fields.is_empty()
                        || patch.urls.is_some())
                {
                    return Err(Error::Invalid(format!(
                        "{:?} is a named key: its fields change only through `openk key rotate` \
                         (its name, tags, folder and favourite can be edited)",
                        current.overview.name
                    )));
                }
                if let Some(name) = &patch.name {
                    self.check_name_free(current.r.vault_id, name, Some(current.r.id))
                        .await?;
                }
                let (mut overview, details) = apply_patch(&current, &patch)?;
                let flagged = patch.resolve && current.overview.conflict.is_some();
                if overview == current.overview && details == current.details && !flagged {
                    return Ok((current, false));
                }
                overview.updated_at = now.max(current.overview.updated_at);
                overview.updated_by = Some(self.header.device_id);
                overview.conflict = None;
                let next = Item {
                    r: current.r,
                    overview,
                    details,
                };
                self.note_pending(&next, pending, order).await?;
                Ok((next, true))
            }
            BatchOp::Trash { item, vault } => {
                let current = self.batch_item(&item, vault.as_deref(), pending).await?;
                if current.overview.trashed_at.is_some() {
                    return Err(Error::Invalid(format!(
                        "{:?} is already in the trash",
                        current.overview.name
                    )));
                }
                let mut next = current;
                next.overview.trashed_at = Some(now);
                next.overview.updated_at = now.max(next.overview.updated_at);
                next.overview.updated_by = Some(self.header.device_id);
                self.note_pending(&next, pending, order).await?;
                Ok((next, true))
            }
        }
    }

    /// The item a line names, as the earlier lines left it.
    async fn batch_item(
        &mut self,
        query: &str,
        vault: Option<&str>,
        pending: &HashMap<Uuid, Pending>,
    ) -> Result<Item> {
        let only = vault.map(|v| self.resolve_vault(v)).transpose()?;
        let id = match Uuid::parse_str(query.trim()) {
            Ok(id) if pending.contains_key(&id) => id,
            _ => self.resolve_in(query, false, only).await?.id,
        };
        match pending.get(&id) {
            Some(p) => Ok(p.item.clone()),
            None => self.item(id).await,
        }
    }

    /// Records a changed item of the batch (its first change keeps the
    /// version the store has).
    async fn note_pending(
        &mut self,
        next: &Item,
        pending: &mut HashMap<Uuid, Pending>,
        order: &mut Vec<Uuid>,
    ) -> Result<()> {
        let id = next.r.id;
        match pending.get_mut(&id) {
            Some(p) => p.item = next.clone(),
            None => {
                self.check_writable(next.r.vault_id).await?;
                order.push(id);
                pending.insert(
                    id,
                    Pending {
                        stored: Some(next.r.version),
                        item: next.clone(),
                    },
                );
            }
        }
        self.remember(next);
        Ok(())
    }
}
