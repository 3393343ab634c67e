//! The local engine: the only API the CLI, the TUI and the agent call.
//!
//! It owns the key hierarchy above the primitives (DESIGN §2): it unlocks a
//! vault directory with the master password and the Secret Key, keeps the
//! account and vault keys for the session, decrypts overviews for listing and
//! search, decrypts details only for the item asked for, and seals every
//! change before the store sees it. Nothing here knows that a terminal exists.

mod account_key;
pub mod activity;
pub mod approval;
pub mod backup;
pub mod batch;
pub mod bulk;
pub mod contacts;
pub mod error;
pub mod export;
pub mod files;
pub mod fresh;
pub mod generator;
pub mod imports;
pub mod members;
pub mod merge;
pub mod model;
pub mod named_keys;
pub mod remote;
pub mod search;
pub mod security;
pub mod sshkey;
pub mod state;
pub mod strength;
pub mod sync;
pub mod usage;

/// Key derivation as an unlock runs it (for benchmarks that time it).
pub mod kdf {
    pub use crate::crypto::kdf::{SALT_LEN, password_key};
}

mod draft;
pub mod emergency;
mod items;
mod kit;
pub mod recovery;
mod rotation;
mod seal;
pub mod shared_vaults;
mod transfer;
mod unlock;
mod vault;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use uuid::Uuid;

use crate::crypto::{self, AccountKeyPair, PublicKeys, SecretKey};
pub use crate::crypto::{ExposeSecret, KdfParams, Key, SecretString, harden_process};
use crate::store::{self, Header, Store};
pub use draft::{ItemPart, MAX_FILE, check_draft};
use draft::{apply_patch, clean_field, clean_folder, clean_name, clean_tags, describe_changes};
pub use error::{Error, Result};
pub use items::ListOrder;
pub use kit::emergency_kit_text;
use model::{Entry, Field, ItemKind};
pub use rotation::LeftVault;
use seal::{item_ref, open_entry, open_full, open_json, seal_item, seal_json};
use search::SearchIndex;
use unlock::password_key;
pub use unlock::{has_vault_file, vault_exists};
use vault::Vault;

#[cfg(test)]
use draft::MAX_LABEL;
#[cfg(test)]
use model::Item;

/// An item that could not be decrypted: its id and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedItem {
    pub id: String,
    pub why: String,
}

/// A new item, before it is sealed.
#[derive(Debug, Clone)]
pub struct ItemDraft {
    pub kind: ItemKind,
    pub name: String,
    pub fields: Vec<Field>,
    pub tags: Vec<String>,
    pub folder: Option<String>,
    pub favorite: bool,
}

/// Changes to an existing item. List-valued parts (`urls`, `tags`) replace
/// the whole list when given.
#[derive(Debug, Clone, Default)]
pub struct ItemPatch {
    pub name: Option<String>,
    /// Set these fields: replaces the first field with the same label, or appends.
    pub set_fields: Vec<Field>,
    pub urls: Option<Vec<String>>,
    /// Removes every field with one of these labels.
    pub remove_fields: Vec<String>,
    pub tags: Option<Vec<String>>,
    pub folder: Option<Option<String>>,
    pub favorite: Option<bool>,
    /// Clears a sync merge's conflict flag (saves a version even when
    /// nothing else changes).
    pub resolve: bool,
}

/// One version in an item's history and what changed from the one before.
/// It names fields, never their values.
#[derive(Debug, Clone, Serialize)]
pub struct VersionSummary {
    pub version: u64,
    pub updated_at: i64,
    pub current: bool,
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
}

struct Loaded {
    entries: Vec<Entry>,
    by_id: HashMap<Uuid, usize>,
    damaged: Vec<DamagedItem>,
    /// Built by the first search; `None` until then (or after a purge), so
    /// that edits never patch an index that does not line up with `entries`.
    search: Option<SearchIndex>,
}

/// The unlocked local state of one account on this device: its keys, its
/// server record and the vaults it holds (one today: the personal
/// vault). Dropping it wipes every key it holds.
pub struct Session {
    dir: PathBuf,
    store: Store,
    header: Header,
    secret_key: SecretKey,
    account_key: Key,
    /// Authenticates the local state ([`state`]), derived from the account key.
    state_key: Key,
    /// Proves the password and Secret Key to a server; derived at unlock.
    auth_key: Key,
    /// Wraps the account key (the header's form and the server's); derived at unlock.
    unlock_key: Key,
    /// The server this vault is registered with, if any.
    remote: Option<remote::RemoteRecord>,
    keypair: AccountKeyPair,
    vaults: Vec<Vault>,
    loaded: Option<Loaded>,
    /// This unlock adopted a master password changed on another device.
    adopted_password_change: bool,
    /// Where the database stood when [`Session::catch_up`] last looked.
    seen: Option<store::ChangeMarker>,
    /// While set, every server request must be done by then (a sync with a
    /// time limit, the server part of `status`).
    deadline: Option<crate::sync::client::Deadline>,
    /// The verified membership logs of the shared vaults this sync is
    /// working on: who may author their versions.
    share_logs: HashMap<Uuid, members::Membership>,
}

/// The keys an unlocked [`Session`] holds, as `init`, the unlock, `login`
/// and [`Session::handle`] have them.
struct SessionKeys {
    secret_key: SecretKey,
    account_key: Key,
    /// The keys the password and Secret Key derive.
    derived: crypto::keys::DerivedKeys,
    keypair: AccountKeyPair,
}

impl Session {
    /// The one constructor of the unlocked state: the key that
    /// authenticates local state comes from the account key; nothing is
    /// adopted, seen, loaded or time-limited yet, and no server record is
    /// set (the callers that have one set `remote`).
    fn from_parts(
        dir: &std::path::Path,
        store: Store,
        header: Header,
        keys: SessionKeys,
        vaults: Vec<Vault>,
    ) -> Self {
        let state_key = crypto::keys::local_state_key(&keys.account_key);
        Self {
            dir: dir.to_path_buf(),
            store,
            header,
            secret_key: keys.secret_key,
            account_key: keys.account_key,
            state_key,
            auth_key: keys.derived.auth,
            unlock_key: keys.derived.unlock,
            remote: None,
            keypair: keys.keypair,
            vaults,
            loaded: None,
            adopted_password_change: false,
            seen: None,
            deadline: None,
            share_logs: HashMap::new(),
        }
    }
}

impl Loaded {
    /// Nothing loaded yet, and nothing to load (a new vault).
    fn empty() -> Self {
        Self {
            entries: Vec::new(),
            by_id: HashMap::new(),
            damaged: Vec::new(),
            search: None,
        }
    }

    /// After entries were removed: the id index rebuilt, the search index
    /// dropped (the next search rebuilds it).
    fn reindex(&mut self) {
        self.by_id = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.r.id, i))
            .collect();
        self.search = None;
    }
}

/// How [`Session::unlock_with`] may treat a password changed on another device.
#[derive(Debug, Clone, Default)]
pub struct UnlockOptions {
    /// Accept key derivation parameters below the floor from the server
    /// (`openk login --allow-weak-kdf`).
    pub allow_weak_kdf: bool,
    /// The server the user named for this unlock (`openk login --server
    /// URL`). A password this vault does not know may be a master password
    /// changed on another device, but only the server can say so, and the
    /// vault's record of its server cannot be authenticated without the
    /// account key that password does not open. So the question (and the
    /// auth key) goes to the record's server only when it is this one;
    /// otherwise nothing is sent and the unlock fails with
    /// [`Error::WrongPasswordRegistered`].
    pub confirmed_server: Option<String>,
}

impl Session {
    /// Flushes and closes the database.
    pub async fn close(self) {
        self.store.close().await;
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the vault was opened read-only (its directory or `vault.db`
    /// is not writable): reads work, every change fails with
    /// [`Error::ReadOnly`].
    #[must_use]
    pub fn is_read_only(&self) -> bool {
        self.store.is_read_only()
    }

    #[must_use]
    pub fn account_id(&self) -> Uuid {
        self.header.account_id
    }

    #[must_use]
    pub fn device_id(&self) -> Uuid {
        self.header.device_id
    }

    #[must_use]
    pub fn kdf(&self) -> KdfParams {
        self.header.kdf
    }

    #[must_use]
    pub fn public_keys(&self) -> PublicKeys {
        self.keypair.public()
    }

    /// The default (personal) vault's id and name.
    #[must_use]
    pub fn default_vault(&self) -> (Uuid, &str) {
        self.vaults
            .first()
            .map_or((Uuid::nil(), ""), |v| (v.id, v.name.as_str()))
    }

    /// Direct access to the store, for tests that tamper with it.
    #[doc(hidden)]
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What [`Store::apply_sync`] seals each vault's sync state with.
    fn sync_sealer(&self) -> impl Fn(Uuid, &store::SyncFields) -> Vec<u8> + Send + Sync + '_ {
        move |vault_id, fields| {
            state::seal_sync(&self.state_key, self.header.account_id, vault_id, fields)
        }
    }

    fn vault_key(&self, vault_id: Uuid) -> Result<&Key> {
        self.vaults
            .iter()
            .find(|v| v.id == vault_id)
            .map(|v| &v.key)
            .ok_or_else(|| Error::Damaged(format!("an item refers to unknown vault {vault_id}")))
    }
}

#[cfg(test)]
mod account_key_tests;
#[cfg(test)]
mod approval_tests;
#[cfg(test)]
mod bulk_tests;
#[cfg(test)]
mod contacts_tests;
#[cfg(test)]
mod emergency_tests;
#[cfg(test)]
mod imports_tests;
#[cfg(test)]
mod recovery_tests;
#[cfg(test)]
mod rotation_tests;
#[cfg(test)]
mod shared_sync_tests;
#[cfg(test)]
mod shared_vaults_tests;
#[cfg(test)]
mod sync_tests;
#[cfg(test)]
pub(crate) mod test_fixtures;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod transfer_tests;
#[cfg(test)]
mod usage_tests;
