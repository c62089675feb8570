//! Issue 19: rmcp's own OAuth client (its `auth` feature, a dev-dependency only) drives the whole
//! flow against the real server — discovery from the `401` challenge, dynamic registration,
//! PKCE, the consent page (performed here with plain HTTP as a browser would: the sign-in form's
//! session cookie, the page's hidden fields, `POST /authorize` with `decision=allow`), the code
//! exchange (RFC 9207 `iss` checked by rmcp), then rmcp's MCP client with the token: list tools,
//! call a read tool, be refused a write outside the grant, refresh when the access token expires,
//! revoke in Connected apps (→ the token and its refresh token are dead), and authorise again.

use std::time::Duration;

use memberpass::domain::role::Role;
use regex::Regex;
use reqwest::StatusCode;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::auth::{AuthClient, AuthorizationManager, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::{StreamableHttpClientTransport, StreamableHttpClientTransportConfig};
use serde_json::json;

use crate::dashboard::{cookie, person};
use crate::helpers::spawn_with;

const PERSON: &str = "rmcp-oauth@memberpass.test";
/// Nothing listens here: the test reads the code from the `Location` of the consent's answer.
const REDIRECT: &str = "http://127.0.0.1:47913/callback";
const CLIENT_NAME: &str = "rmcp oauth test";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

/// The attributes of every `<tag …>` in `html` (names lower-cased, values unescaped).
fn tags(html: &str, tag: &str) -> Vec<Vec<(String, String)>> {
    let open = Regex::new(&format!(r"(?is)<{tag}\b([^>]*)>")).unwrap();
    let attr = Regex::new(r#"(?s)([a-zA-Z_:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?"#).unwrap();
    open.captures_iter(html)
        .map(|c| {
            attr.captures_iter(&c[1])
                .map(|a| {
                    let v = a.get(2).or(a.get(3)).or(a.get(4)).map(|m| m.as_str()).unwrap_or("");
                    (a[1].to_ascii_lowercase(), unescape(v))
                })
                .collect()
        })
        .collect()
}

fn attr<'a>(t: &'a [(String, String)], name: &str) -> Option<&'a str> {
    t.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// What the consent form holds: its hidden fields, the team chosen, the abilities pre-checked.
struct Consent {
    request: String,
    csrf: String,
    team: String,
    checked: Vec<String>,
    offered: Vec<String>,
}

fn parse_consent(html: &str) -> Consent {
    let form = Regex::new(r#"(?is)<form\b[^>]*action="/authorize"[^>]*>(.*?)</form>"#)
        .unwrap()
        .captures(html)
        .unwrap_or_else(|| panic!("no <form action=\"/authorize\"> on the consent page:\n{html}"))[0]
        .to_owned();
    assert!(
        Regex::new(r#"(?is)<form\b[^>]*method="post""#).unwrap().is_match(&form),
        "the consent form posts"
    );
    let inputs = tags(&form, "input");
    let hidden = |name: &str| {
        inputs
            .iter()
            .find(|t| attr(t, "type") == Some("hidden") && attr(t, "name") == Some(name))
            .and_then(|t| attr(t, "value"))
            .unwrap_or_else(|| panic!("no hidden {name} in the consent form"))
            .to_owned()
    };
    let abilities: Vec<_> = inputs.iter().filter(|t| attr(t, "name") == Some("ability")).collect();
    let select = Regex::new(r#"(?is)<select\b[^>]*name="team"[^>]*>(.*?)</select>"#)
        .unwrap()
        .captures(&form)
        .expect("a <select name=\"team\">")[1]
        .to_owned();
    let options = tags(&select, "option");
    let team = options
        .iter()
        .find(|o| attr(o, "selected").is_some())
        .or(options.first())
        .and_then(|o| attr(o, "value"))
        .expect("a team to choose")
        .to_owned();
    Consent {
        request: hidden("request"),
        csrf: hidden("csrf"),
        team,
        checked: abilities
            .iter()
            .filter(|t| attr(t, "checked").is_some())
            .map(|t| attr(t, "value").unwrap().to_owned())
            .collect(),
        offered: abilities.iter().map(|t| attr(t, "value").unwrap().to_owned()).collect(),
    }
}

/// The person's part: open the authorization URL signed in, check the consent page, allow the
/// pre-checked (read-only) abilities, and return where the answer redirects (with the code).
async fn consent(base: &str, session: &str, auth_url: &str) -> String {
    let web = no_redirects();
    assert!(auth_url.starts_with(&format!("{base}/authorize?")), "{auth_url}");
    let page = web.get(auth_url).header("cookie", session).send().await.unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the signed-in person sees the consent page"
    );
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();
    assert_eq!(headers["x-frame-options"], "DENY");
    assert!(html.contains(CLIENT_NAME), "the consent page names the client");
    let c = parse_consent(&html);
    assert!(
        c.checked.iter().any(|a| a == "project:view-any"),
        "read preset: {:?}",
        c.checked
    );
    assert!(
        !c.checked.iter().any(|a| a == "project:create"),
        "writes are opt-in: {:?}",
        c.checked
    );
    assert!(
        c.offered.iter().any(|a| a == "project:create"),
        "an owner may grant a write: {:?}",
        c.offered
    );

    let mut form: Vec<(&str, &str)> = vec![
        ("request", &c.request),
        ("csrf", &c.csrf),
        ("team", &c.team),
        ("decision", "allow"),
    ];
    for a in &c.checked {
        form.push(("ability", a));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let answer = web
        .post(format!("{base}/authorize"))
        .header("cookie", session)
        .header("sec-fetch-site", "same-origin")
        .header("origin", base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "Allow answers 303");
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT), "{location}");
    location
}

/// rmcp: discovery, registration and PKCE (start_authorization), the person's consent, the code
/// exchange (handle_callback_url); the authorised manager.
async fn authorize(base: &str, session: &str, registered: Option<&str>) -> (AuthorizationManager, String) {
    let mut state = OAuthState::new(format!("{base}/mcp"), None).await.unwrap();
    let mut request = AuthorizationRequest::new(REDIRECT)
        .with_client_name(CLIENT_NAME)
        .with_scopes(["mcp:full", "project:view-any"]);
    if let Some(id) = registered {
        request = request.with_preregistered_client(id);
    }
    state
        .start_authorization(request)
        .await
        .expect("discovery and registration");
    let auth_url = state.get_authorization_url().await.unwrap();
    let location = consent(base, session, &auth_url).await;
    let iss = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "iss")
        .map(|(_, v)| v.into_owned());
    assert_eq!(iss.as_deref(), Some(base), "RFC 9207 iss is the issuer");
    state.handle_callback_url(&location).await.expect("the code exchange");
    let (client_id, creds) = state.get_credentials().await.unwrap();
    let creds = creds.expect("tokens");
    let access = serde_json::to_value(&creds).unwrap();
    assert!(
        access["access_token"].as_str().unwrap().starts_with("mpt_test_"),
        "an mpt_ access token"
    );
    assert!(
        access["refresh_token"].as_str().unwrap().starts_with("mprt_test_"),
        "an mprt_ refresh token"
    );
    // handle_callback_url has moved the state on to Authorized.
    let OAuthState::Authorized(manager) = state else {
        panic!("not authorised")
    };
    (manager, client_id)
}

async fn access_token(client: &AuthClient<reqwest::Client>) -> String {
    let (_, creds) = client.auth_manager.lock().await.get_credentials().await.unwrap();
    serde_json::to_value(creds.unwrap()).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A raw `tools/list` with `token`: the HTTP status.
async fn raw_status(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Connected apps: the revoke form of the grant whose entry names the client, posted with its
/// CSRF token as the dashboard's own form would.
async fn revoke_in_connected_apps(base: &str, session: &str) -> String {
    let web = no_redirects();
    let page = web
        .get(format!("{base}/settings/apps"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains(CLIENT_NAME), "Connected apps lists the client");
    let forms: Vec<_> = Regex::new(r#"(?is)<form\b[^>]*action="/settings/apps/([^"/]+)/revoke"[^>]*>(.*?)</form>"#)
        .unwrap()
        .captures_iter(&html)
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    assert_eq!(forms.len(), 1, "one connected app: {html}");
    let (grant, inner) = &forms[0];
    let csrf = tags(inner, "input")
        .into_iter()
        .find(|t| attr(t, "name") == Some("csrf"))
        .and_then(|t| attr(&t, "value").map(str::to_owned))
        .expect("the revoke form's csrf");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("csrf", csrf.as_str())])
        .finish();
    let res = web
        .post(format!("{base}/settings/apps/{grant}/revoke"))
        .header("cookie", session)
        .header("sec-fetch-site", "same-origin")
        .header("origin", base)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        res.status() == StatusCode::SEE_OTHER || res.status() == StatusCode::OK,
        "revoke: {}",
        res.status()
    );
    grant.clone()
}

#[tokio::test]
async fn rmcps_oauth_client_registers_consents_calls_refreshes_and_reconnects_after_revocation() {
    // Access tokens live 2 s: rmcp refreshes before use once the token is within 1 s of expiry.
    let app = spawn_with(|c| c.oauth.access_ttl = Duration::from_secs(2)).await;
    let w = app.world().await;
    person(&app, &w.team_a, PERSON, Role::Owner).await;
    let session = cookie(&app, PERSON).await;
    let mcp_url = format!("{}/mcp", app.base);

    let (manager, client_id) = authorize(&app.base, &session, None).await;
    let auth = AuthClient::new(reqwest::Client::new(), manager);
    let first_token = access_token(&auth).await;
    let transport = StreamableHttpClientTransport::with_client(
        auth.clone(),
        StreamableHttpClientTransportConfig::with_uri(mcp_url.clone()),
    );
    let mcp = ().serve(transport).await.expect("rmcp connects with the OAuth token");

    let tools: Vec<String> = mcp
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(tools.iter().any(|t| t == "list_projects"), "{tools:?}");
    assert!(
        !tools.iter().any(|t| t == "create_project"),
        "tools/list is filtered by the grant: {tools:?}"
    );

    let read = mcp
        .call_tool(CallToolRequestParams::new("list_projects"))
        .await
        .unwrap();
    assert_ne!(read.is_error, Some(true), "{read:?}");

    let write = mcp
        .call_tool(
            CallToolRequestParams::new("create_project")
                .with_arguments(json!({"name": "from rmcp"}).as_object().unwrap().clone()),
        )
        .await;
    match write {
        Err(e) => assert!(
            format!("{e:?}").to_lowercase().contains("scope") || format!("{e:?}").contains("403"),
            "a write outside the grant is refused with insufficient_scope: {e:?}"
        ),
        Ok(r) => panic!("a write outside the grant must be refused by HTTP 403, got a result: {r:?}"),
    }
    let created: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE name = $1")
        .bind("from rmcp")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(created, 0, "the refused write changed nothing");

    // Expiry: rmcp refreshes (a new mpt_ token), the call goes through.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        raw_status(&app.base, &first_token).await,
        401,
        "the first access token expired"
    );
    let again = mcp
        .call_tool(CallToolRequestParams::new("list_projects"))
        .await
        .unwrap();
    assert_ne!(again.is_error, Some(true));
    let refreshed = access_token(&auth).await;
    assert_ne!(refreshed, first_token, "rmcp refreshed the access token");
    assert_eq!(raw_status(&app.base, &refreshed).await, 200);

    // Revoked in Connected apps: the token is dead at once, and so is its refresh token.
    revoke_in_connected_apps(&app.base, &session).await;
    assert_eq!(raw_status(&app.base, &refreshed).await, 401, "revoked grant → 401");
    assert!(
        mcp.call_tool(CallToolRequestParams::new("list_projects"))
            .await
            .is_err(),
        "rmcp cannot refresh a revoked grant"
    );
    let _ = mcp.cancel().await;

    // Reconnect: the same registered client, a new consent, a working token.
    let (manager, again_id) = authorize(&app.base, &session, Some(&client_id)).await;
    assert_eq!(again_id, client_id);
    let transport = StreamableHttpClientTransport::with_client(
        AuthClient::new(reqwest::Client::new(), manager),
        StreamableHttpClientTransportConfig::with_uri(mcp_url),
    );
    let mcp = ().serve(transport).await.expect("rmcp reconnects");
    assert!(!mcp.list_all_tools().await.unwrap().is_empty());
    let _ = mcp.cancel().await;
}
