//! An OAuth access token is bound to `/mcp`, the resource it was issued for: REST refuses it as
//! no credential of its own, `/mcp` names its grant and client in every entry, a tool the grant
//! lacks (but the person's role holds) is answered HTTP 403 with an `insufficient_scope`
//! challenge (step-up), and a revoked grant ends its tokens. Pasted tokens keep today's answers.
//!
//! The grant here is made in the database beside a minted token (what `/token` does after a
//! consent), so these rules are tested apart from the consent flow that issues real grants.

use memberpass::domain::ability::Ability;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, TestApp, VIEWER_A, spawn_app, token_id};
use crate::mcp::rpc;

/// Turns a freshly minted token of `email` in `team` into the access token of a new grant of a
/// new client; answers the grant's and the client's ids.
pub async fn make_oauth(app: &TestApp, token: &str, email: &str, team: &str) -> (String, String) {
    let (client, grant) = (uuid::Uuid::now_v7().to_string(), uuid::Uuid::now_v7().to_string());
    let now = memberpass::store::now_ms();
    let user: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(app.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO oauth_clients (id, kind, client_name, redirect_uris, metadata, created_at, updated_at) \
         VALUES ($1, 'registered', 'Binding test', '[\"http://127.0.0.1/cb\"]', '{}', $2, $2)",
    )
    .bind(&client)
    .bind(now)
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO oauth_grants (id, client_id, user_id, team_id, abilities, redirect_uri, resource, created_at) \
         VALUES ($1, $2, $3, $4, '[]', 'http://127.0.0.1/cb', 'mcp', $5)",
    )
    .bind(&grant)
    .bind(&client)
    .bind(&user)
    .bind(team)
    .bind(now)
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE tokens SET oauth_grant_id = $1 WHERE id = $2")
        .bind(&grant)
        .bind(token_id(token))
        .execute(app.pool())
        .await
        .unwrap();
    (grant, client)
}

/// The `properties` of the newest entry of `event` by `token`, once the writer has it.
async fn newest(app: &TestApp, token: &str, event: &str) -> Value {
    for _ in 0..100 {
        let found: Option<String> = sqlx::query_scalar(
            "SELECT properties FROM audit_log WHERE token_id = $1 AND event = $2 ORDER BY seq DESC LIMIT 1",
        )
        .bind(token_id(token))
        .bind(event)
        .fetch_optional(app.pool())
        .await
        .unwrap();
        if let Some(p) = found {
            return serde_json::from_str(&p).unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("no {event} entry for the token");
}

const READS: &[Ability] = &[Ability::McpFull, Ability::ProjectViewAny, Ability::ProjectView];

#[tokio::test]
async fn rest_refuses_an_oauth_access_token_as_no_credential_of_its_own() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, READS, &[]).await;
    assert_eq!(
        app.get("/v1/me", &token).await.status,
        200,
        "a pasted token works on REST"
    );
    let (grant, client) = make_oauth(&app, &token, OWNER_A, &w.team_a).await;

    for path in ["/v1/me", "/v1/projects"] {
        app.get(path, &token).await.assert_error(401, "AUTHENTICATION_REQUIRED");
    }
    // Also a token revoking itself: on REST the OAuth token is nobody.
    app.call(reqwest::Method::DELETE, "/v1/tokens/current", Some(&token), None)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    let refused = newest(&app, &token, "auth.failed").await;
    assert_eq!(refused["reason"], "wrong_resource");
    assert_eq!(refused["oauth"], json!({"grant_id": grant, "client_id": client}));

    // The same token on /mcp, the resource it was issued for, works and is still live.
    let listed = rpc(&app, Some(&token), "tools/list", json!({})).await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
}

#[tokio::test]
async fn every_mcp_call_with_an_oauth_token_names_its_grant_and_client() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, READS, &[]).await;
    let (grant, client) = make_oauth(&app, &token, OWNER_A, &w.team_a).await;
    let reply = rpc(
        &app,
        Some(&token),
        "tools/call",
        json!({"name": "list_projects", "arguments": {}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert_ne!(reply.body["result"]["isError"], true, "{:#}", reply.body);
    let entry = newest(&app, &token, "list_projects").await;
    assert_eq!(entry["oauth"], json!({"grant_id": grant, "client_id": client}));

    // A pasted token's entries name no grant.
    let pasted = app.mint(OWNER_A, &w.team_a, READS, &[]).await;
    rpc(
        &app,
        Some(&pasted),
        "tools/call",
        json!({"name": "list_projects", "arguments": {}}),
    )
    .await;
    assert!(newest(&app, &pasted, "list_projects").await.get("oauth").is_none());
}

#[tokio::test]
async fn a_tool_the_grant_lacks_but_the_role_holds_is_a_step_up_challenge() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, READS, &[]).await;
    let (grant, _) = make_oauth(&app, &token, OWNER_A, &w.team_a).await;
    let before = app.state().await;

    let reply = rpc(
        &app,
        Some(&token),
        "tools/call",
        json!({"name": "create_project", "arguments": {"name": "Sneaky"}}),
    )
    .await;
    assert_eq!(reply.status, 403, "{:#}", reply.body);
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:full project:create\", \
             resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp\"",
            app.base
        )
    );
    assert_eq!(reply.body["id"], 7);
    assert_eq!(reply.body["error"]["data"]["code"], "TOKEN_MISSING_ABILITY");
    assert_eq!(app.state().await, before, "nothing was written");
    let entry = newest(&app, &token, "create_project").await;
    assert_eq!(entry["required_ability"], "project:create");
    assert_eq!(entry["oauth"]["grant_id"], grant);

    // A JSON-RPC id that is not echoable is answered with null, and the arguments never matter:
    // missing arguments are still a step-up, not a validation error.
    let reply = rpc(&app, Some(&token), "tools/call", json!({"name": "create_project"})).await;
    assert_eq!(reply.status, 403);

    // A pasted token without the ability keeps the tool result with isError.
    let pasted = app.mint(OWNER_A, &w.team_a, READS, &[]).await;
    let reply = rpc(
        &app,
        Some(&pasted),
        "tools/call",
        json!({"name": "create_project", "arguments": {"name": "Sneaky"}}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["result"]["isError"], true);
    assert!(reply.headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn a_tool_the_role_itself_lacks_is_no_step_up() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(VIEWER_A, &w.team_a, READS, &[]).await;
    make_oauth(&app, &token, VIEWER_A, &w.team_a).await;
    // Asking the viewer again could not help: their role cannot create projects.
    let reply = rpc(
        &app,
        Some(&token),
        "tools/call",
        json!({"name": "create_project", "arguments": {"name": "Nope"}}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert_eq!(reply.body["result"]["isError"], true);
    assert!(reply.headers.get("www-authenticate").is_none());
}

#[tokio::test]
async fn a_revoked_grant_ends_its_tokens_on_the_next_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, READS, &[]).await;
    let (grant, _) = make_oauth(&app, &token, OWNER_A, &w.team_a).await;
    assert_eq!(rpc(&app, Some(&token), "tools/list", json!({})).await.status, 200);
    // The grant alone revoked (its token row untouched): the token is refused all the same.
    sqlx::query("UPDATE oauth_grants SET revoked_at = $1 WHERE id = $2")
        .bind(memberpass::store::now_ms())
        .bind(&grant)
        .execute(app.pool())
        .await
        .unwrap();
    let reply = rpc(&app, Some(&token), "tools/list", json!({})).await;
    assert_eq!(reply.status, 401, "{:#}", reply.body);
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    assert_eq!(newest(&app, &token, "auth.failed").await["reason"], "revoked");
}
