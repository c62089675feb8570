//! Group commit: calls that finish together share one write transaction and one commit (one
//! fsync). A read runs its body in a read transaction of its own and hands its entry here;
//! refusals hand theirs here too; a write hands its whole body here. One writer task per process
//! takes everything waiting, takes the chain's lock, and then:
//!
//! - re-checks each reader under the lock (a caller refused now gets its refusal entry instead),
//! - runs each write in a savepoint of the shared transaction — its caller re-checked first, then
//!   its body; a write that fails rolls back to its savepoint alone and leaves its `failed` entry,
//! - appends every entry in order with one head update, commits once, then answers each caller.
//!
//! Nothing is answered before the commit that holds its entry, and a write commits with its
//! entry or not at all. A revocation commits with an entry of its own: a batch that commits after
//! it re-checks and refuses the token; a batch that committed before it was serialised before it.
//!
//! Writes in one batch run one after another; once they have taken [`WRITE_BUDGET`], the rest
//! wait for the next batch, so a read's entry never waits behind more than one batch of writes.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::{Notify, mpsc, oneshot};

use super::caller::Caller;
use super::output::{BoxFuture, Done};
use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::role::Role;
use crate::store::{Db, Tx, audit};

/// Most calls one batch takes from the queue.
const MAX_BATCH: usize = 512;
/// How many calls may wait for the writer before callers wait to hand theirs in.
const QUEUE: usize = 8192;
/// How long one batch's writes may run before the rest move to the next batch.
const WRITE_BUDGET: Duration = Duration::from_millis(10);

/// A write's body as the batch runs it: given the shared transaction (inside a savepoint) and
/// the call's entry, it hands both back with what to answer.
pub type WriteJob = Box<dyn FnOnce(Tx, AuditDraft) -> BoxFuture<'static, (Tx, Written)> + Send>;

/// What a write did: the entry to append (its success, or its refusal or failure) and the answer.
pub struct Written {
    pub entry: AuditDraft,
    pub answer: Result<Done>,
    /// The job worker should look for work once this commits.
    pub wakes_jobs: bool,
    /// Entries recorded with it, after it (an approval that expired, found by the call; the
    /// approvals a revocation voided).
    pub also: Vec<AuditDraft>,
    /// Commit what the write did although its answer is an error: only the approval gate's
    /// own records (a held call's request), never a body's half-done work.
    pub keep: bool,
}

impl Written {
    /// A write's answer and its entry, with nothing else to record.
    pub fn answer(entry: AuditDraft, answer: Result<Done>, wakes_jobs: bool) -> Self {
        Written {
            entry,
            answer,
            wakes_jobs,
            also: Vec::new(),
            keep: false,
        }
    }
}

/// A caller to re-check under the chain's lock, and the abilities its call (or page) needs.
/// Boxed: a caller (with its request's context) is large beside the rest of a pending entry.
type Check = Box<(Caller, Vec<Ability>)>;

/// A read's or a refusal's entry waiting for a batch.
struct PendingEntry {
    entry: AuditDraft,
    /// The caller to re-check under the chain's lock (a refusal's entry has nothing to check).
    check: Option<Check>,
    reply: oneshot::Sender<Result<()>>,
}

/// A write waiting for a batch.
struct PendingWrite {
    entry: AuditDraft,
    job: WriteJob,
    reply: oneshot::Sender<Result<Done>>,
}

enum Pending {
    Entry(PendingEntry),
    Write(PendingWrite),
}

/// How many batches, entries and writes this process has committed (for benchmarks and
/// operators).
#[derive(Debug, Default)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
    pub writes: AtomicU64,
    /// The server's metrics, when it keeps them (batch sizes, commit times).
    pub metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

#[derive(Clone, Debug)]
pub struct Batcher {
    queue: mpsc::Sender<Pending>,
    pub stats: Arc<BatchStats>,
}

impl Batcher {
    /// Starts the writer task, which ends when the last `Batcher` clone is dropped. `jobs` is
    /// woken when a committed write queued a job.
    pub fn start(db: Db, jobs: Arc<Notify>) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(BatchStats::default());
        tokio::spawn(write_batches(db, rx, stats.clone(), jobs));
        Batcher { queue, stats }
    }

    /// Reports each batch's size and commit time to `metrics`.
    pub fn with_metrics(self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let _ = self.stats.metrics.set(metrics);
        self
    }

    /// Calls waiting for the writer now.
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    /// Appends a successful read's entry once its caller is still allowed; the error is the
    /// refusal (already audited) when the token was revoked, the owner removed, or the role
    /// lowered since authentication.
    pub async fn append_checked(&self, p: &Caller, ability: Option<Ability>, entry: AuditDraft) -> Result<()> {
        self.append_checked_all(p, ability.into_iter().collect(), entry).await
    }

    /// [`Batcher::append_checked`] for an entry that stands for several reads: the caller's role
    /// now must hold every one of `abilities`.
    pub async fn append_checked_all(&self, p: &Caller, abilities: Vec<Ability>, entry: AuditDraft) -> Result<()> {
        self.append_entry(entry, Some(Box::new((p.clone(), abilities)))).await
    }

    /// Appends an entry as it is (a refusal's).
    pub async fn append(&self, entry: AuditDraft) -> Result<()> {
        self.append_entry(entry, None).await
    }

    async fn append_entry(&self, entry: AuditDraft, check: Option<Check>) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Pending::Entry(PendingEntry { entry, check, reply })).await?;
        answer.await.map_err(|_| dropped())?
    }

    /// Runs a write in the next batch and answers once that batch has committed (or failed).
    pub async fn write(&self, entry: AuditDraft, job: WriteJob) -> Result<Done> {
        let (reply, answer) = oneshot::channel();
        self.send(Pending::Write(PendingWrite { entry, job, reply })).await?;
        answer.await.map_err(|_| dropped())?
    }

    async fn send(&self, pending: Pending) -> Result<()> {
        self.queue
            .send(pending)
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the audit writer has stopped")))
    }
}

/// A call whose batch was abandoned (a panic in a body): nothing of that batch committed.
fn dropped() -> Error {
    Error::Internal(anyhow::anyhow!("the audit batch holding this call was abandoned"))
}

async fn write_batches(db: Db, mut queue: mpsc::Receiver<Pending>, stats: Arc<BatchStats>, jobs: Arc<Notify>) {
    let mut incoming = Vec::with_capacity(MAX_BATCH);
    let mut writes: VecDeque<PendingWrite> = VecDeque::new();
    loop {
        if writes.is_empty() {
            if queue.recv_many(&mut incoming, MAX_BATCH).await == 0 {
                return;
            }
        } else {
            // Writes carried over: take what else is waiting without waiting for more.
            while incoming.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(p) => incoming.push(p),
                    Err(_) => break,
                }
            }
        }
        let mut entries = Vec::with_capacity(incoming.len());
        for pending in incoming.drain(..) {
            match pending {
                Pending::Entry(e) => entries.push(e),
                Pending::Write(w) => writes.push_back(w),
            }
        }
        // Each batch runs in a task of its own: a panic in a write's body abandons that batch
        // (its transaction rolls back, its callers get an internal error), not the writer.
        let batch = tokio::spawn(run_batch(db.clone(), entries, writes, stats.clone(), jobs.clone()));
        writes = match batch.await {
            Ok(left) => left,
            Err(e) => {
                tracing::error!(error = %e, "an audit batch panicked; its calls were answered with an error");
                VecDeque::new()
            }
        };
    }
}

/// A write that ran, waiting for its batch to commit.
struct RanWrite {
    reply: oneshot::Sender<Result<Done>>,
    answer: Result<Done>,
    wakes_jobs: bool,
}

/// Commits one batch and answers its callers; returns the writes left for the next batch.
async fn run_batch(
    db: Db,
    entries: Vec<PendingEntry>,
    mut writes: VecDeque<PendingWrite>,
    stats: Arc<BatchStats>,
    jobs: Arc<Notify>,
) -> VecDeque<PendingWrite> {
    let mut ran = Vec::new();
    let mut replies = Vec::with_capacity(entries.len());
    let mut drafts = Vec::with_capacity(entries.len());
    for pending in entries {
        replies.push(pending.reply);
        drafts.push((pending.entry, pending.check));
    }
    let count = (drafts.len() + writes.len()) as u64;
    let started = std::time::Instant::now();
    let committed = commit(&db, drafts, &mut writes, &mut ran, WRITE_BUDGET).await;
    if let Some(m) = stats.metrics.get() {
        let entries = committed.as_ref().map_or(0, |a| a.len() + ran.len());
        m.audit_batch(entries, started.elapsed(), committed.is_ok());
    }
    match committed {
        Ok(answers) => {
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats
                .entries
                .fetch_add((answers.len() + ran.len()) as u64, Ordering::Relaxed);
            stats.writes.fetch_add(ran.len() as u64, Ordering::Relaxed);
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
            let mut wake = false;
            for w in ran {
                wake |= w.wakes_jobs && w.answer.is_ok();
                let _ = w.reply.send(w.answer);
            }
            if wake {
                jobs.notify_one();
            }
        }
        Err(e) => {
            // Nothing of this batch committed: every caller gets an internal error, and none of
            // them is answered as if its entry (or its write) existed. The writes it had not run
            // yet fail too: carried to the next batch, a write whose batches fail before it runs
            // (the database gone, or read-only) would be retried without end, its caller
            // waiting until it gives up.
            tracing::error!(error = ?e, calls = count, "an audit batch failed");
            let failed = || Error::Internal(anyhow::anyhow!("the audit batch failed"));
            for reply in replies {
                let _ = reply.send(Err(failed()));
            }
            for w in ran {
                let _ = w.reply.send(Err(failed()));
            }
            for w in writes.drain(..) {
                let _ = w.reply.send(Err(failed()));
            }
        }
    }
    writes
}

/// One transaction for the whole batch: the chain's lock first; then each reader re-checked under
/// it (once per distinct caller) and its entry — or, for a caller refused now, its refusal —
/// kept; then the writes, each in a savepoint, until the budget is spent; then every entry
/// appended in order with one head update, and one commit.
async fn commit(
    db: &Db,
    drafts: Vec<(AuditDraft, Option<Check>)>,
    writes: &mut VecDeque<PendingWrite>,
    ran: &mut Vec<RanWrite>,
    budget: Duration,
) -> std::result::Result<Vec<Result<()>>, Error> {
    let mut tx = db.begin_write().await?;
    let head = audit::lock_head(&mut tx).await?;
    let mut checked: HashMap<CallerKey, Checked> = HashMap::new();
    let mut answers = Vec::with_capacity(drafts.len());
    let mut entries = Vec::with_capacity(drafts.len() + writes.len());
    for (mut entry, check) in drafts {
        let answer = match check.map(|c| *c) {
            None => Ok(()),
            Some((caller, abilities)) => {
                let member = caller.member();
                let key = (
                    caller.token_id().map(str::to_owned),
                    member.map(|m| m.team_id.to_string()).unwrap_or_default(),
                    member.map(|m| m.user_id.to_string()).unwrap_or_default(),
                );
                let state = match checked.get(&key) {
                    Some(state) => state.clone(),
                    None => {
                        let state = check_caller(&mut tx, &caller).await?;
                        checked.insert(key, state.clone());
                        state
                    }
                };
                refusal(&caller, &abilities, state, &mut entry)
            }
        };
        answers.push(answer);
        entries.push(entry);
    }
    let started = Instant::now();
    while let Some(write) = writes.pop_front() {
        let PendingWrite { mut entry, job, reply } = write;
        let written = if reply.is_closed() {
            // The caller gave up (its request timed out) before the body ran: it is not run,
            // and the entry says so.
            entry.properties["abandoned"] = json!(true);
            let e = Error::Internal(anyhow::anyhow!("abandoned before it ran"));
            super::authz::mark_refused(&mut entry, &e);
            Written::answer(entry, Err(e), false)
        } else {
            sqlx::query("SAVEPOINT batch_write").execute(&mut *tx).await?;
            let (back, written) = job(tx, entry).await;
            tx = back;
            if written.answer.is_err() && !written.keep {
                sqlx::query("ROLLBACK TO SAVEPOINT batch_write")
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("RELEASE SAVEPOINT batch_write").execute(&mut *tx).await?;
            written
        };
        entries.push(written.entry);
        entries.extend(written.also);
        ran.push(RanWrite {
            reply,
            answer: written.answer,
            wakes_jobs: written.wakes_jobs,
        });
        if started.elapsed() >= budget {
            break;
        }
    }
    audit::append_after(&mut tx, head, entries).await?;
    tx.commit().await?;
    Ok(answers)
}

/// A reader's answer given what the re-check found; a refusal rewrites the entry to say why.
fn refusal(caller: &Caller, abilities: &[Ability], state: Checked, entry: &mut AuditDraft) -> Result<()> {
    let (e, reason) = match state {
        Checked::Refused(reason) => (Error::AuthenticationRequired, Some(reason)),
        Checked::Role(role) => match abilities.iter().find(|a| !caller.can_as(role, **a)) {
            Some(a) => (Error::missing(*a), None),
            None => return Ok(()),
        },
    };
    if let Some(reason) = reason {
        if entry.event == crate::domain::audit::PAGE_VIEW && entry.properties.is_object() {
            // A page view keeps which page was refused.
            entry.properties["reason"] = json!(reason);
        } else {
            entry.properties = json!({ "reason": reason });
        }
    }
    super::authz::mark_refused(entry, &e);
    Err(e)
}

type CallerKey = (Option<String>, String, String);

/// What the re-check found for one caller: refused (with the reason), or the role held now.
#[derive(Clone)]
enum Checked {
    Refused(&'static str),
    Role(Role),
}

async fn check_caller(tx: &mut Tx, p: &Caller) -> std::result::Result<Checked, Error> {
    match super::authz::current_role(tx, p).await {
        Ok(role) => Ok(Checked::Role(role)),
        Err((Error::AuthenticationRequired, Some(reason))) => Ok(Checked::Refused(reason)),
        Err((e, _)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::core::op::JsonOutput;
    use sqlx::{Connection, Executor};

    /// A fresh database, removed when dropped: a SQLite file, or a new PostgreSQL database when
    /// `MEMBERPASS_TEST_POSTGRES_URL` names a server (as `.ci/run` does).
    struct Fresh {
        db: Db,
        /// The SQLite directory, or the PostgreSQL server's admin URL and the database's name.
        backing: std::result::Result<std::path::PathBuf, (String, String)>,
    }

    impl Fresh {
        async fn new() -> Fresh {
            sqlx::any::install_default_drivers();
            let (url, backing) = match std::env::var("MEMBERPASS_TEST_POSTGRES_URL") {
                Ok(admin) if !admin.is_empty() => {
                    let name = format!("mp_unit_{}", uuid::Uuid::now_v7().simple());
                    let mut conn = sqlx::AnyConnection::connect(&admin).await.unwrap();
                    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                        .await
                        .unwrap();
                    let url = format!("{}/{name}", admin.rsplit_once('/').unwrap().0);
                    (url, Err((admin, name)))
                }
                _ => {
                    let dir = std::env::temp_dir().join(format!("memberpass-unit-{}", uuid::Uuid::now_v7().simple()));
                    std::fs::create_dir_all(&dir).unwrap();
                    (format!("sqlite://{}", dir.join("batch.db").display()), Ok(dir))
                }
            };
            let db = Db::connect(&url).await.unwrap();
            db.migrate().await.unwrap();
            Fresh { db, backing }
        }
    }

    impl Drop for Fresh {
        fn drop(&mut self) {
            match &self.backing {
                Ok(dir) => {
                    let _ = std::fs::remove_dir_all(dir);
                }
                Err((admin, name)) => crate::store::drop_database_blocking(admin.clone(), name.clone()),
            }
        }
    }

    /// A write that adds a user, then (when told to) fails: in the body (`Err` after the insert)
    /// or in the database (a second insert with the same email, which on PostgreSQL aborts the
    /// whole transaction until its savepoint is rolled back).
    fn add_user(email: &'static str, fail: Option<&'static str>) -> (PendingWrite, oneshot::Receiver<Result<Done>>) {
        let job: WriteJob = Box::new(move |mut tx, entry| {
            Box::pin(async move {
                let insert = |id: String| {
                    sqlx::query("INSERT INTO users (id, email, name, created_at) VALUES ($1, $2, 'n', 0)")
                        .bind(id)
                        .bind(email)
                };
                let mut result = insert(crate::domain::ids::new_id())
                    .execute(&mut *tx)
                    .await
                    .map(|_| ())
                    .map_err(Error::from);
                result = match (result, fail) {
                    (Ok(()), Some("body")) => Err(Error::Conflict("the body failed after its insert".into())),
                    (Ok(()), Some("database")) => insert(crate::domain::ids::new_id())
                        .execute(&mut *tx)
                        .await
                        .map(|_| ())
                        .map_err(Error::from),
                    (r, _) => r,
                };
                let mut entry = entry;
                let answer = result.map(|()| Done {
                    output: JsonOutput {
                        data: json!(email),
                        meta: None,
                    },
                    replayed: false,
                });
                if let Err(e) = &answer {
                    super::super::authz::mark_refused(&mut entry, e);
                }
                (tx, Written::answer(entry, answer, false))
            })
        });
        let (reply, answer) = oneshot::channel();
        let entry = AuditDraft::system("user.added", None).subject("user", email);
        (PendingWrite { entry, job, reply }, answer)
    }

    async fn outcomes(db: &Db) -> Vec<(String, String)> {
        sqlx::query_as("SELECT subject_id, outcome FROM audit_log ORDER BY seq")
            .fetch_all(db.pool())
            .await
            .unwrap()
    }

    async fn emails(db: &Db) -> Vec<String> {
        sqlx::query_scalar("SELECT email FROM users ORDER BY email")
            .fetch_all(db.pool())
            .await
            .unwrap()
    }

    async fn chain_verifies(db: &Db) {
        let mut conn = db.pool().acquire().await.unwrap();
        let v = audit::verify(&mut conn).await.unwrap();
        assert!(v.ok, "{:?}", v.problems);
    }

    #[tokio::test]
    async fn a_failing_write_rolls_back_alone_and_leaves_its_failed_entry() {
        let fresh = Fresh::new().await;
        let db = fresh.db.clone();
        let mut writes = VecDeque::new();
        let mut answers = Vec::new();
        for (email, fail) in [
            ("a@x", None),
            ("b@x", Some("body")),
            ("c@x", None),
            ("d@x", Some("database")),
            ("e@x", None),
        ] {
            let (w, a) = add_user(email, fail);
            writes.push_back(w);
            answers.push(a);
        }
        let mut ran = Vec::new();
        let reads = vec![(AuditDraft::system("read", None).subject("user", "r@x"), None)];
        // No time budget: however slow the machine, the five share one batch.
        commit(&db, reads, &mut writes, &mut ran, Duration::MAX).await.unwrap();
        assert!(writes.is_empty(), "all five fit in one batch");
        let ok: Vec<bool> = ran.iter().map(|w| w.answer.is_ok()).collect();
        assert_eq!(ok, [true, false, true, false, true]);
        assert_eq!(emails(&db).await, ["a@x", "c@x", "e@x"]);
        let seen = outcomes(&db).await;
        let expected = [
            ("r@x", "success"),
            ("a@x", "success"),
            ("b@x", "failed"),
            ("c@x", "success"),
            ("d@x", "failed"),
            ("e@x", "success"),
        ];
        let expected: Vec<(String, String)> = expected.iter().map(|(s, o)| (s.to_string(), o.to_string())).collect();
        assert_eq!(seen, expected);
        chain_verifies(&db).await;
        drop(answers);
    }

    #[tokio::test]
    async fn an_entry_holding_nul_in_every_text_field_commits_beside_the_others() {
        let fresh = Fresh::new().await;
        let db = fresh.db.clone();
        let batcher = Batcher::start(db.clone(), Arc::default());
        let nul = "x\u{0}y".to_owned();
        let mut poison = AuditDraft::system("read\u{0}", Some(nul.clone())).subject("user\u{0}", nul.clone());
        poison.project_id = Some(nul.clone());
        poison.causer_id = Some(nul.clone());
        poison.token_id = Some(nul.clone());
        poison.ctx = crate::domain::audit::RequestCtx {
            request_id: Some(nul.clone()),
            ip: Some(nul.clone()),
            user_agent: Some(nul.clone()),
            client: Some(nul.clone()),
        };
        poison.properties = json!({ nul.clone(): nul.clone() });
        let calls = [poison, AuditDraft::system("read", None).subject("user", "other")]
            .into_iter()
            .map(|entry| {
                let b = batcher.clone();
                tokio::spawn(async move { b.append(entry).await })
            })
            .collect::<Vec<_>>();
        for call in calls {
            call.await.unwrap().expect("every entry commits");
        }
        let stored: Vec<(String, String, String)> =
            sqlx::query_as("SELECT event, COALESCE(client, ''), subject_id FROM audit_log ORDER BY seq")
                .fetch_all(db.pool())
                .await
                .unwrap();
        assert_eq!(stored.len(), 2);
        assert!(
            stored
                .iter()
                .all(|(e, c, s)| ![e, c, s].iter().any(|t| t.contains('\0'))),
            "{stored:?}"
        );
        chain_verifies(&db).await;
    }

    #[tokio::test]
    async fn a_batch_adds_each_tokens_calls_to_its_day_once_whatever_their_number() {
        use crate::domain::audit::{ActorKind, Outcome};
        let fresh = Fresh::new().await;
        let db = fresh.db.clone();
        let call = |token: &str, actor: ActorKind, outcome: Outcome, write: bool| {
            let mut e = AuditDraft::system("update_project", Some("team".into())).subject("project", "p");
            e.actor_kind = actor;
            e.token_id = Some(token.to_owned());
            e.outcome = outcome;
            e.write = write;
            (e, None)
        };
        let mut drafts = Vec::new();
        for _ in 0..40 {
            drafts.push(call("busy", ActorKind::ApiToken, Outcome::Success, false));
        }
        drafts.push(call("busy", ActorKind::Mcp, Outcome::Success, true));
        drafts.push(call("busy", ActorKind::ApiToken, Outcome::Denied, true));
        drafts.push(call("quiet", ActorKind::ApiToken, Outcome::Failed, false));
        // Not a use: a person's call naming the token, the server's, and a failed authentication;
        // and an id no token has (made storable) commits beside the rest.
        drafts.push(call("quiet", ActorKind::Human, Outcome::Success, true));
        drafts.push(call("quiet", ActorKind::System, Outcome::Success, false));
        let mut failed = call("quiet", ActorKind::ApiToken, Outcome::Denied, false);
        failed.0.event = "auth.failed".into();
        drafts.push(failed);
        drafts.push(call("x\u{0}y", ActorKind::ApiToken, Outcome::Success, false));
        commit(&db, drafts, &mut VecDeque::new(), &mut Vec::new(), Duration::MAX)
            .await
            .unwrap();
        // A second batch adds to the same day.
        let again = vec![call("busy", ActorKind::ApiToken, Outcome::Success, true)];
        commit(&db, again, &mut VecDeque::new(), &mut Vec::new(), Duration::MAX)
            .await
            .unwrap();
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT token_id, day, successes, refusals, writes FROM token_usage_daily ORDER BY token_id",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let today = crate::domain::usage::day_of(crate::store::now_ms());
        let rows: Vec<_> = rows
            .into_iter()
            .map(|(t, d, s, r, w)| (t, d - today, s, r, w))
            .collect();
        assert_eq!(
            rows,
            [
                ("busy".to_owned(), 0, 42, 1, 2),
                ("quiet".to_owned(), 0, 0, 1, 0),
                ("x\u{fffd}y".to_owned(), 0, 1, 0, 0)
            ]
        );
        chain_verifies(&db).await;
    }

    #[tokio::test]
    async fn a_write_whose_caller_left_is_not_run_and_says_so() {
        let fresh = Fresh::new().await;
        let db = fresh.db.clone();
        let (w, answer) = add_user("gone@x", None);
        drop(answer);
        let mut writes = VecDeque::from([w]);
        let mut ran = Vec::new();
        commit(&db, Vec::new(), &mut writes, &mut ran, Duration::MAX)
            .await
            .unwrap();
        assert!(emails(&db).await.is_empty());
        let props: String = sqlx::query_scalar("SELECT properties FROM audit_log")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert!(props.contains("\"abandoned\":true"), "{props}");
        assert_eq!(outcomes(&db).await, [("gone@x".to_owned(), "failed".to_owned())]);
    }

    #[tokio::test]
    async fn every_call_of_a_batch_is_answered_through_the_writer() {
        let fresh = Fresh::new().await;
        let db = fresh.db.clone();
        let batcher = Batcher::start(db.clone(), Arc::default());
        let mut calls = Vec::new();
        for i in 0..40 {
            let b = batcher.clone();
            calls.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    let email: &'static str = Box::leak(format!("u{i}@x").into_boxed_str());
                    let (w, _) = add_user(email, (i % 4 == 0).then_some("body"));
                    b.write(w.entry, w.job).await.map(|_| ())
                } else {
                    b.append(AuditDraft::system("read", None).subject("user", format!("r{i}")))
                        .await
                }
            }));
        }
        let mut failed = 0;
        for c in calls {
            failed += c.await.unwrap().is_err() as usize;
        }
        assert_eq!(failed, 10, "the writes told to fail, and only they");
        assert_eq!(emails(&db).await.len(), 10);
        assert_eq!(outcomes(&db).await.len(), 40, "one entry per call");
        chain_verifies(&db).await;
        let writes = batcher.stats.writes.load(Ordering::Relaxed);
        assert_eq!(writes, 20);
    }

    #[tokio::test]
    async fn a_read_connection_cannot_write() {
        let fresh = Fresh::new().await;
        let mut read = fresh.db.begin_read().await.unwrap();
        let write = sqlx::query("INSERT INTO users (id, email, name, created_at) VALUES ('u', 'u@x', 'n', 0)")
            .execute(&mut *read)
            .await;
        assert!(write.is_err(), "a write through a read connection went through");
        drop(read);
        assert!(emails(&fresh.db).await.is_empty());
    }
}
