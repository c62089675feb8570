//! Held calls (issue 20, items 2–4), black-box over real HTTP on the test's backend: the default
//! policy holds an agent's `kick_member` and runs nothing; a person's approval lets the same
//! call run exactly once; every other way of reusing an approval — other arguments, another
//! token, after its expiry, after a denial, after a policy change, after a revocation — is
//! refused; who may approve follows the policy and the approver's own role; budgets hold a call
//! past their count; every step leaves its audit entry with the right actor.

use std::time::Duration;

use memberpass::domain::ability::Ability;
use memberpass::domain::role::Role;
use memberpass::service::accounts::approvals::PolicyChange;
use memberpass::service::{Caller, Service};
use serde_json::{Value, json};

use crate::approvals::person;
use crate::helpers::{OWNER_A, OWNER_B, TestApp, VIEWER_A, World, spawn_app, spawn_with, token_id};
use crate::mcp::call_tool;

/// The member's status, read from the database.
async fn status_of(app: &TestApp, member: &str) -> String {
    sqlx::query_scalar("SELECT status FROM members WHERE id = $1")
        .bind(member)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// Entries of `event`: actor kind, token, subject, properties.
async fn entries(app: &TestApp, event: &str) -> Vec<(String, Option<String>, Option<String>, Value)> {
    let rows: Vec<(String, Option<String>, Option<String>, String)> = sqlx::query_as(
        "SELECT actor_kind, token_id, subject_id, properties FROM audit_log WHERE event = $1 ORDER BY seq",
    )
    .bind(event)
    .fetch_all(app.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(a, t, s, p)| (a, t, s, serde_json::from_str(&p).unwrap()))
        .collect()
}

/// A tool call's §4 error object (`Null` for a success).
fn error_of(result: &Value) -> &Value {
    &result["structuredContent"]["error"]
}

/// Calls `kick_member` and expects it held: the approval's id.
async fn held(app: &TestApp, token: &str, args: Value) -> String {
    let result = call_tool(app, token, "kick_member", args).await;
    assert_eq!(result["isError"], true, "{result:#}");
    let e = error_of(&result);
    assert_eq!(e["code"], "APPROVAL_REQUIRED", "{result:#}");
    let id = e["approval_id"].as_str().unwrap().to_owned();
    let url = format!("{}/settings/approvals/{id}", app.base);
    assert_eq!(e["approval_url"], url.as_str());
    assert_eq!(
        e["message"],
        format!("A person must approve this on {url}; then call the same tool again with the same arguments.")
    );
    // The same sentence as text, for a client that shows only text.
    let texts: Vec<&str> = result["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["text"].as_str())
        .collect();
    assert!(texts.contains(&e["message"].as_str().unwrap()), "{texts:?}");
    id
}

/// Calls `kick_member` and expects `APPROVAL_INVALID` for `reason`.
async fn invalid(app: &TestApp, token: &str, args: Value, reason: &str) {
    let result = call_tool(app, token, "kick_member", args).await;
    assert_eq!(result["isError"], true, "{result:#}");
    assert_eq!(error_of(&result)["code"], "APPROVAL_INVALID", "{result:#}");
    assert_eq!(error_of(&result)["reason"], reason, "{result:#}");
}

/// Adds `email` to `team` as `role`, or changes their role, as the operator's CLI does.
async fn set_role(app: &TestApp, team: &str, email: &str, role: &str) {
    let out = app
        .cli(&["team", "add-member", "--team", team, "--email", email, "--role", role])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn decide(service: &Service, caller: &Caller, id: &str, grant: bool) -> Result<String, String> {
    service
        .decide_approval(caller, id, grant)
        .await
        .map(|v| v.status)
        .map_err(|e| e.to_string())
}

struct Setup {
    app: TestApp,
    w: World,
    token: String,
    owner: Caller,
}

async fn setup_with(tweak: impl FnOnce(&mut memberpass::app::ServeConfig)) -> Setup {
    let app = spawn_with(tweak).await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let owner = person(&app, &w.team_a, OWNER_A, Role::Owner).await;
    Setup { app, w, token, owner }
}

#[tokio::test]
async fn an_approved_call_runs_once_for_its_caller_and_its_arguments_only() {
    let Setup { app, w, token, owner } = setup_with(|_| {}).await;
    let args = json!({"member_id": w.member, "reason": "spam"});
    let before = status_of(&app, &w.member).await;
    assert_ne!(before, "churned");

    // Held: nothing ran, one request, one `approval.requested` by the agent's token.
    let id = held(&app, &token, args.clone()).await;
    assert_eq!(status_of(&app, &w.member).await, before, "a held call runs nothing");
    let requested = entries(&app, "approval.requested").await;
    assert_eq!(requested.len(), 1);
    let (actor, by_token, subject, props) = &requested[0];
    assert_eq!(
        (actor.as_str(), by_token.as_deref(), subject.as_deref()),
        ("mcp", Some(token_id(&token).as_str()), Some(id.as_str()))
    );
    assert_eq!(props["operation"], "kick_member");
    assert_eq!(props["arguments"]["reason"], "spam");
    assert_eq!(props["hold"], "policy");
    // What it would change, from its body run and rolled back.
    assert_eq!(props["preview"]["status"]["to"], "churned", "{props:#}");

    // Repeated while pending: the same request, nothing new.
    assert_eq!(held(&app, &token, args.clone()).await, id);
    assert_eq!(app.count("approval_requests").await, 1);

    // The approval page's data: who asks and what it would do.
    let view = app.service.approval(&owner, &id).await.unwrap();
    assert_eq!(view.token_id, token_id(&token));
    assert!(view.may_approve && view.may_deny);
    assert!(view.effect[0].contains("Removes"), "{:?}", view.effect);

    assert_eq!(decide(&app.service, &owner, &id, true).await.unwrap(), "granted");
    let granted = entries(&app, "approval.granted").await;
    assert_eq!(granted.len(), 1);
    assert_eq!((granted[0].0.as_str(), granted[0].1.as_deref()), ("human", None));

    // Other arguments: not covered (a new request), and nothing ran.
    let other = json!({"member_id": w.member, "reason": "other"});
    let other_id = held(&app, &token, other.clone()).await;
    assert_ne!(other_id, id);
    // `reason` left out is not `reason: "spam"` either.
    held(&app, &token, json!({"member_id": w.member})).await;
    // Another token of the same person: not covered.
    let second = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    assert_ne!(held(&app, &second, args.clone()).await, id);
    assert_eq!(status_of(&app, &w.member).await, before);

    // The same caller, the same arguments (keys in another order): runs, once.
    let run = call_tool(
        &app,
        &token,
        "kick_member",
        json!({"reason": "spam", "member_id": w.member}),
    )
    .await;
    assert_eq!(run["isError"], false, "{run:#}");
    assert_eq!(status_of(&app, &w.member).await, "churned");
    let ran = entries(&app, "kick_member").await;
    let success: Vec<_> = ran.iter().filter(|e| e.3.get("approved_by").is_some()).collect();
    assert_eq!(success.len(), 1, "{ran:#?}");
    assert_eq!(success[0].3["approval_id"], id.as_str());
    let owner_id = owner.member().unwrap().user_id.to_string();
    assert_eq!(success[0].3["approved_by"], owner_id.as_str());

    // Again: the approval is used; answered once as such, then a new request.
    invalid(&app, &token, args.clone(), "used").await;
    assert_ne!(held(&app, &token, args).await, id);
    let row: (String, Option<String>) =
        sqlx::query_as("SELECT status, used_request_id FROM approval_requests WHERE id = $1")
            .bind(&id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(row.0, "used");
    assert!(row.1.is_some(), "the call that used it is named");
}

#[tokio::test]
async fn a_denied_or_expired_approval_is_refused_with_why() {
    let Setup { app, w, token, owner } = setup_with(|c| c.approval_ttl = Duration::from_secs(2)).await;
    let args = json!({"member_id": w.member, "reason": null});
    let id = held(&app, &token, args.clone()).await;
    assert_eq!(decide(&app.service, &owner, &id, false).await.unwrap(), "denied");
    assert_eq!(entries(&app, "approval.denied").await.len(), 1);
    invalid(&app, &token, args.clone(), "denied").await;
    // A decided request is not decided again.
    assert!(decide(&app.service, &owner, &id, true).await.is_err());

    // Granted, then not used in time.
    let id = held(&app, &token, args.clone()).await;
    assert_eq!(decide(&app.service, &owner, &id, true).await.unwrap(), "granted");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    invalid(&app, &token, args.clone(), "expired").await;
    let expired = entries(&app, "approval.expired").await;
    assert!(
        expired.iter().any(|e| e.2.as_deref() == Some(id.as_str())),
        "{expired:#?}"
    );
    assert!(expired.iter().all(|e| e.0 == "system"));

    // Pending past its expiry: it cannot be approved any more.
    let id = held(&app, &token, args.clone()).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let late = decide(&app.service, &owner, &id, true).await.unwrap_err();
    assert!(late.contains("expired"), "{late}");
    assert_eq!(status_of(&app, &w.member).await, "customer", "nothing ever ran");
}

#[tokio::test]
async fn who_may_approve_follows_the_policy_and_the_approvers_role() {
    let Setup { app, w, token, owner } = setup_with(|_| {}).await;
    let viewer = person(&app, &w.team_a, VIEWER_A, Role::Viewer).await;
    let other_team = person(&app, &w.team_b, OWNER_B, Role::Owner).await;
    let id = held(&app, &token, json!({"member_id": w.member})).await;

    // A viewer: neither the token's owner nor an admin, and their role cannot kick.
    let view = app.service.approval(&viewer, &id).await;
    assert!(view.is_err(), "a viewer does not even see another person's request");
    assert!(decide(&app.service, &viewer, &id, true).await.is_err());
    assert!(decide(&app.service, &viewer, &id, false).await.is_err());
    // Another team's owner: no such request.
    let err = decide(&app.service, &other_team, &id, true).await.unwrap_err();
    assert!(err.contains("not found"), "{err}");
    assert!(entries(&app, "approval.granted").await.is_empty());

    // `not-the-caller`: the token's owner may not approve their own token's call; an admin may.
    let change = PolicyChange {
        approvals: vec![],
        approver: Some("not-the-caller".into()),
    };
    app.service
        .change_approval_policy(&Caller::system(), &w.team_a, &change)
        .await
        .unwrap();
    // The policy changed: the pending request is void for its caller.
    invalid(&app, &token, json!({"member_id": w.member}), "policy_changed").await;
    let id = held(&app, &token, json!({"member_id": w.member})).await;
    let own = decide(&app.service, &owner, &id, true).await.unwrap_err();
    assert!(own.contains("other than the token's owner"), "{own}");
    set_role(&app, &w.team_a, VIEWER_A, "admin").await;
    let admin = person(&app, &w.team_a, VIEWER_A, Role::Admin).await;
    assert_eq!(decide(&app.service, &admin, &id, true).await.unwrap(), "granted");
    let run = call_tool(&app, &token, "kick_member", json!({"member_id": w.member})).await;
    assert_eq!(run["isError"], false, "{run:#}");
}

#[tokio::test]
async fn revoking_the_token_or_removing_its_owner_voids_what_waits() {
    let Setup { app, w, token, owner } = setup_with(|_| {}).await;
    let pending = held(&app, &token, json!({"member_id": w.member})).await;
    let granted = held(&app, &token, json!({"member_id": w.member, "reason": "x"})).await;
    decide(&app.service, &owner, &granted, true).await.unwrap();
    let out = app.cli(&["token", "revoke", &token_id(&token)]).await;
    assert!(out.status.success());
    let statuses: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, voided_reason FROM approval_requests ORDER BY requested_at")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            (pending.clone(), "voided".into(), Some("token_revoked".into())),
            (granted.clone(), "voided".into(), Some("token_revoked".into())),
        ]
    );
    let voided = entries(&app, "approval.voided").await;
    assert_eq!(voided.len(), 2);
    assert!(decide(&app.service, &owner, &pending, true).await.is_err());

    // A person removed from the team: their tokens' requests go with them.
    set_role(&app, &w.team_a, VIEWER_A, "manager").await;
    let manager = app
        .mint(VIEWER_A, &w.team_a, &[Ability::McpFull, Ability::MemberUpdate], &[])
        .await;
    let id = held(&app, &manager, json!({"member_id": w.member})).await;
    let out = app
        .cli(&["team", "remove-member", "--team", &w.team_a, "--email", VIEWER_A])
        .await;
    assert!(out.status.success());
    let status: (String, Option<String>) =
        sqlx::query_as("SELECT status, voided_reason FROM approval_requests WHERE id = $1")
            .bind(&id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(status, ("voided".into(), Some("member_removed".into())));
}

#[tokio::test]
async fn an_admin_revoking_the_token_voids_what_waits_in_the_same_call() {
    let Setup { app, w, token, owner } = setup_with(|_| {}).await;
    let pending = held(&app, &token, json!({"member_id": w.member})).await;
    let admin = app.mint(OWNER_A, &w.team_a, &[Ability::TokenRevokeAny], &[]).await;
    let reply = app
        .post(&format!("/v1/tokens/{}/revoke", token_id(&token)), &admin, json!({}))
        .await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    let status: (String, Option<String>) =
        sqlx::query_as("SELECT status, voided_reason FROM approval_requests WHERE id = $1")
            .bind(&pending)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(status, ("voided".into(), Some("token_revoked".into())));
    assert_eq!(entries(&app, "approval.voided").await.len(), 1);
    assert!(decide(&app.service, &owner, &pending, true).await.is_err());
}

#[tokio::test]
async fn a_call_that_would_fail_is_refused_as_it_is_and_asks_nobody() {
    let Setup { app, w, token, .. } = setup_with(|_| {}).await;
    // Another team's member: not found, as without a policy.
    let b = app.mint(OWNER_B, &w.team_b, Ability::ALL, &[]).await;
    let result = call_tool(&app, &b, "kick_member", json!({"member_id": w.member})).await;
    assert_eq!(error_of(&result)["code"], "RESOURCE_NOT_FOUND", "{result:#}");
    // Bad input: the field is named.
    let result = call_tool(
        &app,
        &token,
        "kick_member",
        json!({"member_id": w.member, "reason": "x".repeat(501)}),
    )
    .await;
    assert_eq!(error_of(&result)["code"], "VALIDATION_FAILED", "{result:#}");
    // No ability: refused before anything else.
    let reader = app
        .mint(OWNER_A, &w.team_a, &[Ability::McpFull, Ability::MemberView], &[])
        .await;
    let result = call_tool(&app, &reader, "kick_member", json!({"member_id": w.member})).await;
    assert_eq!(error_of(&result)["code"], "TOKEN_MISSING_ABILITY", "{result:#}");
    assert_eq!(app.count("approval_requests").await, 0);
    assert!(entries(&app, "approval.requested").await.is_empty());
}

#[tokio::test]
async fn rest_is_held_only_when_the_owner_says_so_and_answers_202_with_location() {
    let Setup { app, w, token, owner } = setup_with(|_| {}).await;
    let path = format!("/v1/members/{}/kick", w.member);
    // Default: REST holds nothing (scripts).
    let other_member: String = sqlx::query_scalar(
        "SELECT id FROM members WHERE project_id = $1 AND status = 'customer' AND id <> $2 ORDER BY id LIMIT 1",
    )
    .bind(&w.p1)
    .bind(&w.member)
    .fetch_one(app.pool())
    .await
    .unwrap();
    let ran = app
        .post(&format!("/v1/members/{other_member}/kick"), &token, json!({}))
        .await;
    assert_eq!(ran.status, 200, "{:#}", ran.body);

    let change = PolicyChange {
        approvals: vec!["kick_member=both".into()],
        approver: None,
    };
    app.service
        .change_approval_policy(&Caller::system(), &w.team_a, &change)
        .await
        .unwrap();
    let res = app
        .client
        .post(format!("{}{path}", app.base))
        .bearer_auth(&token)
        .json(&json!({"reason": "rest"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = res.json().await.unwrap();
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("{}/settings/approvals/{id}", app.base));
    assert_eq!(body["data"]["status"], "pending");
    assert_eq!(body["data"]["operation"], "kick_member");
    assert_eq!(body["data"]["arguments"]["reason"], "rest");
    assert_eq!(body["error"]["code"], "APPROVAL_REQUIRED");
    assert_eq!(body["error"]["approval_id"], id.as_str());
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("send the same request again")
    );
    decide(&app.service, &owner, &id, true).await.unwrap();
    let ran = app.post(&path, &token, json!({"reason": "rest"})).await;
    assert_eq!(ran.status, 200, "{:#}", ran.body);
    assert_eq!(status_of(&app, &w.member).await, "churned");
    let again = app.post(&path, &token, json!({"reason": "rest"})).await;
    again.assert_error(409, "APPROVAL_INVALID");
}

#[tokio::test]
async fn a_budget_of_two_kicks_holds_the_third() {
    let Setup { app, w, token, owner } = setup_with(|_| {}).await;
    // No policy hold on either surface: only the budget holds.
    app.hold_nothing(&w.team_a).await;
    let out = app
        .cli(&["token", "budget", &token_id(&token), "kick_member", "2"])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let members: Vec<String> =
        sqlx::query_scalar("SELECT id FROM members WHERE project_id = $1 AND status = 'customer' ORDER BY id LIMIT 4")
            .bind(&w.p1)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(members.len(), 4, "the demo has four customers to kick");
    let kick = |m: &str| format!("/v1/members/{m}/kick");
    // Two kicks run: one over REST, one over MCP (a budget counts the token's calls anywhere).
    assert_eq!(app.post(&kick(&members[0]), &token, json!({})).await.status, 200);
    let run = call_tool(&app, &token, "kick_member", json!({"member_id": members[1]})).await;
    assert_eq!(run["isError"], false, "{run:#}");
    let info = app.get("/v1/me", &token).await;
    assert_eq!(
        info.body["data"]["budgets"],
        json!([{"operation": "kick_member", "limit": 2, "used": 2, "remaining": 0, "window": "24h"}])
    );
    // The third is held, not refused.
    let third = app.post(&kick(&members[2]), &token, json!({})).await;
    assert_eq!(third.status, 202, "{:#}", third.body);
    assert_eq!(third.body["data"]["hold"], "budget");
    assert_eq!(status_of(&app, &members[2]).await, "customer");
    let id = third.body["data"]["id"].as_str().unwrap().to_owned();
    // Another token of the same person has its own budget (none): it runs.
    let other = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    assert_eq!(app.post(&kick(&members[3]), &other, json!({})).await.status, 200);
    // Approved, the third runs (and counts).
    decide(&app.service, &owner, &id, true).await.unwrap();
    let ran = app.post(&kick(&members[2]), &token, json!({})).await;
    assert_eq!(ran.status, 200, "{:#}", ran.body);
    assert_eq!(status_of(&app, &members[2]).await, "churned");
    let info = app.get("/v1/me", &token).await;
    assert_eq!(info.body["data"]["budgets"][0]["used"], 3);
    // MCP says so before the call.
    let listed = crate::mcp::rpc(&app, Some(&token), "tools/list", json!({})).await;
    let tools = listed.body["result"]["tools"].as_array().unwrap();
    let tool = tools.iter().find(|t| t["name"] == "kick_member").unwrap();
    assert_eq!(
        tool["_meta"]["io.memberpass/approval"]["budget"]["remaining"], 0,
        "{tool:#}"
    );
    assert!(
        tool["description"]
            .as_str()
            .unwrap()
            .contains("2 of these calls per rolling 24 h (0 left)")
    );
}

#[tokio::test]
async fn a_token_makes_the_controls_only_stricter() {
    let Setup { app, w, token, .. } = setup_with(|_| {}).await;
    // Stricter: allowed, and audited as the token.
    let tighter = app
        .call(
            reqwest::Method::PATCH,
            "/v1/approval-policy",
            Some(&token),
            Some(json!({"rules": [{"operation": "create_project", "surfaces": "both"}], "approver": "not-the-caller"})),
        )
        .await;
    assert_eq!(tighter.status, 200, "{:#}", tighter.body);
    assert_eq!(tighter.body["data"]["version"], 1);
    // Looser: refused, naming what it would release; nothing written.
    let looser = app
        .call(
            reqwest::Method::PATCH,
            "/v1/approval-policy",
            Some(&token),
            Some(json!({"rules": [{"operation": "kick_member", "surfaces": "none"}]})),
        )
        .await;
    looser.assert_error(409, "CONFLICT");
    assert!(
        looser.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kick_member on mcp")
    );
    let policy = app.get("/v1/approval-policy", &token).await;
    assert_eq!(policy.body["data"]["version"], 1);
    // Over MCP too: the agent cannot release its own hold.
    let released = call_tool(
        &app,
        &token,
        "update_approval_policy",
        json!({"rules": [{"operation": "kick_member", "surfaces": "none"}]}),
    )
    .await;
    assert_eq!(error_of(&released)["code"], "CONFLICT", "{released:#}");
    // Budgets: adding or lowering one is fine; raising or removing it is not.
    let id = token_id(&token);
    let set = |limit: i64| {
        app.post(
            "/v1/token-budgets",
            &token,
            json!({"token_id": id, "operation": "kick_member", "max_calls": limit}),
        )
    };
    assert_eq!(set(3).await.status, 200);
    assert_eq!(set(2).await.status, 200);
    set(5).await.assert_error(409, "CONFLICT");
    set(0).await.assert_error(409, "CONFLICT");
    // A manager's token changes nothing at all.
    set_role(&app, &w.team_a, VIEWER_A, "manager").await;
    let manager = app.mint(VIEWER_A, &w.team_a, &[Ability::TeamView], &[]).await;
    let refused = app
        .call(
            reqwest::Method::PATCH,
            "/v1/approval-policy",
            Some(&manager),
            Some(json!({"approver": "not-the-caller"})),
        )
        .await;
    refused.assert_error(409, "CONFLICT");
    let changes = entries(&app, "approval.policy_changed").await;
    let succeeded: Vec<_> = changes.iter().filter(|e| e.3.get("changes").is_some()).collect();
    assert_eq!(succeeded.len(), 1, "{changes:#?}");
    assert_eq!(succeeded[0].0, "api_token");
}

#[tokio::test]
async fn a_person_is_never_held() {
    let app = spawn_app().await;
    let w = app.world().await;
    let owner = person(&app, &w.team_a, OWNER_A, Role::Owner).await;
    let member = memberpass::domain::ids::MemberId::parse(&w.member).unwrap();
    let done = app
        .service
        .invoke::<memberpass::service::ops::members::KickMember>(
            &owner,
            memberpass::service::ops::members::MemberReason {
                member_id: member,
                reason: None,
            },
        )
        .await;
    assert!(done.is_ok(), "{:?}", done.err());
    assert_eq!(status_of(&app, &w.member).await, "churned");
    assert_eq!(app.count("approval_requests").await, 0);
}
