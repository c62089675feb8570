//! Approvals, first slice (issue 20): a team's approval policy and per-token budgets, set by the
//! operator's CLI, each change audited. Nothing is held yet; these are the controls the next
//! slice enforces.

use memberpass::domain::ability::Ability;
use memberpass::domain::audit::RequestCtx;
use memberpass::domain::ids::{TeamId, UserId};
use memberpass::domain::role::Role;
use memberpass::service::accounts::approvals::PolicyChange;
use memberpass::service::{Caller, Member, Surface, TokenGrant, Who};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, token_id};

async fn json(app: &TestApp, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = app.cli(&all).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?} printed no JSON object: {e}"))
}

/// Runs a command that must fail; its stderr.
async fn refused(app: &TestApp, args: &[&str]) -> String {
    let out = app.cli(args).await;
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The audit entries of one event, oldest first: actor kind, subject, properties.
async fn entries(app: &TestApp, event: &str) -> Vec<(String, Option<String>, Value)> {
    let rows: Vec<(String, Option<String>, String)> =
        sqlx::query_as("SELECT actor_kind, subject_id, properties FROM audit_log WHERE event = $1 ORDER BY seq")
            .bind(event)
            .fetch_all(app.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(a, s, p)| (a, s, serde_json::from_str(&p).unwrap()))
        .collect()
}

fn default_rules() -> Value {
    json!({
        "archive_project": "mcp",
        "ban_member": "mcp",
        "bulk_generate_access_codes": "mcp",
        "cancel_subscription": "mcp",
        "kick_member": "mcp",
    })
}

/// The rules as an audit entry lists them (a map keyed by operation would lose
/// `bulk_generate_access_codes` to the audit log's redaction of secret-looking keys).
fn as_list(rules: &Value) -> Value {
    let list: Vec<Value> = rules
        .as_object()
        .unwrap()
        .iter()
        .map(|(op, rule)| json!({"operation": op, "surfaces": rule}))
        .collect();
    json!(list)
}

#[tokio::test]
async fn a_new_team_holds_the_destructive_mcp_tools_and_the_operator_changes_its_policy() {
    let app = spawn_app().await;
    let w = app.world().await;
    let team = w.team_a.as_str();

    let shown = json(&app, &["team", "policy", "--team", team]).await;
    assert_eq!(shown["rules"], default_rules());
    assert_eq!(shown["approver"], "owner-or-admin");
    assert_eq!(shown["version"], 0);
    assert_eq!(app.count("team_approval_policies").await, 0, "reading writes nothing");

    let changed = json(
        &app,
        &[
            "team",
            "policy",
            "--team",
            team,
            "--approval",
            "kick_member=both",
            "--approval",
            "ban_member=none",
            "--approver",
            "not-the-caller",
        ],
    )
    .await;
    let mut rules = default_rules();
    rules["kick_member"] = json!("both");
    rules.as_object_mut().unwrap().remove("ban_member");
    assert_eq!(changed["rules"], rules);
    assert_eq!(changed["approver"], "not-the-caller");
    assert_eq!(changed["version"], 1);

    let again = json(
        &app,
        &["team", "policy", "--team", team, "--approval", "create_project=rest"],
    )
    .await;
    rules["create_project"] = json!("rest");
    assert_eq!(again["rules"], rules);
    assert_eq!(again["version"], 2);
    assert_eq!(json(&app, &["team", "policy", "--team", team]).await, again);

    // The other team still has the defaults.
    let other = json(&app, &["team", "policy", "--team", &w.team_b]).await;
    assert_eq!(
        (other["rules"].clone(), other["version"].clone()),
        (default_rules(), json!(0))
    );

    // Every change is one entry by the operator, with the policy before and after.
    let seen = entries(&app, "approval.policy_changed").await;
    assert_eq!(seen.len(), 2);
    for (actor, subject, _) in &seen {
        assert_eq!((actor.as_str(), subject.as_deref()), ("system", Some(team)));
    }
    assert_eq!(seen[0].2["before"]["version"], 0);
    assert_eq!(seen[0].2["before"]["rules"], as_list(&default_rules()));
    assert_eq!(seen[0].2["after"]["version"], 1);
    assert_eq!(seen[0].2["after"]["approver"], "not-the-caller");
    assert_eq!(seen[1].2["before"], seen[0].2["after"]);
    assert_eq!(seen[1].2["after"]["rules"], as_list(&rules));
}

#[tokio::test]
async fn an_invalid_operation_rule_or_approver_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    let w = app.world().await;
    let team = w.team_a.as_str();
    for (args, says) in [
        (vec!["--approval", "nuke_team=mcp"], "nuke_team"),
        // A read changes nothing a person would approve.
        (vec!["--approval", "list_projects=mcp"], "list_projects"),
        // Nothing stands in front of a token revoking itself.
        (vec!["--approval", "revoke_current_token=both"], "revoke_current_token"),
        (vec!["--approval", "kick_member=always"], "always"),
        (vec!["--approval", "kick_member"], "OPERATION="),
        (vec!["--approver", "owner"], "owner"),
        // One bad part refuses the whole change.
        (
            vec!["--approval", "kick_member=both", "--approval", "nuke_team=rest"],
            "nuke_team",
        ),
    ] {
        let mut all = vec!["team", "policy", "--team", team];
        all.extend(args.iter().copied());
        let err = refused(&app, &all).await;
        assert!(err.contains("invalid input") && err.contains(says), "{args:?}: {err}");
    }
    let err = refused(
        &app,
        &[
            "team",
            "policy",
            "--team",
            "00000000-0000-0000-0000-000000000000",
            "--approval",
            "kick_member=both",
        ],
    )
    .await;
    assert!(err.contains("no such team"), "{err}");
    assert_eq!(app.count("team_approval_policies").await, 0);
    assert!(entries(&app, "approval.policy_changed").await.is_empty());
    assert_eq!(json(&app, &["team", "policy", "--team", team]).await["version"], 0);
}

#[tokio::test]
async fn a_token_budget_is_set_changed_and_removed_with_an_entry_for_each_change() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app
        .mint(
            "demo@memberpass.test",
            &w.team_a,
            &[Ability::McpFull, Ability::MemberUpdate],
            &[],
        )
        .await;
    let id = token_id(&token);

    let set = json(&app, &["token", "budget", &id, "kick_member", "2"]).await;
    assert_eq!(
        set,
        json!({"token_id": id, "operation": "kick_member", "limit": 2, "previous": null, "window": "24h"})
    );
    let raised = json(&app, &["token", "budget", &id, "kick_member", "3"]).await;
    assert_eq!(
        (raised["limit"].clone(), raised["previous"].clone()),
        (json!(3), json!(2))
    );
    json(&app, &["token", "budget", &id, "ban_member", "1"]).await;
    let budgets: Vec<(String, i64)> =
        sqlx::query_as("SELECT operation, max_calls FROM token_budgets WHERE token_id = $1 ORDER BY operation")
            .bind(&id)
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(budgets, vec![("ban_member".into(), 1), ("kick_member".into(), 3)]);

    let removed = json(&app, &["token", "budget", &id, "kick_member", "0"]).await;
    assert_eq!(
        (removed["limit"].clone(), removed["previous"].clone()),
        (json!(null), json!(3))
    );
    // Removing what is not there changes nothing and leaves no entry.
    json(&app, &["token", "budget", &id, "kick_member", "0"]).await;
    assert_eq!(app.count("token_budgets").await, 1);

    let seen = entries(&app, "token.budget_changed").await;
    let limits: Vec<(String, Value)> = seen
        .iter()
        .map(|(actor, subject, p)| {
            assert_eq!((actor.as_str(), subject.as_deref()), ("system", Some(id.as_str())));
            (p["operation"].as_str().unwrap().to_owned(), p["limit"].clone())
        })
        .collect();
    assert_eq!(
        limits,
        vec![
            ("kick_member".into(), json!({"from": null, "to": 2})),
            ("kick_member".into(), json!({"from": 2, "to": 3})),
            ("ban_member".into(), json!({"from": null, "to": 1})),
            ("kick_member".into(), json!({"from": 3, "to": null})),
        ]
    );
}

#[tokio::test]
async fn a_budget_for_an_unknown_token_or_operation_is_refused() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app
        .mint("demo@memberpass.test", &w.team_a, &[Ability::McpFull], &[])
        .await;
    let id = token_id(&token);
    for (args, says) in [
        (vec!["token", "budget", "AAAAAAAAAAAA", "kick_member", "2"], "not found"),
        (vec!["token", "budget", "not-a-token", "kick_member", "2"], "not found"),
        (vec!["token", "budget", &id, "nuke_team", "2"], "nuke_team"),
        (vec!["token", "budget", &id, "get_member", "2"], "get_member"),
        (vec!["token", "budget", &id, "kick_member", "-1"], "-1"),
    ] {
        let err = refused(&app, &args).await;
        assert!(err.contains(says), "{args:?}: {err}");
    }
    json(&app, &["token", "revoke", &id]).await;
    let err = refused(&app, &["token", "budget", &id, "kick_member", "2"]).await;
    assert!(err.contains("revoked"), "{err}");
    assert_eq!(app.count("token_budgets").await, 0);
    assert!(entries(&app, "token.budget_changed").await.is_empty());
}

/// A person as the dashboard will present them: `email` as a member of `team`, with the role
/// they are said to hold (the service reads the role again).
pub async fn person(app: &TestApp, team: &str, email: &str, role: Role) -> Caller {
    let user: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(app.pool())
        .await
        .unwrap();
    Caller::person(
        Member {
            team_id: TeamId::parse(team).unwrap(),
            user_id: UserId::parse(&user).unwrap(),
            user_email: email.to_owned(),
            user_name: email.to_owned(),
            role,
        },
        RequestCtx::default(),
    )
}

#[tokio::test]
async fn only_an_owner_or_admin_of_the_team_changes_its_controls_and_never_a_token() {
    let app = spawn_app().await;
    let w = app.world().await;
    let s = &app.service;
    s.create_user("admin@memberpass.test", "Ada", None).await.unwrap();
    s.create_user("manager@memberpass.test", "Max", None).await.unwrap();
    s.set_member_role(&w.team_a, "admin@memberpass.test", Role::Admin)
        .await
        .unwrap();
    s.set_member_role(&w.team_a, "manager@memberpass.test", Role::Manager)
        .await
        .unwrap();
    let token = app
        .mint("demo@memberpass.test", &w.team_a, &[Ability::McpFull], &[])
        .await;
    let id = token_id(&token);
    let change = PolicyChange {
        approvals: vec!["kick_member=both".into()],
        approver: None,
    };

    // A manager or a viewer is refused, even when the caller claims a higher role: the role is
    // read again. Someone of another team does not find the team.
    for (team, email, claimed) in [
        (w.team_a.as_str(), "manager@memberpass.test", Role::Owner),
        (w.team_a.as_str(), "viewer@memberpass.test", Role::Admin),
        (w.team_b.as_str(), "other@memberpass.test", Role::Owner),
    ] {
        let caller = person(&app, team, email, claimed).await;
        assert!(
            s.change_approval_policy(&caller, &w.team_a, &change).await.is_err(),
            "{email}"
        );
        assert!(
            s.set_token_budget(&caller, &id, "kick_member", 2).await.is_err(),
            "{email}"
        );
    }
    // A token's caller never changes them, whoever owns it.
    let by_token = Caller {
        who: Who::Token {
            member: person(&app, &w.team_a, "demo@memberpass.test", Role::Owner)
                .await
                .member()
                .unwrap()
                .clone(),
            grant: TokenGrant {
                id: id.clone(),
                name: "test token".into(),
                abilities: Ability::ALL.iter().copied().collect(),
                project_ids: None,
                oauth: None,
                narrowing: None,
                superseded: false,
            },
            surface: Surface::Mcp,
        },
        ctx: RequestCtx::default(),
        page_view: None,
    };
    assert!(s.change_approval_policy(&by_token, &w.team_a, &change).await.is_err());
    assert!(s.set_token_budget(&by_token, &id, "kick_member", 2).await.is_err());
    assert_eq!(app.count("team_approval_policies").await, 0);
    assert_eq!(app.count("token_budgets").await, 0);

    // The owner and an admin may; each change names them.
    let owner = person(&app, &w.team_a, "demo@memberpass.test", Role::Owner).await;
    let admin = person(&app, &w.team_a, "admin@memberpass.test", Role::Admin).await;
    assert_eq!(
        s.change_approval_policy(&owner, &w.team_a, &change)
            .await
            .unwrap()
            .version,
        1
    );
    s.set_token_budget(&admin, &id, "kick_member", 2).await.unwrap();
    let by: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT event, causer_id FROM audit_log WHERE event IN ('approval.policy_changed', 'token.budget_changed') ORDER BY seq",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    let ids = [
        owner.member().unwrap().user_id.to_string(),
        admin.member().unwrap().user_id.to_string(),
    ];
    assert_eq!(
        by,
        vec![
            ("approval.policy_changed".into(), Some(ids[0].clone())),
            ("token.budget_changed".into(), Some(ids[1].clone())),
        ]
    );
    let updated_by: Option<String> = sqlx::query_scalar("SELECT updated_by FROM team_approval_policies")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(updated_by.as_deref(), Some(ids[0].as_str()));
}
