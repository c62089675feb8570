//! OAuth for `/mcp`: the token endpoint's refusals (verifier, client, redirect, resource, a
//! reused or expired code, a person gone from the team, re-authorisation), `/revoke`, Connected
//! apps, and OAuth access tokens beside pasted ones — black-box, on both backends, with the
//! helpers of `oauth_flow`.

use memberpass::domain::role::Role;
use reqwest::StatusCode;

use crate::dashboard::{cookie, csrf_of, page, person, post_form};
use crate::oauth_flow::{
    ALICE, BOB, FormOf, READ, REDIRECT, VERIFIER, answer, authorize_path, code_for, consent_form, events, exchange,
    live_grants, pair, refresh, setup, token, tools_list_status,
};

// ---------------------------------------------------------------- /token refusals

#[tokio::test]
async fn a_wrong_verifier_client_redirect_or_resource_is_refused_and_a_reused_code_revokes_what_it_gave() {
    let s = setup().await;
    let code = code_for(&s, READ).await;
    let resource = format!("{}/mcp", s.app.base);
    for (field, value, error) in [
        (
            "code_verifier",
            "a-wrong-verifier-of-at-least-43-characters-0123456789",
            "invalid_grant",
        ),
        ("code_verifier", "short", "invalid_grant"),
        ("client_id", "another-client", "invalid_grant"),
        ("redirect_uri", "http://127.0.0.1:9/other", "invalid_grant"),
        ("resource", "https://evil.example/mcp", "invalid_target"),
    ] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", s.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", resource.as_str()),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let (status, headers, body) = token(&s.app, &form).await;
        assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some(error)), "{field}");
        assert!(body["error_description"].is_string());
        assert_eq!(headers["cache-control"], "no-store");
    }
    for (form, error) in [
        (vec![("grant_type", "password")], "unsupported_grant_type"),
        (vec![("code", code.as_str())], "invalid_request"),
        (
            vec![("grant_type", "authorization_code"), ("code", code.as_str())],
            "invalid_request",
        ),
    ] {
        let (status, _, body) = token(&s.app, &form).await;
        assert_eq!(
            (status.as_u16(), body["error"].as_str()),
            (400, Some(error)),
            "{form:?}"
        );
    }
    // None of those used the code; the right request does, once.
    let (status, body) = exchange(&s, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body:#}");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(tools_list_status(&s.app, &access).await, 200);
    let (status, body) = exchange(&s, &code, VERIFIER).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(
        tools_list_status(&s.app, &access).await,
        401,
        "the reuse revoked the grant"
    );
    assert_eq!(refresh(&s, &refresh_token, &[]).await.0, 400);
    assert_eq!(events(&s.app, "oauth.code_reused").await, 1);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let s = setup().await;
    let code = code_for(&s, READ).await;
    sqlx::query("UPDATE oauth_codes SET expires_at = $1")
        .bind(memberpass::store::now_ms() - 1)
        .execute(s.app.pool())
        .await
        .unwrap();
    let (status, body) = exchange(&s, &code, VERIFIER).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn a_person_removed_from_the_team_gets_no_new_tokens() {
    let s = setup().await;
    let (access, refresh_token) = pair(&s, READ).await;
    s.app.service.remove_member(&s.w.team_a, ALICE).await.unwrap();
    let (status, body) = refresh(&s, &refresh_token, &[]).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(tools_list_status(&s.app, &access).await, 401);
    // Added back, nothing of the old grant comes back to life.
    s.app
        .service
        .set_member_role(&s.w.team_a, ALICE, Role::Admin)
        .await
        .unwrap();
    let (status, body) = refresh(&s, &refresh_token, &[]).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(tools_list_status(&s.app, &access).await, 401);
    assert_eq!(live_grants(&s.app).await, 0);
    let (status, body) = refresh(&s, "mprt_test_garbage", &[]).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn re_authorising_the_same_client_and_redirect_replaces_the_grant() {
    let s = setup().await;
    let (first, first_refresh) = pair(&s, READ).await;
    // Again, from another loopback port: the same client and redirect.
    let path = authorize_path(&s.client_id, &[("redirect_uri", Some("http://127.0.0.1:4444/cb"))]);
    let (handle, csrf, _) = consent_form(&s, &s.cookie, &path).await;
    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", READ, &[], &s.w.team_a).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(tools_list_status(&s.app, &first).await, 401);
    assert_eq!(refresh(&s, &first_refresh, &[]).await.0, 400);
    assert_eq!(live_grants(&s.app).await, 1);
}

// ---------------------------------------------------------------- /revoke and Connected apps

#[tokio::test]
async fn revoke_always_answers_200_and_a_refresh_token_takes_its_grant_with_it() {
    let s = setup().await;
    let revoke = |t: &str| {
        s.app
            .client
            .post(format!("{}/revoke", s.app.base))
            .form_of(&[("token", t), ("token_type_hint", "refresh_token")])
            .send()
    };
    for junk in [
        "",
        "nope",
        "mpt_test_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
    ] {
        assert_eq!(revoke(junk).await.unwrap().status(), 200, "{junk}");
    }
    // An access token revokes itself only.
    let (access, refresh_token) = pair(&s, READ).await;
    assert_eq!(revoke(&access).await.unwrap().status(), 200);
    assert_eq!(tools_list_status(&s.app, &access).await, 401);
    let (status, body) = refresh(&s, &refresh_token, &[]).await;
    assert_eq!(status, 200, "{body:#}");
    let (access2, refresh2) = (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    );
    // A refresh token revokes the grant, and again is still 200.
    assert_eq!(revoke(&refresh2).await.unwrap().status(), 200);
    assert_eq!(revoke(&refresh2).await.unwrap().status(), 200);
    assert_eq!(tools_list_status(&s.app, &access2).await, 401);
    assert_eq!(refresh(&s, &refresh2, &[]).await.0, 400);
    assert_eq!(live_grants(&s.app).await, 0);
}

#[tokio::test]
async fn connected_apps_lists_the_grant_and_revoking_it_ends_its_tokens() {
    let s = setup().await;
    let (access, refresh_token) = pair(&s, READ).await;
    assert_eq!(tools_list_status(&s.app, &access).await, 200);
    let grant: String = sqlx::query_scalar("SELECT id FROM oauth_grants")
        .fetch_one(s.app.pool())
        .await
        .unwrap();
    let (last_used, uses): (Option<i64>, i64) = sqlx::query_as("SELECT last_used_at, use_count FROM oauth_grants")
        .fetch_one(s.app.pool())
        .await
        .unwrap();
    assert!(last_used.is_some() && uses >= 1, "a use is recorded on the grant");
    let html = page(&s.app, "/settings/apps", &s.cookie).await.text().await.unwrap();
    let button = format!("id=\"revoke-{grant}\"");
    for piece in ["Flow tool", "127.0.0.1", "project:view-any", button.as_str()] {
        assert!(html.contains(piece), "the page lacks {piece}");
    }
    let tokens_page = page(&s.app, "/settings/tokens", &s.cookie).await.text().await.unwrap();
    assert!(
        tokens_page.contains("href=\"/settings/apps\""),
        "linked from the navigation"
    );
    let path = format!("/settings/apps/{grant}/revoke");

    // Someone else cannot revoke it; without the CSRF token nobody can.
    person(&s.app, &s.w.team_a, BOB, Role::Owner).await;
    let bob = cookie(&s.app, BOB).await;
    let bob_csrf = csrf_of(&page(&s.app, "/settings/tokens", &bob).await.text().await.unwrap());
    assert_eq!(
        post_form(&s.app, &path, &bob, &[("csrf", &bob_csrf)]).await.status(),
        404
    );
    assert_eq!(post_form(&s.app, &path, &s.cookie, &[]).await.status(), 403);
    assert_eq!(tools_list_status(&s.app, &access).await, 200);

    let csrf = csrf_of(&html);
    let res = post_form(&s.app, &path, &s.cookie, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(tools_list_status(&s.app, &access).await, 401);
    assert_eq!(refresh(&s, &refresh_token, &[]).await.0, 400);
    let html = page(&s.app, "/settings/apps", &s.cookie).await.text().await.unwrap();
    assert!(!html.contains(&format!("revoke-{grant}")));
    let (causer, revoked_by): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT a.causer_id, g.revoked_by FROM audit_log a JOIN oauth_grants g ON g.id = a.subject_id \
         WHERE a.event = 'oauth.grant_revoked'",
    )
    .fetch_one(s.app.pool())
    .await
    .unwrap();
    assert!(causer.is_some());
    assert_eq!(causer, revoked_by);
}

#[tokio::test]
async fn oauth_access_tokens_are_not_listed_among_pasted_tokens_nor_rotated() {
    let s = setup().await;
    let (access, _) = pair(&s, READ).await;
    let id = crate::helpers::token_id(&access);
    let html = page(&s.app, "/settings/tokens", &s.cookie).await.text().await.unwrap();
    assert!(
        !html.contains(&id),
        "each refresh issues one: the grant is what is listed"
    );
    let csrf = csrf_of(&html);
    let res = post_form(
        &s.app,
        &format!("/settings/tokens/{id}/rotate"),
        &s.cookie,
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(res.status(), 409, "a rotated copy would not be bound to /mcp");
    let refused = s
        .app
        .service
        .rotate_token(&memberpass::service::Caller::system(), &id, std::time::Duration::ZERO)
        .await;
    assert!(matches!(refused, Err(memberpass::domain::error::Error::Conflict(_))));
    assert_eq!(tools_list_status(&s.app, &access).await, 200);
}

#[tokio::test]
async fn a_refresh_token_handed_in_by_possession_revokes_its_grant() {
    let s = setup().await;
    let (access, refresh_token) = pair(&s, READ).await;
    let res = s
        .app
        .call(
            reqwest::Method::POST,
            "/v1/tokens/revoke",
            None,
            Some(serde_json::json!({"token": refresh_token})),
        )
        .await;
    assert_eq!(res.status, 202);
    assert_eq!(tools_list_status(&s.app, &access).await, 401);
    assert_eq!(refresh(&s, &refresh_token, &[]).await.0, 400);
    assert_eq!(live_grants(&s.app).await, 0);
}

#[tokio::test]
async fn the_token_endpoint_caps_its_body_and_refuses_repeated_parameters() {
    let s = setup().await;
    let big = "x".repeat(20 * 1024);
    let (status, headers, body) = token(&s.app, &[("grant_type", "authorization_code"), ("code", &big)]).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "invalid_request");
    assert_eq!(headers["cache-control"], "no-store");
    let res = s
        .app
        .client
        .post(format!("{}/token", s.app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=refresh_token&client_id=a&client_id=b&refresh_token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
}
