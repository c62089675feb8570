//! Every operation publishes the schema of what it answers, and what it answers conforms to it:
//! a real call of every operation of the catalog, over real HTTP, as an MCP tool (its
//! `structuredContent` against the `outputSchema` `tools/list` published) and through REST (its
//! body against the success response of `/openapi.json`), strictly: no field the schema does not
//! declare.

use memberpass::domain::ability::Ability;
use memberpass::service::ops::catalog;
use serde_json::{Value, json};

use crate::helpers::OWNER_A;
use crate::json_schema::violations;
use crate::matrix::{case, send, setup};
use crate::mcp::{call_tool, rpc};

#[tokio::test]
async fn every_tool_answers_what_its_output_schema_says() {
    let (app, w, job) = setup().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let listed = rpc(&app, Some(&token), "tools/list", json!({})).await;
    let tools = listed.body["result"]["tools"].as_array().unwrap().clone();
    assert_eq!(tools.len(), catalog::all().count(), "a full token sees every tool");
    let mut checked = 0;
    for op in catalog::all() {
        let c = case(op, &w, &job);
        let name = c.op.name;
        let tool = tools.iter().find(|t| t["name"] == name).unwrap();
        let schema = &tool["outputSchema"];
        assert_eq!(
            schema["type"], "object",
            "{name}: MCP wants an object schema at the root"
        );
        assert!(schema["properties"]["data"].is_object(), "{name}: {schema:#}");
        // A token of its own per call: one of them revokes itself.
        let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
        let result = call_tool(&app, &token, name, c.args.clone()).await;
        assert_eq!(result["isError"], false, "{name}: {result:#}");
        let structured = &result["structuredContent"];
        let wrong = violations(schema, structured);
        assert!(wrong.is_empty(), "{name}: {wrong:#?}\n{structured:#}");
        // A success requires what the operation answers; a refusal (`isError`) requires `error`.
        let success_requires = schema["anyOf"][0]["required"].as_array().unwrap();
        assert_eq!(schema["anyOf"][1], json!({"required": ["error"]}), "{name}");
        let lists = success_requires.contains(&Value::from("meta"));
        assert_eq!(
            lists,
            structured.get("meta").is_some(),
            "{name}: meta when, and only when, a list"
        );
        // A refusal conforms too: a client that checks every structured result against the
        // schema (the TypeScript SDK does) must read it, not fail on it.
        if op.spec().ability.is_some() {
            let bare = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
            let refused = call_tool(&app, &bare, name, c.args.clone()).await;
            assert_eq!(refused["isError"], true, "{name}: {refused:#}");
            let wrong = violations(schema, &refused["structuredContent"]);
            assert!(wrong.is_empty(), "{name}: {wrong:#?}\n{refused:#}");
        }
        checked += 1;
    }
    assert_eq!(checked, catalog::all().count());
}

#[tokio::test]
async fn every_operation_answers_what_openapi_says() {
    let (app, w, job) = setup().await;
    let openapi = app.call(reqwest::Method::GET, "/openapi.json", None, None).await.body;
    for op in catalog::all() {
        let c = case(op, &w, &job);
        let name = c.op.name;
        let status = c.op.success_status.to_string();
        let schema = &openapi["paths"][c.op.path][c.op.method.as_str().to_ascii_lowercase()]["responses"][&status]["content"]
            ["application/json"]["schema"];
        assert!(schema["properties"]["data"].is_object(), "{name}: {schema:#}");
        let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
        let reply = send(&app, &c, &token).await;
        assert_eq!(reply.status.as_str(), status, "{name}: {:#}", reply.body);
        let wrong = violations(schema, &reply.body);
        assert!(wrong.is_empty(), "{name}: {wrong:#?}\n{:#}", reply.body);
    }
}
