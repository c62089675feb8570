//! The OAuth consent flow in a real browser (headless Chromium, as `browser.rs`): sign-in on the
//! way, the consent page's Allow posting from a `no-referrer` page (Chromium sends `Origin:
//! null`) and its answer redirecting to the client's loopback callback (allowed by the page's
//! `form-action`), then Connected apps disconnecting the grant. Screenshots of both pages at
//! 1280 and 390 px.

use std::sync::{Arc, Mutex};

use memberpass::domain::oauth_flow::s256;
use memberpass::domain::role::Role;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::Browser;
use crate::dashboard::{PASSWORD, person};
use crate::helpers::spawn_app;
use crate::mcp::rpc;

const ALICE: &str = "alice-browser-oauth@memberpass.test";
const VERIFIER: &str = "a-browser-verifier-of-at-least-43-characters-0123456789";

/// A client's loopback callback: answers every request with a small page and records its
/// request line's target.
async fn callback_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(target) = head.split(' ').nth(1) {
                record.lock().unwrap().push(target.to_owned());
            }
            let body = "<!doctype html><title>Callback</title><h1>Connected</h1>";
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (port, seen)
}

#[tokio::test]
async fn a_person_connects_an_app_through_the_consent_page_and_disconnects_it_in_a_real_browser() {
    let app = spawn_app().await;
    let Some(b) = Browser::start(&app.base).await else {
        return;
    };
    let w = app.world().await;
    person(&app, &w.team_a, ALICE, Role::Admin).await;
    let (port, seen) = callback_server().await;
    let redirect = format!("http://127.0.0.1:{port}/cb");
    let registered: Value = app
        .client
        .post(format!("{}/register", app.base))
        .json(&json!({"client_name": "Browser tool", "redirect_uris": [redirect]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", &redirect),
            ("code_challenge", &s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("state", "browser-state"),
            ("resource", &format!("{}/mcp", app.base)),
        ])
        .finish();

    // Not signed in: the sign-in page, then straight back to the consent page.
    b.goto(&format!("/authorize?{query}")).await;
    b.wait_for_path("/login?next=").await;
    b.fill("email", ALICE).await;
    b.fill("password", PASSWORD).await;
    b.follow("form[action='/login'] button[type=submit]").await;
    b.wait_for_path("/authorize?").await;
    assert!(b.h1().await.contains("Browser tool"));
    b.screenshot("oauth-consent").await;

    // Allow with the preset: Chromium's post is accepted and its redirect reaches the client.
    b.follow("#allow").await;
    b.wait_for_path("/cb?code=").await;
    let target = seen
        .lock()
        .unwrap()
        .iter()
        .find(|t| t.starts_with("/cb?"))
        .cloned()
        .expect("the callback was called");
    let answer: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(target.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(answer["state"], "browser-state");
    assert_eq!(answer["iss"], app.base);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "authorization_code"),
            ("code", answer["code"].as_str()),
            ("client_id", &client_id),
            ("redirect_uri", &redirect),
            ("code_verifier", VERIFIER),
        ])
        .finish();
    let issued: Value = app
        .client
        .post(format!("{}/token", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = issued["access_token"].as_str().expect("an access token").to_owned();
    assert!(
        !issued["scope"].as_str().unwrap().contains(":create"),
        "no write by default"
    );
    assert_eq!(rpc(&app, Some(&access), "tools/list", json!({})).await.status, 200);

    // Connected apps lists it; disconnecting ends the access token at its next call.
    b.goto("/settings/apps").await;
    assert!(b.text().await.contains("Browser tool"));
    b.screenshot("oauth-connected-apps").await;
    let grant: String = sqlx::query_scalar("SELECT id FROM oauth_grants")
        .fetch_one(app.pool())
        .await
        .unwrap();
    b.follow(&format!("#revoke-{grant}")).await;
    b.wait_for_path("/settings/apps").await;
    assert!(b.text().await.contains("No connected apps"));
    assert_eq!(rpc(&app, Some(&access), "tools/list", json!({})).await.status, 401);
}
