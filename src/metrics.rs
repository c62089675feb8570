//! Prometheus metrics (issue 22, item 1), served only on `serve --metrics-listen` (never on the
//! main listener). Each server has its own recorder (no global one), so two servers in one
//! process — the tests' — count apart.
//!
//! Every label value comes from a closed set: a surface, an operation of the catalog, an
//! outcome, an authentication failure's reason, a rate-limit bucket, a status class. Never a
//! token, a person, an address or a raw path: a thousand distinct tokens or paths add no series.

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Label, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];
/// Audit batch sizes (entries per commit).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static METADATA: Metadata<'static> = Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

/// Every metric this server exports (the Grafana dashboard in `docs/grafana/` is checked against
/// it).
pub const NAMES: &[&str] = &[
    "memberpass_operations_total",
    "memberpass_operation_duration_seconds",
    "memberpass_http_requests_total",
    "memberpass_http_request_duration_seconds",
    "memberpass_auth_failures_total",
    "memberpass_rate_limited_total",
    "memberpass_audit_batch_entries",
    "memberpass_audit_commit_duration_seconds",
    "memberpass_audit_batch_failures_total",
    "memberpass_audit_queue_depth",
    "memberpass_audit_chain_head_seq",
    "memberpass_db_pool_connections",
    "memberpass_jobs",
];

/// This server's metrics: a registry of its own when `--metrics-listen` is given, nothing at all
/// (every record a no-op, nothing kept) when not.
pub struct Metrics {
    on: Option<On>,
}

struct On {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
}

/// How often histogram samples are folded into their buckets (the exporter keeps raw samples
/// until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

/// What a call came to, as the metrics name it.
pub fn outcome_of<T>(r: &crate::domain::error::Result<T>) -> &'static str {
    match r {
        Ok(_) => "success",
        Err(e) => e.outcome().as_str(),
    }
}

impl Metrics {
    /// No metrics: every record is a no-op.
    pub fn off() -> Metrics {
        Metrics { on: None }
    }

    /// A registry of this server's own. Inside a Tokio runtime it folds histogram samples every
    /// [`UPKEEP_EVERY`] until dropped, so memory stays bounded however rarely it is scraped.
    pub fn new() -> std::sync::Arc<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("memberpass_audit_batch_entries".into()), BATCH_BUCKETS)
            })
            // Refused only for an empty list of buckets, which these are not.
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let on = On { recorder, handle };
        on.describe();
        let m = std::sync::Arc::new(Metrics { on: Some(on) });
        if tokio::runtime::Handle::try_current().is_ok() {
            let weak = std::sync::Arc::downgrade(&m);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(UPKEEP_EVERY);
                loop {
                    tick.tick().await;
                    let Some(m) = weak.upgrade() else { return };
                    if let Some(on) = &m.on {
                        on.handle.run_upkeep();
                    }
                }
            });
        }
        m
    }

    fn counter(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Counter {
        match &self.on {
            Some(on) => on.recorder.register_counter(&key(name, labels), &METADATA),
            None => Counter::noop(),
        }
    }

    fn histogram(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Histogram {
        match &self.on {
            Some(on) => on.recorder.register_histogram(&key(name, labels), &METADATA),
            None => Histogram::noop(),
        }
    }

    fn gauge(&self, name: &'static str, labels: &[(&'static str, &'static str)]) -> Gauge {
        match &self.on {
            Some(on) => on.recorder.register_gauge(&key(name, labels), &METADATA),
            None => Gauge::noop(),
        }
    }
}

impl On {
    fn describe(&self) {
        let counter = |name: &'static str, help: &'static str| {
            self.recorder
                .describe_counter(KeyName::from_const_str(name), None, SharedString::const_str(help));
        };
        let histogram = |name: &'static str, unit: Option<Unit>, help: &'static str| {
            self.recorder
                .describe_histogram(KeyName::from_const_str(name), unit, SharedString::const_str(help));
        };
        let gauge = |name: &'static str, help: &'static str| {
            self.recorder
                .describe_gauge(KeyName::from_const_str(name), None, SharedString::const_str(help));
        };
        counter(
            "memberpass_operations_total",
            "Operation calls by surface (rest, mcp, dashboard), operation and outcome (success, denied, failed).",
        );
        histogram(
            "memberpass_operation_duration_seconds",
            Some(Unit::Seconds),
            "Time from the call's start to its answer, its audit entry committed.",
        );
        counter(
            "memberpass_http_requests_total",
            "HTTP requests by surface (rest, mcp, dashboard, oauth, other) and status class.",
        );
        histogram(
            "memberpass_http_request_duration_seconds",
            Some(Unit::Seconds),
            "HTTP request time by surface.",
        );
        counter(
            "memberpass_auth_failures_total",
            "Refused credentials by reason (missing, malformed, unknown_id, secret_mismatch, revoked, expired, …).",
        );
        counter("memberpass_rate_limited_total", "Calls refused with 429, by bucket.");
        histogram(
            "memberpass_audit_batch_entries",
            None,
            "Entries committed per audit batch (group commit).",
        );
        histogram(
            "memberpass_audit_commit_duration_seconds",
            Some(Unit::Seconds),
            "Time to write and commit one audit batch.",
        );
        counter(
            "memberpass_audit_batch_failures_total",
            "Audit batches that did not commit.",
        );
        gauge("memberpass_audit_queue_depth", "Calls waiting for the audit writer.");
        gauge(
            "memberpass_audit_chain_head_seq",
            "The audit chain's newest sequence number.",
        );
        gauge(
            "memberpass_db_pool_connections",
            "Database pool connections by state (idle, in_use) and pool.",
        );
        gauge(
            "memberpass_jobs",
            "Background jobs by status (queued, running, completed, failed).",
        );
    }
}

fn key(name: &'static str, labels: &[(&'static str, &'static str)]) -> Key {
    let labels: Vec<Label> = labels.iter().map(|(k, v)| Label::from_static_parts(k, v)).collect();
    Key::from_parts(name, labels)
}

impl Metrics {
    /// One operation call: its surface, name, outcome and time.
    pub fn operation(&self, surface: &'static str, operation: &'static str, outcome: &'static str, took: Duration) {
        let labels = [("surface", surface), ("operation", operation), ("outcome", outcome)];
        self.counter("memberpass_operations_total", &labels).increment(1);
        self.histogram("memberpass_operation_duration_seconds", &labels)
            .record(took.as_secs_f64());
    }

    /// One HTTP request: the surface its path belongs to and its status class.
    pub fn http(&self, path: &str, status: u16, took: Duration) {
        let surface = surface_of(path);
        let class = match status {
            100..200 => "1xx",
            200..300 => "2xx",
            300..400 => "3xx",
            400..500 => "4xx",
            _ => "5xx",
        };
        self.counter(
            "memberpass_http_requests_total",
            &[("surface", surface), ("class", class)],
        )
        .increment(1);
        self.histogram("memberpass_http_request_duration_seconds", &[("surface", surface)])
            .record(took.as_secs_f64());
    }

    pub fn auth_failure(&self, reason: &'static str) {
        self.counter("memberpass_auth_failures_total", &[("reason", reason)])
            .increment(1);
    }

    pub fn rate_limited(&self, bucket: &'static str) {
        self.counter("memberpass_rate_limited_total", &[("bucket", bucket)])
            .increment(1);
    }

    /// One audit batch: how many entries it committed and how long it took (or that it failed).
    pub fn audit_batch(&self, entries: usize, took: Duration, committed: bool) {
        if committed {
            self.histogram("memberpass_audit_batch_entries", &[])
                .record(entries as f64);
            self.histogram("memberpass_audit_commit_duration_seconds", &[])
                .record(took.as_secs_f64());
        } else {
            self.counter("memberpass_audit_batch_failures_total", &[]).increment(1);
        }
    }

    /// Gauges read at scrape time, then the text format.
    pub fn render(&self, now: &Gauges) -> String {
        self.gauge("memberpass_audit_queue_depth", &[])
            .set(now.audit_queue_depth as f64);
        if let Some(seq) = now.chain_head_seq {
            self.gauge("memberpass_audit_chain_head_seq", &[]).set(seq as f64);
        }
        for (pool, idle, in_use) in &now.pools {
            self.gauge("memberpass_db_pool_connections", &[("pool", pool), ("state", "idle")])
                .set(*idle as f64);
            self.gauge("memberpass_db_pool_connections", &[("pool", pool), ("state", "in_use")])
                .set(*in_use as f64);
        }
        for (status, n) in &now.jobs {
            self.gauge("memberpass_jobs", &[("status", status)]).set(*n as f64);
        }
        match &self.on {
            Some(on) => {
                on.handle.run_upkeep();
                on.handle.render()
            }
            None => String::new(),
        }
    }
}

/// What the metrics read from the server's state at each scrape.
#[derive(Debug, Default)]
pub struct Gauges {
    pub audit_queue_depth: usize,
    pub chain_head_seq: Option<i64>,
    /// (pool, idle, in use)
    pub pools: Vec<(&'static str, usize, usize)>,
    /// (status, count) for each job status.
    pub jobs: Vec<(&'static str, i64)>,
}

/// The surface a request path belongs to: a closed set, whatever the path.
pub fn surface_of(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    match first {
        "v1" => "rest",
        "mcp" => "mcp",
        "settings" | "login" | "logout" | "session" | "assets" => "dashboard",
        "authorize" | "token" | "register" | "revoke" | ".well-known" => "oauth",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surfaces_are_a_closed_set() {
        assert_eq!(surface_of("/v1/projects/x"), "rest");
        assert_eq!(surface_of("/mcp"), "mcp");
        assert_eq!(surface_of("/settings/tokens"), "dashboard");
        assert_eq!(surface_of("/.well-known/oauth-authorization-server"), "oauth");
        assert_eq!(surface_of("/mpt_live_secret"), "other");
    }

    #[test]
    fn the_grafana_dashboard_uses_only_metrics_the_server_exports() {
        let dashboard = include_str!("../docs/grafana/memberpass.json");
        let mut used = std::collections::BTreeSet::new();
        for (at, _) in dashboard.match_indices("memberpass_") {
            let name: String = dashboard[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(NAMES.contains(&base), "{name} is not a metric of the server");
            used.insert(base.to_owned());
        }
        for name in NAMES {
            assert!(used.contains(*name), "the dashboard does not chart {name}");
        }
    }

    #[test]
    fn the_text_has_each_series_once_with_its_labels() {
        let m = Metrics::new();
        m.operation("rest", "list_projects", "success", Duration::from_millis(2));
        m.operation("rest", "list_projects", "success", Duration::from_millis(3));
        m.auth_failure("revoked");
        let text = m.render(&Gauges::default());
        assert!(
            text.contains(
                "memberpass_operations_total{surface=\"rest\",operation=\"list_projects\",outcome=\"success\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("memberpass_auth_failures_total{reason=\"revoked\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE memberpass_operation_duration_seconds histogram"),
            "{text}"
        );
    }
}
