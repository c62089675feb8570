//! The real binary: `memberpass serve` as a child process on a loopback port of its choosing, and
//! the CLI run against a database. Used where a test needs what only a process shows (SIGKILL,
//! SIGTERM, several replicas on one PostgreSQL).

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::ScratchDatabase;

/// `memberpass serve` on a loopback port of its choosing; killed (SIGKILL) when dropped.
pub struct Served {
    child: std::process::Child,
    pub base: String,
    /// Everything the process wrote to stderr so far.
    stderr: Arc<Mutex<String>>,
}

impl Served {
    /// Starts the binary with a REST limit out of the way.
    pub async fn start(database_url: &str) -> Served {
        Served::start_with(database_url, &["--rate-limit-rest", "1000000"]).await
    }

    /// Starts the binary with `args` after `serve`, and waits for the line that says where it
    /// listens (port 0: no race for a port with other tests).
    pub async fn start_with(database_url: &str, args: &[&str]) -> Served {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"))
            .args(["--database-url", database_url, "serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env(
                "MEMBERPASS_LOG",
                "warn,memberpass::cli=info,memberpass::service::jobs=info",
            )
            .env("NO_COLOR", "1")
            // No backtrace captured with each error the server logs (`RUST_BACKTRACE` set for the
            // tests would ask for one): resolving them in a debug build stalls its runtime for
            // seconds when a fault makes many calls fail at once.
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary starts");
        let stderr = child.stderr.take().unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let mut served = Served {
            child,
            base: String::new(),
            stderr: seen.clone(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<String, String>>();
        // Reads stderr to its end, so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                {
                    let mut seen = seen.lock().unwrap();
                    seen.push_str(&line);
                    seen.push('\n');
                }
                if let Some(at) = line.find("MemberPass listening").and_then(|_| line.find("url=")) {
                    let url: String = line[at + 4..]
                        .chars()
                        .take_while(|c| !c.is_whitespace() && *c != '\x1b')
                        .collect();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(Ok(url));
                    }
                }
            }
            if let Some(tx) = tx.take() {
                let _ = tx.send(Err(seen.lock().unwrap().clone()));
            }
        });
        match tokio::time::timeout(Duration::from_secs(20), rx).await {
            Ok(Ok(Ok(url))) => served.base = url,
            Ok(Ok(Err(stderr))) => panic!("serve exited before listening:\n{stderr}"),
            other => panic!("serve did not say where it listens: {other:?}"),
        }
        served
    }

    /// What the process logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (up to 30 s) for the process to exit; returns whether it exited by
    /// itself with success.
    pub async fn terminate(&mut self) -> bool {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `memberpass serve` on `database_url` expecting it to refuse to start: returns what it
/// wrote to stderr once it has exited with a failure. Panics if it is still running after 20 s.
pub async fn serve_refused(database_url: &str) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"))
        .args(["--database-url", database_url, "serve", "--listen", "127.0.0.1:0"])
        .env("MEMBERPASS_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts");
    for _ in 0..200 {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
            assert!(!status.success(), "serve exited with success:\n{stderr}");
            return stderr;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("serve did not refuse to start: still running after 20 s");
}

/// Runs the binary against the scratch database and returns its `--json` output.
pub async fn cli_json(db: &ScratchDatabase, args: &[&str]) -> Value {
    cli_json_at(&db.url, args).await
}

/// [`cli_json`] against the database at `url`.
pub async fn cli_json_at(url: &str, args: &[&str]) -> Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"));
    cmd.args(["--database-url", url, "--json"])
        .args(args)
        .env("MEMBERPASS_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("binary runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON: {e}: {stdout}"))
}
