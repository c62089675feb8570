//! Rate limits (SPEC §8): per token for REST and MCP, and failed authentications per client IP.
//!
//! The buckets live in this process's memory: with several replicas each keeps its own (a later
//! issue moves them to shared storage). Nothing about revocation lives here.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Past this many keys a map is swept of entries that no longer matter.
const SWEEP_ABOVE: usize = 100_000;

/// Lets a sweep run at most once a second, so a map full of live keys (a flood of distinct IPs
/// or tokens) does not cost a full scan on every request.
struct Sweeper {
    started: Instant,
    next_ms: AtomicU64,
}

impl Sweeper {
    fn new() -> Self {
        Sweeper {
            started: Instant::now(),
            next_ms: AtomicU64::new(0),
        }
    }

    fn due(&self, len: usize) -> bool {
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
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1)),
        }
    }
}

pub struct Limits {
    pub rest: Bucket,
    pub mcp: Bucket,
    /// Per client IP: revoke by possession.
    pub revoke_reports: Bucket,
    /// Per client IP: secret-scanning partner alerts.
    pub partner_alerts: Bucket,
    auth_failures: Bucket,
    blocked: Mutex<HashMap<String, Instant>>,
    blocked_sweeper: Sweeper,
}

impl Limits {
    pub fn new(rest_per_min: u32, mcp_per_min: u32, auth_failures_per_min: u32, leak_reports_per_min: u32) -> Self {
        Limits {
            rest: Bucket::per_minute(rest_per_min),
            mcp: Bucket::per_minute(mcp_per_min),
            revoke_reports: Bucket::per_minute(leak_reports_per_min),
            partner_alerts: Bucket::per_minute(leak_reports_per_min),
            auth_failures: Bucket::per_minute(auth_failures_per_min),
            blocked: Mutex::new(HashMap::new()),
            blocked_sweeper: Sweeper::new(),
        }
    }

    /// Whether this IP is refused for now after too many failed authentications.
    pub fn auth_blocked(&self, ip: &str) -> Option<u64> {
        let mut blocked = self.blocked.lock().expect("lock");
        let until = *blocked.get(ip)?;
        let now = Instant::now();
        if until > now {
            Some((until - now).as_secs().max(1))
        } else {
            blocked.remove(ip);
            None
        }
    }

    /// Counts a failed authentication; past the limit the IP is refused until the bucket refills.
    pub fn auth_failed(&self, ip: &str) -> Option<u64> {
        let wait = self.auth_failures.check(ip)?;
        let mut blocked = self.blocked.lock().expect("lock");
        if self.blocked_sweeper.due(blocked.len()) {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(ip.to_owned(), Instant::now() + Duration::from_secs(wait));
        Some(wait)
    }
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
