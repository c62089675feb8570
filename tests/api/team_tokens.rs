//! The team's credential inventory (issue 21, item 1): `list_team_tokens` shows every token of
//! the caller's team with its owner, what it can do and whether it works, and filters it;
//! `revoke_team_token` lets an owner or admin kill any one of them, audited and the owner told.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, OWNER_B, TestApp, VIEWER_A, World, spawn_app, token_id};

const ADMIN: &str = "admin@memberpass.test";
const MANAGER: &str = "manager@memberpass.test";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

async fn join(app: &TestApp, team: &str, email: &str, name: &str, role: Role) {
    app.service.create_user(email, name, None).await.unwrap();
    app.service.set_member_role(team, email, role).await.unwrap();
}

/// Team A with an admin and a manager besides its owner and viewer.
async fn team() -> (TestApp, World) {
    let app = spawn_app().await;
    let w = app.world().await;
    join(&app, &w.team_a, ADMIN, "Ada Admin", Role::Admin).await;
    join(&app, &w.team_a, MANAGER, "Max Manager", Role::Manager).await;
    (app, w)
}

fn ids(reply: &Value) -> Vec<String> {
    reply["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn set(app: &TestApp, column: &str, value: i64, token: &str) {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE tokens SET {column} = $1 WHERE id = $2"
    )))
    .bind(value)
    .bind(token_id(token))
    .execute(app.pool())
    .await
    .unwrap();
}

/// The ids `list_team_tokens` answers with `query`, sorted; every match is on the one page.
async fn listed(app: &TestApp, team: &str, token: &str, query: String) -> Vec<String> {
    let reply = app.get(&format!("/v1/teams/{team}/tokens?{query}"), token).await;
    assert_eq!(reply.status, 200, "{query}: {:#}", reply.body);
    assert_eq!(
        reply.body["meta"]["total"],
        reply.body["data"].as_array().unwrap().len()
    );
    let mut got = ids(&reply.body);
    got.sort();
    got
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn an_owner_lists_the_teams_tokens_with_owner_capability_origin_and_state() {
    let (app, w) = team().await;
    let owner = app.mint(OWNER_A, &w.team_a, &[Ability::TokenViewAny], &[]).await;
    let reader = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    let writer = app
        .mint(
            ADMIN,
            &w.team_a,
            &[Ability::ProjectView, Ability::ProjectUpdate],
            &[&w.p1],
        )
        .await;
    let elsewhere = app.mint(OWNER_B, &w.team_b, &[Ability::ProjectView], &[]).await;
    set(&app, "expires_at", now_ms() - 1000, &reader).await;

    let path = format!("/v1/teams/{}/tokens", w.team_a);
    let reply = app.get(&path, &owner).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    let listed = ids(&reply.body);
    for t in [&owner, &reader, &writer] {
        assert!(listed.contains(&token_id(t)), "{listed:?}");
    }
    assert!(listed.contains(&w.token), "the demo token is the team's too");
    assert!(
        !listed.contains(&token_id(&elsewhere)),
        "another team's token is never listed"
    );
    assert_eq!(reply.body["meta"]["total"], listed.len() as i64);
    let item = |t: &str| {
        reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == token_id(t))
            .unwrap()
            .clone()
    };
    let w_item = item(&writer);
    assert_eq!(w_item["owner"]["email"], ADMIN);
    assert_eq!(w_item["owner"]["name"], "Ada Admin");
    assert_eq!(w_item["owner"]["id"], w_item["user_id"]);
    assert_eq!(w_item["can_write"], true);
    assert_eq!(w_item["origin"], "minted");
    assert_eq!(w_item["state"], "active");
    assert_eq!(w_item["project_ids"], json!([w.p1]));
    assert_eq!(item(&reader)["can_write"], false);
    assert_eq!(item(&reader)["state"], "expired");
    assert!(!reply.body.to_string().contains(&owner[22..54]), "never a secret");

    // Revoked shows as such; an OAuth access token shows its origin.
    let app_token = app.mint(OWNER_A, &w.team_a, &[Ability::McpFull], &[]).await;
    crate::oauth_binding::make_oauth(&app, &app_token, OWNER_A, &w.team_a).await;
    sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(token_id(&writer))
        .execute(app.pool())
        .await
        .unwrap();
    let reply = app.get(&path, &owner).await;
    let revoked = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == token_id(&writer))
        .unwrap()
        .clone();
    assert_eq!(revoked["state"], "revoked");
    let oauth = reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == token_id(&app_token))
        .unwrap()
        .clone();
    assert_eq!(oauth["origin"], "oauth");
    assert_eq!(oauth["state"], "active");
}

#[tokio::test]
async fn each_filter_narrows_the_inventory() {
    let (app, w) = team().await;
    let owner = app.mint(OWNER_A, &w.team_a, &[Ability::TokenViewAny], &[]).await;
    let reader = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    let writer = app
        .mint(ADMIN, &w.team_a, &[Ability::ProjectView, Ability::ProjectUpdate], &[])
        .await;
    let idle = app.mint(ADMIN, &w.team_a, &[Ability::MemberView], &[]).await;
    let now = now_ms();
    // Used 40 days ago; minted 60 days ago and never used; used yesterday.
    set(&app, "last_used_at", now - 40 * DAY_MS, &idle).await;
    set(&app, "created_at", now - 60 * DAY_MS, &reader).await;
    set(&app, "last_used_at", now - DAY_MS, &writer).await;
    // Expiring in 3 days; in 20 days.
    set(&app, "expires_at", now + 3 * DAY_MS, &writer).await;
    set(&app, "expires_at", now + 20 * DAY_MS, &idle).await;

    let list = |query: String| listed(&app, &w.team_a, &owner, query);
    let sorted = |tokens: &[&str]| {
        let mut v: Vec<String> = tokens.iter().map(|t| token_id(t)).collect();
        v.sort();
        v
    };

    let admin_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(ADMIN)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(list(format!("user_id={admin_id}")).await, sorted(&[&writer, &idle]));
    assert_eq!(list("ability=project:update".into()).await, sorted(&[&writer]));
    // `project:view` is not found inside `project:view-any`.
    let any = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let viewers = list("ability=project:view".into()).await;
    for t in [&reader, &writer] {
        assert!(viewers.contains(&token_id(t)), "{viewers:?}");
    }
    for t in [&any, &owner, &idle] {
        assert!(!viewers.contains(&token_id(t)), "{viewers:?}");
    }
    assert_eq!(list("can_write=true".into()).await, sorted(&[&writer]));
    let read_only = list("can_write=false".into()).await;
    assert!(read_only.contains(&token_id(&reader)) && read_only.contains(&token_id(&owner)));
    assert!(!read_only.contains(&token_id(&writer)));
    assert_eq!(list("unused_days=30".into()).await, sorted(&[&reader, &idle]));
    assert_eq!(list("expiring_days=7".into()).await, sorted(&[&writer]));
    assert_eq!(list("expiring_days=30".into()).await, sorted(&[&writer, &idle]));
    assert_eq!(
        list(format!("user_id={admin_id}&can_write=false")).await,
        sorted(&[&idle])
    );
    // Paging.
    let page = app
        .get(&format!("/v1/teams/{}/tokens?limit=1&page=2", w.team_a), &owner)
        .await;
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["meta"]["has_more"], true);
    // Refused filters name themselves.
    for bad in [
        "unused_days=0",
        "ability=project:*",
        "can_write=maybe",
        "user_id=nobody",
    ] {
        let reply = app.get(&format!("/v1/teams/{}/tokens?{bad}", w.team_a), &owner).await;
        reply.assert_error(422, "VALIDATION_FAILED");
    }
}

#[tokio::test]
async fn managers_viewers_other_teams_and_project_scoped_tokens_are_refused() {
    let (app, w) = team().await;
    let path = format!("/v1/teams/{}/tokens", w.team_a);
    let manager = app
        .mint(MANAGER, &w.team_a, &Vec::from_iter(Role::Manager.abilities()), &[])
        .await;
    let reply = app.get(&path, &manager).await;
    reply.assert_error(403, "TOKEN_MISSING_ABILITY");
    assert_eq!(reply.body["error"]["required_ability"], "token:view-any");
    let viewer = app
        .mint(VIEWER_A, &w.team_a, &Vec::from_iter(Role::Viewer.abilities()), &[])
        .await;
    app.get(&path, &viewer).await.assert_error(403, "TOKEN_MISSING_ABILITY");

    // An admin's token stops working for the inventory the moment they are made a manager.
    let admin = app.mint(ADMIN, &w.team_a, &[Ability::TokenViewAny], &[]).await;
    assert_eq!(app.get(&path, &admin).await.status, 200);
    app.service
        .set_member_role(&w.team_a, ADMIN, Role::Manager)
        .await
        .unwrap();
    app.get(&path, &admin).await.assert_error(403, "TOKEN_MISSING_ABILITY");

    let scoped = app.mint(OWNER_A, &w.team_a, &[Ability::TokenViewAny], &[&w.p1]).await;
    let reply = app.get(&path, &scoped).await;
    reply.assert_error(403, "TOKEN_MISSING_ABILITY");

    let other = app.mint(OWNER_B, &w.team_b, &[Ability::TokenViewAny], &[]).await;
    app.get(&path, &other).await.assert_error(404, "RESOURCE_NOT_FOUND");
    let own = app.get(&format!("/v1/teams/{}/tokens", w.team_b), &other).await;
    assert_eq!(own.status, 200);
    assert!(!own.body.to_string().contains(w.team_a.as_str()));
}

#[tokio::test]
async fn an_admin_revokes_a_teammates_token_audited_and_the_owner_told() {
    let (app, w) = team().await;
    let admin = app.mint(ADMIN, &w.team_a, &[Ability::TokenRevokeAny], &[]).await;
    let victim = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    assert_eq!(app.get("/v1/me", &victim).await.status, 200);

    let path = format!("/v1/tokens/{}/revoke", token_id(&victim));
    let reply = app.post(&path, &admin, json!({})).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    assert_eq!(reply.body["data"]["id"], token_id(&victim));
    assert!(reply.body["data"]["revoked_at"].is_string());

    // The token is dead on its next call.
    app.get("/v1/me", &victim)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");

    // One entry, as the admin, about the token.
    let admin_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(ADMIN)
        .fetch_one(app.pool())
        .await
        .unwrap();
    let by_admin = app.audit_of(&admin).await;
    assert_eq!(by_admin.len(), 1, "{by_admin:?}");
    let e = &by_admin[0];
    assert_eq!((e.event.as_str(), e.outcome.as_str()), ("token.revoked", "success"));
    assert_eq!(e.causer_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(e.subject_type.as_deref(), Some("token"));
    assert_eq!(e.subject_id.as_deref(), Some(token_id(&victim).as_str()));
    let about: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'token.revoked' AND subject_id = $1")
            .bind(token_id(&victim))
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(about, 1);

    // The owner finds a notification naming the token and who revoked it.
    let told: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT n.kind, n.token_id, n.properties FROM notifications n JOIN users u ON u.id = n.user_id \
         WHERE u.email = $1 AND n.team_id = $2",
    )
    .bind(VIEWER_A)
    .bind(&w.team_a)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].1, token_id(&victim));
    let props: Value = serde_json::from_str(&told[0].2).unwrap();
    assert_eq!(props["revoked_by"], ADMIN);
    assert!(props["token_name"].is_string());

    // Twice: a conflict, nothing more recorded.
    app.post(&path, &admin, json!({})).await.assert_error(409, "CONFLICT");
    let after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(after, 1);
}

#[tokio::test]
async fn revoking_another_teams_or_an_unknown_token_is_not_found() {
    let (app, w) = team().await;
    let admin = app.mint(ADMIN, &w.team_a, &[Ability::TokenRevokeAny], &[]).await;
    let theirs = app.mint(OWNER_B, &w.team_b, &[Ability::ProjectView], &[]).await;
    for id in [token_id(&theirs), "AAAAAAAAAAAA".to_owned(), "not-a-token".to_owned()] {
        app.post(&format!("/v1/tokens/{id}/revoke"), &admin, json!({}))
            .await
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    assert_eq!(app.get("/v1/me", &theirs).await.status, 200, "still alive");

    // A manager may not; a project-scoped token of an owner finds nothing to revoke.
    let victim = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    let path = format!("/v1/tokens/{}/revoke", token_id(&victim));
    let manager = app
        .mint(MANAGER, &w.team_a, &Vec::from_iter(Role::Manager.abilities()), &[])
        .await;
    let reply = app.post(&path, &manager, json!({})).await;
    reply.assert_error(403, "TOKEN_MISSING_ABILITY");
    assert_eq!(reply.body["error"]["required_ability"], "token:revoke-any");
    let scoped = app.mint(OWNER_A, &w.team_a, &[Ability::TokenRevokeAny], &[&w.p1]).await;
    app.post(&path, &scoped, json!({}))
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(app.get("/v1/me", &victim).await.status, 200, "still alive");
}

#[tokio::test]
async fn the_owner_reads_who_revoked_their_token_on_the_dashboard() {
    let (app, w) = team().await;
    let dash = "dash@memberpass.test";
    crate::dashboard::person(&app, &w.team_a, dash, Role::Manager).await;
    let theirs = app.mint(dash, &w.team_a, &[Ability::ProjectView], &[]).await;
    let admin = app.mint(ADMIN, &w.team_a, &[Ability::TokenRevokeAny], &[]).await;
    let reply = app
        .post(&format!("/v1/tokens/{}/revoke", token_id(&theirs)), &admin, json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    let name = reply.body["data"]["name"].as_str().unwrap().to_owned();

    let cookie = crate::dashboard::cookie(&app, dash).await;
    let html = crate::dashboard::page(&app, "/settings/tokens", &cookie)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("Your token “{name}” was revoked by {ADMIN}")),
        "{html}"
    );
}
