//! The team's token policy (issue 21, item 3), set with `memberpass team policy` and in force at
//! mint (a lifetime beyond the maximum, no expiry when one is required, an ability a role may not
//! put on a token: `POLICY_VIOLATION` naming the rule, audited), at each call (the unused rule;
//! pasted tokens on `/mcp`), and on the tokens minted before it (an expiry at most 7 days away,
//! the owner told, `token.expiry_shortened`). The unused rule's clock is the test's: it seeds
//! `last_used_at` and the rule's start.

use std::time::Duration;

use memberpass::domain::role::Role;
use memberpass::domain::time::{DAY_MS, now_ms};
use serde_json::{Value, json};

use crate::dashboard::{cookie, csrf_of, page, person, post_form};
use crate::expiry_warnings::warnings;
use crate::helpers::{OWNER_A, TestApp, spawn_app, spawn_with, token_id};
use crate::mcp::rpc;

const MANAGER: &str = "policy-manager@memberpass.test";

/// `memberpass team policy --team T ARGS…` as the operator; its JSON.
async fn policy(app: &TestApp, team: &str, args: &[&str]) -> Value {
    let mut all = vec!["--json", "team", "policy", "--team", team];
    all.extend(args);
    let out = app.cli(&all).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Mints by the CLI; the token, or the CLI's error text.
async fn mint(
    app: &TestApp,
    team: &str,
    user: &str,
    abilities: &[&str],
    expires_in: Option<&str>,
) -> Result<String, String> {
    let mut args = vec![
        "--json",
        "token",
        "mint",
        "--team",
        team,
        "--user",
        user,
        "--name",
        "policy test",
    ];
    for a in abilities {
        args.extend(["--ability", a]);
    }
    if let Some(e) = expires_in {
        args.extend(["--expires-in", e]);
    }
    let out = app.cli(&args).await;
    if out.status.success() {
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        Ok(v["token"].as_str().unwrap().to_owned())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

async fn expires_at(app: &TestApp, token: &str) -> Option<i64> {
    sqlx::query_scalar("SELECT expires_at FROM tokens WHERE id = $1")
        .bind(token_id(token))
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// (event, properties) of every entry about `token` as its subject, oldest first.
async fn about(app: &TestApp, token: &str) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT event, properties FROM audit_log WHERE subject_id = $1 ORDER BY seq")
            .bind(token_id(token))
            .fetch_all(app.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(e, p)| (e, serde_json::from_str(&p).unwrap()))
        .collect()
}

async fn status_of(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/projects", token).await.status.as_u16()
}

#[tokio::test]
async fn a_token_beyond_the_policy_is_not_minted_and_the_refusal_names_the_rule() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, MANAGER, Role::Manager).await;
    let set = policy(
        &app,
        &w.team_a,
        &[
            "--max-lifetime",
            "90d",
            "--role-abilities",
            "manager=project:view-any,project:view",
        ],
    )
    .await;
    assert_eq!(set["token_policy"]["max_lifetime"], "90d");
    assert_eq!(set["token_policy"]["require_expiry"], false);
    assert_eq!(
        set["token_policy"]["role_abilities"]["manager"],
        json!(["project:view-any", "project:view"])
    );
    let changed: Vec<String> = sqlx::query_scalar(
        "SELECT properties FROM audit_log WHERE event = 'team.token_policy_changed' AND team_id = $1",
    )
    .bind(&w.team_a)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(changed.len(), 1);
    let changes: Value = serde_json::from_str(&changed[0]).unwrap();
    assert_eq!(changes["changes"]["max_lifetime"], json!({"from": null, "to": "90d"}));

    // Beyond the maximum, and no expiry at all (a maximum needs one): refused, naming it.
    let err = mint(&app, &w.team_a, OWNER_A, &["project:view-any"], Some("91d"))
        .await
        .unwrap_err();
    assert!(
        err.contains("POLICY_VIOLATION") && err.contains("max_lifetime") && err.contains("90d"),
        "{err}"
    );
    let err = mint(&app, &w.team_a, OWNER_A, &["project:view-any"], None)
        .await
        .unwrap_err();
    assert!(err.contains("max_lifetime"), "{err}");
    mint(&app, &w.team_a, OWNER_A, &["project:view-any"], Some("90d"))
        .await
        .unwrap();
    // A manager may put only reads on a token; an owner is not limited by the manager's rule.
    let err = mint(
        &app,
        &w.team_a,
        MANAGER,
        &["project:view-any", "project:create"],
        Some("30d"),
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("role_abilities") && err.contains("project:create"),
        "{err}"
    );
    mint(&app, &w.team_a, MANAGER, &["project:view-any"], Some("30d"))
        .await
        .unwrap();
    mint(&app, &w.team_a, OWNER_A, &["project:create"], Some("30d"))
        .await
        .unwrap();
    // Another team has no policy.
    mint(&app, &w.team_b, "other@memberpass.test", &["project:create"], None)
        .await
        .unwrap();

    // Every refusal is on the record, denied, with the rule.
    let refused: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "SELECT outcome, error_code, properties FROM audit_log WHERE event = 'token.minted' AND outcome <> 'success' ORDER BY seq",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(refused.len(), 3, "{refused:#?}");
    for (outcome, code, props) in &refused {
        assert_eq!(
            (outcome.as_str(), code.as_deref()),
            ("denied", Some("POLICY_VIOLATION"))
        );
        let p: Value = serde_json::from_str(props).unwrap();
        assert!(p["policy"].is_string() && p["limit"].is_string(), "{p}");
    }

    // The dashboard's mint form: 422, the rule named, nothing minted.
    let before = app.count("tokens").await;
    let session = cookie(&app, MANAGER).await;
    let csrf = csrf_of(&page(&app, "/settings/tokens", &session).await.text().await.unwrap());
    let res = post_form(
        &app,
        "/settings/tokens",
        &session,
        &[
            ("csrf", &csrf),
            ("name", "too much"),
            ("ability", "project:create"),
            ("expires", "30"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("role_abilities"), "{html}");
    let res = post_form(
        &app,
        "/settings/tokens",
        &session,
        &[
            ("csrf", &csrf),
            ("name", "too long"),
            ("ability", "project:view-any"),
            ("expires", "365"),
        ],
    )
    .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("max_lifetime = 90d"));
    assert_eq!(app.count("tokens").await, before);

    // Require an expiry without a maximum.
    policy(&app, &w.team_a, &["--max-lifetime", "off", "--require-expiry"]).await;
    let err = mint(&app, &w.team_a, OWNER_A, &["project:view-any"], None)
        .await
        .unwrap_err();
    assert!(err.contains("require_expiry"), "{err}");
    mint(&app, &w.team_a, OWNER_A, &["project:view-any"], Some("3650d"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_policy_refuses_bad_settings_and_only_an_owner_changes_it() {
    let app = spawn_app().await;
    let w = app.world().await;
    for bad in [
        vec!["--max-lifetime", "10m"],
        vec!["--max-lifetime", "ninety"],
        vec!["--expire-unused", "2h"],
        vec!["--role-abilities", "viewer=project:create"],
        vec!["--role-abilities", "manager=no:such"],
        vec!["--role-abilities", "manager="],
        vec!["--mcp-pasted-tokens", "sometimes"],
    ] {
        let mut args = vec!["team", "policy", "--team", w.team_a.as_str()];
        args.extend(&bad);
        let out = app.cli(&args).await;
        assert!(!out.status.success(), "{bad:?} was accepted");
    }
    let shown = policy(&app, &w.team_a, &[]).await;
    assert_eq!(
        shown["token_policy"],
        json!({"max_lifetime": null, "require_expiry": false, "role_abilities": {}, "expire_unused": null, "mcp_pasted_tokens": "allow"}),
        "nothing was changed"
    );
    // A person who is not an owner cannot change it; a token has no way to.
    person(&app, &w.team_a, MANAGER, Role::Admin).await;
    let admin = app
        .service
        .set_token_policy(
            &caller_of(&app, &w.team_a, MANAGER, Role::Admin).await,
            &w.team_a,
            &memberpass::service::accounts::token_policy::PolicyChange {
                require_expiry: Some(true),
                ..Default::default()
            },
        )
        .await;
    assert!(admin.is_err(), "an admin changed the token policy");
}

async fn caller_of(app: &TestApp, team: &str, email: &str, role: Role) -> memberpass::service::Caller {
    let user: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_one(app.pool())
        .await
        .unwrap();
    memberpass::service::Caller::person(
        memberpass::service::Member {
            team_id: memberpass::domain::ids::TeamId::from_stored(team.to_owned()),
            user_id: memberpass::domain::ids::UserId::from_stored(user),
            user_email: email.to_owned(),
            user_name: "Dash Board".into(),
            role,
        },
        Default::default(),
    )
}

#[tokio::test]
async fn tokens_minted_before_a_policy_keep_working_until_their_owner_is_warned_and_seven_days_pass() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, MANAGER, Role::Manager).await;
    let forever = mint(&app, &w.team_a, OWNER_A, &["project:view-any"], None)
        .await
        .unwrap();
    let young = mint(&app, &w.team_a, OWNER_A, &["project:view-any"], None)
        .await
        .unwrap();
    let writer = mint(
        &app,
        &w.team_a,
        MANAGER,
        &["project:view-any", "project:create"],
        Some("365d"),
    )
    .await
    .unwrap();
    let fine = mint(&app, &w.team_a, OWNER_A, &["project:view-any"], Some("30d"))
        .await
        .unwrap();
    // `forever` was minted 200 days ago: past a 90-day maximum already.
    sqlx::query("UPDATE tokens SET created_at = $1 WHERE id = $2")
        .bind(now_ms() - 200 * DAY_MS)
        .bind(token_id(&forever))
        .execute(app.pool())
        .await
        .unwrap();
    let t0 = now_ms();
    policy(
        &app,
        &w.team_a,
        &["--max-lifetime", "90d", "--role-abilities", "manager=project:view-any"],
    )
    .await;
    let t1 = now_ms();

    // Past the maximum: 7 days from now. Young: its 90 days. The manager's write token: 7 days.
    let within = |at: Option<i64>, from: i64, to: i64| at.is_some_and(|a| a >= from && a <= to);
    assert!(within(
        expires_at(&app, &forever).await,
        t0 + 7 * DAY_MS,
        t1 + 7 * DAY_MS
    ));
    let young_created: i64 = sqlx::query_scalar("SELECT created_at FROM tokens WHERE id = $1")
        .bind(token_id(&young))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(expires_at(&app, &young).await, Some(young_created + 90 * DAY_MS));
    assert!(within(
        expires_at(&app, &writer).await,
        t0 + 7 * DAY_MS,
        t1 + 7 * DAY_MS
    ));
    let fine_before = expires_at(&app, &fine).await;

    // Each was told, and the entry names the rule; the compliant token was left alone.
    for (t, rule) in [
        (&forever, "max_lifetime"),
        (&young, "max_lifetime"),
        (&writer, "role_abilities"),
    ] {
        let seen = about(&app, t).await;
        let (_, props) = seen
            .iter()
            .find(|(e, _)| e == "token.expiry_shortened")
            .unwrap_or_else(|| panic!("{seen:#?}"));
        assert_eq!(props["policy"], rule);
    }
    assert!(
        about(&app, &fine)
            .await
            .iter()
            .all(|(e, _)| e != "token.expiry_shortened")
    );
    assert_eq!(expires_at(&app, &fine).await, fine_before);
    let html = page(&app, "/settings/tokens", &cookie(&app, MANAGER).await)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("breaks the team&#39;s token policy (role_abilities"),
        "{html}"
    );

    // They work meanwhile.
    for t in [&forever, &young, &writer] {
        assert_eq!(status_of(&app, t).await, 200);
    }
    // Setting the same policy again changes nothing more.
    let shortened = || async {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'token.expiry_shortened'")
            .fetch_one(app.pool())
            .await
            .unwrap();
        n
    };
    let before = shortened().await;
    policy(&app, &w.team_a, &["--max-lifetime", "90d"]).await;
    assert_eq!(shortened().await, before);
    // Seven days later (the test moves the expiry into the past): refused like any expired token.
    sqlx::query("UPDATE tokens SET expires_at = $1 WHERE id = $2")
        .bind(now_ms() - 1)
        .bind(token_id(&writer))
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(status_of(&app, &writer).await, 401);

    // A rotation fits the replacement into the maximum; one of abilities the role may no longer
    // put on a token is refused with the rule.
    let out = app.cli(&["--json", "token", "rotate", &token_id(&fine)]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    policy(&app, &w.team_a, &["--max-lifetime", "7d"]).await;
    let out = app.cli(&["--json", "token", "rotate", &token_id(&young)]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replacement: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lifetime = memberpass::domain::time::parse_rfc3339(replacement["expires_at"].as_str().unwrap()).unwrap()
        - memberpass::domain::time::parse_rfc3339(replacement["created_at"].as_str().unwrap()).unwrap();
    assert_eq!(lifetime, 7 * DAY_MS);
}

/// Seeds the unused rule's start and a token's last use.
async fn seed_unused(app: &TestApp, team: &str, since_days_ago: i64) {
    sqlx::query("UPDATE team_token_policies SET unused_since = $1 WHERE team_id = $2")
        .bind(now_ms() - since_days_ago * DAY_MS)
        .bind(team)
        .execute(app.pool())
        .await
        .unwrap();
}

async fn last_used(app: &TestApp, token: &str, days_ago: i64) {
    sqlx::query("UPDATE tokens SET last_used_at = $1, created_at = $2 WHERE id = $3")
        .bind(now_ms() - days_ago * DAY_MS)
        .bind(now_ms() - 400 * DAY_MS)
        .bind(token_id(token))
        .execute(app.pool())
        .await
        .unwrap();
}

#[tokio::test]
async fn unused_tokens_are_warned_then_expire_and_a_use_keeps_them() {
    const OWNER: &str = "unused-owner@memberpass.test";
    let app = spawn_with(|c| c.maintenance_interval = Duration::from_millis(200)).await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    let stale = mint(&app, &w.team_a, OWNER, &["project:view-any"], None).await.unwrap();
    let nearly = mint(&app, &w.team_a, OWNER, &["project:view-any"], None).await.unwrap();
    let eve = mint(&app, &w.team_a, OWNER, &["project:view-any"], None).await.unwrap();
    let busy = mint(&app, &w.team_a, OWNER, &["project:view-any"], None).await.unwrap();
    let other = mint(&app, &w.team_b, "other@memberpass.test", &["project:view-any"], None)
        .await
        .unwrap();
    policy(&app, &w.team_a, &["--expire-unused", "30d"]).await;
    // Just turned on: a token unused for a year still has 7 days.
    last_used(&app, &stale, 365).await;
    assert_eq!(status_of(&app, &stale).await, 200, "the rule gives notice first");
    // Turned on 8 days ago (the test's clock): the year-old one is past its deadline.
    seed_unused(&app, &w.team_a, 8).await;
    last_used(&app, &stale, 365).await;
    last_used(&app, &nearly, 25).await;
    last_used(&app, &eve, 29).await;
    last_used(&app, &busy, 1).await;
    last_used(&app, &other, 365).await;

    assert_eq!(status_of(&app, &stale).await, 401, "expired by the rule at the call");
    let mut reason = String::new();
    for _ in 0..100 {
        // `auth.failed` entries are written off the request path.
        let found: Option<String> = sqlx::query_scalar(
            "SELECT properties FROM audit_log WHERE event = 'auth.failed' AND token_id = $1 ORDER BY seq DESC LIMIT 1",
        )
        .bind(token_id(&stale))
        .fetch_optional(app.pool())
        .await
        .unwrap();
        if let Some(f) = found {
            reason = f;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reason.contains("unused"), "{reason}");
    assert_eq!(status_of(&app, &other).await, 200, "another team has no rule");

    // The maintenance pass: 5 days left → the 7-day warning; 1 day → the 1-day one; the stale
    // one expired for good; the busy one nothing. (A pass that ran before the test's clock was
    // set may have warned the stale one for 7 days: that warning is right too.)
    let find = |seen: &[(String, String, Value)], t: &str, event: &str| {
        seen.iter()
            .find(|(e, s, _)| *s == token_id(t) && e == event)
            .map(|(_, _, p)| p.clone())
    };
    let mut seen = Vec::new();
    for _ in 0..200 {
        seen = warnings(&app).await;
        if find(&seen, &stale, "token.expired").is_some()
            && find(&seen, &nearly, "token.expiring").is_some()
            && find(&seen, &eve, "token.expiring").is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Several more passes give nothing twice.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(warnings(&app).await.len(), seen.len(), "{seen:#?}");
    let props = find(&seen, &nearly, "token.expiring").expect("a warning for 5 days left");
    assert_eq!(
        (props["days_left"].as_i64(), props["reason"].as_str()),
        (Some(5), Some("unused"))
    );
    let props = find(&seen, &eve, "token.expiring").expect("a warning for 1 day left");
    assert_eq!(props["days_left"].as_i64(), Some(1));
    let props = find(&seen, &stale, "token.expired").expect("the expiry");
    assert_eq!(props["reason"].as_str(), Some("unused"));
    assert!(
        seen.iter()
            .all(|(_, s, _)| *s != token_id(&busy) && *s != token_id(&other))
    );
    assert!(
        expires_at(&app, &stale).await.is_some_and(|e| e < now_ms()),
        "it stays expired"
    );
    // Turning the rule off does not bring it back.
    policy(&app, &w.team_a, &["--expire-unused", "off"]).await;
    assert_eq!(status_of(&app, &stale).await, 401);
    // The owner reads the warnings.
    let html = page(&app, "/settings/tokens", &cookie(&app, OWNER).await)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("unused-token rule (30d)"), "{html}");

    // A use resets the clock: after a call the token is nowhere near its deadline.
    policy(&app, &w.team_a, &["--expire-unused", "30d"]).await;
    seed_unused(&app, &w.team_a, 8).await;
    assert_eq!(status_of(&app, &nearly).await, 200);
    let used: Option<i64> = sqlx::query_scalar("SELECT last_used_at FROM tokens WHERE id = $1")
        .bind(token_id(&nearly))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert!(used.is_some_and(|u| u > now_ms() - 60_000));
}

#[tokio::test]
async fn a_team_can_keep_pasted_tokens_off_mcp_while_rest_and_oauth_apps_go_on() {
    let app = spawn_app().await;
    let w = app.world().await;
    let pasted = mint(&app, &w.team_a, OWNER_A, &["mcp:full", "project:view-any"], None)
        .await
        .unwrap();
    let app_token = mint(&app, &w.team_a, OWNER_A, &["mcp:full", "project:view-any"], None)
        .await
        .unwrap();
    crate::oauth_binding::make_oauth(&app, &app_token, OWNER_A, &w.team_a).await;
    assert_eq!(
        rpc(&app, Some(&pasted), "tools/list", json!({})).await.status.as_u16(),
        200
    );

    policy(&app, &w.team_a, &["--mcp-pasted-tokens", "deny"]).await;
    let refused = rpc(&app, Some(&pasted), "tools/list", json!({})).await;
    assert_eq!(refused.status.as_u16(), 422, "{:#}", refused.body);
    assert_eq!(
        refused.body["error"]["data"]["code"], "POLICY_VIOLATION",
        "{:#}",
        refused.body
    );
    assert_eq!(refused.body["error"]["data"]["policy"], "mcp_pasted_tokens");
    let entry: (String, Option<String>) = sqlx::query_as(
        "SELECT outcome, error_code FROM audit_log WHERE event = 'auth.policy_refused' AND token_id = $1",
    )
    .bind(token_id(&pasted))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(entry, ("denied".into(), Some("POLICY_VIOLATION".into())));
    let failures: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = 'auth.failed'")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(failures, 0, "not an authentication failure");
    // REST with the same token, and the OAuth app on /mcp, go on.
    assert_eq!(status_of(&app, &pasted).await, 200);
    let oauth = rpc(&app, Some(&app_token), "tools/list", json!({})).await;
    assert_eq!(oauth.status.as_u16(), 200, "{:#}", oauth.body);
    policy(&app, &w.team_a, &["--mcp-pasted-tokens", "allow"]).await;
    assert_eq!(
        rpc(&app, Some(&pasted), "tools/list", json!({})).await.status.as_u16(),
        200
    );
}

#[tokio::test]
async fn an_owner_changes_the_policy_on_the_dashboard_and_others_only_read_it() {
    const OWNER: &str = "policy-owner@memberpass.test";
    const ADMIN: &str = "policy-admin@memberpass.test";
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    person(&app, &w.team_a, ADMIN, Role::Admin).await;

    let owner = cookie(&app, OWNER).await;
    let html = page(&app, "/settings/token-policy", &owner).await.text().await.unwrap();
    assert!(html.contains("id=\"token-policy-form\""), "{html}");
    let csrf = csrf_of(&html);
    let save = |cookie: String, csrf: String, pairs: Vec<(&'static str, &'static str)>| {
        let app = &app;
        async move {
            let mut all = vec![("csrf", csrf.as_str())];
            all.extend(pairs);
            post_form(app, "/settings/token-policy", &cookie, &all).await
        }
    };
    let res = save(
        owner.clone(),
        csrf.clone(),
        vec![
            ("max_lifetime_days", "30"),
            ("role.admin", "any"),
            ("role.manager", "reads"),
            ("role.viewer", "any"),
            ("expire_unused_days", ""),
            ("mcp_pasted_tokens", "deny"),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let shown = policy(&app, &w.team_a, &[]).await["token_policy"].clone();
    assert_eq!(shown["max_lifetime"], "30d");
    assert_eq!(shown["mcp_pasted_tokens"], "deny");
    assert!(
        shown["role_abilities"]["manager"]
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|a| !a.as_str().unwrap().contains("create"))),
        "{shown:#}"
    );
    assert!(shown["role_abilities"].get("admin").is_none());
    let by: (String, String) = sqlx::query_as(
        "SELECT actor_kind, properties FROM audit_log WHERE event = 'team.token_policy_changed' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(by.0, "human");
    let changes: Value = serde_json::from_str(&by.1).unwrap();
    assert_eq!(changes["changes"]["max_lifetime"]["to"], "30d");
    assert!(changes["changes"].get("require_expiry").is_none(), "only what changed");

    // Out of bounds: 422, nothing changed.
    let res = save(owner.clone(), csrf.clone(), vec![("max_lifetime_days", "0")]).await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        policy(&app, &w.team_a, &[]).await["token_policy"]["max_lifetime"],
        "30d"
    );

    // An admin reads it and cannot change it.
    let admin = cookie(&app, ADMIN).await;
    let html = page(&app, "/settings/token-policy", &admin).await.text().await.unwrap();
    assert!(!html.contains("token-policy-form"));
    assert!(html.contains("30 days"), "{html}");
    let res = save(
        admin,
        csrf_of(&html),
        vec![("max_lifetime_days", "3650"), ("mcp_pasted_tokens", "allow")],
    )
    .await;
    assert_eq!(res.status(), 409);
    assert_eq!(
        policy(&app, &w.team_a, &[]).await["token_policy"]["max_lifetime"],
        "30d"
    );
}
