//! `spawn_app()`: the real server on a random loopback port, on a fresh SQLite file or (with
//! `MEMBERPASS_TEST_POSTGRES_URL`) a fresh PostgreSQL database, removed when the test ends.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use memberpass::app::{Application, ServeConfig};
use memberpass::domain::ability::Ability;
use memberpass::service::Caller;
use memberpass::service::Service;
use memberpass::service::accounts::tokens::MintRequest;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::Value;
use sqlx::{AnyPool, Connection, Executor};

pub const OWNER_A: &str = "demo@memberpass.test";
pub const VIEWER_A: &str = "viewer@memberpass.test";
pub const OWNER_B: &str = "other@memberpass.test";

/// Everything the server logs during the test run, to check no token plaintext reaches it.
pub static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct LogSink(Arc<Mutex<Vec<u8>>>);
impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    // The one TLS provider in the tree (ring), for the test client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = LogSink(buf.clone());
        let _ = tracing_subscriber::fmt()
            // The server's own filter at its most verbose.
            .with_env_filter(memberpass::telemetry::filter(Some("debug")))
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .try_init();
        buf
    });
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.get().expect("logs").lock().unwrap()).into_owned()
}

enum Backing {
    Sqlite(std::path::PathBuf),
    Postgres { admin_url: String, name: String },
}

pub struct TestApp {
    pub base: String,
    /// `http://…/metrics` when the test asked for `--metrics-listen`.
    pub metrics_url: Option<String>,
    pub service: Service,
    pub client: reqwest::Client,
    pub database_url: String,
    backing: Backing,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// The ids of the demo data the tests act on.
#[derive(Clone, Debug)]
pub struct World {
    pub team_a: String,
    pub team_b: String,
    /// Two projects of team A; tokens scoped to `p2` must not reach `p1`.
    pub p1: String,
    pub p2: String,
    pub resource: String,
    pub plan: String,
    pub member: String,
    pub subscription: String,
    /// The ID of the demo token (team A's owner's), for the operations that name a token.
    pub token: String,
    /// A token of team A that a test may revoke: the demo token, unless the test minted one of
    /// its own in its place (`matrix::setup` does, so revoking it spares [`World::token`]).
    pub spare_token: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut ServeConfig)) -> TestApp {
    init_logs();
    let (database_url, backing) = fresh_database().await;
    start(database_url, backing, tweak).await
}

async fn start(database_url: String, backing: Backing, tweak: impl FnOnce(&mut ServeConfig)) -> TestApp {
    let mut config = ServeConfig::local(database_url.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.rate_limit_rest = 100_000;
    config.rate_limit_mcp = 100_000;
    config.rate_limit_auth_failures = 100_000;
    tweak(&mut config);
    let app = Application::build(config).await.expect("app builds");
    let base = format!("http://{}", app.local_addr());
    let metrics_url = app.metrics_addr().map(|a| format!("http://{a}/metrics"));
    let service = app.service().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        base,
        metrics_url,
        service,
        client: reqwest::Client::new(),
        database_url,
        backing,
        stop: Some(stop),
        server: Some(server),
    }
}

async fn fresh_database() -> (String, Backing) {
    match std::env::var("MEMBERPASS_TEST_POSTGRES_URL") {
        Ok(admin_url) if !admin_url.is_empty() => fresh_postgres(admin_url).await,
        _ => {
            let dir = std::env::temp_dir().join(format!("memberpass-test-{}", uuid::Uuid::now_v7().simple()));
            std::fs::create_dir_all(&dir).unwrap();
            let url = format!("sqlite://{}", dir.join("memberpass.db").display());
            (url, Backing::Sqlite(dir))
        }
    }
}

/// The PostgreSQL server of tests that need one whichever backend the run tests (several
/// replicas): `MEMBERPASS_TEST_POSTGRES_URL`, else `.ci/run`'s role (`MEMBERPASS_CI_POSTGRES_URL`),
/// else the local server.
const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh PostgreSQL database, removed when dropped.
pub async fn scratch_postgres() -> ScratchDatabase {
    let admin_url = ["MEMBERPASS_TEST_POSTGRES_URL", "MEMBERPASS_CI_POSTGRES_URL"]
        .into_iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| LOCAL_POSTGRES.to_owned());
    let (url, backing) = fresh_postgres(admin_url).await;
    ScratchDatabase { url, backing }
}

async fn fresh_postgres(admin_url: String) -> (String, Backing) {
    sqlx::any::install_default_drivers();
    let name = format!("mp_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin_url)
        .await
        .expect("postgres reachable");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("create database");
    let url = match admin_url.rsplit_once('/') {
        Some((server, _db)) => format!("{server}/{name}"),
        None => panic!("MEMBERPASS_TEST_POSTGRES_URL needs a database path"),
    };
    (url, Backing::Postgres { admin_url, name })
}

impl TestApp {
    pub fn pool(&self) -> &AnyPool {
        self.service.db().pool()
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.backing, Backing::Postgres { .. })
    }

    /// Stops the server and starts another on the same database (a restart).
    pub async fn restart(mut self, tweak: impl FnOnce(&mut ServeConfig)) -> TestApp {
        self.stop_server().await;
        let backing = std::mem::replace(&mut self.backing, Backing::Sqlite(std::path::PathBuf::new()));
        let url = self.database_url.clone();
        start(url, backing, tweak).await
    }

    async fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Seeds the demo data and returns the ids the tests use.
    pub async fn world(&self) -> World {
        self.service.seed_demo().await.expect("demo seeds");
        let one = |sql: &'static str| async move {
            sqlx::query_scalar::<_, String>(sql)
                .fetch_one(self.pool())
                .await
                .expect(sql)
        };
        let team_a = one("SELECT team_id FROM team_members m JOIN users u ON u.id = m.user_id WHERE u.email = 'demo@memberpass.test'").await;
        let team_b = one("SELECT team_id FROM team_members m JOIN users u ON u.id = m.user_id WHERE u.email = 'other@memberpass.test'").await;
        let p1 = one("SELECT id FROM projects WHERE handle = 'trading-signals'").await;
        let p2 = one("SELECT id FROM projects WHERE handle = 'morning-yoga'").await;
        let resource = one("SELECT r.id FROM project_resources r JOIN projects p ON p.id = r.project_id WHERE p.handle = 'trading-signals' ORDER BY r.id LIMIT 1").await;
        let plan = one("SELECT l.id FROM plans l JOIN projects p ON p.id = l.project_id WHERE p.handle = 'trading-signals' AND l.name = 'Monthly'").await;
        // Two different customers: ban/kick end the member's subscriptions, so the subscription
        // the tests cancel belongs to someone else.
        let pairs: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.id, s.id FROM members m JOIN subscriptions s ON s.member_id = m.id JOIN projects p ON p.id = m.project_id \
             WHERE p.handle = 'trading-signals' AND m.status = 'customer' AND s.status = 'active' ORDER BY m.id LIMIT 2",
        )
        .fetch_all(self.pool())
        .await
        .unwrap();
        let (member, subscription) = (pairs[0].0.clone(), pairs[1].1.clone());
        // The demo's own read token (of team A's owner): minting another would change the
        // token counts other tests check.
        let token = one("SELECT id FROM tokens WHERE revoked_at IS NULL ORDER BY created_at LIMIT 1").await;
        World {
            team_a,
            team_b,
            p1,
            p2,
            resource,
            plan,
            member,
            subscription,
            spare_token: token.clone(),
            token,
        }
    }

    /// Sets the team's approval policy to hold no call on any surface (as the operator's
    /// `memberpass team policy --approval OP=none` does), for tests of other rules.
    pub async fn hold_nothing(&self, team: &str) {
        let held = memberpass::domain::approval::HELD_ON_MCP_BY_DEFAULT;
        let change = memberpass::service::accounts::approvals::PolicyChange {
            approvals: held.iter().map(|op| format!("{op}=none")).collect(),
            approver: None,
        };
        self.service
            .change_approval_policy(&memberpass::service::Caller::system(), team, &change)
            .await
            .expect("the policy changes");
    }

    /// Mints a token for `email` in `team` through the service (as the CLI does).
    pub async fn mint(&self, email: &str, team: &str, abilities: &[Ability], projects: &[&str]) -> String {
        let minted = self
            .service
            .mint_token(
                &Caller::system(),
                MintRequest {
                    team_id: team.to_owned(),
                    user_email: email.to_owned(),
                    name: "test token".to_owned(),
                    abilities: abilities.iter().map(|a| a.as_str().to_owned()).collect(),
                    project_ids: projects.iter().map(|p| p.to_string()).collect(),
                    expires_in_ms: None,
                    allowed_ips: Vec::new(),
                    replaces: None,
                },
            )
            .await
            .expect("mint");
        minted.secret.expose_secret().to_owned()
    }

    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::from_response(req.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Audit entries of one token, oldest first.
    pub async fn audit_of(&self, token: &str) -> Vec<AuditSeen> {
        let id = token_id(token);
        sqlx::query_as::<_, AuditSeen>(
            "SELECT event, actor_kind, causer_id, token_id, subject_type, subject_id, outcome, error_code, team_id \
             FROM audit_log WHERE token_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await
        .unwrap()
    }

    /// Everything an operation could change, as one comparable string.
    pub async fn state(&self) -> String {
        let mut out = String::new();
        for sql in [
            "SELECT id || name || handle || COALESCE(description, '') || CAST(active AS TEXT) FROM projects ORDER BY id",
            "SELECT id || title FROM project_resources ORDER BY id",
            "SELECT id || name || CAST(active AS TEXT) FROM plans ORDER BY id",
            "SELECT id || status || COALESCE(status_reason, '') FROM members ORDER BY id",
            "SELECT id || status FROM subscriptions ORDER BY id",
            "SELECT id || status FROM jobs ORDER BY id",
            "SELECT id FROM access_codes ORDER BY id",
            "SELECT id || COALESCE(CAST(revoked_at AS TEXT), '') FROM tokens ORDER BY id",
        ] {
            let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(self.pool()).await.unwrap();
            out.push_str(&rows.join(","));
            out.push('\n');
        }
        out
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(self.pool())
            .await
            .unwrap()
    }

    /// Runs the real binary against this app's database. Off the runtime's thread: the server
    /// shares this runtime and must keep serving while the binary runs.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"));
        cmd.arg("--database-url")
            .arg(&self.database_url)
            .args(args)
            .env("MEMBERPASS_LOG", "warn");
        tokio::task::spawn_blocking(move || cmd.output().expect("binary runs"))
            .await
            .unwrap()
    }
}

pub fn token_id(token: &str) -> String {
    token[9..21].to_owned()
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditSeen {
    pub event: String,
    pub actor_kind: String,
    pub causer_id: Option<String>,
    pub token_id: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub outcome: String,
    pub error_code: Option<String>,
    pub team_id: Option<String>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    pub async fn from_response(res: reqwest::Response) -> Reply {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap_or_default();
        let body =
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, headers, body }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the §4 envelope with this code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        let e = &self.body["error"];
        assert_eq!(e["code"], code, "{:#}", self.body);
        for key in ["message", "docs_url", "remediation", "request_id"] {
            assert!(e[key].is_string(), "envelope lacks {key}: {:#}", self.body);
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        remove(std::mem::replace(
            &mut self.backing,
            Backing::Sqlite(std::path::PathBuf::new()),
        ));
    }
}

/// A fresh database that no server of this process uses, for tests that run the real binary
/// against it; removed when dropped, like a [`TestApp`]'s.
pub struct ScratchDatabase {
    pub url: String,
    backing: Backing,
}

pub async fn scratch_database() -> ScratchDatabase {
    let (url, backing) = fresh_database().await;
    ScratchDatabase { url, backing }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        remove(std::mem::replace(
            &mut self.backing,
            Backing::Sqlite(std::path::PathBuf::new()),
        ));
    }
}

fn remove(backing: Backing) {
    match backing {
        Backing::Sqlite(dir) if !dir.as_os_str().is_empty() => {
            let _ = std::fs::remove_dir_all(dir);
        }
        Backing::Postgres { admin_url, name } => memberpass::store::drop_database_blocking(admin_url, name),
        _ => {}
    }
}
