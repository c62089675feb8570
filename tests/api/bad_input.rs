//! Bad input of every kind gets the §4 envelope with the right code, and changes nothing.

use memberpass::domain::ability::Ability;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{OWNER_A, TestApp, spawn_app};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    content_type: &str,
    body: Vec<u8>,
) -> crate::helpers::Reply {
    let res = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    crate::helpers::Reply::from_response(res).await
}

#[tokio::test]
async fn bad_bodies_are_refused_with_the_envelope_and_change_nothing() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let before = app.count("projects").await;
    let cases: Vec<(&str, Vec<u8>, &str, Option<&str>)> = vec![
        (
            "malformed JSON",
            b"{\"name\": ".to_vec(),
            "application/json",
            Some("body"),
        ),
        ("not an object", b"[1, 2]".to_vec(), "application/json", Some("body")),
        (
            "wrong type",
            br#"{"name": 42}"#.to_vec(),
            "application/json",
            Some("name"),
        ),
        (
            "unknown field",
            br#"{"name": "x", "owner": "me"}"#.to_vec(),
            "application/json",
            Some("owner"),
        ),
        (
            "missing field",
            br#"{"handle": "abc"}"#.to_vec(),
            "application/json",
            Some("name"),
        ),
        (
            "empty name",
            br#"{"name": "   "}"#.to_vec(),
            "application/json",
            Some("name"),
        ),
        (
            "bad handle",
            br#"{"name": "x", "handle": "UPPER case"}"#.to_vec(),
            "application/json",
            Some("handle"),
        ),
        (
            "not JSON",
            b"name=x".to_vec(),
            "application/x-www-form-urlencoded",
            Some("body"),
        ),
    ];
    for (what, body, ct, field) in cases {
        let reply = raw(&app, Method::POST, "/v1/projects", &token, ct, body).await;
        reply.assert_error(422, "VALIDATION_FAILED");
        if let Some(field) = field {
            assert!(
                reply.body["error"]["fields"][field].is_string(),
                "{what}: {:#}",
                reply.body
            );
        }
    }
    let huge = serde_json::to_vec(&json!({"name": "x".repeat(70 * 1024)})).unwrap();
    raw(&app, Method::POST, "/v1/projects", &token, "application/json", huge)
        .await
        .assert_error(413, "PAYLOAD_TOO_LARGE");
    assert_eq!(app.count("projects").await, before, "nothing was created");
    // Each refused call still leaves its one entry.
    let audit = app.audit_of(&token).await;
    assert_eq!(audit.len(), 9, "{audit:#?}");
    assert!(
        audit
            .iter()
            .all(|e| e.event == "create_project" && e.outcome == "failed"),
        "{audit:#?}"
    );
    assert_eq!(audit.last().unwrap().error_code.as_deref(), Some("PAYLOAD_TOO_LARGE"));
}

#[tokio::test]
async fn routes_methods_ids_and_queries_are_checked() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    app.get("/v1/nowhere", &token)
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    app.get("/nowhere", &token)
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    app.call(Method::PUT, "/v1/projects", Some(&token), Some(json!({})))
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    app.call(Method::DELETE, &format!("/v1/projects/{}", w.p1), Some(&token), None)
        .await
        .assert_error(405, "METHOD_NOT_ALLOWED");
    for id in ["not-a-uuid", "1", "00000000-0000-0000-0000-000000000000", "%E2%80%AE"] {
        app.get(&format!("/v1/projects/{id}"), &token)
            .await
            .assert_error(404, "RESOURCE_NOT_FOUND");
        app.get(&format!("/v1/members/{id}"), &token)
            .await
            .assert_error(404, "RESOURCE_NOT_FOUND");
    }
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("page=0", "page"),
        ("limit=abc", "limit"),
        ("colour=red", "colour"),
    ] {
        let reply = app.get(&format!("/v1/projects?{query}"), &token).await;
        reply.assert_error(422, "VALIDATION_FAILED");
        assert_eq!(reply.code(), "VALIDATION_FAILED");
        assert!(
            reply.body["error"]["fields"][field].is_string(),
            "{query}: {:#}",
            reply.body
        );
    }
    let bad_status = app
        .get(&format!("/v1/projects/{}/members?status=vip", w.p1), &token)
        .await;
    bad_status.assert_error(422, "VALIDATION_FAILED");
    assert!(bad_status.body["error"]["fields"]["status"].is_string());
    let conflict = app
        .post(
            &format!("/v1/subscriptions/{}/cancel", w.subscription),
            &token,
            json!({}),
        )
        .await;
    assert_eq!(conflict.status, 200);
    app.post(
        &format!("/v1/subscriptions/{}/cancel", w.subscription),
        &token,
        json!({}),
    )
    .await
    .assert_error(409, "CONFLICT");
}

#[tokio::test]
async fn a_write_whose_audit_insert_fails_changes_nothing_and_hides_the_cause() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let (create, function) = if app.is_postgres() {
        (
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW WHEN (NEW.event = 'create_project') \
             EXECUTE FUNCTION refuse_audit()",
            Some(
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'secret cause 1234'; END $$ LANGUAGE plpgsql",
            ),
        )
    } else {
        (
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log WHEN NEW.event = 'create_project' \
             BEGIN SELECT RAISE(ABORT, 'secret cause 1234'); END",
            None,
        )
    };
    if let Some(f) = function {
        sqlx::query(f).execute(app.pool()).await.unwrap();
    }
    sqlx::query(create).execute(app.pool()).await.unwrap();
    let before = app.count("projects").await;
    let reply = app
        .post("/v1/projects", &token, json!({"name": "Should not exist"}))
        .await;
    reply.assert_error(500, "INTERNAL_ERROR");
    assert!(!reply.body.to_string().contains("secret cause"), "{:#}", reply.body);
    assert_eq!(app.count("projects").await, before);
    // Other operations still work and are audited.
    assert_eq!(app.get("/v1/projects", &token).await.status, 200);
}
