//! Where token plaintext may appear: only in the one response that mints it.

use std::time::Duration;

use memberpass::domain::ability::Ability;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, TestApp, captured_logs, spawn_app, token_id};

#[tokio::test]
async fn no_minted_token_plaintext_is_stored_or_logged() {
    let app = spawn_app().await;
    let w = app.world().await;
    let mut tokens = Vec::new();
    for abilities in [&[Ability::ProjectViewAny][..], &[], Ability::ALL] {
        tokens.push(app.mint(OWNER_A, &w.team_a, abilities, &[]).await);
    }
    let out = app
        .cli(&[
            "--json", "token", "mint", "--team", &w.team_a, "--user", OWNER_A, "--name", "cli",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli_token: Value = serde_json::from_slice(&out.stdout).unwrap();
    tokens.push(cli_token["token"].as_str().unwrap().to_owned());
    // Use them every way: success, denial, bad input quoting the token, revocation, rotation.
    // The ability is checked before the arguments, so only the token holding every ability
    // reaches the refusal of the pasted token; the others are denied with it in their arguments.
    for (i, t) in tokens.iter().enumerate() {
        let (status, code) = if i == 2 {
            (422, "VALIDATION_FAILED")
        } else {
            (403, "TOKEN_MISSING_ABILITY")
        };
        app.get("/v1/projects", t).await;
        let pasted = app.post("/v1/projects", t, json!({"name": format!("leak {t}")})).await;
        pasted.assert_error(status, code);
        assert!(
            !pasted.body.to_string().contains(&t[22..]),
            "the error must not echo the token"
        );
        app.post(&format!("/v1/members/{}/ban", w.member), t, json!({"reason": t}))
            .await
            .assert_error(status, code);
        app.call(Method::GET, "/v1/projects", Some(&format!("{t}0")), None)
            .await;
    }
    app.cli(&["token", "revoke", &token_id(&tokens[0])]).await;
    app.get("/v1/projects", &tokens[0]).await;
    let rotated = app.cli(&["--json", "token", "rotate", &token_id(&tokens[1])]).await;
    assert!(rotated.status.success(), "{}", String::from_utf8_lossy(&rotated.stderr));
    let rotated: Value = serde_json::from_slice(&rotated.stdout).unwrap();
    tokens.push(rotated["token"].as_str().unwrap().to_owned());
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stored = dump_database(&app).await;
    let logs = captured_logs();
    for t in &tokens {
        let secret = &t[22..54];
        assert!(!stored.contains(secret), "token secret found in the database");
        assert!(!logs.contains(secret), "token secret found in the logs");
    }
    assert!(
        stored.contains(&token_id(&tokens[0])),
        "the dump must cover the tokens table"
    );
}

/// Every byte the database holds for this test: the SQLite files, or every PostgreSQL row as text.
async fn dump_database(app: &TestApp) -> String {
    if app.is_postgres() {
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(app.pool())
                .await
                .unwrap();
        let mut all = String::new();
        for t in tables {
            let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT t::text FROM {t} t")))
                .fetch_all(app.pool())
                .await
                .unwrap();
            all.push_str(&rows.join("\n"));
        }
        all
    } else {
        let path = app.database_url.trim_start_matches("sqlite://").to_owned();
        let mut all = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}
