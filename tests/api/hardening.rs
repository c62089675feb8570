//! The findings of the adversarial review of the REST boundary, each tried again the way it was
//! found: revocation racing a queued write, forged proxy headers, parallel bad secrets, tokens
//! in paths and logs, member removal, rotation, expiry, bulk generation, corrupt rows.

use std::time::Duration;

use memberpass::domain::ability::Ability;
use memberpass::domain::token::{TokenEnv, TokenId, TokenSecret};
use memberpass::service::ops::catalog;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, TestApp, VIEWER_A, captured_logs, spawn_app, spawn_with, token_id};
use crate::matrix::case;

async fn member_status(app: &TestApp, member: &str) -> String {
    sqlx::query_scalar("SELECT status FROM members WHERE id = $1")
        .bind(member)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_write_waiting_for_the_writer_does_not_commit_after_its_token_loses_its_rights() {
    // What another replica (or the CLI) commits while the write waits: a revocation, a lowered
    // role, a removal from the team.
    let cases = [
        (
            "UPDATE tokens SET revoked_at = 1, revoked_reason = 'race' WHERE id = $1",
            401,
            "AUTHENTICATION_REQUIRED",
        ),
        (
            "UPDATE team_members SET role = 'viewer' WHERE user_id = (SELECT user_id FROM tokens WHERE id = $1)",
            403,
            "TOKEN_MISSING_ABILITY",
        ),
        (
            "DELETE FROM team_members WHERE user_id = (SELECT user_id FROM tokens WHERE id = $1)",
            401,
            "AUTHENTICATION_REQUIRED",
        ),
    ];
    for (change, status, code) in cases {
        let app = spawn_app().await;
        let w = app.world().await;
        let token = app.mint(OWNER_A, &w.team_a, &[Ability::MemberUpdate], &[]).await;
        let before = member_status(&app, &w.member).await;
        // The change, uncommitted, with what every such change commits with: an audit entry,
        // which holds the chain's head (and on SQLite the one writer).
        let mut blocker = app.service.db().begin_write().await.unwrap();
        sqlx::query(change)
            .bind(token_id(&token))
            .execute(&mut *blocker)
            .await
            .unwrap();
        sqlx::query("UPDATE audit_head SET seq = seq WHERE id = 1")
            .execute(&mut *blocker)
            .await
            .unwrap();
        let path = format!("/v1/members/{}/kick", w.member);
        let kick = {
            let (client, url, token) = (app.client.clone(), format!("{}{path}", app.base), token.clone());
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"reason": "race"}))
                    .send()
                    .await
                    .unwrap()
            })
        };
        // The kick has authenticated (nothing was committed yet) and waits for the write lock.
        tokio::time::sleep(Duration::from_millis(400)).await;
        blocker.commit().await.unwrap();
        let reply = crate::helpers::Reply::from_response(kick.await.unwrap()).await;
        reply.assert_error(status, code);
        assert_eq!(member_status(&app, &w.member).await, before, "{change}");
        let audit = app.audit_of(&token).await;
        let last = audit.last().expect("the refusal is audited");
        assert_eq!((last.event.as_str(), last.outcome.as_str()), ("kick_member", "denied"));
        assert_eq!(last.error_code.as_deref(), Some(code));
    }
}

#[tokio::test]
async fn the_client_address_is_the_last_hop_of_every_forwarded_line_and_must_be_an_address() {
    let app = spawn_with(|c| {
        c.behind_tls_proxy = true;
        c.rate_limit_auth_failures = 3;
    })
    .await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    let me = |lines: &[&str], bearer: String| {
        let mut req = app.client.get(format!("{}/v1/me", app.base)).bearer_auth(bearer);
        for line in lines {
            req = req.header("x-forwarded-for", *line);
        }
        req.send()
    };
    let last_ip = || async {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT ip FROM audit_log WHERE event = 'get_token_info' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    };
    // A client's own line first, the proxy's line last: the proxy's hop counts.
    assert_eq!(me(&["6.6.6.6", "10.9.9.9"], token.clone()).await.unwrap().status(), 200);
    assert_eq!(last_ip().await.as_deref(), Some("10.9.9.9"));
    // Not an address: the peer's address, never the text.
    assert_eq!(
        me(&["<img src=x onerror=alert(1)>"], token.clone())
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(last_ip().await.as_deref(), Some("127.0.0.1"));
    let used: Option<String> = sqlx::query_scalar("SELECT last_used_ip FROM tokens WHERE id = $1")
        .bind(token_id(&token))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(used.is_some_and(|ip| ip.parse::<std::net::IpAddr>().is_ok()));
    // Changing the first line does not escape the lock-out of the last hop…
    // (A different last character: a token that already ends in `0` would stay valid.)
    let last = if token.ends_with('0') { '1' } else { '0' };
    let bad = format!("{}{last}", &token[..token.len() - 1]);
    let mut statuses = Vec::new();
    for i in 0..5 {
        let res = me(&[&format!("192.0.2.{i}"), "10.7.7.7"], bad.clone()).await.unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    // …and a client whose last hop differs is not locked out by it.
    assert_eq!(
        me(&["10.7.7.7", "10.8.8.8"], token.clone()).await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn parallel_bad_secrets_from_one_address_get_no_more_answers_or_entries_than_the_limit() {
    let app = spawn_with(|c| c.rate_limit_auth_failures = 5).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    let id = TokenId::parse(&token_id(&token)).unwrap();
    let mut calls = Vec::new();
    for _ in 0..60 {
        let forged = TokenSecret::with_id(TokenEnv::Test, id.clone());
        let req = app
            .client
            .get(format!("{}/v1/me", app.base))
            .bearer_auth(forged.expose_secret())
            .send();
        calls.push(tokio::spawn(req));
    }
    let mut unauthorized = 0;
    for call in calls {
        match call.await.unwrap().unwrap().status().as_u16() {
            401 => unauthorized += 1,
            429 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(unauthorized, 5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let entries: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'auth.failed' AND token_id = $1")
            .bind(token_id(&token))
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(entries, 5);
}

#[tokio::test]
async fn a_token_in_a_path_never_reaches_the_log() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let leaked = TokenSecret::generate(TokenEnv::Test);
    let leaked = leaked.expose_secret().to_owned();
    for path in [
        format!("/v1/projects/{}", leaked.replace('_', "%5F")),
        format!("/v1/projects/%6D{}", &leaked[1..]),
        format!("/v1/nowhere/{}", leaked.replace('_', "%5F")),
        format!("/v1/nowhere/{}", leaked.replace('_', "%255F")),
        format!("/{leaked}"),
    ] {
        let reply = app.call(Method::GET, &path, Some(&token), None).await;
        assert_eq!(reply.status.as_u16(), 404, "{path}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let secret = &leaked[22..54];
    assert!(!captured_logs().contains(secret), "a token secret reached the log");
}

#[tokio::test]
async fn removing_a_member_revokes_their_tokens_for_good() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    let out = app
        .cli(&["team", "remove-member", "--team", &w.team_a, "--email", VIEWER_A])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.get("/v1/projects", &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    let out = app
        .cli(&[
            "team",
            "add-member",
            "--team",
            &w.team_a,
            "--email",
            VIEWER_A,
            "--role",
            "viewer",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.get("/v1/projects", &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    let (reason,): (Option<String>,) = sqlx::query_as("SELECT revoked_reason FROM tokens WHERE id = $1")
        .bind(token_id(&token))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("member_removed"));
    let revoked: Vec<String> =
        sqlx::query_scalar("SELECT properties FROM audit_log WHERE event = 'token.revoked' AND subject_id = $1")
            .bind(token_id(&token))
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(revoked.len(), 1);
    assert!(revoked[0].contains("member_removed"));
}

#[tokio::test]
async fn rotation_refuses_an_expired_token_and_keeps_the_environment() {
    let app = spawn_app().await;
    let w = app.world().await;
    let out = app
        .cli(&[
            "--json",
            "token",
            "mint",
            "--team",
            &w.team_a,
            "--user",
            OWNER_A,
            "--name",
            "short",
            "--expires-in",
            "1m",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let short: Value = serde_json::from_slice(&out.stdout).unwrap();
    let short_id = short["id"].as_str().unwrap();
    sqlx::query("UPDATE tokens SET expires_at = 1 WHERE id = $1")
        .bind(short_id)
        .execute(app.pool())
        .await
        .unwrap();
    let out = app.cli(&["token", "rotate", short_id]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expired"));

    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    let out = app
        .cli(&["--env", "live", "--json", "token", "rotate", &token_id(&token)])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(rotated["token"].as_str().unwrap().starts_with("mpt_test_"), "{rotated}");
}

#[tokio::test]
async fn an_expiry_out_of_range_is_refused_not_wrapped() {
    let app = spawn_app().await;
    let w = app.world().await;
    for too_long in ["106751991167d", "3651d", "99999999999999999999d"] {
        let out = app
            .cli(&[
                "token",
                "mint",
                "--team",
                &w.team_a,
                "--user",
                OWNER_A,
                "--name",
                "n",
                "--expires-in",
                too_long,
            ])
            .await;
        assert!(!out.status.success(), "{too_long}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("expires"), "{too_long}: {stderr}");
    }
    let out = app
        .cli(&[
            "token",
            "mint",
            "--team",
            &w.team_a,
            "--user",
            OWNER_A,
            "--name",
            "n",
            "--expires-in",
            "3650d",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let weird: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tokens WHERE expires_at < created_at")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(weird, 0);
}

#[tokio::test]
async fn every_list_refuses_a_limit_out_of_range_and_audits_the_refusal() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let job = uuid::Uuid::now_v7().to_string();
    let mut lists = 0;
    for op in catalog::all() {
        if op.args_schema()["properties"].get("limit").is_none() {
            continue;
        }
        lists += 1;
        let c = case(op, &w, &job);
        let before = app.audit_of(&token).await.len();
        let reply = app.get(&format!("{}?limit=1000", c.path), &token).await;
        reply.assert_error(422, "VALIDATION_FAILED");
        assert!(reply.body["error"]["fields"]["limit"].is_string(), "{}", c.op.name);
        let audit = app.audit_of(&token).await;
        assert_eq!(audit.len(), before + 1, "{} did not audit its refusal", c.op.name);
        let last = audit.last().unwrap();
        assert_eq!((last.event.as_str(), last.outcome.as_str()), (c.op.event, "failed"));
    }
    assert!(lists >= 10, "{lists}");
}

#[tokio::test]
async fn access_code_generation_is_bounded_per_team() {
    let app = spawn_with(|c| c.run_jobs = false).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let path = format!("/v1/plans/{}/access-codes", w.plan);
    let over = app.post(&path, &token, json!({"quantity": 1001})).await;
    over.assert_error(422, "VALIDATION_FAILED");
    // Three batches may wait at once.
    for _ in 0..3 {
        assert_eq!(app.post(&path, &token, json!({"quantity": 1})).await.status, 202);
    }
    app.post(&path, &token, json!({"quantity": 1}))
        .await
        .assert_error(409, "CONFLICT");
    while app.service.try_run_one_job().await.unwrap() {}
    // Ten clear batches may wait for their download.
    for _ in 0..7 {
        assert_eq!(app.post(&path, &token, json!({"quantity": 1})).await.status, 202);
        while app.service.try_run_one_job().await.unwrap() {}
    }
    app.post(&path, &token, json!({"quantity": 1}))
        .await
        .assert_error(409, "CONFLICT");
    // A batch nobody downloaded within 24 hours is forgotten.
    sqlx::query("UPDATE access_code_downloads SET created_at = 0")
        .execute(app.pool())
        .await
        .unwrap();
    app.service.try_run_one_job().await.unwrap();
    assert_eq!(app.count("access_code_downloads").await, 0);
    // 20 000 codes a day per team: past that, 429 with the time until there is room.
    sqlx::query(
        "INSERT INTO jobs (id, team_id, project_id, kind, status, input, attempts, created_by_user_id, created_at, updated_at) \
         SELECT $1, team_id, project_id, kind, 'completed', $2, 1, created_by_user_id, created_at, updated_at FROM jobs LIMIT 1",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(json!({"plan_id": w.plan, "project_id": w.p1, "quantity": 19_500, "expires_in_days": null}).to_string())
    .execute(app.pool())
    .await
    .unwrap();
    let limited = app.post(&path, &token, json!({"quantity": 1000})).await;
    limited.assert_error(429, "RATE_LIMITED");
    let wait: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((80_000..=86_400).contains(&wait), "{wait}");
    // Another team is not held back by it.
    let other = app.mint(crate::helpers::OWNER_B, &w.team_b, Ability::ALL, &[]).await;
    let plan_b: String = sqlx::query_scalar("SELECT id FROM plans WHERE team_id = $1 LIMIT 1")
        .bind(&w.team_b)
        .fetch_one(app.pool())
        .await
        .unwrap();
    let reply = app
        .post(
            &format!("/v1/plans/{plan_b}/access-codes"),
            &other,
            json!({"quantity": 1000}),
        )
        .await;
    assert_eq!(reply.status, 202, "{:#}", reply.body);
}

#[tokio::test]
async fn an_interrupted_generation_is_retried_whole() {
    let app = spawn_with(|c| c.run_jobs = false).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let path = format!("/v1/plans/{}/access-codes", w.plan);
    let job = app.post(&path, &token, json!({"quantity": 450})).await;
    let job = job.body["data"]["id"].as_str().unwrap().to_owned();
    // As if a worker claimed it, wrote a first chunk and died: lease run out, codes left behind.
    sqlx::query("UPDATE jobs SET status = 'running', attempts = 1, locked_until = 0 WHERE id = $1")
        .bind(&job)
        .execute(app.pool())
        .await
        .unwrap();
    for i in 0..200 {
        sqlx::query(
            "INSERT INTO access_codes (id, team_id, project_id, plan_id, job_id, code_digest, code_masked, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'xxxx****xxxx', 'unused', 0)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&w.team_a)
        .bind(&w.p1)
        .bind(&w.plan)
        .bind(&job)
        .bind(format!("partial-{i}"))
        .execute(app.pool())
        .await
        .unwrap();
    }
    assert!(app.service.try_run_one_job().await.unwrap());
    let codes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_codes WHERE job_id = $1")
        .bind(&job)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(codes, 450);
    let status = app.get(&format!("/v1/jobs/{job}"), &token).await;
    assert_eq!(status.body["data"]["status"], "completed");
}

#[tokio::test]
async fn a_corrupt_token_row_fails_closed() {
    let app = spawn_app().await;
    let w = app.world().await;
    let scoped = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[&w.p2]).await;
    sqlx::query("UPDATE tokens SET project_ids = 'not json' WHERE id = $1")
        .bind(token_id(&scoped))
        .execute(app.pool())
        .await
        .unwrap();
    app.get("/v1/projects", &scoped)
        .await
        .assert_error(500, "INTERNAL_ERROR");
    let token = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    sqlx::query(
        "UPDATE team_members SET role = 'superuser' WHERE user_id = (SELECT user_id FROM tokens WHERE id = $1)",
    )
    .bind(token_id(&token))
    .execute(app.pool())
    .await
    .unwrap();
    app.get("/v1/projects", &token)
        .await
        .assert_error(500, "INTERNAL_ERROR");
}

#[tokio::test]
async fn names_refuse_bidi_controls_and_invisible_characters() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    for name in ["invoice\u{202E}fdp.exe", "a\u{200B}dmin", "\u{FEFF}x", "x\u{2066}y"] {
        let reply = app.post("/v1/projects", &token, json!({"name": name})).await;
        reply.assert_error(422, "VALIDATION_FAILED");
    }
    let reply = app
        .get(&format!("/v1/projects/{}/members?search=a%07b", w.p1), &token)
        .await;
    reply.assert_error(422, "VALIDATION_FAILED");
    assert!(reply.body["error"]["fields"]["search"].is_string());
}
