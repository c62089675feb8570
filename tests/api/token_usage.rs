//! Usage you can see (issue 21, item 2): each token's calls per UTC day over the last 30 days —
//! successes, refusals, writes — counted from the entries its own calls leave, in the batch that
//! chains them: in `list_team_tokens` (`usage`), as a chart on the token's page and a sparkline in
//! Settings → API Tokens. Other tokens' calls, an admin's action on the token and failed
//! authentications with its ID are not its use.

use std::time::{Duration, Instant};

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use memberpass::domain::usage::{date_of, day_of};
use memberpass::service::Caller;
use memberpass::service::accounts::tokens::MintRequest;
use serde_json::{Value, json};

use crate::dashboard::{cookie, page, person};
use crate::helpers::{OWNER_A, TestApp, World, spawn_app, token_id};
use crate::mcp::call_tool;

const ADMIN: &str = "usage-admin@memberpass.test";
const DASH: &str = "usage-dash@memberpass.test";

fn today() -> i64 {
    day_of(memberpass::store::now_ms())
}

/// The `usage` of each token `list_team_tokens` answers, by token id.
async fn usage_of(app: &TestApp, team: &str, viewer: &str) -> std::collections::HashMap<String, Value> {
    let reply = app.get(&format!("/v1/teams/{team}/tokens?limit=100"), viewer).await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_owned(), t["usage"].clone()))
        .collect()
}

/// (successes, refusals, writes) of a usage or one of its days.
fn counts(v: &Value) -> (i64, i64, i64) {
    let n = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v:#}"));
    (n("successes"), n("refusals"), n("writes"))
}

/// Sets a day of a token's usage directly (days the test cannot wait for).
async fn seed_day(app: &TestApp, team: &str, token: &str, day: i64, (s, r, w): (i64, i64, i64)) {
    sqlx::query(
        "INSERT INTO token_usage_daily (token_id, day, team_id, successes, refusals, writes) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token)
    .bind(day)
    .bind(team)
    .bind(s)
    .bind(r)
    .bind(w)
    .execute(app.pool())
    .await
    .unwrap();
}

/// Waits until the failed authentications of `token` (written in batches of their own, a moment
/// after the 401) are in the log.
async fn auth_failures_recorded(app: &TestApp, token: &str, n: i64) {
    let started = Instant::now();
    loop {
        let seen: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'auth.failed' AND token_id = $1")
                .bind(token_id(token))
                .fetch_one(app.pool())
                .await
                .unwrap();
        if seen >= n {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "auth.failed not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn setup() -> (TestApp, World) {
    let app = spawn_app().await;
    let w = app.world().await;
    app.hold_nothing(&w.team_a).await;
    app.service.create_user(ADMIN, "Ada Admin", None).await.unwrap();
    app.service
        .set_member_role(&w.team_a, ADMIN, Role::Admin)
        .await
        .unwrap();
    (app, w)
}

#[tokio::test]
async fn the_inventory_counts_exactly_a_tokens_own_calls_of_today() {
    let (app, w) = setup().await;
    let watched = app
        .mint(OWNER_A, &w.team_a, &[Ability::ProjectView, Ability::ProjectUpdate], &[])
        .await;
    let other = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    let agent = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::ProjectView], &[])
        .await;
    let admin = app
        .mint(ADMIN, &w.team_a, &[Ability::TokenViewAny, Ability::TokenRevokeAny], &[])
        .await;
    let fenced = app
        .service
        .mint_token(
            &Caller::system(),
            MintRequest {
                team_id: w.team_a.clone(),
                user_email: OWNER_A.to_owned(),
                name: "fenced".to_owned(),
                abilities: vec![Ability::ProjectView.as_str().to_owned()],
                project_ids: Vec::new(),
                expires_in_ms: None,
                allowed_ips: vec!["10.0.0.0/8".to_owned()],
                replaces: None,
            },
        )
        .await
        .unwrap();
    let fenced = fenced.secret.expose_secret().to_owned();
    let project = format!("/v1/projects/{}", w.p1);

    // The watched token: 3 successful reads, 1 write, 2 refusals (an ability it lacks, a project
    // that does not exist).
    for _ in 0..3 {
        assert_eq!(app.get(&project, &watched).await.status, 200);
    }
    let renamed = app
        .call(
            reqwest::Method::PATCH,
            &project,
            Some(&watched),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{:#}", renamed.body);
    app.get(&format!("/v1/teams/{}/tokens", w.team_a), &watched)
        .await
        .assert_error(403, "TOKEN_MISSING_ABILITY");
    let missing = app
        .get("/v1/projects/0190f5d2-0000-7000-8000-000000000000", &watched)
        .await;
    assert_eq!(missing.status, 404, "{:#}", missing.body);
    // Another token's calls are its own, over REST and MCP.
    for _ in 0..2 {
        assert_eq!(app.get(&project, &other).await.status, 200);
    }
    let got = call_tool(&app, &agent, "get_project", json!({"project_id": w.p1})).await;
    assert_ne!(got["isError"], true, "{got:#}");
    // A refusal at the door carries the token: it is the fenced token's use.
    app.get("/v1/me", &fenced)
        .await
        .assert_error(403, "TOKEN_IP_NOT_ALLOWED");
    // An admin revokes the watched token: the admin's use (a write), not the watched token's.
    let revoked = app
        .post(&format!("/v1/tokens/{}/revoke", token_id(&watched)), &admin, json!({}))
        .await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    // Someone tries the revoked token: a failed authentication is nobody's use.
    assert_eq!(app.get(&project, &watched).await.status, 401);
    auth_failures_recorded(&app, &watched, 1).await;

    let usage = usage_of(&app, &w.team_a, &admin).await;
    let of = |t: &str| usage[&token_id(t)].clone();
    let watched_usage = of(&watched);
    assert_eq!(counts(&watched_usage), (4, 2, 1), "{watched_usage:#}");
    let days = watched_usage["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29]["date"], date_of(today()), "the last day is today (UTC)");
    assert_eq!(days[0]["date"], date_of(today() - 29), "oldest first");
    assert_eq!(counts(&days[29]), (4, 2, 1));
    assert!(days[..29].iter().all(|d| counts(d) == (0, 0, 0)));
    assert_eq!(counts(&of(&other)), (2, 0, 0));
    assert_eq!(counts(&of(&agent)), (1, 0, 0), "an MCP call counts like a REST one");
    assert_eq!(counts(&of(&fenced)), (0, 1, 0));
    assert_eq!(
        counts(&of(&admin)),
        (1, 0, 1),
        "the revocation is the admin token's write (this listing is counted once it is answered)"
    );
    assert_eq!(counts(&usage[&w.token]), (0, 0, 0), "an unused token has zeros");
    // The listing itself was the admin token's read.
    let again = usage_of(&app, &w.team_a, &admin).await;
    assert_eq!(counts(&again[&token_id(&admin)]), (2, 0, 1));
}

#[tokio::test]
async fn older_days_show_on_their_date_and_days_past_the_window_do_not() {
    let (app, w) = setup().await;
    let admin = app.mint(ADMIN, &w.team_a, &[Ability::TokenViewAny], &[]).await;
    let t = token_id(&app.mint(OWNER_A, &w.team_a, &[Ability::ProjectView], &[]).await);
    let today = today();
    seed_day(&app, &w.team_a, &t, today - 1, (5, 1, 2)).await;
    seed_day(&app, &w.team_a, &t, today - 29, (0, 3, 0)).await;
    seed_day(&app, &w.team_a, &t, today - 30, (100, 0, 0)).await;
    seed_day(&app, &w.team_a, &t, today - 45, (7, 0, 0)).await;
    // Another team's row under the same id is never read into this team's inventory.
    seed_day(&app, &w.team_b, &t, today - 2, (9, 9, 9)).await;

    let usage = usage_of(&app, &w.team_a, &admin).await[&t].clone();
    let days = usage["days"].as_array().unwrap();
    assert_eq!(days[28]["date"], date_of(today - 1));
    assert_eq!(counts(&days[28]), (5, 1, 2));
    assert_eq!(days[0]["date"], date_of(today - 29));
    assert_eq!(counts(&days[0]), (0, 3, 0));
    assert_eq!(counts(&days[27]), (0, 0, 0));
    assert_eq!(counts(&usage), (5, 4, 2), "30 days back and 45 are outside the window");

    // The maintenance pass keeps 40 days.
    app.service.maintain_tokens().await.unwrap();
    let kept: Vec<i64> =
        sqlx::query_scalar("SELECT day FROM token_usage_daily WHERE token_id = $1 AND team_id = $2 ORDER BY day")
            .bind(&t)
            .bind(&w.team_a)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(kept, [today - 30, today - 29, today - 1], "team A's rows");
    let gone: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM token_usage_daily WHERE day < $1")
        .bind(today - 39)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(gone, 0, "nothing older than 40 days is kept");
}

/// The token page's text equivalent and the list's sparkline, for a person's own token.
#[tokio::test]
async fn the_token_page_shows_the_chart_with_its_text_equivalent_and_the_list_a_sparkline() {
    let (app, w) = setup().await;
    person(&app, &w.team_a, DASH, Role::Manager).await;
    let token = app.mint(DASH, &w.team_a, &[Ability::ProjectView], &[]).await;
    let id = token_id(&token);
    let project = format!("/v1/projects/{}", w.p1);
    for _ in 0..2 {
        assert_eq!(app.get(&project, &token).await.status, 200);
    }
    let refused = app
        .call(
            reqwest::Method::PATCH,
            &project,
            Some(&token),
            Some(json!({"name": "x"})),
        )
        .await;
    assert_eq!(refused.status, 403, "{:#}", refused.body);
    seed_day(&app, &w.team_a, &id, today() - 3, (10, 0, 4)).await;
    // Someone else's token: its usage is not this person's to see.
    let owners = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    assert_eq!(app.get(&project, &owners).await.status, 200);

    let c = cookie(&app, DASH).await;
    let html = page(&app, &format!("/settings/tokens/{id}"), &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"role="img" aria-labelledby="usage-title" aria-describedby="usage-summary""#));
    assert!(html.contains(
        r#"<title id="usage-title">Calls per day of the token “test token”, the last 30 days (UTC)</title>"#
    ));
    let summary = format!(
        "13 calls in the last 30 days: 12 successes (4 writes), 1 refusal. Busiest day: {} with 10 calls.",
        date_of(today() - 3)
    );
    assert!(
        html.contains(&format!(r#"<figcaption id="usage-summary">{summary}</figcaption>"#)),
        "{html}"
    );
    let table_rows: Vec<&str> = html.split("<tr><td data-label=\"Date\">").skip(1).collect();
    assert_eq!(table_rows.len(), 2, "one row per day with calls");
    assert!(table_rows[0].starts_with(&format!(
        "{}</td><td data-label=\"Successes\">10</td><td data-label=\"Writes\">4</td><td data-label=\"Refusals\">0</td>",
        date_of(today() - 3)
    )));
    assert!(table_rows[1].starts_with(&format!(
        "{}</td><td data-label=\"Successes\">2</td><td data-label=\"Writes\">0</td><td data-label=\"Refusals\">1</td>",
        date_of(today())
    )));
    assert!(!html.contains(" style="), "no inline style (the CSP forbids it)");

    let list = page(&app, "/settings/tokens", &c).await.text().await.unwrap();
    assert!(
        list.contains(r#"aria-label="13 calls in 30 days (1 refused, 4 writes)""#),
        "{list}"
    );

    // The person asks for another's token by id: nothing of it.
    let theirs = app
        .service
        .own_tokens_usage(&dash_caller(&app, &c).await, &[token_id(&owners).as_str()])
        .await
        .unwrap();
    assert_eq!(theirs[&token_id(&owners)].calls(), 0, "another's token shows no calls");
    let other_page = page(&app, &format!("/settings/tokens/{}", token_id(&owners)), &c).await;
    assert_eq!(other_page.status(), 404);
}

/// The signed-in person of a session cookie, as the dashboard's handlers get it.
async fn dash_caller(app: &TestApp, cookie: &str) -> Caller {
    let value = cookie.split_once('=').unwrap().1;
    let session = app.service.session(value).await.unwrap().expect("a session");
    Caller::person(session.person, Default::default())
}
