//! The account's security history (issue 13): a hash chain of entries the
//! account's devices sign with its identity key. The store keeps each
//! entry's opaque bytes and their hash, numbered from 1; it appends only an
//! entry that names the head (its `seq` one above the head's, its `prev`
//! the head's hash), one at a time per account.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryAppend {
    /// Stored as the new head.
    Stored,
    /// The entry does not name the head (another device appended first):
    /// nothing stored; the head is `head` now.
    Stale { head: i64 },
    /// The account holds `max` entries already: nothing stored.
    Full { max: i64 },
}

/// The accounts' security histories.
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Appends `entry` (whose SHA-256 is `hash`) to the account's history
    /// (server id) as number `seq`, if `seq` is the head's number plus one
    /// and `prev` the head's hash (zeros, and `seq` 1, for the first); and
    /// if the account holds fewer than `max` entries.
    #[allow(clippy::too_many_arguments)]
    async fn append_history(
        &self,
        account_id: Uuid,
        seq: i64,
        prev: &[u8; 32],
        hash: &[u8; 32],
        entry: &[u8],
        max: i64,
        now: i64,
    ) -> StoreResult<HistoryAppend>;
    /// The account's entries numbered above `after`, in order, at most
    /// `limit` of them, as `(seq, bytes)`.
    async fn history(
        &self,
        account_id: Uuid,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<(i64, Vec<u8>)>>;
    /// The number of the account's newest entry (0: none).
    async fn history_head(&self, account_id: Uuid) -> StoreResult<i64>;
}
