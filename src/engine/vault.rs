//! One vault of the account: the only place a vault key is unwrapped from,
//! or wrapped under, the account key.

use uuid::Uuid;

use super::error::{Error, Result};
use super::seal::{open_json, seal_json};
use crate::crypto::{self, Aad, CryptoError, Key};
use crate::store::VaultRecord;

/// One vault of the account, opened: its id, name and key. A [`super::Session`]
/// holds every vault the account has on this device.
pub(super) struct Vault {
    pub(super) id: Uuid,
    pub(super) name: String,
    pub(super) key: Key,
    /// The epoch of `key` (1 until the vault's key is first rotated).
    pub(super) key_epoch: u32,
}

/// The epoch of the key in a vault's own copy as the server lists it: its
/// current epoch for a vault that is not shared (only its owner rotates it,
/// and sends that copy along), else 1, so that the membership log and the
/// copy sealed to this account decide (a manager who is not the owner
/// rotates a shared vault without touching the owner's copy).
pub(super) fn own_copy_epoch(v: &openk_server::api::types::VaultResponse) -> u32 {
    if v.shared { 1 } else { v.key_epoch.max(1) }
}

impl Vault {
    /// Unwraps a vault's key with the account key (bound to the account and
    /// the vault id) and reads its name from `meta` (a damaged name is
    /// shown as such).
    ///
    /// # Errors
    /// The key does not open; the caller says what that means where it
    /// came from (local damage, a server that lies).
    pub(super) fn unwrap(
        account_key: &Key,
        account_id: Uuid,
        id: Uuid,
        wrapped_key: &[u8],
        meta: &[u8],
        key_epoch: u32,
    ) -> std::result::Result<Self, CryptoError> {
        let key = crypto::unwrap_key(account_key, &Aad::vault_key(account_id, id), wrapped_key)?;
        let name = open_json::<serde_json::Value>(&key, &Aad::vault_meta(id), meta)
            .ok()
            .and_then(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .unwrap_or_else(|| "(damaged name)".to_owned());
        Ok(Self {
            id,
            name,
            key,
            key_epoch,
        })
    }

    /// Opens a vault stored here: a key that does not open is damage.
    pub(super) fn open(account_key: &Key, account_id: Uuid, v: &VaultRecord) -> Result<Self> {
        Self::unwrap(
            account_key,
            account_id,
            v.id,
            &v.wrapped_key,
            &v.meta,
            v.key_epoch,
        )
        .map_err(|_| Error::Damaged(format!("the key of vault {} cannot be decrypted", v.id)))
    }

    /// The vault's metadata for `name`, sealed with its key.
    pub(super) fn sealed_meta(&self, name: &str) -> Vec<u8> {
        seal_json(
            &self.key,
            &Aad::vault_meta(self.id),
            &serde_json::json!({ "name": name }),
        )
    }

    /// The name `meta` holds, if it opens with this vault's key.
    pub(super) fn name_in(&self, meta: &[u8]) -> Option<String> {
        open_json::<serde_json::Value>(&self.key, &Aad::vault_meta(self.id), meta)
            .ok()
            .and_then(|m| m.get("name").and_then(|n| n.as_str()).map(str::to_owned))
    }

    /// A new vault named `name`: a fresh key, wrapped under the account key,
    /// and the record to store.
    pub(super) fn create(
        account_key: &Key,
        account_id: Uuid,
        name: &str,
        created_at: i64,
    ) -> (Self, VaultRecord) {
        let id = Uuid::now_v7();
        let key = Key::random();
        let record = VaultRecord {
            id,
            wrapped_key: crypto::wrap_key(account_key, &Aad::vault_key(account_id, id), &key),
            meta: seal_json(
                &key,
                &Aad::vault_meta(id),
                &serde_json::json!({ "name": name }),
            ),
            created_at,
            key_epoch: 1,
        };
        let vault = Self {
            id,
            name: name.to_owned(),
            key,
            key_epoch: 1,
        };
        (vault, record)
    }

    /// The same vault, its key copied (for a second handle).
    pub(super) fn duplicate(&self) -> Self {
        Self {
            id: self.id,
            name: self.name.clone(),
            key: self.key.duplicate(),
            key_epoch: self.key_epoch,
        }
    }
}
