//! Authentication: opaque tokens stored as hashes, the extractor that turns a
//! bearer token into an [`AuthDevice`], auth-key checks and login rate limits.
//!
//! Access tokens are short-lived; refresh tokens rotate on every use and a
//! reused one ends the device's session. Both are 256 random bits, and the
//! server keeps only their SHA-256. The auth key is itself 256 bits of
//! derived key material, so a salted SHA-256 is an adequate verifier (no
//! slow hash needed), compared in constant time.

pub mod limits;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::{AppState, now_millis};
use crate::store::Session;

/// Token prefixes, so a leaked token is recognisable in a secret scanner.
pub const ACCESS_PREFIX: &str = "okat_";
pub const REFRESH_PREFIX: &str = "okrt_";
/// How long a cached session is trusted before the store is asked again.
const CACHE_TTL: Duration = Duration::from_secs(60);
/// A password change needs a login at most this old.
pub const FRESH_LOGIN_MS: i64 = 5 * 60 * 1000;

/// A new random token with its prefix.
#[must_use]
pub fn new_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// What the store keeps of a token.
#[must_use]
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// SHA-256(salt || auth key).
#[must_use]
pub fn auth_hash(salt: &[u8], auth_key: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(auth_key);
    h.finalize().to_vec()
}

/// What the store keeps of a device key: SHA-256 under a purpose label.
/// The device key is 32 random bytes the client makes for each device and
/// presents (as `device_proof`) at login; see docs/security.md.
#[must_use]
pub fn device_key_hash(device_key: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"openk/device-key|");
    h.update(device_key);
    h.finalize().to_vec()
}

/// Constant-time check of a presented device key against a stored hash.
#[must_use]
pub fn verify_device_key(device_key: &[u8], expected: &[u8]) -> bool {
    device_key_hash(device_key).ct_eq(expected).into()
}

/// Constant-time check of an auth key against the stored hash.
#[must_use]
pub fn verify_auth_key(salt: &[u8], auth_key: &[u8], expected: &[u8]) -> bool {
    auth_hash(salt, auth_key).ct_eq(expected).into()
}

/// An authenticated request: the account and device behind a live access token.
#[derive(Debug, Clone)]
pub struct AuthDevice {
    pub account_id: Uuid,
    pub device_id: Uuid,
    pub session_id: Uuid,
    pub authenticated_at: i64,
}

impl FromRequestParts<AppState> for AuthDevice {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let hash = bearer_hash(&parts.headers)?;
        Ok(Self::from(&live_session(state, &hash).await?))
    }
}

/// The hash of the request's bearer access token (`Unauthorized` when
/// there is none, or it cannot be one of ours).
///
/// # Errors
/// `Unauthorized`.
pub fn bearer_hash(headers: &HeaderMap) -> Result<Vec<u8>, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .filter(|t| t.starts_with(ACCESS_PREFIX) && t.len() < 100)
        .ok_or(ApiError::Unauthorized)?;
    Ok(token_hash(token))
}

/// The live session of an access-token hash: from the cache, else from the
/// store (then cached for a short while). Long-lived requests (event
/// streams) call this again to notice a logout or revocation.
///
/// # Errors
/// `Unauthorized` for an unknown, expired, logged-out or revoked token;
/// `Unavailable`/`Internal` when the cache or store fails.
pub async fn live_session(state: &AppState, hash: &[u8]) -> Result<Session, ApiError> {
    let now = now_millis();
    let session = match state.cache.get_session(hash).await? {
        Some(s) => s,
        None => {
            let s = state
                .store
                .session_by_access(hash, now)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            let left = u64::try_from(s.access_expires_at - now).unwrap_or(0);
            state
                .cache
                .put_session(&s, CACHE_TTL.min(Duration::from_millis(left)))
                .await?;
            // Seen at most once per cache period per session: cheap.
            state
                .store
                .touch_device(s.account_id, s.device_id, now)
                .await?;
            s
        }
    };
    if session.access_expires_at <= now {
        return Err(ApiError::Unauthorized);
    }
    Ok(session)
}

impl From<&Session> for AuthDevice {
    fn from(s: &Session) -> Self {
        Self {
            account_id: s.account_id,
            device_id: s.device_id,
            session_id: s.id,
            authenticated_at: s.authenticated_at,
        }
    }
}

/// The client's address: the socket peer or, when the server is told to
/// trust its proxies, the `X-Forwarded-For` entry the outermost trusted
/// proxy added ([`forwarded_client`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.settings.trust_proxy
            && let Some(ip) = forwarded_client(&parts.headers, state.settings.trusted_hops)
        {
            return Ok(Self(Some(ip)));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(peer))
    }
}

/// The client address behind `hops` trusted proxies: each proxy appends the
/// address it was connected from to `X-Forwarded-For`, so the entry the
/// outermost one added is the `hops`-th from the right. Everything left of
/// it was sent by the client and proves nothing. With fewer entries than
/// hops, every entry came from a trusted proxy: the leftmost is the client.
/// `None` (use the socket peer) without the header or when that entry is
/// not an address.
#[must_use]
pub fn forwarded_client(headers: &HeaderMap, hops: usize) -> Option<IpAddr> {
    // Several header lines are one list, in order (RFC 9110 §5.3).
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let at = entries.len().saturating_sub(hops.max(1));
    let entry = entries.get(at)?;
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

impl ClientAddr {
    #[must_use]
    pub fn label(&self) -> String {
        self.0
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let a = new_token(ACCESS_PREFIX);
        let b = new_token(ACCESS_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(ACCESS_PREFIX));
        assert_eq!(a.len(), ACCESS_PREFIX.len() + 43);
        assert_eq!(token_hash(&a).len(), 32);
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn the_client_is_the_entry_the_outermost_trusted_proxy_added() {
        let headers = |lines: &[&str]| {
            let mut h = HeaderMap::new();
            for l in lines {
                h.append("x-forwarded-for", l.parse().expect("header"));
            }
            h
        };
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("ip"));
        let h = headers(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(forwarded_client(&h, 1), ip("203.0.113.7"));
        assert_eq!(forwarded_client(&h, 2), ip("6.6.6.6"));
        // Two proxies, the inner one on its own header line.
        let h = headers(&["1.1.1.1, 203.0.113.7", "10.0.0.2"]);
        assert_eq!(forwarded_client(&h, 2), ip("203.0.113.7"));
        // Fewer entries than hops: all came from trusted proxies.
        assert_eq!(
            forwarded_client(&headers(&["203.0.113.7"]), 3),
            ip("203.0.113.7")
        );
        assert_eq!(
            forwarded_client(&headers(&["[2001:db8::1]:443"]), 1),
            ip("2001:db8::1")
        );
        assert_eq!(forwarded_client(&headers(&["1.2.3.4, junk"]), 1), None);
        assert_eq!(forwarded_client(&HeaderMap::new(), 1), None);
    }

    #[test]
    fn auth_keys_verify_in_constant_time() {
        let h = auth_hash(b"salt", &[7; 32]);
        assert!(verify_auth_key(b"salt", &[7; 32], &h));
        assert!(!verify_auth_key(b"salt", &[8; 32], &h));
        assert!(!verify_auth_key(b"pepper", &[7; 32], &h));
    }
}
