//! Per-token network allowlists (issue 21, item 5): a token with a CIDR list is refused from
//! anywhere else — after authentication, `403 TOKEN_IP_NOT_ALLOWED`, audited, never counted as an
//! authentication failure — on REST and MCP, for IPv4 and IPv6, with the client address the
//! server trusts (`--behind-tls-proxy`: the last `X-Forwarded-For` hop).

use memberpass::domain::ability::Ability;
use serde_json::{Value, json};

use crate::helpers::{OWNER_A, TestApp, spawn_with, token_id};
use crate::mcp::rpc;

/// Mints a token of team A's owner by the CLI, with `--allow-ip` for each block.
async fn mint(app: &TestApp, team: &str, blocks: &[&str]) -> String {
    let mut args = vec![
        "--json", "token", "mint", "--team", team, "--user", OWNER_A, "--name", "fenced",
    ];
    for a in [Ability::McpFull, Ability::ProjectViewAny] {
        args.extend(["--ability", a.as_str()]);
    }
    for b in blocks {
        args.extend(["--allow-ip", b]);
    }
    let out = app.cli(&args).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let minted: Value = serde_json::from_slice(&out.stdout).unwrap();
    minted["token"].as_str().unwrap().to_owned()
}

async fn allow(app: &TestApp, token: &str, blocks: &[&str]) {
    let id = token_id(token);
    let mut args = vec!["token", "allow-ip", id.as_str()];
    args.extend(blocks);
    let out = app.cli(&args).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

async fn get_from(app: &TestApp, token: &str, forwarded: Option<&str>) -> (u16, Value) {
    let mut req = app.client.get(format!("{}/v1/projects", app.base)).bearer_auth(token);
    if let Some(ip) = forwarded {
        req = req.header("x-forwarded-for", ip);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn refusals(app: &TestApp, token: &str) -> Vec<Value> {
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT properties FROM audit_log WHERE event = 'auth.ip_not_allowed' AND token_id = $1 ORDER BY seq",
    )
    .bind(token_id(token))
    .fetch_all(app.pool())
    .await
    .unwrap();
    rows.iter().map(|p| serde_json::from_str(p).unwrap()).collect()
}

#[tokio::test]
async fn a_fenced_token_works_only_inside_its_networks_and_is_not_an_authentication_failure() {
    let app = spawn_with(|c| c.rate_limit_auth_failures = 2).await;
    let w = app.world().await;
    let token = mint(&app, &w.team_a, &["10.0.0.0/8"]).await;
    let shown = app.cli(&["--json", "token", "show", &token_id(&token)]).await;
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["allowed_ips"], json!(["10.0.0.0/8"]));

    // From 127.0.0.1: five refusals, each 403 and audited — none counts against the address's
    // two authentication failures.
    for _ in 0..5 {
        let (status, body) = get_from(&app, &token, None).await;
        assert_eq!(status, 403, "{body:#}");
        assert_eq!(body["error"]["code"], "TOKEN_IP_NOT_ALLOWED");
    }
    let seen = refusals(&app, &token).await;
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0]["ip"], "127.0.0.1");
    assert_eq!(seen[0]["allowed_ips"], json!(["10.0.0.0/8"]));
    let outcome: (String, Option<String>) = sqlx::query_as(
        "SELECT outcome, error_code FROM audit_log WHERE event = 'auth.ip_not_allowed' ORDER BY seq LIMIT 1",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(outcome, ("denied".into(), Some("TOKEN_IP_NOT_ALLOWED".into())));
    // The last character changed (to one it is not), so the secret is wrong whatever it was.
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &token[..token.len() - 1]);
    let (status, _) = get_from(&app, &wrong, None).await;
    assert_eq!(status, 401, "the address has no failure on record yet");
    let last_used: Option<i64> = sqlx::query_scalar("SELECT last_used_at FROM tokens WHERE id = $1")
        .bind(token_id(&token))
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(last_used, None, "a refused use is no use");

    // MCP too, before any JSON-RPC.
    let mcp = rpc(&app, Some(&token), "tools/list", json!({})).await;
    assert_eq!(mcp.status, 403);
    assert_eq!(
        mcp.body["error"]["data"]["code"], "TOKEN_IP_NOT_ALLOWED",
        "{:#}",
        mcp.body
    );

    // The owner (here the operator) widens it to loopback: it works; cleared: anywhere.
    allow(&app, &token, &["127.0.0.0/8", "::1"]).await;
    assert_eq!(get_from(&app, &token, None).await.0, 200);
    allow(&app, &token, &[]).await;
    assert_eq!(get_from(&app, &token, None).await.0, 200);
    let changes: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE event = 'token.allowed_ips_changed' AND subject_id = $1",
    )
    .bind(token_id(&token))
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(changes, 2);
    // A bad block changes nothing.
    let out = app.cli(&["token", "allow-ip", &token_id(&token), "10.0.0.0/99"]).await;
    assert!(!out.status.success());
    assert_eq!(get_from(&app, &token, None).await.0, 200);
}

#[tokio::test]
async fn behind_a_proxy_the_last_forwarded_hop_is_checked_on_v4_and_v6() {
    let app = spawn_with(|c| c.behind_tls_proxy = true).await;
    let w = app.world().await;
    let token = mint(&app, &w.team_a, &["2001:db8::/32", "192.0.2.0/24"]).await;
    assert_eq!(get_from(&app, &token, Some("2001:db8:5::1")).await.0, 200);
    assert_eq!(get_from(&app, &token, Some("192.0.2.44")).await.0, 200);
    assert_eq!(
        get_from(&app, &token, Some("::ffff:192.0.2.9")).await.0,
        200,
        "IPv4 as IPv6"
    );
    assert_eq!(get_from(&app, &token, Some("2001:db9::1")).await.0, 403);
    assert_eq!(get_from(&app, &token, Some("198.51.100.1")).await.0, 403);
    // A client's own forged first hop is not the one the proxy appended.
    assert_eq!(get_from(&app, &token, Some("192.0.2.1, 198.51.100.1")).await.0, 403);
    assert_eq!(get_from(&app, &token, Some("198.51.100.1, 192.0.2.1")).await.0, 200);
    // No usable address at all: the peer's (loopback), outside the list.
    assert_eq!(get_from(&app, &token, Some("not-an-ip")).await.0, 403);
    let seen = refusals(&app, &token).await;
    let ips: Vec<&str> = seen.iter().map(|p| p["ip"].as_str().unwrap()).collect();
    assert_eq!(ips, ["2001:db9::1", "198.51.100.1", "198.51.100.1", "127.0.0.1"]);
}

#[tokio::test]
async fn the_dashboard_mint_form_takes_a_network_list_and_refuses_a_bad_one() {
    use memberpass::domain::role::Role;

    use crate::dashboard::{cookie, csrf_of, page, person, post_form};
    const OWNER: &str = "fence-owner@memberpass.test";
    let app = spawn_with(|_| {}).await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    let session = cookie(&app, OWNER).await;
    let csrf = csrf_of(&page(&app, "/settings/tokens", &session).await.text().await.unwrap());
    let before = app.count("tokens").await;
    let mint = |networks: &'static str| {
        let (app, session, csrf) = (&app, session.clone(), csrf.clone());
        async move {
            let fields = [
                ("csrf", csrf.as_str()),
                ("name", "fenced"),
                ("ability", "project:view-any"),
                ("allowed_ips", networks),
            ];
            post_form(app, "/settings/tokens", &session, &fields).await
        }
    };
    let res = mint("not-a-network, 10.0.0.0/8").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("not-a-network"));
    assert_eq!(app.count("tokens").await, before, "nothing minted");

    let res = mint("10.1.2.3/8,  2001:db8::/32\n192.0.2.7").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let at = html.find("mpt_").expect("the token, shown once");
    let token: String = html[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let shown = app.cli(&["--json", "token", "show", &token_id(&token)]).await;
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(
        shown["allowed_ips"],
        json!(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"])
    );
    // From the test's own loopback address: outside the list.
    let (status, body) = get_from(&app, &token, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("TOKEN_IP_NOT_ALLOWED"))
    );
}

#[tokio::test]
async fn the_owner_changes_a_tokens_networks_on_its_page_and_the_replacement_keeps_them() {
    use memberpass::domain::role::Role;

    use crate::dashboard::{cookie, csrf_of, page, person, post_form};
    const OWNER: &str = "fence-page@memberpass.test";
    const PEER: &str = "fence-peer@memberpass.test";
    let app = spawn_with(|_| {}).await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    person(&app, &w.team_a, PEER, Role::Admin).await;
    let token = app.mint(OWNER, &w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let id = token_id(&token);
    let path = format!("/settings/tokens/{id}");
    let session = cookie(&app, OWNER).await;
    let html = page(&app, &path, &session).await.text().await.unwrap();
    assert!(html.contains("Usable from anywhere."), "{html}");
    let csrf = csrf_of(&html);
    let save = |cookie: String, csrf: String, value: &'static str| {
        let (app, target) = (&app, format!("{path}/allowed-ips"));
        async move { post_form(app, &target, &cookie, &[("csrf", &csrf), ("allowed_ips", value)]).await }
    };
    let shown = |app: &TestApp| {
        let (id, url) = (id.clone(), app.database_url.clone());
        async move {
            let out = tokio::task::spawn_blocking(move || {
                std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"))
                    .args(["--database-url", &url, "--json", "token", "show", &id])
                    .env("MEMBERPASS_LOG", "warn")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            serde_json::from_slice::<Value>(&out.stdout).unwrap()["allowed_ips"].clone()
        }
    };

    // A bad block: 422 naming it, nothing changed.
    let res = save(session.clone(), csrf.clone(), "10.0.0.0/8, 300.1.1.1").await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("300.1.1.1"));
    assert_eq!(shown(&app).await, Value::Null);

    let res = save(session.clone(), csrf.clone(), "10.0.0.0/8, 2001:db8::/32").await;
    assert_eq!(res.status(), 303);
    assert_eq!(shown(&app).await, json!(["10.0.0.0/8", "2001:db8::/32"]));
    let html = page(&app, &path, &session).await.text().await.unwrap();
    assert!(
        html.contains("Usable only from <code>10.0.0.0/8</code>, <code>2001:db8::/32</code>"),
        "{html}"
    );
    let (status, _) = get_from(&app, &token, None).await;
    assert_eq!(status, 403, "fenced from the test's loopback address");
    let by: (String, String) = sqlx::query_as(
        "SELECT actor_kind, properties FROM audit_log WHERE event = 'token.allowed_ips_changed' AND subject_id = $1",
    )
    .bind(&id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(by.0, "human");
    let props: Value = serde_json::from_str(&by.1).unwrap();
    assert_eq!(props["allowed_ips"]["from"], Value::Null);

    // Another person of the team (an admin too) cannot change it: the token does not exist for them.
    let peer = cookie(&app, PEER).await;
    let peer_csrf = csrf_of(&page(&app, "/settings/tokens", &peer).await.text().await.unwrap());
    let res = save(peer, peer_csrf, "").await;
    assert_eq!(res.status(), 404);
    assert_eq!(shown(&app).await, json!(["10.0.0.0/8", "2001:db8::/32"]));

    // The playbook's replacement is fenced like the old token.
    let res = post_form(&app, &format!("{path}/replace"), &session, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), 200);
    let replaced_by: String = sqlx::query_scalar("SELECT replaced_by FROM tokens WHERE id = $1")
        .bind(&id)
        .fetch_one(app.pool())
        .await
        .unwrap();
    let out = app.cli(&["--json", "token", "show", &replaced_by]).await;
    let new: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(new["allowed_ips"], json!(["10.0.0.0/8", "2001:db8::/32"]));

    // Empty clears it.
    let res = save(session.clone(), csrf.clone(), "").await;
    assert_eq!(res.status(), 303);
    assert_eq!(shown(&app).await, Value::Null);
    assert_eq!(get_from(&app, &token, None).await.0, 200);
}
