//! Shared fast state: rate-limit counters and the access-token cache.
//!
//! In memory for a single node; in Redis (`--redis URL`) so that several
//! server nodes share counters and see revocations at once. Every key is
//! namespaced by a prefix (tests use a unique one and remove their keys).

mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::time::Duration;

use async_trait::async_trait;

use crate::store::Session;

pub use memory::MemoryCache;
#[cfg(feature = "redis")]
pub use redis::RedisCache;
#[cfg(feature = "redis")]
pub(crate) use redis::{redact_url as redact_redis_url, scrub_password};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
}

pub type CacheResult<T> = Result<T, CacheError>;

/// A fixed-window counter after an increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: u64,
    /// Until the window resets.
    pub resets_in: Duration,
}

#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// `memory` or `redis`.
    fn kind(&self) -> &'static str;
    async fn ping(&self) -> CacheResult<()>;

    /// Adds one to the counter `key` in a window of `window` that starts at
    /// the first hit, and returns the new count.
    async fn hit(&self, key: &str, window: Duration) -> CacheResult<Window>;
    /// The counter without changing it (`count` 0 when absent or expired).
    async fn peek(&self, key: &str) -> CacheResult<Window>;
    /// Forgets a counter (e.g. failures after a successful login).
    async fn reset(&self, key: &str) -> CacheResult<()>;

    /// A cached session by access-token hash.
    async fn get_session(&self, access_hash: &[u8]) -> CacheResult<Option<Session>>;
    /// Caches a session under its access-token hash for `ttl`.
    async fn put_session(&self, session: &Session, ttl: Duration) -> CacheResult<()>;
    /// Drops cached sessions (logout, revocation, refresh-token reuse).
    async fn drop_sessions(&self, access_hashes: &[Vec<u8>]) -> CacheResult<()>;
}
