//! `cargo run --release --example bench [-- --seconds 5 --connections 16 --database-url URL
//! --synchronous full|normal --log FILE|none --audit-entries N --audit-days 30
//! --activity-indexes on|off --rate-limits on|off --only SUBSTRING]`
//!
//! Runs the real server (SQLite in a temp dir by default) and drives it over loopback HTTP,
//! reporting throughput and latency per scenario next to a baseline measured in the same run:
//! `/healthz` (no auth, no database). The cost of the security boundary is the difference. A bare
//! axum route on its own listener shows what the server's middleware costs `/healthz` itself.
//! The server logs as the binary does (one line per request), to a file in the temp dir unless
//! `--log` names one or says `none`. The allocator is the binary's (mimalloc).
//!
//! With `--audit-entries N`, N entries are then seeded into the audit log (see `seed.rs`) and the
//! same `GET /v1/me` and `POST /v1/projects` run again, followed by `GET /v1/activity` with each
//! of its filters: how the cost grows with the log. `--audit-entries 0` runs those on the log a
//! kept database already holds (`--database-url` of an earlier run), without seeding more.

mod activity;
mod seed;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use memberpass::app::{Application, ServeConfig};
use memberpass::domain::ability::Ability;
use memberpass::domain::token::{TokenEnv, TokenSecret};
use memberpass::service::Caller;
use memberpass::service::Service;
use memberpass::service::accounts::tokens::MintRequest;

struct Args {
    seconds: u64,
    connections: usize,
    database_url: Option<String>,
    synchronous: memberpass::store::Synchronous,
    /// Seed this many entries (0: none, on a database seeded by an earlier run), then run the
    /// scenarios that depend on the log's size.
    audit_entries: Option<u64>,
    audit_days: u64,
    activity_indexes: bool,
    /// Rate limits on (at a million a minute: every request takes from its buckets, none is
    /// refused) or off, as by default.
    rate_limits: bool,
    log: Option<String>,
    /// Runs only the scenarios whose name contains this (and the baseline).
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 5,
        connections: 16,
        database_url: None,
        synchronous: memberpass::store::Synchronous::Full,
        audit_entries: None,
        audit_days: 30,
        activity_indexes: true,
        rate_limits: false,
        log: Some(String::new()),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--database-url" => a.database_url = Some(value),
            "--log" => a.log = (value != "none").then_some(value),
            "--only" => a.only = Some(value),
            "--synchronous" => {
                a.synchronous = match value.as_str() {
                    "full" => memberpass::store::Synchronous::Full,
                    "normal" => memberpass::store::Synchronous::Normal,
                    _ => panic!("--synchronous full|normal"),
                }
            }
            "--audit-entries" => a.audit_entries = Some(value.parse().expect("--audit-entries N")),
            "--audit-days" => a.audit_days = value.parse().expect("--audit-days N"),
            "--activity-indexes" => {
                a.activity_indexes = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => panic!("--activity-indexes on|off"),
                }
            }
            "--rate-limits" => {
                a.rate_limits = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    _ => panic!("--rate-limits on|off"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Which bearer token a scenario's requests carry.
#[derive(Clone, PartialEq, Eq)]
enum Auth {
    None,
    /// Well-formed, checksum valid, never minted: the full lookup path, answered 401.
    UnknownId,
    /// The bench token: every ability, the whole team.
    Team,
    /// Another token minted for the scenario.
    Bearer(String),
}

struct Scenario {
    name: String,
    method: reqwest::Method,
    path: String,
    body: Option<serde_json::Value>,
    auth: Auth,
    /// An MCP JSON-RPC call: sent with the Streamable HTTP headers.
    mcp: bool,
    /// Sent to the bare axum listener instead of the server.
    bare: bool,
}

impl Scenario {
    fn get(name: impl Into<String>, path: impl Into<String>, auth: Auth) -> Self {
        Scenario {
            name: name.into(),
            method: reqwest::Method::GET,
            path: path.into(),
            body: None,
            auth,
            mcp: false,
            bare: false,
        }
    }

    fn post(name: impl Into<String>, path: &str, body: serde_json::Value, auth: Auth) -> Self {
        Scenario {
            method: reqwest::Method::POST,
            body: Some(body),
            ..Scenario::get(name, path, auth)
        }
    }

    /// `tools/call` of one tool, as an MCP client sends it (protocol 2025-11-25, stateless).
    fn tool_call(name: &str, tool: &str, auth: Auth) -> Self {
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": {}}});
        Scenario {
            mcp: true,
            ..Scenario::post(name, "/mcp", body, auth)
        }
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = args();
    let dir = std::env::temp_dir().join(format!("memberpass-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = match a.log.as_deref() {
        Some("") => Some(dir.join("server.log")),
        Some(path) => Some(std::path::PathBuf::from(path)),
        None => None,
    };
    let _log = log_path
        .as_ref()
        .map(|path| memberpass::telemetry::init(std::fs::File::create(path).expect("log file"), false));
    let bare = bare_axum().await;
    let url = a
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let mut config = ServeConfig::local(url.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let limit = if a.rate_limits { 1_000_000 } else { 0 };
    config.rate_limit_rest = limit;
    config.rate_limit_mcp = limit;
    config.rate_limit_auth_failures = limit;
    config.sqlite_synchronous = a.synchronous;
    let app = Application::build(config).await.expect("server builds");
    let base = format!("http://{}", app.local_addr());
    let service = app.service().clone();
    if !a.activity_indexes {
        activity::undo_migration(service.db())
            .await
            .expect("migration 0004 undone");
    }
    let demo = service.seed_demo().await.expect("demo data");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.connections)
        .build()
        .unwrap();
    let team_token = mint(&service, &demo.team_id, &demo.email, vec![]).await;
    let projects = json(client.get(format!("{base}/v1/projects")).bearer_auth(&team_token)).await;
    let project = projects["data"][0]["id"].as_str().unwrap().to_owned();

    let scenarios = vec![
        Scenario::get("baseline GET /healthz", "/healthz", Auth::None),
        Scenario {
            bare: true,
            ..Scenario::get("bare axum GET /healthz", "/healthz", Auth::None)
        },
        Scenario::get("GET /readyz (db ping)", "/readyz", Auth::None),
        Scenario::get("GET /v1/me", "/v1/me", Auth::Team),
        Scenario::get(
            "GET /v1/projects/{id}/members",
            format!("/v1/projects/{project}/members?limit=25"),
            Auth::Team,
        ),
        Scenario::get("GET /v1/projects (REST)", "/v1/projects", Auth::Team),
        Scenario::tool_call("MCP tools/call list_projects", "list_projects", Auth::Team),
        Scenario::tool_call("MCP tools/call (unknown token ID)", "list_projects", Auth::UnknownId),
        Scenario::post("POST /v1/projects", "/v1/projects", new_project(), Auth::Team),
        Scenario::get("GET /v1/me (unknown token ID)", "/v1/me", Auth::UnknownId),
    ];

    println!(
        "memberpass bench: {} connections, {} s per scenario, database {} (SQLite synchronous {:?}), activity indexes {}, rate limits {}, log {}",
        a.connections,
        a.seconds,
        scheme(&url),
        a.synchronous,
        if a.activity_indexes { "on" } else { "off" },
        if a.rate_limits { "on (1 000 000/min)" } else { "off" },
        log_path.as_ref().map_or("none".into(), |p| p.display().to_string())
    );
    let mut bench = Bench {
        client,
        base,
        bare,
        team_token,
        service: service.clone(),
        seconds: a.seconds,
        connections: a.connections,
        baseline: None,
        only: a.only.clone(),
    };
    bench.header();
    for s in scenarios {
        bench.run(s).await;
    }

    if let Some(n) = a.audit_entries {
        if n > 0 {
            let seeded = seed::audit_entries(service.db(), &url, &demo.team_id, n, a.audit_days)
                .await
                .expect("audit entries seeded");
            println!(
                "seeded {n} audit entries over {} days in {:.1} s ({:.0} entries/s){}",
                a.audit_days,
                seeded.took.as_secs_f64(),
                n as f64 / seeded.took.as_secs_f64(),
                match seeded.analyze_took {
                    d if d.is_zero() => String::new(),
                    d => format!(", then VACUUM ANALYZE in {:.1} s", d.as_secs_f64()),
                },
            );
        }
        let samples = seed::samples(service.db(), &demo.team_id)
            .await
            .expect("filter values from the log");
        let quiet = vec![samples.quiet_project_id.clone()];
        let quiet_token = mint(&service, &demo.team_id, &demo.email, quiet).await;
        let mut fresh = Vec::new();
        for _ in 0..2 {
            fresh.push(create_project(&bench.client, &bench.base, &bench.team_token).await);
        }
        let fresh_token = mint(&service, &demo.team_id, &demo.email, fresh).await;
        let entries = {
            let mut conn = service.db().pool().acquire().await.unwrap();
            memberpass::store::audit::head(&mut conn).await.unwrap().0
        };
        bench.header();
        let log = format!("{} entries", short(entries));
        bench
            .run(Scenario::get(format!("GET /v1/me ({log})"), "/v1/me", Auth::Team))
            .await;
        bench
            .run(Scenario::post(
                format!("POST /v1/projects ({log})"),
                "/v1/projects",
                new_project(),
                Auth::Team,
            ))
            .await;
        for s in activity::scenarios(&samples, quiet_token, fresh_token) {
            bench.run(s).await;
        }
    }
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn new_project() -> serde_json::Value {
    serde_json::json!({"name": "Bench project"})
}

/// A project made now, after the seeded log: the log holds nothing about it.
async fn create_project(client: &reqwest::Client, base: &str, token: &str) -> String {
    let created = json(
        client
            .post(format!("{base}/v1/projects"))
            .bearer_auth(token)
            .json(&new_project()),
    )
    .await;
    created["data"]["id"].as_str().expect("a project id").to_owned()
}

/// Sends a request set up before the run and reads its JSON answer.
async fn json(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send().await.unwrap().json().await.unwrap()
}

/// A token of the demo owner with every ability; scoped to `project_ids` when not empty.
async fn mint(service: &Service, team_id: &str, email: &str, project_ids: Vec<String>) -> String {
    let minted = service
        .mint_token(
            &Caller::system(),
            MintRequest {
                team_id: team_id.to_owned(),
                user_email: email.to_owned(),
                name: "bench".into(),
                abilities: Ability::ALL.iter().map(|a| a.as_str().to_owned()).collect(),
                project_ids,
                expires_in_ms: None,
                allowed_ips: Vec::new(),
                replaces: None,
            },
        )
        .await
        .unwrap();
    minted.secret.expose_secret().to_owned()
}

struct Bench {
    client: reqwest::Client,
    base: String,
    /// The bare axum listener.
    bare: String,
    team_token: String,
    service: Service,
    seconds: u64,
    connections: usize,
    baseline: Option<f64>,
    only: Option<String>,
}

impl Bench {
    fn header(&self) {
        println!(
            "{:<48} {:>10} {:>10} {:>10} {:>10}",
            "scenario", "req/s", "p50 ms", "p99 ms", "errors"
        );
    }

    /// Runs one scenario on every connection for the set time and prints its row.
    async fn run(&mut self, s: Scenario) {
        if self.baseline.is_some() && self.only.as_ref().is_some_and(|only| !s.name.contains(only.as_str())) {
            return;
        }
        let (batches_before, entries_before) = self.service.batch_stats();
        let s = Arc::new(s);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(self.seconds);
        let mut workers = Vec::new();
        for _ in 0..self.connections {
            let token = match &s.auth {
                Auth::None => String::new(),
                Auth::UnknownId => TokenSecret::generate(TokenEnv::Test).expose_secret().to_owned(),
                Auth::Team => self.team_token.clone(),
                Auth::Bearer(token) => token.clone(),
            };
            let base = if s.bare { self.bare.clone() } else { self.base.clone() };
            let (client, s) = (self.client.clone(), s.clone());
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                let mut first_error = None;
                while Instant::now() < deadline {
                    let mut req = client.request(s.method.clone(), format!("{base}{}", s.path));
                    if s.auth != Auth::None {
                        req = req.bearer_auth(&token);
                    }
                    if let Some(b) = &s.body {
                        req = req.json(b);
                    }
                    if s.mcp {
                        req = req
                            .header("accept", "application/json, text/event-stream")
                            .header("mcp-protocol-version", "2025-11-25");
                    }
                    let started = Instant::now();
                    let error = match req.send().await {
                        Ok(res) => {
                            let status = res.status();
                            let body = res.bytes().await.unwrap_or_default();
                            (status.is_success() == (s.auth == Auth::UnknownId)).then(|| {
                                let body = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
                                format!("{status} {body}")
                            })
                        }
                        Err(e) => Some(e.to_string()),
                    };
                    latencies.push(started.elapsed());
                    if let Some(e) = error {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
                (latencies, errors, first_error)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        let mut first_error = None;
        for w in workers {
            let (l, e, first) = w.await.unwrap();
            all.extend(l);
            errors += e;
            first_error = first_error.or(first);
        }
        // Until the last answer: a slow scenario's last requests end well after the deadline.
        let elapsed = started.elapsed();
        all.sort();
        let rps = all.len() as f64 / elapsed.as_secs_f64();
        let pct = |p: f64| {
            all.get(((all.len() as f64 - 1.0) * p) as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let relative = match self.baseline {
            None => {
                self.baseline = Some(rps);
                String::new()
            }
            Some(b) => format!("  ({:.0}% of baseline)", rps / b * 100.0),
        };
        let (batches, entries) = self.service.batch_stats();
        let batched = match batches - batches_before {
            0 => String::new(),
            n => format!("  [{:.1} entries/batch]", (entries - entries_before) as f64 / n as f64),
        };
        println!(
            "{:<48} {:>10.0} {:>10.2} {:>10.2} {:>10}{relative}{batched}",
            s.name,
            rps,
            pct(0.5),
            pct(0.99),
            errors
        );
        if let Some(e) = first_error {
            println!("    first error: {e}");
        }
    }
}

/// `5012345` as `5.01M`, `123456` as `123k`.
fn short(n: i64) -> String {
    match n {
        n if n >= 1_000_000 => format!("{:.2}M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// A bare axum route on a listener of its own: the floor under `/healthz`.
async fn bare_axum() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

fn scheme(url: &str) -> &str {
    url.split(':').next().unwrap_or("?")
}
