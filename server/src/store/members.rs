//! Shared vaults (DESIGN §7): the accounts a vault's owner shares it with,
//! their roles and the vault key sealed to each (opaque), and the vault's
//! membership log (signed entries the clients verify; opaque here, kept in
//! order). Vaults are named as everywhere: by their owner's account (the
//! server's id) and the vault's client id.

use async_trait::async_trait;
use uuid::Uuid;

use super::{StoreResult, Vault};

/// One account's membership of a shared vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The member (the server's account id).
    pub account_id: Uuid,
    /// `viewer`, `editor` or `manager`.
    pub role: String,
    /// `invited` or `active`.
    pub status: String,
    /// The vault key sealed to the member.
    pub sealed_key: Vec<u8>,
    pub key_epoch: u32,
    pub added_at: i64,
}

/// A member with the names other members know it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    pub membership: Membership,
    /// The member's account id as its client made it.
    pub client_id: Uuid,
    pub email: String,
}

/// A vault shared with an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedVault {
    pub vault: Vault,
    pub membership: Membership,
    pub owner_email: String,
}

/// One stored entry of a membership log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRow {
    pub seq: u64,
    pub entry: Vec<u8>,
    pub signature: Vec<u8>,
}

/// What an appended entry changes in the membership table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberWrite {
    Add(Membership),
    SetRole {
        account_id: Uuid,
        role: String,
    },
    /// Removes the member and rotates the key.
    Remove {
        account_id: Uuid,
        rotation: RotationIn,
    },
    /// The member leaves (the key stays until a rotation).
    Leave {
        account_id: Uuid,
    },
    Rotate(RotationIn),
}

/// A vault key rotation as the store applies it (already validated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationIn {
    /// The vault's epoch plus one.
    pub key_epoch: u32,
    /// The new key sealed to each member after the change (the server's
    /// account ids): exactly the remaining members.
    pub sealed_keys: Vec<(Uuid, Vec<u8>)>,
    /// Every live record at its current version, its key re-wrapped; each
    /// gets the next revision, in this order.
    pub records: Vec<RewrappedIn>,
    pub meta: Vec<u8>,
    pub manifest: Vec<u8>,
    /// The vault's head the rotation was computed on.
    pub expected_head: i64,
    /// The owner's own copy of the new key (wrapped under its account key).
    pub owner_wrapped_key: Option<Vec<u8>>,
}

/// One live record's re-wrapped key (and a signature where it had none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrappedIn {
    pub item_id: Uuid,
    pub version: u64,
    pub wrapped_key: Vec<u8>,
    pub authorship: Option<Vec<u8>>,
}

/// What an append did beyond the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The membership table changed.
    Members,
    /// The key was rotated: the vault's new head revision.
    Rotated { head: i64 },
}

/// Shared vaults' members and logs.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// Appends `row` to the vault's log and applies `write`, in one
    /// transaction: `Conflict` unless `row.seq` is the log's next number
    /// (or the member to add is one already), `NotFound` for no such vault
    /// or member. A rotation is refused with `Conflict` unless its epoch is
    /// the next, the vault's head is `expected_head`, its records are
    /// exactly the live ones at their versions, and its sealed keys are for
    /// exactly the members after the change.
    async fn append_log(
        &self,
        owner: Uuid,
        vault_id: Uuid,
        row: &LogRow,
        write: &MemberWrite,
    ) -> StoreResult<Appended>;
    /// The vault's current key epoch.
    async fn key_epoch(&self, owner: Uuid, vault_id: Uuid) -> StoreResult<u32>;
    /// Rotates the key of a vault that is not shared (no membership log:
    /// `Conflict` otherwise), in one transaction, as [`Self::append_log`]
    /// does for a shared one; the vault's new head.
    async fn rotate_unshared(
        &self,
        owner: Uuid,
        vault_id: Uuid,
        rotation: &RotationIn,
    ) -> StoreResult<i64>;
    /// The key epoch of each of `account`'s own vaults.
    async fn key_epochs(&self, account: Uuid) -> StoreResult<Vec<(Uuid, u32)>>;
    /// Which of `account`'s own vaults have a membership log (are shared).
    async fn shared_own(&self, account: Uuid) -> StoreResult<Vec<Uuid>>;
    /// The vault's log, in order.
    async fn log(&self, owner: Uuid, vault_id: Uuid) -> StoreResult<Vec<LogRow>>;
    /// The vault's members, by email.
    async fn members(&self, owner: Uuid, vault_id: Uuid) -> StoreResult<Vec<MemberInfo>>;
    /// The vault of this (client) id that another account shares with
    /// `account`, invited or active.
    async fn shared_vault(&self, account: Uuid, vault_id: Uuid)
    -> StoreResult<Option<SharedVault>>;
    /// Every vault shared with `account` (not its own).
    async fn shared_with(&self, account: Uuid) -> StoreResult<Vec<SharedVault>>;
    /// Sets the account's membership `status` (`None`: removes the row).
    async fn set_member_status(
        &self,
        owner: Uuid,
        vault_id: Uuid,
        account: Uuid,
        status: Option<&str>,
    ) -> StoreResult<()>;
}
