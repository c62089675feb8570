//! What the fuzzers found, each kept as a plain regression test with the input that found it.

use memberpass::domain::ability::Ability;
use memberpass::domain::token::{TokenEnv, TokenSecret};
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, Reply, TestApp, captured_logs, spawn_app};

async fn post_mcp(app: &TestApp, token: &str, headers: &[(&str, &str)], body: impl Into<reqwest::Body>) -> Reply {
    let mut map = reqwest::header::HeaderMap::new();
    for (k, v) in [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-protocol-version", "2025-11-25"),
    ]
    .iter()
    .chain(headers)
    {
        map.insert(
            reqwest::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let req = app
        .client
        .post(format!("{}/mcp", app.base))
        .bearer_auth(token)
        .headers(map);
    Reply::from_response(req.body(body).send().await.unwrap()).await
}

#[track_caller]
fn assert_rpc_error(reply: &Reply, status: u16, code: i64) {
    assert_eq!(reply.status.as_u16(), status, "{:#}", reply.body);
    assert_eq!(reply.headers["content-type"], "application/json", "{:#}", reply.body);
    assert_eq!(reply.body["jsonrpc"], "2.0", "{:#}", reply.body);
    assert_eq!(reply.body["error"]["code"], code, "{:#}", reply.body);
    assert!(reply.body["error"]["message"].is_string(), "{:#}", reply.body);
}

/// Found by `fuzz::mcp` (minimal input `[]`): rmcp answered any body it could not read as one
/// JSON-RPC message with a plain-text `415 Unsupported Media Type`, which no MCP client shows.
#[tokio::test]
async fn a_body_that_is_not_one_json_rpc_message_is_answered_in_json_rpc() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    for body in [
        "",
        "garbage",
        "{\"jsonrpc\": \"2.0\", \"id\": 1,",
        "1e400",
        "\u{feff}{}",
    ] {
        let reply = post_mcp(&app, &token, &[], body).await;
        assert_rpc_error(&reply, 400, -32700);
        assert_eq!(reply.body["id"], Value::Null);
    }
    for (body, id) in [
        ("[]", Value::Null),
        (r#"[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]"#, Value::Null),
        (r#"{"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}"#, Value::Null),
        (r#"{"jsonrpc": "1.0", "id": 5, "method": "ping"}"#, json!(5)),
        (r#"{"id": "x", "method": "ping"}"#, json!("x")),
    ] {
        let reply = post_mcp(&app, &token, &[], body).await;
        assert_rpc_error(&reply, 400, -32600);
        assert_eq!(reply.body["id"], id, "{body}");
    }
    // Over the size limit: the refusal of SPEC §6, with the §4 object.
    let huge = format!(
        r#"{{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {{"x": "{}"}}}}"#,
        "x".repeat(70_000)
    );
    let reply = post_mcp(&app, &token, &[], huge).await;
    assert_rpc_error(&reply, 413, -32001);
    assert_eq!(reply.body["error"]["data"]["code"], "PAYLOAD_TOO_LARGE");
    // A good message still gets its answer.
    let ok = post_mcp(&app, &token, &[], r#"{"jsonrpc": "2.0", "id": 9, "method": "ping"}"#).await;
    assert_eq!(
        (ok.status.as_u16(), &ok.body["id"], &ok.body["result"]),
        (200, &json!(9), &json!({}))
    );
}

/// Found with the case above: rmcp's other refusals were plain text as well.
#[tokio::test]
async fn refusals_of_the_http_layer_keep_their_status_and_speak_json_rpc() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    let ping = r#"{"jsonrpc": "2.0", "id": 1, "method": "ping"}"#;
    let version = post_mcp(&app, &token, &[("mcp-protocol-version", "1999-01-01")], ping).await;
    assert_rpc_error(&version, 400, -32600);
    assert!(
        version.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MCP-Protocol-Version")
    );
    assert_rpc_error(
        &post_mcp(&app, &token, &[("accept", "text/html")], ping).await,
        406,
        -32600,
    );
    assert_rpc_error(
        &post_mcp(&app, &token, &[("content-type", "text/plain")], ping).await,
        415,
        -32600,
    );
}

/// Found by `fuzz::mcp`: a token in a message was logged (rmcp logs a failed request's id and
/// error at `warn`, and every message at `debug`) and repeated in the answer (`no tool named
/// mpt_…`). Now a token anywhere but in a tool's arguments refuses the message unrepeated, and
/// a token in a tool's arguments is a bad argument, refused by the operation, logged nowhere.
#[tokio::test]
async fn a_token_anywhere_in_a_message_is_neither_repeated_nor_logged() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectCreate], &[])
        .await;
    let pasted = TokenSecret::generate(TokenEnv::Test);
    let pasted = pasted.expose_secret();
    let escaped = pasted.replace('_', "\\u005f");
    for message in [
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": pasted}}),
        json!({"jsonrpc": "2.0", "id": pasted, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": pasted}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": format!("memberpass://{pasted}")}}),
        json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": pasted, "progress": 1}}),
    ] {
        let body = serde_json::to_string(&message).unwrap().replace(pasted, &escaped);
        let reply = post_mcp(&app, &token, &[], body).await;
        assert_rpc_error(&reply, 400, -32600);
        assert_eq!(reply.body["id"], Value::Null, "{:#}", reply.body);
        assert!(!reply.body.to_string().contains(&pasted[22..54]), "{:#}", reply.body);
    }
    let call = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
        "params": {"name": "create_project", "arguments": {"name": format!("see {pasted}")}}});
    let reply = post_mcp(&app, &token, &[], serde_json::to_string(&call).unwrap()).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert_eq!(reply.body["result"]["isError"], true);
    assert_eq!(
        reply.body["result"]["structuredContent"]["error"]["code"],
        "VALIDATION_FAILED"
    );
    assert!(!reply.body.to_string().contains(&pasted[22..54]));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!captured_logs().contains(&pasted[22..54]), "the token reached the log");
}
