//! Share links (DESIGN §7): one encrypted item snapshot each, owned by the
//! account that made it. The store keeps the ciphertext, the expiry, the
//! views allowed and the views served; the key never reaches the server.
//! An expired or used-up link is deleted when it is next asked for and by
//! [`ShareStore::sweep_shares`].

use async_trait::async_trait;
use uuid::Uuid;

use super::StoreResult;

/// A share link as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Random, made by the server (see `api::shares`).
    pub id: String,
    /// The owner (the server's account id).
    pub account_id: Uuid,
    /// Opaque: `version || nonce || ciphertext+tag`, made by the client.
    pub ciphertext: Vec<u8>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; the link is gone from then on.
    pub expires_at: i64,
    /// `None`: as many views as the expiry allows.
    pub max_views: Option<u32>,
    /// Views served so far.
    pub views: u32,
}

impl Share {
    /// Views left (`None`: no limit).
    #[must_use]
    pub fn views_left(&self) -> Option<u32> {
        self.max_views.map(|m| m.saturating_sub(self.views))
    }
}

/// Share links: made and listed by their owner, opened by anyone with the id.
#[async_trait]
pub trait ShareStore: Send + Sync {
    /// Stores a new link (`views` is ignored: a new link has none). Refused
    /// with `Invalid` when the owner already has `limit` live links (those
    /// not expired at `share.created_at`).
    async fn create_share(&self, share: &Share, limit: u32) -> StoreResult<()>;
    /// The account's links that are live at `now`, newest first.
    async fn shares(&self, account_id: Uuid, now: i64) -> StoreResult<Vec<Share>>;
    /// Deletes one of the account's links; `false` when it has no such
    /// link (another account's link is not touched).
    async fn delete_share(&self, account_id: Uuid, id: &str) -> StoreResult<bool>;
    /// Opens a link: counts one view and returns the ciphertext, in one
    /// atomic step, so two opens at once never both get the last view. The
    /// view that uses a link up deletes it; an expired or used-up link is
    /// deleted and, like an unknown one, is `None`.
    async fn open_share(&self, id: &str, now: i64) -> StoreResult<Option<Vec<u8>>>;
    /// Deletes every link that expired by `now` or has no views left;
    /// returns how many.
    async fn sweep_shares(&self, now: i64) -> StoreResult<u64>;
}
