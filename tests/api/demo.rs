//! The demo: what `serve --demo` and `memberpass demo` seed and print.

use memberpass::domain::ability::Ability;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_demo_command_prints_a_least_privilege_token_that_works() {
    let app = spawn_app().await;
    let out = app.cli(&["--json", "demo"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let demo: Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = demo["token"].as_str().unwrap();
    assert!(demo["password"].as_str().is_some_and(|p| p.len() >= 16));
    let abilities: Vec<&str> = demo["abilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        abilities.iter().all(|a| a.parse::<Ability>().unwrap().is_read_only()),
        "{abilities:?}"
    );
    assert!(
        demo["claude_desktop_config"]["mcpServers"]["memberpass"]["env"]["AUTH_TOKEN"]
            .as_str()
            .unwrap()
            .contains(token)
    );
    let projects = app.get("/v1/projects", token).await;
    assert_eq!(projects.body["meta"]["total"], 2);
    let members = app
        .get(
            &format!(
                "/v1/projects/{}/members?limit=100",
                projects.body["data"][0]["id"].as_str().unwrap()
            ),
            token,
        )
        .await;
    let statuses: std::collections::BTreeSet<&str> = members.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 5, "every member status is represented: {statuses:?}");
    app.post("/v1/projects", token, json!({"name": "nope"}))
        .await
        .assert_error(403, "TOKEN_MISSING_ABILITY");

    // Again on the same data: no reseed, a fresh token, the old one revoked.
    let again = app.cli(&["--json", "demo"]).await;
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(again["password"].is_null());
    assert_eq!(
        app.get("/v1/projects", again["token"].as_str().unwrap()).await.status,
        200
    );
    app.get("/v1/projects", token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(app.count("teams").await, 2);
}

#[tokio::test]
async fn the_demo_never_seeds_a_database_that_holds_other_teams() {
    let app = spawn_app().await;
    app.service
        .create_user("real@example.com", "Real Owner", None)
        .await
        .unwrap();
    app.service.create_team("Real Team", "real@example.com").await.unwrap();
    let out = app.cli(&["demo"]).await;
    assert!(!out.status.success());
    assert_eq!(app.count("teams").await, 1);
}
