//! OAuth for `/mcp`, the authorization-code flow (issue 19 items 3, 4, 5, 7): `/authorize` and
//! its consent page, `/token` (codes and refresh tokens), `/revoke`, Connected apps, and the
//! sign-in page's `next` — the whole flow once, then every refusal with the request that tries
//! to break it. Black-box, on both backends.

use memberpass::domain::oauth_flow::s256;
use memberpass::domain::role::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::dashboard::{PASSWORD, client, cookie, csrf_of, page, person, post_form};
use crate::helpers::{TestApp, World, captured_logs, spawn_app, spawn_with};
use crate::mcp::rpc;

pub(crate) const ALICE: &str = "alice-oauth@memberpass.test";
pub(crate) const BOB: &str = "bob-oauth@memberpass.test";
pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/cb";
pub(crate) const VERIFIER: &str = "a-verifier-of-at-least-43-characters-0123456789-abcdefghij";

/// reqwest is built without its `form` feature here.
pub(crate) trait FormOf {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormOf for reqwest::RequestBuilder {
    fn form_of(self, pairs: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// Registers a public client with `redirect`; answers its id.
async fn register(app: &TestApp, redirect: &str) -> String {
    let res = app
        .client
        .post(format!("{}/register", app.base))
        .json(&json!({"client_name": "Flow tool", "redirect_uris": [redirect],
                      "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A world with Alice (admin of team A, with a password) signed in, and a registered client.
pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) w: World,
    pub(crate) cookie: String,
    pub(crate) client_id: String,
}

pub(crate) async fn setup_with(tweak: impl FnOnce(&mut memberpass::app::ServeConfig)) -> Setup {
    let app = spawn_with(tweak).await;
    let w = app.world().await;
    person(&app, &w.team_a, ALICE, Role::Admin).await;
    let cookie = cookie(&app, ALICE).await;
    let client_id = register(&app, REDIRECT).await;
    Setup {
        app,
        w,
        cookie,
        client_id,
    }
}

pub(crate) async fn setup() -> Setup {
    setup_with(|_| {}).await
}

/// `/authorize?…` with the usual parameters, `overrides` replacing (or, with `None`, removing)
/// any of them.
pub(crate) fn authorize_path(client_id: &str, overrides: &[(&str, Option<&str>)]) -> String {
    let challenge = s256(VERIFIER);
    let mut params: Vec<(&str, String)> = vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".into()),
        ("state", "st-123".into()),
        ("scope", "mcp:full project:view-any".into()),
    ];
    for (k, v) in overrides {
        params.retain(|(p, _)| p != k);
        if let Some(v) = v {
            params.push((k, (*v).to_owned()));
        }
    }
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/authorize?{q}")
}

pub(crate) fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

pub(crate) fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn value_of(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html.find(&needle).unwrap_or_else(|| panic!("no {name} field")) + needle.len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// The consent page of a fresh request: (handle, csrf, html).
pub(crate) async fn consent_form(s: &Setup, cookie: &str, path: &str) -> (String, String, String) {
    let res = page(&s.app, path, cookie).await;
    assert_eq!(res.status(), 200, "{}", location(&res));
    let html = res.text().await.unwrap();
    (value_of(&html, "request"), csrf_of(&html), html)
}

/// Answers a consent form; the response is not followed.
pub(crate) async fn answer(
    s: &Setup,
    cookie: &str,
    (handle, csrf): (&str, &str),
    decision: &str,
    abilities: &[&str],
    projects: &[&str],
    team: &str,
) -> reqwest::Response {
    let mut pairs = vec![
        ("request", handle),
        ("csrf", csrf),
        ("team", team),
        ("decision", decision),
    ];
    pairs.extend(abilities.iter().map(|a| ("ability", *a)));
    pairs.extend(projects.iter().map(|p| ("project", *p)));
    post_form(&s.app, "/authorize", cookie, &pairs).await
}

pub(crate) const READ: &[&str] = &["mcp:full", "project:view-any", "project:view"];

/// Consent with `abilities` and answers the code.
pub(crate) async fn code_for(s: &Setup, abilities: &[&str]) -> String {
    let (handle, csrf, _) = consent_form(s, &s.cookie, &authorize_path(&s.client_id, &[])).await;
    let res = answer(s, &s.cookie, (&handle, &csrf), "allow", abilities, &[], &s.w.team_a).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let q = query_of(&location(&res));
    q["code"].clone()
}

pub(crate) async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = app
        .client
        .post(format!("{}/token", app.base))
        .form_of(form)
        .send()
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn exchange(s: &Setup, code: &str, verifier: &str) -> (StatusCode, Value) {
    let (status, _, body) = token(
        &s.app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &s.client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("resource", &format!("{}/mcp", s.app.base)),
        ],
    )
    .await;
    (status, body)
}

pub(crate) async fn refresh(s: &Setup, refresh_token: &str, extra: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", s.client_id.as_str()),
    ];
    form.extend_from_slice(extra);
    let (status, _, body) = token(&s.app, &form).await;
    (status, body)
}

pub(crate) async fn tools_list_status(app: &TestApp, access: &str) -> u16 {
    rpc(app, Some(access), "tools/list", json!({})).await.status.as_u16()
}

/// A full pair for Alice with `abilities`: (access, refresh).
pub(crate) async fn pair(s: &Setup, abilities: &[&str]) -> (String, String) {
    let code = code_for(s, abilities).await;
    let (status, body) = exchange(s, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body:#}");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

pub(crate) async fn events(app: &TestApp, event: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = $1")
        .bind(event)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

pub(crate) async fn live_grants(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM oauth_grants WHERE revoked_at IS NULL")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

// ---------------------------------------------------------------- the whole flow

#[tokio::test]
async fn a_client_connects_signs_in_consents_calls_mcp_refreshes_and_a_replayed_refresh_ends_the_grant() {
    let s = setup_with(|c| c.oauth.refresh_grace = std::time::Duration::from_secs(1)).await;
    let app = &s.app;
    // Without a session the request goes to the sign-in page, which comes back to it.
    let path = authorize_path(&s.client_id, &[("resource", Some(&format!("{}/", app.base)))]);
    let res = client().get(format!("{}{path}", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let login = location(&res);
    assert!(login.starts_with("/login?next="), "{login}");
    assert_eq!(query_of(&login)["next"], path);
    let html = client()
        .get(format!("{}{login}", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(value_of(&html, "next").replace("&#38;", "&"), path);
    let res = client()
        .post(format!("{}/login", app.base))
        .header("sec-fetch-site", "same-origin")
        .form_of(&[("email", ALICE), ("password", PASSWORD), ("next", path.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), path);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    // Consent: the read preset is allowed; the browser goes back with code, state and iss.
    let (handle, csrf, _) = consent_form(&s, &cookie, &path).await;
    let res = answer(&s, &cookie, (&handle, &csrf), "allow", READ, &[], &s.w.team_a).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(&res);
    assert!(back.starts_with(&format!("{REDIRECT}?code=")), "{back}");
    let q = query_of(&back);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.base);
    let code = q["code"].clone();

    // The code for a pair.
    let (status, headers, body) = token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &s.client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "mcp:full project:view-any project:view");
    let access1 = body["access_token"].as_str().unwrap().to_owned();
    let refresh1 = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(memberpass::domain::token::TokenSecret::parse(&access1).is_ok());
    assert!(refresh1.starts_with("mprt_test_"));

    // The access token works on /mcp and nowhere else.
    let listed = rpc(app, Some(&access1), "tools/list", json!({})).await;
    assert_eq!(listed.status, 200, "{:#}", listed.body);
    let names: Vec<&str> = listed.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"list_projects") && !names.contains(&"create_project"),
        "{names:?}"
    );
    app.get("/v1/me", &access1)
        .await
        .assert_error(401, "AUTHENTICATION_REQUIRED");

    // A refresh never widens; it may narrow.
    let (status, body) = refresh(&s, &refresh1, &[("scope", "mcp:full project:create")]).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_scope")));
    let (status, body) = refresh(&s, &refresh1, &[("resource", "https://evil.example/mcp")]).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_target")));

    // Rotation: a new pair; the old access token keeps working until it expires.
    let (status, body) = refresh(&s, &refresh1, &[("scope", "project:view-any")]).await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["scope"], "mcp:full project:view-any");
    let access2 = body["access_token"].as_str().unwrap().to_owned();
    let refresh2 = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh2, refresh1);
    assert_eq!(tools_list_status(app, &access1).await, 200);
    assert_eq!(tools_list_status(app, &access2).await, 200);

    // Within the grace a parallel session's second use of refresh1 gets a pair of its own.
    let (status, body) = refresh(&s, &refresh1, &[]).await;
    assert_eq!(status, 200, "{body:#}");
    let access3 = body["access_token"].as_str().unwrap().to_owned();

    // After the grace, refresh1 again is a replay: the whole grant dies.
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (status, body) = refresh(&s, &refresh1, &[]).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
    for access in [&access1, &access2, &access3] {
        assert_eq!(tools_list_status(app, access).await, 401);
    }
    let (status, _) = refresh(&s, &refresh2, &[]).await;
    assert_eq!(status, 400, "the successor died with the grant");
    assert_eq!(live_grants(app).await, 0);

    for event in [
        "oauth.consent_granted",
        "oauth.code_issued",
        "oauth.token_issued",
        "oauth.refresh_reuse_detected",
        "oauth.grant_revoked",
    ] {
        assert_eq!(events(app, event).await, 1, "{event}");
    }
    assert_eq!(events(app, "oauth.token_refreshed").await, 2);

    // No code, verifier, access or refresh token in any entry or log line.
    let entries: Vec<String> =
        sqlx::query_scalar("SELECT COALESCE(properties, '') || ' ' || COALESCE(user_agent, '') FROM audit_log")
            .fetch_all(app.pool())
            .await
            .unwrap();
    let everything = format!("{}\n{}", entries.join("\n"), captured_logs());
    for secret in [
        &code,
        VERIFIER,
        &s256(VERIFIER),
        &access1,
        &access2,
        &refresh1,
        &refresh2,
        &handle,
    ] {
        assert!(!everything.contains(secret), "a secret leaked: {}", &secret[..8]);
    }
    let codes: Vec<String> = sqlx::query_scalar("SELECT code_digest FROM oauth_codes")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(!codes.contains(&code), "codes are stored as digests");
}

// ---------------------------------------------------------------- /authorize refusals

#[tokio::test]
async fn pkce_response_type_and_resource_problems_go_back_to_the_client_with_state_and_iss() {
    let s = setup().await;
    let bad_resource = format!("{}/mcp/", s.app.base);
    for (overrides, error) in [
        (vec![("code_challenge", None)], "invalid_request"),
        (vec![("code_challenge_method", None)], "invalid_request"),
        (vec![("code_challenge_method", Some("plain"))], "invalid_request"),
        (vec![("code_challenge", Some("too-short"))], "invalid_request"),
        (vec![("response_type", Some("token"))], "unsupported_response_type"),
        (vec![("response_type", None)], "invalid_request"),
        (vec![("resource", Some("https://evil.example/mcp"))], "invalid_target"),
        (vec![("resource", Some(bad_resource.as_str()))], "invalid_target"),
    ] {
        let res = page(&s.app, &authorize_path(&s.client_id, &overrides), &s.cookie).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{overrides:?}");
        let back = location(&res);
        assert!(back.starts_with(&format!("{REDIRECT}?")), "{back}");
        let q = query_of(&back);
        assert_eq!(q["error"], error, "{overrides:?}");
        assert_eq!(q["state"], "st-123");
        assert_eq!(q["iss"], s.app.base);
        assert!(!q.contains_key("code"));
    }
    assert_eq!(s.app.count("oauth_authorization_requests").await, 0);
}

#[tokio::test]
async fn an_unknown_client_or_an_unregistered_redirect_gets_a_page_and_no_redirect() {
    let s = setup().await;
    for overrides in [
        vec![("client_id", Some("no-such-client"))],
        vec![("client_id", None)],
        vec![("redirect_uri", Some("https://evil.example/cb"))],
        vec![("redirect_uri", Some("http://127.0.0.1:9/other"))],
        vec![("redirect_uri", Some("http://localhost:9/cb"))],
        vec![("redirect_uri", None)],
        // Even with every other problem too: the client is never told anything.
        vec![
            ("redirect_uri", Some("https://evil.example/cb")),
            ("code_challenge", None),
        ],
    ] {
        for cookie in [Some(s.cookie.as_str()), None] {
            let mut req = client().get(format!("{}{}", s.app.base, authorize_path(&s.client_id, &overrides)));
            if let Some(c) = cookie {
                req = req.header("cookie", c);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 400, "{overrides:?}");
            assert!(res.headers().get("location").is_none(), "{overrides:?}");
            assert!(res.text().await.unwrap().contains("<html"), "an HTML page");
        }
    }
    // A repeated parameter is refused the same way.
    let path = format!(
        "{}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        authorize_path(&s.client_id, &[])
    );
    let res = page(&s.app, &path, &s.cookie).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
}

#[tokio::test]
async fn a_loopback_redirect_may_use_another_port_and_the_answer_goes_to_that_port() {
    let s = setup().await;
    let other_port = "http://127.0.0.1:55555/cb";
    let path = authorize_path(&s.client_id, &[("redirect_uri", Some(other_port))]);
    let (handle, csrf, html) = consent_form(&s, &s.cookie, &path).await;
    assert!(html.contains("127.0.0.1"), "the redirect host is shown");
    assert!(html.contains("class=\"warning\""), "with a loopback warning");
    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", READ, &[], &s.w.team_a).await;
    let back = location(&res);
    assert!(back.starts_with(&format!("{other_port}?code=")), "{back}");
    // The code is bound to that exact redirect.
    let code = query_of(&back)["code"].clone();
    let (status, body) = exchange(&s, &code, VERIFIER).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn the_consent_page_keeps_its_contract_and_its_headers() {
    let s = setup().await;
    let res = page(&s.app, &authorize_path(&s.client_id, &[]), &s.cookie).await;
    assert_eq!(res.status(), 200);
    let h = res.headers().clone();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self' http://127.0.0.1:9;"), "{csp}");
    let html = res.text().await.unwrap();
    let selected = format!("<option value=\"{}\" selected>", s.w.team_a);
    for piece in [
        "<form method=\"post\" action=\"/authorize\">",
        "<input type=\"hidden\" name=\"request\" value=\"",
        "<input type=\"hidden\" name=\"csrf\" value=\"",
        "name=\"team\"",
        selected.as_str(),
        "name=\"project\" value=\"",
        "name=\"ability\" value=\"project:view-any\" checked>",
        "name=\"ability\" value=\"mcp:full\" checked>",
        "name=\"ability\" value=\"project:create\">",
        "<button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">",
        "<button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\"",
        "Flow tool",
        "(unverified)",
    ] {
        assert!(html.contains(piece), "the page lacks {piece}");
    }
    // A viewer is not offered what their role does not hold.
    person(&s.app, &s.w.team_a, BOB, Role::Viewer).await;
    let bob = cookie(&s.app, BOB).await;
    let html = page(&s.app, &authorize_path(&s.client_id, &[]), &bob)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("value=\"project:view-any\" checked"));
    assert!(!html.contains("value=\"project:create\""));
}

// ---------------------------------------------------------------- the consent answer

#[tokio::test]
async fn deny_answers_access_denied_with_state_and_iss_and_grants_nothing() {
    let s = setup().await;
    let (handle, csrf, _) = consent_form(&s, &s.cookie, &authorize_path(&s.client_id, &[])).await;
    let res = answer(&s, &s.cookie, (&handle, &csrf), "deny", &[], &[], &s.w.team_a).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let q = query_of(&location(&res));
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], s.app.base);
    assert_eq!(s.app.count("oauth_grants").await, 0);
    assert_eq!(events(&s.app, "oauth.consent_denied").await, 1);
}

#[tokio::test]
async fn a_consent_form_is_refused_without_its_csrf_token_or_from_another_site() {
    let s = setup().await;
    let (handle, csrf, _) = consent_form(&s, &s.cookie, &authorize_path(&s.client_id, &[])).await;
    let team = s.w.team_a.as_str();
    let base = [
        ("request", handle.as_str()),
        ("team", team),
        ("decision", "allow"),
        ("ability", "project:view"),
    ];
    let send = |csrf: Option<&str>, headers: Vec<(&'static str, &'static str)>| {
        let mut pairs = base.to_vec();
        if let Some(c) = csrf {
            pairs.push(("csrf", c));
        }
        let mut req = client()
            .post(format!("{}/authorize", s.app.base))
            .header("cookie", &s.cookie)
            .form_of(&pairs);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let same = vec![("sec-fetch-site", "same-origin")];
    for (csrf, headers) in [
        (None, same.clone()),
        (Some("wrong"), same.clone()),
        (Some(csrf.as_str()), vec![("sec-fetch-site", "cross-site")]),
        (Some(csrf.as_str()), vec![("origin", "https://evil.example")]),
        (Some(csrf.as_str()), vec![("origin", "null")]),
    ] {
        let res = send(csrf, headers.clone()).await.unwrap();
        assert_eq!(res.status(), 403, "{csrf:?} {headers:?}");
        assert!(res.headers().get("location").is_none());
    }
    assert_eq!(s.app.count("oauth_grants").await, 0);
    // Chromium's own form post from a no-referrer page: Origin null, same-origin fetch site.
    let res = send(Some(&csrf), vec![("origin", "null"), ("sec-fetch-site", "same-origin")])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).contains("code="));
}

#[tokio::test]
async fn an_expired_or_answered_form_and_someone_elses_form_are_refused() {
    let s = setup().await;
    person(&s.app, &s.w.team_a, BOB, Role::Admin).await;
    let bob = cookie(&s.app, BOB).await;
    let bob_csrf = csrf_of(&page(&s.app, "/settings/tokens", &bob).await.text().await.unwrap());
    let (handle, csrf, _) = consent_form(&s, &s.cookie, &authorize_path(&s.client_id, &[])).await;

    // Bob cannot answer Alice's request (it does not exist for him), and it stays answerable.
    let res = answer(&s, &bob, (&handle, &bob_csrf), "allow", READ, &[], &s.w.team_a).await;
    assert_eq!(res.status(), 404);
    assert!(res.headers().get("location").is_none());
    // An unknown handle neither.
    let res = answer(&s, &s.cookie, ("nope", &csrf), "allow", READ, &[], &s.w.team_a).await;
    assert_eq!(res.status(), 404);

    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", READ, &[], &s.w.team_a).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Answered once: a second answer (allow or deny) is refused.
    for decision in ["allow", "deny"] {
        let res = answer(&s, &s.cookie, (&handle, &csrf), decision, READ, &[], &s.w.team_a).await;
        assert_eq!(res.status(), 409, "{decision}");
        assert!(res.headers().get("location").is_none());
    }

    // A form past its 10 minutes is refused.
    let (handle, csrf, _) = consent_form(&s, &s.cookie, &authorize_path(&s.client_id, &[])).await;
    sqlx::query("UPDATE oauth_authorization_requests SET expires_at = $1 WHERE answered_at IS NULL")
        .bind(memberpass::store::now_ms() - 1)
        .execute(s.app.pool())
        .await
        .unwrap();
    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", READ, &[], &s.w.team_a).await;
    assert_eq!(res.status(), 409);
    assert!(res.headers().get("location").is_none());
    assert_eq!(s.app.count("oauth_grants").await, 1);

    // Requests expired for a day are forgotten when the next one is stored.
    sqlx::query("UPDATE oauth_authorization_requests SET expires_at = $1")
        .bind(memberpass::store::now_ms() - 2 * memberpass::domain::time::DAY_MS)
        .execute(s.app.pool())
        .await
        .unwrap();
    consent_form(&s, &s.cookie, &authorize_path(&s.client_id, &[])).await;
    assert_eq!(s.app.count("oauth_authorization_requests").await, 1);
}

#[tokio::test]
async fn abilities_beyond_the_role_an_empty_grant_and_another_teams_project_are_refused() {
    let s = setup().await;
    person(&s.app, &s.w.team_a, BOB, Role::Manager).await;
    let bob = cookie(&s.app, BOB).await;
    let (handle, csrf, _) = consent_form(&s, &bob, &authorize_path(&s.client_id, &[])).await;
    let team_b_project: String = sqlx::query_scalar("SELECT id FROM projects WHERE team_id = $1 LIMIT 1")
        .bind(&s.w.team_b)
        .fetch_one(s.app.pool())
        .await
        .unwrap();
    let a = s.w.team_a.as_str();
    for (abilities, projects, team) in [
        (vec!["project:view", "project:delete"], vec![], a),
        (vec!["role:view-any"], vec![], a),
        (vec![], vec![], a),
        (vec!["mcp:full"], vec![], a),
        (vec!["project:view", "no:such"], vec![], a),
        (vec!["project:view"], vec![team_b_project.as_str()], a),
        (vec!["project:view"], vec![], s.w.team_b.as_str()),
        (vec!["project:view"], vec![], "not-a-team"),
    ] {
        let res = answer(&s, &bob, (&handle, &csrf), "allow", &abilities, &projects, team).await;
        assert_eq!(res.status(), 422, "{abilities:?} {projects:?} {team}");
        assert!(res.headers().get("location").is_none());
    }
    assert_eq!(s.app.count("oauth_grants").await, 0);
    // The form is still answerable, within what the role holds, limited to one project.
    let res = answer(&s, &bob, (&handle, &csrf), "allow", &["project:update"], &[&s.w.p2], a).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (abilities, projects): (String, Option<String>) =
        sqlx::query_as("SELECT abilities, project_ids FROM oauth_grants")
            .fetch_one(s.app.pool())
            .await
            .unwrap();
    assert_eq!(abilities, r#"["mcp:full","project:update"]"#);
    assert_eq!(projects, Some(format!(r#"["{}"]"#, s.w.p2)));
}

// ---------------------------------------------------------------- sign-in's next

#[tokio::test]
async fn the_sign_in_page_follows_only_a_relative_path_of_this_origin() {
    let app = spawn_app().await;
    let w = app.world().await;
    person(&app, &w.team_a, ALICE, Role::Viewer).await;
    for next in [
        "//evil.example/x",
        "/\\evil.example",
        "/\\/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "/x\r\nSet-Cookie: a=b",
        "/x\ty",
        "/caf\u{e9}",
        "",
    ] {
        // The form is not rendered with it…
        let url = url::form_urlencoded::Serializer::new(format!("{}/login?", app.base))
            .append_pair("next", next)
            .finish();
        let html = client().get(url).send().await.unwrap().text().await.unwrap();
        assert!(!html.contains("name=\"next\""), "{next:?}");
        // …and a sign-in posting it anyway lands on the tokens page.
        let res = client()
            .post(format!("{}/login", app.base))
            .header("sec-fetch-site", "same-origin")
            .form_of(&[("email", ALICE), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/settings/tokens", "{next:?}");
    }
    // Signed in already, the same: only a relative path is followed.
    let c = cookie(&app, ALICE).await;
    assert_eq!(
        location(&page(&app, "/login?next=%2F%2Fevil.example", &c).await),
        "/settings/tokens"
    );
    assert_eq!(
        location(&page(&app, "/login?next=%2Fsettings%2Fapps", &c).await),
        "/settings/apps"
    );
}

#[tokio::test]
async fn a_metadata_document_client_and_a_pre_registered_client_are_authorised_without_the_unverified_mark() {
    let docs = crate::oauth::DocumentServer::start().await;
    let s = setup_with(|c| c.oauth.allow_loopback_client_metadata = true).await;
    // The document registers a port-less loopback callback; the client listens on a port.
    let url = docs.url("/good");
    let redirect = "http://127.0.0.1:7777/callback";
    let path = authorize_path(&url, &[("redirect_uri", Some(redirect))]);
    let (handle, csrf, html) = consent_form(&s, &s.cookie, &path).await;
    assert!(html.contains("Doc client"));
    assert!(!html.contains("(unverified)"));
    assert!(
        html.contains("Published by <strong>127.0.0.1</strong>"),
        "the document's domain is shown"
    );
    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", READ, &[], &s.w.team_a).await;
    let back = location(&res);
    assert!(back.starts_with(&format!("{redirect}?code=")), "{back}");
    let code = query_of(&back)["code"].clone();
    let (status, _, body) = token(
        &s.app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &url),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body:#}");

    // A client the operator added: its name, no mark, its exact redirect.
    let request: memberpass::domain::oauth::RegistrationRequest =
        serde_json::from_value(json!({"client_name": "Operator tool", "redirect_uris": ["https://tool.example/cb"]}))
            .unwrap();
    let added = s
        .app
        .service
        .add_client(Some("operator-tool"), request)
        .await
        .unwrap()
        .unwrap();
    let path = authorize_path(&added.id, &[("redirect_uri", Some("https://tool.example/cb"))]);
    let (_, _, html) = consent_form(&s, &s.cookie, &path).await;
    assert!(html.contains("Operator tool") && !html.contains("(unverified)"));
    assert!(
        !html.contains("class=\"warning\""),
        "no loopback warning for an https redirect"
    );
}

#[tokio::test]
async fn a_person_in_two_teams_grants_one_within_their_role_there() {
    let s = setup().await;
    s.app
        .service
        .set_member_role(&s.w.team_b, ALICE, Role::Viewer)
        .await
        .unwrap();
    let (handle, csrf, html) = consent_form(&s, &s.cookie, &authorize_path(&s.client_id, &[])).await;
    assert!(html.contains(&format!("<option value=\"{}\" selected>", s.w.team_a)));
    assert!(html.contains(&format!("<option value=\"{}\">", s.w.team_b)));
    assert!(
        html.contains("value=\"project:create\""),
        "offered: her admin role in A holds it"
    );
    let b = s.w.team_b.as_str();
    // A write her viewer role in B lacks, or a project of A, is refused for B.
    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", &["project:create"], &[], b).await;
    assert_eq!(res.status(), 422);
    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", READ, &[&s.w.p1], b).await;
    assert_eq!(res.status(), 422);
    let res = answer(&s, &s.cookie, (&handle, &csrf), "allow", READ, &[], b).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let code = query_of(&location(&res))["code"].clone();
    let (status, body) = exchange(&s, &code, VERIFIER).await;
    assert_eq!(status, 200, "{body:#}");
    let access = body["access_token"].as_str().unwrap();
    let listed = rpc(
        &s.app,
        Some(access),
        "tools/call",
        json!({"name": "list_projects", "arguments": {}}),
    )
    .await;
    let text = listed.body.to_string();
    assert!(
        !text.contains(&s.w.p1) && !text.contains(&s.w.p2),
        "team A's projects are not B's"
    );
    let team: String = sqlx::query_scalar("SELECT team_id FROM oauth_grants")
        .fetch_one(s.app.pool())
        .await
        .unwrap();
    assert_eq!(team, s.w.team_b);
}

#[tokio::test]
async fn the_token_endpoint_is_rate_limited_per_address() {
    // The /token bucket is as large as one token's MCP bucket.
    let s = setup_with(|c| c.rate_limit_mcp = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let (status, headers, _) = token(&s.app, &[("grant_type", "refresh_token")]).await;
        if status == 429 {
            assert!(headers.get("retry-after").is_some());
        }
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 429, 429]);
}
