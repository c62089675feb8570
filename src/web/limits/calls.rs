//! The limits of SPEC §8: per token for REST and MCP, and failed authentications per client IP,
//! in memory on SQLite or in PostgreSQL shared by every replica.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::AnyPool;

use super::bucket::{Bucket, Sweeper, Wait, micros_to_seconds, whole_seconds};
use super::sign_in::SignInLimits;
use crate::domain::audit::RequestCtx;
use crate::domain::error::Error;
use crate::store::limits as shared;
use crate::web::error::ApiError;

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
    /// Per client IP: OAuth dynamic client registrations (`POST /register`).
    OAuthRegistrations,
    /// Per client IP: OAuth token requests (`POST /token`), as many as the MCP bucket allows a
    /// token (a client refreshes a few times an hour; a guesser needs far more).
    OAuthTokens,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Rest,
        Kind::Mcp,
        Kind::RevokeReports,
        Kind::PartnerAlerts,
        Kind::AuthFailures,
        Kind::OAuthRegistrations,
        Kind::OAuthTokens,
    ];

    /// The bucket's name in the metrics.
    pub fn bucket(self) -> &'static str {
        match self {
            Kind::Rest => "rest",
            Kind::Mcp => "mcp",
            Kind::RevokeReports => "revoke_reports",
            Kind::PartnerAlerts => "partner_alerts",
            Kind::AuthFailures => "auth_failures",
            Kind::OAuthRegistrations => "oauth_registrations",
            Kind::OAuthTokens => "oauth_tokens",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Kind::Rest => "rest",
            Kind::Mcp => "mcp",
            Kind::RevokeReports => "revoke",
            Kind::PartnerAlerts => "alert",
            Kind::AuthFailures => "fail",
            Kind::OAuthRegistrations => "register",
            Kind::OAuthTokens => "oauth-token",
        }
    }
}

/// Where the buckets live: this process (SQLite), or PostgreSQL, shared by every replica.
enum Store {
    Memory {
        buckets: Box<[Bucket; 7]>,
        blocked: Mutex<HashMap<String, Instant>>,
        blocked_sweeper: Sweeper,
    },
    Shared {
        pool: AnyPool,
        quotas: [Option<shared::Quota>; 7],
    },
}

pub struct Limits {
    store: Store,
    /// The server's metrics: each refusal counted by bucket.
    pub metrics: std::sync::OnceLock<std::sync::Arc<crate::metrics::Metrics>>,
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
            metrics: Default::default(),
        }
    }

    /// Buckets in PostgreSQL's `rate_limits` table, shared by every replica on that database.
    pub async fn shared(pool: AnyPool, per_minute: PerMinute) -> sqlx::Result<Self> {
        shared::create(&pool).await?;
        Ok(Limits {
            sign_in: SignInLimits::shared(pool.clone(), per_minute.auth_failures),
            metrics: Default::default(),
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

    /// The gate of an endpoint that has no credential to count by (registration, `/token`,
    /// `/revoke`, leak reports): one call of `kind` for the client's address, or the `429`.
    pub async fn admit(&self, kind: Kind, ctx: &RequestCtx) -> Result<(), ApiError> {
        let limited = self
            .take(kind, ctx.ip.as_deref().unwrap_or_default())
            .await
            .map_err(|e| ApiError::from(Error::Internal(e.into())))?;
        match limited {
            Some(wait) => Err(ApiError::rate_limited(wait)),
            None => Ok(()),
        }
    }

    /// Whether `block_key` is locked out after too many failed authentications; if not, takes
    /// one call of `kind` for `key` (in one round trip when shared).
    pub async fn take_unless_blocked(
        &self,
        kind: Kind,
        key: &str,
        block_key: Option<&str>,
    ) -> sqlx::Result<Option<Wait>> {
        let (wait, blocked) = match &self.store {
            Store::Memory { buckets, blocked, .. } => match block_key.and_then(|b| memory_blocked(blocked, b)) {
                Some(wait) => (Some(wait), true),
                None => (buckets[kind as usize].check(key), false),
            },
            Store::Shared { pool, quotas } => {
                let key = quotas[kind as usize].map(|q| (format!("{}:{key}", kind.prefix()), q));
                let block_key = block_key.map(|b| format!("block:{b}"));
                let verdict =
                    shared::take(pool, key.as_ref().map(|(k, q)| (k.as_str(), *q)), block_key.as_deref()).await?;
                (
                    verdict.blocked.or(verdict.refused).map(micros_to_seconds),
                    verdict.blocked.is_some(),
                )
            }
        };
        if wait.is_some() {
            self.count(if blocked { Kind::AuthFailures } else { kind });
        }
        Ok(wait)
    }

    /// Counts a refusal of `kind`'s bucket in the metrics.
    fn count(&self, kind: Kind) {
        if let Some(m) = self.metrics.get() {
            m.rate_limited(kind.bucket());
        }
    }

    /// Whether `key` (a client IP) is locked out after too many failed
    /// authentications.
    pub async fn auth_blocked(&self, key: &str) -> sqlx::Result<Option<Wait>> {
        let wait = match &self.store {
            Store::Memory { blocked, .. } => memory_blocked(blocked, key),
            Store::Shared { pool, .. } => {
                let verdict = shared::take(pool, None, Some(&format!("block:{key}"))).await?;
                verdict.blocked.map(micros_to_seconds)
            }
        };
        if wait.is_some() {
            self.count(Kind::AuthFailures);
        }
        Ok(wait)
    }

    /// Counts a failed authentication; past the limit `key` is locked out until the bucket
    /// refills, and the wait is returned.
    pub async fn auth_failed(&self, key: &str) -> sqlx::Result<Option<Wait>> {
        let wait = self.auth_failed_inner(key).await?;
        if wait.is_some() {
            self.count(Kind::AuthFailures);
        }
        Ok(wait)
    }

    async fn auth_failed_inner(&self, key: &str) -> sqlx::Result<Option<Wait>> {
        match &self.store {
            Store::Memory {
                buckets,
                blocked,
                blocked_sweeper,
            } => {
                let Some(wait) = buckets[Kind::AuthFailures as usize].check(key) else {
                    return Ok(None);
                };
                let mut blocked = blocked.lock().unwrap_or_else(PoisonError::into_inner);
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
    let mut blocked = blocked.lock().unwrap_or_else(PoisonError::into_inner);
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
    pub oauth_registrations: u32,
}

impl PerMinute {
    fn of(self, kind: Kind) -> u32 {
        match kind {
            Kind::Rest => self.rest,
            Kind::Mcp | Kind::OAuthTokens => self.mcp,
            Kind::RevokeReports | Kind::PartnerAlerts => self.leak_reports,
            Kind::AuthFailures => self.auth_failures,
            Kind::OAuthRegistrations => self.oauth_registrations,
        }
    }
}
