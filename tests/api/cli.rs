//! The operator CLI, as the real binary: every command with `--json`, against the test's database.

use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

async fn json(app: &TestApp, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = app.cli(&all).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON object: {e}"))
}

/// Runs the binary with `--json`, writing `stdin` to it (passwords are read from stdin).
async fn json_with_stdin(app: &TestApp, args: &[&str], stdin: &'static str) -> Value {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"));
    cmd.args(["--database-url", &app.database_url, "--json"])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice(&out.stdout).unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn an_operator_can_set_up_a_team_and_its_tokens_from_the_cli() {
    let app = spawn_app().await;
    assert_eq!(json(&app, &["migrate"]).await["migrated"], true);

    let user = json_with_stdin(
        &app,
        &[
            "user",
            "create",
            "--email",
            "Ops@Example.com",
            "--name",
            "Ops",
            "--password-stdin",
        ],
        "correct horse battery staple\n",
    )
    .await;
    assert_eq!(user["email"], "ops@example.com");
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ops@example.com'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // A new password from the CLI signs the person out everywhere.
    let changed = json_with_stdin(
        &app,
        &["user", "set-password", "--email", "ops@example.com"],
        "another long passphrase\n",
    )
    .await;
    assert_eq!(changed["sessions_ended"], 0);
    let new_hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'ops@example.com'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_ne!(new_hash, hash);

    let team = json(
        &app,
        &["team", "create", "--name", "Ops Team", "--owner", "ops@example.com"],
    )
    .await;
    let team_id = team["id"].as_str().unwrap().to_owned();
    json(
        &app,
        &["user", "create", "--email", "helper@example.com", "--name", "Helper"],
    )
    .await;
    json(
        &app,
        &[
            "team",
            "add-member",
            "--team",
            &team_id,
            "--email",
            "helper@example.com",
            "--role",
            "viewer",
        ],
    )
    .await;
    let project = json(
        &app,
        &[
            "project",
            "create",
            "--team",
            &team_id,
            "--name",
            "Signals",
            "--handle",
            "ops-signals",
        ],
    )
    .await;
    let project_id = project["id"].as_str().unwrap().to_owned();

    let minted = json(
        &app,
        &[
            "token",
            "mint",
            "--team",
            &team_id,
            "--user",
            "helper@example.com",
            "--name",
            "reader",
            "--ability",
            "project:view",
            "--project",
            &project_id,
            "--expires-in",
            "30d",
        ],
    )
    .await;
    let token = minted["token"].as_str().unwrap();
    assert_eq!(minted["project_ids"], serde_json::json!([project_id]));
    assert!(minted["expires_at"].is_string());
    assert_eq!(app.get(&format!("/v1/projects/{project_id}"), token).await.status, 200);

    let listed = json(&app, &["token", "list", "--team", &team_id]).await;
    let listed = listed["data"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(
        !serde_json::to_string(listed).unwrap().contains(&token[22..]),
        "list never shows a secret"
    );

    let revoked = json(
        &app,
        &["token", "revoke", minted["id"].as_str().unwrap(), "--reason", "done"],
    )
    .await;
    assert_eq!(revoked["revoked_reason"], "done");
    json(
        &app,
        &[
            "team",
            "remove-member",
            "--team",
            &team_id,
            "--email",
            "helper@example.com",
        ],
    )
    .await;

    let events: Vec<String> =
        sqlx::query_scalar("SELECT event FROM audit_log WHERE actor_kind = 'system' AND team_id = $1 ORDER BY seq")
            .bind(&team_id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        events,
        [
            "team.created",
            "team.member_added",
            "create_project",
            "token.minted",
            "token.revoked",
            "team.member_removed"
        ]
    );
    let verify = json(&app, &["audit", "verify"]).await;
    assert_eq!(verify["ok"], true);
}

#[tokio::test]
async fn cli_errors_are_clear_and_exit_non_zero() {
    let app = spawn_app().await;
    for args in [
        vec!["team", "create", "--name", "X", "--owner", "nobody@example.com"],
        vec!["token", "show", "not-an-id"],
        vec!["token", "revoke", "AAAAAAAAAAAA"],
        vec!["token", "mint", "--team", "nope", "--user", "a@b.c", "--name", "x"],
        vec!["audit", "export", "--since", "yesterday"],
    ] {
        let out = app.cli(&args).await;
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: "), "{args:?}: {err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"))
        .args(["--database-url", "mysql://localhost/x", "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}
