//! Rate limits (SPEC §8): per token for REST and MCP, and failed authentications per client IP.
//!
//! The buckets live in this process's memory: with several replicas each keeps its own (a later
//! issue moves them to shared storage). Nothing about revocation lives here.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct Bucket {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl Bucket {
    /// `0` turns the limit off.
    pub fn per_minute(n: u32) -> Self {
        Bucket {
            limiter: NonZeroU32::new(n).map(|n| RateLimiter::keyed(Quota::per_minute(n))),
        }
    }

    /// `None` when allowed; otherwise the seconds to wait.
    pub fn check(&self, key: &str) -> Option<u64> {
        let limiter = self.limiter.as_ref()?;
        if limiter.len() > 100_000 {
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
    auth_failures: Bucket,
    blocked: Mutex<HashMap<String, Instant>>,
}

impl Limits {
    pub fn new(rest_per_min: u32, mcp_per_min: u32, auth_failures_per_min: u32) -> Self {
        Limits {
            rest: Bucket::per_minute(rest_per_min),
            mcp: Bucket::per_minute(mcp_per_min),
            auth_failures: Bucket::per_minute(auth_failures_per_min),
            blocked: Mutex::new(HashMap::new()),
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
        if blocked.len() > 100_000 {
            let now = Instant::now();
            blocked.retain(|_, until| *until > now);
        }
        blocked.insert(ip.to_owned(), Instant::now() + Duration::from_secs(wait));
        Some(wait)
    }
}
