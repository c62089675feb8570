//! How a call's arguments are read, tried the way an attacker would: ids overridden from the
//! body, tokens smuggled through escapes, duplicated keys, NUL bytes, huge numbers, values that
//! should not come back in the error. Each refusal changes nothing and leaves its audit entry.

use memberpass::domain::ability::Ability;
use memberpass::domain::token::{TokenEnv, TokenSecret};
use reqwest::Method;
use serde_json::json;

use crate::helpers::{OWNER_A, Reply, TestApp, spawn_app};

async fn raw(app: &TestApp, method: Method, path: &str, token: &str, body: &str) -> Reply {
    let res = app
        .client
        .request(method, format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    Reply::from_response(res).await
}

#[track_caller]
fn assert_field(reply: &Reply, field: &str) {
    reply.assert_error(422, "VALIDATION_FAILED");
    assert!(reply.body["error"]["fields"][field].is_string(), "{:#}", reply.body);
}

#[tokio::test]
async fn a_path_id_cannot_be_overridden_from_the_body_or_the_query() {
    let app = spawn_app().await;
    let w = app.world().await;
    // Scoped to p1: a p2 in the body must not move the write there.
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[&w.p1]).await;
    let before = app.state().await;
    let body = json!({"project_id": w.p2, "name": "Smuggled", "price_cents": 100, "currency": "USD", "billing_interval": "month"});
    let reply = app.post(&format!("/v1/projects/{}/plans", w.p1), &token, body).await;
    assert_field(&reply, "project_id");
    let reply = app
        .get(&format!("/v1/projects/{}/members?project_id={}", w.p1, w.p2), &token)
        .await;
    assert_field(&reply, "project_id");
    // A query string on a write is not a second way in either.
    let reply = app
        .post(
            &format!("/v1/projects/{}/archive?project_id={}", w.p1, w.p2),
            &token,
            json!({}),
        )
        .await;
    assert_field(&reply, "project_id");
    assert_eq!(app.state().await, before);
    let audit = app.audit_of(&token).await;
    assert_eq!(audit.len(), 3, "{audit:#?}");
    assert!(audit.iter().all(|e| e.outcome == "failed"), "{audit:#?}");
}

#[tokio::test]
async fn a_token_smuggled_through_json_or_url_escapes_is_refused_and_never_stored() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let leaked = TokenSecret::generate(TokenEnv::Test);
    let leaked = leaked.expose_secret();
    let before = app.state().await;
    // `_` written as \u005f and `t` as \u0074: the raw bytes hold no `mpt_` at all.
    let escaped = leaked
        .replacen("mpt_", "mpt\\u005f", 1)
        .replacen("test", "\\u0074est", 1);
    assert!(!escaped.contains("mpt_"));
    let reply = raw(
        &app,
        Method::POST,
        "/v1/projects",
        &token,
        &format!("{{\"name\": \"{escaped}\"}}"),
    )
    .await;
    assert_field(&reply, "name");
    assert!(
        reply.body["error"]["fields"]["name"]
            .as_str()
            .unwrap()
            .contains("token")
    );
    let ban = format!("{{\"reason\": \"see {escaped}\"}}");
    let reply = raw(
        &app,
        Method::POST,
        &format!("/v1/members/{}/ban", w.member),
        &token,
        &ban,
    )
    .await;
    assert_field(&reply, "reason");
    // Percent-encoded in a query string, `_` as %5F.
    let encoded = leaked.replace('_', "%5F");
    let reply = app.get(&format!("/v1/activity?event={encoded}"), &token).await;
    assert_field(&reply, "event");
    assert_eq!(app.state().await, before);
    let secret = &leaked[22..54];
    let audit: Vec<String> = sqlx::query_scalar("SELECT properties FROM audit_log")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(audit.iter().all(|p| !p.contains(secret)), "the audit kept the token");
    assert_eq!(app.audit_of(&token).await.len(), 3);
}

#[tokio::test]
async fn a_key_or_parameter_given_twice_is_refused_rather_than_last_one_wins() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let before = app.state().await;
    for body in [
        r#"{"name": "Visible", "name": "Hidden"}"#,
        r#"{"name": "x", "description": "a", "handle": "one-handle", "handle": "two-handle"}"#,
    ] {
        assert_field(&raw(&app, Method::POST, "/v1/projects", &token, body).await, "body");
    }
    let nested = r#"{"active": true, "active": false}"#;
    let reply = raw(
        &app,
        Method::POST,
        &format!("/v1/plans/{}/publish", w.plan),
        &token,
        nested,
    )
    .await;
    assert_field(&reply, "body");
    let reply = app.get("/v1/projects?limit=1&limit=100", &token).await;
    assert_field(&reply, "limit");
    assert_eq!(app.state().await, before);
    assert_eq!(app.audit_of(&token).await.len(), 4);
}

#[tokio::test]
async fn nul_bytes_and_huge_numbers_get_a_clear_error_never_a_500() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let before = app.state().await;
    let members = format!("/v1/projects/{}/members", w.p1);
    for (path, field) in [
        (format!("{members}?search=%00"), "search"),
        (format!("{members}?search=a%00b"), "search"),
        ("/v1/activity?event=%00".to_owned(), "event"),
        ("/v1/activity?subject_id=x%00".to_owned(), "subject_id"),
        ("/v1/projects?page=99999999999999999999".to_owned(), "page"),
        ("/v1/projects?limit=-1".to_owned(), "limit"),
        ("/v1/activity?limit=1e9".to_owned(), "limit"),
    ] {
        let reply = app.get(&path, &token).await;
        assert_field(&reply, field);
    }
    let codes = format!("/v1/plans/{}/access-codes", w.plan);
    let plans = format!("/v1/projects/{}/plans", w.p1);
    for (path, body, field) in [
        ("/v1/projects", r#"{"name": "a\u0000b"}"#, "name"),
        (codes.as_str(), r#"{"quantity": 99999999999999999999}"#, "quantity"),
        (codes.as_str(), r#"{"quantity": 10001}"#, "quantity"),
        (codes.as_str(), r#"{"quantity": 2.5}"#, "quantity"),
        (codes.as_str(), r#"{"quantity": 1e400}"#, "body"),
        (
            plans.as_str(),
            r#"{"name": "P", "price_cents": -1, "currency": "USD", "billing_interval": "month"}"#,
            "price_cents",
        ),
    ] {
        let reply = raw(&app, Method::POST, path, &token, body).await;
        assert_field(&reply, field);
    }
    assert_eq!(app.state().await, before);
    assert_eq!(app.audit_of(&token).await.len(), 13);
}

#[tokio::test]
async fn the_ability_is_checked_before_the_arguments_are_read() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(70 * 1024));
    for body in ["{\"name\": ", "[1]", r#"{"colour": "red"}"#, huge.as_str()] {
        let reply = raw(&app, Method::POST, "/v1/projects", &token, body).await;
        reply.assert_error(403, "TOKEN_MISSING_ABILITY");
        assert_eq!(reply.body["error"]["required_ability"], "project:create");
    }
    // Even a malformed id does not tell a caller without the ability whether it exists.
    let reply = app.get("/v1/members/not-a-uuid", &token).await;
    reply.assert_error(403, "TOKEN_MISSING_ABILITY");
    let audit = app.audit_of(&token).await;
    assert_eq!(audit.len(), 5);
    assert!(audit.iter().all(|e| e.outcome == "denied"), "{audit:#?}");
}

#[tokio::test]
async fn a_refusal_names_the_field_but_never_echoes_its_value() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let marker = "ZQXJ4471";
    let plans = format!("/v1/projects/{}/plans", w.p1);
    let replies = [
        app.get(&format!("/v1/projects?limit={marker}"), &token).await,
        app.get(&format!("/v1/projects/{}/members?status={marker}", w.p1), &token)
            .await,
        app.get(&format!("/v1/activity?actor_kind={marker}"), &token).await,
        raw(
            &app,
            Method::POST,
            "/v1/projects",
            &token,
            &format!(r#"{{"name": ["{marker}"]}}"#),
        )
        .await,
        raw(
            &app,
            Method::POST,
            &plans,
            &token,
            &format!(
                r#"{{"name": "P", "price_cents": "{marker}", "currency": "USD", "billing_interval": "{marker}"}}"#
            ),
        )
        .await,
    ];
    for reply in replies {
        reply.assert_error(422, "VALIDATION_FAILED");
        assert!(!reply.body.to_string().contains(marker), "{:#}", reply.body);
    }
    let status = app
        .get(&format!("/v1/projects/{}/members?status=vip", w.p1), &token)
        .await;
    assert_eq!(
        status.body["error"]["fields"]["status"],
        "must be one of lead, trialing, customer, churned, banned"
    );
}

#[tokio::test]
async fn a_malformed_path_id_is_not_found_whatever_else_is_wrong() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    app.get("/v1/projects/not-a-uuid/members?limit=abc&colour=red", &token)
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    raw(&app, Method::POST, "/v1/members/%00/ban", &token, "{\"reason\": 5}")
        .await
        .assert_error(404, "RESOURCE_NOT_FOUND");
    let audit = app.audit_of(&token).await;
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|e| e.outcome == "denied" && e.subject_id.is_none()));
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_one_operation_and_its_arguments() {
    let app = spawn_app().await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, Ability::ALL, &[]).await;
    let with_key = |path: String, body: serde_json::Value| {
        app.client
            .post(format!("{}{path}", app.base))
            .bearer_auth(&token)
            .header("idempotency-key", "same-key")
            .json(&body)
    };
    let first = Reply::from_response(
        with_key(format!("/v1/members/{}/ban", w.member), json!({"reason": "spam"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(first.status, 200, "{:#}", first.body);
    // The same key on another operation with the same body is another request.
    let other = Reply::from_response(
        with_key(format!("/v1/members/{}/kick", w.member), json!({"reason": "spam"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    other.assert_error(422, "IDEMPOTENCY_KEY_REUSED");
    // The same operation, arguments and key: the first output again, marked as a replay.
    let again = Reply::from_response(
        with_key(format!("/v1/members/{}/ban", w.member), json!({"reason": "spam"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let long = "k".repeat(256);
    for bad in [&b""[..], b" ", "é".as_bytes(), b"a\tb", long.as_bytes()] {
        let reply = Reply::from_response(
            app.client
                .post(format!("{}/v1/projects/{}/archive", app.base, w.p2))
                .bearer_auth(&token)
                .header(
                    "idempotency-key",
                    reqwest::header::HeaderValue::from_bytes(bad).unwrap(),
                )
                .json(&json!({}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_field(&reply, "Idempotency-Key");
    }
}
