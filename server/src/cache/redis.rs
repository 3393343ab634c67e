//! The shared cache: counters and sessions in Redis, so that several server
//! nodes count together and see dropped sessions at once.
//!
//! Keys (all under the configured prefix, e.g. `openk:`):
//! - `{prefix}rate:{key}`: a counter, created by the first hit of a window
//!   with that window as its expiry (one Lua script, so concurrent hits from
//!   any number of nodes are counted exactly);
//! - `{prefix}session:{hex(access_hash)}`: a session as JSON, with a PX TTL.

use std::fmt;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Pipeline, RedisError, Script, cmd};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::memory::bounded;
use super::{Attempt, Backoff, Cache, CacheError, CacheResult, Window};
use crate::store::Session;

/// Each attempt to open a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Each command; a stuck Redis fails requests instead of hanging them.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Reconnection attempts (at start and after a lost connection).
const RETRIES: usize = 2;
/// Longest pause between reconnection attempts, in milliseconds.
const MAX_RETRY_DELAY_MS: u64 = 500;
/// Keys per SCAN step in [`RedisCache::remove_prefix`].
const SCAN_COUNT: u64 = 500;

/// INCR, and start the window on the first hit (or if the key somehow has no
/// expiry); returns the count and the milliseconds left in the window.
const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if count == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
";

/// One back-off attempt, atomically (see [`Cache::attempt`]): a hash with
/// the attempts so far (`n`) and the earliest next attempt (`at`, Redis
/// server time in ms). Returns `{1, n}` when counted, `{0, wait_ms}` when not.
/// ARGV: free attempts, base ms, cap ms, idle ms.
const ATTEMPT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('HMGET', KEYS[1], 'n', 'at')
local n = tonumber(v[1]) or 0
local at = tonumber(v[2]) or 0
if now < at then
  return {0, at - now}
end
n = n + 1
local free = math.max(tonumber(ARGV[1]), 1)
local wait = 0
if n >= free then
  wait = math.min(tonumber(ARGV[3]), tonumber(ARGV[2]) * 2 ^ math.min(n - free, 31))
end
redis.call('HSET', KEYS[1], 'n', n, 'at', now + wait)
redis.call('PEXPIRE', KEYS[1], wait + tonumber(ARGV[4]))
return {1, n}
";

/// [`Cache`] in Redis, shared by every node that uses the same prefix.
#[derive(Clone)]
pub struct RedisCache {
    conn: ConnectionManager,
    prefix: String,
    hit_script: Script,
    attempt_script: Script,
}

impl fmt::Debug for RedisCache {
    // By hand: the connection holds the URL's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisCache {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`,
    /// `rediss://…` needs a TLS feature of the `redis` crate). Every key is
    /// put under `prefix` (e.g. `openk:`). Errors never show the password.
    pub async fn connect(url: &str, prefix: &str) -> CacheResult<Self> {
        let unavailable = |e: RedisError| {
            CacheError::Unavailable(format!(
                "redis at {}: {}",
                redact_url(url),
                scrub_password(&e.to_string(), url)
            ))
        };
        let client = ::redis::Client::open(url).map_err(unavailable)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(CONNECT_TIMEOUT)
            .set_response_timeout(RESPONSE_TIMEOUT)
            .set_number_of_retries(RETRIES)
            // The redis crate's default factor (100) is a backoff multiplier
            // (1 s, 100 s, …); keep reconnection quick instead.
            .set_factor(2)
            .set_max_delay(MAX_RETRY_DELAY_MS);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(unavailable)?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            hit_script: Script::new(HIT_SCRIPT),
            attempt_script: Script::new(ATTEMPT_SCRIPT),
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The shared connection (the event bus publishes on it).
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Deletes every key under the prefix (SCAN + DEL; for tests and
    /// cleanup) and returns how many there were. Refuses an empty prefix,
    /// which would mean the whole database.
    pub async fn remove_prefix(&self) -> CacheResult<u64> {
        if self.prefix.is_empty() {
            return Err(CacheError::Unavailable(
                "refusing to remove every key: the prefix is empty".to_owned(),
            ));
        }
        let pattern = format!("{}*", glob_escape(&self.prefix));
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut removed: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if !keys.is_empty() {
                let n: u64 = cmd("DEL")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(unavailable)?;
                removed += n;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    fn counter_key(&self, key: &str) -> String {
        format!("{}rate:{key}", self.prefix)
    }

    fn run_key(&self, key: &str) -> String {
        format!("{}run:{key}", self.prefix)
    }

    fn session_key(&self, access_hash: &[u8]) -> String {
        format!("{}session:{}", self.prefix, hex(access_hash))
    }
}

#[async_trait]
impl Cache for RedisCache {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> CacheResult<()> {
        let _: String = cmd("PING")
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn hit(&self, key: &str, window: Duration) -> CacheResult<Window> {
        let (count, ttl): (u64, i64) = self
            .hit_script
            .key(self.counter_key(key))
            .arg(millis(window))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(Window {
            count,
            resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        })
    }

    async fn peek(&self, key: &str) -> CacheResult<Window> {
        let key = self.counter_key(key);
        let (count, ttl): (Option<u64>, i64) = Pipeline::new()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(match count {
            Some(count) => Window {
                count,
                resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
            },
            None => Window {
                count: 0,
                resets_in: Duration::ZERO,
            },
        })
    }

    async fn attempt(&self, key: &str, policy: Backoff) -> CacheResult<Attempt> {
        let (counted, n): (u64, u64) = self
            .attempt_script
            .key(self.run_key(key))
            .arg(policy.free)
            .arg(millis(policy.base))
            .arg(millis(policy.cap))
            .arg(millis(policy.idle))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(if counted == 1 {
            Attempt::Allowed(n)
        } else {
            Attempt::Wait(Duration::from_millis(n))
        })
    }

    async fn reset(&self, key: &str) -> CacheResult<()> {
        let _: u64 = cmd("DEL")
            .arg(self.counter_key(key))
            .arg(self.run_key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get_session(&self, access_hash: &[u8]) -> CacheResult<Option<Session>> {
        let json: Option<Vec<u8>> = cmd("GET")
            .arg(self.session_key(access_hash))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        let Some(json) = json else {
            return Ok(None);
        };
        // An unreadable entry (another format, a foreign write) is a miss:
        // the caller falls back to the database.
        match decode_session(&json) {
            Some(session) if session.access_hash == access_hash => Ok(Some(session)),
            _ => {
                tracing::warn!("ignoring an unreadable cached session");
                Ok(None)
            }
        }
    }

    async fn put_session(&self, session: &Session, ttl: Duration) -> CacheResult<()> {
        let key = self.session_key(&session.access_hash);
        let mut conn = self.conn.clone();
        if ttl.is_zero() {
            // Nothing to cache; don't leave an older copy behind either.
            let _: u64 = cmd("DEL")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            return Ok(());
        }
        let json = encode_session(session)?;
        let () = cmd("SET")
            .arg(key)
            .arg(json)
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn drop_sessions(&self, access_hashes: &[Vec<u8>]) -> CacheResult<()> {
        if access_hashes.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = access_hashes.iter().map(|h| self.session_key(h)).collect();
        let _: u64 = cmd("DEL")
            .arg(keys)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

fn unavailable(e: RedisError) -> CacheError {
    CacheError::Unavailable(e.to_string())
}

/// Whole milliseconds for Redis, rounded up, within `1 ..= MAX_TTL`.
fn millis(d: Duration) -> u64 {
    let ms = bounded(d).as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX)
}

/// The session as stored in Redis (`Session` itself has no serde derives).
#[derive(Serialize, Deserialize)]
struct StoredSession {
    id: Uuid,
    account_id: Uuid,
    device_id: Uuid,
    /// Hex.
    access_hash: String,
    access_expires_at: i64,
    /// Hex.
    refresh_hash: String,
    refresh_expires_at: i64,
    authenticated_at: i64,
}

fn encode_session(s: &Session) -> CacheResult<String> {
    serde_json::to_string(&StoredSession {
        id: s.id,
        account_id: s.account_id,
        device_id: s.device_id,
        access_hash: hex(&s.access_hash),
        access_expires_at: s.access_expires_at,
        refresh_hash: hex(&s.refresh_hash),
        refresh_expires_at: s.refresh_expires_at,
        authenticated_at: s.authenticated_at,
    })
    .map_err(|e| CacheError::Unavailable(format!("cannot encode a session: {e}")))
}

fn decode_session(json: &[u8]) -> Option<Session> {
    let s: StoredSession = serde_json::from_slice(json).ok()?;
    Some(Session {
        id: s.id,
        account_id: s.account_id,
        device_id: s.device_id,
        access_hash: unhex(&s.access_hash)?,
        access_expires_at: s.access_expires_at,
        refresh_hash: unhex(&s.refresh_hash)?,
        refresh_expires_at: s.refresh_expires_at,
        authenticated_at: s.authenticated_at,
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// `prefix` with Redis glob metacharacters escaped, for `SCAN MATCH`.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len());
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The URL with its user-info password (or a lone user-info token, which
/// some clients take as the password) and any `password=`/`pass=` query
/// value replaced by `***`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        // Not a URL we can take apart: show nothing of it.
        return "<unparsable url>".to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let rest = match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => rest.to_owned(),
    };
    let mut out = format!("{scheme}://{rest}");
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if is_password_param(k) => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn is_password_param(name: &str) -> bool {
    name.eq_ignore_ascii_case("password") || name.eq_ignore_ascii_case("pass")
}

/// The secrets [`redact_url`] hides, raw and percent-decoded.
fn url_secrets(url: &str) -> Vec<String> {
    let Some((_, rest)) = url.split_once("://") else {
        return vec![url.to_owned()];
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let mut secrets = Vec::new();
    if let Some((userinfo, _)) = rest.rsplit_once('@') {
        secrets.push(match userinfo.split_once(':') {
            Some((_, password)) => password.to_owned(),
            None => userinfo.to_owned(),
        });
    }
    for p in query.split('&') {
        if let Some((k, v)) = p.split_once('=')
            && is_password_param(k)
        {
            secrets.push(v.to_owned());
        }
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    secrets.retain(|s| !s.is_empty());
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
}

/// An error message with any secret of `url` replaced by `***`.
pub(crate) fn scrub_password(message: &str, url: &str) -> String {
    url_secrets(url)
        .iter()
        .fold(message.to_owned(), |m, secret| {
            m.replace(secret.as_str(), "***")
        })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hexpair) = s.get(i + 1..i + 3)
            && let Some(b) = unhex(hexpair)
        {
            out.extend(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let bytes: Vec<u8> = (0..=255).collect();
        let h = hex(&bytes);
        assert_eq!(&h[..8], "00010203");
        assert_eq!(unhex(&h), Some(bytes));
        assert_eq!(unhex("ABcd"), Some(vec![0xab, 0xcd]));
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(""), Some(vec![]));
    }

    #[test]
    fn session_json_round_trip() {
        let s = Session {
            id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            device_id: Uuid::now_v7(),
            access_hash: vec![1, 2, 3],
            access_expires_at: i64::MIN,
            refresh_hash: vec![],
            refresh_expires_at: i64::MAX,
            authenticated_at: 0,
        };
        let json = encode_session(&s).expect("encode");
        assert_eq!(decode_session(json.as_bytes()), Some(s));
        assert_eq!(decode_session(b"{}"), None);
        assert_eq!(decode_session(b"not json"), None);
    }

    #[test]
    fn millis_rounds_up_and_bounds() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1)), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 2);
        assert_eq!(millis(Duration::from_millis(200)), 200);
        assert_eq!(millis(Duration::MAX), 365 * 24 * 60 * 60 * 1000);
    }

    #[test]
    fn glob_is_escaped() {
        assert_eq!(glob_escape("openk:"), "openk:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://user:s3cr%40t@host:6379/2"),
            "redis://user:***@host:6379/2"
        );
        assert_eq!(redact_url("redis://:pw@host"), "redis://:***@host");
        assert_eq!(redact_url("redis://token@host"), "redis://***@host");
        assert_eq!(redact_url("redis://u:p@ss@host"), "redis://u:***@host");
        assert_eq!(
            redact_url("redis+unix:///tmp/r.sock?db=1&pass=hunter2"),
            "redis+unix:///tmp/r.sock?db=1&pass=***"
        );
        assert_eq!(redact_url("hunter2"), "<unparsable url>");

        let url = "redis://user:s3cr%40t@host:6379";
        assert_eq!(
            scrub_password("auth failed for s3cr@t and s3cr%40t", url),
            "auth failed for *** and ***"
        );
    }
}
