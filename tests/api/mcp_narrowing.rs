//! Narrowing one `/mcp` connection with headers (issue 21, item 7): `X-MemberPass-Read-Only`,
//! `X-MemberPass-Tools` and `X-MemberPass-Exclude-Tools` take tools away from what the token
//! lists and may call — never add any; a name that is not a tool is `400` naming it; the call's
//! audit entry records the narrowing.

use memberpass::domain::ability::Ability;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, TestApp, spawn_app, token_id};
use crate::mcp::rpc_with;

async fn tools(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let reply = rpc_with(app, Some(token), "tools/list", json!({}), headers).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    reply.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn call(app: &TestApp, token: &str, name: &str, args: Value, headers: &[(&str, &str)]) -> Value {
    let reply = rpc_with(
        app,
        Some(token),
        "tools/call",
        json!({"name": name, "arguments": args}),
        headers,
    )
    .await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    reply.body["result"].clone()
}

#[tokio::test]
async fn headers_narrow_what_a_connection_lists_and_calls_and_never_widen() {
    let app = spawn_app().await;
    let w = app.world().await;
    app.hold_nothing(&w.team_a).await;
    let full = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let all = tools(&app, &full, &[]).await;
    assert!(all.contains(&"create_project".to_owned()));

    // Read-only: no tool that changes data is listed, and calling one is refused and audited.
    let read_only = [("x-memberpass-read-only", "true")];
    let listed = tools(&app, &full, &read_only).await;
    assert!(listed.contains(&"list_projects".to_owned()));
    assert!(!listed.contains(&"create_project".to_owned()), "{listed:?}");
    assert!(!listed.contains(&"revoke_current_token".to_owned()));
    let before = app.count("projects").await;
    let refused = call(&app, &full, "create_project", json!({"name": "Narrowed"}), &read_only).await;
    assert_eq!(refused["isError"], true);
    let e = &refused["structuredContent"]["error"];
    assert_eq!(e["code"], "TOKEN_MISSING_ABILITY", "{e:#}");
    assert!(e["message"].as_str().unwrap().contains("read-only"), "{e:#}");
    assert_eq!(app.count("projects").await, before, "nothing ran");
    let read = call(&app, &full, "list_projects", json!({}), &read_only).await;
    assert_eq!(read["isError"], false);

    // A list of tools: only those, and only what the token may do anyway.
    let weak = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectViewAny], &[])
        .await;
    let only = [("x-memberpass-tools", "list_projects, create_project")];
    assert_eq!(tools(&app, &weak, &only).await, ["list_projects"], "no widening");
    let beyond = call(&app, &weak, "create_project", json!({"name": "Widened"}), &only).await;
    assert_eq!(beyond["structuredContent"]["error"]["code"], "TOKEN_MISSING_ABILITY");
    assert_eq!(tools(&app, &full, &only).await, ["list_projects", "create_project"]);
    let other = call(&app, &full, "get_token_info", json!({}), &only).await;
    assert_eq!(other["structuredContent"]["error"]["code"], "TOKEN_MISSING_ABILITY");

    // Exclusions.
    let exclude = [("x-memberpass-exclude-tools", "kick_member,ban_member")];
    let listed = tools(&app, &full, &exclude).await;
    assert_eq!(listed.len(), all.len() - 2);
    assert!(!listed.contains(&"kick_member".to_owned()));

    // The call's entry records the narrowing.
    let ran = call(&app, &full, "create_project", json!({"name": "Allowed"}), &only).await;
    assert_eq!(ran["isError"], false, "{ran:#}");
    let props: Vec<String> = sqlx::query_scalar(
        "SELECT properties FROM audit_log WHERE token_id = $1 AND event = 'create_project' ORDER BY seq",
    )
    .bind(token_id(&full))
    .fetch_all(app.pool())
    .await
    .unwrap();
    let last: Value = serde_json::from_str(props.last().unwrap()).unwrap();
    assert_eq!(
        last["narrowed"],
        json!({"read_only": false, "tools": ["create_project", "list_projects"], "exclude_tools": []})
    );
    let first: Value = serde_json::from_str(&props[0]).unwrap();
    assert_eq!(
        first["narrowed"]["read_only"], true,
        "the refused call's entry records it too"
    );
    // No header, no `narrowed`.
    call(&app, &full, "create_project", json!({"name": "Plain"}), &[]).await;
    let plain: String = sqlx::query_scalar(
        "SELECT properties FROM audit_log WHERE token_id = $1 AND event = 'create_project' ORDER BY seq DESC LIMIT 1",
    )
    .bind(token_id(&full))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(!plain.contains("narrowed"), "{plain}");
}

#[tokio::test]
async fn a_name_that_is_not_a_tool_or_a_repeated_header_is_400_naming_it() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    for (headers, says) in [
        (
            vec![("x-memberpass-tools", "list_projects,drop_tables")],
            "`drop_tables` is not a tool",
        ),
        (vec![("x-memberpass-exclude-tools", "nope")], "`nope` is not a tool"),
        (vec![("x-memberpass-read-only", "yes")], "must be true or false"),
        (
            vec![
                ("x-memberpass-tools", "list_projects"),
                ("x-memberpass-tools", "create_project"),
            ],
            "at most once",
        ),
    ] {
        let reply = rpc_with(&app, Some(&token), "tools/list", json!({}), &headers).await;
        assert_eq!(reply.status, 400, "{headers:?}: {:#}", reply.body);
        let data = &reply.body["error"]["data"];
        assert_eq!(data["code"], "VALIDATION_FAILED");
        assert!(data["message"].as_str().unwrap().contains(says), "{data:#}");
        assert_eq!(reply.body["id"], 7);
    }
    let refusals: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE token_id = $1 AND event = 'mcp.request' AND outcome = 'denied'",
    )
    .bind(token_id(&token))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(refusals, 4, "each refusal is audited");
}
