//! Issue 11, item 6: a token with a known ID and a wrong secret, and one with an unknown ID, are
//! refused in the same time (SPEC §2: "Unknown IDs cost the same time as known ones"), on
//! whichever backend the run tests.
//!
//! One request at a time on one keep-alive connection, the two kinds in pairs whose order is
//! drawn at random, so both see the same machine: a load that comes and goes (other tests, other
//! work on the cores) slows both requests of a pair alike, and whatever favours the first or the
//! second of a pair favours each kind half the time. The first pairs warm up and are left out.
//! Medians, not means: a slow outlier moves a mean, not a median.
//!
//! The bound: a difference is a finding when it is both beyond this run's own noise (four
//! standard errors of the statistic, estimated from the spread the same run measured: a false
//! alarm about once in 15 000 runs on a machine quiet or loaded, since a loaded one widens the
//! spread it is judged by) and beyond [`NEGLIGIBLE`]. Before the lookup of an unknown ID returned
//! a decoy token's row, a known ID was refused about 170 µs (10 %) slower in a debug build, with
//! standard errors of 10–20 µs: caught by either statistic.

use std::time::{Duration, Instant};

use memberpass::domain::token::{TokenEnv, TokenId, TokenSecret};

use crate::helpers::{OWNER_A, spawn_with, token_id};

/// Pairs measured, after the warm-up ones, unless the time runs out first.
const PAIRS: usize = 3000;
const WARM_UP: usize = 200;
/// On a loaded machine (a refusal on a busy shared PostgreSQL can take 15 ms), measuring stops
/// after this long once [`MIN_PAIRS`] are in, and in any case after twice this long.
const TIME: Duration = Duration::from_secs(30);
const MIN_PAIRS: usize = 1000;

/// Below this a difference of medians is too small to tell anything over any network: a few
/// microseconds against a refusal of milliseconds (in a debug build; hundreds of them in a release
/// one) and a network hop whose jitter is tens. A debug build does the same work as a release one
/// several times slower, hence several times the release figure of 5–10 µs.
const NEGLIGIBLE: f64 = 30.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_id_with_a_wrong_secret_is_refused_in_the_time_of_an_unknown_id() {
    let app = spawn_with(|c| {
        // Every refusal is answered 401 and recorded, however many there are.
        c.rate_limit_auth_failures = 0;
        c.rate_limit_rest = 0;
    })
    .await;
    let w = app.world().await;
    let token = app.mint(OWNER_A, &w.team_a, &[], &[]).await;
    let known = TokenId::parse(&token_id(&token)).unwrap();
    let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
    let url = format!("{}/v1/me", app.base);
    let refusal_time = |token: TokenSecret| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let started = Instant::now();
            let res = client.get(url).bearer_auth(token.expose_secret()).send().await.unwrap();
            let status = res.status();
            let _ = res.bytes().await.unwrap();
            let took = started.elapsed();
            assert_eq!(status, 401);
            took.as_secs_f64() * 1e6
        }
    };

    // (known, unknown) of each pair, in µs; which goes first is drawn (a fixed xorshift).
    let mut pairs: Vec<(f64, f64)> = Vec::with_capacity(PAIRS);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut started = Instant::now();
    for n in 0..WARM_UP + PAIRS {
        if n == WARM_UP {
            started = Instant::now();
        }
        let out_of_time = started.elapsed() > TIME && pairs.len() >= MIN_PAIRS || started.elapsed() > 2 * TIME;
        if out_of_time {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let with_known = || TokenSecret::with_id(TokenEnv::Test, known.clone());
        let unknown = || TokenSecret::generate(TokenEnv::Test);
        let pair = if x & 1 == 0 {
            let k = refusal_time(with_known()).await;
            (k, refusal_time(unknown()).await)
        } else {
            let u = refusal_time(unknown()).await;
            (refusal_time(with_known()).await, u)
        };
        if n >= WARM_UP {
            pairs.push(pair);
        }
    }

    let known_us: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let unknown_us: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    let within_pairs: Vec<f64> = pairs.iter().map(|p| p.0 - p.1).collect();
    let n = (pairs.len() as f64).sqrt();
    // The difference of the kinds' medians, whose noise is both kinds' spread; and the median of
    // the pairs' differences, whose noise is the spread within a pair (a drift over the run
    // cancels out). Standard errors of a median: √(π/2) · σ / √n.
    let of_medians = median(&known_us) - median(&unknown_us);
    let of_medians_se = 1.2533 * spread(&known_us).hypot(spread(&unknown_us)) / n;
    let in_pairs = median(&within_pairs);
    let in_pairs_se = 1.2533 * spread(&within_pairs) / n;
    eprintln!(
        "refusal timing ({} backend, {} pairs): known p50 {:.0} µs, unknown p50 {:.0} µs; difference of \
         medians {of_medians:+.1} µs (standard error {of_medians_se:.1} µs), median of the pairs' \
         differences {in_pairs:+.1} µs (standard error {in_pairs_se:.1} µs)",
        if app.is_postgres() { "PostgreSQL" } else { "SQLite" },
        pairs.len(),
        median(&known_us),
        median(&unknown_us),
    );
    for (what, d, se) in [
        ("difference of medians", of_medians, of_medians_se),
        ("median of the pairs' differences", in_pairs, in_pairs_se),
    ] {
        let bound = (4.0 * se).max(NEGLIGIBLE);
        assert!(
            d.abs() <= bound,
            "{what}: {d:+.1} µs (known − unknown), over the bound of {bound:.1} µs: an unknown token \
             ID can be told from a known one by the time of its refusal"
        );
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    }
}

/// A standard deviation that outliers do not move: 1.4826 × the median absolute deviation.
fn spread(v: &[f64]) -> f64 {
    let m = median(v);
    1.4826 * median(&v.iter().map(|x| (x - m).abs()).collect::<Vec<_>>())
}
