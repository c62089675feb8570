//! Settings → Approvals over real HTTP (issue 20): an agent's held `kick_member` as the person
//! deciding sees it (who asks, every argument, what it would do), Approve and Deny behind the
//! CSRF token and this origin, and what the repeated MCP call then answers. Who may not decide
//! sees why, or nothing at all.

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use memberpass::service::Caller;
use memberpass::service::accounts::approvals::PolicyChange;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dashboard::{PASSWORD, client, cookie, csrf_of, form, page, person};
use crate::helpers::{OWNER_A, OWNER_B, TestApp, VIEWER_A, World, spawn_app, token_id};
use crate::mcp::call_tool;

/// An agent's call the default policy holds: the owner's token kicks `w.member`.
pub struct Held {
    pub token: String,
    pub id: String,
    pub url: String,
    pub args: Value,
}

/// The demo people sign in with the tests' password.
pub async fn passwords(app: &TestApp) {
    for email in [OWNER_A, VIEWER_A, OWNER_B] {
        app.service.set_password(email, PASSWORD).await.unwrap();
    }
}

/// Mints an owner's token with every ability and makes the call the default policy holds.
pub async fn held_kick(app: &TestApp, w: &World) -> Held {
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let args = json!({"member_id": w.member, "reason": "spamming the group"});
    let result = call_tool(app, &token, "kick_member", args.clone()).await;
    let error = &result["structuredContent"]["error"];
    assert_eq!(error["code"], "APPROVAL_REQUIRED", "{result:#}");
    Held {
        id: error["approval_id"].as_str().unwrap().to_owned(),
        url: error["approval_url"].as_str().unwrap().to_owned(),
        token,
        args,
    }
}

/// The member the held call would kick: display name and handle.
pub async fn member_names(app: &TestApp, member: &str) -> (String, String) {
    let (name, handle): (String, Option<String>) =
        sqlx::query_as("SELECT display_name, username FROM members WHERE id = $1")
            .bind(member)
            .fetch_one(app.pool())
            .await
            .unwrap();
    (name, handle.expect("the demo member has a handle"))
}

pub async fn user_id(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn status_of(app: &TestApp, id: &str) -> String {
    sqlx::query_scalar("SELECT status FROM approval_requests WHERE id = $1")
        .bind(id)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// Actor kind, causer and properties of every entry of `event`, oldest first.
pub async fn entries(app: &TestApp, event: &str) -> Vec<(String, Option<String>, Value)> {
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT actor_kind, causer_id, properties FROM audit_log WHERE event = $1 ORDER BY seq")
            .bind(event)
            .fetch_all(app.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(a, c, p)| (a, c, serde_json::from_str(&p).unwrap()))
        .collect()
}

/// Posts a decision form (`approve` or `deny`) of request `id` with this CSRF token from `site`.
async fn decide(app: &TestApp, cookie: &str, id: &str, what: &str, csrf: &str, site: &str) -> reqwest::Response {
    client()
        .post(format!("{}/settings/approvals/{id}/{what}", app.base))
        .header("cookie", cookie)
        .header("sec-fetch-site", site)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("csrf", csrf)]))
        .send()
        .await
        .unwrap()
}

/// The page of request `id` as the person signed in with `cookie`: its status and HTML.
async fn approval_page(app: &TestApp, cookie: &str, id: &str) -> (StatusCode, String) {
    let res = page(app, &format!("/settings/approvals/{id}"), cookie).await;
    (res.status(), res.text().await.unwrap())
}

fn status_shown(html: &str) -> &str {
    let at = html.find("id=\"approval-status\"").expect("the status element");
    let text = &html[at..];
    let start = text.find('>').unwrap() + 1;
    &text[start..start + text[start..].find('<').unwrap()]
}

#[tokio::test]
async fn the_approval_page_shows_who_asks_and_exactly_what_the_call_would_do() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let held = held_kick(&app, &w).await;
    let owner = cookie(&app, OWNER_A).await;

    assert!(
        held.url.ends_with(&format!("/settings/approvals/{}", held.id)),
        "{}",
        held.url
    );
    let (status, html) = approval_page(&app, &owner, &held.id).await;
    assert_eq!(status, 200);
    let (name, handle) = member_names(&app, &w.member).await;
    assert!(
        html.contains(&name) && html.contains(&format!("@{handle}")),
        "the member by name and handle"
    );
    assert!(html.contains("live subscription(s), cancelled now"), "what they lose");
    for (arg, value) in [("member_id", w.member.as_str()), ("reason", "spamming the group")] {
        assert!(
            html.contains(&format!("<dt>{arg}</dt><dd><code>{value}</code></dd>")),
            "{arg}"
        );
    }
    assert!(
        html.contains("test token") && html.contains(&token_id(&held.token)),
        "the token by name and ID"
    );
    assert!(html.contains(OWNER_A) && html.contains("kick_member"));
    assert!(
        html.contains("status: customer → churned"),
        "the preview of the changes"
    );
    assert_eq!(status_shown(&html), "pending");
    assert!(html.contains("id=\"approve\"") && html.contains("id=\"deny\""));
    assert!(!html.contains("id=\"approval-why-not\""));

    // The list shows it, pending; every page points at it.
    let list = page(&app, "/settings/approvals", &owner).await.text().await.unwrap();
    let row = format!("<tr data-approval-id=\"{}\">", held.id);
    assert!(list.contains(&row), "{list}");
    assert!(list.contains("class=\"approval-status\">pending</td>"));
    let tokens = page(&app, "/settings/tokens", &owner).await.text().await.unwrap();
    assert!(tokens.contains("1 call(s) wait for your approval"));
    assert!(tokens.contains("href=\"/settings/approvals?status=pending\""));
    // Filters: another status leaves it out; an unknown one is a mistake, said so.
    let granted = page(&app, "/settings/approvals?status=granted", &owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(!granted.contains(&row));
    let bogus = page(&app, "/settings/approvals?status=approved", &owner).await;
    assert_eq!(bogus.status(), 400);
    assert!(bogus.text().await.unwrap().contains("unknown approval status"));
}

#[tokio::test]
async fn whoever_follows_the_link_signed_out_signs_in_and_lands_on_the_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let held = held_kick(&app, &w).await;
    let path = format!("/settings/approvals/{}", held.id);

    let res = client().get(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let login = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(login, format!("/login?next=%2Fsettings%2Fapprovals%2F{}", held.id));
    let res = client()
        .post(format!("{}/login", app.base))
        .header("sec-fetch-site", "same-origin")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("email", OWNER_A), ("password", PASSWORD), ("next", &path)]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], path.as_str());
    // The list and the decisions need a session too.
    let list = client()
        .get(format!("{}/settings/approvals", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(list.headers()["location"], "/login");
    let post = client()
        .post(format!("{}{path}/approve", app.base))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(post.headers()["location"], "/login");
    assert_eq!(status_of(&app, &held.id).await, "pending");
}

#[tokio::test]
async fn approving_needs_the_csrf_token_and_this_origin_then_the_call_runs_once() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let held = held_kick(&app, &w).await;
    let owner = cookie(&app, OWNER_A).await;
    let csrf = csrf_of(&approval_page(&app, &owner, &held.id).await.1);

    for (token, site) in [("", "same-origin"), ("x", "same-origin"), (csrf.as_str(), "cross-site")] {
        let res = decide(&app, &owner, &held.id, "approve", token, site).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{site} {token:?}");
    }
    assert_eq!(status_of(&app, &held.id).await, "pending");
    assert!(entries(&app, "approval.granted").await.is_empty());

    let res = decide(&app, &owner, &held.id, "approve", &csrf, "same-origin").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], format!("/settings/approvals/{}", held.id));
    let (_, html) = approval_page(&app, &owner, &held.id).await;
    assert_eq!(status_shown(&html), "granted");
    assert!(html.contains("Decided by") && html.contains(OWNER_A));
    assert!(!html.contains("id=\"approve\""), "decided: no buttons");
    let me = user_id(&app, OWNER_A).await;
    let granted = entries(&app, "approval.granted").await;
    assert_eq!(granted.len(), 1);
    assert_eq!(
        (granted[0].0.as_str(), granted[0].1.as_deref()),
        ("human", Some(me.as_str()))
    );
    assert_eq!(granted[0].2["operation"], "kick_member");

    // The same call, repeated, runs once under the approval and names it.
    let ran = call_tool(&app, &held.token, "kick_member", held.args.clone()).await;
    assert_eq!(ran["isError"], false, "{ran:#}");
    let kicked: Vec<_> = entries(&app, "kick_member")
        .await
        .into_iter()
        .filter(|(_, _, p)| p.get("approval_id").is_some())
        .collect();
    assert_eq!(kicked.len(), 1);
    assert_eq!(kicked[0].2["approval_id"], held.id.as_str());
    assert_eq!(kicked[0].2["approved_by"], me.as_str());
    let again = call_tool(&app, &held.token, "kick_member", held.args.clone()).await;
    let error = &again["structuredContent"]["error"];
    assert_eq!(
        (error["code"].as_str(), error["reason"].as_str()),
        (Some("APPROVAL_INVALID"), Some("used"))
    );
    assert_eq!(status_shown(&approval_page(&app, &owner, &held.id).await.1), "used");
    // Deciding again is refused on the page, with why.
    let late = decide(&app, &owner, &held.id, "deny", &csrf, "same-origin").await;
    assert_eq!(late.status(), StatusCode::CONFLICT);
    assert!(late.text().await.unwrap().contains("can no longer be decided"));
}

#[tokio::test]
async fn denying_refuses_the_repeated_call() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let held = held_kick(&app, &w).await;
    let owner = cookie(&app, OWNER_A).await;
    let before = app.state().await;
    let csrf = csrf_of(&approval_page(&app, &owner, &held.id).await.1);

    let res = decide(&app, &owner, &held.id, "deny", &csrf, "same-origin").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_shown(&approval_page(&app, &owner, &held.id).await.1), "denied");
    let denied = entries(&app, "approval.denied").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].0, "human");
    let again = call_tool(&app, &held.token, "kick_member", held.args.clone()).await;
    let error = &again["structuredContent"]["error"];
    assert_eq!(
        (error["code"].as_str(), error["reason"].as_str()),
        (Some("APPROVAL_INVALID"), Some("denied"))
    );
    assert_eq!(app.state().await, before, "the member was not kicked");
    let tokens = page(&app, "/settings/tokens", &owner).await.text().await.unwrap();
    assert!(!tokens.contains("wait for your approval"), "nothing waits any more");
}

#[tokio::test]
async fn a_viewer_and_another_team_neither_see_nor_decide_the_request() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let held = held_kick(&app, &w).await;

    // A viewer sees only their own tokens' requests: the owner's does not exist for them.
    for email in [VIEWER_A, OWNER_B] {
        let cookie = cookie(&app, email).await;
        let (status, html) = approval_page(&app, &cookie, &held.id).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{email}");
        assert!(!html.contains("id=\"approve\""));
        let list = page(&app, "/settings/approvals", &cookie).await.text().await.unwrap();
        assert!(!list.contains(&held.id), "{email}");
        assert!(!list.contains("wait for your approval"), "{email}");
        let csrf = csrf_of(&list);
        let forged = decide(&app, &cookie, &held.id, "approve", &csrf, "same-origin").await;
        assert_eq!(forged.status(), StatusCode::NOT_FOUND, "{email}");
    }
    assert_eq!(status_of(&app, &held.id).await, "pending");
    assert!(entries(&app, "approval.granted").await.is_empty());
}

#[tokio::test]
async fn when_the_team_wants_someone_else_the_tokens_owner_sees_why_and_an_admin_approves() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    person(&app, &w.team_a, "admin@memberpass.test", Role::Admin).await;
    let change = PolicyChange {
        approvals: Vec::new(),
        approver: Some("not-the-caller".into()),
    };
    app.service
        .change_approval_policy(&Caller::system(), &w.team_a, &change)
        .await
        .unwrap();
    let held = held_kick(&app, &w).await;
    let owner = cookie(&app, OWNER_A).await;

    let (_, html) = approval_page(&app, &owner, &held.id).await;
    assert!(
        !html.contains("id=\"approve\""),
        "no Approve button for the token's owner"
    );
    assert!(html.contains("id=\"deny\""), "denying is always theirs");
    let why = html.find("id=\"approval-why-not\">").expect("why not");
    assert!(html[why..].starts_with("id=\"approval-why-not\">the team requires someone other than the token"));
    let forged = decide(&app, &owner, &held.id, "approve", &csrf_of(&html), "same-origin").await;
    assert_eq!(forged.status(), StatusCode::CONFLICT);
    let page_again = forged.text().await.unwrap();
    assert!(page_again.contains("You cannot approve this"), "{page_again}");
    assert_eq!(status_shown(&page_again), "pending");
    assert_eq!(status_of(&app, &held.id).await, "pending");

    let admin = cookie(&app, "admin@memberpass.test").await;
    let (_, html) = approval_page(&app, &admin, &held.id).await;
    let res = decide(&app, &admin, &held.id, "approve", &csrf_of(&html), "same-origin").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(status_of(&app, &held.id).await, "granted");
    let granted = entries(&app, "approval.granted").await;
    assert_eq!(granted[0].1, Some(user_id(&app, "admin@memberpass.test").await));
}
