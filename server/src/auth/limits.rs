//! Rate limits: failed logins per account and per address (with
//! `Retry-After`), and a request budget per address on the account routes.
//! Counters live in the [`Cache`](crate::cache::Cache), so with Redis every
//! node counts the same attempts.

use std::time::Duration;

use crate::auth::ClientAddr;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Window of the login-failure counters.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// An address may fail this many times more than one account.
const ADDRESS_FACTOR: u64 = 4;

fn account_key(email: &str) -> String {
    use sha2::Digest;
    format!(
        "login-fail:acct:{}",
        hex::encode(sha2::Sha256::digest(email.as_bytes()))
    )
}

fn address_key(addr: &ClientAddr) -> String {
    format!("login-fail:addr:{}", addr.label())
}

/// Refuses (429) when the account or the address has failed too often.
pub async fn check_login(state: &AppState, email: &str, addr: &ClientAddr) -> ApiResult<()> {
    let limit = state.settings.login_failure_limit;
    let acct = state.cache.peek(&account_key(email)).await?;
    if acct.count >= limit {
        return Err(ApiError::RateLimited(acct.resets_in));
    }
    let by_addr = state.cache.peek(&address_key(addr)).await?;
    if by_addr.count >= limit.saturating_mul(ADDRESS_FACTOR) {
        return Err(ApiError::RateLimited(by_addr.resets_in));
    }
    Ok(())
}

/// Counts a failed login against the account and the address.
pub async fn record_failure(state: &AppState, email: &str, addr: &ClientAddr) -> ApiResult<()> {
    state.cache.hit(&account_key(email), FAILURE_WINDOW).await?;
    state.cache.hit(&address_key(addr), FAILURE_WINDOW).await?;
    Ok(())
}

/// Forgets the account's failures after a successful login.
pub async fn record_success(state: &AppState, email: &str) -> ApiResult<()> {
    state.cache.reset(&account_key(email)).await?;
    Ok(())
}

/// Spends one request of the address's per-minute budget on the account routes.
pub async fn spend_auth_budget(state: &AppState, addr: &ClientAddr) -> ApiResult<()> {
    let limit = state.settings.auth_rate_limit;
    if limit == 0 {
        return Ok(());
    }
    let w = state
        .cache
        .hit(
            &format!("auth-rate:{}", addr.label()),
            Duration::from_secs(60),
        )
        .await?;
    if w.count > limit {
        return Err(ApiError::RateLimited(w.resets_in));
    }
    Ok(())
}
