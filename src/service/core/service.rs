//! The service layer's state, shared by every call: the database, the settings, this process's
//! audit writer and its queues and caches. One pointer, cloned per request.

use std::sync::Arc;

use super::batch::Batcher;
use super::partner_keys::PartnerKeys;
use crate::domain::audit::AuditDraft;
use crate::domain::token::TokenEnv;
use crate::store::Db;

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub env: TokenEnv,
    /// Where the portal and docs links point.
    pub public_url: String,
    /// GitHub's secret-scanning public keys (a JSON key document).
    pub secret_scanning_keys_url: String,
    /// The `serve --oauth-*` settings.
    pub oauth: crate::domain::oauth::OAuthConfig,
    /// How long a held call's approval request lives (`serve --approval-ttl`, 15 min).
    pub approval_ttl: std::time::Duration,
    /// Whether an operation can be held or budgeted: the catalog's writes, given by whoever
    /// builds the service ([`crate::service::ops::catalog::can_be_held`]), since the machinery and
    /// the operations that read this do not import the catalog that lists them.
    pub holdable: fn(&str) -> bool,
    /// Keep Prometheus metrics (`serve --metrics-listen`); off, every record is a no-op.
    pub metrics: bool,
}

/// `serve --approval-ttl`'s default.
pub const DEFAULT_APPROVAL_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// GitHub's published secret-scanning keys.
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

/// The service layer, shared: one pointer, so a clone per request costs one atomic increment.
#[derive(Clone, Debug)]
pub struct Service(pub(in crate::service) Arc<Inner>);

impl std::ops::Deref for Service {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug)]
pub struct Inner {
    pub(in crate::service) db: Db,
    pub(in crate::service) config: Arc<ServiceConfig>,
    /// Wakes this process's job worker when a job is queued here (others poll).
    pub(in crate::service) jobs_waiting: Arc<tokio::sync::Notify>,
    /// Refused authentications on their way to the `auth.failed` writer.
    pub(in crate::service) auth_failures: tokio::sync::mpsc::Sender<Option<AuditDraft>>,
    /// The secret-scanning partner's keys, cached.
    pub(in crate::service) partner_keys: Arc<PartnerKeys>,
    /// This process's group-commit writer of audit entries.
    pub(in crate::service) batch: Batcher,
    /// A token ID that exists, looked up instead of an unknown one (see [`super::auth`]).
    pub(in crate::service) decoy_token: std::sync::OnceLock<String>,
    /// Password verifications running at once (see `accounts::sessions`).
    pub(in crate::service) password_checks: Arc<tokio::sync::Semaphore>,
    /// This server's Prometheus metrics (`serve --metrics-listen`).
    pub(in crate::service) metrics: Arc<crate::metrics::Metrics>,
}

impl Service {
    /// Batches and entries committed by the group-commit writer so far.
    pub fn batch_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.batch.stats.batches.load(Ordering::Relaxed),
            self.batch.stats.entries.load(Ordering::Relaxed),
        )
    }

    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// The gauges a scrape reads: the audit writer's queue, the chain's head, the pools, the jobs.
    pub async fn metrics_text(&self) -> String {
        let mut g = crate::metrics::Gauges {
            audit_queue_depth: self.batch.queue_depth(),
            ..Default::default()
        };
        for (name, pool) in [("write", self.db.pool()), ("read", self.db.read_pool())] {
            let (size, idle) = (pool.size() as usize, pool.num_idle());
            g.pools.push((name, idle, size.saturating_sub(idle)));
        }
        if let Ok(mut conn) = self.db.read_pool().acquire().await {
            g.chain_head_seq = crate::store::audit::head(&mut conn).await.ok().map(|(seq, _)| seq);
            if let Ok(counts) = crate::store::jobs::counts_by_status(&mut conn).await {
                g.jobs = counts;
            }
        }
        self.metrics.render(&g)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }
}
