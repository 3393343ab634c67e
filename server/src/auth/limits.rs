//! Rate limits: login attempts with exponential back-off (`Retry-After`),
//! and a request budget per address on the account routes. Counters live in
//! the [`Cache`](crate::cache::Cache), so with Redis every node counts the
//! same attempts.
//!
//! Login attempts are counted before the password is checked, in one atomic
//! check-and-count ([`Cache::attempt`](crate::cache::Cache::attempt)), so
//! concurrent attempts cannot slip past the limit. A login that proves a
//! device the account already knows (its device key, see
//! [`crate::auth::device_key_hash`]) is counted only in that device's own
//! bucket; every other login is counted per account (the email) and per
//! address. Someone who knows only the email thus slows down unknown devices,
//! never the owner's known ones.

use std::time::Duration;

use crate::auth::ClientAddr;
use crate::cache::{Attempt, Backoff};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A run of attempts is forgotten after this long without any (past the
/// last wait).
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest wait between two attempts of a run.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// An address may attempt this many times more than one account.
const ADDRESS_FACTOR: u64 = 4;

fn email_hash(email: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(email.as_bytes()))
}

fn policy(state: &AppState, free: u64) -> Backoff {
    Backoff {
        free,
        base: state.settings.login_backoff,
        cap: MAX_BACKOFF,
        idle: FAILURE_WINDOW,
    }
}

/// Counts one attempt in `key`; refuses (429, `Retry-After`) while its run waits.
async fn attempt(state: &AppState, key: &str, free: u64) -> ApiResult<()> {
    match state.cache.attempt(key, policy(state, free)).await? {
        Attempt::Allowed(_) => Ok(()),
        Attempt::Wait(wait) => Err(ApiError::RateLimited(wait)),
    }
}

/// The bucket a login attempt was counted in; reset it when the login succeeds.
#[derive(Debug)]
pub struct LoginAttempt {
    key: String,
}

impl LoginAttempt {
    /// Forgets the bucket's run after a successful login.
    pub async fn succeeded(self, state: &AppState) -> ApiResult<()> {
        state.cache.reset(&self.key).await?;
        Ok(())
    }
}

/// Counts a login attempt before the password is checked: in the known
/// device's bucket when `known_device` (the account and device id, the
/// device key proven), otherwise per address and per account. Refuses with
/// 429 and the wait when the bucket is backing off.
pub async fn begin_login(
    state: &AppState,
    email: &str,
    known_device: Option<(uuid::Uuid, uuid::Uuid)>,
    addr: &ClientAddr,
) -> ApiResult<LoginAttempt> {
    let limit = state.settings.login_failure_limit;
    let key = if let Some((account, device)) = known_device {
        format!("login:dev:{account}:{device}")
    } else {
        attempt(
            state,
            &format!("login:addr:{}", addr.label()),
            limit.saturating_mul(ADDRESS_FACTOR),
        )
        .await?;
        format!("login:acct:{}", email_hash(email))
    };
    attempt(state, &key, limit).await?;
    Ok(LoginAttempt { key })
}

/// Spends one request of the address's per-minute budget on the account routes.
pub async fn spend_auth_budget(state: &AppState, addr: &ClientAddr) -> ApiResult<()> {
    spend_address_budget(state, "auth-rate", addr).await
}

/// Spends one request of the address's per-minute budget for opening share
/// links (`POST /v1/shares/{id}/open`, no account): the same limit as the
/// account routes (`--auth-rate-limit`), in a bucket of its own, so that
/// guessing link ids is as slow as guessing logins.
pub async fn spend_share_budget(state: &AppState, addr: &ClientAddr) -> ApiResult<()> {
    spend_address_budget(state, "share-open", addr).await
}

/// One request of `addr`'s per-minute budget (`--auth-rate-limit`) in the
/// bucket `bucket` (429 with the wait when it is spent; 0 is no limit).
async fn spend_address_budget(state: &AppState, bucket: &str, addr: &ClientAddr) -> ApiResult<()> {
    let limit = state.settings.auth_rate_limit;
    if limit == 0 {
        return Ok(());
    }
    let w = state
        .cache
        .hit(
            &format!("{bucket}:{}", addr.label()),
            Duration::from_secs(60),
        )
        .await?;
    if w.count > limit {
        return Err(ApiError::RateLimited(w.resets_in));
    }
    Ok(())
}

/// Counts a device-approval request (`POST /v1/approvals`) like a login of
/// an unknown device: per address and per account (the email), in buckets
/// of their own, with the same back-off. A request never "succeeds" the
/// way a login does, so nothing resets them: a run is forgotten after
/// [`FAILURE_WINDOW`] without any.
pub async fn begin_approval(state: &AppState, email: &str, addr: &ClientAddr) -> ApiResult<()> {
    let limit = state.settings.login_failure_limit;
    attempt(
        state,
        &format!("approval:addr:{}", addr.label()),
        limit.saturating_mul(ADDRESS_FACTOR),
    )
    .await?;
    attempt(
        state,
        &format!("approval:acct:{}", email_hash(email)),
        limit,
    )
    .await
}
