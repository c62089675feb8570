//! Issue 17, items 3 and 4: the dashboard's sign-in limits over real HTTP.
//!
//! Failed sign-ins are limited per (account, address) and per address, never per account alone:
//! a burst from one address gets no more password checks than its limit, and an address that
//! guesses cannot lock the account's owner out from another address.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use memberpass::domain::role::Role;
use reqwest::StatusCode;

use crate::dashboard::{PASSWORD, person};
use crate::helpers::{TestApp, spawn_with};

const OWNER: &str = "dash@memberpass.test";

/// `POST /login` as a browser at `address` (the server trusts the proxy's `X-Forwarded-For`).
async fn sign_in_from(app: &TestApp, address: &str, email: &str, password: &str) -> reqwest::Response {
    sign_in_with(&crate::dashboard::client(), &app.base, address, email, password).await
}

async fn sign_in_with(
    client: &reqwest::Client,
    base: &str,
    address: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("email", email), ("password", password)])
        .finish();
    client
        .post(format!("{base}/login"))
        .header("sec-fetch-site", "same-origin")
        .header("x-forwarded-for", address)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// How many passwords the server checked: one audit entry each, failed or not.
async fn passwords_checked(app: &TestApp) -> (i64, i64) {
    let count = |event: &'static str| async move {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log WHERE event = $1")
            .bind(event)
            .fetch_one(app.pool())
            .await
            .unwrap()
    };
    (count("session.login_failed").await, count("session.login").await)
}

#[tokio::test]
async fn failures_from_one_address_do_not_lock_the_owner_out_from_another() {
    let app = spawn_with(|c| {
        c.rate_limit_auth_failures = 5;
        c.behind_tls_proxy = true;
    })
    .await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Owner).await;
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let res = sign_in_from(&app, "198.51.100.7", OWNER, "a guess").await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(res.headers().contains_key("retry-after"));
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429]);

    let owner = sign_in_from(&app, "203.0.113.9", OWNER, PASSWORD).await;
    assert_eq!(
        owner.status(),
        StatusCode::SEE_OTHER,
        "the owner's address has not failed: the right password signs in"
    );
    let guesser = sign_in_from(&app, "198.51.100.7", OWNER, PASSWORD).await;
    assert_eq!(
        guesser.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the address that failed waits, even with the right password"
    );
    assert!(guesser.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn one_address_is_limited_across_accounts_and_sign_ins_that_succeed_do_not_count() {
    // 2 failures a minute per account and address, 4 × 2 per address.
    let app = spawn_with(|c| {
        c.rate_limit_auth_failures = 2;
        c.behind_tls_proxy = true;
    })
    .await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Viewer).await;
    for _ in 0..5 {
        let res = sign_in_from(&app, "198.51.100.7", OWNER, PASSWORD).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "only failures count");
    }
    for n in 0..8 {
        let res = sign_in_from(&app, "198.51.100.7", &format!("nobody{n}@memberpass.test"), "a guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "account {n}");
    }
    let over = sign_in_from(&app, "198.51.100.7", "nobody9@memberpass.test", "a guess").await;
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS, "the address's own limit");
    assert!(over.headers().contains_key("retry-after"));
    let elsewhere = sign_in_from(&app, "203.0.113.9", "nobody9@memberpass.test", "a guess").await;
    assert_eq!(
        elsewhere.status(),
        StatusCode::UNAUTHORIZED,
        "another address is not limited"
    );
    assert_eq!(passwords_checked(&app).await, (9, 5));
}

/// The burst's size and where in it the right password is.
const BURST: usize = 100;
const RIGHT_AT: usize = 53;
/// The `/healthz` p99 these tests accept during a burst of sign-ins. The finding's bound is
/// 50 ms, and a release build measures far below it (1–3.3 ms; see the README); a debug build on
/// a shared 2-core machine running other builds and tests loses scheduler slices to them (it
/// measured 6–56 ms), so the tests allow twice the bound. With argon2 on the async workers the
/// p99 was 0.5–1.1 s (release and debug alike), and 0.1–0.15 s on the blocking pool without a
/// bound on the verifications at once.
const HEALTHZ_P99: Duration = Duration::from_millis(100);

/// What a burst of sign-ins got: each round's answers (status, whether `Retry-After` came with
/// it), and the time of every `/healthz` probe sent while the rounds were being answered.
struct Burst {
    rounds: Vec<Vec<(StatusCode, bool)>>,
    healthz: Vec<Duration>,
}

impl Burst {
    /// Sends each round's sign-ins (address, password) for [`OWNER`] all at once, one round
    /// after the other, while a probe calls `/healthz` every 2 ms. The clients run on threads
    /// of their own, so that the server has the test's two workers to itself and what is
    /// measured is its latency, not the clients'.
    async fn run(app: &TestApp, rounds: Vec<Vec<(String, &'static str)>>) -> Burst {
        let base = app.base.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let probe = {
            let (base, stop) = (base.clone(), stop.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let client = reqwest::Client::new();
                    let mut took = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let res = client.get(format!("{base}/healthz")).send().await.unwrap();
                        assert_eq!(res.status(), 200);
                        let _ = res.bytes().await.unwrap();
                        took.push((started, started.elapsed()));
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    took
                })
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let bursts = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = crate::dashboard::client();
                let mut answers = Vec::new();
                for round in rounds {
                    let mut tasks = tokio::task::JoinSet::new();
                    for (address, password) in round {
                        let (client, base) = (client.clone(), base.clone());
                        tasks.spawn(async move {
                            let res = sign_in_with(&client, &base, &address, OWNER, password).await;
                            (res.status(), res.headers().contains_key("retry-after"))
                        });
                    }
                    answers.push(tasks.join_all().await);
                }
                answers
            })
        });
        let rounds = bursts.join().unwrap();
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let mut healthz: Vec<Duration> = probe
            .join()
            .unwrap()
            .into_iter()
            .filter(|(sent, _)| *sent >= started && *sent < started + took)
            .map(|(_, took)| took)
            .collect();
        healthz.sort();
        // Few probes is itself the sign of a stalled server: each waits for its answer.
        let n = healthz.len();
        assert!(n > 0, "no probe was answered during the bursts");
        eprintln!(
            "healthz during {} sign-ins in {took:?}: {n} probes, p50 {:?}, p99 {:?}, max {:?}",
            rounds.iter().map(Vec::len).sum::<usize>(),
            healthz[n / 2],
            healthz[(n * 99).div_ceil(100) - 1],
            healthz[n - 1]
        );
        Burst { rounds, healthz }
    }

    fn healthz_p99(&self) -> Duration {
        self.healthz[(self.healthz.len() * 99).div_ceil(100) - 1]
    }
}

/// A burst from one address with the right password in the middle.
fn one_address(address: &str) -> Vec<(String, &'static str)> {
    (0..BURST)
        .map(|i| (address.to_owned(), if i == RIGHT_AT { PASSWORD } else { "a guess" }))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_burst_from_one_address_checks_no_more_passwords_than_the_limit() {
    let app = spawn_with(|c| {
        c.rate_limit_auth_failures = 5;
        c.behind_tls_proxy = true;
    })
    .await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Viewer).await;
    // Five bursts, each from an address of its own, so that the p99 is read from a few hundred
    // probes.
    let burst = Burst::run(&app, (0..5).map(|r| one_address(&format!("198.51.100.{r}"))).collect()).await;

    let (mut all_failed, mut all_signed_in) = (0, 0);
    for answers in &burst.rounds {
        let count = |s: StatusCode| answers.iter().filter(|(status, _)| *status == s).count();
        let (failed, signed_in, waited) = (
            count(StatusCode::UNAUTHORIZED),
            count(StatusCode::SEE_OTHER),
            count(StatusCode::TOO_MANY_REQUESTS),
        );
        assert_eq!(failed + signed_in + waited, BURST, "{answers:?}");
        assert!(failed <= 5, "{failed} wrong passwords checked past a limit of 5");
        assert!(signed_in <= 1);
        assert!(
            answers
                .iter()
                .all(|(s, after)| *s != StatusCode::TOO_MANY_REQUESTS || *after),
            "every 429 says when to come back"
        );
        (all_failed, all_signed_in) = (all_failed + failed, all_signed_in + signed_in);
    }
    // Checked passwords, counted by the server (one audit entry each, whatever the answer): the
    // failures answered 401, and the right password only when it came within the limit (a
    // success gives its reservation back, so the failures alone are bounded by the limit).
    let (checked_failed, checked_right) = passwords_checked(&app).await;
    assert_eq!(
        (checked_failed as usize, checked_right as usize),
        (all_failed, all_signed_in)
    );
    let p99 = burst.healthz_p99();
    assert!(p99 < HEALTHZ_P99, "healthz p99 {p99:?} during the bursts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_sign_ins_from_many_addresses_is_checked_off_the_async_workers() {
    let app = spawn_with(|c| {
        c.rate_limit_auth_failures = 5;
        c.behind_tls_proxy = true;
    })
    .await;
    let w = app.world().await;
    person(&app, &w.team_a, OWNER, Role::Viewer).await;
    // One attempt from each of 100 addresses: within every limit, so every password is checked.
    let round = (0..BURST)
        .map(|i| {
            let password = if i == RIGHT_AT { PASSWORD } else { "a guess" };
            (format!("10.0.{}.{}", i / 200, i % 200 + 1), password)
        })
        .collect();
    let burst = Burst::run(&app, vec![round]).await;
    let answers = &burst.rounds[0];
    let count = |s: StatusCode| answers.iter().filter(|(status, _)| *status == s).count();
    assert_eq!(
        (count(StatusCode::UNAUTHORIZED), count(StatusCode::SEE_OTHER)),
        (BURST - 1, 1),
        "every attempt within the limits is checked"
    );
    let p99 = burst.healthz_p99();
    assert!(
        p99 < HEALTHZ_P99,
        "healthz p99 {p99:?} while {BURST} passwords were checked"
    );
}
