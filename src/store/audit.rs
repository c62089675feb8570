//! The hash-chained audit log. `append` runs inside the caller's transaction, so an entry and the
//! change it describes commit together.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, FromRow};

use super::{Conn, Db, now_ms, usage};
use crate::domain::audit::{AuditDraft, redact};
use crate::domain::ids::new_id;
use crate::domain::text;
use crate::domain::usage::{Tally, day_of};

/// Longest id, event, address or request id an entry keeps (ours are far shorter).
const ID_MAX: usize = 200;
/// Longest `user_agent` or `client` an entry keeps.
pub const LABEL_MAX: usize = 300;

/// A stored entry, in the order its hash covers.
#[derive(Clone, Debug, FromRow, Serialize)]
pub struct AuditRow {
    pub seq: i64,
    pub id: String,
    pub created_at: i64,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub actor_kind: String,
    pub causer_type: Option<String>,
    pub causer_id: Option<String>,
    pub token_id: Option<String>,
    pub event: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub properties: String,
    pub outcome: String,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub client: Option<String>,
    #[serde(skip)]
    pub prev_hash: String,
    #[serde(skip)]
    pub hash: String,
}

impl AuditRow {
    /// SHA-256 over the previous hash and every field but `hash` itself.
    #[allow(clippy::expect_used, reason = "a struct of strings and integers always serialises")]
    pub fn compute_hash(&self) -> String {
        let body = serde_json::to_string(self).expect("audit rows serialise");
        let mut h = Sha256::new();
        h.update(self.prev_hash.as_bytes());
        h.update(b"\n");
        h.update(body.as_bytes());
        hex::encode(h.finalize())
    }

    /// The API shape of SPEC §7.
    pub fn view(&self) -> AuditView {
        AuditView {
            id: self.id.clone(),
            created_at: crate::domain::time::rfc3339(self.created_at),
            team_id: self.team_id.clone(),
            project_id: self.project_id.clone(),
            actor_kind: self.actor_kind.clone(),
            causer_type: self.causer_type.clone(),
            causer_id: self.causer_id.clone(),
            token_id: self.token_id.clone(),
            event: self.event.clone(),
            subject_type: self.subject_type.clone(),
            subject_id: self.subject_id.clone(),
            properties: serde_json::from_str::<Value>(&self.properties).unwrap_or(Value::Null),
            outcome: self.outcome.clone(),
            error_code: self.error_code.clone(),
            request_id: self.request_id.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            client: self.client.clone(),
        }
    }

    /// [`AuditRow::view`] as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).unwrap_or_default()
    }
}

/// An entry as the API shows it (SPEC §7): no chain fields.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct AuditView {
    pub id: String,
    #[schemars(with = "crate::domain::time::Rfc3339Time")]
    pub created_at: String,
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    #[schemars(with = "crate::domain::kinds::ActorKind")]
    pub actor_kind: String,
    pub causer_type: Option<String>,
    pub causer_id: Option<String>,
    pub token_id: Option<String>,
    pub event: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    /// What the entry records about the call (its arguments, changes, reasons).
    pub properties: Value,
    #[schemars(with = "crate::domain::kinds::Outcome")]
    pub outcome: String,
    pub error_code: Option<String>,
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub client: Option<String>,
}

const COLUMNS: &str = "seq, id, created_at, team_id, project_id, actor_kind, causer_type, causer_id, \
     token_id, event, subject_type, subject_id, properties, outcome, error_code, request_id, ip, \
     user_agent, client, prev_hash, hash";

/// Appends one entry to the chain. Must run inside a write transaction.
pub async fn append(conn: &mut Conn, draft: AuditDraft) -> sqlx::Result<AuditRow> {
    let head = lock_head(conn).await?;
    let mut rows = append_after(conn, head, vec![draft]).await?;
    rows.pop()
        .ok_or_else(|| sqlx::Error::Protocol("the append returned no row".into()))
}

/// The chain's tip: the last entry's `seq`, `hash` and `created_at`.
#[derive(Clone, Debug, FromRow)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
    pub created_at: i64,
}

impl Head {
    /// The head once `row` is appended.
    pub fn after(row: &AuditRow) -> Head {
        Head {
            seq: row.seq,
            hash: row.hash.clone(),
            created_at: row.created_at,
        }
    }
}

/// Takes the chain's lock (the head row; appends from every process queue here) and returns the
/// tip. Must run inside a write transaction.
pub async fn lock_head(conn: &mut Conn) -> sqlx::Result<Head> {
    sqlx::query_as("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash, created_at")
        .fetch_one(&mut *conn)
        .await
}

/// Rows per multi-row INSERT (21 parameters each). Kept small enough that one statement stays
/// under about 16 KB: past that sqlx 0.9 writes it to PostgreSQL in pieces, and without
/// TCP_NODELAY (which 0.9.0 no longer sets) the last piece waits 40 ms for a delayed ACK.
const ROWS_PER_INSERT: usize = 16;

/// Appends entries after the `head` that [`lock_head`] returned, in order, chained in memory:
/// one INSERT per [`ROWS_PER_INSERT`] entries and one head update, whatever their number — and,
/// when some are calls of tokens, one upsert of those tokens' usage of the day
/// ([`crate::domain::usage`]), so every path that appends counts the same way.
pub async fn append_after(conn: &mut Conn, head: Head, drafts: Vec<AuditDraft>) -> sqlx::Result<Vec<AuditRow>> {
    append_after_at(conn, head, drafts, now_ms()).await
}

/// [`append_after`] with the entries stamped `created_at` instead of now: for seeding a log that
/// spans days (the bench's `--audit-entries`).
///
/// An entry is never dated before the one it follows: a time earlier than the head's (a clock
/// stepped back, or a replica whose clock is behind another's) is raised to the head's. So
/// `created_at` never decreases along the chain, which lets `GET /v1/activity` turn `since` and
/// `until` into bounds on `seq`, and `audit verify` checks it.
pub async fn append_after_at(
    conn: &mut Conn,
    head: Head,
    drafts: Vec<AuditDraft>,
    created_at: i64,
) -> sqlx::Result<Vec<AuditRow>> {
    let created_at = created_at.max(head.created_at);
    let Head {
        mut seq,
        hash: mut prev_hash,
        ..
    } = head;
    let mut rows = Vec::with_capacity(drafts.len());
    let mut used = usage::Added::default();
    for draft in drafts {
        seq += 1;
        let tally = Tally::of(&draft).map(|(_, t)| t);
        let row = AuditRow::chained(draft, seq, prev_hash, created_at);
        // Counted under the id as stored (made storable), which is the token's own for any
        // entry a token left.
        if let (Some(t), Some(token_id)) = (tally, &row.token_id) {
            used.add(token_id, row.team_id.as_deref().unwrap_or_default(), t);
        }
        prev_hash = row.hash.clone();
        rows.push(row);
    }
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        insert(conn, chunk).await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, created_at = $3 WHERE id = 1")
        .bind(seq)
        .bind(&prev_hash)
        .bind(created_at)
        .execute(&mut *conn)
        .await?;
    // The tokens' usage, with the entries it counts: one upsert per token in the batch (every
    // entry of a batch has the same `created_at`, so the same day).
    if !used.is_empty() {
        usage::add(conn, day_of(created_at), used).await?;
    }
    Ok(rows)
}

async fn insert(conn: &mut Conn, rows: &[AuditRow]) -> sqlx::Result<()> {
    let mut sql = String::from(
        "INSERT INTO audit_log (seq, id, created_at, team_id, project_id, actor_kind, causer_type, \
         causer_id, token_id, event, subject_type, subject_id, properties, outcome, error_code, \
         request_id, ip, user_agent, client, prev_hash, hash) VALUES ",
    );
    for i in 0..rows.len() {
        let n = i * 21;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for k in 1..=21 {
            if k > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(n + k).to_string());
        }
        sql.push(')');
    }
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in rows {
        query = query
            .bind(row.seq)
            .bind(&row.id)
            .bind(row.created_at)
            .bind(&row.team_id)
            .bind(&row.project_id)
            .bind(&row.actor_kind)
            .bind(&row.causer_type)
            .bind(&row.causer_id)
            .bind(&row.token_id)
            .bind(&row.event)
            .bind(&row.subject_type)
            .bind(&row.subject_id)
            .bind(&row.properties)
            .bind(&row.outcome)
            .bind(&row.error_code)
            .bind(&row.request_id)
            .bind(&row.ip)
            .bind(&row.user_agent)
            .bind(&row.client)
            .bind(&row.prev_hash)
            .bind(&row.hash);
    }
    query.execute(&mut *conn).await.map(|_| ())
}

impl AuditRow {
    /// The row a draft becomes at `seq`, after `prev_hash`: redacted, hashed.
    fn chained(draft: AuditDraft, seq: i64, prev_hash: String, created_at: i64) -> AuditRow {
        let mut properties = draft.properties;
        redact(&mut properties);
        let oauth = draft.oauth.map(|o| {
            (
                "oauth",
                serde_json::json!({"grant_id": o.grant_id, "client_id": o.client_id}),
            )
        });
        let marks = draft.marks.into_iter();
        for (key, value) in oauth.into_iter().map(|(k, v)| (k.to_owned(), v)).chain(marks) {
            match &mut properties {
                serde_json::Value::Object(m) => {
                    m.insert(key, value);
                }
                other => *other = serde_json::json!({"value": other.take(), key: value}),
            }
        }
        // Every text column as the database can store it and a reader can be shown it: whatever
        // a caller managed to put in a draft, one entry can never make the batch's INSERT fail
        // (PostgreSQL refuses NUL) and so fail every other caller of the batch with it.
        let text = |s: Option<String>, max| s.map(|s| text::into_storable(s, max));
        let mut row = AuditRow {
            seq,
            id: new_id(),
            created_at,
            team_id: text(draft.team_id, ID_MAX),
            project_id: text(draft.project_id, ID_MAX),
            actor_kind: draft.actor_kind.as_str().to_owned(),
            causer_type: draft.causer_id.as_ref().map(|_| "user".to_owned()),
            causer_id: text(draft.causer_id, ID_MAX),
            token_id: text(draft.token_id, ID_MAX),
            event: text::into_storable(draft.event, ID_MAX),
            subject_type: text(draft.subject_type, ID_MAX),
            subject_id: text(draft.subject_id, ID_MAX),
            // serde_json writes control characters as `\u` escapes: the text is plain ASCII there.
            properties: properties.to_string(),
            outcome: draft.outcome.as_str().to_owned(),
            error_code: draft.error_code.map(str::to_owned),
            request_id: text(draft.ctx.request_id, ID_MAX),
            ip: text(draft.ctx.ip, ID_MAX),
            user_agent: text(
                draft
                    .ctx
                    .user_agent
                    .map(|s| crate::domain::audit::redact_token_runs(&s)),
                LABEL_MAX,
            ),
            client: text(draft.ctx.client, LABEL_MAX),
            prev_hash,
            hash: String::new(),
        };
        row.hash = row.compute_hash();
        row
    }
}

/// Whether this process can write: a transaction that takes the audit chain's lock, then rolls
/// back. Every call writes an audit entry, so a database that cannot be written (a read-only file
/// or file system, a read-only PostgreSQL) cannot serve anything.
pub async fn check_writable(db: &Db) -> sqlx::Result<()> {
    let mut tx = db.begin_write().await?;
    lock_head(&mut tx).await?;
    tx.rollback().await
}

/// Filters of `GET /v1/activity` (all optional, ANDed).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub team_id: Option<String>,
    /// When set, only entries about these projects (project-scoped tokens).
    pub project_ids: Option<Vec<String>>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub causer_id: Option<String>,
    pub token_id: Option<String>,
    pub actor_kind: Option<String>,
    pub event: Option<String>,
    /// Entries of any event but this one (the dashboard's page views, hidden by default there).
    pub not_event: Option<String>,
    pub outcome: Option<String>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Only entries with `seq` below this (the cursor).
    pub before_seq: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// Above this many projects, a scoped listing filters with one `IN` list instead of one query arm
/// per project (SQLite allows 500 arms in a compound SELECT).
const PROJECT_ARMS_MAX: usize = 64;

/// Past every `seq`: the bound when no entry is as recent as a time filter.
const NO_SEQ: i64 = i64::MAX;

/// Newest first, at most `limit`.
pub async fn list(conn: &mut Conn, f: &AuditFilter, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    let mut filters = String::from("1 = 1");
    let mut binds = Vec::new();
    let mut text = |filters: &mut String, col: &str, v: &Option<String>| {
        if let Some(v) = v {
            binds.push(Bind::Text(v.clone()));
            filters.push_str(&format!(" AND {col} = ${}", binds.len()));
        }
    };
    text(&mut filters, "team_id", &f.team_id);
    text(&mut filters, "subject_type", &f.subject_type);
    text(&mut filters, "subject_id", &f.subject_id);
    text(&mut filters, "causer_id", &f.causer_id);
    text(&mut filters, "token_id", &f.token_id);
    text(&mut filters, "actor_kind", &f.actor_kind);
    text(&mut filters, "event", &f.event);
    text(&mut filters, "outcome", &f.outcome);
    if let Some(v) = &f.not_event {
        binds.push(Bind::Text(v.clone()));
        filters.push_str(&format!(" AND event <> ${}", binds.len()));
    }
    // `created_at` never decreases along the chain (see `append_after_at`), so a time bound is a
    // `seq` bound: the first entry at or after the time, found in the `(created_at, seq)` index,
    // is where `since` starts and `until` stops. The index range of the filter's own index then
    // holds only the window, however far back it lies. The times are also compared as such, with
    // the column written `+created_at` so that no planner walks the time index for the listing
    // itself (that would need a sort of every entry in the window).
    for (op, v) in [(">=", f.since_ms), ("<", f.until_ms)] {
        if let Some(v) = v {
            binds.push(Bind::Int(v));
            let n = binds.len();
            filters.push_str(&format!(
                " AND seq {op} COALESCE((SELECT seq FROM audit_log WHERE created_at >= ${n} \
                 ORDER BY created_at, seq LIMIT 1), {NO_SEQ}) AND +created_at {op} ${n}"
            ));
        }
    }
    if let Some(v) = f.before_seq {
        binds.push(Bind::Int(v));
        filters.push_str(&format!(" AND seq < ${}", binds.len()));
    }
    binds.push(Bind::Int(limit));
    let limit_slot = binds.len();
    let newest = |and: &str| {
        format!("SELECT {COLUMNS} FROM audit_log WHERE {filters}{and} ORDER BY seq DESC LIMIT ${limit_slot}")
    };
    let mut project = |p: &String| {
        binds.push(Bind::Text(p.clone()));
        format!("${}", binds.len())
    };
    let sql = match f.project_ids.as_deref() {
        None => newest(""),
        Some([]) => return Ok(Vec::new()),
        Some([one]) => newest(&format!(" AND project_id = {}", project(one))),
        // One arm per project, each the newest entries of one (team_id, project_id, seq) index
        // range, merged. With `project_id IN (...)` the planners walk the team's whole log in seq
        // order instead (no index keeps seq order across several projects): at 5M entries, a
        // token scoped to two quiet projects waited 30 s for its page.
        Some(projects) if projects.len() <= PROJECT_ARMS_MAX => {
            let mut projects = projects.to_vec();
            projects.sort();
            projects.dedup();
            let arms: Vec<String> = projects
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let arm = newest(&format!(" AND project_id = {}", project(p)));
                    format!("SELECT {COLUMNS} FROM ({arm}) AS p{i}")
                })
                .collect();
            format!("{} ORDER BY seq DESC LIMIT ${limit_slot}", arms.join(" UNION ALL "))
        }
        Some(projects) => {
            let slots: Vec<String> = projects.iter().map(&mut project).collect();
            newest(&format!(" AND project_id IN ({})", slots.join(", ")))
        }
    };
    let mut q = sqlx::query_as::<_, AuditRow>(AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    q.fetch_all(&mut *conn).await
}

/// All entries in chain order, in pages, for `audit verify` and `audit export`.
pub async fn page_in_order(conn: &mut Conn, after_seq: i64, limit: i64) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as::<_, AuditRow>(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
    )))
    .bind(after_seq)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

pub async fn head(conn: &mut Conn) -> sqlx::Result<(i64, String)> {
    sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *conn)
        .await
}

/// What `audit verify` found.
#[derive(Debug, Serialize)]
pub struct Verification {
    pub ok: bool,
    pub entries: i64,
    pub problems: Vec<String>,
}

/// Walks the whole chain: sequence without gaps, each `prev_hash` the previous `hash`, each
/// `hash` recomputed, no entry dated before its predecessor, and the head naming the last entry
/// (so a deleted tail shows).
pub async fn verify(conn: &mut Conn) -> sqlx::Result<Verification> {
    let mut problems = Vec::new();
    let mut expected_seq = 1;
    let mut prev = "0".repeat(64);
    let mut last_seq = 0;
    let mut prev_created_at = i64::MIN;
    loop {
        let rows = page_in_order(conn, last_seq, 1000).await?;
        if rows.is_empty() {
            break;
        }
        for row in rows {
            if row.seq != expected_seq {
                problems.push(format!(
                    "entry {} is at position {} where {} was expected (deleted or inserted entries)",
                    row.id, row.seq, expected_seq
                ));
            }
            if row.prev_hash != prev {
                problems.push(format!(
                    "entry {} (seq {}) does not follow its predecessor",
                    row.id, row.seq
                ));
            }
            if row.compute_hash() != row.hash {
                problems.push(format!("entry {} (seq {}) was modified", row.id, row.seq));
            }
            if row.created_at < prev_created_at {
                problems.push(format!(
                    "entry {} (seq {}) is dated before its predecessor",
                    row.id, row.seq
                ));
            }
            prev_created_at = row.created_at;
            prev = row.hash.clone();
            expected_seq = row.seq + 1;
            last_seq = row.seq;
        }
    }
    let (head_seq, head_hash) = head(conn).await?;
    if head_seq != last_seq || head_hash != prev {
        problems.push(format!(
            "the chain ends at seq {last_seq} but its head records seq {head_seq} (entries deleted from the end, or the head edited)"
        ));
    }
    Ok(Verification {
        ok: problems.is_empty(),
        entries: last_seq,
        problems,
    })
}
