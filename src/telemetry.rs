//! The process's log: the server's events and one line per request, written by a thread of
//! its own so that no request waits on stderr.

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// What is logged unless `MEMBERPASS_LOG` says otherwise.
const DEFAULT_FILTER: &str = "info,sqlx=warn,rmcp=warn";

/// Installs the subscriber, writing to `to` from a writer thread. Keep the guard until the
/// process ends: dropping it flushes what is queued. When the queue (128 000 lines) is full a
/// request waits for room rather than a line being lost.
pub fn init<W: std::io::Write + Send + 'static>(to: W, ansi: bool) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("memberpass-log")
        .finish(to);
    let filter = EnvFilter::try_from_env("MEMBERPASS_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .try_init();
    guard
}
