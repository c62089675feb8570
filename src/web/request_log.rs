//! The request log. Every request is counted; a line per request is written at `debug` for
//! successes, `info` for client errors and `warn` for server errors, and every 10 s an `info`
//! line sums up what was answered since (counts by status class, slowest time). An operator sees
//! every refusal and failure by its request id, and the traffic without a line per success.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// How often the summary line is written (when anything was answered).
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct RequestCounts {
    ok: AtomicU64,
    client_errors: AtomicU64,
    server_errors: AtomicU64,
    slowest_us: AtomicU64,
}

impl RequestCounts {
    /// Counts one answer and writes its line at the level its status calls for.
    pub fn record(&self, request_id: &str, method: &axum::http::Method, path: &str, status: u16, took: Duration) {
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        self.slowest_us.fetch_max(us, Ordering::Relaxed);
        let ms = us / 1000;
        match status {
            500.. => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(request_id, %method, path, status, ms, "request");
            }
            400.. => {
                self.client_errors.fetch_add(1, Ordering::Relaxed);
                tracing::info!(request_id, %method, path, status, ms, "request");
            }
            _ => {
                self.ok.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(request_id, %method, path, status, ms, "request");
            }
        }
    }

    /// Takes the counts since the last call: (successes, client errors, server errors, slowest).
    fn take(&self) -> (u64, u64, u64, Duration) {
        (
            self.ok.swap(0, Ordering::Relaxed),
            self.client_errors.swap(0, Ordering::Relaxed),
            self.server_errors.swap(0, Ordering::Relaxed),
            Duration::from_micros(self.slowest_us.swap(0, Ordering::Relaxed)),
        )
    }
}

/// Writes the summary line every [`SUMMARY_EVERY`] until the counts are dropped with the router.
pub fn spawn_summary(counts: &Arc<RequestCounts>) {
    let counts: Weak<RequestCounts> = Arc::downgrade(counts);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SUMMARY_EVERY);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(counts) = counts.upgrade() else { return };
            let (ok, client_errors, server_errors, slowest) = counts.take();
            if ok + client_errors + server_errors > 0 {
                tracing::info!(
                    ok,
                    client_errors,
                    server_errors,
                    slowest_ms = slowest.as_millis() as u64,
                    every_s = SUMMARY_EVERY.as_secs(),
                    "requests answered"
                );
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_class_and_starts_again_after_each_summary() {
        let c = RequestCounts::default();
        let get = axum::http::Method::GET;
        c.record("a", &get, "/v1/me", 200, Duration::from_millis(3));
        c.record("b", &get, "/v1/me", 401, Duration::from_millis(9));
        c.record("c", &get, "/v1/me", 503, Duration::from_millis(1));
        c.record("d", &get, "/v1/me", 204, Duration::from_millis(2));
        assert_eq!(c.take(), (2, 1, 1, Duration::from_millis(9)));
        assert_eq!(c.take(), (0, 0, 0, Duration::ZERO));
    }
}
