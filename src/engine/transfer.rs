//! Moving and copying items between vaults (`openk mv`, `openk cp`, the
//! TUI's vault picker).
//!
//! An item's sealed bytes name its vault and its id (the associated data of
//! its key, overview and details), so an item in another vault is sealed
//! anew under that vault's key, every version with a fresh item key (as
//! every save is). A moved item also gets a new id: the local store keys
//! items, their sync state and tombstones by the item id alone, so the
//! source's tombstone and the moved item could not share one.

use uuid::Uuid;

use super::error::{Error, Result};
use super::model::{Item, ItemRef, now_millis};
use super::shared_vaults::VaultInfo;
use super::{ItemDraft, Session, clean_name, seal_item};

/// How many "NAME (copy N)" names a copy into the item's own vault tries.
const COPY_NAMES: u32 = 1000;

impl VaultInfo {
    /// Whether this account may write to the vault: its own, or shared
    /// with it as an editor or manager.
    #[must_use]
    pub fn writable(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|s| s.mine || s.role.writes())
    }
}

impl Session {
    /// Moves an item to the vault `to`: the same contents, times and
    /// history (every version, under its number), as a new item of `to`;
    /// the original is purged from its vault (a tombstone the next sync
    /// pushes). Both happen in one local transaction.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `to` is the item's own vault, when this
    /// account only views either vault, or when a version of the item's
    /// history does not decrypt (moving would lose it);
    /// [`Error::NameTaken`] when a live item of `to` has its name;
    /// [`Error::NoSuchVault`]; [`Error::Conflict`] when another process
    /// changed the item meanwhile. Nothing is changed on error.
    pub async fn move_item(&mut self, id: Uuid, to: Uuid) -> Result<Item> {
        self.check_vault(to)?;
        let item = self.item(id).await?;
        let from = item.r.vault_id;
        if from == to {
            return Err(Error::Invalid(format!(
                "{:?} is already in vault {:?}; nothing was changed",
                item.overview.name,
                self.vault_name(to)
            )));
        }
        self.check_writable(from).await?;
        self.check_writable(to).await?;
        if item.overview.trashed_at.is_none() {
            self.check_name_free(to, &item.overview.name, None).await?;
        }
        let mut versions = Vec::new();
        for rec in self.store.history(id).await? {
            let old = self.open_record(&rec).await.map_err(|e| {
                Error::Invalid(format!(
                    "version {} of {:?} does not decrypt ({e}): moving the item would lose it, so \
                     nothing was changed; a copy takes the current version only",
                    rec.version, item.overview.name
                ))
            })?;
            versions.push(old);
        }
        versions.push(item);
        let new_id = Uuid::now_v7();
        let vault_key = self.vault_key(to)?;
        let records: Vec<_> = versions
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
        let Some(current) = versions.pop() else {
            return Err(Error::Damaged("the item has no version".into()));
        };
        self.store
            .move_item(id, from, current.r.version, &records, now_millis())
            .await?;
        tracing::debug!(item = %id, new = %new_id, "moved item to another vault");
        // A shared source vault's activity keeps the name of what left it
        // (its purge is pushed with the next sync, as `purge`'s is).
        self.note_purge(&current, current.r.version).await?;
        self.forget(id);
        let moved = Item {
            r: ItemRef {
                id: new_id,
                vault_id: to,
                version: current.r.version,
            },
            ..current
        };
        self.remember(&moved);
        // The uses of the item stay with it under its new id.
        self.carry_use(id, new_id).await;
        Ok(moved)
    }

    /// Copies an item's current version into the vault `to` as a new item
    /// (new id, created now; not in the trash, even if the original is).
    /// `name` names the copy; without it the copy keeps the name, except in
    /// the item's own vault, where it is "NAME (copy)" (then "NAME (copy
    /// 2)", …), as a duplicate is in most password managers.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a vault this account only views or a bad
    /// name; [`Error::NameTaken`]; [`Error::NoSuchVault`].
    pub async fn copy_item(&mut self, id: Uuid, to: Uuid, name: Option<&str>) -> Result<Item> {
        self.check_vault(to)?;
        let item = self.item(id).await?;
        self.check_writable(to).await?;
        let name = match name {
            Some(n) => clean_name(n)?,
            None if to == item.r.vault_id => self.copy_name(to, &item.overview.name).await?,
            None => item.overview.name.clone(),
        };
        let draft = ItemDraft {
            kind: item.overview.kind,
            name,
            fields: item.details.fields,
            tags: item.overview.tags,
            folder: item.overview.folder,
            favorite: item.overview.favorite,
        };
        self.add_to(to, draft).await
    }

    /// The first of "NAME (copy)", "NAME (copy 2)", … that no live item of
    /// the vault has.
    async fn copy_name(&mut self, vault_id: Uuid, name: &str) -> Result<String> {
        for n in 1..=COPY_NAMES {
            let candidate = if n == 1 {
                format!("{name} (copy)")
            } else {
                format!("{name} (copy {n})")
            };
            match self.check_name_free(vault_id, &candidate, None).await {
                Ok(()) => return clean_name(&candidate),
                Err(Error::NameTaken { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::Invalid(format!(
            "{COPY_NAMES} copies of {name:?} are already in this vault; give the copy a name"
        )))
    }

    /// Refuses a vault id this account has no vault of.
    pub(super) fn check_vault(&self, vault_id: Uuid) -> Result<()> {
        if self.vaults.iter().any(|v| v.id == vault_id) {
            Ok(())
        } else {
            Err(Error::NoSuchVault {
                query: vault_id.to_string(),
                known: self.vaults.iter().map(|v| v.name.clone()).collect(),
            })
        }
    }
}
