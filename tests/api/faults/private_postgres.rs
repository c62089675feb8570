//! A PostgreSQL cluster of the test's own, on a loopback port of its own, that the test may stop
//! and start (the machine's shared server serves other tests and is never touched). Stopped and
//! removed when dropped, also when the test fails.

use std::path::PathBuf;
use std::process::Command;

/// Where `initdb` and `pg_ctl` are: this variable, else the newest `/usr/lib/postgresql/*/bin`.
const BIN_DIR_VAR: &str = "MEMBERPASS_TEST_PG_BIN";

pub(crate) struct PrivatePostgres(Cluster);

/// Where the cluster is and how to run its tools.
#[derive(Clone)]
struct Cluster {
    /// Holds `data/`, the socket and `log`; owned by `postgres` when the test runs as root.
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// How `pg_ctl stop` ends the sessions: `fast` rolls them back and closes them; `immediate`
/// kills every process without a shutdown checkpoint (a crash: recovery replays the WAL and
/// empties unlogged tables).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stop {
    Fast,
    Immediate,
}

impl PrivatePostgres {
    /// `initdb` and start, with a database `memberpass` created.
    pub(crate) async fn start() -> PrivatePostgres {
        let pg = tokio::task::spawn_blocking(|| {
            let as_postgres = is_root();
            let dir = std::env::temp_dir().join(format!("memberpass-pg-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            // From here on, dropping `pg` removes the directory (and stops the cluster).
            let mut pg = PrivatePostgres(Cluster {
                dir,
                bin: bin_dir(),
                port: 0,
                as_postgres,
            });
            let c = &mut pg.0;
            if as_postgres {
                // initdb refuses to run as root.
                run(Command::new("chown").args(["postgres:", &c.dir.display().to_string()]));
            }
            let data = c.data();
            run(c
                .tool("initdb")
                .args(["-D", &data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"]));
            // A free port now may be taken by the time the server binds it: a few tries.
            for attempt in 1.. {
                c.port = free_port();
                if c.start() {
                    break;
                }
                assert!(attempt < 5, "the private PostgreSQL does not start:\n{}", c.log());
            }
            pg
        })
        .await
        .unwrap();
        use sqlx::{Connection, Executor};
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&pg.admin_url()).await.unwrap();
        conn.execute("CREATE DATABASE memberpass").await.unwrap();
        conn.close().await.unwrap();
        pg
    }

    /// The server's own database, for the binary.
    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/memberpass", self.0.port)
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.0.port)
    }

    /// Stops the server; returns once it is down.
    pub(crate) async fn stop(&self, how: Stop) {
        let mode = match how {
            Stop::Fast => "fast",
            Stop::Immediate => "immediate",
        };
        let c = self.0.clone();
        let status = tokio::task::spawn_blocking(move || {
            c.tool("pg_ctl")
                .args(["-D", &c.data(), "stop", "-m", mode, "-w", "-t", "60"])
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(status.success(), "pg_ctl stop failed:\n{}", self.log());
    }

    /// Starts the stopped server again on the same port; returns once it accepts connections.
    pub(crate) async fn restart(&self) {
        let c = self.0.clone();
        let started = tokio::task::spawn_blocking(move || c.start()).await.unwrap();
        assert!(started, "the private PostgreSQL does not start again:\n{}", self.log());
    }

    /// The server's log, for failure messages.
    pub(crate) fn log(&self) -> String {
        self.0.log()
    }
}

impl Cluster {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// `pg_ctl start`; whether the server accepts connections.
    fn start(&self) -> bool {
        let options = format!(
            // A process restart, not a power loss, is what these tests do: fsync changes nothing
            // of what survives it, and off it spares a disk other work shares.
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        self.tool("pg_ctl")
            .args([
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "start",
            ])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// One of the PostgreSQL tools, run as `postgres` when the test runs as root.
    fn tool(&self, name: &str) -> Command {
        let tool = self.bin.join(name);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(tool);
            cmd
        } else {
            Command::new(tool)
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let c = &self.0;
        if c.dir.join("data").join("postmaster.pid").exists() {
            let _ = c
                .tool("pg_ctl")
                .args(["-D", &c.data(), "stop", "-m", "immediate", "-w", "-t", "60"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&c.dir);
    }
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} does not run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var(BIN_DIR_VAR) {
        return PathBuf::from(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "this test runs a PostgreSQL cluster of its own and needs initdb and pg_ctl: install \
             PostgreSQL's server package, or name their directory in {BIN_DIR_VAR}"
        )
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
