//! Security properties as tables: every operation of the catalog, through REST, against tokens
//! of another team, without the ability, and scoped to a sibling project. A new operation in
//! the catalog is in these tables without anyone adding it.

use memberpass::domain::ability::Ability;
use memberpass::service::core::op::{DynOp, Spec, Verb};
use memberpass::service::ops::catalog;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, OWNER_B, TestApp, World, spawn_app, token_id};

/// One call of an operation against team A's project p1.
pub struct Case {
    pub op: Spec,
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    /// The id the path names, if any.
    pub path_id: Option<String>,
    /// The same call's arguments as one object (path ids and body), as an MCP tool takes them.
    pub args: Value,
}

pub fn case(op: &dyn DynOp, w: &World, job: &str) -> Case {
    let spec = op.spec();
    let mut path = spec.path.to_owned();
    let mut path_id = None;
    let mut args = serde_json::Map::new();
    for param in spec.path_params() {
        let id = match param {
            "team_id" => &w.team_a,
            "project_id" => &w.p1,
            "resource_id" => &w.resource,
            "plan_id" => &w.plan,
            "member_id" => &w.member,
            "subscription_id" => &w.subscription,
            "job_id" => job,
            "token_id" => &w.spare_token,
            other => panic!("the matrix does not know the path parameter {other}"),
        };
        path = path.replace(&format!("{{{param}}}"), id);
        path_id = Some(id.to_owned());
        args.insert(param.to_owned(), json!(id));
    }
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let body = match spec.name {
        "create_project" => Some(json!({"name": format!("Matrix {unique}")})),
        "update_project" => Some(json!({"name": format!("Renamed {unique}")})),
        "create_resource" => Some(json!({"kind": "channel", "title": "VIP", "telegram_chat_id": "-1009990001"})),
        "create_plan" => Some(
            json!({"name": format!("Plan {unique}"), "price_cents": 500, "currency": "usd", "billing_interval": "month"}),
        ),
        "publish_plan" => Some(json!({"active": false})),
        "ban_member" | "kick_member" => Some(json!({"reason": "matrix test"})),
        "bulk_generate_access_codes" => Some(json!({"quantity": 3})),
        // Stricter only (a token cannot loosen), and holding nothing the matrix calls.
        "update_approval_policy" => Some(json!({"approver": "not-the-caller"})),
        "set_token_budget" => Some(json!({"token_id": w.token, "operation": "create_project", "max_calls": 1000})),
        _ if spec.method == Verb::Post => Some(json!({})),
        _ => None,
    };
    let method = Method::from_bytes(spec.method.as_str().as_bytes()).unwrap();
    if let Some(Value::Object(b)) = &body {
        args.extend(b.clone());
    }
    Case {
        args: Value::Object(args),
        op: spec,
        method,
        path,
        body,
        path_id,
    }
}

pub async fn setup() -> (TestApp, World, String) {
    let app = spawn_app().await;
    let mut w = app.world().await;
    // A token for revoke_team_token to revoke, so the demo token lives on for the others.
    let spare = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectView], &[]).await;
    w.spare_token = token_id(&spare);
    // The matrix checks tenancy, abilities and the audit of every call as it runs: team A's
    // calls are held for nobody's approval (tests/api/held.rs checks the holds; team B keeps
    // the default policy, and its cross-team calls are refused before anything is held).
    app.hold_nothing(&w.team_a).await;
    // A job started by team A's owner, for get_job_status.
    let owner = app.mint(OWNER_A, &w.team_a, &[Ability::AccessCodeCreate], &[]).await;
    let job = app
        .post(
            &format!("/v1/plans/{}/access-codes", w.plan),
            &owner,
            json!({"quantity": 2}),
        )
        .await;
    assert_eq!(job.status, 202, "{:#}", job.body);
    let job = job.body["data"]["id"].as_str().unwrap().to_owned();
    // Let the worker finish it, so the state the tables compare does not move under them.
    for _ in 0..400 {
        let status = app.get(&format!("/v1/jobs/{job}"), &owner).await.body["data"]["status"].clone();
        if status == "completed" {
            return (app, w, job);
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the setup job did not complete");
}

pub async fn send(app: &TestApp, c: &Case, token: &str) -> crate::helpers::Reply {
    app.call(c.method.clone(), &c.path, Some(token), c.body.clone()).await
}

#[tokio::test]
async fn every_operation_hides_other_teams() {
    let (app, w, job) = setup().await;
    for op in catalog::all() {
        let c = case(op, &w, &job);
        let token = app.mint(OWNER_B, &w.team_b, Ability::ALL, &[]).await;
        let before = app.state().await;
        let reply = send(&app, &c, &token).await;
        if c.path_id.is_some() {
            assert_eq!(
                app.state().await,
                before,
                "{} changed something for another team",
                c.op.name
            );
            reply.assert_error(404, "RESOURCE_NOT_FOUND");
            let audit = app.audit_of(&token).await;
            assert_eq!(audit.len(), 1, "{}: {audit:?}", c.op.name);
            assert_eq!(audit[0].outcome, "denied", "{}", c.op.name);
            assert_eq!(audit[0].team_id.as_deref(), Some(w.team_b.as_str()), "{}", c.op.name);
        } else if c.op.name == "get_activity_log" {
            // B's log holds B's own attempts (with the ids B typed), never team A's entries.
            let entries = reply.body["data"].as_array().expect("a list");
            assert!(!entries.is_empty());
            assert!(
                entries.iter().all(|e| e["team_id"] == w.team_b.as_str()),
                "{:#}",
                reply.body
            );
        } else {
            // No id to name: the call acts in the caller's own team and shows nothing of team A.
            let text = reply.body.to_string();
            for id in [&w.team_a, &w.p1, &w.p2] {
                assert!(!text.contains(id.as_str()), "{} leaked team A: {text}", c.op.name);
            }
        }
    }
}

#[tokio::test]
async fn every_operation_names_its_missing_ability() {
    let (app, w, job) = setup().await;
    for op in catalog::all() {
        let c = case(op, &w, &job);
        let Some(required) = c.op.ability else { continue };
        let others: Vec<Ability> = Ability::ALL.iter().copied().filter(|a| *a != required).collect();
        let token = app.mint(OWNER_A, &w.team_a, &others, &[]).await;
        let before = app.state().await;
        let reply = send(&app, &c, &token).await;
        reply.assert_error(403, "TOKEN_MISSING_ABILITY");
        assert_eq!(
            app.state().await,
            before,
            "{} changed something without its ability",
            c.op.name
        );
        assert_eq!(
            reply.body["error"]["required_ability"],
            required.as_str(),
            "{}",
            c.op.name
        );
        let audit = app.audit_of(&token).await;
        assert_eq!(audit.len(), 1, "{}: {audit:?}", c.op.name);
        assert_eq!(audit[0].outcome, "denied");
        assert_eq!(audit[0].error_code.as_deref(), Some("TOKEN_MISSING_ABILITY"));
        assert_eq!(audit[0].event, c.op.event);
    }
}

#[tokio::test]
async fn every_operation_refuses_a_sibling_project_to_a_scoped_token() {
    let (app, w, job) = setup().await;
    for op in catalog::all() {
        let c = case(op, &w, &job);
        let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[&w.p2]).await;
        let before = app.state().await;
        let reply = send(&app, &c, &token).await;
        let team_level = c.op.path_params().iter().all(|p| *p == "team_id");
        if !team_level {
            reply.assert_error(404, "RESOURCE_NOT_FOUND");
            assert_eq!(app.state().await, before, "{} changed a sibling project", c.op.name);
            let audit = app.audit_of(&token).await;
            assert_eq!(audit.len(), 1, "{}", c.op.name);
            assert_eq!(audit[0].outcome, "denied");
        } else if matches!(c.op.name, "create_project" | "list_team_tokens") {
            reply.assert_error(403, "TOKEN_MISSING_ABILITY");
        } else {
            assert!(reply.status.is_success(), "{}: {:#}", c.op.name, reply.body);
            assert!(
                !reply.body.to_string().contains(w.p1.as_str()),
                "{} shows p1: {:#}",
                c.op.name,
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn every_allowed_operation_writes_exactly_one_audit_entry() {
    let (app, w, job) = setup().await;
    for op in catalog::all() {
        let c = case(op, &w, &job);
        let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
        let reply = send(&app, &c, &token).await;
        assert_eq!(
            reply.status.as_u16(),
            c.op.success_status,
            "{}: {:#}",
            c.op.name,
            reply.body
        );
        assert!(
            reply.body["data"].is_object() || reply.body["data"].is_array(),
            "{}",
            c.op.name
        );
        let audit = app.audit_of(&token).await;
        assert_eq!(audit.len(), 1, "{}: {audit:?}", c.op.name);
        let e = &audit[0];
        assert_eq!(e.event, c.op.event, "{}", c.op.name);
        assert_eq!(e.actor_kind, "api_token");
        assert_eq!(e.outcome, "success");
        assert_eq!(e.token_id.as_deref(), Some(token_id(&token).as_str()));
        assert!(e.causer_id.is_some());
        assert_eq!(e.team_id.as_deref(), Some(w.team_a.as_str()));
        assert_eq!(e.subject_type.as_deref(), Some(c.op.subject_type), "{}", c.op.name);
        let name = c.op.name;
        let expected = if name.starts_with("create_") || name.starts_with("bulk_") {
            reply.body["data"]["id"].as_str().map(str::to_owned)
        } else if name == "get_token_info" || name == "revoke_current_token" {
            Some(token_id(&token))
        } else if name == "set_token_budget" {
            Some(w.token.clone())
        } else if name.starts_with("list_") && name != "list_team_members" || name == "get_activity_log" {
            None
        } else {
            c.path_id.clone()
        };
        assert_eq!(e.subject_id, expected, "{name}");
    }
}
