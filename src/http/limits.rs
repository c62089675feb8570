//! Rate limits (SPEC §8): per token for REST and MCP, and failed authentications per client IP
//! (the dashboard's sign-ins have buckets of their own, [`super::sign_in_limits`]).
//!
//! On SQLite (one process) the buckets live in memory; on PostgreSQL they live in the database,
//! shared by every replica (`store::limits`), so a limit holds however a load balancer spreads
//! the calls. Nothing about revocation lives here.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sqlx::AnyPool;

use super::sign_in_limits::SignInLimits;
use crate::store::limits as shared;

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

/// The per-minute limits of SPEC §8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Per token, REST calls.
    Rest,
    /// Per token, MCP calls.
    Mcp,
    /// Per client IP: revoke by possession.
    RevokeReports,
    /// Per client IP: secret-scanning partner alerts.
    PartnerAlerts,
    /// Per client IP: failed authentications, past which it is locked out.
    AuthFailures,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Rest,
        Kind::Mcp,
        Kind::RevokeReports,
        Kind::PartnerAlerts,
        Kind::AuthFailures,
    ];

    fn prefix(self) -> &'static str {
        match self {
            Kind::Rest => "rest",
            Kind::Mcp => "mcp",
            Kind::RevokeReports => "revoke",
            Kind::PartnerAlerts => "alert",
            Kind::AuthFailures => "fail",
        }
    }
}

/// Why a call is refused: the seconds until it would be allowed.
pub type Wait = u64;

/// Where the buckets live: this process (SQLite), or PostgreSQL, shared by every replica.
enum Store {
    Memory {
        buckets: Box<[Bucket; 5]>,
        blocked: Mutex<HashMap<String, Instant>>,
        blocked_sweeper: Sweeper,
    },
    Shared {
        pool: AnyPool,
        quotas: [Option<shared::Quota>; 5],
    },
}

pub struct Limits {
    store: Store,
    /// Failed sign-ins to the dashboard, per (account, address) and per address.
    pub sign_in: SignInLimits,
}

impl Limits {
    /// Buckets in this process's memory.
    pub fn in_memory(per_minute: PerMinute) -> Self {
        Limits {
            store: Store::Memory {
                buckets: Box::new(Kind::ALL.map(|k| Bucket::per_minute(per_minute.of(k)))),
                blocked: Mutex::new(HashMap::new()),
                blocked_sweeper: Sweeper::new(),
            },
            sign_in: SignInLimits::in_memory(per_minute.auth_failures),
        }
    }

    /// Buckets in PostgreSQL's `rate_limits` table, shared by every replica on that database.
    pub async fn shared(pool: AnyPool, per_minute: PerMinute) -> sqlx::Result<Self> {
        shared::create(&pool).await?;
        Ok(Limits {
            sign_in: SignInLimits::shared(pool.clone(), per_minute.auth_failures),
            store: Store::Shared {
                pool,
                quotas: Kind::ALL.map(|k| shared::Quota::per_minute(per_minute.of(k))),
            },
        })
    }

    /// Every minute, drops what no longer limits anything from the shared table (every replica
    /// does; the statement is idempotent). Memory buckets sweep themselves.
    pub fn spawn_sweeper(self: &std::sync::Arc<Self>) {
        if let Store::Shared { pool, .. } = &self.store {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut every = tokio::time::interval(Duration::from_secs(60));
                every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    every.tick().await;
                    if pool.is_closed() {
                        break;
                    }
                    if let Err(e) = shared::sweep(&pool).await {
                        tracing::warn!(error = %e, "could not sweep the rate-limit table");
                    }
                }
            });
        }
    }

    /// Takes one call of `kind` for `key`.
    pub async fn take(&self, kind: Kind, key: &str) -> sqlx::Result<Option<Wait>> {
        self.take_unless_blocked(kind, key, None).await
    }

    /// Whether `block_key` is locked out after too many failed authentications; if not, takes
    /// one call of `kind` for `key` (in one round trip when shared).
    pub async fn take_unless_blocked(
        &self,
        kind: Kind,
        key: &str,
        block_key: Option<&str>,
    ) -> sqlx::Result<Option<Wait>> {
        match &self.store {
            Store::Memory { buckets, blocked, .. } => {
                if let Some(wait) = block_key.and_then(|b| memory_blocked(blocked, b)) {
                    return Ok(Some(wait));
                }
                Ok(buckets[kind as usize].check(key))
            }
            Store::Shared { pool, quotas } => {
                let key = quotas[kind as usize].map(|q| (format!("{}:{key}", kind.prefix()), q));
                let block_key = block_key.map(|b| format!("block:{b}"));
                let verdict =
                    shared::take(pool, key.as_ref().map(|(k, q)| (k.as_str(), *q)), block_key.as_deref()).await?;
                Ok(verdict.blocked.or(verdict.refused).map(micros_to_seconds))
            }
        }
    }

    /// Whether `key` (a client IP) is locked out after too many failed
    /// authentications.
    pub async fn auth_blocked(&self, key: &str) -> sqlx::Result<Option<Wait>> {
        match &self.store {
            Store::Memory { blocked, .. } => Ok(memory_blocked(blocked, key)),
            Store::Shared { pool, .. } => {
                let verdict = shared::take(pool, None, Some(&format!("block:{key}"))).await?;
                Ok(verdict.blocked.map(micros_to_seconds))
            }
        }
    }

    /// Counts a failed authentication; past the limit `key` is locked out until the bucket
    /// refills, and the wait is returned.
    pub async fn auth_failed(&self, key: &str) -> sqlx::Result<Option<Wait>> {
        match &self.store {
            Store::Memory {
                buckets,
                blocked,
                blocked_sweeper,
            } => {
                let Some(wait) = buckets[Kind::AuthFailures as usize].check(key) else {
                    return Ok(None);
                };
                let mut blocked = blocked.lock().expect("lock");
                if blocked_sweeper.due(blocked.len()) {
                    let now = Instant::now();
                    blocked.retain(|_, until| *until > now);
                }
                blocked.insert(key.to_owned(), Instant::now() + Duration::from_secs(wait));
                Ok(Some(wait))
            }
            Store::Shared { pool, quotas } => {
                let Some(quota) = quotas[Kind::AuthFailures as usize] else {
                    return Ok(None);
                };
                let bucket = format!("{}:{key}", Kind::AuthFailures.prefix());
                let verdict = shared::take(pool, Some((&bucket, quota)), None).await?;
                let Some(wait_us) = verdict.refused else {
                    return Ok(None);
                };
                shared::block(pool, &format!("block:{key}"), wait_us).await?;
                Ok(Some(micros_to_seconds(wait_us)))
            }
        }
    }
}

fn memory_blocked(blocked: &Mutex<HashMap<String, Instant>>, key: &str) -> Option<Wait> {
    let mut blocked = blocked.lock().expect("lock");
    let until = *blocked.get(key)?;
    let now = Instant::now();
    if until > now {
        Some(whole_seconds(until - now))
    } else {
        blocked.remove(key);
        None
    }
}

/// The limits' flags, calls per minute (0: off).
#[derive(Clone, Copy, Debug)]
pub struct PerMinute {
    pub rest: u32,
    pub mcp: u32,
    pub auth_failures: u32,
    pub leak_reports: u32,
}

impl PerMinute {
    fn of(self, kind: Kind) -> u32 {
        match kind {
            Kind::Rest => self.rest,
            Kind::Mcp => self.mcp,
            Kind::RevokeReports | Kind::PartnerAlerts => self.leak_reports,
            Kind::AuthFailures => self.auth_failures,
        }
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
