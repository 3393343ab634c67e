//! The vault pane's engine work, and what it answers.

use uuid::Uuid;

use crate::engine::bulk::BulkOp;
use crate::engine::model::Item;
use crate::engine::usage::ItemUse;
use crate::engine::{ItemDraft, ItemPatch, VersionSummary};
use crate::tui::worker::{Job, Notice, To};

/// The vault pane's id: the worker's answers for it are addressed here.
pub const TO: To = To("vault");

/// What a successful write was, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Added,
    Saved,
    Trashed,
    Restored,
}

/// A write's answer.
#[derive(Debug)]
pub enum Saved {
    Written(Verb, Box<Item>),
    /// Moved or copied into a vault: the new item, and what to say.
    Transferred(Box<Item>, String),
    /// An edit made on an older version, merged with the newer one.
    Merged {
        item: Box<Item>,
        /// The version it was merged with (now in history).
        other: u64,
        /// Parts both changed: this edit's values were kept.
        conflicts: Vec<String>,
    },
    /// A bulk change to the selected items: what to say.
    Bulk(String),
}

/// An item's versions, for the history popup.
#[derive(Debug)]
pub struct Versions(pub Uuid, pub Vec<VersionSummary>);

/// Reads one item (after what other writers saved).
#[must_use]
pub fn read_item(id: Uuid) -> Job {
    Job::new(TO, "item", move |v| {
        Box::pin(async move { v.item(id).await.map(Box::new) })
    })
    .fresh()
}

/// How often and when an item was used (by this account, on any device).
#[derive(Debug)]
pub struct Used(pub Uuid, pub ItemUse);

/// Reads an item's usage.
#[must_use]
pub fn usage_of(id: Uuid) -> Job {
    Job::new(TO, "usage", move |v| {
        Box::pin(async move { Ok(Used(id, v.item_use(id).await?)) })
    })
}

/// Records a use of an item (a copy, a reveal) and reads its usage again.
/// Never a write job: a use makes no version and no sync.
#[must_use]
pub fn record_use(id: Uuid) -> Job {
    Job::new(TO, "use", move |v| {
        Box::pin(async move {
            v.record_use(id).await;
            Ok(Used(id, v.item_use(id).await?))
        })
    })
}

/// Adds an item.
#[must_use]
pub fn add(draft: ItemDraft) -> Job {
    Job::new(TO, "add", move |v| {
        Box::pin(async move { Ok(Saved::Written(Verb::Added, Box::new(v.add(draft).await?))) })
    })
    .writes()
}

/// A patch made on a version of the item (`None`: on the current one);
/// saved on a newer version, it is merged (see `Session::update_from`).
#[must_use]
pub fn update(id: Uuid, base: Option<u64>, patch: ItemPatch) -> Job {
    Job::new(TO, "update", move |v| {
        Box::pin(async move {
            let saved = v.update_from(id, base, &patch).await?;
            Ok(match saved.merged_with {
                Some(other) => Saved::Merged {
                    item: Box::new(saved.item),
                    other,
                    conflicts: saved.conflicts,
                },
                None => Saved::Written(Verb::Saved, Box::new(saved.item)),
            })
        })
    })
    .writes()
}

/// Moves an item to the trash.
#[must_use]
pub fn trash(id: Uuid) -> Job {
    Job::new(TO, "trash", move |v| {
        Box::pin(async move { Ok(Saved::Written(Verb::Trashed, Box::new(v.trash(id).await?))) })
    })
    .writes()
}

/// Takes an item out of the trash.
#[must_use]
pub fn restore(id: Uuid) -> Job {
    Job::new(TO, "restore", move |v| {
        Box::pin(async move {
            Ok(Saved::Written(
                Verb::Restored,
                Box::new(v.restore(id).await?),
            ))
        })
    })
    .writes()
}

/// Moves an item (with its history) into the vault `to`.
#[must_use]
pub fn move_to(id: Uuid, to: Uuid) -> Job {
    Job::new(TO, "move", move |v| {
        Box::pin(async move {
            let from = v.item(id).await?.r.vault_id;
            let from = v.vault_name(from).to_owned();
            let item = v.move_item(id, to).await?;
            let said = format!(
                "Moved {} from {from} to {}, with its history",
                item.overview.name,
                v.vault_name(to)
            );
            Ok(Saved::Transferred(Box::new(item), said))
        })
    })
    .writes()
}

/// Copies an item's current version into the vault `to` (its own vault:
/// a copy named "NAME (copy)").
#[must_use]
pub fn copy_to(id: Uuid, to: Uuid) -> Job {
    Job::new(TO, "copy", move |v| {
        Box::pin(async move {
            let item = v.copy_item(id, to, None).await?;
            let said = format!("Copied to {} as {}", v.vault_name(to), item.overview.name);
            Ok(Saved::Transferred(Box::new(item), said))
        })
    })
    .writes()
}

/// Reads an item's history.
#[must_use]
pub fn history(id: Uuid) -> Job {
    Job::new(TO, "history", move |v| {
        Box::pin(async move { Ok(Versions(id, v.history(id).await?)) })
    })
}

/// Destroys a trashed item and its history.
#[must_use]
pub fn purge(id: Uuid) -> Job {
    Job::new(To::APP, "purge", move |v| {
        Box::pin(async move {
            // A damaged item can be purged too: name it by its id then.
            let name = v
                .item(id)
                .await
                .map_or_else(|_| id.to_string(), |i| i.overview.name);
            v.purge(id).await?;
            Ok(Notice(format!(
                "Purged {name:?}: the item and its history are gone"
            )))
        })
    })
    .writes()
}

/// One change to many items (the selection), in one engine call and one
/// local transaction.
#[must_use]
pub fn bulk(ids: Vec<Uuid>, op: BulkOp) -> Job {
    Job::new(TO, "bulk", move |v| {
        Box::pin(async move {
            let report = v.bulk_ids(&ids, &op, false).await?;
            let n = report.changed.len();
            let same = report.unchanged.len();
            let done = match &op {
                BulkOp::AddTags(_) => "Tagged",
                BulkOp::RemoveTags(_) => "Untagged",
                BulkOp::Folder(_) => "Moved to the folder",
                BulkOp::Trash => "Moved to the trash",
                BulkOp::MoveVault(to) => {
                    return Ok(Saved::Bulk(format!(
                        "Moved {n} item(s) to {}, with their history{}",
                        crate::text::line(v.vault_name(*to)),
                        if same > 0 {
                            format!("; {same} were there already")
                        } else {
                            String::new()
                        }
                    )));
                }
            };
            Ok(Saved::Bulk(format!(
                "{done}: {n} item(s){}",
                if same > 0 {
                    format!("; {same} needed no change")
                } else {
                    String::new()
                }
            )))
        })
    })
    .writes()
}
