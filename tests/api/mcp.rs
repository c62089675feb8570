//! `/mcp` over real HTTP: the guard before any JSON-RPC, the protocol versions, tools from the
//! catalog filtered by what the token may do now, results and refusals, and the security
//! matrix of every operation called as a tool.

use memberpass::domain::ability::Ability;
use memberpass::service::ops::catalog;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, OWNER_B, Reply, TestApp, spawn_app, spawn_with, token_id};
use crate::matrix::{case, setup};

/// One JSON-RPC request to `/mcp` (protocol 2025-11-25, stateless, JSON answers).
pub async fn rpc(app: &TestApp, token: Option<&str>, method: &str, params: Value) -> Reply {
    rpc_with(app, token, method, params, &[]).await
}

pub async fn rpc_with(
    app: &TestApp,
    token: Option<&str>,
    method: &str,
    params: Value,
    headers: &[(&str, &str)],
) -> Reply {
    let version = headers
        .iter()
        .find(|(k, _)| *k == "mcp-protocol-version")
        .map_or("2025-11-25", |(_, v)| *v);
    let mut req = app
        .client
        .post(format!("{}/mcp", app.base))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", version)
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers.iter().filter(|(k, _)| *k != "mcp-protocol-version") {
        req = req.header(*k, *v);
    }
    Reply::from_response(req.send().await.unwrap()).await
}

pub async fn call_tool(app: &TestApp, token: &str, name: &str, args: Value) -> Value {
    let reply = rpc(app, Some(token), "tools/call", json!({"name": name, "arguments": args})).await;
    assert_eq!(reply.status, 200, "{name}: {:#}", reply.body);
    reply.body["result"].clone()
}

#[track_caller]
fn assert_refused(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status.as_u16(), status, "{:#}", reply.body);
    assert_eq!(reply.body["jsonrpc"], "2.0");
    assert_eq!(reply.body["id"], 7, "the refusal answers the request's id");
    assert_eq!(reply.body["error"]["code"], -32001);
    assert_eq!(reply.body["error"]["data"]["code"], code, "{:#}", reply.body);
    assert!(reply.body["error"]["message"].as_str().unwrap().starts_with(code));
    assert!(reply.body["error"]["data"]["request_id"].is_string());
}

async fn mcp_entries(app: &TestApp, token: &str) -> Vec<(String, String, Option<String>)> {
    sqlx::query_as(
        "SELECT event, outcome, error_code FROM audit_log WHERE token_id = $1 AND actor_kind = 'mcp' ORDER BY seq",
    )
    .bind(token_id(token))
    .fetch_all(app.pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_guard_refuses_before_any_json_rpc_and_says_why() {
    let app = spawn_with(|c| {
        c.allowed_origins = vec!["https://inspector.example".into()];
        c.rate_limit_mcp = 4;
    })
    .await;
    let w = app.world().await;
    let no_token = rpc(&app, None, "tools/list", json!({})).await;
    assert_refused(&no_token, 401, "AUTHENTICATION_REQUIRED");
    // The OAuth challenge (issue 19); its exact value is pinned in `oauth.rs`.
    assert!(
        no_token.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer resource_metadata=")
    );

    let without_gate = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let reply = rpc(&app, Some(&without_gate), "tools/list", json!({})).await;
    assert_refused(&reply, 403, "TOKEN_MISSING_ABILITY");
    assert_eq!(reply.body["error"]["data"]["required_ability"], "mcp:full");

    let token = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    let evil = [("origin", "https://evil.example")];
    assert_refused(
        &rpc_with(&app, Some(&token), "tools/list", json!({}), &evil).await,
        403,
        "ORIGIN_NOT_ALLOWED",
    );
    let listed = [("origin", "https://inspector.example")];
    assert_eq!(
        rpc_with(&app, Some(&token), "tools/list", json!({}), &listed)
            .await
            .status,
        200
    );
    let rebinding = [("host", "attacker.example")];
    assert_refused(
        &rpc_with(&app, Some(&token), "tools/list", json!({}), &rebinding).await,
        403,
        "ORIGIN_NOT_ALLOWED",
    );
    // Every refusal of a known token is audited; the unknown one is not.
    let denied = mcp_entries(&app, &without_gate).await;
    assert_eq!(
        denied,
        [(
            "mcp.request".into(),
            "denied".into(),
            Some("TOKEN_MISSING_ABILITY".into())
        )]
    );
    let refused = mcp_entries(&app, &token).await;
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|(e, o, c)| e == "mcp.request" && o == "denied" && c.as_deref() == Some("ORIGIN_NOT_ALLOWED"))
    );
    // The mcp bucket: 4 calls a minute for this test's server.
    let limited = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    for _ in 0..4 {
        assert_eq!(rpc(&app, Some(&limited), "tools/list", json!({})).await.status, 200);
    }
    let reply = rpc(&app, Some(&limited), "tools/list", json!({})).await;
    assert_refused(&reply, 429, "RATE_LIMITED");
    assert!(reply.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
}

#[tokio::test]
async fn every_protocol_version_works_and_server_info_names_this_server() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectViewAny], &[])
        .await;
    for version in ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"] {
        let init = rpc_with(
            &app,
            Some(&token),
            "initialize",
            json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}),
            &[("mcp-protocol-version", version)],
        )
        .await;
        assert_eq!(init.status, 200, "{version}: {:#}", init.body);
        assert_eq!(init.body["result"]["protocolVersion"], version);
        assert_eq!(init.body["result"]["serverInfo"]["name"], "memberpass");
        assert_eq!(init.body["result"]["serverInfo"]["version"], env!("CARGO_PKG_VERSION"));
    }
    // 2026-07-28: no initialize; the method and tool travel in headers, the client in `_meta`.
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "future-client", "version": "9.1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    });
    let reply = app
        .client
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "list_projects")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "list_projects", "arguments": {}, "_meta": meta}}))
        .send()
        .await
        .unwrap();
    let reply = Reply::from_response(reply).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert!(
        reply.body["result"]["structuredContent"]["data"].is_array(),
        "{:#}",
        reply.body
    );
    let client: Option<String> =
        sqlx::query_scalar("SELECT client FROM audit_log WHERE event = 'list_projects' AND token_id = $1")
            .bind(token_id(&token))
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(client.as_deref(), Some("future-client/9.1"));
}

#[tokio::test]
async fn tools_are_the_catalog_filtered_by_what_the_token_may_do_now() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app
        .mint(
            OWNER_A,
            &w.team_a,
            &[Ability::McpFull, Ability::ProjectViewAny, Ability::ProjectCreate],
            &[],
        )
        .await;
    let names = |r: &Reply| -> Vec<String> {
        r.body["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = rpc(&app, Some(&token), "tools/list", json!({})).await;
    let tools = names(&listed);
    let expected: Vec<String> = catalog::all()
        .filter(|op| {
            matches!(
                op.spec().ability,
                None | Some(Ability::ProjectViewAny | Ability::ProjectCreate)
            )
        })
        .map(|op| op.spec().name.to_owned())
        .collect();
    assert_eq!(tools, expected);
    let create = listed.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "create_project")
        .unwrap()
        .clone();
    assert_eq!(create["annotations"]["readOnlyHint"], false);
    assert_eq!(create["annotations"]["openWorldHint"], false);
    assert_eq!(create["inputSchema"]["required"], json!(["name"]));
    assert!(create["description"].as_str().unwrap().contains("`project:create`"));
    assert_eq!(create["title"], "Create project");
    // Lower the owner's role: the next list shows it.
    sqlx::query("UPDATE team_members SET role = 'viewer' WHERE team_id = $1 AND user_id = (SELECT user_id FROM tokens WHERE id = $2)")
        .bind(&w.team_a)
        .bind(token_id(&token))
        .execute(app.pool())
        .await
        .unwrap();
    let tools = names(&rpc(&app, Some(&token), "tools/list", json!({})).await);
    assert!(tools.contains(&"list_projects".to_owned()));
    assert!(!tools.contains(&"create_project".to_owned()));
}

#[tokio::test]
async fn results_and_refusals_are_tool_results_the_agent_can_read() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectViewAny], &[])
        .await;
    let result = call_tool(&app, &token, "list_projects", json!({"limit": 1})).await;
    assert_eq!(result["isError"], false);
    let structured = &result["structuredContent"];
    assert_eq!(structured["data"].as_array().unwrap().len(), 1);
    assert_eq!(structured["meta"]["total"], 2);
    let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(&text, structured, "the text is the same JSON");
    let denied = call_tool(&app, &token, "create_project", json!({"name": "Nope"})).await;
    assert_eq!(denied["isError"], true);
    assert_eq!(denied["structuredContent"]["error"]["code"], "TOKEN_MISSING_ABILITY");
    assert_eq!(
        denied["structuredContent"]["error"]["required_ability"],
        "project:create"
    );
    let sentence = denied["content"][1]["text"].as_str().unwrap();
    assert!(
        sentence.contains("`project:create`") && sentence.contains("Settings → API Tokens"),
        "{sentence}"
    );
    let bad = call_tool(&app, &token, "list_projects", json!({"limit": 0})).await;
    assert_eq!(bad["structuredContent"]["error"]["code"], "VALIDATION_FAILED");
    assert!(bad["structuredContent"]["error"]["fields"]["limit"].is_string());
    let missing = call_tool(&app, &token, "get_project", json!({"project_id": "not-a-uuid"})).await;
    assert_eq!(
        missing["structuredContent"]["error"]["code"], "TOKEN_MISSING_ABILITY",
        "ability first"
    );
    // An unknown tool is a protocol error, not a tool result.
    let unknown = rpc(
        &app,
        Some(&token),
        "tools/call",
        json!({"name": "drop_tables", "arguments": {}}),
    )
    .await;
    assert!(unknown.body["error"].is_object(), "{:#}", unknown.body);
    // Resources.
    let resources = rpc(&app, Some(&token), "resources/list", json!({})).await;
    let uris: Vec<&str> = resources.body["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        [
            "memberpass://enums/ability",
            "memberpass://enums/error-code",
            "memberpass://enums/member-status",
            "memberpass://enums/subscription-status"
        ]
    );
    let statuses = rpc(
        &app,
        Some(&token),
        "resources/read",
        json!({"uri": "memberpass://enums/member-status"}),
    )
    .await;
    let text = statuses.body["result"]["contents"][0]["text"].as_str().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(text).unwrap()["data"],
        json!(["lead", "trialing", "customer", "churned", "banned"])
    );
}

#[tokio::test]
async fn every_operation_over_mcp_keeps_the_tenancy_the_abilities_and_the_audit() {
    let (app, w, job) = setup().await;
    for op in catalog::all() {
        let c = case(op, &w, &job);
        let name = c.op.name;
        // Another team: an id of team A is not found, and nothing changes.
        if c.path_id.is_some() {
            let other = app.mint(OWNER_B, &w.team_b, Ability::ALL, &[]).await;
            let before = app.state().await;
            let result = call_tool(&app, &other, name, c.args.clone()).await;
            assert_eq!(
                result["structuredContent"]["error"]["code"], "RESOURCE_NOT_FOUND",
                "{name}"
            );
            assert_eq!(app.state().await, before, "{name}");
            let audit = app.audit_of(&other).await;
            assert_eq!(audit.len(), 1, "{name}");
            assert_eq!(
                (audit[0].actor_kind.as_str(), audit[0].outcome.as_str()),
                ("mcp", "denied")
            );
        }
        // Without the ability: named, nothing changes, one denied entry.
        if let Some(required) = c.op.ability {
            let others: Vec<Ability> = Ability::ALL.iter().copied().filter(|a| *a != required).collect();
            let token = app.mint(OWNER_A, &w.team_a, &others, &[]).await;
            let before = app.state().await;
            let result = call_tool(&app, &token, name, c.args.clone()).await;
            assert_eq!(
                result["structuredContent"]["error"]["required_ability"],
                required.as_str(),
                "{name}"
            );
            assert_eq!(app.state().await, before, "{name}");
            let audit = app.audit_of(&token).await;
            assert_eq!(audit.len(), 1, "{name}");
            assert_eq!(audit[0].error_code.as_deref(), Some("TOKEN_MISSING_ABILITY"));
        }
        // Scoped to the sibling project: anything under p1 is not found.
        if c.op.path_params().iter().any(|p| *p != "team_id") {
            let scoped = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[&w.p2]).await;
            let before = app.state().await;
            let result = call_tool(&app, &scoped, name, c.args.clone()).await;
            assert_eq!(
                result["structuredContent"]["error"]["code"], "RESOURCE_NOT_FOUND",
                "{name}"
            );
            assert_eq!(app.state().await, before, "{name}");
        }
        // Allowed: one entry with the right fields.
        let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
        let c = case(op, &w, &job);
        let result = call_tool(&app, &token, name, c.args.clone()).await;
        assert_eq!(result["isError"], false, "{name}: {result:#}");
        assert!(
            !result.to_string().contains(&token[22..54]),
            "{name} returned the token's secret"
        );
        let audit = app.audit_of(&token).await;
        assert_eq!(audit.len(), 1, "{name}: {audit:?}");
        let e = &audit[0];
        assert_eq!(
            (e.event.as_str(), e.actor_kind.as_str(), e.outcome.as_str()),
            (c.op.event, "mcp", "success")
        );
        assert_eq!(e.team_id.as_deref(), Some(w.team_a.as_str()));
        assert!(e.causer_id.is_some());
        assert_eq!(e.subject_type.as_deref(), Some(c.op.subject_type));
        // A job it started finishes before the next comparison of the database.
        for _ in 0..400 {
            let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')")
                .fetch_one(app.pool())
                .await
                .unwrap();
            if pending == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test]
async fn the_tool_catalog_is_published() {
    let app = spawn_app().await;
    let tools = app.call(reqwest::Method::GET, "/mcp-tools.json", None, None).await.body;
    let names: Vec<&str> = tools["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = catalog::all().map(|op| op.spec().name).collect();
    assert_eq!(names, expected);
    let ban = tools["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "ban_member")
        .unwrap();
    assert_eq!(ban["ability"], "project-user:update");
    assert_eq!(ban["annotations"]["destructiveHint"], true);
}
