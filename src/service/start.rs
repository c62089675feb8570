//! Starting the service: its writers (the audit batch, the `auth.failed` queue) and caches.

use std::sync::Arc;

use super::accounts::sessions::concurrent_password_checks;
use super::core::auth;
use super::core::batch::Batcher;
use super::core::partner_keys::PartnerKeys;
use super::core::service::{Inner, Service, ServiceConfig};
use crate::store::Db;

impl Service {
    /// Must be called inside a Tokio runtime: it starts the task that writes `auth.failed`
    /// entries, which ends when the last clone of this service is dropped.
    pub fn new(db: Db, config: ServiceConfig) -> Self {
        let (auth_failures, queue) = tokio::sync::mpsc::channel(auth::AUTH_FAILURE_QUEUE);
        tokio::spawn(auth::write_auth_failures(db.clone(), queue));
        let jobs_waiting: Arc<tokio::sync::Notify> = Default::default();
        let metrics = match config.metrics {
            true => crate::metrics::Metrics::new(),
            false => Arc::new(crate::metrics::Metrics::off()),
        };
        Service(Arc::new(Inner {
            batch: Batcher::start(db.clone(), jobs_waiting.clone()).with_metrics(metrics.clone()),
            metrics,
            db,
            partner_keys: Arc::new(PartnerKeys::new(config.secret_scanning_keys_url.clone())),
            config: Arc::new(config),
            jobs_waiting,
            auth_failures,
            decoy_token: std::sync::OnceLock::new(),
            password_checks: Arc::new(tokio::sync::Semaphore::new(concurrent_password_checks())),
        }))
    }
}
