//! The single-node cache: fixed-window counters and cached sessions in one
//! process, behind a `std::sync::Mutex` that is never held across `.await`.
//!
//! Expired entries are dropped when they are looked at, and each map is
//! bounded: once it holds `max_entries` entries, inserting a new key first
//! prunes every expired entry and, if live entries still fill more than three
//! quarters of the map, evicts those that expire soonest. A full scan thus
//! happens at most once per `max_entries / 4` new keys.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{Attempt, Backoff, Cache, CacheResult, Window};
use crate::store::Session;

/// Entries per map (counters, sessions) before pruning.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// Longest window or TTL either backend keeps (longer ones are shortened).
pub(super) const MAX_TTL: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// A window or TTL clamped to `1 ms ..= MAX_TTL` (a zero window would never
/// count past one, and Redis takes whole, positive milliseconds).
pub(super) fn bounded(d: Duration) -> Duration {
    d.clamp(Duration::from_millis(1), MAX_TTL)
}

/// In-process [`Cache`] for a single server node.
pub struct MemoryCache {
    state: Mutex<State>,
}

impl MemoryCache {
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A cache whose counter and session maps each hold at most
    /// `max_entries` entries (at least 1).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            state: Mutex::new(State::new(max_entries)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent, so a panic elsewhere while
        // holding the lock does not make the state unusable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MemoryCache");
        match self.state.try_lock() {
            Ok(state) => d
                .field("counters", &state.counters.len())
                .field("sessions", &state.sessions.len())
                .field("max_entries", &state.counters.max_entries),
            Err(_) => d.field("state", &"<locked>"),
        };
        d.finish()
    }
}

#[async_trait]
impl Cache for MemoryCache {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> CacheResult<()> {
        Ok(())
    }

    async fn hit(&self, key: &str, window: Duration) -> CacheResult<Window> {
        Ok(self.state().hit(key, window, Instant::now()))
    }

    async fn peek(&self, key: &str) -> CacheResult<Window> {
        Ok(self.state().peek(key, Instant::now()))
    }

    async fn attempt(&self, key: &str, policy: Backoff) -> CacheResult<Attempt> {
        Ok(self.state().attempt(key, policy, Instant::now()))
    }

    async fn reset(&self, key: &str) -> CacheResult<()> {
        let mut state = self.state();
        state.counters.remove(key);
        state.runs.remove(key);
        Ok(())
    }

    async fn get_session(&self, access_hash: &[u8]) -> CacheResult<Option<Session>> {
        Ok(self.state().get_session(access_hash, Instant::now()))
    }

    async fn put_session(&self, session: &Session, ttl: Duration) -> CacheResult<()> {
        self.state().put_session(session, ttl, Instant::now());
        Ok(())
    }

    async fn drop_sessions(&self, access_hashes: &[Vec<u8>]) -> CacheResult<()> {
        let mut state = self.state();
        for hash in access_hashes {
            state.sessions.remove(hash.as_slice());
        }
        Ok(())
    }
}

/// Both maps; every method takes the current time so tests can move it.
struct State {
    counters: Expiring<String, u64>,
    /// Back-off runs: attempts so far and when the next may come.
    runs: Expiring<String, (u64, Instant)>,
    sessions: Expiring<Vec<u8>, Session>,
}

impl State {
    fn new(max_entries: usize) -> Self {
        Self {
            counters: Expiring::new(max_entries),
            runs: Expiring::new(max_entries),
            sessions: Expiring::new(max_entries),
        }
    }

    fn hit(&mut self, key: &str, window: Duration, now: Instant) -> Window {
        if let Some((count, expires)) = self.counters.get_mut(key, now) {
            *count = count.saturating_add(1);
            return Window {
                count: *count,
                resets_in: expires.saturating_duration_since(now),
            };
        }
        let window = bounded(window);
        self.counters.insert(key.to_owned(), 1, now + window, now);
        Window {
            count: 1,
            resets_in: window,
        }
    }

    /// Check and count under the one lock the caller holds.
    fn attempt(&mut self, key: &str, policy: Backoff, now: Instant) -> Attempt {
        let n = match self.runs.get_mut(key, now) {
            Some(((_, next), _)) if *next > now => return Attempt::Wait(*next - now),
            Some(((n, _), _)) => n.saturating_add(1),
            None => 1,
        };
        let next = now + policy.wait_after(n);
        let expires = next + bounded(policy.idle);
        self.runs.insert(key.to_owned(), (n, next), expires, now);
        Attempt::Allowed(n)
    }

    fn peek(&mut self, key: &str, now: Instant) -> Window {
        match self.counters.get_mut(key, now) {
            Some((count, expires)) => Window {
                count: *count,
                resets_in: expires.saturating_duration_since(now),
            },
            None => Window {
                count: 0,
                resets_in: Duration::ZERO,
            },
        }
    }

    fn get_session(&mut self, access_hash: &[u8], now: Instant) -> Option<Session> {
        self.sessions
            .get_mut(access_hash, now)
            .map(|(session, _)| session.clone())
    }

    /// A zero `ttl` caches nothing (and forgets an earlier entry).
    fn put_session(&mut self, session: &Session, ttl: Duration, now: Instant) {
        if ttl.is_zero() {
            self.sessions.remove(session.access_hash.as_slice());
            return;
        }
        let expires = now + bounded(ttl);
        self.sessions
            .insert(session.access_hash.clone(), session.clone(), expires, now);
    }
}

/// A map whose entries expire; live while `now < expires`.
struct Expiring<K, V> {
    entries: HashMap<K, (V, Instant)>,
    max_entries: usize,
}

impl<K: Hash + Eq, V> Expiring<K, V> {
    fn new(max_entries: usize) -> Self {
        Self {
            entries: HashMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The live entry and its expiry; an expired one is removed.
    fn get_mut<Q>(&mut self, key: &Q, now: Instant) -> Option<(&mut V, Instant)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let live = self
            .entries
            .get(key)
            .is_some_and(|(_, expires)| *expires > now);
        if !live {
            self.entries.remove(key);
            return None;
        }
        self.entries
            .get_mut(key)
            .map(|(value, expires)| (value, *expires))
    }

    fn insert(&mut self, key: K, value: V, expires: Instant, now: Instant) {
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(&key) {
            self.prune(now);
        }
        self.entries.insert(key, (value, expires));
    }

    fn remove<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key);
    }

    /// Drops expired entries, then, if live ones still fill more than three
    /// quarters of the map, the soonest-expiring ones down to that mark.
    fn prune(&mut self, now: Instant) {
        self.entries.retain(|_, (_, expires)| *expires > now);
        let keep = self.max_entries / 4 * 3;
        let excess = self.entries.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        let mut expiries: Vec<Instant> = self.entries.values().map(|(_, e)| *e).collect();
        let (_, cutoff, _) = expiries.select_nth_unstable(excess - 1);
        let cutoff = *cutoff;
        // All entries expiring before the cutoff go; of those expiring at the
        // cutoff exactly, only as many as still needed.
        let before = expiries.iter().filter(|e| **e < cutoff).count();
        let mut at_cutoff = excess - before;
        self.entries.retain(|_, (_, expires)| {
            if *expires < cutoff {
                false
            } else if *expires == cutoff && at_cutoff > 0 {
                at_cutoff -= 1;
                false
            } else {
                true
            }
        });
        tracing::warn!(
            evicted = excess,
            kept = self.entries.len(),
            "memory cache full of live entries: evicted those expiring soonest"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    const MS: Duration = Duration::from_millis(1);

    fn win(count: u64, resets_in: Duration) -> Window {
        Window { count, resets_in }
    }

    fn session(tag: u8) -> Session {
        Session {
            id: Uuid::now_v7(),
            account_id: Uuid::now_v7(),
            device_id: Uuid::now_v7(),
            access_hash: vec![tag; 32],
            access_expires_at: 1_700_000_000_000,
            refresh_hash: vec![tag ^ 0xff; 32],
            refresh_expires_at: 1_800_000_000_000,
            authenticated_at: 1_600_000_000_000,
        }
    }

    #[test]
    fn window_counts_then_restarts() {
        let mut s = State::new(16);
        let t0 = Instant::now();
        let w = 200 * MS;
        assert_eq!(s.hit("k", w, t0), win(1, w));
        assert_eq!(s.hit("k", w, t0 + 50 * MS), win(2, 150 * MS));
        assert_eq!(s.hit("k", w, t0 + 199 * MS), win(3, MS));
        // The window is fixed: it started at the first hit and later hits
        // don't extend it; at its end exactly the count starts again.
        assert_eq!(s.hit("k", w, t0 + 200 * MS), win(1, w));
        assert_eq!(s.hit("k", w, t0 + 250 * MS), win(2, 150 * MS));
        // Other keys are separate.
        assert_eq!(s.hit("other", w, t0 + 250 * MS).count, 1);
    }

    #[test]
    fn later_window_argument_does_not_move_a_running_window() {
        let mut s = State::new(16);
        let t0 = Instant::now();
        s.hit("k", 100 * MS, t0);
        assert_eq!(s.hit("k", 10_000 * MS, t0 + 10 * MS), win(2, 90 * MS));
    }

    #[test]
    fn peek_and_reset() {
        let mut s = State::new(16);
        let t0 = Instant::now();
        let absent = win(0, Duration::ZERO);
        assert_eq!(s.peek("k", t0), absent);
        s.hit("k", 100 * MS, t0);
        s.hit("k", 100 * MS, t0);
        assert_eq!(s.peek("k", t0 + 40 * MS), win(2, 60 * MS));
        assert_eq!(s.peek("k", t0 + 40 * MS).count, 2, "peek does not count");
        assert_eq!(s.peek("k", t0 + 100 * MS), absent, "expired");
        assert_eq!(s.counters.len(), 0, "expired counter pruned on read");
        s.hit("k", 100 * MS, t0 + 100 * MS);
        s.counters.remove("k");
        assert_eq!(s.peek("k", t0 + 100 * MS), absent);
        assert_eq!(s.hit("k", 100 * MS, t0 + 100 * MS).count, 1);
    }

    #[test]
    fn degenerate_windows_are_bounded() {
        let mut s = State::new(16);
        let t0 = Instant::now();
        assert_eq!(s.hit("zero", Duration::ZERO, t0), win(1, MS));
        assert_eq!(s.hit("zero", Duration::ZERO, t0).count, 2);
        assert_eq!(s.hit("zero", Duration::ZERO, t0 + MS).count, 1);
        assert_eq!(s.hit("huge", Duration::MAX, t0).resets_in, MAX_TTL);
    }

    #[test]
    fn count_saturates() {
        let mut s = State::new(16);
        let t0 = Instant::now();
        s.hit("k", 100 * MS, t0);
        if let Some((count, _)) = s.counters.get_mut("k", t0) {
            *count = u64::MAX - 1;
        }
        assert_eq!(s.hit("k", 100 * MS, t0).count, u64::MAX);
        assert_eq!(s.hit("k", 100 * MS, t0).count, u64::MAX);
    }

    #[test]
    fn attempts_back_off_exponentially_then_are_forgotten() {
        let mut s = State::new(16);
        let t0 = Instant::now();
        let p = Backoff {
            free: 3,
            base: 1000 * MS,
            cap: 3000 * MS,
            idle: 10_000 * MS,
        };
        assert_eq!(s.attempt("k", p, t0), Attempt::Allowed(1));
        assert_eq!(s.attempt("k", p, t0), Attempt::Allowed(2));
        // The third (the last free one) starts the first wait.
        assert_eq!(s.attempt("k", p, t0), Attempt::Allowed(3));
        assert_eq!(s.attempt("k", p, t0 + 400 * MS), Attempt::Wait(600 * MS));
        assert_eq!(s.attempt("k", p, t0 + 1000 * MS), Attempt::Allowed(4));
        // 2 s, then capped at 3 s.
        assert_eq!(s.attempt("k", p, t0 + 1000 * MS), Attempt::Wait(2000 * MS));
        assert_eq!(s.attempt("k", p, t0 + 3000 * MS), Attempt::Allowed(5));
        assert_eq!(s.attempt("k", p, t0 + 3000 * MS), Attempt::Wait(3000 * MS));
        assert_eq!(s.attempt("other", p, t0 + 3000 * MS), Attempt::Allowed(1));
        // Forgotten after `idle` past the last wait.
        assert_eq!(s.attempt("k", p, t0 + 16_000 * MS), Attempt::Allowed(1));
        s.runs.remove("k");
        assert_eq!(s.attempt("k", p, t0 + 16_000 * MS), Attempt::Allowed(1));
    }

    #[test]
    fn sessions_expire_and_drop() {
        let mut s = State::new(16);
        let t0 = Instant::now();
        let a = session(1);
        s.put_session(&a, 100 * MS, t0);
        assert_eq!(s.get_session(&a.access_hash, t0 + 99 * MS), Some(a.clone()));
        assert_eq!(s.get_session(&a.access_hash, t0 + 100 * MS), None);
        assert_eq!(s.sessions.len(), 0);

        // Put again replaces, with the new TTL.
        s.put_session(&a, 100 * MS, t0);
        let mut a2 = a.clone();
        a2.authenticated_at += 1;
        s.put_session(&a2, 300 * MS, t0 + 50 * MS);
        assert_eq!(
            s.get_session(&a.access_hash, t0 + 200 * MS),
            Some(a2.clone())
        );

        // A zero TTL caches nothing and forgets the earlier entry.
        s.put_session(&a2, Duration::ZERO, t0 + 200 * MS);
        assert_eq!(s.get_session(&a.access_hash, t0 + 200 * MS), None);
    }

    #[test]
    fn expired_entries_pruned_when_full() {
        let mut m: Expiring<u32, ()> = Expiring::new(8);
        let t0 = Instant::now();
        for k in 0..8 {
            m.insert(k, (), t0 + 10 * MS, t0);
        }
        assert_eq!(m.len(), 8);
        // Replacing an existing key while full doesn't prune.
        m.insert(3, (), t0 + 10 * MS, t0 + 20 * MS);
        assert_eq!(m.len(), 8);
        // A new key while full drops every expired entry.
        m.insert(100, (), t0 + 100 * MS, t0 + 20 * MS);
        assert_eq!(m.len(), 1);
        assert!(m.get_mut(&100, t0 + 20 * MS).is_some());
    }

    #[test]
    fn live_entries_evicted_soonest_first_and_bounded() {
        let mut m: Expiring<u32, ()> = Expiring::new(8);
        let t0 = Instant::now();
        for k in 0..100u32 {
            m.insert(k, (), t0 + (1000 + k) * MS, t0);
            assert!(m.len() <= 8, "bounded");
            assert!(m.get_mut(&k, t0).is_some(), "newest kept");
        }
        // Survivors are the latest-expiring keys.
        let mut kept: Vec<u32> = m.entries.keys().copied().collect();
        kept.sort_unstable();
        let n = u32::try_from(kept.len()).unwrap_or(u32::MAX);
        assert_eq!(kept, (100 - n..100).collect::<Vec<_>>());
    }

    #[test]
    fn eviction_with_equal_expiries_removes_only_the_excess() {
        let mut m: Expiring<u32, ()> = Expiring::new(8);
        let t0 = Instant::now();
        let same = t0 + 1000 * MS;
        for k in 0..8 {
            m.insert(k, (), same, t0);
        }
        m.insert(8, (), same, t0);
        // Pruned to 6 (three quarters of 8), then the new key: 7.
        assert_eq!(m.len(), 7);
        assert!(m.get_mut(&8, t0).is_some());
    }

    #[test]
    fn tiny_capacity() {
        let mut m: Expiring<u32, ()> = Expiring::new(0);
        let t0 = Instant::now();
        for k in 0..5 {
            m.insert(k, (), t0 + 1000 * MS, t0);
            assert_eq!(m.len(), 1);
            assert!(m.get_mut(&k, t0).is_some());
        }
    }

    #[tokio::test]
    async fn through_the_trait() {
        let cache = MemoryCache::with_max_entries(4);
        assert_eq!(cache.kind(), "memory");
        cache.ping().await.expect("ping");
        let w = Duration::from_secs(60);
        for i in 1..=3 {
            assert_eq!(cache.hit("k", w).await.expect("hit").count, i);
        }
        assert_eq!(cache.peek("k").await.expect("peek").count, 3);
        cache.reset("k").await.expect("reset");
        assert_eq!(cache.peek("k").await.expect("peek").count, 0);

        let sessions: Vec<Session> = (0..10).map(session).collect();
        for s in &sessions {
            cache.put_session(s, w).await.expect("put");
        }
        let last = sessions.last().expect("sessions");
        assert_eq!(
            cache
                .get_session(&last.access_hash)
                .await
                .expect("get")
                .as_ref(),
            Some(last)
        );
        let hashes: Vec<Vec<u8>> = sessions.iter().map(|s| s.access_hash.clone()).collect();
        cache.drop_sessions(&hashes).await.expect("drop");
        assert_eq!(
            cache.get_session(&last.access_hash).await.expect("get"),
            None
        );
        assert!(format!("{cache:?}").contains("sessions: 0"));
    }
}
