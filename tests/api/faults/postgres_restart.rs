//! PostgreSQL stopped and started again under a load of the real binary: while it is down every
//! call is answered with a 5xx and the envelope (never a reset: the process stays up), and once
//! it is back the server recovers by itself. Stopped twice: `fast` (sessions closed), then
//! `immediate` (a crash: recovery replays the WAL and empties the unlogged rate-limit table).

use std::time::{Duration, Instant};

use super::private_postgres::{PrivatePostgres, Stop};
use super::{Call, Load, assert_audit_matches, assert_success_or_envelope, entries_of, summary};
use crate::durability::crash::mint_project_token;
use crate::served::{Served, cli_json_at};

/// How long the server may take to serve again once PostgreSQL accepts connections.
const RECOVERY: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_answers_5xx_with_the_envelope_and_recovers_by_itself() {
    // The one TLS provider in the tree (ring), for this test's own client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pg = PrivatePostgres::start().await;
    let url = pg.url();
    cli_json_at(&url, &["migrate"]).await;
    let token = mint_project_token(&url).await;
    // Rate limits on (shared, in PostgreSQL, like every call's), far above what the load asks.
    let mut server = Served::start(&url).await;
    let load = Load::start(&server.base, &token, 8, 8, 0);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(45))
        .build()
        .unwrap();
    let readyz = |client: reqwest::Client, base: String| async move {
        match client.get(format!("{base}/readyz")).send().await {
            Ok(res) => res.status().as_u16(),
            Err(e) => {
                eprintln!("readyz: {e:?}");
                0
            }
        }
    };
    load.wait_for_successes(Instant::now(), 40, 40, Duration::from_secs(30))
        .await;

    for how in [Stop::Fast, Stop::Immediate] {
        let stopped = Instant::now();
        pg.stop(how).await;
        // Down until readiness says so (its ping waits out the pool's 10 s acquire timeout)
        // and the load has been answered with failures.
        let ready_while_down = readyz(client.clone(), server.base.clone()).await;
        assert_eq!(
            ready_while_down,
            503,
            "readyz with the database down ({:.1} s after the stop)\n{}",
            stopped.elapsed().as_secs_f64(),
            server.stderr()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while load
            .answers()
            .iter()
            .filter(|a| a.sent >= stopped && a.is_5xx())
            .count()
            < 8
        {
            assert!(Instant::now() < deadline, "no failures while the database is down");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let down = stopped.elapsed();

        pg.restart().await;
        let up = Instant::now();
        // A probe write, then readiness, until both succeed.
        let mut n = 0;
        loop {
            n += 1;
            let name = format!("Probe {how:?} {n}");
            let probe = load
                .call(Call::Create {
                    name: &name,
                    description: None,
                })
                .await;
            if probe.is_success() && readyz(client.clone(), server.base.clone()).await == 200 {
                break;
            }
            assert!(
                up.elapsed() < RECOVERY,
                "no recovery {RECOVERY:?} after PostgreSQL came back ({how:?}); last probe {probe:?}\n{}\n{}",
                server.stderr(),
                pg.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let recovered = Instant::now();
        // The load itself gets through again.
        load.wait_for_successes(recovered, 40, 40, RECOVERY).await;
        let answers = load.answers();
        let after: Vec<_> = answers.iter().filter(|a| a.sent >= recovered).cloned().collect();
        eprintln!(
            "postgres {how:?}: down {:.1} s ({}); recovered {:.2} s after it was back; since: {}",
            down.as_secs_f64(),
            summary(
                &answers
                    .iter()
                    .filter(|a| a.sent >= stopped && a.sent < up)
                    .cloned()
                    .collect::<Vec<_>>()
            ),
            (recovered - up).as_secs_f64(),
            summary(&after)
        );
        assert!(server.is_running(), "the server exited:\n{}", server.stderr());
    }

    // Restarted while the server is idle: what a quiet night's restart leaves must cost no call.
    let mut load = load;
    load.stop().await;
    pg.stop(Stop::Fast).await;
    pg.restart().await;
    let mut failed = Vec::new();
    for n in 0..40 {
        let call = match n % 3 {
            0 => Call::Me,
            1 => Call::List,
            _ => Call::Create {
                name: &format!("Quiet {n}"),
                description: None,
            },
        };
        let answer = load.call(call).await;
        if !answer.is_success() {
            failed.push(answer);
        }
    }
    assert!(
        failed.is_empty(),
        "calls failed after a restart while idle: {failed:#?}\n{}",
        server.stderr()
    );

    let answers = load.finish().await;
    assert!(server.is_running(), "the server exited:\n{}", server.stderr());
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    assert_success_or_envelope(&answers);
    assert_eq!(readyz(client.clone(), server.base.clone()).await, 200);
    server.terminate().await;

    let verify = cli_json_at(&url, &["audit", "verify"]).await;
    assert_eq!(verify["ok"], true, "{verify}");
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
    let entries = entries_of(&mut conn, &token).await;
    let projects: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM projects")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let committed_but_failed = assert_audit_matches(&answers, &entries, &projects);
    eprintln!(
        "postgres restarts: {}; {} entries, {committed_but_failed} of them for a 5xx whose commit landed",
        summary(&answers),
        entries.len()
    );
    drop(pg);
}
