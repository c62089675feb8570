//! OAuth for `/mcp`, the foundation (issue 19 items 1 and 2): discovery documents, the `401`
//! challenge, dynamic client registration, pre-registered clients, and client ID metadata
//! documents fetched with their SSRF guards — each rule with the request that tries to break it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::{HeaderMap, StatusCode as AxStatus, header};
use axum::response::IntoResponse;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_with};

const PUBLIC: &str = "https://mp.example";

/// Every ability that permits no write, in catalog order: the baseline of `scopes_supported`.
const BASELINE: &[&str] = &[
    "mcp:full",
    "activity:read",
    "team:view-any",
    "team:view",
    "team-member:view-any",
    "role:view-any",
    "project:view-any",
    "project:view",
    "project-resource:view-any",
    "project-resource:view",
    "project-subscription-plan:view-any",
    "project-subscription-plan:view",
    "project-user:view-any",
    "project-user:view",
    "project-subscription:view-any",
    "project-access-code:view-any",
    "distribution:read",
];

async fn public_app() -> TestApp {
    spawn_with(|c| c.public_url = Some(format!("{PUBLIC}/"))).await
}

/// An app whose registration limit leaves room for a table of attempts.
async fn roomy_app() -> TestApp {
    spawn_with(|c| c.rate_limit_oauth_registrations = 1000).await
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

async fn register(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/register", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn client(redirect: &str) -> Value {
    json!({"client_name": "Test tool", "redirect_uris": [redirect],
           "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"})
}

// ---------------------------------------------------------------- discovery

#[tokio::test]
async fn the_protected_resource_metadata_of_mcp_is_exactly_as_specified() {
    let app = public_app().await;
    let (status, headers, body) = get(&app, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert_eq!(
        body,
        json!({
            "resource": "https://mp.example/mcp",
            "authorization_servers": ["https://mp.example"],
            "scopes_supported": BASELINE,
            "bearer_methods_supported": ["header"],
            "resource_name": "MemberPass MCP",
        })
    );
    let scopes: Vec<&str> = body["scopes_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(!scopes.contains(&"offline_access"));
    for s in scopes {
        let a: memberpass::domain::ability::Ability = s.parse().unwrap();
        assert!(!a.permits_writes(), "{s} permits writes");
    }
}

#[tokio::test]
async fn the_root_protected_resource_metadata_names_the_origin() {
    let app = public_app().await;
    let (status, _, body) = get(&app, "/.well-known/oauth-protected-resource").await;
    assert_eq!(status, 200);
    assert_eq!(body["resource"], "https://mp.example");
    assert_eq!(body["authorization_servers"], json!(["https://mp.example"]));
    assert_eq!(body["scopes_supported"], json!(BASELINE));
    assert_eq!(body["bearer_methods_supported"], json!(["header"]));
}

#[tokio::test]
async fn the_authorization_server_metadata_is_exactly_as_specified_at_both_addresses() {
    let app = public_app().await;
    let all: Vec<&str> = memberpass::domain::ability::Ability::ALL
        .iter()
        .map(|a| a.as_str())
        .collect();
    let expected = json!({
        "issuer": "https://mp.example",
        "authorization_endpoint": "https://mp.example/authorize",
        "token_endpoint": "https://mp.example/token",
        "registration_endpoint": "https://mp.example/register",
        "revocation_endpoint": "https://mp.example/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": all,
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    });
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let (status, headers, body) = get(&app, path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["access-control-allow-origin"], "*");
        assert_eq!(body, expected, "{path}");
    }
}

#[tokio::test]
async fn the_issuer_has_no_trailing_slash_and_no_path_whatever_the_public_url() {
    let app = spawn_with(|c| c.public_url = Some("https://MP.example:443/".into())).await;
    let (_, _, as_meta) = get(&app, "/.well-known/oauth-authorization-server").await;
    assert_eq!(as_meta["issuer"], "https://mp.example");
    let (_, _, prm) = get(&app, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(prm["authorization_servers"], json!(["https://mp.example"]));
}

#[tokio::test]
async fn an_unknown_well_known_path_is_a_json_404_never_a_redirect() {
    let app = public_app().await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/.well-known/oauth-protected-resource/other",
        "/.well-known/oauth-protected-resource/mcp/",
        "/.well-known/security.txt",
        "/.well-known/oauth-authorization-server/mcp",
        "/.well-known/",
    ] {
        let res = no_redirects.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "RESOURCE_NOT_FOUND", "{path}");
    }
    let res = no_redirects
        .post(format!("{}/.well-known/oauth-authorization-server", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
}

// ---------------------------------------------------------------- the 401 challenge

/// What `/mcp` answers a `401` with. The challenge is added around `/mcp`'s routes, so it holds
/// whichever layer refuses.
#[tokio::test]
async fn every_401_from_mcp_carries_the_oauth_challenge() {
    let app = public_app().await;
    let base = "Bearer resource_metadata=\"https://mp.example/.well-known/oauth-protected-resource/mcp\", scope=\"";
    let scope = BASELINE.join(" ");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let unknown = "mpt_test_000000000000_00000000000000000000000000000000000000";
    for method in [reqwest::Method::POST, reqwest::Method::GET, reqwest::Method::DELETE] {
        for (token, expect_error) in [(None, false), (Some("garbage"), true), (Some(unknown), true)] {
            let mut req = app
                .client
                .request(method.clone(), format!("{}/mcp", app.base))
                .header("accept", "application/json, text/event-stream")
                .header("content-type", "application/json");
            if method == reqwest::Method::POST {
                req = req.body(init.to_string());
            }
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401, "{method} {token:?}");
            let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
            let mut expected = format!("{base}{scope}\"");
            if expect_error {
                expected.push_str(", error=\"invalid_token\"");
            }
            assert_eq!(challenge, expected, "{method} {token:?}");
            assert_eq!(res.headers()["access-control-expose-headers"], "WWW-Authenticate");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["data"]["code"], "AUTHENTICATION_REQUIRED");
        }
    }
    // Another scheme than Bearer is no token at all.
    let res = app
        .client
        .post(format!("{}/mcp", app.base))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(!res.headers()["www-authenticate"].to_str().unwrap().contains("error="));
}

#[tokio::test]
async fn rest_401s_keep_their_plain_challenge() {
    let app = public_app().await;
    let res = app
        .client
        .get(format!("{}/v1/projects", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
}

// ---------------------------------------------------------------- dynamic registration

#[tokio::test]
async fn a_public_client_registers_and_is_stored_and_audited() {
    let app = public_app().await;
    let (status, body) = register(
        &app,
        json!({"client_name": "mcp-remote", "redirect_uris": ["http://localhost:3334/oauth/callback"],
               "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
               "token_endpoint_auth_method": "none", "client_uri": "https://github.com/geelen/mcp-remote",
               "software_id": "mcp-remote", "software_version": "0.1.38", "scope": "mcp:full",
               "unknown_field": {"ignored": true}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["client_id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    assert!(body["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["client_name"], "mcp-remote");
    assert_eq!(body["redirect_uris"], json!(["http://localhost:3334/oauth/callback"]));
    assert_eq!(body["grant_types"], json!(["authorization_code", "refresh_token"]));
    assert_eq!(body["response_types"], json!(["code"]));
    assert!(body.get("client_secret").is_none());
    assert!(body.get("unknown_field").is_none());

    let (kind, name): (String, Option<String>) =
        sqlx::query_as("SELECT kind, client_name FROM oauth_clients WHERE id = $1")
            .bind(&id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((kind.as_str(), name.as_deref()), ("registered", Some("mcp-remote")));
    let (subject, actor, outcome): (Option<String>, String, String) =
        sqlx::query_as("SELECT subject_id, actor_kind, outcome FROM audit_log WHERE event = 'oauth.client_registered'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(subject.as_deref(), Some(id.as_str()));
    assert_eq!((actor.as_str(), outcome.as_str()), ("system", "success"));

    let known = app.service.oauth_client(&id).await.unwrap().expect("client found");
    assert_eq!(known.redirect_uris, ["http://localhost:3334/oauth/callback"]);
}

#[tokio::test]
async fn every_accepted_kind_of_redirect_uri_registers() {
    let app = roomy_app().await;
    for ok in [
        "https://claude.ai/api/mcp/auth_callback",
        "http://127.0.0.1:33418/",
        "http://127.0.0.1/callback",
        "http://[::1]:8080/cb",
        "http://localhost:6274/oauth/callback",
        "cursor://anysphere.cursor-mcp/oauth/callback",
        "vscode://vscode.github-authentication/did-authenticate",
        "com.example.app:/oauth2redirect",
    ] {
        let (status, body) = register(&app, client(ok)).await;
        assert_eq!(status, 201, "{ok}: {body}");
        assert_eq!(body["redirect_uris"], json!([ok]));
    }
}

#[tokio::test]
async fn every_dangerous_kind_of_redirect_uri_is_refused() {
    let app = roomy_app().await;
    for bad in [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "blob:https://evil.example/uuid",
        "https://client.example/cb#fragment",
        "https://client.example/cb#",
        "https://attacker@client.example/cb",
        "https://user:pass@client.example/cb",
        "http://client.example/cb",
        "http://10.0.0.1/cb",
        "http://localhost.evil.example/cb",
        "/cb",
        "client.example/cb",
        "",
        "https:///client.example/cb",
        "https:\\\\client.example/cb",
        "https://client.example/c b",
        "https://client.example/\u{202e}bc",
        "https://client.example/\ncb",
    ] {
        let (status, body) = register(&app, client(bad)).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"], "invalid_redirect_uri", "{bad:?}");
        assert!(body["error_description"].as_str().unwrap().len() > 5);
    }
    let eleven: Vec<String> = (0..11).map(|i| format!("https://client.example/{i}")).collect();
    let (status, body) = register(&app, json!({"redirect_uris": eleven})).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    let long = format!("https://client.example/{}", "a".repeat(2100));
    let (status, body) = register(&app, client(&long)).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    let (status, body) = register(&app, json!({"client_name": "no uris"})).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (400, Some("invalid_redirect_uri"))
    );
    assert_eq!(app.count("oauth_clients").await, 0, "nothing refused was stored");
}

#[tokio::test]
async fn confidential_clients_and_bad_metadata_are_refused() {
    let app = roomy_app().await;
    let uris = json!(["https://client.example/cb"]);
    for body in [
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "client_secret_basic"}),
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "client_secret_post"}),
        json!({"redirect_uris": uris, "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": uris, "grant_types": ["client_credentials"]}),
        json!({"redirect_uris": uris, "grant_types": ["implicit"]}),
        json!({"redirect_uris": uris, "response_types": ["token"]}),
        json!({"redirect_uris": uris, "client_name": "Claude\u{202e}edualC"}),
        json!({"redirect_uris": uris, "client_name": "line\nbreak"}),
        json!({"redirect_uris": uris, "client_name": "zero\u{200b}width"}),
        json!({"redirect_uris": uris, "client_name": "n".repeat(101)}),
        json!({"redirect_uris": uris, "client_name": 42}),
        json!({"redirect_uris": uris, "logo_uri": "javascript:alert(1)"}),
        json!({"redirect_uris": uris, "client_uri": "http://client.example"}),
        json!({"redirect_uris": "https://client.example/cb"}),
        json!({"redirect_uris": [7]}),
    ] {
        let (status, answer) = register(&app, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "invalid_client_metadata", "{body}");
    }
    // Not JSON, or not an object.
    for raw in ["not json", "[1,2]", "\"x\""] {
        let res = app
            .client
            .post(format!("{}/register", app.base))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{raw}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata");
    }
    assert_eq!(app.count("oauth_clients").await, 0);
}

#[tokio::test]
async fn an_oversize_registration_is_refused_unread() {
    let app = spawn_app().await;
    let mut body = client("https://client.example/cb");
    body["padding"] = json!("x".repeat(40 * 1024));
    let (status, answer) = register(&app, body).await;
    assert_eq!(status, 413);
    assert_eq!(answer["error"], "invalid_client_metadata");
    assert_eq!(app.count("oauth_clients").await, 0);
}

#[tokio::test]
async fn a_registration_survives_a_restart() {
    let app = spawn_app().await;
    let (status, body) = register(&app, client("http://127.0.0.1:9999/callback")).await;
    assert_eq!(status, 201);
    let id = body["client_id"].as_str().unwrap().to_owned();
    let app = app.restart(|_| {}).await;
    let known = app.service.oauth_client(&id).await.unwrap().expect("still registered");
    assert_eq!(known.client_name.as_deref(), Some("Test tool"));
    assert_eq!(known.redirect_uris, ["http://127.0.0.1:9999/callback"]);
    assert_eq!(known.kind, "registered");
}

#[tokio::test]
async fn registrations_are_limited_per_client_address() {
    let app = spawn_with(|c| c.rate_limit_oauth_registrations = 2).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(register(&app, client("https://client.example/cb")).await.0.as_u16());
    }
    assert_eq!(statuses, [201, 201, 429, 429]);
    let res = app
        .client
        .post(format!("{}/register", app.base))
        .json(&client("https://client.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_some());
    assert_eq!(app.count("oauth_clients").await, 2);
}

#[tokio::test]
async fn a_browser_client_may_register_across_origins() {
    let app = spawn_app().await;
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/register", app.base))
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let res = app
        .client
        .post(format!("{}/register", app.base))
        .header("origin", "http://localhost:6274")
        .json(&client("http://localhost:6274/oauth/callback"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
}

// ---------------------------------------------------------------- pre-registered clients

#[tokio::test]
async fn the_operator_adds_lists_and_removes_clients_from_the_cli() {
    let app = spawn_app().await;
    let out = app
        .cli(&[
            "--json",
            "oauth-client",
            "add",
            "--name",
            "Conformance",
            "--redirect-uri",
            "http://127.0.0.1:3000/callback",
            "--client-id",
            "conformance-test",
        ])
        .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["client_id"], "conformance-test");
    assert_eq!(added["kind"], "preregistered");
    assert_eq!(added["token_endpoint_auth_method"], "none");
    assert!(app.service.oauth_client("conformance-test").await.unwrap().is_some());

    let dup = app
        .cli(&[
            "oauth-client",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "https://a.example/cb",
            "--client-id",
            "conformance-test",
        ])
        .await;
    assert!(!dup.status.success());
    let bad = app
        .cli(&[
            "oauth-client",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "javascript:alert(1)",
        ])
        .await;
    assert!(!bad.status.success());
    let url_id = app
        .cli(&[
            "oauth-client",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "https://a.example/cb",
            "--client-id",
            "https://a.example/c",
        ])
        .await;
    assert!(!url_id.status.success());

    let out = app.cli(&["--json", "oauth-client", "list"]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        listed["data"][0]["redirect_uris"],
        json!(["http://127.0.0.1:3000/callback"])
    );

    let out = app.cli(&["--json", "oauth-client", "remove", "conformance-test"]).await;
    assert!(out.status.success());
    assert!(app.service.oauth_client("conformance-test").await.unwrap().is_none());
    let again = app.cli(&["oauth-client", "remove", "conformance-test"]).await;
    assert!(!again.status.success());
    let events: Vec<String> =
        sqlx::query_scalar("SELECT event FROM audit_log WHERE subject_type = 'oauth_client' ORDER BY seq")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(events, ["oauth.client_added", "oauth.client_removed"]);
}

// ---------------------------------------------------------------- client ID metadata documents

/// A loopback http server publishing metadata documents, counting every request it gets.
pub(crate) struct DocumentServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl DocumentServer {
    pub(crate) async fn start() -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let doc = move |path: &str, client_id: Option<String>| {
            json!({"client_id": client_id.unwrap_or_else(|| format!("{base}{path}")), "client_name": "Doc client",
                   "redirect_uris": ["http://127.0.0.1/callback", "http://localhost/callback"],
                   "grant_types": ["authorization_code", "refresh_token"], "token_endpoint_auth_method": "none"})
        };
        let counted = hits.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let doc = doc.clone();
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let path = uri.path().to_owned();
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
                match path.as_str() {
                    "/good" | "/cached" => {
                        headers.insert(header::CACHE_CONTROL, "max-age=600".parse().unwrap());
                        (AxStatus::OK, headers, doc(&path, None).to_string()).into_response()
                    }
                    "/mismatch" => (
                        AxStatus::OK,
                        headers,
                        doc(&path, Some("https://other.example/doc".into())).to_string(),
                    )
                        .into_response(),
                    "/big" => {
                        let mut d = doc(&path, None);
                        d["client_uri"] = json!(format!("https://x.example/{}", "a".repeat(6 * 1024)));
                        (AxStatus::OK, headers, d.to_string()).into_response()
                    }
                    "/redirect" => {
                        headers.insert(header::LOCATION, "/good".parse().unwrap());
                        (AxStatus::FOUND, headers, String::new()).into_response()
                    }
                    "/javascript" => {
                        let mut d = doc(&path, None);
                        d["redirect_uris"] = json!(["javascript:alert(1)"]);
                        (AxStatus::OK, headers, d.to_string()).into_response()
                    }
                    "/confidential" => {
                        let mut d = doc(&path, None);
                        d["token_endpoint_auth_method"] = json!("private_key_jwt");
                        (AxStatus::OK, headers, d.to_string()).into_response()
                    }
                    _ => (AxStatus::NOT_FOUND, headers, "{}".to_owned()).into_response(),
                }
            }
        });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        DocumentServer { addr, hits }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn loopback_metadata_app() -> TestApp {
    spawn_with(|c| c.oauth.allow_loopback_client_metadata = true).await
}

#[tokio::test]
async fn a_metadata_document_is_fetched_only_with_the_loopback_flag_and_then_cached() {
    let docs = DocumentServer::start().await;
    let strict = spawn_app().await;
    assert!(strict.service.oauth_client(&docs.url("/good")).await.unwrap().is_none());
    assert_eq!(docs.hits(), 0, "without the flag nothing is fetched over plain http");

    let app = loopback_metadata_app().await;
    let url = docs.url("/good");
    let client = app
        .service
        .oauth_client(&url)
        .await
        .unwrap()
        .expect("document accepted");
    assert_eq!(client.id, url);
    assert_eq!(client.kind, "metadata_document");
    assert_eq!(client.client_name.as_deref(), Some("Doc client"));
    assert_eq!(
        client.redirect_uris,
        ["http://127.0.0.1/callback", "http://localhost/callback"]
    );
    assert_eq!(docs.hits(), 1);
    // Cached (max-age=600): a second resolution fetches nothing.
    assert!(app.service.oauth_client(&url).await.unwrap().is_some());
    assert_eq!(docs.hits(), 1);
    let expires: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM oauth_clients WHERE id = $1")
        .bind(&url)
        .fetch_one(app.pool())
        .await
        .unwrap();
    let left = expires.unwrap() - memberpass::domain::time::now_ms();
    assert!((590_000..=600_000).contains(&left), "cached for {left} ms");
}

#[tokio::test]
async fn a_document_naming_another_client_id_is_refused() {
    let docs = DocumentServer::start().await;
    let app = loopback_metadata_app().await;
    assert!(
        app.service
            .oauth_client(&docs.url("/mismatch"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(docs.hits(), 1);
    assert_eq!(app.count("oauth_clients").await, 0);
}

#[tokio::test]
async fn a_document_over_5_kb_is_refused() {
    let docs = DocumentServer::start().await;
    let app = loopback_metadata_app().await;
    assert!(app.service.oauth_client(&docs.url("/big")).await.unwrap().is_none());
    assert_eq!(app.count("oauth_clients").await, 0);
}

#[tokio::test]
async fn a_redirect_is_never_followed() {
    let docs = DocumentServer::start().await;
    let app = loopback_metadata_app().await;
    assert!(
        app.service
            .oauth_client(&docs.url("/redirect"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(docs.hits(), 1, "the redirect's target was not requested");
}

#[tokio::test]
async fn a_document_with_bad_metadata_is_refused() {
    let docs = DocumentServer::start().await;
    let app = loopback_metadata_app().await;
    for path in ["/javascript", "/confidential", "/missing"] {
        assert!(
            app.service.oauth_client(&docs.url(path)).await.unwrap().is_none(),
            "{path}"
        );
    }
    assert_eq!(app.count("oauth_clients").await, 0);
}

#[tokio::test]
async fn private_and_loopback_addresses_are_refused_before_any_request() {
    let docs = DocumentServer::start().await;
    let app = loopback_metadata_app().await;
    let port = docs.addr.port();
    for url in [
        format!("https://127.0.0.1:{port}/good"),
        format!("https://localhost:{port}/good"),
        format!("https://[::1]:{port}/good"),
        format!("https://[::ffff:127.0.0.1]:{port}/good"),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://10.0.0.1/doc".to_owned(),
        "https://192.168.1.1/doc".to_owned(),
        "https://100.64.0.1/doc".to_owned(),
        "https://[fd00::1]/doc".to_owned(),
        "https://[fe80::1]/doc".to_owned(),
        "https://0.0.0.0/doc".to_owned(),
        "http://10.0.0.1/doc".to_owned(),
    ] {
        assert!(app.service.oauth_client(&url).await.unwrap().is_none(), "{url}");
    }
    assert_eq!(docs.hits(), 0);
}

// ---------------------------------------------------------------- refresh-token format

fn refresh_token(env: memberpass::domain::token::TokenEnv) -> String {
    memberpass::domain::refresh_token::RefreshSecret::generate(env)
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn scan_finds_refresh_tokens_and_never_prints_their_secret() {
    use memberpass::domain::token::TokenEnv;
    let app = spawn_app().await;
    let dir = std::env::temp_dir().join(format!("mp-oauth-scan-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let refresh = refresh_token(TokenEnv::Live);
    let glued = refresh_token(TokenEnv::Test);
    let file = dir.join("transcript.jsonl");
    std::fs::write(
        &file,
        format!("{{\"text\": \"refresh_token=\\n{refresh}\"}}\nx{glued}\n"),
    )
    .unwrap();
    let out = app.cli(&["--json", "scan", file.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains(&refresh[10..22]), "{stdout}");
    assert!(!stdout.contains(&refresh[23..]), "the secret was printed: {stdout}");
    assert!(!stdout.contains(&glued[10..22]), "a glued token was reported: {stdout}");

    let human = app.cli(&["scan", file.to_str().unwrap()]).await;
    let text = String::from_utf8_lossy(&human.stdout).into_owned();
    assert!(text.contains(&format!("mprt_live_{}", &refresh[10..22])), "{text}");

    let redact = app.cli(&["scan", "--redact", file.to_str().unwrap()]).await;
    assert_eq!(redact.status.code(), Some(1));
    let content = std::fs::read_to_string(&file).unwrap();
    assert!(!content.contains(&refresh[23..]));
    let redacted = format!("mprt_live_{}_[REDACTED]", &refresh[10..22]);
    let at = content.find(&redacted).expect("redacted in place");
    assert_eq!(
        content[at..].split('"').next().unwrap().len(),
        61,
        "padded to the token's length"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_published_rules_match_refresh_tokens_too() {
    use memberpass::domain::token::TokenEnv;
    let doc = |name: &str| {
        std::fs::read_to_string(format!("{}/docs/secret-scanning/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let between = |text: &str, open: &str, close: &str| {
        let from = text.find(open).unwrap() + open.len();
        let to = text[from..].find(close).unwrap() + from;
        text[from..to].to_owned()
    };
    let github: Value = serde_json::from_str(&doc("github-custom-pattern.json")).unwrap();
    let rules = [
        between(&doc("gitleaks.toml"), "regex = '''", "'''"),
        between(&doc("trufflehog.yaml"), "token: '", "'\n"),
        format!(
            "(?:{})({})(?:{})",
            github["before_secret"].as_str().unwrap(),
            github["secret_format"].as_str().unwrap(),
            github["after_secret"].as_str().unwrap()
        ),
    ];
    for rule in rules {
        let re = regex::Regex::new(&rule).unwrap();
        for env in [TokenEnv::Live, TokenEnv::Test] {
            let t = refresh_token(env);
            for text in [
                t.clone(),
                format!("x = {t}\n"),
                format!("\"\\n{t}\""),
                format!("a%3D{t}&b"),
            ] {
                let found: Vec<String> = re.captures_iter(&text).map(|c| c[1].to_owned()).collect();
                assert_eq!(found, std::slice::from_ref(&t), "{rule} on {text:?}");
            }
            for fake in [format!("x{t}"), format!("{t}x"), t.replacen("mprt_", "mpqt_", 1)] {
                assert!(re.captures_iter(&fake).next().is_none(), "{rule} flagged {fake:?}");
            }
        }
    }
    let keywords = doc("gitleaks.toml");
    assert!(keywords.contains("\"mprt_live_\"") && keywords.contains("\"mprt_test_\""));
}

#[tokio::test]
async fn a_refresh_token_may_be_handed_in_like_an_access_token() {
    use memberpass::domain::token::TokenEnv;
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/v1/tokens/revoke", app.base))
        .json(&json!({"token": refresh_token(TokenEnv::Test), "source": "a transcript"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mut bad = refresh_token(TokenEnv::Test);
    let last = bad.pop().unwrap();
    bad.push(if last == 'a' { 'b' } else { 'a' });
    let res = app
        .client
        .post(format!("{}/v1/tokens/revoke", app.base))
        .json(&json!({"token": bad}))
        .send()
        .await
        .unwrap();
    assert_ne!(res.status(), 202, "a look-alike with a wrong checksum is refused");
}
