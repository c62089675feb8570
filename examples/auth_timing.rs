//! `cargo run --release --example auth_timing [-- --requests 1500 --database-url URL]`
//!
//! Can a caller tell a token ID that exists from one that does not by how long a refusal takes?
//! Runs the real server (SQLite in a temp dir by default, failure limit off) and sends, one at a
//! time on one keep-alive connection and in a shuffled order, checksum-valid tokens with a
//! **known ID and a wrong secret** and tokens with an **unknown ID**. Prints both latency
//! distributions and the difference of their medians; a difference within the run-to-run noise
//! (compare the two halves of each kind) means the ID does not leak through timing.

use std::time::{Duration, Instant};

use memberpass::app::{Application, ServeConfig};
use memberpass::domain::token::{TokenEnv, TokenId, TokenSecret};
use memberpass::service::Caller;
use memberpass::service::accounts::tokens::MintRequest;

fn args() -> (usize, Option<String>) {
    let (mut requests, mut url) = (1500, None);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--requests" => requests = value.parse().expect("--requests N"),
            "--database-url" => url = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    (requests, url)
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (requests, url) = args();
    let dir = std::env::temp_dir().join(format!("memberpass-timing-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.join("timing.db").display()));
    let mut config = ServeConfig::local(url);
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.rate_limit_auth_failures = 0;
    config.rate_limit_rest = 0;
    let app = Application::build(config).await.expect("server builds");
    let base = format!("http://{}", app.local_addr());
    let service = app.service().clone();
    let demo = service.seed_demo().await.expect("demo data");
    let minted = service
        .mint_token(
            &Caller::system(),
            MintRequest {
                team_id: demo.team_id.clone(),
                user_email: demo.email.clone(),
                name: "timing".into(),
                abilities: vec![],
                project_ids: vec![],
                expires_in_ms: None,
                allowed_ips: Vec::new(),
                replaces: None,
            },
        )
        .await
        .unwrap();
    let known = TokenId::parse(minted.secret.id().as_str()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();

    // A fixed, shuffled order (xorshift), so both kinds see the same conditions.
    let mut order: Vec<bool> = (0..requests * 2).map(|i| i % 2 == 0).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let (mut known_ms, mut unknown_ms) = (Vec::new(), Vec::new());
    for (n, is_known) in order.into_iter().enumerate() {
        let token = if is_known {
            TokenSecret::with_id(TokenEnv::Test, known.clone())
        } else {
            TokenSecret::generate(TokenEnv::Test)
        };
        let started = Instant::now();
        let res = client
            .get(format!("{base}/v1/me"))
            .bearer_auth(token.expose_secret())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let _ = res.bytes().await;
        let took = started.elapsed();
        // The first requests warm the connection and the caches; leave them out.
        if n >= 100 {
            if is_known { &mut known_ms } else { &mut unknown_ms }.push(took);
        }
    }
    let _ = stop.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);

    println!("memberpass auth_timing: {requests} requests of each kind, one at a time");
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>14} {:>14}",
        "kind", "p10 µs", "p50 µs", "p90 µs", "1st half p50", "2nd half p50"
    );
    let report = |name: &str, v: &[Duration]| {
        let mid = v.len() / 2;
        let (a, b) = (median(&v[..mid]), median(&v[mid..]));
        let mut s = v.to_vec();
        s.sort();
        let pct = |p: f64| s[((s.len() - 1) as f64 * p) as usize].as_micros();
        println!(
            "{name:<28} {:>8} {:>8} {:>8} {:>14} {:>14}",
            pct(0.1),
            pct(0.5),
            pct(0.9),
            a.as_micros(),
            b.as_micros()
        );
        median(v)
    };
    let k = report("known ID, wrong secret", &known_ms);
    let u = report("unknown ID", &unknown_ms);
    println!(
        "difference of medians: {} µs (known − unknown)",
        k.as_micros() as i128 - u.as_micros() as i128
    );
}

fn median(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    s[s.len() / 2]
}
