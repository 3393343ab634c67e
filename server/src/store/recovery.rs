//! Account recovery (issue 13): what the server keeps of an account's
//! recovery code. The code never reaches the server; it derives an X25519
//! key pair and an auth key on the client. The store keeps the public key
//! and its signature by the account's identity key, a salted hash of the
//! auth key, and the account key sealed to the public key (HPKE): only the
//! code's holder can open it, and only the code's holder can use it to set
//! new credentials.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Account, StoreResult};

/// An account's recovery data as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The X25519 public key the code derives.
    pub public_key: Vec<u8>,
    /// Ed25519 by the account's identity key over the public key (checked
    /// by the clients, opaque here).
    pub signature: Vec<u8>,
    pub auth_salt: Vec<u8>,
    /// SHA-256(auth_salt || auth key), as for the password's auth key.
    pub auth_hash: Vec<u8>,
    /// The account key sealed to `public_key`.
    pub sealed_account_key: Vec<u8>,
    /// The version of the account key sealed.
    pub account_key_version: u32,
    /// Unix milliseconds of the setup.
    pub created_at: i64,
}

/// Accounts' recovery data.
#[async_trait]
pub trait RecoveryStore: Send + Sync {
    /// Sets up (or replaces) the account's recovery data. `Conflict` when
    /// `account_key_version` is not the account key's version now.
    async fn put_recovery(&self, account_id: Uuid, recovery: &Recovery) -> StoreResult<()>;
    async fn recovery(&self, account_id: Uuid) -> StoreResult<Option<Recovery>>;
    /// Removes it; whether there was one.
    async fn delete_recovery(&self, account_id: Uuid) -> StoreResult<bool>;
    /// Uses the recovery data, in one transaction: the account's new
    /// credentials (as [`super::AccountStore::update_account_keys`]), every
    /// session of the account ended, and the recovery data deleted (a code
    /// works once). `Conflict` when the recovery data is no longer the one
    /// whose auth hash is `auth_hash` (used or replaced meanwhile). Returns
    /// the ended sessions' access hashes.
    async fn recover_account(
        &self,
        account: &Account,
        auth_hash: &[u8],
    ) -> StoreResult<Vec<Vec<u8>>>;
}
