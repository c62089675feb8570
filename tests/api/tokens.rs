//! Token lifecycle over HTTP and the real binary: revocation, expiry, environment, roles,
//! rotation, last use, and where plaintext may (never) appear.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use memberpass::domain::token::TokenEnv;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, OWNER_B, TestApp, VIEWER_A, spawn_app, spawn_with, token_id};

/// `auth.failed` is written off the request path; wait for it (bounded).
async fn auth_failures(app: &TestApp, token: &str, want: usize) -> Vec<String> {
    let id = token_id(token);
    for _ in 0..100 {
        let reasons: Vec<String> = sqlx::query_scalar(
            "SELECT properties FROM audit_log WHERE token_id = $1 AND event = 'auth.failed' ORDER BY seq",
        )
        .bind(&id)
        .fetch_all(app.pool())
        .await
        .unwrap();
        if reasons.len() >= want {
            return reasons
                .iter()
                .map(|p| {
                    serde_json::from_str::<Value>(p).unwrap()["reason"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no auth.failed entry for {id}");
}

#[tokio::test]
async fn a_token_revoked_with_the_cli_is_refused_on_the_next_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);

    let out = app
        .cli(&[
            "token",
            "revoke",
            &token_id(&token),
            "--reason",
            "leaked in a transcript",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let reply = app.get("/v1/projects", &token).await;
    reply.assert_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
    assert_eq!(auth_failures(&app, &token, 1).await, ["revoked"]);
}

#[tokio::test]
async fn a_token_can_revoke_itself() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    let reply = app.call(Method::DELETE, "/v1/tokens/current", Some(&token), None).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert!(reply.body["data"]["revoked_at"].is_string());
    app.get("/v1/me", &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn no_request_started_after_the_revoke_returned_succeeds() {
    let app = Arc::new(spawn_app().await);
    let w = app.world().await;
    let token = Arc::new(app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..6 {
        let (app, token, stop) = (app.clone(), token.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let status = app.get("/v1/projects", &token).await.status.as_u16();
                seen.push((started, status));
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A token under load must not hold its own revocation back (row locks taken by its calls
    // once starved the revoking UPDATE on PostgreSQL for a minute).
    let (actor, id) = (memberpass::service::Caller::system(), token_id(&token));
    let revoke = app.service.revoke_token(&actor, &id, None);
    tokio::time::timeout(Duration::from_secs(10), revoke)
        .await
        .expect("the revocation waited behind the token's own calls")
        .unwrap();
    let revoked_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut before_ok = 0;
    let mut after = 0;
    for w in workers {
        for (started, status) in w.await.unwrap() {
            if started > revoked_at {
                after += 1;
                assert_eq!(status, 401, "a request started after the revoke returned got {status}");
            } else if status == 200 {
                before_ok += 1;
            }
        }
    }
    assert!(before_ok > 0 && after > 0, "load before {before_ok}, after {after}");
}

#[tokio::test]
async fn an_expired_token_is_refused_and_the_reason_audited() {
    let app = spawn_app().await;
    let w = app.world().await;
    let minted = app
        .service
        .mint_token(
            &memberpass::service::Caller::system(),
            memberpass::service::accounts::tokens::MintRequest {
                team_id: w.team_a.clone(),
                user_email: OWNER_A.into(),
                name: "short".into(),
                abilities: vec!["project:view-any".into()],
                project_ids: vec![],
                expires_in_ms: Some(1500),
                allowed_ips: Vec::new(),
                replaces: None,
            },
        )
        .await
        .unwrap();
    let token = minted.secret.expose_secret().to_owned();
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    app.get("/v1/projects", &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(auth_failures(&app, &token, 1).await, ["expired"]);
}

#[tokio::test]
async fn a_token_of_the_other_environment_is_refused() {
    let app = spawn_with(|c| c.env = TokenEnv::Live).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    assert!(token.starts_with("mpt_live_"));
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    let app = app.restart(|c| c.env = TokenEnv::Test).await;
    app.get("/v1/projects", &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(auth_failures(&app, &token, 1).await, ["wrong_environment"]);
}

#[tokio::test]
async fn every_kind_of_bad_token_gets_the_same_answer() {
    let app = spawn_app().await;
    let w = app.world().await;
    let good = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let mut wrong_secret = good.clone().into_bytes();
    wrong_secret[30] = if wrong_secret[30] == b'a' { b'b' } else { b'a' };
    let wrong_secret = String::from_utf8(wrong_secret).unwrap();
    let unknown = memberpass::domain::token::TokenSecret::generate(TokenEnv::Test);
    let mut bodies = Vec::new();
    for bad in [
        "",
        "nonsense",
        &wrong_secret,
        unknown.expose_secret(),
        &format!("{good}x"),
    ] {
        let reply = app.get("/v1/projects", bad).await;
        reply.assert_error(401, "AUTHENTICATION_REQUIRED");
        let mut e = reply.body["error"].clone();
        e["request_id"] = Value::Null;
        bodies.push(e);
    }
    assert!(bodies.windows(2).all(|p| p[0] == p[1]), "{bodies:#?}");
    let no_header = app.call(Method::GET, "/v1/projects", None, None).await;
    no_header.assert_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn a_role_change_or_removal_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    app.service
        .create_user("manager@memberpass.test", "Max Manager", None)
        .await
        .unwrap();
    app.service
        .set_member_role(&w.team_a, "manager@memberpass.test", Role::Manager)
        .await
        .unwrap();
    let token = app
        .mint(
            "manager@memberpass.test",
            &w.team_a,
            &[Ability::ProjectUpdate, Ability::ProjectView],
            &[],
        )
        .await;
    let rename = |n: &str| json!({"name": n});
    let path = format!("/v1/projects/{}", w.p1);
    let ok = app.call(Method::PATCH, &path, Some(&token), Some(rename("One"))).await;
    assert_eq!(ok.status, 200, "{:#}", ok.body);

    app.service
        .set_member_role(&w.team_a, "manager@memberpass.test", Role::Viewer)
        .await
        .unwrap();
    let denied = app.call(Method::PATCH, &path, Some(&token), Some(rename("Two"))).await;
    denied.assert_error(403, "TOKEN_MISSING_ABILITY");
    assert_eq!(denied.body["error"]["required_ability"], "project:update");
    assert_eq!(
        app.get(&path, &token).await.status,
        200,
        "reads the viewer role holds still work"
    );

    app.service
        .remove_member(&w.team_a, "manager@memberpass.test")
        .await
        .unwrap();
    app.get(&path, &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
}

#[tokio::test]
async fn nobody_can_mint_beyond_their_role() {
    let app = spawn_app().await;
    let w = app.world().await;
    let out = app
        .cli(&[
            "token",
            "mint",
            "--team",
            &w.team_a,
            "--user",
            VIEWER_A,
            "--name",
            "too much",
            "--ability",
            "project:update",
        ])
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not hold"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wildcard = app
        .cli(&[
            "token",
            "mint",
            "--team",
            &w.team_a,
            "--user",
            OWNER_A,
            "--name",
            "x",
            "--ability",
            "*",
        ])
        .await;
    assert!(!wildcard.status.success());
    let other_team = app
        .cli(&["token", "mint", "--team", &w.team_a, "--user", OWNER_B, "--name", "x"])
        .await;
    assert!(
        !other_team.status.success(),
        "a user outside the team cannot get a token for it"
    );
    assert_eq!(app.count("tokens").await, 1, "only the demo token exists");
}

#[tokio::test]
async fn rotation_replaces_the_token_in_one_step() {
    let app = spawn_app().await;
    let w = app.world().await;
    let old = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[&w.p1]).await;
    let out = app.cli(&["--json", "token", "rotate", &token_id(&old)]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new = rotated["token"].as_str().unwrap();
    assert_eq!(rotated["abilities"], json!(["project:view-any"]));
    assert_eq!(rotated["project_ids"], json!([w.p1]));
    assert_eq!(rotated["name"], "test token");
    app.get("/v1/projects", &old)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(app.get("/v1/projects", new).await.status, 200);
    let shown = app.cli(&["--json", "token", "show", &token_id(&old)]).await;
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["replaced_by"], rotated["id"]);
    assert!(
        shown.get("token").is_none() && shown.get("digest").is_none(),
        "{shown:#}"
    );
}

#[tokio::test]
async fn last_use_is_kept_to_the_minute_without_a_write_per_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, 200);
    let first: (Option<i64>, Option<String>) =
        sqlx::query_as("SELECT last_used_at, last_used_ip FROM tokens WHERE id = $1")
            .bind(token_id(&token))
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(first.0.is_some());
    assert_eq!(first.1.as_deref(), Some("127.0.0.1"));
    for _ in 0..3 {
        app.get("/v1/me", &token).await;
    }
    let again: Option<i64> = sqlx::query_scalar("SELECT last_used_at FROM tokens WHERE id = $1")
        .bind(token_id(&token))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(again, first.0, "no new write within the minute");
    let info = app.get("/v1/me", &token).await.body;
    assert_eq!(info["data"]["id"], token_id(&token));
    assert_eq!(info["data"]["scopes"], json!([format!("scope:team:{}", w.team_a)]));
    assert_eq!(info["data"]["owner"]["email"], OWNER_A);
}
