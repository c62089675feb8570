//! Settings → Team tokens (issue 21, item 1, the dashboard's half): an owner or admin sees every
//! token of the team with the inventory's filters, and revokes any active one after a
//! confirmation (CSRF-protected), the token dead at once and its owner told; a manager or viewer
//! has no link and is refused the page and the revocation. Also the API's `never_used` filter.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use reqwest::StatusCode;

use crate::dashboard::{client, cookie, csrf_of, page, person, post_form};
use crate::helpers::{OWNER_A, OWNER_B, TestApp, VIEWER_A, World, spawn_app, token_id};

const ADMIN: &str = "admin@memberpass.test";
const MANAGER: &str = "manager@memberpass.test";
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

async fn team() -> (TestApp, World) {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, ADMIN, Role::Admin).await;
    person(&app, &w.team_a, MANAGER, Role::Manager).await;
    (app, w)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
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

/// The token ids the page's table lists, sorted.
fn rows(html: &str) -> Vec<String> {
    let mut ids: Vec<String> = html
        .split("data-token-id=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(tokens: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = tokens.iter().map(|t| token_id(t)).collect();
    v.sort();
    v
}

async fn team_token_ids(app: &TestApp, team: &str) -> Vec<String> {
    let mut ids: Vec<String> = sqlx::query_scalar("SELECT id FROM tokens WHERE team_id = $1")
        .bind(team)
        .fetch_all(app.pool())
        .await
        .unwrap();
    ids.sort();
    ids
}

async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_sees_every_token_of_the_team_and_none_of_another() {
    let (app, w) = team().await;
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
    // A use with a client the row names: when, from where, which client.
    let used = client()
        .get(format!("{}/v1/me", app.base))
        .bearer_auth(&reader)
        .header("user-agent", "probe-client/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), StatusCode::OK);

    let c = cookie(&app, ADMIN).await;
    let res = page(&app, "/settings/team-tokens", &c).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert_eq!(rows(&html), team_token_ids(&app, &w.team_a).await);
    assert!(
        !html.contains(&token_id(&elsewhere)),
        "another team's token is never listed"
    );
    assert!(!html.contains(&reader[22..54]), "never a secret");
    for text in [
        "href=\"/settings/team-tokens\"",
        "viewer@memberpass.test",
        ADMIN,
        "probe-client/1.0",
        "<th scope=\"col\">Usage</th>",
        "class=\"usage\"",
        &format!("/settings/team-tokens/{}/revoke", token_id(&writer)),
    ] {
        assert!(html.contains(text), "{text}");
    }
    // The scoped token names its project; the writer says it writes.
    let writer_row = html
        .split(&format!("data-token-id=\"{}\"", token_id(&writer)))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        writer_row.contains("Trading Signals") || writer_row.contains(&w.p1),
        "{writer_row}"
    );
    assert!(writer_row.contains("<strong>yes</strong>"), "{writer_row}");
    assert!(writer_row.contains(">active<"), "{writer_row}");
    // Each row's usage cell is the token's sparkline: the reader's one call, the writer's none.
    let row_of = |t: &str| {
        html.split(&format!("data-token-id=\"{}\"", token_id(t)))
            .nth(1)
            .unwrap()
            .split("</tr>")
            .next()
            .unwrap()
            .to_owned()
    };
    let reader_row = row_of(&reader);
    assert!(
        reader_row.contains("1 call in 30 days (0 refused, 0 writes)"),
        "{reader_row}"
    );
    assert!(row_of(&writer).contains("0 calls in 30 days"), "{writer_row}");
    // The owner of the team sees it as well.
    let html = page(&app, "/settings/team-tokens", &cookie_of_owner(&app, &w).await)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(rows(&html), team_token_ids(&app, &w.team_a).await);
}

/// The demo owner has no password: give them one to sign in.
async fn cookie_of_owner(app: &TestApp, _w: &World) -> String {
    app.service
        .set_password(OWNER_A, crate::dashboard::PASSWORD)
        .await
        .unwrap();
    cookie(app, OWNER_A).await
}

#[tokio::test]
async fn each_filter_of_the_page_narrows_the_list() {
    let (app, w) = team().await;
    let reader = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    let writer = app
        .mint(ADMIN, &w.team_a, &[Ability::ProjectView, Ability::ProjectUpdate], &[])
        .await;
    let idle = app.mint(ADMIN, &w.team_a, &[Ability::MemberView], &[]).await;
    let now = now_ms();
    set(&app, "last_used_at", now - 40 * DAY_MS, &idle).await;
    set(&app, "created_at", now - 60 * DAY_MS, &reader).await;
    set(&app, "last_used_at", now - DAY_MS, &writer).await;
    set(&app, "expires_at", now + 3 * DAY_MS, &writer).await;
    set(&app, "expires_at", now + 20 * DAY_MS, &idle).await;
    // The demo's own token: used recently, so it is in none of the idle lists.
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&w.token)
        .execute(app.pool())
        .await
        .unwrap();
    let c = cookie(&app, ADMIN).await;
    let list = |query: String| {
        let c = c.clone();
        let app = &app;
        async move {
            let res = page(app, &format!("/settings/team-tokens?{query}"), &c).await;
            assert_eq!(res.status(), StatusCode::OK, "{query}");
            rows(&res.text().await.unwrap())
        }
    };
    let admin = user_id(&app, ADMIN).await;
    assert_eq!(list(format!("user_id={admin}")).await, sorted(&[&writer, &idle]));
    assert_eq!(list("ability=project%3Aupdate".into()).await, sorted(&[&writer]));
    assert_eq!(list("can_write=true".into()).await, sorted(&[&writer]));
    let read_only = list("can_write=false".into()).await;
    assert!(read_only.contains(&token_id(&reader)) && read_only.contains(&token_id(&idle)));
    assert!(!read_only.contains(&token_id(&writer)));
    let mut never: Vec<String> =
        sqlx::query_scalar("SELECT id FROM tokens WHERE team_id = $1 AND last_used_at IS NULL")
            .bind(&w.team_a)
            .fetch_all(app.pool())
            .await
            .unwrap();
    never.sort();
    for used in [&token_id(&writer), &token_id(&idle), &w.token] {
        assert!(!never.contains(used));
    }
    assert_eq!(list("never_used=true".into()).await, never);
    assert!(never.contains(&token_id(&reader)));
    assert_eq!(list("unused_days=30".into()).await, sorted(&[&reader, &idle]));
    assert_eq!(list("expiring_days=7".into()).await, sorted(&[&writer]));
    assert_eq!(list(format!("user_id={admin}&can_write=false")).await, sorted(&[&idle]));
    // The form keeps what was asked.
    let html = page(&app, "/settings/team-tokens?never_used=true&can_write=true", &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"never_used\" value=\"true\" checked"));
    assert!(html.contains("<option value=\"true\" selected>yes</option>"));
    // A value the API refuses is said, not silently ignored.
    let res = page(&app, "/settings/team-tokens?user_id=nobody", &c).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("user_id"));
}

#[tokio::test]
async fn the_api_filters_never_used_tokens() {
    let (app, w) = team().await;
    let owner = app.mint(OWNER_A, &w.team_a, &[Ability::TokenViewAny], &[]).await;
    let fresh = app.mint(ADMIN, &w.team_a, &[Ability::ProjectView], &[]).await;
    let used = app.mint(ADMIN, &w.team_a, &[Ability::ProjectView], &[]).await;
    assert_eq!(app.get("/v1/me", &used).await.status, 200);
    let path = format!("/v1/teams/{}/tokens", w.team_a);
    let ids = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let never = app.get(&format!("{path}?never_used=true&limit=100"), &owner).await;
    assert_eq!(never.status, 200, "{:#}", never.body);
    let never = ids(&never);
    assert!(
        never.contains(&token_id(&fresh)) && !never.contains(&token_id(&used)),
        "{never:?}"
    );
    let once = app.get(&format!("{path}?never_used=false&limit=100"), &owner).await;
    let once = ids(&once);
    // The owner's token was used for the listing itself.
    assert!(
        once.contains(&token_id(&used)) && once.contains(&token_id(&owner)),
        "{once:?}"
    );
    assert!(!once.contains(&token_id(&fresh)));
    app.get(&format!("{path}?never_used=maybe"), &owner)
        .await
        .assert_error(422, "VALIDATION_FAILED");
    // The client of the latest call is named (REST: its User-Agent, if it sent one).
    let all = app.get(&format!("{path}?limit=100"), &owner).await;
    let item = all.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == token_id(&fresh))
        .unwrap()
        .clone();
    assert!(item["last_used_client"].is_null(), "{item:#}");
}

#[tokio::test]
async fn revoking_from_the_page_kills_the_token_and_tells_its_owner() {
    let (app, w) = team().await;
    let victim = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    let id = token_id(&victim);
    let c = cookie(&app, ADMIN).await;
    let confirm = page(&app, &format!("/settings/team-tokens/{id}/revoke"), &c).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let html = confirm.text().await.unwrap();
    assert!(
        html.contains(VIEWER_A) && html.contains(&id),
        "the page says whose token"
    );
    assert_eq!(app.get("/v1/me", &victim).await.status, 200, "it works until revoked");
    let res = post_form(
        &app,
        &format!("/settings/team-tokens/{id}/revoke"),
        &c,
        &[("csrf", &csrf_of(&html))],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/settings/team-tokens");
    app.get("/v1/me", &victim)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    // Audited as the admin, through the dashboard; the owner is told.
    let revoked: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT actor_kind, causer_id FROM audit_log WHERE event = 'token.revoked' AND subject_id = $1")
            .bind(&id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(revoked, [("human".to_owned(), Some(user_id(&app, ADMIN).await))]);
    let told: Vec<(String, String)> = sqlx::query_as(
        "SELECT n.kind, n.token_id FROM notifications n JOIN users u ON u.id = n.user_id WHERE u.email = $1",
    )
    .bind(VIEWER_A)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(told, [("revoked_by_team".to_owned(), id.clone())]);
    // The list shows it revoked, without a revoke link; its confirmation page is gone.
    let html = page(&app, "/settings/team-tokens", &c).await.text().await.unwrap();
    let row = html
        .split(&format!("data-token-id=\"{id}\""))
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(row.contains(">revoked<") && !row.contains("Revoke…"), "{row}");
    assert_eq!(
        page(&app, &format!("/settings/team-tokens/{id}/revoke"), &c)
            .await
            .status(),
        StatusCode::CONFLICT
    );
    // Another team's token does not exist here.
    let other = app.mint(OWNER_B, &w.team_b, &[Ability::ProjectView], &[]).await;
    let other_id = token_id(&other);
    assert_eq!(
        page(&app, &format!("/settings/team-tokens/{other_id}/revoke"), &c)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let csrf = csrf_of(&html);
    let res = post_form(
        &app,
        &format!("/settings/team-tokens/{other_id}/revoke"),
        &c,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/v1/me", &other).await.status, 200);
}

#[tokio::test]
async fn a_manager_or_a_viewer_has_no_link_and_is_refused_the_page_and_the_revocation() {
    let (app, w) = team().await;
    person(&app, &w.team_a, "viewer2@memberpass.test", Role::Viewer).await;
    let victim = app.mint(ADMIN, &w.team_a, &[Ability::ProjectView], &[]).await;
    let id = token_id(&victim);
    for email in [MANAGER, "viewer2@memberpass.test"] {
        let c = cookie(&app, email).await;
        let html = page(&app, "/settings/tokens", &c).await.text().await.unwrap();
        assert!(!html.contains("/settings/team-tokens"), "{email}: no link");
        assert_eq!(
            page(&app, "/settings/team-tokens", &c).await.status(),
            StatusCode::FORBIDDEN,
            "{email}"
        );
        assert_eq!(
            page(&app, &format!("/settings/team-tokens/{id}/revoke"), &c)
                .await
                .status(),
            StatusCode::FORBIDDEN,
            "{email}"
        );
        let res = post_form(
            &app,
            &format!("/settings/team-tokens/{id}/revoke"),
            &c,
            &[("csrf", &csrf_of(&html))],
        )
        .await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{email}");
        assert_eq!(app.get("/v1/me", &victim).await.status, 200, "{email}: still works");
    }
    let denied: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'token.revoked' AND outcome = 'denied' AND subject_id = $1",
    )
    .bind(&id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(denied, 2, "each refused revocation is audited");
}

#[tokio::test]
async fn the_revoke_form_needs_its_csrf_token_and_our_origin() {
    let (app, w) = team().await;
    let victim = app.mint(VIEWER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    let id = token_id(&victim);
    let c = cookie(&app, ADMIN).await;
    let html = page(&app, &format!("/settings/team-tokens/{id}/revoke"), &c)
        .await
        .text()
        .await
        .unwrap();
    let path = format!("/settings/team-tokens/{id}/revoke");
    let without = post_form(&app, &path, &c, &[]).await;
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let wrong = post_form(&app, &path, &c, &[("csrf", "not-the-token")]).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let cross = client()
        .post(format!("{}{path}", app.base))
        .header("cookie", &c)
        .header("sec-fetch-site", "cross-site")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(crate::dashboard::form(&[("csrf", &csrf_of(&html))]))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/v1/me", &victim).await.status, 200, "still works");
}
