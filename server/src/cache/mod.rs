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

/// Exponential back-off for a run of attempts (failed logins): the first
/// `free` attempts go through at once; the `free`-th and every later one
/// make the next wait `base`, `2 × base`, `4 × base` … up to `cap`. The run
/// is forgotten after `idle` without attempts past the last wait, or on
/// [`Cache::reset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub free: u64,
    pub base: Duration,
    pub cap: Duration,
    pub idle: Duration,
}

impl Backoff {
    /// The wait after attempt number `n` (1-based) of a run.
    #[must_use]
    pub fn wait_after(&self, n: u64) -> Duration {
        if n < self.free.max(1) {
            return Duration::ZERO;
        }
        let doublings = (n - self.free.max(1)).min(31);
        let factor = 1u32 << doublings;
        self.base.saturating_mul(factor).min(self.cap)
    }
}

/// The answer to [`Cache::attempt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Counted: this is attempt `n` of the run.
    Allowed(u64),
    /// Not counted: the run is waiting this long.
    Wait(Duration),
}

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
    /// One atomic check-and-count of an attempt under `policy`: refused
    /// while the run waits, otherwise counted (and the next wait set).
    /// Concurrent callers on any node never get more than `policy.free`
    /// attempts through before the first wait.
    async fn attempt(&self, key: &str, policy: Backoff) -> CacheResult<Attempt>;
    /// Forgets a counter (e.g. failures after a successful login).
    async fn reset(&self, key: &str) -> CacheResult<()>;

    /// A cached session by access-token hash.
    async fn get_session(&self, access_hash: &[u8]) -> CacheResult<Option<Session>>;
    /// Caches a session under its access-token hash for `ttl`.
    async fn put_session(&self, session: &Session, ttl: Duration) -> CacheResult<()>;
    /// Drops cached sessions (logout, revocation, refresh-token reuse).
    async fn drop_sessions(&self, access_hashes: &[Vec<u8>]) -> CacheResult<()>;
}
