//! `jobs`: persisted background work, claimed with a lease so that a crashed worker's job is
//! taken over, and (on PostgreSQL) `FOR UPDATE SKIP LOCKED` so replicas never claim the same one.

use sqlx::{AssertSqlSafe, FromRow};

use super::{Backend, Conn, now_ms};
use crate::domain::ids::{JobId, ProjectId, TeamId, UserId};
use crate::domain::kinds::JobStatus;

pub const COLUMNS: &str = "id, team_id, project_id, kind, status, input, result, error, attempts, \
     created_by_user_id, created_by_token_id, created_at, updated_at";

#[derive(Clone, Debug, FromRow)]
pub struct Job {
    pub id: JobId,
    pub team_id: TeamId,
    pub project_id: Option<ProjectId>,
    pub kind: String,
    #[sqlx(try_from = "String")]
    pub status: JobStatus,
    pub input: String,
    pub result: Option<String>,
    pub error: Option<String>,
    pub attempts: i64,
    pub created_by_user_id: UserId,
    pub created_by_token_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A job as the API shows it.
#[derive(Clone, Debug, serde::Serialize, schemars::JsonSchema)]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub status: JobStatus,
    /// What the job produced, once it has.
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    #[schemars(with = "crate::domain::time::Rfc3339Time")]
    pub created_at: String,
    #[schemars(with = "crate::domain::time::Rfc3339Time")]
    pub updated_at: String,
}

impl Job {
    pub fn view(&self) -> JobView {
        JobView {
            id: self.id.to_string(),
            kind: self.kind.clone(),
            status: self.status,
            result: self
                .result
                .as_deref()
                .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()),
            error: self.error.clone(),
            created_at: crate::domain::time::rfc3339(self.created_at),
            updated_at: crate::domain::time::rfc3339(self.updated_at),
        }
    }
}

pub struct NewJob<'a> {
    pub id: &'a str,
    pub team_id: &'a str,
    pub project_id: Option<&'a str>,
    pub kind: &'a str,
    pub input: &'a str,
    pub created_by_user_id: &'a str,
    pub created_by_token_id: Option<&'a str>,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, j: &NewJob<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO jobs (id, team_id, project_id, kind, status, input, attempts, created_by_user_id, \
         created_by_token_id, created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, 0, $6, $7, $8, $8)",
    )
    .bind(j.id)
    .bind(j.team_id)
    .bind(j.project_id)
    .bind(j.kind)
    .bind(j.input)
    .bind(j.created_by_user_id)
    .bind(j.created_by_token_id)
    .bind(j.created_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Job>> {
    sqlx::query_as::<_, Job>(AssertSqlSafe(format!("SELECT {COLUMNS} FROM jobs WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

/// Claims the oldest queued job (or one whose lease ran out) for `lease_ms`.
pub async fn claim(conn: &mut Conn, backend: Backend, lease_ms: i64) -> sqlx::Result<Option<Job>> {
    let now = now_ms();
    let pick = match backend {
        Backend::Postgres => {
            "SELECT id FROM jobs WHERE status = 'queued' OR (status = 'running' AND locked_until < $2) \
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        }
        // SQLite: BEGIN IMMEDIATE already holds the only write lock.
        Backend::Sqlite => {
            "SELECT id FROM jobs WHERE status = 'queued' OR (status = 'running' AND locked_until < $2) \
             ORDER BY created_at LIMIT 1"
        }
    };
    sqlx::query_as::<_, Job>(AssertSqlSafe(format!(
        "UPDATE jobs SET status = 'running', locked_until = $1, attempts = attempts + 1, updated_at = $2 \
         WHERE id = ({pick}) RETURNING {COLUMNS}"
    )))
    .bind(now + lease_ms)
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
}

/// A claim is known by the job's `attempts`, which each claim raises: a worker whose lease ran out
/// and was taken over finds its claim gone, and neither renews, completes nor releases the job.
///
/// Extends the claim's lease to `lease_ms` from now; `false` when the claim is no longer held.
pub async fn renew(conn: &mut Conn, id: &str, attempts: i64, lease_ms: i64) -> sqlx::Result<bool> {
    sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2 AND attempts = $3 AND status = 'running'")
        .bind(now_ms() + lease_ms)
        .bind(id)
        .bind(attempts)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// Completes the job if the claim is still held.
pub async fn complete(
    conn: &mut Conn,
    id: &str,
    attempts: i64,
    result: &serde_json::Value,
    now: i64,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE jobs SET status = 'completed', result = $1, error = NULL, locked_until = NULL, updated_at = $2 \
         WHERE id = $3 AND attempts = $4 AND status = 'running'",
    )
    .bind(result.to_string())
    .bind(now)
    .bind(id)
    .bind(attempts)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Puts a job back in the queue or marks it failed for good, if the claim is still held. A job
/// put back because its worker is stopping gets its attempt back (`give_back`): it did not fail.
pub async fn release(
    conn: &mut Conn,
    id: &str,
    attempts: i64,
    status: JobStatus,
    error: Option<&str>,
    give_back: bool,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE jobs SET status = $1, error = $2, locked_until = NULL, updated_at = $3, attempts = $4 \
         WHERE id = $5 AND attempts = $6 AND status = 'running'",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(now_ms())
    .bind(if give_back { attempts - 1 } else { attempts })
    .bind(id)
    .bind(attempts)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Jobs of a kind a team has waiting or running.
pub async fn count_pending(conn: &mut Conn, team_id: &str, kind: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE team_id = $1 AND kind = $2 AND status IN ('queued', 'running')")
        .bind(team_id)
        .bind(kind)
        .fetch_one(&mut *conn)
        .await
}

/// The inputs of a team's jobs of a kind created since `since`, oldest first, with their times.
pub async fn inputs_since(conn: &mut Conn, team_id: &str, kind: &str, since: i64) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT input, created_at FROM jobs WHERE team_id = $1 AND kind = $2 AND created_at >= $3 \
         AND status <> 'failed' ORDER BY created_at",
    )
    .bind(team_id)
    .bind(kind)
    .bind(since)
    .fetch_all(&mut *conn)
    .await
}

/// How many jobs are in each status (every status, zeros included), for the metrics.
pub async fn counts_by_status(conn: &mut Conn) -> sqlx::Result<Vec<(&'static str, i64)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        .fetch_all(&mut *conn)
        .await?;
    Ok(crate::domain::kinds::JobStatus::ALL
        .iter()
        .map(|s| {
            let n = rows.iter().find(|(r, _)| r == s.as_str()).map_or(0, |(_, n)| *n);
            (s.as_str(), n)
        })
        .collect())
}
