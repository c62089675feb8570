//! Every MCP tool publishes an `outputSchema`, and what it answers conforms to it: a real call
//! of every tool of the catalog, over real HTTP, its `structuredContent` checked against the
//! schema `tools/list` published (strictly: no field the schema does not declare).

use memberpass::domain::ability::Ability;
use memberpass::service::ops::catalog;
use serde_json::{Value, json};

use crate::helpers::OWNER_A;
use crate::json_schema::violations;
use crate::matrix::{case, setup};
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
        let lists = schema["required"].as_array().unwrap().contains(&Value::from("meta"));
        assert_eq!(
            lists,
            structured.get("meta").is_some(),
            "{name}: meta when, and only when, a list"
        );
        checked += 1;
    }
    assert_eq!(checked, catalog::all().count());
}
