//! Settings → Approvals → Policy over real HTTP (issue 20): an owner changes the team's approval
//! policy and a token's budget with the dashboard's forms, behind the CSRF token and this origin;
//! only what changed is written and audited (as `human`), and the agent's next call meets it. A
//! viewer reads the policy and changes nothing.

use memberpass::domain::ability::Ability;
use memberpass::domain::approval::{ApproverRule, SurfaceRule};
use reqwest::StatusCode;
use serde_json::json;

use crate::dashboard::{client, cookie, csrf_of, form, page, post_form};
use crate::dashboard_approvals::{entries, passwords, user_id};
use crate::helpers::{OWNER_A, OWNER_B, TestApp, VIEWER_A, spawn_app, token_id};
use crate::mcp::call_tool;

const POLICY: &str = "/settings/approvals/policy";
const BUDGETS: &str = "/settings/approvals/budgets";

/// The policy page as the person signed in with `cookie`.
async fn policy_page(app: &TestApp, cookie: &str) -> String {
    let res = page(app, POLICY, cookie).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

/// The page a form's 303 sends back to.
async fn followed(app: &TestApp, res: reqwest::Response, cookie: &str) -> String {
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    page(app, &location, cookie).await.text().await.unwrap()
}

/// The value of the option selected in the select of id `id`.
fn selected(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let select = &html[at..at + html[at..].find("</select>").unwrap()];
    let option = select.find(" selected>").expect("an option is selected");
    let value = select[..option].rfind("value=\"").unwrap() + 7;
    select[value..].split('"').next().unwrap().to_owned()
}

/// The text of the element of id `id`.
fn text_of<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    &html[start..start + html[start..].find('<').unwrap()]
}

async fn post_from(app: &TestApp, path: &str, cookie: &str, site: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    client()
        .post(format!("{}{path}", app.base))
        .header("cookie", cookie)
        .header("sec-fetch-site", site)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(pairs))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_owner_releases_kick_member_in_the_policy_form_and_the_agents_call_then_runs() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let owner = cookie(&app, OWNER_A).await;
    let list = page(&app, "/settings/approvals", &owner).await.text().await.unwrap();
    assert!(
        list.contains("href=\"/settings/approvals/policy\""),
        "the list links to it"
    );

    let html = policy_page(&app, &owner).await;
    assert!(html.contains("id=\"policy-form\"") && html.contains("id=\"save-policy\""));
    assert_eq!(text_of(&html, "policy-version"), "0");
    assert_eq!(selected(&html, "rule-kick_member"), "mcp");
    assert_eq!(selected(&html, "rule-create_project"), "none");
    assert_eq!(selected(&html, "approver"), "owner-or-admin");
    assert!(html.contains("name=\"rule.kick_member\""));
    assert!(!html.contains("id=\"rule-list_projects\""), "a read is never held");

    // The whole form as the browser sends it: every rule, one of them changed.
    let csrf = csrf_of(&html);
    let fields = [
        ("csrf", csrf.as_str()),
        ("version", "0"),
        ("rule.ban_member", "mcp"),
        ("rule.kick_member", "none"),
        ("rule.create_project", "none"),
        ("approver", "not-the-caller"),
    ];
    let res = post_form(&app, POLICY, &owner, &fields).await;
    assert_eq!(res.headers()["location"], "/settings/approvals/policy?saved=policy");
    let html = followed(&app, res, &owner).await;

    let policy = app.service.approval_policy(&w.team_a).await.unwrap();
    assert_eq!(policy.rule("kick_member"), SurfaceRule::None);
    assert_eq!(policy.rule("ban_member"), SurfaceRule::Mcp);
    assert_eq!(policy.approver, ApproverRule::NotTheCaller);
    assert_eq!(policy.version, 1);
    let changed = entries(&app, "approval.policy_changed").await;
    assert_eq!(changed.len(), 1);
    let (actor, causer, properties) = &changed[0];
    assert_eq!(actor, "human");
    assert_eq!(causer.as_deref(), Some(user_id(&app, OWNER_A).await.as_str()));
    assert_eq!(properties["after"]["approver"], "not-the-caller");
    let held_after: Vec<&str> = properties["after"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap())
        .collect();
    assert!(!held_after.contains(&"kick_member") && held_after.contains(&"ban_member"));

    assert_eq!(text_of(&html, "policy-version"), "1");
    assert_eq!(selected(&html, "rule-kick_member"), "none");
    assert_eq!(selected(&html, "approver"), "not-the-caller");
    let notice = text_of(&html, "policy-notice");
    assert!(notice.starts_with("Policy saved"), "{notice}");

    // The agent's kick is no longer held.
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let args = json!({"member_id": w.member, "reason": "spamming the group"});
    let ran = call_tool(&app, &token, "kick_member", args).await;
    assert_eq!(ran["isError"], false, "{ran:#}");

    // The same form again changes nothing and writes nothing.
    let mut again = fields;
    again[1] = ("version", "1");
    let res = post_form(&app, POLICY, &owner, &again).await;
    assert_eq!(res.headers()["location"], "/settings/approvals/policy?unchanged=policy");
    let html = followed(&app, res, &owner).await;
    assert!(text_of(&html, "policy-notice").starts_with("Nothing to save"));
    // A form drawn from an older version is not applied over the newer one.
    let stale = [("csrf", csrf.as_str()), ("version", "0"), ("rule.ban_member", "none")];
    let res = post_form(&app, POLICY, &owner, &stale).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("changed while this form was open"));
    // A rule that does not exist is refused, named.
    let bogus = [
        ("csrf", csrf.as_str()),
        ("version", "1"),
        ("rule.ban_member", "sometimes"),
    ];
    let res = post_form(&app, POLICY, &owner, &bogus).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("unknown surface rule"));
    assert_eq!(app.service.approval_policy(&w.team_a).await.unwrap().version, 1);
    assert_eq!(entries(&app, "approval.policy_changed").await.len(), 1);
}

#[tokio::test]
async fn forged_posts_and_a_viewers_posts_change_neither_the_policy_nor_a_budget() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let owner = cookie(&app, OWNER_A).await;
    let csrf = csrf_of(&policy_page(&app, &owner).await);
    let release = |csrf: &str| {
        [
            ("csrf", csrf.to_owned()),
            ("version", "0".to_owned()),
            ("rule.kick_member", "none".to_owned()),
        ]
    };
    let budget = |csrf: &str| {
        [
            ("csrf", csrf.to_owned()),
            ("token_id", w.token.clone()),
            ("operation", "create_project".to_owned()),
            ("limit", "1".to_owned()),
        ]
    };
    let pairs = |f: &[(&'static str, String)]| f.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();

    // Without the CSRF token, with a wrong one, or from another site: 403.
    for (token, site) in [("", "same-origin"), ("x", "same-origin"), (csrf.as_str(), "cross-site")] {
        for (path, fields) in [(POLICY, pairs(&release(token))), (BUDGETS, pairs(&budget(token)))] {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let res = post_from(&app, path, &owner, site, &fields).await;
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path} {site} {token:?}");
        }
    }

    // A viewer reads the policy, without a form, and sees no tokens or budgets.
    let viewer = cookie(&app, VIEWER_A).await;
    let html = policy_page(&app, &viewer).await;
    assert!(!html.contains("id=\"policy-form\"") && !html.contains("id=\"budget-form\""));
    assert!(html.contains("<code>kick_member</code>") && html.contains("owner or an admin"));
    assert!(!html.contains(&w.token), "no token of the team is listed to a viewer");
    let csrf = csrf_of(&html);
    for (path, fields) in [(POLICY, pairs(&release(&csrf))), (BUDGETS, pairs(&budget(&csrf)))] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = post_form(&app, path, &viewer, &fields).await;
        assert_eq!(res.status(), StatusCode::CONFLICT, "{path}");
        let html = res.text().await.unwrap();
        assert!(html.contains("only an owner or an admin"), "{path}: {html}");
    }
    // Another team's owner does not reach team A's token at all.
    let other = cookie(&app, OWNER_B).await;
    let csrf = csrf_of(&policy_page(&app, &other).await);
    let fields = pairs(&budget(&csrf));
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        post_form(&app, BUDGETS, &other, &fields).await.status(),
        StatusCode::NOT_FOUND
    );

    let policy = app.service.approval_policy(&w.team_a).await.unwrap();
    assert_eq!((policy.version, policy.rule("kick_member")), (0, SurfaceRule::Mcp));
    assert!(app.service.token_budgets(&w.token).await.unwrap().is_empty());
    assert!(entries(&app, "approval.policy_changed").await.is_empty());
    assert!(entries(&app, "token.budget_changed").await.is_empty());
}

#[tokio::test]
async fn an_owner_sets_a_budget_of_one_in_the_dashboard_and_the_tokens_second_call_waits() {
    let app = spawn_app().await;
    let w = app.world().await;
    passwords(&app).await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let id = token_id(&token);
    let owner = cookie(&app, OWNER_A).await;

    let html = policy_page(&app, &owner).await;
    assert!(html.contains("id=\"budget-form\"") && html.contains("id=\"save-budget\""));
    assert!(
        html.contains(&format!("<option value=\"{id}\">")),
        "the token is offered"
    );
    assert!(html.contains("No token of the team has a budget."));
    let csrf = csrf_of(&html);
    let set = |limit: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("token_id", id.clone()),
            ("operation", "create_project".to_owned()),
            ("limit", limit.to_owned()),
        ]
    };
    let post = |limit: &'static str| {
        let fields = set(limit);
        let app = &app;
        let owner = owner.clone();
        async move {
            let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(app, BUDGETS, &owner, &fields).await
        }
    };

    let res = post("1").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"],
        "/settings/approvals/policy?saved=budget#budgets"
    );
    let changed = entries(&app, "token.budget_changed").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].0, "human");
    assert_eq!(changed[0].2["operation"], "create_project");
    assert_eq!(changed[0].2["limit"]["to"], 1);
    let html = policy_page(&app, &owner).await;
    let row = format!("data-budget-token=\"{id}\" data-budget-operation=\"create_project\"");
    assert!(html.contains(&row), "the budget is listed");

    let first = app.post("/v1/projects", &token, json!({"name": "Budgeted 1"})).await;
    assert_eq!(first.status, 201, "{:#}", first.body);
    let second = app.post("/v1/projects", &token, json!({"name": "Budgeted 2"})).await;
    assert_eq!(second.status, 202, "{:#}", second.body);
    assert_eq!(second.body["data"]["hold"], "budget");

    // The same budget again is nothing to save; a limit that is not a number is refused.
    let res = post("1").await;
    assert_eq!(res.headers()["location"], "/settings/approvals/policy?unchanged=budget");
    let res = post("lots").await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(res.text().await.unwrap().contains("limit must be a whole number"));
    assert_eq!(entries(&app, "token.budget_changed").await.len(), 1);
    // 0 removes it.
    assert_eq!(post("0").await.status(), StatusCode::SEE_OTHER);
    assert!(app.service.token_budgets(&id).await.unwrap().is_empty());
    assert_eq!(entries(&app, "token.budget_changed").await.len(), 2);
}
