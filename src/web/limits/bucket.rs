//! One bucket in this process's memory (SQLite: one process serves), and what every limit
//! shares: the wait it answers with, rounded up to whole seconds, and the sweep of stale keys.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Why a call is refused: the seconds until it would be allowed.
pub type Wait = u64;

/// Past this many keys a map is swept of entries that no longer matter.
const SWEEP_ABOVE: usize = 100_000;

/// Lets a sweep run at most once a second, so a map full of live keys (a flood of distinct IPs
/// or tokens) does not cost a full scan on every request.
pub(super) struct Sweeper {
    started: Instant,
    next_ms: AtomicU64,
}

impl Sweeper {
    pub(super) fn new() -> Self {
        Sweeper {
            started: Instant::now(),
            next_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn due(&self, len: usize) -> bool {
        if len <= SWEEP_ABOVE {
            return false;
        }
        let now = self.started.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(next, now + 1000, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

/// One limit kept in this process's memory (SQLite: one process serves).
pub struct Bucket {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    sweeper: Sweeper,
}

impl Bucket {
    /// `0` turns the limit off.
    pub fn per_minute(n: u32) -> Self {
        Bucket {
            limiter: NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            sweeper: Sweeper::new(),
        }
    }

    /// `None` when allowed; otherwise the seconds to wait.
    pub fn check(&self, key: &str) -> Option<u64> {
        let limiter = self.limiter.as_ref()?;
        if self.sweeper.due(limiter.len()) {
            limiter.retain_recent();
        }
        match limiter.check_key(&key.to_owned()) {
            Ok(()) => None,
            Err(not_until) => Some(whole_seconds(not_until.wait_time_from(DefaultClock::default().now()))),
        }
    }
}

/// Rounded up: a client that waits `Retry-After` seconds is let in.
pub(super) fn whole_seconds(wait: Duration) -> u64 {
    wait.as_micros().div_ceil(1_000_000).max(1) as u64
}

pub(super) fn micros_to_seconds(us: i64) -> u64 {
    whole_seconds(Duration::from_micros(us.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_is_swept_at_most_once_a_second() {
        let sweeper = Sweeper::new();
        assert!(!sweeper.due(SWEEP_ABOVE), "small maps are never swept");
        assert!(sweeper.due(SWEEP_ABOVE + 1));
        for _ in 0..1000 {
            assert!(!sweeper.due(SWEEP_ABOVE + 1), "swept twice within a second");
        }
    }
}
