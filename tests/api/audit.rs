//! The audit trail: its chain verified by the real binary, its API filters and cursor, redaction,
//! and export.

use memberpass::domain::ability::Ability;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, TestApp, spawn_app, token_id};

async fn verify(app: &TestApp) -> (bool, String) {
    let out = app.cli(&["--json", "audit", "verify"]).await;
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn busy_app() -> TestApp {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    app.get("/v1/projects", &token).await;
    app.post("/v1/projects", &token, json!({"name": "Audited"})).await;
    app.get("/v1/me", &token).await;
    app
}

#[tokio::test]
async fn audit_verify_passes_on_an_untouched_log() {
    let app = busy_app().await;
    let (ok, report) = verify(&app).await;
    assert!(ok, "{report}");
    let report: Value = serde_json::from_str(&report).unwrap();
    assert!(report["entries"].as_i64().unwrap() > 5);
}

#[tokio::test]
async fn audit_verify_reports_an_edited_entry() {
    let app = busy_app().await;
    sqlx::query("UPDATE audit_log SET outcome = 'success', error_code = NULL WHERE seq = 3")
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET properties = '{}' WHERE event = 'create_project'")
        .execute(app.pool())
        .await
        .unwrap();
    let (ok, report) = verify(&app).await;
    assert!(!ok);
    assert!(report.contains("modified"), "{report}");
}

#[tokio::test]
async fn audit_verify_reports_a_deleted_entry() {
    for seq in ["4", "(SELECT MAX(seq) FROM audit_log)"] {
        let app = busy_app().await;
        let delete = format!("DELETE FROM audit_log WHERE seq = {seq}");
        sqlx::query(sqlx::AssertSqlSafe(delete))
            .execute(app.pool())
            .await
            .unwrap();
        let (ok, report) = verify(&app).await;
        assert!(!ok, "deleting {seq} went unnoticed: {report}");
    }
}

#[tokio::test]
async fn audit_verify_reports_an_inserted_entry() {
    let app = busy_app().await;
    // A forged entry copied from a real one, slotted between two others.
    sqlx::query("UPDATE audit_log SET seq = seq + 1000 WHERE seq > 5")
        .execute(app.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO audit_log (seq, id, created_at, team_id, project_id, actor_kind, causer_type, causer_id, token_id, \
         event, subject_type, subject_id, properties, outcome, error_code, request_id, ip, user_agent, client, prev_hash, hash) \
         SELECT 6, 'forged', created_at, team_id, project_id, actor_kind, causer_type, causer_id, token_id, event, subject_type, \
         subject_id, properties, outcome, error_code, request_id, ip, user_agent, client, hash, hash FROM audit_log WHERE seq = 5",
    )
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query("UPDATE audit_log SET seq = seq - 999 WHERE seq > 1000")
        .execute(app.pool())
        .await
        .unwrap();
    let (ok, report) = verify(&app).await;
    assert!(!ok, "{report}");
}

/// `since` and `until` are bounds on the chain's own order: an entry stamped with an earlier time
/// than its predecessor (a clock stepped back, a replica behind another) takes its predecessor's
/// time, and every window finds exactly the entries whose time is in it (`since` inclusive,
/// `until` exclusive, to the millisecond).
#[tokio::test]
async fn activity_time_windows_find_exactly_the_entries_inside_them() {
    use memberpass::domain::audit::AuditDraft;
    use memberpass::store::{audit, now_ms};
    let app = spawn_app().await;
    let w = app.world().await;
    let reader = app.mint(OWNER_A, &w.team_a, &[Ability::ActivityRead], &[]).await;
    let base = now_ms() + 3_600_000;
    let mut stamped = Vec::new();
    let mut tx = app.pool().begin().await.unwrap();
    for i in 0..30i64 {
        let at = if i == 20 { base - 3_600_000 } else { base + i * 10 };
        let head = audit::lock_head(&mut tx).await.unwrap();
        let draft = AuditDraft::system("window.test", Some(w.team_a.clone()));
        let rows = audit::append_after_at(&mut tx, head, vec![draft], at).await.unwrap();
        stamped.push((rows[0].id.clone(), rows[0].created_at));
    }
    tx.commit().await.unwrap();
    assert_eq!(
        stamped[20].1, stamped[19].1,
        "a time earlier than the head's takes the head's"
    );

    let at = |ms: i64| memberpass::domain::time::rfc3339(ms);
    let windows = [
        (None, None),
        (Some(base), None),
        (Some(base + 1), None),
        (Some(base + 190), None),
        (None, Some(base + 190)),
        (None, Some(base + 191)),
        (Some(base + 50), Some(base + 120)),
        (Some(base + 120), Some(base + 50)),
        (Some(base + 290), Some(base + 291)),
        (Some(base + 291), None),
        (None, Some(base)),
    ];
    for (since, until) in windows {
        let mut query = "event=window.test&limit=200".to_owned();
        if let Some(s) = since {
            query.push_str(&format!("&since={}", at(s)));
        }
        if let Some(u) = until {
            query.push_str(&format!("&until={}", at(u)));
        }
        let page = app.get(&format!("/v1/activity?{query}"), &reader).await;
        assert_eq!(page.status, 200, "{:#}", page.body);
        let found: Vec<&str> = page.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let expected: Vec<&str> = stamped
            .iter()
            .rev()
            .filter(|(_, t)| since.is_none_or(|s| *t >= s) && until.is_none_or(|u| *t < u))
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(found, expected, "since {since:?} until {until:?} (base {base})");
    }
    let (ok, report) = verify(&app).await;
    assert!(ok, "{report}");
}

#[tokio::test]
async fn the_activity_log_filters_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    let w = app.world().await;
    let reader = app.mint(OWNER_A, &w.team_a, &[Ability::ActivityRead], &[]).await;
    let actor = project_viewer(&app, &w).await;
    for _ in 0..3 {
        app.get("/v1/projects", &actor).await;
    }
    app.get(&format!("/v1/projects/{}", w.p1), &actor).await;
    app.get("/v1/roles", &actor).await; // denied: no role:view-any

    let by_token = app
        .get(&format!("/v1/activity?token_id={}", token_id(&actor)), &reader)
        .await;
    assert_eq!(by_token.status, 200, "{:#}", by_token.body);
    let events: Vec<&str> = by_token.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "list_roles",
            "get_project",
            "list_projects",
            "list_projects",
            "list_projects"
        ],
        "newest first"
    );

    let q = |query: String| {
        let (app, reader) = (&app, &reader);
        async move { app.get(&format!("/v1/activity?{query}"), reader).await.body }
    };
    let denied = q(format!("token_id={}&outcome=denied", token_id(&actor))).await;
    assert_eq!(denied["data"].as_array().unwrap().len(), 1);
    assert_eq!(denied["data"][0]["error_code"], "TOKEN_MISSING_ABILITY");
    let subject = q(format!("subject_type=project&subject_id={}", w.p1)).await;
    assert!(
        subject["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["subject_id"] == w.p1.as_str())
    );
    assert!(!subject["data"].as_array().unwrap().is_empty());
    let mcp = q("actor_kind=mcp".into()).await;
    assert_eq!(mcp["data"].as_array().unwrap().len(), 0);
    let system = q("actor_kind=system&event=token.minted".into()).await;
    assert!(system["data"].as_array().unwrap().len() >= 3);
    let causer = q(format!(
        "causer_id={}&event=list_projects",
        by_token.body["data"][0]["causer_id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(causer["data"].as_array().unwrap().len(), 3);
    let future = q("since=2999-01-01T00:00:00Z".into()).await;
    assert_eq!(future["data"].as_array().unwrap().len(), 0);
    let past = q("until=2000-01-01T00:00:00Z".into()).await;
    assert_eq!(past["data"].as_array().unwrap().len(), 0);

    // Paging by cursor walks the same entries, without overlap.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = q(format!("token_id={}&limit=2{cursor}", token_id(&actor))).await;
        seen.extend(page["data"].as_array().unwrap().iter().map(|e| e["id"].clone()));
        match page["meta"]["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let all: Vec<Value> = by_token.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].clone())
        .collect();
    assert_eq!(seen, all);

    for bad in [
        "limit=0",
        "limit=201",
        "since=yesterday",
        "actor_kind=robot",
        "outcome=maybe",
        "cursor=abc",
        "colour=red",
    ] {
        app.get(&format!("/v1/activity?{bad}"), &reader)
            .await
            .assert_error(422, "VALIDATION_FAILED");
    }
}

#[tokio::test]
async fn a_token_scoped_to_projects_lists_only_their_entries_newest_first_across_pages() {
    let app = spawn_app().await;
    let w = app.world().await;
    let actor = project_viewer(&app, &w).await;
    for _ in 0..3 {
        app.get(&format!("/v1/projects/{}", w.p1), &actor).await;
        app.get(&format!("/v1/projects/{}", w.p2), &actor).await;
        app.get("/v1/projects", &actor).await; // about no project
    }
    let team = app.mint(OWNER_A, &w.team_a, &[Ability::ActivityRead], &[]).await;
    let everything = app.get("/v1/activity?limit=200", &team).await.body["data"].clone();

    let (p1, p2) = (w.p1.as_str(), w.p2.as_str());
    for projects in [vec![p1], vec![p1, p2], vec![p2, p1, p2]] {
        let about: Vec<Value> = everything
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| projects.iter().any(|p| e["project_id"] == *p))
            .map(|e| e["id"].clone())
            .collect();
        let scoped = app.mint(OWNER_A, &w.team_a, &[Ability::ActivityRead], &projects).await;
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = app.get(&format!("/v1/activity?limit=2{cursor}"), &scoped).await.body;
            seen.extend(page["data"].as_array().unwrap().iter().map(|e| e["id"].clone()));
            match page["meta"]["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let distinct = projects.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert_eq!(about.len(), 3 * distinct, "three calls about each project");
        assert_eq!(seen, about, "{projects:?}");
    }
}

#[tokio::test]
async fn secret_looking_properties_are_redacted() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let reason = "contact me, my password is hunter2 and key mpt_test_notARealTokenButLooksLikeOne";
    let reply = app
        .post(
            &format!("/v1/members/{}/ban", w.member),
            &token,
            json!({"reason": reason}),
        )
        .await;
    assert_eq!(reply.status, 200, "{:#}", reply.body);
    let props: String =
        sqlx::query_scalar("SELECT properties FROM audit_log WHERE event = 'ban_member' AND token_id = $1")
            .bind(token_id(&token))
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(!props.contains("notARealToken"), "{props}");
    assert!(props.contains("[REDACTED]"), "{props}");
    assert!(props.contains("\"changes\""), "{props}");
}

#[tokio::test]
async fn audit_export_writes_every_entry_as_ndjson() {
    let app = busy_app().await;
    let total = app.count("audit_log").await;
    let out = app.cli(&["audit", "export"]).await;
    assert!(out.status.success());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len() as i64, total);
    assert!(lines.iter().all(|l| l["hash"].is_string() && l["event"].is_string()));
    let team: String = lines
        .iter()
        .find_map(|l| l["team_id"].as_str().map(str::to_owned))
        .unwrap();
    let out = app
        .cli(&["audit", "export", "--team", &team, "--since", "2000-01-01T00:00:00Z"])
        .await;
    let filtered = String::from_utf8(out.stdout).unwrap();
    assert!(filtered.lines().all(|l| l.contains(&team)));
    assert!(filtered.lines().count() > 0);
}

#[tokio::test]
async fn the_chain_stays_intact_under_concurrent_writes() {
    let app = std::sync::Arc::new(spawn_app().await);
    let w = app.world().await;
    let token = std::sync::Arc::new(app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let (app, token, p1) = (app.clone(), token.clone(), w.p1.clone());
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => app.get("/v1/projects", &token).await.status,
                1 => {
                    app.post("/v1/projects", &token, json!({"name": format!("Concurrent {i}")}))
                        .await
                        .status
                }
                _ => {
                    let body = json!({"name": format!("Renamed {i}")});
                    app.call(
                        reqwest::Method::PATCH,
                        &format!("/v1/projects/{p1}"),
                        Some(&token),
                        Some(body),
                    )
                    .await
                    .status
                }
            }
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_success());
    }
    assert_eq!(app.audit_of(&token).await.len(), 24);
    let (ok, report) = verify(&app).await;
    assert!(ok, "{report}");
}

/// SQLite syncs the WAL at every commit unless told otherwise: an answered call's entry survives
/// a power loss (PostgreSQL keeps its default `synchronous_commit = on`).
#[tokio::test]
async fn sqlite_syncs_every_commit_by_default() {
    let app = crate::helpers::spawn_app().await;
    if app.is_postgres() {
        let on: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(app.pool())
            .await
            .unwrap();
        assert_eq!(on, "on");
        return;
    }
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(level, 2, "FULL");
    let relaxed = crate::helpers::spawn_with(|c| c.sqlite_synchronous = memberpass::store::Synchronous::Normal).await;
    let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(relaxed.pool())
        .await
        .unwrap();
    assert_eq!(level, 1, "NORMAL when asked");
}

/// Group commit under load: 16 callers read with one token while it is revoked. No call that
/// started after the revocation returned succeeds; every answered success has exactly its one
/// entry, every refusal its `denied` entry; the chain verifies.
#[tokio::test]
async fn a_revocation_is_seen_by_the_next_request_while_batches_are_in_flight() {
    use std::sync::Arc;
    use std::time::Instant;
    let app = Arc::new(crate::helpers::spawn_app().await);
    let w = app.world().await;
    let token = app
        .mint(
            crate::helpers::OWNER_A,
            &w.team_a,
            &[memberpass::domain::ability::Ability::ProjectViewAny],
            &[],
        )
        .await;
    let revoked_at: Arc<std::sync::Mutex<Option<Instant>>> = Default::default();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..16 {
        let (app, token, revoked_at, answered) = (app.clone(), token.clone(), revoked_at.clone(), answered.clone());
        callers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            loop {
                let started = Instant::now();
                let status = app.get("/v1/projects", &token).await.status.as_u16();
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                seen.push((started, status));
                let after = revoked_at.lock().unwrap().is_some_and(|at| started > at);
                if status == 401 && after {
                    return seen;
                }
            }
        }));
    }
    // Revoke once the load is running (a count of answers, not a time).
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 64 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    app.service
        .revoke_token(
            &memberpass::service::Caller::system(),
            &crate::helpers::token_id(&token),
            None,
        )
        .await
        .unwrap();
    *revoked_at.lock().unwrap() = Some(Instant::now());
    let returned = revoked_at.lock().unwrap().unwrap();
    let mut successes = 0;
    let mut refusals = 0;
    for caller in callers {
        for (started, status) in caller.await.unwrap() {
            match status {
                200 => {
                    assert!(
                        started < returned,
                        "a call started after the revocation returned succeeded"
                    );
                    successes += 1;
                }
                401 => refusals += 1,
                other => panic!("unexpected status {other}"),
            }
        }
    }
    assert!(
        successes > 16,
        "the load ran before the revocation ({successes} successes)"
    );
    let entries = app.audit_of(&token).await;
    let ok = entries
        .iter()
        .filter(|e| e.event == "list_projects" && e.outcome == "success")
        .count();
    assert_eq!(ok, successes, "one entry per answered success, no more");
    // Refusals after the revocation: `auth.failed` (at authentication) or a `denied` entry (the
    // batch's re-check), one per 401 — the failed-authentication writer may still be gathering.
    let waited = Instant::now();
    let refused = loop {
        let refused = app
            .audit_of(&token)
            .await
            .iter()
            .filter(|e| e.event == "auth.failed" || (e.event == "list_projects" && e.outcome == "denied"))
            .count();
        if refused >= refusals || waited.elapsed().as_secs() > 10 {
            break refused;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(refused, refusals, "one entry per refusal");
    let mut conn = app.pool().acquire().await.unwrap();
    let verification = memberpass::store::audit::verify(&mut conn).await.unwrap();
    assert!(verification.ok, "{:?}", verification.problems);
}

/// A token of the first team's owner that can list and read projects.
async fn project_viewer(app: &crate::helpers::TestApp, w: &crate::helpers::World) -> String {
    let abilities = [Ability::ProjectViewAny, Ability::ProjectView];
    app.mint(OWNER_A, &w.team_a, &abilities, &[]).await
}
