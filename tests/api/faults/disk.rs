//! The SQLite file on a disk that fills up under load, then on one remounted read-only: writes
//! fail closed (500, nothing half-written), a read whose entry cannot be written is not answered
//! with data, and the same process recovers once there is room again.

use std::time::{Duration, Instant};

use super::small_disk::SmallDisk;
use super::{Call, Load, assert_audit_matches, assert_success_or_envelope, entries_of, summary};
use crate::durability::crash::mint_project_token;
use crate::served::{Served, cli_json_at, serve_refused};

/// Opens the file as the server left it and checks it: the audit chain verifies, SQLite finds
/// nothing corrupt, and every answer has what the audit log says it should. Returns the entries.
async fn check_file(url: &str, token: &str, answers: &[super::Answer]) -> usize {
    let verify = cli_json_at(url, &["audit", "verify"]).await;
    assert_eq!(verify["ok"], true, "{verify}");
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    let entries = entries_of(&mut conn, token).await;
    let projects: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM projects")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_audit_matches(answers, &entries, &projects);
    entries.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_calls_closed_and_the_same_process_recovers_when_there_is_room() {
    // The one TLS provider in the tree (ring), for this test's own client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let disk = SmallDisk::mount(16);
    let url = disk.sqlite_url();
    let token = mint_project_token(&url).await;
    let mut server = Served::start(&url).await;
    // Creations carry a long description: a full disk is reached sooner.
    let load = Load::start(&server.base, &token, 4, 4, 900);
    load.wait_for_successes(Instant::now(), 20, 20, Duration::from_secs(30))
        .await;

    let filled = Instant::now();
    let filler = disk.fill();
    // Writes fail once SQLite's log needs room it no longer finds.
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let failed = load
            .answers()
            .iter()
            .filter(|a| a.sent >= filled && a.is_write() && a.is_5xx())
            .count();
        if failed >= 10 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the full disk failed no write: {}",
            summary(&load.answers())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Full for a while longer: reads and writes keep being answered, with a 500 or with their entry.
    tokio::time::sleep(Duration::from_secs(2)).await;

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let mut n = 0;
    loop {
        n += 1;
        let name = format!("Probe {n}");
        let probe = load
            .call(Call::Create {
                name: &name,
                description: None,
            })
            .await;
        if probe.is_success() {
            break;
        }
        assert!(
            freed.elapsed() < Duration::from_secs(30),
            "no write went through 30 s after the disk had room again: {probe:?}\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = Instant::now();
    load.wait_for_successes(recovered, 20, 20, Duration::from_secs(30))
        .await;
    let answers = load.finish().await;
    let while_full: Vec<_> = answers
        .iter()
        .filter(|a| a.sent >= filled && a.sent < freed)
        .cloned()
        .collect();
    eprintln!(
        "disk full: {}; writes went through again {:.2} s after it had room",
        summary(&while_full),
        (recovered - freed).as_secs_f64()
    );
    assert!(server.is_running(), "the server exited:\n{}", server.stderr());
    assert!(!server.stderr().contains("panicked"), "{}", server.stderr());
    assert_success_or_envelope(&answers);
    for a in &answers {
        assert!(!a.is_5xx() || a.body["error"]["code"] == "INTERNAL_ERROR", "{a:?}");
    }
    assert!(server.terminate().await, "{}", server.stderr());

    let entries = check_file(&url, &token, &answers).await;
    eprintln!("disk full: {} answers, {entries} entries", answers.len());
    // The same file serves again.
    let server = Served::start(&url).await;
    let load = Load::start(&server.base, &token, 0, 0, 0);
    assert!(load.call(Call::Me).await.is_success());
    drop(server);
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_is_refused_clearly_and_serves_again_once_writable() {
    // The one TLS provider in the tree (ring), for this test's own client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let disk = SmallDisk::mount(16);
    let url = disk.sqlite_url();
    let token = mint_project_token(&url).await;
    let mut answers = Vec::new();
    // Read-only after a clean stop (SQLite folded its log into the file and removed it), then
    // after a crash (the log and its index left beside the file).
    for crash in [false, true] {
        let mut server = Served::start(&url).await;
        let load = Load::start(&server.base, &token, 0, 0, 0);
        for n in 0..3 {
            let name = format!("Before {crash} {n}");
            let created = load
                .call(Call::Create {
                    name: &name,
                    description: None,
                })
                .await;
            assert!(created.is_success(), "{created:?}");
            assert!(load.call(Call::Me).await.is_success());
        }
        answers.extend(load.finish().await);
        // A file system is remounted read-only once no process has a file of it open to write.
        if crash {
            server.kill();
        } else {
            assert!(server.terminate().await, "{}", server.stderr());
        }
        disk.remount(true)
            .unwrap_or_else(|e| panic!("cannot remount the test's tmpfs read-only: {e}"));

        // Every call writes an audit entry: a server that cannot write refuses to start, and
        // says why, rather than listen and answer every call with a 500.
        let refused = serve_refused(&url).await;
        if crash {
            // With the log left beside it the file opens and reads, but no entry can be written.
            assert!(refused.contains("the database cannot be written"), "{refused}");
            // What only reads still works: the operator can verify the chain.
            let verify = cli_json_at(&url, &["audit", "verify"]).await;
            assert_eq!(verify["ok"], true, "{verify}");
        } else {
            // SQLite cannot open a WAL database without creating its log index.
            assert!(
                refused.contains("cannot open the SQLite database for writing"),
                "{refused}"
            );
        }
        disk.remount(false)
            .unwrap_or_else(|e| panic!("cannot remount the test's tmpfs read-write: {e}"));
    }

    // Writable again: the same file serves, and holds what was answered, nothing else.
    let mut server = Served::start(&url).await;
    let load = Load::start(&server.base, &token, 0, 0, 0);
    assert!(load.call(Call::List).await.is_success());
    answers.extend(load.finish().await);
    assert!(server.terminate().await, "{}", server.stderr());
    check_file(&url, &token, &answers).await;
    drop(disk);
}
