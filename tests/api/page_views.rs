//! A quieter log (issue 21, item 8): a dashboard page load leaves one `dashboard.view` entry
//! (which page, which filters) instead of one entry per service read; refused and failed reads,
//! forms and every REST or MCP call are audited as before; the page's entry is re-checked under
//! the chain's lock before the page is answered; the Activity Log and the playbook hide page
//! views unless asked; the chain still verifies.

use memberpass::domain::ability::Ability;
use memberpass::domain::error::Error;
use memberpass::domain::role::Role;
use memberpass::service::PageView;
use memberpass::service::ops::team_tokens::{ListTeamTokens, TeamTokensQuery};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dashboard::{cookie, page, person, post_form};
use crate::helpers::{TestApp, spawn_app, token_id};

const ADMIN: &str = "admin@memberpass.test";

/// Every entry of the log: event, outcome, subject id, properties (oldest first).
async fn log(app: &TestApp) -> Vec<(String, String, Option<String>, Value)> {
    let rows: Vec<(String, String, Option<String>, String)> =
        sqlx::query_as("SELECT event, outcome, subject_id, properties FROM audit_log ORDER BY seq")
            .fetch_all(app.pool())
            .await
            .unwrap();
    rows.into_iter()
        .map(|(e, o, s, p)| (e, o, s, serde_json::from_str(&p).unwrap()))
        .collect()
}

/// The entries after the first `skip`.
async fn since(app: &TestApp, skip: usize) -> Vec<(String, String, Option<String>, Value)> {
    log(app).await.into_iter().skip(skip).collect()
}

async fn verifies(app: &TestApp) {
    let out = app.cli(&["--json", "audit", "verify"]).await;
    assert!(
        out.status.success(),
        "the chain verifies: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_page_load_leaves_one_view_entry_with_its_page_and_filters_and_no_read_entries() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, ADMIN, Role::Admin).await;
    let token = app.mint(ADMIN, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let id = token_id(&token);
    let c = cookie(&app, ADMIN).await;
    let pages = [
        ("/settings/tokens", "tokens", json!({}), None),
        (
            "/settings/activity?outcome=denied&event=&since=2026-01-01T00:00:00Z",
            "activity",
            json!({"outcome": "denied", "since": "2026-01-01T00:00:00Z"}),
            None,
        ),
        (
            &format!("/settings/tokens/{id}") as &str,
            "token",
            json!({}),
            Some(id.clone()),
        ),
        (
            "/settings/approvals?status=pending",
            "approvals",
            json!({"status": "pending"}),
            None,
        ),
        ("/settings/apps", "apps", json!({}), None),
        ("/settings/approvals/policy", "approval_policy", json!({}), None),
        ("/settings/access-codes", "access_codes", json!({}), None),
        (
            "/settings/team-tokens?can_write=false",
            "team_tokens",
            json!({"can_write": "false"}),
            None,
        ),
        (
            "/settings/activity?format=csv",
            "activity_export",
            json!({"format": "csv"}),
            None,
        ),
    ];
    for (path, name, filters, subject) in pages {
        let before = log(&app).await.len();
        let res = page(&app, path, &c).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let after = since(&app, before).await;
        assert_eq!(after.len(), 1, "{path}: exactly one entry: {after:#?}");
        let (event, outcome, subject_id, properties) = &after[0];
        assert_eq!(
            (event.as_str(), outcome.as_str()),
            ("dashboard.view", "success"),
            "{path}"
        );
        assert_eq!(properties["page"], name, "{path}");
        assert_eq!(properties["filters"], filters, "{path}");
        assert_eq!(properties["status"], 200, "{path}");
        assert_eq!(subject_id, &subject, "{path}");
    }
    // No read of any of those pages left an entry of its own.
    let reads: Vec<_> = log(&app)
        .await
        .into_iter()
        .filter(|(e, ..)| e.starts_with("list_") || e.starts_with("get_"))
        .collect();
    assert!(reads.is_empty(), "{reads:#?}");

    // REST reads are unchanged: one entry per call.
    let before = log(&app).await.len();
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
    let events: Vec<String> = since(&app, before).await.into_iter().map(|e| e.0).collect();
    assert_eq!(events, ["list_projects", "list_projects"]);
    verifies(&app).await;
}

#[tokio::test]
async fn forms_and_refused_reads_are_audited_as_before() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, "viewer2@memberpass.test", Role::Viewer).await;
    let c = cookie(&app, "viewer2@memberpass.test").await;
    let csrf = crate::dashboard::csrf_of(&page(&app, "/settings/tokens", &c).await.text().await.unwrap());

    // A form (POST) that fails validation shows the tokens page again: its reads are a form's,
    // audited one by one as before, and no page view is recorded for it.
    let before = log(&app).await.len();
    let res = post_form(&app, "/settings/tokens", &c, &[("csrf", &csrf), ("name", "")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let events: Vec<String> = since(&app, before).await.into_iter().map(|e| e.0).collect();
    assert!(events.contains(&"list_tokens".to_owned()), "{events:?}");
    assert!(!events.contains(&"dashboard.view".to_owned()), "{events:?}");

    // A read the role refuses is audited as a refusal, and the page says so (then its view).
    let before = log(&app).await.len();
    let res = page(&app, "/settings/team-tokens", &c).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let after = since(&app, before).await;
    let refused: Vec<_> = after.iter().filter(|e| e.0 == "list_team_tokens").collect();
    assert_eq!(refused.len(), 1, "{after:#?}");
    assert_eq!(refused[0].1, "denied");
    assert_eq!(refused[0].3["required_ability"], "token:view-any");
    let views: Vec<_> = after.iter().filter(|e| e.0 == "dashboard.view").collect();
    assert_eq!(views.len(), 1, "{after:#?}");
    assert_eq!(views[0].3["status"], 403);
    verifies(&app).await;
}

#[tokio::test]
async fn a_role_lost_mid_session_refuses_the_page_and_is_audited() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, ADMIN, Role::Admin).await;
    let c = cookie(&app, ADMIN).await;
    assert_eq!(page(&app, "/settings/team-tokens", &c).await.status(), StatusCode::OK);
    // Lowered between two pages: the next is refused, the refusal audited.
    app.service
        .set_member_role(&w.team_a, ADMIN, Role::Manager)
        .await
        .unwrap();
    let before = log(&app).await.len();
    assert_eq!(
        page(&app, "/settings/team-tokens", &c).await.status(),
        StatusCode::FORBIDDEN
    );
    let after = since(&app, before).await;
    assert!(
        after.iter().any(|e| e.0 == "list_team_tokens" && e.1 == "denied"),
        "{after:#?}"
    );
    // Removed from the team: the session no longer opens any page.
    app.service.remove_member(&w.team_a, ADMIN).await.unwrap();
    let res = page(&app, "/settings/tokens", &c).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()["location"], "/login");
    verifies(&app).await;
}

/// The race the view entry's re-check closes: the page's reads succeeded (and left no entry),
/// then the role was lowered — or the person removed — before the page's entry committed. The
/// view is refused under the chain's lock, audited as such, and the page is not answered.
#[tokio::test]
async fn a_view_recorded_after_the_role_was_lost_is_refused_and_audited() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, ADMIN, Role::Admin).await;
    let s = &app.service;
    let mut admin = crate::approvals::person(&app, &w.team_a, ADMIN, Role::Admin).await;
    admin.page_view = Some(PageView::default());
    let query = || TeamTokensQuery {
        team_id: memberpass::domain::ids::TeamId::parse(&w.team_a).unwrap(),
        user_id: None,
        ability: None,
        can_write: None,
        unused_days: None,
        expiring_days: None,
        never_used: None,
        page: None,
        limit: None,
    };
    let before = log(&app).await.len();
    let listed = s.invoke::<ListTeamTokens>(&admin, query()).await.unwrap();
    assert!(!listed.data.is_empty());
    assert!(since(&app, before).await.is_empty(), "a page's read leaves no entry");
    assert_eq!(admin.page_view.as_ref().unwrap().abilities(), [Ability::TokenViewAny]);

    s.set_member_role(&w.team_a, ADMIN, Role::Manager).await.unwrap();
    let before = log(&app).await.len();
    let view = json!({"page": "team_tokens", "filters": {}, "status": 200});
    let refused = s.record_page_view(&admin, view.clone(), None).await;
    assert!(
        matches!(refused, Err(Error::MissingAbility(Ability::TokenViewAny, _))),
        "{refused:?}"
    );
    let after = since(&app, before).await;
    assert_eq!(after.len(), 1, "{after:#?}");
    assert_eq!((after[0].0.as_str(), after[0].1.as_str()), ("dashboard.view", "denied"));
    assert_eq!(after[0].3["page"], "team_tokens");
    assert_eq!(after[0].3["required_ability"], "token:view-any");

    s.remove_member(&w.team_a, ADMIN).await.unwrap();
    let before = log(&app).await.len();
    let refused = s.record_page_view(&admin, view, None).await;
    assert!(matches!(refused, Err(Error::AuthenticationRequired)), "{refused:?}");
    let after = since(&app, before).await;
    assert_eq!((after[0].0.as_str(), after[0].1.as_str()), ("dashboard.view", "denied"));
    assert_eq!(after[0].3["reason"], "owner_not_in_team");
    assert_eq!(after[0].3["page"], "team_tokens");
    verifies(&app).await;
}

#[tokio::test]
async fn the_activity_log_and_the_playbook_hide_page_views_unless_asked() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, ADMIN, Role::Admin).await;
    let token = app.mint(ADMIN, &w.team_a, &[Ability::ActivityRead], &[]).await;
    let id = token_id(&token);
    let c = cookie(&app, ADMIN).await;
    for _ in 0..3 {
        page(&app, "/settings/tokens", &c).await;
    }
    let html = page(&app, "/settings/activity", &c).await.text().await.unwrap();
    assert!(html.contains("session.login"), "other entries are listed");
    assert!(!html.contains("dashboard.view<"), "page views are hidden by default");
    assert!(html.contains("name=\"page_views\""), "the switch is in the form");
    let html = page(&app, "/settings/activity?page_views=on", &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("dashboard.view<"), "the switch shows them");
    assert!(html.contains("page_views=on"), "links of the view keep the switch");
    // Asking for the event itself shows it whatever the switch says.
    let html = page(&app, "/settings/activity?event=dashboard.view", &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("dashboard.view<"));
    // The export follows the switch too.
    let csv = page(&app, "/settings/activity?format=csv", &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(!csv.contains("dashboard.view"), "{csv}");
    let csv = page(&app, "/settings/activity?format=csv&page_views=on", &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains("dashboard.view"), "{csv}");

    // The playbook's 24 hours: the person's page views hidden, a link shows them.
    let html = page(&app, &format!("/settings/tokens/{id}"), &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("session.login") && !html.contains("dashboard.view<"));
    assert!(html.contains(&format!("/settings/tokens/{id}?page_views=on")));
    let html = page(&app, &format!("/settings/tokens/{id}?page_views=on"), &c)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("dashboard.view<"));

    // Nothing left the chain: the API lists them, and leaves them out when asked.
    let all = app.get("/v1/activity?event=dashboard.view&limit=200", &token).await;
    assert_eq!(all.status, 200);
    assert!(all.body["data"].as_array().unwrap().len() >= 6, "{:#}", all.body);
    let quiet = app.get("/v1/activity?page_views=false&limit=200", &token).await;
    assert_eq!(quiet.status, 200);
    let events: Vec<&str> = quiet.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(!events.is_empty() && !events.contains(&"dashboard.view"), "{events:?}");
    let default = app.get("/v1/activity?limit=200", &token).await;
    assert!(
        default.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["event"] == "dashboard.view")
    );
    verifies(&app).await;
}
