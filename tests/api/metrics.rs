//! Prometheus metrics (issue 22, item 1): `/metrics` only on `--metrics-listen`, exact increments
//! for known traffic, label values from closed sets (a thousand distinct paths and tokens add no
//! series), and a text format `promtool check metrics` accepts.

use memberpass::domain::ability::Ability;
use serde_json::json;

use crate::helpers::{OWNER_A, TestApp, spawn_with};

async fn scrape(app: &TestApp) -> String {
    let url = app.metrics_url.as_deref().expect("--metrics-listen was given");
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

/// The value of the series `name{labels}` (labels as the text prints them), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn series_count(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .count()
}

#[tokio::test]
async fn known_traffic_reads_as_exactly_those_increments() {
    let app = spawn_with(|c| {
        c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        c.rate_limit_rest = 6;
    })
    .await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    // Not on the main listener.
    let main = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(main.status(), 404);

    let before = scrape(&app).await;
    let ok = r#"memberpass_operations_total{surface="rest",operation="list_projects",outcome="success"}"#;
    let denied = r#"memberpass_operations_total{surface="rest",operation="create_project",outcome="denied"}"#;
    let failed = r#"memberpass_operations_total{surface="rest",operation="list_projects",outcome="failed"}"#;
    let limited = r#"memberpass_rate_limited_total{bucket="rest"}"#;
    let unknown = r#"memberpass_auth_failures_total{reason="malformed"}"#;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    }
    for _ in 0..2 {
        let r = app.post("/v1/projects", &token, json!({"name": "nope"})).await;
        assert_eq!(r.status, 403);
    }
    assert_eq!(app.get("/v1/projects?limit=abc", &token).await.status, 422);
    assert_eq!(app.get("/v1/projects", &token).await.status, 429);
    assert_eq!(app.get("/v1/projects", "not-a-token").await.status, 401);

    let after = scrape(&app).await;
    for (series, n) in [(ok, 3.0), (denied, 2.0), (failed, 1.0), (limited, 1.0), (unknown, 1.0)] {
        assert_eq!(value(&after, series) - value(&before, series), n, "{series}\n{after}");
    }
    let http_2xx = r#"memberpass_http_requests_total{surface="rest",class="2xx"}"#;
    assert_eq!(value(&after, http_2xx) - value(&before, http_2xx), 3.0);
    for name in [
        "memberpass_operation_duration_seconds_bucket",
        "memberpass_audit_batch_entries_bucket",
        "memberpass_audit_commit_duration_seconds_count",
        "memberpass_audit_queue_depth",
        "memberpass_audit_chain_head_seq",
        "memberpass_db_pool_connections{pool=\"write\",state=\"idle\"}",
        "memberpass_jobs{status=\"queued\"}",
    ] {
        assert!(after.contains(name), "{name} missing:\n{after}");
    }
    let head: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let shown = value(&scrape(&app).await, "memberpass_audit_chain_head_seq") as i64;
    assert!(shown >= head - 1 && shown <= head + 1, "{shown} vs {head}");
    promtool(&after);
}

#[tokio::test]
async fn a_thousand_distinct_paths_and_tokens_add_no_series() {
    let app = spawn_with(|c| c.metrics_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let once = |i: usize| {
        let (app, token) = (&app, token.clone());
        async move {
            app.get(&format!("/v1/nothing-{i}/x{i}"), &token).await;
            app.get(&format!("/v1/projects/{i}"), &token).await;
            app.get("/v1/projects", &format!("mpt_test_{i:012}_{}", "x".repeat(38)))
                .await;
            app.client
                .get(format!("{}/mpt_live_{i}", app.base))
                .send()
                .await
                .unwrap();
        }
    };
    once(0).await;
    let first = series_count(&scrape(&app).await);
    for i in 1..1000 {
        once(i).await;
    }
    let text = scrape(&app).await;
    assert_eq!(series_count(&text), first, "{text}");
    assert!(!text.contains("mpt_"), "no token in a label");
    assert!(!text.contains("nothing-"), "no raw path in a label");
}

/// `promtool check metrics` when it is installed (CI installs it: `MEMBERPASS_PROMTOOL=required`).
fn promtool(text: &str) {
    use std::io::Write;
    let required = std::env::var("MEMBERPASS_PROMTOOL").is_ok_and(|v| v == "required");
    let child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(!required, "promtool: {e}");
            eprintln!("promtool not installed: the text format was not checked");
            return;
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn without_the_flag_there_is_no_listener_and_nothing_is_kept() {
    let app = crate::helpers::spawn_app().await;
    assert!(app.metrics_url.is_none());
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    assert_eq!(app.service.metrics_text().await, "", "no registry, no series");
    let main = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(main.status(), 404);
}
