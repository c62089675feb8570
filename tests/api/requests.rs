//! Idempotency keys, rate limits, background jobs, and the unauthenticated endpoints.

use std::time::Duration;

use memberpass::domain::ability::Ability;
use memberpass::service::ops::catalog;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, TestApp, spawn_app, spawn_with};

async fn post_with_key(app: &TestApp, token: &str, key: &str, body: Value) -> crate::helpers::Reply {
    let res = app
        .client
        .post(format!("{}/v1/projects", app.base))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    crate::helpers::Reply::from_response(res).await
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_response_and_refuses_a_different_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectCreate], &[]).await;
    let before = app.count("projects").await;
    let first = post_with_key(&app, &token, "k-1", json!({"name": "Once"})).await;
    assert_eq!(first.status, 201);
    let again = post_with_key(&app, &token, "k-1", json!({"name": "Once"})).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    assert_eq!(app.count("projects").await, before + 1);

    post_with_key(&app, &token, "k-1", json!({"name": "Twice"}))
        .await
        .assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    let other = post_with_key(&app, &token, "k-2", json!({"name": "Twice"})).await;
    assert_eq!(other.status, 201);
    assert_eq!(app.count("projects").await, before + 2);
}

#[tokio::test]
async fn rest_calls_past_the_limit_get_429_with_retry_after() {
    let app = spawn_with(|c| c.rate_limit_rest = 3).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/me", &token).await.status, 200);
    }
    let limited = app.get("/v1/me", &token).await;
    limited.assert_error(429, "RATE_LIMITED");
    assert!(limited.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    let other = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    assert_eq!(app.get("/v1/me", &other).await.status, 200, "buckets are per token");
}

#[tokio::test]
async fn repeated_failed_authentications_are_refused_with_429() {
    let app = spawn_with(|c| c.rate_limit_auth_failures = 2).await;
    let w = app.world().await;
    let good = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    for _ in 0..2 {
        app.get("/v1/me", "mpt_test_nope")
            .await
            .assert_error(401, "AUTHENTICATION_REQUIRED");
    }
    let refused = app.get("/v1/me", "mpt_test_nope").await;
    refused.assert_error(429, "RATE_LIMITED");
    assert!(refused.headers.contains_key("retry-after"));
    app.get("/v1/me", &good).await.assert_error(429, "RATE_LIMITED");
}

async fn wait_for_job(app: &TestApp, token: &str, job: &str) -> Value {
    for _ in 0..400 {
        let reply = app.get(&format!("/v1/jobs/{job}"), token).await;
        assert_eq!(reply.status, 200, "{:#}", reply.body);
        if reply.body["data"]["status"] == "completed" || reply.body["data"]["status"] == "failed" {
            return reply.body["data"].clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {job} did not finish");
}

#[tokio::test]
async fn bulk_generation_runs_as_a_job_and_codes_are_only_ever_listed_masked() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let started = app
        .post(
            &format!("/v1/plans/{}/access-codes", w.plan),
            &token,
            json!({"quantity": 25, "expires_in_days": 30}),
        )
        .await;
    assert_eq!(started.status, 202, "{:#}", started.body);
    assert_eq!(started.body["data"]["status"], "queued");
    let job = wait_for_job(&app, &token, started.body["data"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    assert_eq!(job["result"]["generated"], 25);

    let listed = app
        .get(&format!("/v1/plans/{}/access-codes?limit=100", w.plan), &token)
        .await;
    let codes = listed.body["data"].as_array().unwrap();
    assert_eq!(codes.len(), 25);
    assert_eq!(listed.body["meta"]["total"], 25);
    let clear: Vec<String> = sqlx::query_scalar("SELECT codes FROM access_code_downloads")
        .fetch_all(app.pool())
        .await
        .unwrap();
    let clear: Vec<String> = serde_json::from_str(&clear[0]).unwrap();
    let listing = listed.body.to_string();
    for c in &clear {
        assert!(!listing.contains(c.as_str()), "a clear code was listed");
    }
    assert!(codes.iter().all(|c| c["code"].as_str().unwrap().contains("********")));
    let unused = app
        .get(&format!("/v1/plans/{}/access-codes?status=redeemed", w.plan), &token)
        .await;
    assert_eq!(unused.body["meta"]["total"], 0);
    for bad in [
        json!({"quantity": 0}),
        json!({"quantity": 10001}),
        json!({"quantity": 5, "expires_in_days": 0}),
    ] {
        app.post(&format!("/v1/plans/{}/access-codes", w.plan), &token, bad)
            .await
            .assert_error(422, "VALIDATION_FAILED");
    }
}

#[tokio::test]
async fn a_queued_job_survives_a_restart() {
    let app = spawn_with(|c| c.run_jobs = false).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let started = app
        .post(
            &format!("/v1/plans/{}/access-codes", w.plan),
            &token,
            json!({"quantity": 3}),
        )
        .await;
    let job = started.body["data"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        app.get(&format!("/v1/jobs/{job}"), &token).await.body["data"]["status"],
        "queued"
    );
    let app = app.restart(|_| {}).await;
    let done = wait_for_job(&app, &token, &job).await;
    assert_eq!(done["status"], "completed");
}

#[tokio::test]
async fn health_readiness_and_generated_catalogs_are_served() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let r = app.call(Method::GET, path, None, None).await;
        assert_eq!(r.status, 200, "{path}");
    }
    let openapi = app.call(Method::GET, "/openapi.json", None, None).await.body;
    assert_eq!(openapi["openapi"], "3.1.0");
    for op in catalog::all() {
        let spec = op.spec();
        let item = &openapi["paths"][spec.path][spec.method.as_str().to_ascii_lowercase()];
        assert_eq!(item["operationId"], spec.name);
        assert_eq!(
            item["x-required-ability"],
            json!(spec.ability.map(|a| a.as_str())),
            "{}",
            spec.name
        );
    }
    let abilities = app.call(Method::GET, "/abilities.json", None, None).await.body;
    assert_eq!(abilities["data"].as_array().unwrap().len(), Ability::ALL.len());
    assert!(
        abilities["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["description"].is_string() && a["permits_writes"].is_boolean())
    );
    let codes = app.call(Method::GET, "/error-codes.json", None, None).await.body;
    let names: Vec<&str> = codes["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    for code in [
        "AUTHENTICATION_REQUIRED",
        "TOKEN_MISSING_ABILITY",
        "RESOURCE_NOT_FOUND",
        "RATE_LIMITED",
        "INTERNAL_ERROR",
    ] {
        assert!(names.contains(&code));
    }
}

#[tokio::test]
async fn serve_refuses_plain_http_off_loopback() {
    let dir = std::env::temp_dir().join(format!("memberpass-serve-{}", uuid::Uuid::now_v7().simple()));
    let out = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"))
                .args(["--data-dir", dir.to_str().unwrap(), "serve", "--listen", "0.0.0.0:0"])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing plain HTTP"));
}

#[tokio::test]
async fn serve_speaks_tls_with_a_self_signed_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let app = spawn_with(|c| c.tls = memberpass::app::Tls::SelfSigned).await;
    assert!(app.base.starts_with("http://"));
    let https = app.base.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let res = client.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let plain = app.client.get(format!("{}/healthz", app.base)).send().await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP must not be served on a TLS port"
    );
}

/// The README's MCP tools table, exactly as the server registers the tools.
#[test]
fn the_readme_lists_the_mcp_tools_as_registered() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let tools = memberpass::web::mcp::tools::catalog_json();
    let mut table = vec![
        "| tool | title | ability | hints |".to_owned(),
        "|---|---|---|---|".to_owned(),
    ];
    for t in tools["data"].as_array().unwrap() {
        let a = &t["annotations"];
        let hints: Vec<&str> = [
            ("readOnlyHint", "read-only"),
            ("destructiveHint", "destructive"),
            ("idempotentHint", "idempotent"),
        ]
        .into_iter()
        .filter(|(k, _)| a[*k] == true)
        .map(|(_, v)| v)
        .collect();
        let ability = t["ability"].as_str().map_or("—".to_owned(), |a| format!("`{a}`"));
        table.push(format!(
            "| `{}` | {} | {ability} | {} |",
            t["name"].as_str().unwrap(),
            t["title"].as_str().unwrap(),
            hints.join(", ")
        ));
    }
    let table = table.join("\n");
    assert!(readme.contains(&table), "README's tools table differs from:\n{table}");
}

#[test]
fn the_readme_names_every_operation_ability_and_error_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for op in catalog::all() {
        let spec = op.spec();
        assert!(
            readme.contains(&format!("`{}`", spec.name)),
            "README lacks {}",
            spec.name
        );
        assert!(
            readme.contains(&format!("{} {}", spec.method, spec.path)),
            "README lacks the route of {}",
            spec.name
        );
    }
    for a in Ability::ALL {
        assert!(readme.contains(&format!("`{}`", a.as_str())), "README lacks {a}");
    }
    for c in memberpass::domain::error::ErrorCode::ALL {
        assert!(
            readme.contains(&format!("`{}`", c.as_str())),
            "README lacks {}",
            c.as_str()
        );
    }
}

#[tokio::test]
async fn serve_uses_certificate_files_when_given() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("memberpass-tls-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let app = spawn_with(|c| {
        c.tls = memberpass::app::Tls::Files {
            cert: cert_path.clone(),
            key: key_path.clone(),
        }
    })
    .await;
    let https = app.base.replace("http://", "https://");
    let client = reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert_eq!(
        client.get(format!("{https}/readyz")).send().await.unwrap().status(),
        200
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_with(|c| c.header_read_timeout = Duration::from_millis(300)).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server kept a half-sent request open");
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));
}

#[tokio::test]
async fn x_forwarded_for_is_trusted_only_behind_a_tls_proxy() {
    for (behind_proxy, expected) in [(false, "127.0.0.1"), (true, "203.0.113.7")] {
        let app = spawn_with(|c| c.behind_tls_proxy = behind_proxy).await;
        let w = app.world().await;
        let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
        let res = app
            .client
            .get(format!("{}/v1/me", app.base))
            .bearer_auth(&token)
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let ip: Option<String> = sqlx::query_scalar("SELECT ip FROM audit_log WHERE event = 'get_token_info'")
            .fetch_one(app.pool())
            .await
            .unwrap();
        assert_eq!(ip.as_deref(), Some(expected), "behind_proxy = {behind_proxy}");
    }
}

#[tokio::test]
async fn a_request_stuck_behind_a_lock_is_abandoned_and_changes_nothing() {
    let app = spawn_with(|c| c.request_timeout = Duration::from_secs(2)).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectCreate], &[]).await;
    let before = app.count("projects").await;
    // Hold the audit chain's head: every audited call now waits for it.
    let mut blocker = app.service.db().begin_write().await.unwrap();
    sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
        .execute(&mut *blocker)
        .await
        .unwrap();
    let stuck = app.post("/v1/projects", &token, json!({"name": "Stuck"})).await;
    stuck.assert_error(500, "INTERNAL_ERROR");
    blocker.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.count("projects").await,
        before,
        "the abandoned request wrote nothing"
    );
    let later = app.post("/v1/projects", &token, json!({"name": "Later"})).await;
    assert_eq!(later.status, 201, "{:#}", later.body);
    let verify = app.cli(&["audit", "verify"]).await;
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));
}

/// The catalogs are checked in under `docs/` for clients to read without a server; this fails
/// when the code and the copies drift. `MEMBERPASS_UPDATE_DOCS=1 cargo test` rewrites them.
#[test]
fn the_checked_in_catalogs_match_the_code() {
    let generated = [
        (
            "openapi.json",
            memberpass::web::openapi::openapi_json("http://127.0.0.1:8080"),
        ),
        ("abilities.json", memberpass::domain::ability::catalog_json()),
        ("error-codes.json", memberpass::domain::error::catalog_json()),
        ("mcp-tools.json", memberpass::web::mcp::tools::catalog_json()),
    ];
    for (name, value) in generated {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
        let text = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if std::env::var_os("MEMBERPASS_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &text).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == text,
            "docs/{name} is out of date: run MEMBERPASS_UPDATE_DOCS=1 cargo test"
        );
    }
}
