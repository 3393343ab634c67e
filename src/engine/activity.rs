//! A shared vault's activity log for its managers: who added, changed,
//! moved or removed which item, and who invited, promoted, removed or left,
//! when. It is made from what members sign, never from the server's word:
//! the membership log (verified from the creator's entry) and the item
//! versions this device pulled or pushed, whose authors' signatures are
//! checked again when the log is shown.
//!
//! Each item version this device learns about in a shared vault (a pull it
//! accepts, a push, a purge about to happen) leaves one row in the local
//! `activity` table: what it did, worked out then from the version before
//! it, sealed with the account key. A device holds the activity from the
//! day it joined (and, for a member who joined later, every item's current
//! version).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{Error, Result};
use super::members::{Action, Authorship, Membership};
use super::model::Item;
use super::{Session, describe_changes, open_json, seal_json};
use crate::crypto::Aad;
use crate::store::{ActivityKey, SyncOp};

/// What one item version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemChange {
    Added,
    Changed,
    Renamed,
    Moved,
    Trashed,
    Restored,
    Removed,
}

impl ItemChange {
    fn verb(self) -> &'static str {
        match self {
            Self::Added => "added",
            Self::Changed => "changed",
            Self::Renamed => "renamed",
            Self::Moved => "moved",
            Self::Trashed => "moved to the trash",
            Self::Restored => "restored from the trash",
            Self::Removed => "removed for good",
        }
    }
}

/// One row of the activity table, as sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ItemEvent {
    change: ItemChange,
    /// The item's name in this version (before it, for a removal).
    name: String,
    /// What else there is to say: the fields changed, the old name, the
    /// folder.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    detail: String,
    /// When the author saved it (its clock), unix milliseconds.
    at: i64,
    /// The author's account; `None` until the version is pushed (a purge
    /// made here).
    author: Option<Uuid>,
    /// The signature to check again, with the content hash it covers (hex;
    /// zeros for a purge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorship: Option<Authorship>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    content_hash: String,
}

/// One line of a vault's activity log.
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// Unix milliseconds (the author's clock).
    pub at: i64,
    /// Who did it: an email as the membership log names the account.
    pub who: String,
    /// What was done, e.g. `changed "Deploy key" (password)`, `invited
    /// ben@example.org as editor`. Names and emails are data: strip
    /// terminal controls before showing them.
    pub what: String,
    /// The item's id, for item versions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<Uuid>,
    /// `signed` (the signature checks against the membership log), `this
    /// device` (a change made here, not pushed yet) or `UNVERIFIED` (its
    /// signature does not check: shown, never trusted).
    pub proof: &'static str,
}

/// What `new` did after `prev` (`new` `None`: purged).
pub(super) fn describe(prev: Option<&Item>, new: Option<&Item>) -> (ItemChange, String, String) {
    match (prev, new) {
        (Some(p), None) => (ItemChange::Removed, p.overview.name.clone(), String::new()),
        (None, None) => (ItemChange::Removed, "an item".into(), String::new()),
        (None, Some(n)) => (
            if n.r.version <= 1 {
                ItemChange::Added
            } else {
                ItemChange::Changed
            },
            n.overview.name.clone(),
            String::new(),
        ),
        (Some(p), Some(n)) => {
            let (o, v) = (&p.overview, &n.overview);
            let name = v.name.clone();
            match (o.trashed_at, v.trashed_at) {
                (None, Some(_)) => return (ItemChange::Trashed, name, String::new()),
                (Some(_), None) => return (ItemChange::Restored, name, String::new()),
                _ => {}
            }
            if o.name != v.name {
                return (ItemChange::Renamed, name, format!("from {:?}", o.name));
            }
            if o.folder != v.folder {
                let to = v
                    .folder
                    .as_ref()
                    .map_or_else(|| "out of its folder".to_owned(), |f| format!("to {f:?}"));
                return (ItemChange::Moved, name, to);
            }
            let fields: Vec<String> = describe_changes(p, n)
                .into_iter()
                .filter(|c| c != "renamed" && c != "folder changed")
                .collect();
            (ItemChange::Changed, name, fields.join(", "))
        }
    }
}

impl Session {
    /// The sealed activity row of one version of a shared vault's item
    /// (`new` `None`: its purge).
    pub(super) fn activity_op(
        &self,
        vault_id: Uuid,
        key: ActivityKey,
        prev: Option<&Item>,
        new: Option<&Item>,
        authorship: Option<Authorship>,
        content_hash: Option<[u8; 32]>,
    ) -> SyncOp {
        let (change, name, detail) = describe(prev, new);
        self.activity_row_op(
            vault_id,
            key,
            ItemEvent {
                change,
                name,
                detail,
                at: new
                    .map(|n| n.overview.updated_at)
                    .unwrap_or_else(super::model::now_millis),
                author: authorship.as_ref().map(|a| a.author),
                authorship,
                content_hash: content_hash
                    .map(|h| data_encoding::HEXLOWER.encode(&h))
                    .unwrap_or_default(),
            },
        )
    }

    fn activity_row_op(&self, vault_id: Uuid, key: ActivityKey, event: ItemEvent) -> SyncOp {
        SyncOp::Activity {
            item_id: key.item_id,
            vault_id,
            version: key.version,
            deleted: key.deleted,
            sealed: seal_json(
                &self.account_key,
                &activity_aad(self.header.account_id, key),
                &event,
            ),
        }
    }

    /// Before a purge of an item of a shared vault: its row, while its
    /// name is still here (the push adds the signature).
    pub(super) async fn note_purge(&self, prev: &Item, version: u64) -> Result<()> {
        if !self.shares().await?.contains_key(&prev.r.vault_id) {
            return Ok(());
        }
        let key = ActivityKey {
            item_id: prev.r.id,
            version,
            deleted: true,
        };
        let op = self.activity_op(prev.r.vault_id, key, Some(prev), None, None, None);
        if let SyncOp::Activity { sealed, .. } = op {
            self.store
                .put_activity(key, prev.r.vault_id, &sealed)
                .await?;
        }
        Ok(())
    }

    /// The row of a purge this device pushed, with its signature (the name
    /// from the row [`Self::note_purge`] left, if any).
    pub(super) async fn pushed_purge_op(
        &self,
        vault_id: Uuid,
        key: ActivityKey,
        authorship: Option<Authorship>,
    ) -> Result<SyncOp> {
        let earlier = self
            .store
            .activity_row(key)
            .await?
            .and_then(|s| self.open_activity(key, &s));
        let mut event = earlier.unwrap_or(ItemEvent {
            change: ItemChange::Removed,
            name: "an item".into(),
            detail: String::new(),
            at: super::model::now_millis(),
            author: None,
            authorship: None,
            content_hash: String::new(),
        });
        event.author = authorship.as_ref().map(|a| a.author);
        event.authorship = authorship;
        event.content_hash = data_encoding::HEXLOWER.encode(&[0; 32]);
        Ok(self.activity_row_op(vault_id, key, event))
    }

    fn open_activity(&self, key: ActivityKey, sealed: &[u8]) -> Option<ItemEvent> {
        open_json(
            &self.account_key,
            &activity_aad(self.header.account_id, key),
            sealed,
        )
        .ok()
    }

    /// The activity of a shared vault, newest first (at most `limit`
    /// lines): its membership log and the item versions this device holds
    /// rows for, each author's signature checked again. For managers.
    ///
    /// # Errors
    /// Not a shared vault; not a manager of it; a log that fails
    /// verification; network errors (the log comes from the server).
    pub async fn activity(&mut self, vault_id: Uuid, limit: usize) -> Result<Vec<Activity>> {
        let state = self.share_state(vault_id).await?;
        if !state.mine && !state.role.manages() {
            return Err(Error::Invalid(
                "only the vault's managers see its activity log".into(),
            ));
        }
        let m = self.verified_log(vault_id, &state.owner_email).await?;
        let mut out = membership_lines(&m);
        for (key, sealed) in self.store.activity(vault_id).await? {
            if let Some(e) = self.open_activity(key, &sealed) {
                out.push(item_line(&m, self.header.account_id, key, &e));
            }
        }
        out.sort_by_key(|a| std::cmp::Reverse(a.at));
        out.truncate(limit);
        Ok(out)
    }
}

/// The email the log gives `account` (or its id).
fn email_of(m: &Membership, account: Uuid) -> String {
    m.entries
        .iter()
        .find(|e| e.member.account_id == account)
        .map_or_else(|| account.to_string(), |e| e.member.email.clone())
}

fn membership_lines(m: &Membership) -> Vec<Activity> {
    m.entries
        .iter()
        .map(|e| {
            let whom = &e.member.email;
            let what = match &e.action {
                Action::Create { .. } => "shared the vault".to_owned(),
                Action::Grant { role } => format!("invited {whom} as {}", role.as_str()),
                Action::SetRole { role } => format!("made {whom} {}", role.as_str()),
                Action::Remove => format!("removed {whom} (the key was rotated)"),
                Action::Leave => "left the vault".to_owned(),
                Action::Rotate => "rotated the vault key".to_owned(),
            };
            Activity {
                at: e.at,
                who: email_of(m, e.signer),
                what,
                item_id: None,
                proof: "signed",
            }
        })
        .collect()
}

pub(super) fn activity_aad(account_id: Uuid, key: ActivityKey) -> Aad {
    Aad::activity(account_id, key.item_id, key.version, key.deleted)
}

fn item_line(m: &Membership, me: Uuid, key: ActivityKey, e: &ItemEvent) -> Activity {
    let ActivityKey {
        item_id, version, ..
    } = key;
    let hash: Option<[u8; 32]> = data_encoding::HEXLOWER
        .decode(e.content_hash.as_bytes())
        .ok()
        .and_then(|h| h.try_into().ok());
    let proof = match (&e.authorship, hash) {
        (Some(a), Some(h)) if m.check_version(a, item_id, version, &h).is_ok() => "signed",
        (None, _) if e.author.is_none_or(|a| a == me) => "this device",
        _ => "UNVERIFIED",
    };
    let who = e.author.map_or_else(|| email_of(m, me), |a| email_of(m, a));
    let mut what = format!("{} {:?}", e.change.verb(), e.name);
    if !e.detail.is_empty() {
        what.push_str(&format!(" ({})", e.detail));
    }
    if e.authorship.as_ref().is_some_and(|a| a.attested) {
        what.push_str(" (from before the vault was shared)");
    }
    Activity {
        at: e.at,
        who,
        what,
        item_id: Some(item_id),
        proof,
    }
}
