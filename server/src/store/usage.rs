//! Item usage (issue 12): one opaque blob per device of an account, the
//! device's own counters of which items it used, how often and when,
//! sealed by the client with the account key. The store keeps the blob, the
//! time it came and a revision that orders the account's uploads; it never
//! reads the blob.

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// One device's usage blob as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageBlob {
    /// The device's id in its account.
    pub device_id: Uuid,
    /// Higher than the revision of every blob of the account stored before.
    pub revision: i64,
    /// Opaque: sealed by the client.
    pub blob: Vec<u8>,
    /// Unix milliseconds of the upload.
    pub updated_at: i64,
}

/// The devices' usage blobs of each account.
#[async_trait]
pub trait ItemUsageStore: Send + Sync {
    /// Stores (or replaces) the blob of one device of the account (server
    /// id) and returns its revision: above the account's highest so far and
    /// at least `now`. Uploads of one account are numbered one at a time, so
    /// a reader that saw revision `r` misses nothing by asking for those
    /// above it.
    async fn put_item_usage(
        &self,
        account_id: Uuid,
        device_id: Uuid,
        blob: &[u8],
        now: i64,
    ) -> StoreResult<i64>;
    /// The account's blobs whose revision is above `since`, lowest first,
    /// at most `limit` of them. Revoked devices' blobs are included.
    async fn item_usage(
        &self,
        account_id: Uuid,
        since: i64,
        limit: u32,
    ) -> StoreResult<Vec<UsageBlob>>;
}
