//! Two replicas: two real `memberpass serve` processes on one PostgreSQL database (SPEC §11), on
//! loopback ports. Revocation, roles, rate limits, jobs and the audit chain hold across them, and
//! when one of them is killed (SIGKILL) or stopped (SIGTERM) under load.
//!
//! These run on PostgreSQL whichever backend the rest of the run tests (SQLite serves one process).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memberpass::domain::ability::Ability;
use serde_json::{Value, json};
use sqlx::{Connection, Executor};

use crate::durability::crash::{
    Heard, assert_every_answer_kept, assert_every_change_has_its_entry, load_then_kill_one,
};
use crate::durability::{ENTRY_COLUMNS, Entry};
use crate::helpers::{ScratchDatabase, scratch_postgres, token_id};
use crate::served::{Served, cli_json};

/// A PostgreSQL database with a user, their team and a project, and two replicas serving it.
struct Replicas {
    db: ScratchDatabase,
    a: Served,
    b: Served,
    team: String,
    project: String,
    client: reqwest::Client,
}

const EMAIL: &str = "replicas@example.com";

impl Replicas {
    /// Both replicas with `args` after `serve`.
    async fn start(args: &[&str]) -> Replicas {
        // The one TLS provider in the tree (ring), for this test's own client.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = scratch_postgres().await;
        cli_json(&db, &["migrate"]).await;
        cli_json(&db, &["user", "create", "--email", EMAIL, "--name", "Replicas"]).await;
        let team = cli_json(&db, &["team", "create", "--name", "Replicas", "--owner", EMAIL]).await;
        let team = team["id"].as_str().unwrap().to_owned();
        let project = cli_json(&db, &["project", "create", "--team", &team, "--name", "Shared"]).await;
        let project = project["id"].as_str().unwrap().to_owned();
        let (a, b) = tokio::join!(Served::start_with(&db.url, args), Served::start_with(&db.url, args));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Replicas {
            db,
            a,
            b,
            team,
            project,
            client,
        }
    }

    /// Adds `email` to the team as `role`, or changes their role, by the CLI.
    async fn set_role(&self, email: &str, role: &str) {
        let args = [
            "team",
            "add-member",
            "--team",
            &self.team,
            "--email",
            email,
            "--role",
            role,
        ];
        cli_json(&self.db, &args).await;
    }

    /// A token of the team's owner with `abilities`, minted by the CLI.
    async fn mint(&self, abilities: &[Ability]) -> String {
        mint(&self.db, &self.team, EMAIL, abilities).await
    }

    async fn get(&self, base: &str, path: &str, token: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, base: &str, path: &str, token: &str, body: Value) -> (u16, Value) {
        let res = self
            .client
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn verify(&self) {
        let verify = cli_json(&self.db, &["audit", "verify"]).await;
        assert_eq!(verify["ok"], true, "{verify}");
    }

    /// A plan of the project, and a token that generates its access codes and reads jobs.
    async fn plan_and_code_token(&self) -> (String, String) {
        let token = self
            .mint(&[
                Ability::PlanCreate,
                Ability::AccessCodeCreate,
                Ability::AccessCodeViewAny,
            ])
            .await;
        let body = json!({"name": "Monthly", "price_cents": 500, "currency": "USD", "billing_interval": "month"});
        let (status, plan) = self
            .post(
                &self.a.base,
                &format!("/v1/projects/{}/plans", self.project),
                &token,
                body,
            )
            .await;
        assert_eq!(status, 201, "{plan}");
        (plan["data"]["id"].as_str().unwrap().to_owned(), token)
    }

    /// Starts a bulk generation of `quantity` codes through `base`; returns the job's id.
    async fn start_job(&self, base: &str, plan: &str, token: &str, quantity: u32) -> String {
        let (status, job) = self
            .post(
                base,
                &format!("/v1/plans/{plan}/access-codes"),
                token,
                json!({"quantity": quantity}),
            )
            .await;
        assert_eq!(status, 202, "{job}");
        job["data"]["id"].as_str().unwrap().to_owned()
    }

    /// The job's row: status, attempts, and the codes it has in the table.
    async fn job_state(&self, job: &str) -> (String, i64, i64) {
        let mut conn = sqlx::AnyConnection::connect(&self.db.url).await.unwrap();
        let (status, attempts): (String, i64) = sqlx::query_as("SELECT status, attempts FROM jobs WHERE id = $1")
            .bind(job)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let codes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM access_codes WHERE job_id = $1")
            .bind(job)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        (status, attempts, codes)
    }

    /// Waits (up to `within`) for the job to reach `status`.
    async fn wait_for_job(&self, job: &str, status: &str, within: Duration) -> (String, i64, i64) {
        let started = Instant::now();
        loop {
            let state = self.job_state(job).await;
            if state.0 == status {
                return state;
            }
            assert!(started.elapsed() < within, "job {job} is {state:?}, not {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many entries of `event` are about `subject`.
    async fn entries_about(&self, event: &str, subject: &str) -> i64 {
        let mut conn = sqlx::AnyConnection::connect(&self.db.url).await.unwrap();
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE event = $1 AND subject_id = $2")
            .bind(event)
            .bind(subject)
            .fetch_one(&mut conn)
            .await
            .unwrap()
    }
}

async fn mint(db: &ScratchDatabase, team: &str, email: &str, abilities: &[Ability]) -> String {
    let mut args = vec![
        "token",
        "mint",
        "--team",
        team,
        "--user",
        email,
        "--name",
        "replica test",
    ];
    for a in abilities {
        args.extend(["--ability", a.as_str()]);
    }
    cli_json(db, &args).await["token"].as_str().unwrap().to_owned()
}

/// One call of a load: when it was sent (relative to the test's start) and what came back.
struct Sent {
    replica: usize,
    started: Instant,
    status: u16,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_through_one_replica_is_refused_by_both_on_the_next_request_under_load() {
    let r = Replicas::start(&["--rate-limit-rest", "1000000", "--rate-limit-auth-failures", "1000000"]).await;
    let token = r.mint(&[Ability::ProjectViewAny]).await;
    let bases = [r.a.base.clone(), r.b.base.clone()];
    // Every call so far.
    let sent: Arc<Mutex<Vec<Sent>>> = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (client, base, token, stop, sent) = (
            r.client.clone(),
            bases[t % 2].clone(),
            token.clone(),
            stop.clone(),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for n in 0.. {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let started = Instant::now();
                let path = if n % 2 == 0 { "/v1/me" } else { "/v1/projects" };
                let res = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                sent.lock().unwrap().push(Sent {
                    replica: t % 2,
                    started,
                    status: res.status().as_u16(),
                });
            }
        }));
    }
    // Counted, not timed: each replica answers 20 calls first, and gets 20 started after the
    // revoke returned before the load stops.
    let enough = |after: Option<Instant>| {
        let sent = sent.lock().unwrap();
        (0..2).all(|replica| {
            sent.iter()
                .filter(|s| s.replica == replica && after.is_none_or(|at| s.started > at))
                .count()
                > 20
        })
    };
    let wait_for = |after: Option<Instant>| async move {
        for _ in 0..1200 {
            if enough(after) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the load did not reach 20 calls per replica");
    };
    wait_for(None).await;
    let res = r
        .client
        .delete(format!("{}/v1/tokens/current", r.a.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().await.unwrap());
    let revoked = Instant::now();
    wait_for(Some(revoked)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let sent = std::mem::take(&mut *sent.lock().unwrap());
    for replica in 0..2 {
        let before = sent
            .iter()
            .filter(|s| s.replica == replica && s.started < revoked && s.status == 200)
            .count();
        let after: Vec<u16> = sent
            .iter()
            .filter(|s| s.replica == replica && s.started > revoked)
            .map(|s| s.status)
            .collect();
        assert!(
            before > 20,
            "replica {replica} answered {before} calls before the revoke"
        );
        assert!(
            after.len() > 20,
            "replica {replica} got {} calls after the revoke",
            after.len()
        );
        assert!(
            after.iter().all(|s| *s == 401),
            "replica {replica} answered a revoked token: {:?}",
            after.iter().filter(|s| **s != 401).collect::<Vec<_>>()
        );
    }
    r.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_role_limits_the_token_on_both_replicas_at_once() {
    let r = Replicas::start(&[]).await;
    // A manager's token that may create projects; the manager is then made a viewer.
    let manager = "manager@example.com";
    cli_json(&r.db, &["user", "create", "--email", manager, "--name", "Manager"]).await;
    r.set_role(manager, "manager").await;
    let token = mint(
        &r.db,
        &r.team,
        manager,
        &[Ability::ProjectCreate, Ability::ProjectViewAny],
    )
    .await;
    for base in [&r.a.base, &r.b.base] {
        let (status, body) = r.post(base, "/v1/projects", &token, json!({"name": "Before"})).await;
        assert_eq!(status, 201, "{body}");
    }
    r.set_role(manager, "viewer").await;
    for base in [&r.a.base, &r.b.base] {
        let (status, body) = r.post(base, "/v1/projects", &token, json!({"name": "After"})).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["code"], "TOKEN_MISSING_ABILITY", "{body}");
        let (status, _) = r.get(base, "/v1/projects", &token).await;
        assert_eq!(status, 200, "a viewer still lists projects");
    }
    // Removed from the team: refused outright, on both.
    cli_json(&r.db, &["team", "remove-member", "--team", &r.team, "--email", manager]).await;
    for base in [&r.a.base, &r.b.base] {
        let (status, body) = r.get(base, "/v1/projects", &token).await;
        assert_eq!(status, 401, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_by_the_replicas() {
    let r = Replicas::start(&["--rate-limit-rest", "20", "--rate-limit-auth-failures", "5"]).await;
    let token = r.mint(&[]).await;
    // 30 calls alternated between the replicas: 20 answered in all (with buckets per process,
    // 15 calls each, all 30 would be). The bucket refills one call every 3 s, so a slow run may
    // see one more answered per 3 s it took.
    let started = Instant::now();
    let mut statuses = Vec::new();
    for i in 0..30 {
        let base = if i % 2 == 0 { &r.a.base } else { &r.b.base };
        let res = r
            .client
            .get(format!("{base}/v1/me"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=3).contains(&wait), "one call's refill is 3 s away, not {wait}");
        }
        statuses.push(res.status().as_u16());
    }
    let refilled = started.elapsed().as_secs() as usize / 3;
    let answered = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses[..20].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        (20..=20 + refilled).contains(&answered),
        "{answered} answered: {statuses:?}"
    );
    let other = r.mint(&[]).await;
    assert_eq!(r.get(&r.b.base, "/v1/me", &other).await.0, 200, "buckets are per token");

    // Failed authentications from one address: 5 in all, whichever replica hears them; the sixth
    // attempt is refused, and so is the address's next attempt with a good token, on both.
    let forged = format!("{}x", &other[..other.len() - 1]);
    let forged = if forged == other {
        format!("{}y", &other[..other.len() - 1])
    } else {
        forged
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    for i in 0..7 {
        let base = if i % 2 == 0 { &r.a.base } else { &r.b.base };
        failures.push(r.get(base, "/v1/me", &forged).await.0);
    }
    // One failure refills every 12 s.
    if started.elapsed() < Duration::from_secs(12) {
        assert_eq!(failures, [401, 401, 401, 401, 401, 429, 429]);
    } else {
        assert!(
            failures[..5].iter().all(|s| *s == 401) && failures[6] == 429,
            "{failures:?}"
        );
    }
    for base in [&r.a.base, &r.b.base] {
        assert_eq!(
            r.get(base, "/v1/me", &other).await.0,
            429,
            "the address is locked out on {base}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_budget_is_one_budget_on_both_replicas() {
    let r = Replicas::start(&[]).await;
    let token = r.mint(&[Ability::ProjectCreate]).await;
    let id = token_id(&token);
    cli_json(&r.db, &["token", "budget", &id, "create_project", "3"]).await;
    // Twelve creations at once, half through each replica: three run in all (with a count per
    // process, six would), the rest are held for approval.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let base = if i % 2 == 0 { r.a.base.clone() } else { r.b.base.clone() };
        let (client, token) = (r.client.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(format!("{base}/v1/projects"))
                .bearer_auth(&token)
                .json(&json!({"name": format!("Budgeted {i}")}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            (status, body)
        }));
    }
    let mut ran = 0;
    let mut held = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => ran += 1,
            202 => {
                assert_eq!(body["data"]["hold"], "budget", "{body:#}");
                held += 1;
            }
            other => panic!("{other}: {body:#}"),
        }
    }
    assert_eq!((ran, held), (3, 9));
    let mut conn = sqlx::AnyConnection::connect(&r.db.url).await.unwrap();
    let created: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE name LIKE 'Budgeted %'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    assert_eq!(created, 3);
    r.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_job_runs_exactly_once_when_both_replicas_poll() {
    let r = Replicas::start(&[]).await;
    let (plan, token) = r.plan_and_code_token().await;
    let mut jobs = Vec::new();
    // Three: a team may have three batches pending at once.
    for i in 0..3 {
        let base = if i % 2 == 0 { &r.a.base } else { &r.b.base };
        jobs.push(r.start_job(base, &plan, &token, 500).await);
    }
    for job in &jobs {
        let (_, attempts, codes) = r.wait_for_job(job, "completed", Duration::from_secs(30)).await;
        assert_eq!((attempts, codes), (1, 500), "job {job}");
        assert_eq!(r.entries_about("access_codes.generated", job).await, 1, "job {job}");
        let (status, body) = r.get(&r.b.base, &format!("/v1/jobs/{job}"), &token).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["result"]["generated"], 500);
    }
    r.verify().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_both_replicas_leave_one_chain_and_one_entry_per_answered_call() {
    let r = Replicas::start(&["--rate-limit-rest", "1000000"]).await;
    let token = r.mint(&[Ability::ProjectCreate, Ability::ProjectViewAny]).await;
    let mut tasks = Vec::new();
    for t in 0..64 {
        let (client, base, token) = (
            r.client.clone(),
            if t % 2 == 0 { r.a.base.clone() } else { r.b.base.clone() },
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut created = Vec::new();
            for n in 0..8 {
                let res = client
                    .post(format!("{base}/v1/projects"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("Writer {t}-{n}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status().as_u16(), 201);
                let rid = crate::durability::request_id(res.headers());
                let body: Value = res.json().await.unwrap();
                created.push((rid, body["data"]["id"].as_str().unwrap().to_owned()));
            }
            created
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        created.extend(t.await.unwrap());
    }
    assert_eq!(created.len(), 64 * 8);
    let mut conn = sqlx::AnyConnection::connect(&r.db.url).await.unwrap();
    let entries: Vec<(Option<String>, Option<String>)> =
        sqlx::query_as("SELECT request_id, subject_id FROM audit_log WHERE token_id = $1 AND event = 'create_project'")
            .bind(token_id(&token))
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let entries: HashSet<(String, String)> = entries.into_iter().map(|(r, s)| (r.unwrap(), s.unwrap())).collect();
    assert_eq!(entries.len(), created.len(), "one entry per answered call");
    for c in &created {
        assert!(entries.contains(c), "{c:?} has no entry");
    }
    let projects: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE name LIKE 'Writer %'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(projects, 64 * 8);
    r.verify().await;
}

/// Holds `LOCK TABLE access_codes` in a transaction of its own: a job that has claimed its work
/// stops at its first insert, running, until the lock is let go.
async fn hold_access_codes(url: &str) -> sqlx::AnyConnection {
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    conn.execute("BEGIN").await.unwrap();
    conn.execute("LOCK TABLE access_codes IN EXCLUSIVE MODE").await.unwrap();
    conn
}

/// Which replica logged that it claimed `job` (`0` for a, `1` for b), waiting up to 10 s.
async fn claimed_by(r: &Replicas, job: &str) -> usize {
    let line = format!("job_id={job}");
    for _ in 0..200 {
        for (i, s) in [&r.a, &r.b].into_iter().enumerate() {
            if s.stderr()
                .lines()
                .any(|l| l.contains("job claimed") && l.contains(&line))
            {
                return i;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no replica claimed job {job}:\n{}\n{}", r.a.stderr(), r.b.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_load_and_mid_job_loses_nothing_and_the_other_finishes_the_job() {
    let mut r = Replicas::start(&["--rate-limit-rest", "1000000"]).await;
    let load_token = mint_project_token_in(&r).await;
    let (plan, code_token) = r.plan_and_code_token().await;
    let lock = hold_access_codes(&r.db.url).await;
    let job = r.start_job(&r.a.base, &plan, &code_token, 1000).await;
    r.wait_for_job(&job, "running", Duration::from_secs(10)).await;
    let victim = claimed_by(&r, &job).await;
    let bases = [r.a.base.clone(), r.b.base.clone()];
    let (victim_server, survivor) = if victim == 0 {
        (&mut r.a, bases[1].clone())
    } else {
        (&mut r.b, bases[0].clone())
    };
    let heard: Vec<Heard> = load_then_kill_one(victim_server, &bases, &r.client, &load_token).await;
    lock.close().await.unwrap();

    // The survivor takes the job over once the dead replica's lease runs out, and runs it once.
    let (_, attempts, codes) = r.wait_for_job(&job, "completed", Duration::from_secs(60)).await;
    assert_eq!((attempts, codes), (2, 1000));
    assert_eq!(r.entries_about("access_codes.generated", &job).await, 1);
    let (status, body) = r.get(&survivor, &format!("/v1/jobs/{job}"), &code_token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["status"], "completed");

    for h in &heard {
        assert!(matches!(h.status, 200 | 201), "{h:?}");
    }
    let mut conn = sqlx::AnyConnection::connect(&r.db.url).await.unwrap();
    let entries: Vec<Entry> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE token_id = $1 AND actor_kind = 'api_token' ORDER BY seq"
    )))
    .bind(token_id(&load_token))
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let projects: Vec<(String, String)> = sqlx::query_as("SELECT id, name FROM projects WHERE name LIKE 'Crash %'")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert_every_answer_kept(&heard, &entries);
    assert_every_change_has_its_entry(&entries, &projects);
    r.verify().await;
    // The survivor kept serving throughout.
    assert_eq!(r.get(&survivor, "/v1/me", &load_token).await.0, 200);
}

async fn mint_project_token_in(r: &Replicas) -> String {
    r.mint(&[
        Ability::ProjectViewAny,
        Ability::ProjectView,
        Ability::ProjectCreate,
        Ability::ProjectUpdate,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_calls_in_flight_and_hands_a_running_job_to_the_other_replica() {
    let mut r = Replicas::start(&["--rate-limit-rest", "1000000"]).await;
    let (plan, code_token) = r.plan_and_code_token().await;
    let lock = hold_access_codes(&r.db.url).await;
    let job = r.start_job(&r.a.base, &plan, &code_token, 1000).await;
    r.wait_for_job(&job, "running", Duration::from_secs(10)).await;
    let stopping = claimed_by(&r, &job).await;
    let survivor = if stopping == 0 {
        r.b.base.clone()
    } else {
        r.a.base.clone()
    };
    let stopping_base = if stopping == 0 {
        r.a.base.clone()
    } else {
        r.b.base.clone()
    };

    // Writers on the stopping replica; SIGTERM once 32 calls are answered.
    let token = r.mint(&[Ability::ProjectCreate]).await;
    let going = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (client, base, token, going) = (r.client.clone(), stopping_base.clone(), token.clone(), going.clone());
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            for n in 0.. {
                let sent = client
                    .post(format!("{base}/v1/projects"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("Term {t}-{n}")}))
                    .send()
                    .await;
                // Refused connections once the listener is closed: the load ends.
                let Ok(res) = sent else { break };
                let status = res.status().as_u16();
                answered.push((status, crate::durability::request_id(res.headers())));
                going.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            answered
        }));
    }
    for _ in 0..1200 {
        if going.load(std::sync::atomic::Ordering::SeqCst) >= 32 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let server = if stopping == 0 { &mut r.a } else { &mut r.b };
    let term = {
        let server: &mut Served = server;
        let releaser = tokio::spawn(async move {
            // The job's worker is inside a chunk: it stops after it, when the lock goes.
            tokio::time::sleep(Duration::from_millis(300)).await;
            lock.close().await.unwrap();
        });
        let exited = server.terminate().await;
        releaser.await.unwrap();
        exited
    };
    assert!(term, "SIGTERM did not end the process cleanly:\n{}", server.stderr());
    let mut answered = Vec::new();
    for t in tasks {
        answered.extend(t.await.unwrap());
    }
    assert!(
        answered.len() >= 32,
        "{} calls answered before the stop",
        answered.len()
    );
    assert!(answered.iter().all(|(s, _)| *s == 201), "{answered:?}");
    // Every call whose entry committed got its answer: none was cut off by the stop.
    let mut conn = sqlx::AnyConnection::connect(&r.db.url).await.unwrap();
    let entries: Vec<Option<String>> =
        sqlx::query_scalar("SELECT request_id FROM audit_log WHERE token_id = $1 AND event = 'create_project'")
            .bind(token_id(&token))
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let answered_ids: HashSet<&str> = answered.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(entries.len(), answered.len(), "entries of calls never answered");
    for e in &entries {
        assert!(answered_ids.contains(e.as_deref().unwrap()), "{e:?} was not answered");
    }
    assert!(
        server.stderr().contains("job put back"),
        "the stopping replica did not hand its job back:\n{}",
        server.stderr()
    );

    // The other replica runs the job, as a first attempt (a stop is not a failure), once.
    let (_, attempts, codes) = r.wait_for_job(&job, "completed", Duration::from_secs(30)).await;
    assert_eq!((attempts, codes), (1, 1000));
    assert_eq!(r.entries_about("access_codes.generated", &job).await, 1);
    assert_eq!(r.get(&survivor, &format!("/v1/jobs/{job}"), &code_token).await.0, 200);
    r.verify().await;
}
