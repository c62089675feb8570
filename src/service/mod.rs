//! The one service layer. Every surface (REST, MCP, dashboard, CLI) calls the same operations
//! the same way ([`Service::call`]); each checks the ability and the tenancy, acts, and writes
//! its audit entry in one transaction.
//!
//! Dependencies run one way: [`op`] (what an operation is) ← the resource modules (the
//! operations) ← [`catalog`] (the list of them) ← the surfaces.

pub mod access_codes;
pub mod activity;
pub mod admin;
pub mod args;
pub mod auth;
pub mod batch;
pub mod call;
pub mod catalog;
pub mod demo;
pub mod idempotency;
pub mod jobs;
pub mod leaks;
pub mod members;
pub mod op;
pub mod page;
pub mod plans;
pub mod principal;
pub mod projects;
pub mod resources;
pub mod sessions;
pub mod subscriptions;
pub mod teams;
pub mod tokens;

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::token::TokenEnv;
use crate::store::Db;

pub use call::Call;
pub use op::{Done, Input, Op, Operation, Output};
pub use principal::{Principal, TokenGrant};

#[derive(Clone, Debug)]
pub struct ServiceConfig {
    pub env: TokenEnv,
    /// Where the portal and docs links point.
    pub public_url: String,
    /// GitHub's secret-scanning public keys (a JSON key document).
    pub secret_scanning_keys_url: String,
}

/// GitHub's published secret-scanning keys.
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

/// The service layer, shared: one pointer, so a clone per request costs one atomic increment.
#[derive(Clone, Debug)]
pub struct Service(Arc<Inner>);

impl std::ops::Deref for Service {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[derive(Debug)]
pub struct Inner {
    db: Db,
    config: Arc<ServiceConfig>,
    /// Wakes this process's job worker when a job is queued here (others poll).
    jobs_waiting: Arc<tokio::sync::Notify>,
    /// Refused authentications on their way to the `auth.failed` writer.
    auth_failures: tokio::sync::mpsc::Sender<Option<AuditDraft>>,
    /// The secret-scanning partner's keys, cached.
    partner_keys: Arc<leaks::PartnerKeys>,
    /// This process's group-commit writer of audit entries.
    batch: batch::Batcher,
    /// A token ID that exists, looked up instead of an unknown one (see [`auth`]).
    decoy_token: std::sync::OnceLock<String>,
    /// Password verifications running at once (see [`sessions`]).
    password_checks: Arc<tokio::sync::Semaphore>,
}

impl Service {
    /// Must be called inside a Tokio runtime: it starts the task that writes `auth.failed`
    /// entries, which ends when the last clone of this service is dropped.
    pub fn new(db: Db, config: ServiceConfig) -> Self {
        let (auth_failures, queue) = tokio::sync::mpsc::channel(auth::AUTH_FAILURE_QUEUE);
        tokio::spawn(auth::write_auth_failures(db.clone(), queue));
        let jobs_waiting: Arc<tokio::sync::Notify> = Default::default();
        Service(Arc::new(Inner {
            batch: batch::Batcher::start(db.clone(), jobs_waiting.clone()),
            db,
            partner_keys: Arc::new(leaks::PartnerKeys::new(config.secret_scanning_keys_url.clone())),
            config: Arc::new(config),
            jobs_waiting,
            auth_failures,
            decoy_token: std::sync::OnceLock::new(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(sessions::concurrent_password_checks())),
        }))
    }

    /// Batches and entries committed by the group-commit writer so far.
    pub fn batch_stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        (
            self.batch.stats.batches.load(Ordering::Relaxed),
            self.batch.stats.entries.load(Ordering::Relaxed),
        )
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }
}

fn to_value<T: Serialize>(v: T) -> Result<Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.into()))
}
