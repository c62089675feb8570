//! The process's log: the server's events and one line per request, written by a thread of
//! its own so that no request waits on stderr.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// What is logged unless `MEMBERPASS_LOG` says otherwise.
const DEFAULT_FILTER: &str = "info,sqlx=warn,rmcp=warn";

/// Below `warn`, rmcp logs whole MCP messages (tool arguments, where an agent may paste a
/// token) and results: whatever the filter asks, rmcp stays at `warn`.
const RMCP_CAP: &str = "rmcp=warn";

/// The filter of `spec` (an `EnvFilter` such as `info,sqlx=warn`), or of the default when it
/// does not parse, with rmcp capped.
pub fn filter(spec: Option<&str>) -> EnvFilter {
    let capped = |spec: &str| {
        let mut kept: Vec<&str> = spec
            .split(',')
            .filter(|d| !d.trim_start().starts_with("rmcp"))
            .collect();
        kept.push(RMCP_CAP);
        kept.join(",")
    };
    spec.and_then(|s| EnvFilter::try_new(capped(s)).ok())
        .unwrap_or_else(|| EnvFilter::new(capped(DEFAULT_FILTER)))
}

/// Installs the subscriber, writing to `to` from a writer thread. Keep the guard until the
/// process ends: dropping it flushes what is queued. When the queue (128 000 lines) is full a
/// request waits for room rather than a line being lost.
pub fn init<W: std::io::Write + Send + 'static>(to: W, ansi: bool) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("memberpass-log")
        .finish(to);
    let filter = filter(std::env::var("MEMBERPASS_LOG").ok().as_deref());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .try_init();
    guard
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rmcp_stays_at_warn_whatever_the_filter_asks() {
        for spec in [
            None,
            Some("debug"),
            Some("trace,rmcp=trace"),
            Some("rmcp::service=debug,info"),
            Some("not a filter["),
        ] {
            let shown = filter(spec).to_string();
            assert!(shown.contains("rmcp=warn"), "{spec:?}: {shown}");
            assert!(
                !shown.contains("rmcp=trace") && !shown.contains("rmcp::service"),
                "{spec:?}: {shown}"
            );
        }
        assert!(filter(Some("debug")).to_string().contains("debug"));
    }
}
