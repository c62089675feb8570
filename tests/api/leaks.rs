//! Leak response over real HTTP: GitHub's secret-scanning partner alerts, signed in the test
//! with throwaway P-256 keys published by a local key document, and revoke by possession.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use memberpass::domain::ability::Ability;
use memberpass::domain::signature::P256Key;
use memberpass::domain::token::{TokenEnv, TokenSecret};
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::Digest;

use crate::helpers::{OWNER_A, TestApp, World, captured_logs, spawn_with, token_id};

struct Signer {
    pair: EcdsaKeyPair,
    id: String,
}

impl Signer {
    fn new(id: &str) -> Signer {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        Signer {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap(),
            id: id.to_owned(),
        }
    }

    fn pem(&self) -> String {
        let key = P256Key::from_point(self.pair.public_key().as_ref()).unwrap();
        let b64 = STANDARD.encode(key.spki_der());
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn sign(&self, body: &[u8]) -> String {
        STANDARD.encode(self.pair.sign(&SystemRandom::new(), body).unwrap().as_ref())
    }
}

/// A local stand-in for GitHub's key document: the current key and an older, still published
/// one, pretty-printed with the fields in another order than GitHub's; it counts its fetches.
struct KeyServer {
    url: String,
    fetches: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for KeyServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn key_server(current: &Signer, older: &Signer) -> KeyServer {
    let doc = format!(
        "{{\n  \"public_keys\": [\n    {{\n      \"is_current\": false,\n      \"key\": {},\n      \"key_identifier\": \"{}\"\n    }},\n    {{\n      \"key\": {},\n      \"is_current\": true,\n      \"key_identifier\": \"{}\"\n    }}\n  ]\n}}\n",
        serde_json::to_string(&older.pem()).unwrap(),
        older.id,
        serde_json::to_string(&current.pem()).unwrap(),
        current.id
    );
    let fetches = Arc::new(AtomicUsize::new(0));
    let counter = fetches.clone();
    let router = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let doc = doc.clone();
            async move { ([("content-type", "application/json")], doc) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/keys", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    KeyServer { url, fetches, server }
}

struct Setup {
    app: TestApp,
    w: World,
    keys: KeyServer,
    current: Signer,
    older: Signer,
}

async fn setup() -> Setup {
    let current = Signer::new("90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a");
    let older = Signer::new("bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c");
    let keys = key_server(&current, &older).await;
    let url = keys.url.clone();
    let app = spawn_with(|c| {
        c.secret_scanning_keys_url = url;
        c.rate_limit_leak_reports = 1000;
    })
    .await;
    let w = app.world().await;
    Setup {
        app,
        w,
        keys,
        current,
        older,
    }
}

async fn alert(app: &TestApp, headers: &[(&str, &str)], body: &[u8]) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(format!("{}/v1/secret-scanning/github", app.base))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn signed(app: &TestApp, signer: &Signer, body: &[u8]) -> (StatusCode, Value) {
    let sig = signer.sign(body);
    alert(
        app,
        &[
            ("github-public-key-identifier", &signer.id),
            ("github-public-key-signature", &sig),
        ],
        body,
    )
    .await
}

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

async fn count(app: &TestApp, sql: &str, bind: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(bind)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

async fn status_of_me(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/me", token).await.status.as_u16()
}

/// A checksum-valid token this server never issued.
fn stranger() -> String {
    TokenSecret::generate(TokenEnv::Test).expose_secret().to_owned()
}

#[tokio::test]
async fn a_signed_alert_revokes_our_live_token_within_a_second_and_labels_every_item() {
    let s = setup().await;
    let leaked = s.app.mint(OWNER_A, &s.w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let bystander = s.app.mint(OWNER_A, &s.w.team_a, &[Ability::ProjectViewAny], &[]).await;
    assert_eq!(status_of_me(&s.app, &leaked).await, 200);
    let last = if leaked.ends_with('a') { 'b' } else { 'a' };
    let bad_checksum = format!("{}{last}", &leaked[..leaked.len() - 1]);
    let unknown = stranger();
    let body = serde_json::to_vec(&json!([
        {"token": leaked, "type": "memberpass_api_token", "url": "https://github.com/octo/repo/blob/abc/.env", "source": "content"},
        {"token": bad_checksum, "type": "memberpass_api_token", "url": "https://github.com/octo/repo/blob/abc/x", "source": "content"},
        {"token": unknown, "type": "memberpass_api_token", "url": "https://gist.github.com/x", "source": "gist"},
    ]))
    .unwrap();
    let started = Instant::now();
    let (status, answer) = signed(&s.app, &s.current, &body).await;
    assert_eq!(status, 200, "{answer:#}");
    let refused_after = status_of_me(&s.app, &leaked).await;
    let elapsed = started.elapsed();
    assert_eq!(refused_after, 401, "the leaked token is dead at its next use");
    assert!(elapsed < Duration::from_secs(1), "alert to 401 took {elapsed:?}");
    assert_eq!(
        answer,
        json!([
            {"token_hash": sha256_hex(&leaked), "token_type": "memberpass_api_token", "label": "true_positive"},
            {"token_hash": sha256_hex(&bad_checksum), "token_type": "memberpass_api_token", "label": "false_positive"},
            {"token_hash": sha256_hex(&unknown), "token_type": "memberpass_api_token", "label": "false_positive"},
        ])
    );
    assert_eq!(status_of_me(&s.app, &bystander).await, 200, "only the reported token");

    // The trail: revoked as system with the alert's url and source, and a `token.leaked` entry
    // the team can filter; the owner is told.
    let id = token_id(&leaked);
    let entries: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT event, actor_kind, team_id, properties FROM audit_log WHERE subject_id = $1 \
         AND event IN ('token.revoked', 'token.leaked') ORDER BY seq",
    )
    .bind(&id)
    .fetch_all(s.app.pool())
    .await
    .unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        (entries[0].0.as_str(), entries[0].1.as_str()),
        ("token.revoked", "system")
    );
    assert_eq!(
        (entries[1].0.as_str(), entries[1].1.as_str()),
        ("token.leaked", "system")
    );
    assert_eq!(entries[1].2.as_deref(), Some(s.w.team_a.as_str()));
    let revoked: Value = serde_json::from_str(&entries[0].3).unwrap();
    assert_eq!(revoked["reason"], "leaked");
    assert_eq!(revoked["url"], "https://github.com/octo/repo/blob/abc/.env");
    assert_eq!(revoked["source"], "content");
    let owner_token = s.app.mint(OWNER_A, &s.w.team_a, &[Ability::ActivityRead], &[]).await;
    let filtered = s.app.get("/v1/activity?event=token.leaked", &owner_token).await;
    assert_eq!(
        filtered.body["data"].as_array().unwrap().len(),
        1,
        "{:#}",
        filtered.body
    );
    assert_eq!(
        count(&s.app, "SELECT COUNT(*) FROM notifications WHERE token_id = $1", &id).await,
        1
    );
    let reason: String = sqlx::query_scalar("SELECT revoked_reason FROM tokens WHERE id = $1")
        .bind(&id)
        .fetch_one(s.app.pool())
        .await
        .unwrap();
    assert_eq!(reason, "leaked");

    // The same alert again: the same answer, nothing revoked or written twice.
    let (again_status, again) = signed(&s.app, &s.current, &body).await;
    assert_eq!((again_status, &again), (StatusCode::OK, &answer));
    assert_eq!(
        count(
            &s.app,
            "SELECT COUNT(*) FROM audit_log WHERE subject_id = $1 AND event IN ('token.revoked', 'token.leaked')",
            &id
        )
        .await,
        2
    );
    assert_eq!(
        count(&s.app, "SELECT COUNT(*) FROM notifications WHERE token_id = $1", &id).await,
        1
    );

    // No secret anywhere it could stay: audit entries, notifications, the log.
    let secrets = [leaked[22..].to_owned(), unknown[22..].to_owned()];
    let stored: Vec<String> =
        sqlx::query_scalar("SELECT properties FROM audit_log UNION ALL SELECT properties FROM notifications")
            .fetch_all(s.app.pool())
            .await
            .unwrap();
    let logs = captured_logs();
    for secret in &secrets {
        assert!(!stored.iter().any(|p| p.contains(secret.as_str())));
        assert!(!logs.contains(secret.as_str()));
    }
}

#[tokio::test]
async fn unsigned_forged_tampered_and_malformed_alerts_change_nothing() {
    let s = setup().await;
    let token = s.app.mint(OWNER_A, &s.w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let body =
        serde_json::to_vec(&json!([{"token": token, "type": "memberpass_api_token", "url": "u", "source": "content"}]))
            .unwrap();
    let sig = s.current.sign(&body);
    let key = s.current.id.as_str();
    let intruder = Signer::new(key);
    let wrong_key_sig = intruder.sign(&body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a [u8]);
    let cases: Vec<Case> = vec![
        ("no headers", vec![], &body),
        ("no signature", vec![("github-public-key-identifier", key)], &body),
        ("no key id", vec![("github-public-key-signature", &sig)], &body),
        (
            "garbage signature",
            vec![
                ("github-public-key-identifier", key),
                ("github-public-key-signature", "%%%not base64%%%"),
            ],
            &body,
        ),
        (
            "a signature of other bytes",
            vec![
                ("github-public-key-identifier", key),
                ("github-public-key-signature", &sig),
            ],
            &tampered,
        ),
        (
            "signed by a key GitHub does not publish",
            vec![
                ("github-public-key-identifier", key),
                ("github-public-key-signature", &wrong_key_sig),
            ],
            &body,
        ),
        (
            "an unknown key id",
            vec![
                ("github-public-key-identifier", "f00d"),
                ("github-public-key-signature", &sig),
            ],
            &body,
        ),
        (
            "two key ids",
            vec![
                ("github-public-key-identifier", key),
                ("github-public-key-identifier", key),
                ("github-public-key-signature", &sig),
            ],
            &body,
        ),
    ];
    for (what, headers, body) in cases {
        let (status, answer) = alert(&s.app, &headers, body).await;
        assert_eq!(status, 401, "{what}: {answer:#}");
        assert_eq!(answer["error"]["code"], "AUTHENTICATION_REQUIRED", "{what}");
        assert_eq!(status_of_me(&s.app, &token).await, 200, "{what}: the token lives");
    }
    // Signed, but not an alert: 422, never 5xx.
    for garbage in [
        &b"{\"token\": 1}"[..],
        b"[{\"type\": \"x\"}]",
        b"not json",
        b"[1, 2]",
        b"",
    ] {
        let (status, answer) = signed(&s.app, &s.current, garbage).await;
        assert_eq!(status, 422, "{}: {answer:#}", String::from_utf8_lossy(garbage));
        assert_eq!(answer["error"]["code"], "VALIDATION_FAILED");
    }
    assert_eq!(status_of_me(&s.app, &token).await, 200);
    assert_eq!(
        count(
            &s.app,
            "SELECT COUNT(*) FROM audit_log WHERE event = $1",
            "token.leaked"
        )
        .await,
        0
    );
    // The unknown key id made one refetch of the document, not one per alert; and none again
    // for a minute (GitHub lets an unauthenticated client fetch 60 times an hour): not after
    // the 10 s it once waited either.
    let fetched = s.keys.fetches.load(Ordering::SeqCst);
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let (status, _) = alert(
        &s.app,
        &[
            ("github-public-key-identifier", "beef"),
            ("github-public-key-signature", &sig),
        ],
        &body,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        s.keys.fetches.load(Ordering::SeqCst),
        fetched,
        "no refetch within a minute"
    );
    assert!(fetched <= 2, "fetched {fetched} times");
}

#[tokio::test]
async fn an_alert_signed_with_the_older_published_key_is_accepted() {
    let s = setup().await;
    let token = s.app.mint(OWNER_A, &s.w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let body =
        serde_json::to_vec(&json!([{"token": token, "type": "memberpass_api_token", "url": "u", "source": "commit"}]))
            .unwrap();
    let (status, answer) = signed(&s.app, &s.older, &body).await;
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(answer[0]["label"], "true_positive");
    assert_eq!(status_of_me(&s.app, &token).await, 401);
}

async fn hand_in(app: &TestApp, body: Value) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/v1/tokens/revoke", app.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn whoever_holds_a_token_can_kill_it_and_learns_nothing_else() {
    let s = setup().await;
    let live = s.app.mint(OWNER_A, &s.w.team_a, &[Ability::ProjectViewAny], &[]).await;
    let (status, first) = hand_in(&s.app, json!({"token": live, "source": "found in a shared transcript"})).await;
    assert_eq!(status, 202, "{first:#}");
    assert_eq!(status_of_me(&s.app, &live).await, 401);
    // Unknown, already revoked, and a known ID with the wrong secret: the very same answer.
    let wrong_secret = memberpass::domain::token::TokenSecret::with_id(
        TokenEnv::Test,
        memberpass::domain::token::TokenId::parse(&token_id(&live)).unwrap(),
    )
    .expose_secret()
    .to_owned();
    for other in [stranger(), live.clone(), wrong_secret] {
        let (status, answer) = hand_in(&s.app, json!({"token": other})).await;
        assert_eq!((status, &answer), (StatusCode::ACCEPTED, &first));
    }
    let id = token_id(&live);
    let entries: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor_kind, properties FROM audit_log WHERE subject_id = $1 AND event = 'token.revoked'",
    )
    .bind(&id)
    .fetch_all(s.app.pool())
    .await
    .unwrap();
    assert_eq!(entries.len(), 1, "revoked once, audited once");
    assert_eq!(entries[0].0, "system");
    let props: Value = serde_json::from_str(&entries[0].1).unwrap();
    assert_eq!(props["reason"], "revoked_by_possession");
    assert_eq!(props["source"], "found in a shared transcript");
    // Input it can say something about without revealing anything: 422 naming the field.
    for (body, field) in [
        (json!({"token": "mpt_test_notatoken"}), "token"),
        (json!({"token": live, "extra": 1}), "body"),
        (json!({"tokens": [live]}), "body"),
        (json!({"token": 5}), "body"),
        (json!({"token": live, "source": "x".repeat(501)}), "source"),
    ] {
        let (status, answer) = hand_in(&s.app, body).await;
        assert_eq!(status, 422, "{answer:#}");
        assert!(answer["error"]["fields"][field].is_string(), "{answer:#}");
        assert!(
            !answer.to_string().contains(&live[22..]),
            "the answer never echoes the token"
        );
    }
    assert!(!captured_logs().contains(&live[22..]));
}

/// A stranger could hand in strings and tell from the time of the answer which was a live token
/// (it commits a revocation; the others commit nothing). Every hand-in is answered at the same
/// moment after it began.
#[tokio::test]
async fn a_live_and_an_unknown_token_handed_in_are_answered_in_the_same_time() {
    let s = setup().await;
    let mut live = Vec::new();
    for _ in 0..15 {
        live.push(s.app.mint(OWNER_A, &s.w.team_a, &[Ability::ProjectViewAny], &[]).await);
    }
    let timed = |token: String| {
        let app = &s.app;
        async move {
            let started = std::time::Instant::now();
            let (status, _) = hand_in(app, json!({ "token": token })).await;
            assert_eq!(status, 202);
            started.elapsed().as_secs_f64() * 1000.0
        }
    };
    let (mut live_ms, mut unknown_ms) = (Vec::new(), Vec::new());
    for (i, token) in live.into_iter().enumerate() {
        // Alternate which goes first, so a load that comes and goes slows both alike.
        if i % 2 == 0 {
            live_ms.push(timed(token.clone()).await);
            unknown_ms.push(timed(stranger()).await);
        } else {
            unknown_ms.push(timed(stranger()).await);
            live_ms.push(timed(token.clone()).await);
        }
        assert_eq!(status_of_me(&s.app, &token).await, 401, "the live one is revoked");
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    // No answer comes before the floor, whatever the token was: the revocation's work (a few
    // milliseconds) is hidden under it. (Before the floor, a live token's answer took 4.8 ms
    // and an unknown one's 1.1 ms, medians in a debug build.)
    let floor = memberpass::service::accounts::leaks::HAND_IN_ANSWER_AFTER.as_secs_f64() * 1000.0;
    let earliest = live_ms.iter().chain(&unknown_ms).copied().fold(f64::INFINITY, f64::min);
    assert!(
        earliest >= floor,
        "an answer came after {earliest:.2} ms, before the {floor} ms floor"
    );
    // And the work never outlasts the floor, which would show again: the answers cluster at it.
    // (The bound is the scheduling noise of a loaded machine, not the work's cost.)
    let (live, unknown) = (median(&mut live_ms), median(&mut unknown_ms));
    eprintln!("hand-in medians: live {live:.2} ms, unknown {unknown:.2} ms");
    assert!(
        (live - unknown).abs() < 20.0 && live < floor + 20.0,
        "a live token answered in {live:.2} ms, an unknown one in {unknown:.2} ms (medians)"
    );
}

#[tokio::test]
async fn revoke_by_possession_is_limited_per_client_address() {
    let app = spawn_with(|c| c.rate_limit_leak_reports = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(hand_in(&app, json!({"token": stranger()})).await.0.as_u16());
    }
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    let res = app
        .client
        .post(format!("{}/v1/tokens/revoke", app.base))
        .json(&json!({"token": stranger()}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn the_owner_is_told_on_the_dashboard_until_they_dismiss_it() {
    use crate::dashboard::{cookie, csrf_of, page, person, post_form};
    use memberpass::domain::role::Role;
    let s = setup().await;
    person(&s.app, &s.w.team_a, "dash@memberpass.test", Role::Manager).await;
    person(&s.app, &s.w.team_a, "peer@memberpass.test", Role::Manager).await;
    let leaked = s
        .app
        .mint("dash@memberpass.test", &s.w.team_a, &[Ability::ProjectViewAny], &[])
        .await;
    let handed_in = s
        .app
        .mint("dash@memberpass.test", &s.w.team_a, &[Ability::ProjectViewAny], &[])
        .await;
    let body = serde_json::to_vec(&json!([{"token": leaked, "type": "memberpass_api_token",
        "url": "https://github.com/octo/repo/blob/abc/.env", "source": "content"}]))
    .unwrap();
    assert_eq!(signed(&s.app, &s.current, &body).await.0, 200);
    assert_eq!(
        hand_in(&s.app, json!({"token": handed_in, "source": "a transcript"}))
            .await
            .0,
        202
    );

    let dash = cookie(&s.app, "dash@memberpass.test").await;
    let html = page(&s.app, "/settings/tokens", &dash).await.text().await.unwrap();
    assert!(html.contains("found in public by a secret scanner at https://github.com/octo/repo/blob/abc/.env"));
    assert!(html.contains("handed in by someone who held it (a transcript)"));
    assert!(html.contains(&format!("/settings/tokens/{}#playbook", token_id(&leaked))));
    let peer = cookie(&s.app, "peer@memberpass.test").await;
    let peer_html = page(&s.app, "/settings/tokens", &peer).await.text().await.unwrap();
    assert!(!peer_html.contains("was revoked for you"), "only the owner is told");

    // Dismissing one: gone from the page, audited; the other stays. Someone else cannot.
    let id: String = sqlx::query_scalar("SELECT id FROM notifications WHERE token_id = $1")
        .bind(token_id(&leaked))
        .fetch_one(s.app.pool())
        .await
        .unwrap();
    let path = format!("/settings/notifications/{id}/dismiss");
    let refused = post_form(&s.app, &path, &peer, &[("csrf", &csrf_of(&peer_html))]).await;
    assert_eq!(refused.status(), 404);
    let done = post_form(&s.app, &path, &dash, &[("csrf", &csrf_of(&html))]).await;
    assert_eq!(done.status(), 303);
    let html = page(&s.app, "/settings/tokens", &dash).await.text().await.unwrap();
    assert!(!html.contains("found in public by a secret scanner"));
    assert!(html.contains("handed in by someone who held it"));
    assert_eq!(
        count(
            &s.app,
            "SELECT COUNT(*) FROM audit_log WHERE event = $1",
            "notification.dismissed"
        )
        .await,
        1
    );
}

/// The real binary: `serve` fetches the key document itself (its own TLS-capable client) and
/// answers a signed alert.
#[tokio::test]
async fn the_binary_verifies_alerts_with_the_keys_it_fetches() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let current = Signer::new("c0ffee");
    let older = Signer::new("decaf");
    let keys = key_server(&current, &older).await;
    let dir = std::env::temp_dir().join(format!("memberpass-serve-{}", uuid::Uuid::now_v7().simple()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let server = std::process::Command::new(env!("CARGO_BIN_EXE_memberpass"))
        .args(["--data-dir", dir.to_str().unwrap(), "serve", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--secret-scanning-keys-url", &keys.url])
        .env("MEMBERPASS_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = Killed(server);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unknown = stranger();
    let body = serde_json::to_vec(&json!([{"token": unknown, "type": "memberpass_api_token"}])).unwrap();
    let res = client
        .post(format!("{base}/v1/secret-scanning/github"))
        .header("github-public-key-identifier", "c0ffee")
        .header("github-public-key-signature", current.sign(&body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer[0]["label"], "false_positive");
    assert_eq!(keys.fetches.load(Ordering::SeqCst), 1);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
