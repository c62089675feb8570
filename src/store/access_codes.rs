//! `access_codes` (stored as a digest and a masked copy) and `access_code_downloads` (a batch's
//! clear codes, kept for one download by a person).

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, Filter};
use crate::domain::ids::{AccessCodeId, JobId, PlanId, new_id};
use crate::domain::kinds::AccessCodeStatus;
use crate::domain::time::Millis;

pub const COLUMNS: &str = "id, plan_id, job_id, code_masked, status, expires_at, redeemed_at, created_at";

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct AccessCode {
    pub id: AccessCodeId,
    pub plan_id: PlanId,
    pub job_id: Option<JobId>,
    #[sqlx(rename = "code_masked")]
    pub code: String,
    #[sqlx(try_from = "String")]
    pub status: AccessCodeStatus,
    pub expires_at: Option<Millis>,
    pub redeemed_at: Option<Millis>,
    pub created_at: Millis,
}

pub struct NewCode<'a> {
    pub team_id: &'a str,
    pub project_id: &'a str,
    pub plan_id: &'a str,
    pub job_id: &'a str,
    pub digest: &'a str,
    pub masked: &'a str,
    pub expires_at: Option<i64>,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, c: &NewCode<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO access_codes (id, team_id, project_id, plan_id, job_id, code_digest, code_masked, status, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'unused', $8, $9)",
    )
    .bind(new_id())
    .bind(c.team_id)
    .bind(c.project_id)
    .bind(c.plan_id)
    .bind(c.job_id)
    .bind(c.digest)
    .bind(c.masked)
    .bind(c.expires_at)
    .bind(c.created_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// Keeps a batch's clear codes for its one download.
pub async fn keep_download(conn: &mut Conn, job_id: &str, codes_json: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO access_code_downloads (job_id, codes, created_at) VALUES ($1, $2, $3)")
        .bind(job_id)
        .bind(codes_json)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

pub async fn page_of_plan(
    conn: &mut Conn,
    plan_id: &str,
    status: Option<AccessCodeStatus>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<AccessCode>, i64)> {
    Filter::default()
        .eq("plan_id", plan_id)
        .eq_opt("status", status.map(AccessCodeStatus::as_str))
        .page(conn, COLUMNS, "access_codes", "created_at DESC, id", limit, offset)
        .await
}

/// Clear batches of a team kept since `since` and not downloaded yet.
pub async fn count_downloads(conn: &mut Conn, team_id: &str, since: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM access_code_downloads d JOIN jobs j ON j.id = d.job_id \
         WHERE j.team_id = $1 AND d.created_at >= $2",
    )
    .bind(team_id)
    .bind(since)
    .fetch_one(&mut *conn)
    .await
}

/// Forgets clear batches kept before `cutoff`: a batch nobody downloaded in time is gone.
pub async fn forget_downloads_before(conn: &mut Conn, cutoff: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM access_code_downloads WHERE created_at < $1")
        .bind(cutoff)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
}

/// Removes the codes a job inserted before it was interrupted, so its retry starts whole.
pub async fn delete_of_job(conn: &mut Conn, job_id: &str) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM access_codes WHERE job_id = $1")
        .bind(job_id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
}

/// A clear batch a team's job left for download.
#[derive(Debug, FromRow)]
pub struct KeptBatch {
    pub job_id: String,
    pub project_id: Option<String>,
    /// The job's input (its quantity is there).
    pub input: String,
    pub kept_since: i64,
    /// Who generated it: the job's user, and their email.
    pub created_by: String,
    pub created_by_email: String,
}

/// The clear batches a team's jobs left for download, newest first.
pub async fn downloads_of_team(conn: &mut Conn, team_id: &str) -> sqlx::Result<Vec<KeptBatch>> {
    sqlx::query_as(
        "SELECT j.id AS job_id, j.project_id, j.input, d.created_at AS kept_since, \
         j.created_by_user_id AS created_by, u.email AS created_by_email \
         FROM access_code_downloads d JOIN jobs j ON j.id = d.job_id JOIN users u ON u.id = j.created_by_user_id \
         WHERE j.team_id = $1 ORDER BY d.created_at DESC",
    )
    .bind(team_id)
    .fetch_all(&mut *conn)
    .await
}

/// Whose batch `job_id` is, if it is still kept and the team's: its project and its creator.
pub async fn find_download(
    conn: &mut Conn,
    team_id: &str,
    job_id: &str,
) -> sqlx::Result<Option<(Option<String>, String)>> {
    sqlx::query_as(
        "SELECT j.project_id, j.created_by_user_id FROM access_code_downloads d JOIN jobs j ON j.id = d.job_id \
         WHERE d.job_id = $1 AND j.team_id = $2",
    )
    .bind(job_id)
    .bind(team_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Takes a batch's clear codes out of the database: the one download. One statement, so of two
/// downloads at once only one gets the codes; `None` when they are gone.
pub async fn take_download(conn: &mut Conn, job_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("DELETE FROM access_code_downloads WHERE job_id = $1 RETURNING codes")
        .bind(job_id)
        .fetch_optional(&mut *conn)
        .await
}
