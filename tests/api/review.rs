//! The findings of the second adversarial review (issue 17) about the service, MCP and REST
//! surfaces, each tried again the way it was found: text the database refuses, a token as a JSON
//! key, the MCP client's self-chosen name, a busy token revoking itself, and `/mcp` from the
//! server's own origin.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use reqwest::Method;
use serde_json::{Value, json};

use crate::dashboard::{cookie, page, person};
use crate::helpers::{OWNER_A, OWNER_B, TestApp, spawn_app, spawn_with, token_id};
use crate::mcp::rpc_with;

/// A `tools/call` as a 2026-07-28 client sends it: the client's name and version in `_meta`.
async fn call_as(
    app: &TestApp,
    token: &str,
    tool: &str,
    args: Value,
    name: &str,
    version: &str,
) -> reqwest::StatusCode {
    let meta = json!({"io.modelcontextprotocol/clientInfo": {"name": name, "version": version}});
    let params = json!({"name": tool, "arguments": args, "_meta": meta});
    let reply = rpc_with(app, Some(token), "tools/call", params, &[]).await;
    assert!(reply.body["result"].is_object(), "{:#}", reply.body);
    reply.status
}

async fn clients_of(app: &TestApp, token: &str) -> Vec<Option<String>> {
    sqlx::query_scalar("SELECT client FROM audit_log WHERE token_id = $1 AND actor_kind = 'mcp' ORDER BY seq")
        .bind(token_id(token))
        .fetch_all(app.pool())
        .await
        .unwrap()
}

async fn chain_verifies(app: &TestApp) {
    let out = app.cli(&["--json", "audit", "verify"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn a_caller_whose_client_name_holds_nul_fails_nobody_elses_calls() {
    let app = std::sync::Arc::new(spawn_app().await);
    let w = app.world().await;
    let poisoner = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectViewAny], &[])
        .await;
    let victim = app
        .mint(
            OWNER_B,
            &w.team_b,
            &[Ability::ProjectViewAny, Ability::ProjectCreate],
            &[],
        )
        .await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (app, poisoner) = (app.clone(), poisoner.clone());
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for _ in 0..40 {
                let status = call_as(&app, &poisoner, "list_projects", json!({}), "evil\u{0}client", "1\u{0}").await;
                refused += usize::from(!status.is_success());
            }
            ("poisoner", refused)
        }));
    }
    for t in 0..4 {
        let (app, victim) = (app.clone(), victim.clone());
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for i in 0..30 {
                let reply = match i % 3 {
                    0 => {
                        app.post("/v1/projects", &victim, json!({"name": format!("Victim {t}-{i}")}))
                            .await
                    }
                    _ => app.get("/v1/projects", &victim).await,
                };
                refused += usize::from(!reply.status.is_success());
            }
            ("victim", refused)
        }));
    }
    for task in tasks {
        let (who, refused) = task.await.unwrap();
        assert_eq!(refused, 0, "{who}: calls that did not succeed");
    }
    assert_eq!(app.audit_of(&victim).await.len(), 120, "one entry per victim call");
    let clients = clients_of(&app, &poisoner).await;
    assert_eq!(clients.len(), 160);
    for client in clients {
        assert_eq!(client.as_deref(), Some("evil\u{FFFD}client/1\u{FFFD}"));
    }
    chain_verifies(&app).await;
}

#[tokio::test]
async fn a_refused_call_stores_no_token_and_no_argument_values() {
    let app = spawn_app().await;
    let w = app.world().await;
    let leaked = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let caller = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    let reader = app.mint(OWNER_A, &w.team_a, &[Ability::ActivityRead], &[]).await;
    // REST: the token as a key, beside a value that must not be kept either.
    let body = json!({ leaked.clone(): 1, "name": "a value nobody checked" });
    app.post("/v1/projects", &caller, body)
        .await
        .assert_error(403, "TOKEN_MISSING_ABILITY");
    // MCP: the same in `arguments`.
    let params = json!({"name": "create_project", "arguments": { leaked.clone(): {"nested": leaked.clone()} }});
    let reply = rpc_with(&app, Some(&caller), "tools/call", params, &[]).await;
    assert_eq!(reply.body["result"]["isError"], true, "{:#}", reply.body);
    // 50 KB of anything, which a caller without abilities could send once a second.
    let junk: serde_json::Map<String, Value> = (0..600)
        .map(|i| (format!("key{i:056}"), json!("x".repeat(20))))
        .collect();
    app.post("/v1/projects", &caller, Value::Object(junk))
        .await
        .assert_error(403, "TOKEN_MISSING_ABILITY");

    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT properties, COALESCE(error_code, '') FROM audit_log WHERE token_id = $1 ORDER BY seq")
            .bind(token_id(&caller))
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(rows.len(), 3);
    for (properties, code) in &rows {
        assert_eq!(code, "TOKEN_MISSING_ABILITY");
        assert!(!properties.contains("mpt_"), "{properties}");
        assert!(!properties.contains(&leaked[21..]), "the secret is in {properties}");
        assert!(!properties.contains("a value nobody checked"), "{properties}");
        assert!(properties.len() <= 2048 + 200, "{} bytes kept", properties.len());
    }
    let first: Value = serde_json::from_str(&rows[0].0).unwrap();
    assert!(
        first["argument_keys"].as_array().unwrap().contains(&json!("name")),
        "{first}"
    );
    let last: Value = serde_json::from_str(&rows[2].0).unwrap();
    assert_eq!(last["argument_keys_truncated"], true);
    // Nor through what hands the log out.
    let activity = app
        .get(&format!("/v1/activity?token_id={}", token_id(&caller)), &reader)
        .await;
    assert_eq!(activity.status, 200);
    assert!(!activity.body.to_string().contains(&leaked[21..]));
    let export = app.cli(&["audit", "export"]).await;
    assert!(!String::from_utf8_lossy(&export.stdout).contains(&leaked[21..]));
    assert_eq!(
        app.get("/v1/me", &leaked).await.status,
        200,
        "nothing revoked it: it was only hidden"
    );
}

#[tokio::test]
async fn the_client_is_the_name_the_client_gave_made_safe_and_empty_otherwise() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectViewAny], &[])
        .await;
    // No `_meta`: nothing names the client (not rmcp's placeholder).
    let plain = rpc_with(
        &app,
        Some(&token),
        "tools/call",
        json!({"name": "list_projects", "arguments": {}}),
        &[],
    )
    .await;
    assert_eq!(plain.status, 200);
    for (name, version) in [
        ("\u{202E}tnegA", "1"),
        ("\t=HYPERLINK(\"https://evil.example\")", "2"),
        ("  ", "3"),
        (&"n".repeat(500), "4"),
    ] {
        assert!(
            call_as(&app, &token, "list_projects", json!({}), name, version)
                .await
                .is_success()
        );
    }
    let clients = clients_of(&app, &token).await;
    let long = format!("{}/4", "n".repeat(100));
    let expected = [
        None,
        Some("\u{FFFD}tnegA/1"),
        Some("=HYPERLINK(\"https://evil.example\")/2"),
        None,
        Some(long.as_str()),
    ];
    assert_eq!(clients.iter().map(Option::as_deref).collect::<Vec<_>>(), expected);
    // The CSV export defuses every formula-led cell, the `=` one above included.
    person(&app, &w.team_a, "dash@memberpass.test", Role::Admin).await;
    let admin = cookie(&app, "dash@memberpass.test").await;
    let csv = page(
        &app,
        &format!("/settings/activity?token_id={}&format=csv", token_id(&token)),
        &admin,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(csv.contains("\"'=HYPERLINK"), "{csv}");
    assert!(!csv.contains(",\"=") && !csv.contains(",\"\t"), "{csv}");
}

#[tokio::test]
async fn a_token_out_of_requests_can_still_revoke_itself() {
    let app = spawn_with(|c| c.rate_limit_rest = 3).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    for _ in 0..3 {
        assert_eq!(app.get("/v1/me", &token).await.status, 200);
    }
    app.get("/v1/me", &token).await.assert_error(429, "RATE_LIMITED");
    let revoked = app.call(Method::DELETE, "/v1/tokens/current", Some(&token), None).await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    assert!(revoked.body["data"]["revoked_at"].is_i64() || revoked.body["data"]["revoked_at"].is_string());
    app.get("/v1/me", &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn an_mcp_token_out_of_requests_can_still_revoke_itself() {
    let app = spawn_with(|c| c.rate_limit_mcp = 2).await;
    let w = app.world().await;
    let token = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectViewAny], &[])
        .await;
    let call = |name: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            rpc_with(
                app,
                Some(&token),
                "tools/call",
                json!({"name": name, "arguments": {}}),
                &[],
            )
            .await
        }
    };
    for _ in 0..2 {
        assert_eq!(call("list_projects").await.status, 200);
    }
    assert_eq!(call("list_projects").await.status, 429, "the bucket is empty");
    let revoked = call("revoke_current_token").await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    assert!(revoked.body["result"]["isError"].is_null() || revoked.body["result"]["isError"] == false);
    assert_eq!(call("list_projects").await.status, 401);
    assert_eq!(app.get("/v1/me", &token).await.status, 401);
}

#[tokio::test]
async fn mcp_accepts_the_servers_own_origin_and_no_other_unlisted_one() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let other_port = (port.parse::<u16>().unwrap() ^ 1).to_string();
    for (origin, status) in [
        (app.base.clone(), 200),
        (format!("{}/", app.base), 200),
        (format!("HTTP://127.0.0.1:{port}"), 200),
        (format!("http://127.0.0.1:{other_port}"), 403),
        (format!("https://127.0.0.1:{port}"), 403),
        (format!("http://localhost:{port}"), 403),
        ("null".to_owned(), 403),
        ("https://evil.example".to_owned(), 403),
    ] {
        let reply = rpc_with(&app, Some(&token), "tools/list", json!({}), &[("origin", &origin)]).await;
        assert_eq!(reply.status, status, "{origin}: {:#}", reply.body);
    }
}
