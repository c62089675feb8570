//! `cargo run --release --example bench [-- --seconds 5 --connections 16 --database-url URL --synchronous full|normal]`
//!
//! Runs the real server (SQLite in a temp dir by default) and drives it over loopback HTTP,
//! reporting throughput and latency per scenario next to a baseline measured in the same run:
//! `/healthz` (no auth, no database). The cost of the security boundary is the difference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memberpass::app::{Application, ServeConfig};
use memberpass::domain::ability::Ability;
use memberpass::service::tokens::{Actor, MintRequest};

struct Args {
    seconds: u64,
    connections: usize,
    database_url: Option<String>,
    synchronous: memberpass::store::Synchronous,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 5,
        connections: 16,
        database_url: None,
        synchronous: memberpass::store::Synchronous::Full,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--database-url" => a.database_url = Some(value),
            "--synchronous" => {
                a.synchronous = match value.as_str() {
                    "full" => memberpass::store::Synchronous::Full,
                    "normal" => memberpass::store::Synchronous::Normal,
                    _ => panic!("--synchronous full|normal"),
                }
            }
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

struct Scenario {
    name: &'static str,
    method: reqwest::Method,
    path: String,
    body: Option<serde_json::Value>,
    auth: bool,
    /// An MCP JSON-RPC call: sent with the Streamable HTTP headers.
    mcp: bool,
}

/// `tools/call` of one tool, as an MCP client sends it (protocol 2025-11-25, stateless).
fn tool_call(name: &str) -> Option<serde_json::Value> {
    Some(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": name, "arguments": {}}}))
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let a = args();
    let dir = std::env::temp_dir().join(format!("memberpass-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = a
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.join("bench.db").display()));
    let mut config = ServeConfig::local(url.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.rate_limit_rest = 0;
    config.rate_limit_mcp = 0;
    config.rate_limit_auth_failures = 0;
    config.sqlite_synchronous = a.synchronous;
    let app = Application::build(config).await.expect("server builds");
    let base = format!("http://{}", app.local_addr());
    let service = app.service().clone();
    let demo = service.seed_demo().await.expect("demo data");
    let minted = service
        .mint_token(
            &Actor::system(),
            MintRequest {
                team_id: demo.team_id.clone(),
                user_email: demo.email.clone(),
                name: "bench".into(),
                abilities: Ability::ALL.iter().map(|a| a.as_str().to_owned()).collect(),
                project_ids: vec![],
                expires_in_ms: None,
                replaces: None,
            },
        )
        .await
        .unwrap();
    let token = Arc::new(minted.secret.expose_secret().to_owned());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.connections)
        .build()
        .unwrap();
    let projects: serde_json::Value = client
        .get(format!("{base}/v1/projects"))
        .bearer_auth(token.as_str())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project = projects["data"][0]["id"].as_str().unwrap().to_owned();

    let scenarios = vec![
        Scenario {
            name: "baseline GET /healthz",
            method: reqwest::Method::GET,
            path: "/healthz".into(),
            body: None,
            auth: false,
            mcp: false,
        },
        Scenario {
            name: "GET /readyz (db ping)",
            method: reqwest::Method::GET,
            path: "/readyz".into(),
            body: None,
            auth: false,
            mcp: false,
        },
        Scenario {
            name: "GET /v1/me",
            method: reqwest::Method::GET,
            path: "/v1/me".into(),
            body: None,
            auth: true,
            mcp: false,
        },
        Scenario {
            name: "GET /v1/projects/{id}/members",
            method: reqwest::Method::GET,
            path: format!("/v1/projects/{project}/members?limit=25"),
            body: None,
            auth: true,
            mcp: false,
        },
        Scenario {
            name: "GET /v1/projects (REST)",
            method: reqwest::Method::GET,
            path: "/v1/projects".into(),
            body: None,
            auth: true,
            mcp: false,
        },
        Scenario {
            name: "MCP tools/call list_projects",
            method: reqwest::Method::POST,
            path: "/mcp".into(),
            body: tool_call("list_projects"),
            auth: true,
            mcp: true,
        },
        Scenario {
            name: "MCP tools/call (unknown token ID)",
            method: reqwest::Method::POST,
            path: "/mcp".into(),
            body: tool_call("list_projects"),
            auth: false,
            mcp: true,
        },
        Scenario {
            name: "POST /v1/projects",
            method: reqwest::Method::POST,
            path: "/v1/projects".into(),
            body: Some(serde_json::json!({"name": "Bench project"})),
            auth: true,
            mcp: false,
        },
        Scenario {
            name: "GET /v1/me (unknown token ID)",
            method: reqwest::Method::GET,
            path: "/v1/me".into(),
            body: None,
            auth: false,
            mcp: false,
        },
    ];

    println!(
        "memberpass bench: {} connections, {} s per scenario, database {} (SQLite synchronous {:?})",
        a.connections,
        a.seconds,
        scheme(&url),
        a.synchronous
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>10}",
        "scenario", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut baseline = None;
    for s in scenarios {
        let (batches_before, entries_before) = service.batch_stats();
        let s = Arc::new(s);
        let deadline = Instant::now() + Duration::from_secs(a.seconds);
        let mut workers = Vec::new();
        for _ in 0..a.connections {
            let (client, base, token, s) = (client.clone(), base.clone(), token.clone(), s.clone());
            let unknown = memberpass::domain::token::TokenSecret::generate(memberpass::domain::token::TokenEnv::Test);
            workers.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0u64;
                while Instant::now() < deadline {
                    let mut req = client.request(s.method.clone(), format!("{base}{}", s.path));
                    if s.auth {
                        req = req.bearer_auth(token.as_str());
                    } else if s.name.contains("unknown token ID") {
                        // Well-formed, checksum valid, never minted: the full lookup path.
                        req = req.bearer_auth(unknown.expose_secret());
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
                    let ok = match req.send().await {
                        Ok(res) => {
                            let expected_failure = s.name.contains("unknown token ID");
                            let status = res.status();
                            let _ = res.bytes().await;
                            status.is_success() != expected_failure
                        }
                        Err(_) => false,
                    };
                    latencies.push(started.elapsed());
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let mut all = Vec::new();
        let mut errors = 0;
        for w in workers {
            let (l, e) = w.await.unwrap();
            all.extend(l);
            errors += e;
        }
        all.sort();
        let rps = all.len() as f64 / a.seconds as f64;
        let pct = |p: f64| {
            all.get(((all.len() as f64 - 1.0) * p) as usize)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        let relative = match baseline {
            None => {
                baseline = Some(rps);
                String::new()
            }
            Some(b) => format!("  ({:.0}% of baseline)", rps / b * 100.0),
        };
        let (batches, entries) = service.batch_stats();
        let batched = match batches - batches_before {
            0 => String::new(),
            n => format!("  [{:.1} entries/batch]", (entries - entries_before) as f64 / n as f64),
        };
        println!(
            "{:<34} {:>10.0} {:>10.2} {:>10.2} {:>10}{relative}{batched}",
            s.name,
            rps,
            pct(0.5),
            pct(0.99),
            errors
        );
    }
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn scheme(url: &str) -> &str {
    url.split(':').next().unwrap_or("?")
}
