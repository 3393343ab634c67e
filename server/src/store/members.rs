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
    SetRole { account_id: Uuid, role: String },
}

/// Shared vaults' members and logs.
#[async_trait]
pub trait MemberStore: Send + Sync {
    /// Appends `row` to the vault's log and applies `write`, in one
    /// transaction: `Conflict` unless `row.seq` is the log's next number
    /// (or the member to add is one already), `NotFound` for no such vault.
    async fn append_log(
        &self,
        owner: Uuid,
        vault_id: Uuid,
        row: &LogRow,
        write: &MemberWrite,
    ) -> StoreResult<()>;
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
