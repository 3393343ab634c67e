//! Time for the TUI: a monotonic instant (idle lock, clipboard countdown)
//! and the wall clock (TOTP countdowns, "5 min ago"). Tests use [`FakeClock`]
//! so that auto-lock and countdowns are exact and snapshots stable.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source of time.
pub trait Clock: Send {
    fn now(&self) -> Instant;
    /// Unix milliseconds.
    fn unix_millis(&self) -> i64;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_millis(&self) -> i64 {
        crate::engine::model::now_millis()
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct FakeClock {
    inner: Arc<Mutex<(Instant, i64)>>,
}

impl FakeClock {
    /// Starts at `unix_millis` on the wall clock.
    #[must_use]
    pub fn new(unix_millis: i64) -> Self {
        Self {
            inner: Arc::new(Mutex::new((Instant::now(), unix_millis))),
        }
    }

    /// Puts the wall clock at `unix_millis` (the instant stays).
    pub fn set_unix_millis(&self, unix_millis: i64) {
        if let Ok(mut t) = self.inner.lock() {
            t.1 = unix_millis;
        }
    }

    pub fn advance(&self, by: Duration) {
        if let Ok(mut t) = self.inner.lock() {
            t.0 += by;
            t.1 += i64::try_from(by.as_millis()).unwrap_or(0);
        }
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        self.inner.lock().map_or_else(|_| Instant::now(), |t| t.0)
    }

    fn unix_millis(&self) -> i64 {
        self.inner.lock().map_or(0, |t| t.1)
    }
}
