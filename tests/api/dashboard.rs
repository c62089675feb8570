//! The dashboard over real HTTP (browser tests come with the rest of the dashboard): sign-in,
//! the session cookie, CSRF and origin checks, the tokens page as a `human` principal.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app, spawn_with, token_id};

pub const PASSWORD: &str = "correct horse battery staple";

/// A person with a password, in team A with `role`.
pub async fn person(app: &TestApp, team: &str, email: &str, role: Role) {
    app.service
        .create_user(email, "Dash Board", Some(PASSWORD))
        .await
        .unwrap();
    app.service.set_member_role(team, email, role).await.unwrap();
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn sign_in(app: &TestApp, email: &str, password: &str, site: &str) -> reqwest::Response {
    client()
        .post(format!("{}/login", app.base))
        .header("sec-fetch-site", site)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("email", email), ("password", password)]))
        .send()
        .await
        .unwrap()
}

/// Signs in and returns the session cookie (`name=value`).
pub async fn cookie(app: &TestApp, email: &str) -> String {
    let res = sign_in(app, email, PASSWORD, "same-origin").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let set = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

pub async fn page(app: &TestApp, path: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

async fn entries(app: &TestApp, event: &str) -> Vec<(String, Option<String>, Option<String>)> {
    sqlx::query_as("SELECT actor_kind, causer_id, token_id FROM audit_log WHERE event = $1 ORDER BY seq")
        .bind(event)
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn signing_in_sets_a_strict_cookie_and_the_tokens_page_is_a_human_call() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let token = app
        .mint("dash@memberpass.test", &w.team_a, &[Ability::ProjectViewAny], &[])
        .await;
    let login = client().get(format!("{}/login", app.base)).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let csp = login.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        !csp.contains("unsafe-inline") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    assert_eq!(login.headers()["referrer-policy"], "no-referrer");

    let res = sign_in(&app, "DASH@memberpass.test", PASSWORD, "same-origin").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/settings/tokens");
    let set = res.headers()["set-cookie"].to_str().unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        set.starts_with("mp_session="),
        "plain HTTP: no __Host- prefix, no Secure: {set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let html = page(&app, "/settings/tokens", &cookie).await.text().await.unwrap();
    assert!(html.contains(&token_id(&token)), "the page lists the user's token");
    assert!(!html.contains(&token[22..54]), "never the secret");
    assert!(
        html.contains("Northwind Creators"),
        "the page says which team it acts in"
    );
    // The page's listing went through the service as the person; the page load is audited
    // once, as a `dashboard.view` of the person (human, no token), not once per read.
    assert!(entries(&app, "list_tokens").await.is_empty());
    let viewed = entries(&app, "dashboard.view").await;
    assert_eq!(viewed.len(), 1);
    assert_eq!(viewed[0].0, "human");
    assert!(viewed[0].1.is_some() && viewed[0].2.is_none());
    assert_eq!(entries(&app, "session.login").await.len(), 1);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Viewer).await;
    let wrong = sign_in(&app, "dash@memberpass.test", "not the password", "same-origin").await;
    let unknown = sign_in(&app, "nobody@memberpass.test", PASSWORD, "same-origin").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get("set-cookie").is_none());
    let (a, b) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert!(a.contains("The email or the password is not right."));
    assert!(b.contains("The email or the password is not right."));
    let failed = entries(&app, "session.login_failed").await;
    assert_eq!(failed.len(), 2);
    assert!(failed[0].1.is_some(), "the known user is the causer");
    assert!(failed[1].1.is_none(), "an unknown email has none");
}

#[tokio::test]
async fn forms_from_another_site_or_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Viewer).await;
    let cross = sign_in(&app, "dash@memberpass.test", PASSWORD, "cross-site").await;
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let cookie = cookie(&app, "dash@memberpass.test").await;
    let html = page(&app, "/settings/tokens", &cookie).await.text().await.unwrap();
    let csrf = csrf_of(&html);
    let logout = |site: &'static str, csrf: String| {
        let cookie = cookie.clone();
        let base = app.base.clone();
        async move {
            client()
                .post(format!("{base}/logout"))
                .header("cookie", cookie)
                .header("sec-fetch-site", site)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[("csrf", &csrf)]))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(logout("same-origin", String::new()).await, StatusCode::FORBIDDEN);
    assert_eq!(logout("same-origin", "x".repeat(32)).await, StatusCode::FORBIDDEN);
    assert_eq!(logout("cross-site", csrf.clone()).await, StatusCode::FORBIDDEN);
    assert_eq!(
        page(&app, "/settings/tokens", &cookie).await.status(),
        200,
        "still signed in"
    );
    assert_eq!(logout("same-origin", csrf).await, StatusCode::SEE_OTHER);
    let after = page(&app, "/settings/tokens", &cookie).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session is over");
    assert_eq!(after.headers()["location"], "/login");
    assert_eq!(entries(&app, "session.logout").await.len(), 1);
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_account_and_address() {
    let app = spawn_with(|c| c.rate_limit_auth_failures = 3).await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Viewer).await;
    for _ in 0..3 {
        let res = sign_in(&app, "dash@memberpass.test", "guess", "same-origin").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let over = sign_in(&app, "dash@memberpass.test", "guess", "same-origin").await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let locked = sign_in(&app, "dash@memberpass.test", PASSWORD, "same-origin").await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(locked.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn a_session_ends_with_the_membership_and_sees_only_its_team() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let a_token = app.mint("dash@memberpass.test", &w.team_a, &[], &[]).await;
    person(&app, &w.team_b, "bee@memberpass.test", Role::Owner).await;
    let b_cookie = cookie(&app, "bee@memberpass.test").await;
    let html = page(&app, "/settings/tokens", &b_cookie).await.text().await.unwrap();
    assert!(
        !html.contains(&token_id(&a_token)),
        "team B's user sees none of team A's tokens"
    );
    assert!(!html.contains("Northwind Creators"));
    let a_cookie = cookie(&app, "dash@memberpass.test").await;
    assert_eq!(page(&app, "/settings/tokens", &a_cookie).await.status(), 200);
    app.service
        .remove_member(&w.team_a, "dash@memberpass.test")
        .await
        .unwrap();
    assert_eq!(
        page(&app, "/settings/tokens", &a_cookie).await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_new_password_ends_every_session_of_the_person_at_the_next_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let first = cookie(&app, "dash@memberpass.test").await;
    let second = cookie(&app, "dash@memberpass.test").await;
    person(&app, &w.team_a, "else@memberpass.test", Role::Viewer).await;
    let bystander = cookie(&app, "else@memberpass.test").await;
    let too_short = app.service.set_password("dash@memberpass.test", "short").await;
    assert!(too_short.is_err(), "a short password is refused");
    assert_eq!(
        page(&app, "/settings/tokens", &first).await.status(),
        200,
        "and changed nothing"
    );
    let ended = app
        .service
        .set_password("dash@memberpass.test", "an entirely new passphrase")
        .await
        .unwrap();
    assert_eq!(ended, 2);
    for session in [&first, &second] {
        let res = page(&app, "/settings/tokens", session).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(res.headers()["location"], "/login");
    }
    assert_eq!(
        page(&app, "/settings/tokens", &bystander).await.status(),
        200,
        "someone else's session is untouched"
    );
    assert_eq!(
        sign_in(&app, "dash@memberpass.test", PASSWORD, "same-origin")
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "the old password no longer signs in"
    );
    assert_eq!(
        sign_in(
            &app,
            "dash@memberpass.test",
            "an entirely new passphrase",
            "same-origin"
        )
        .await
        .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(entries(&app, "user.password_changed").await.len(), 1);
}

pub async fn post_form(app: &TestApp, path: &str, cookie: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .unwrap()
}

/// The token a "shown once" page shows.
fn token_on(html: &str) -> String {
    let at = html.find("id=\"token\" readonly value=\"").expect("the token field") + 27;
    html[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_person_mints_uses_rotates_and_revokes_a_token_from_the_dashboard() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let cookie = cookie(&app, "dash@memberpass.test").await;
    let html = page(&app, "/settings/tokens", &cookie).await.text().await.unwrap();
    assert!(html.contains("name=\"ability\" value=\"mcp:full\""));
    assert!(!html.contains("checked"), "no ability is pre-selected");
    assert!(
        html.contains("value=\"project:delete\" data-writes=\"true\" disabled"),
        "an ability the manager role lacks is offered disabled"
    );
    let csrf = csrf_of(&html);
    // Mint with two abilities; the page shows the token once, with client configs.
    let minted = post_form(
        &app,
        "/settings/tokens",
        &cookie,
        &[
            ("csrf", &csrf),
            ("name", "laptop"),
            ("ability", "mcp:full"),
            ("ability", "project:view-any"),
            ("expires", "30"),
        ],
    )
    .await;
    assert_eq!(minted.status(), 200);
    let html = minted.text().await.unwrap();
    let token = token_on(&html);
    assert!(html.contains("mcp-remote") && html.contains("AUTH_TOKEN") && html.contains("claude mcp add"));
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body["data"]["abilities"],
        serde_json::json!(["mcp:full", "project:view-any"])
    );
    assert!(me.body["data"]["expires_at"].is_string());
    let listing = page(&app, "/settings/tokens", &cookie).await.text().await.unwrap();
    assert!(
        listing.contains(&token_id(&token)) && !listing.contains(&token[22..54]),
        "listed, never in full"
    );
    // Beyond the role: refused, nothing minted.
    let before = app.count("tokens").await;
    let refused = post_form(
        &app,
        "/settings/tokens",
        &cookie,
        &[("csrf", &csrf), ("name", "x"), ("ability", "project:delete")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("tokens").await, before);
    // Without the CSRF token: refused.
    let forged = post_form(
        &app,
        "/settings/tokens",
        &cookie,
        &[("name", "x"), ("ability", "mcp:full")],
    )
    .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // Rotate: the old token fails, the new one works.
    let rotated = post_form(
        &app,
        &format!("/settings/tokens/{}/rotate", token_id(&token)),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(rotated.status(), 200);
    let replacement = token_on(&rotated.text().await.unwrap());
    app.get("/v1/me", &token)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    assert_eq!(app.get("/v1/me", &replacement).await.status, 200);
    // Revoke, after the confirmation page: the next API call fails.
    let confirm = page(
        &app,
        &format!("/settings/tokens/{}/revoke", token_id(&replacement)),
        &cookie,
    )
    .await;
    assert_eq!(confirm.status(), 200);
    assert!(confirm.text().await.unwrap().contains("Revoke now"));
    let revoked = post_form(
        &app,
        &format!("/settings/tokens/{}/revoke", token_id(&replacement)),
        &cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    app.get("/v1/me", &replacement)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    // Every step is the person's, in the audit.
    for event in ["token.minted", "token.rotated", "token.revoked"] {
        let seen = entries(&app, event).await;
        assert!(
            seen.iter().any(|(kind, causer, _)| kind == "human" && causer.is_some()),
            "{event}: {seen:?}"
        );
    }
}

#[tokio::test]
async fn nobody_revokes_or_rotates_a_token_that_is_not_theirs() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Owner).await;
    let owners = app.mint(crate::helpers::OWNER_A, &w.team_a, &[], &[]).await;
    let cookie = cookie(&app, "dash@memberpass.test").await;
    let csrf = csrf_of(&page(&app, "/settings/tokens", &cookie).await.text().await.unwrap());
    for action in ["revoke", "rotate"] {
        let res = post_form(
            &app,
            &format!("/settings/tokens/{}/{action}", token_id(&owners)),
            &cookie,
            &[("csrf", &csrf)],
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{action}");
    }
    assert_eq!(
        app.get("/v1/me", &owners).await.status,
        200,
        "the other person's token still works"
    );
}

#[tokio::test]
async fn an_expiry_out_of_range_or_not_a_number_is_refused_never_wrapped() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let cookie = cookie(&app, "dash@memberpass.test").await;
    let csrf = csrf_of(&page(&app, "/settings/tokens", &cookie).await.text().await.unwrap());
    let tokens = app.count("tokens").await;
    // 2^54 + 30 days: its milliseconds wrapped to 30 days. Then i64::MAX days, the largest
    // number of days whose milliseconds fit and are still too long, out of range, not numbers.
    let too_long = (i64::MAX / (24 * 60 * 60 * 1000)).to_string();
    for expires in [
        "18014398509482014",
        "9223372036854775807",
        too_long.as_str(),
        "3651",
        "0",
        "-30",
        "thirty",
        "30.5",
    ] {
        let res = post_form(
            &app,
            "/settings/tokens",
            &cookie,
            &[
                ("csrf", &csrf),
                ("name", "laptop"),
                ("ability", "project:view-any"),
                ("expires", expires),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "expires={expires}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("Not minted: expires_in must be from 1 minute to 3650 days."),
            "expires={expires}: {html}"
        );
    }
    assert_eq!(app.count("tokens").await, tokens, "nothing was minted");
}

#[tokio::test]
async fn the_activity_log_filters_pages_and_exports_the_teams_entries_only() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Viewer).await;
    let token = app
        .mint(crate::helpers::OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[])
        .await;
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    let dash = cookie(&app, "dash@memberpass.test").await;
    let last_day = page(&app, "/settings/activity?preset=24h", &dash).await;
    assert_eq!(last_day.status(), 200);
    let html = last_day.text().await.unwrap();
    assert!(
        html.contains("list_projects") && html.contains(&token_id(&token)),
        "the REST call is there"
    );
    // Filtered by the token, exported: only its entries.
    let path = format!("/settings/activity?token_id={}&format=ndjson", token_id(&token));
    let ndjson = page(&app, &path, &dash).await.text().await.unwrap();
    let lines: Vec<serde_json::Value> = ndjson.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty());
    assert!(
        lines.iter().all(|e| e["token_id"] == token_id(&token).as_str()),
        "{ndjson}"
    );
    let csv = page(
        &app,
        &format!("/settings/activity?token_id={}&format=csv", token_id(&token)),
        &dash,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(csv.starts_with("created_at,team_id,actor_kind"));
    assert_eq!(csv.lines().count(), lines.len() + 1);
    // A bad filter says which and why.
    let bad = page(&app, "/settings/activity?outcome=maybe", &dash).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.unwrap().contains("outcome"));
    // Another team's person sees none of it.
    person(&app, &w.team_b, "bee@memberpass.test", Role::Owner).await;
    let b = cookie(&app, "bee@memberpass.test").await;
    let theirs = page(&app, "/settings/activity?format=ndjson", &b)
        .await
        .text()
        .await
        .unwrap();
    assert!(!theirs.contains(&token_id(&token)) && !theirs.contains(&w.team_a));
    // Reading the log is itself on the log, as the person.
    assert!(
        entries(&app, "get_activity_log")
            .await
            .iter()
            .all(|(kind, _, token)| kind == "human" && token.is_none())
    );
}

#[tokio::test]
async fn the_leaked_token_playbook_walks_from_revocation_to_replacement() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let leaked = app
        .mint(
            "dash@memberpass.test",
            &w.team_a,
            &[Ability::ProjectViewAny, Ability::ProjectCreate],
            &[&w.p1],
        )
        .await;
    let id = token_id(&leaked);
    assert_eq!(
        app.post("/v1/projects", &leaked, serde_json::json!({"name": "x"}))
            .await
            .status,
        403
    );
    assert_eq!(app.get(&format!("/v1/projects/{}", w.p1), &leaked).await.status, 403);
    let dash = cookie(&app, "dash@memberpass.test").await;
    let path = format!("/settings/tokens/{id}");
    let html = page(&app, &path, &dash).await.text().await.unwrap();
    assert!(html.contains("Revoke now") && html.contains(&format!("Quote the token ID <code>{id}</code>")));
    assert!(html.contains("Never send the token itself"));
    let csrf = csrf_of(&html);
    // 1. Revoke now.
    let revoked = post_form(&app, &format!("{path}/revoke"), &dash, &[("csrf", &csrf)]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    app.get("/v1/projects", &leaked)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    // 2. The last 24 hours: this token first, and its use after the revocation.
    let html = page(&app, &path, &dash).await.text().await.unwrap();
    assert!(
        html.contains("auth.failed (revoked)"),
        "the attempt after revocation is shown"
    );
    let first_row = html.find("<tbody>").unwrap();
    assert!(html[first_row..].find(&id).unwrap() < html[first_row..].find("session.login").unwrap());
    // 3 and 4. A replacement with the same abilities and project, and its configs.
    let replaced = post_form(&app, &format!("{path}/replace"), &dash, &[("csrf", &csrf)]).await;
    assert_eq!(replaced.status(), 200);
    let html = replaced.text().await.unwrap();
    assert!(html.contains("mcp-remote"));
    let new = token_on(&html);
    let me = app.get("/v1/me", &new).await;
    assert_eq!(
        me.body["data"]["abilities"],
        serde_json::json!(["project:view-any", "project:create"])
    );
    assert_eq!(me.body["data"]["project_ids"], serde_json::json!([w.p1]));
}

#[tokio::test]
async fn a_batch_of_clear_codes_is_downloaded_once_by_someone_who_may_generate_them() {
    let app = spawn_with(|c| c.run_jobs = false).await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    let (owner, job) = generate_codes(&app, &w, "dash@memberpass.test", 5).await;
    person(&app, &w.team_a, "viewer2@memberpass.test", Role::Viewer).await;
    let viewer = cookie(&app, "viewer2@memberpass.test").await;
    assert_eq!(
        page(&app, "/settings/access-codes", &viewer).await.status(),
        StatusCode::FORBIDDEN
    );
    let dash = cookie(&app, "dash@memberpass.test").await;
    let html = page(&app, "/settings/access-codes", &dash).await.text().await.unwrap();
    assert!(html.contains(&job) && html.contains("<strong>once</strong>"));
    let csrf = csrf_of(&html);
    let viewer_csrf = csrf_of(&page(&app, "/settings/tokens", &viewer).await.text().await.unwrap());
    let refused = post_form(
        &app,
        &format!("/settings/access-codes/{job}/download"),
        &viewer,
        &[("csrf", &viewer_csrf)],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let download = post_form(
        &app,
        &format!("/settings/access-codes/{job}/download"),
        &dash,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(download.status(), 200);
    let csv = download.text().await.unwrap();
    let codes: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(codes.len(), 5);
    // The API only ever shows them masked: first and last four characters.
    let listed = app.get(&format!("/v1/plans/{}/access-codes", w.plan), &owner).await;
    let masked: Vec<String> = listed.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap().to_owned())
        .collect();
    for code in &codes {
        assert!(
            masked
                .iter()
                .any(|m| m.starts_with(&code[..4]) && m.ends_with(&code[12..])),
            "{code}"
        );
    }
    let again = post_form(
        &app,
        &format!("/settings/access-codes/{job}/download"),
        &dash,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "once, never again");
    assert_eq!(app.count("access_code_downloads").await, 0, "the clear codes are gone");
    let audited = entries(&app, "access_codes.downloaded").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].0, "human");
}

/// A batch of `quantity` clear codes generated through REST by `email` (a token of theirs that may
/// generate and list codes); returns the token and the batch's job id.
async fn generate_codes(app: &TestApp, w: &crate::helpers::World, email: &str, quantity: u32) -> (String, String) {
    let token = app
        .mint(
            email,
            &w.team_a,
            &[Ability::AccessCodeCreate, Ability::AccessCodeViewAny],
            &[],
        )
        .await;
    let job = app
        .post(
            &format!("/v1/plans/{}/access-codes", w.plan),
            &token,
            serde_json::json!({"quantity": quantity}),
        )
        .await;
    assert_eq!(job.status, 202, "{:#}", job.body);
    let job = job.body["data"]["id"].as_str().unwrap().to_owned();
    while app.service.try_run_one_job().await.unwrap() {}
    (token, job)
}

async fn download(app: &TestApp, cookie: &str, job: &str) -> reqwest::Response {
    let csrf = csrf_of(&page(app, "/settings/tokens", cookie).await.text().await.unwrap());
    post_form(
        app,
        &format!("/settings/access-codes/{job}/download"),
        cookie,
        &[("csrf", &csrf)],
    )
    .await
}

#[tokio::test]
async fn only_its_creator_or_an_owner_or_admin_takes_a_batch_and_an_admin_taking_anothers_is_audited() {
    let app = spawn_with(|c| c.run_jobs = false).await;
    let w = app.world().await;
    for (email, role) in [
        ("maker@memberpass.test", Role::Manager),
        ("peer@memberpass.test", Role::Manager),
        ("boss@memberpass.test", Role::Admin),
    ] {
        person(&app, &w.team_a, email, role).await;
    }
    let (_, first) = generate_codes(&app, &w, "maker@memberpass.test", 5).await;
    let (_, second) = generate_codes(&app, &w, "maker@memberpass.test", 3).await;
    let (maker, peer, boss) = (
        cookie(&app, "maker@memberpass.test").await,
        cookie(&app, "peer@memberpass.test").await,
        cookie(&app, "boss@memberpass.test").await,
    );

    // Another manager, whose role may generate codes too: the batch does not exist for them.
    let listed = page(&app, "/settings/access-codes", &peer).await.text().await.unwrap();
    assert!(!listed.contains(&first) && !listed.contains(&second));
    let taken = download(&app, &peer, &first).await;
    assert_eq!(taken.status(), StatusCode::NOT_FOUND);
    let gone = download(&app, &peer, "0190a5e2-0000-7000-8000-000000000000").await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        taken.text().await.unwrap(),
        gone.text().await.unwrap(),
        "the same answer as a batch that does not exist"
    );
    assert_eq!(app.count("access_code_downloads").await, 2, "nothing was taken");

    // Its creator takes their own.
    let listed = page(&app, "/settings/access-codes", &maker).await.text().await.unwrap();
    assert!(listed.contains(&first) && listed.contains(&second));
    let own = download(&app, &maker, &second).await;
    assert_eq!(own.status(), 200);
    assert_eq!(own.text().await.unwrap().lines().skip(1).count(), 3);

    // An admin sees whose batch it is and takes it; the entry says it was another's.
    let listed = page(&app, "/settings/access-codes", &boss).await.text().await.unwrap();
    assert!(listed.contains(&first) && listed.contains("maker@memberpass.test"));
    let admins = download(&app, &boss, &first).await;
    assert_eq!(admins.status(), 200);
    assert_eq!(admins.text().await.unwrap().lines().skip(1).count(), 5);
    assert_eq!(download(&app, &maker, &first).await.status(), StatusCode::NOT_FOUND);

    let maker_id: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind("maker@memberpass.test")
        .fetch_one(app.pool())
        .await
        .unwrap();
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT subject_id, properties FROM audit_log WHERE event = 'access_codes.downloaded' ORDER BY seq",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let audited: Vec<(String, serde_json::Value)> = audited
        .into_iter()
        .map(|(job, p)| (job, serde_json::from_str(&p).unwrap()))
        .collect();
    assert_eq!(audited.len(), 2);
    assert_eq!(audited[0].0, second);
    assert!(audited[0].1.get("others_batch").is_none(), "{}", audited[0].1);
    assert_eq!(audited[1].0, first);
    assert_eq!(
        audited[1].1["others_batch"],
        serde_json::json!({"created_by": maker_id, "as_role": "admin"})
    );
}

#[tokio::test]
async fn a_person_in_two_teams_switches_between_them_and_nowhere_else() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "dash@memberpass.test", Role::Manager).await;
    app.service
        .set_member_role(&w.team_b, "dash@memberpass.test", Role::Viewer)
        .await
        .unwrap();
    let in_a = app.mint("dash@memberpass.test", &w.team_a, &[], &[]).await;
    let in_b = app.mint("dash@memberpass.test", &w.team_b, &[], &[]).await;
    let dash = cookie(&app, "dash@memberpass.test").await;
    let html = page(&app, "/settings/tokens", &dash).await.text().await.unwrap();
    assert!(html.contains("Switch to") && html.contains(&token_id(&in_a)) && !html.contains(&token_id(&in_b)));
    let csrf = csrf_of(&html);
    let switched = post_form(&app, "/session/team", &dash, &[("csrf", &csrf), ("team", &w.team_b)]).await;
    assert_eq!(switched.status(), StatusCode::SEE_OTHER);
    let html = page(&app, "/settings/tokens", &dash).await.text().await.unwrap();
    assert!(html.contains("Other Creator Co") && html.contains(&token_id(&in_b)) && !html.contains(&token_id(&in_a)));
    // A team the person is not in does not exist for them.
    let third = app.service.create_team("Third", "other@memberpass.test").await.unwrap();
    let refused = post_form(&app, "/session/team", &dash, &[("csrf", &csrf), ("team", &third)]).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    assert_eq!(entries(&app, "session.team_switched").await.len(), 1);
}
