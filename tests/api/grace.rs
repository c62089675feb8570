//! Rotation with a grace period (issue 21, item 6): the old secret keeps working for the grace,
//! shown as superseded, every use audited `superseded: true`; after it, `401` (`grace_ended`);
//! "end grace now" kills it at once, and so does a revocation for a leak.

use std::time::Duration;

use memberpass::domain::role::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dashboard::{client, cookie, csrf_of, form, page, person};
use crate::helpers::{TestApp, spawn_app, token_id};

const OWNER: &str = "rotator@memberpass.test";

/// A token of `OWNER` minted by the CLI.
async fn mint(app: &TestApp, team: &str) -> String {
    let out = app
        .cli(&[
            "--json",
            "token",
            "mint",
            "--team",
            team,
            "--user",
            OWNER,
            "--name",
            "rotated",
            "--ability",
            "project:view-any",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn rotate(app: &TestApp, token: &str, grace: &str) -> std::process::Output {
    app.cli(&["--json", "token", "rotate", &token_id(token), "--grace", grace])
        .await
}

async fn status(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/projects", token).await.status.as_u16()
}

/// The properties of the entries a token left, oldest first.
async fn entries_of(app: &TestApp, token: &str) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT event, properties FROM audit_log WHERE token_id = $1 ORDER BY seq")
            .bind(token_id(token))
            .fetch_all(app.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(e, p)| (e, serde_json::from_str(&p).unwrap()))
        .collect()
}

#[tokio::test]
async fn the_old_secret_works_through_its_grace_every_use_audited_then_stops() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    let old = mint(&app, &w.team_a).await;
    assert_eq!(status(&app, &old).await, 200);

    let out = rotate(&app, &old, "3s").await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let new = serde_json::from_slice::<Value>(&out.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = app.cli(&["--json", "token", "show", &token_id(&old)]).await;
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["replaced_by"], token_id(&new).as_str());
    assert!(
        shown["grace_until"].is_string() && shown["revoked_at"].is_null(),
        "{shown:#}"
    );

    // Inside the grace both work; the old one's uses say so, the new one's do not.
    assert_eq!(status(&app, &old).await, 200);
    assert_eq!(status(&app, &new).await, 200);
    let olds = entries_of(&app, &old).await;
    let after: Vec<&Value> = olds.iter().skip(1).map(|(_, p)| p).collect();
    assert!(
        !after.is_empty() && after.iter().all(|p| p["superseded"] == true),
        "{olds:#?}"
    );
    assert!(
        olds[0].1.get("superseded").is_none(),
        "before the rotation it was not superseded"
    );
    assert!(
        entries_of(&app, &new)
            .await
            .iter()
            .all(|(_, p)| p.get("superseded").is_none())
    );
    let rotated: String = sqlx::query_scalar("SELECT properties FROM audit_log WHERE event = 'token.rotated'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(rotated.contains("grace_until"), "{rotated}");

    // After it: refused, and the refusal says why.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(status(&app, &old).await, 401);
    assert_eq!(status(&app, &new).await, 200);
    // `auth.failed` entries are written off the request path: wait for it.
    let mut reasons: Vec<String> = Vec::new();
    for _ in 0..100 {
        reasons = sqlx::query_scalar(
            "SELECT properties FROM audit_log WHERE event = 'auth.failed' AND subject_id = $1 ORDER BY seq",
        )
        .bind(token_id(&old))
        .fetch_all(app.pool())
        .await
        .unwrap();
        if !reasons.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reasons.iter().any(|p| p.contains("grace_ended")), "{reasons:?}");

    // A superseded token is not rotated again, and the grace is at most 7 days.
    assert!(!rotate(&app, &old, "1h").await.status.success());
    assert!(!rotate(&app, &new, "8d").await.status.success());
}

#[tokio::test]
async fn end_grace_now_and_a_leak_revocation_kill_the_old_secret_at_once() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;

    // The owner ends the grace from the token page.
    let old = mint(&app, &w.team_a).await;
    assert!(rotate(&app, &old, "1d").await.status.success());
    assert_eq!(status(&app, &old).await, 200);
    let session = cookie(&app, OWNER).await;
    let html = page(&app, &format!("/settings/tokens/{}", token_id(&old)), &session)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"id="token-state">superseded"#), "{html}");
    assert!(
        html.contains(r#"id="grace-uses">1<"#),
        "the use above is counted: {html}"
    );
    let res = client()
        .post(format!("{}/settings/tokens/{}/end-grace", app.base, token_id(&old)))
        .header("cookie", &session)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", &csrf_of(&html))]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(status(&app, &old).await, 401);
    let ended: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'token.grace_ended' AND actor_kind = 'human'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(ended, 1);
    // Twice: nothing left to end.
    let out = app.cli(&["token", "end-grace", &token_id(&old)]).await;
    assert!(!out.status.success());

    // A leaked superseded secret, revoked by possession: no grace for a leak.
    let leaked = mint(&app, &w.team_a).await;
    assert!(rotate(&app, &leaked, "7d").await.status.success());
    assert_eq!(status(&app, &leaked).await, 200);
    let res = app
        .client
        .post(format!("{}/v1/tokens/revoke", app.base))
        .json(&json!({"token": leaked}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(status(&app, &leaked).await, 401);
}
