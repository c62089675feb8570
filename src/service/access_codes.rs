//! Access codes: listed masked only; generated in bulk by a persisted background job whose clear
//! codes are kept for one download by a person (dashboard), never returned by REST or MCP.

use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;

use super::catalog::Op;
use super::members::check_enum;
use super::page::Page;
use super::plans::plan_in_scope;
use super::{Done, Output, Principal, Service};
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{new_id, parse_id};
use crate::domain::time::DAY_MS;
use crate::domain::token::random_base62;
use crate::store::rows::{AccessCode, Job};
use crate::store::{Backend, Filter, Tx, audit, now_ms};

pub const CODE_STATUSES: &[&str] = &["unused", "redeemed", "expired"];
pub const MAX_QUANTITY: i64 = 10_000;
const JOB_COLUMNS: &str = "id, team_id, project_id, kind, status, input, result, error, attempts, \
     created_by_user_id, created_by_token_id, created_at, updated_at";
/// How long a claimed job may run before another worker may take it over.
const LEASE_MS: i64 = 5 * 60_000;
const MAX_ATTEMPTS: i64 = 3;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkGenerate {
    #[schemars(range(min = 1, max = 10_000))]
    pub quantity: i64,
    #[schemars(range(min = 1, max = 3650))]
    pub expires_in_days: Option<i64>,
}

#[derive(Deserialize)]
struct JobInput {
    plan_id: String,
    project_id: String,
    quantity: i64,
    expires_in_days: Option<i64>,
}

/// `AbCd********WxYz`: the first and last four characters only.
pub fn mask(code: &str) -> String {
    let n = code.chars().count();
    let head: String = code.chars().take(4).collect();
    let tail: String = code.chars().skip(n.saturating_sub(4)).collect();
    format!("{head}{}{tail}", "*".repeat(n.saturating_sub(8)))
}

impl Service {
    pub async fn list_access_codes(
        &self,
        p: &Principal,
        plan_id: &str,
        status: Option<String>,
        page: Page,
    ) -> Result<Done> {
        let id = plan_id.to_owned();
        let args = json!({"plan_id": plan_id, "status": status, "page": page.page, "limit": page.limit});
        self.run(p, Op::ListAccessCodes, None, args, move |c| {
            Box::pin(async move {
                let plan = plan_in_scope(c, &id).await?;
                check_enum("status", status.as_deref(), CODE_STATUSES)?;
                let f = Filter::default()
                    .eq("plan_id", &plan.id)
                    .eq_opt("status", status.as_deref());
                let columns = "id, plan_id, job_id, code_masked, status, expires_at, redeemed_at, created_at";
                page.fetch::<AccessCode>(c.conn(), f, columns, "access_codes", "created_at DESC, id")
                    .await
            })
        })
        .await
    }

    pub async fn bulk_generate_access_codes(&self, p: &Principal, plan_id: &str, input: BulkGenerate) -> Result<Done> {
        let id = plan_id.to_owned();
        let args = json!({"plan_id": plan_id, "quantity": input.quantity, "expires_in_days": input.expires_in_days});
        let done = self
            .run(p, Op::BulkGenerateAccessCodes, None, args, move |c| {
                Box::pin(async move {
                    let plan = plan_in_scope(c, &id).await?;
                    if !(1..=MAX_QUANTITY).contains(&input.quantity) {
                        return Err(Error::field("quantity", format!("must be from 1 to {MAX_QUANTITY}")));
                    }
                    if input.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
                        return Err(Error::field("expires_in_days", "must be from 1 to 3650"));
                    }
                    let (job_id, now) = (new_id(), now_ms());
                    let job_input = json!({"plan_id": plan.id, "project_id": plan.project_id,
                        "quantity": input.quantity, "expires_in_days": input.expires_in_days});
                    sqlx::query(
                        "INSERT INTO jobs (id, team_id, project_id, kind, status, input, attempts, created_by_user_id, \
                         created_by_token_id, created_at, updated_at) VALUES ($1, $2, $3, 'access_codes.generate', 'queued', $4, 0, $5, $6, $7, $7)",
                    )
                    .bind(&job_id)
                    .bind(c.team_id())
                    .bind(&plan.project_id)
                    .bind(job_input.to_string())
                    .bind(c.principal.user_id.clone())
                    .bind(c.principal.token_id.clone())
                    .bind(now)
                    .execute(c.conn())
                    .await?;
                    c.subject(&job_id);
                    let job = load_job(c.conn(), &job_id).await?.ok_or(Error::NotFound)?;
                    Output::one(job.to_json())
                })
            })
            .await?;
        self.jobs_waiting.notify_one();
        Ok(done)
    }

    /// A job is visible to the user who started it, in the team it was started in.
    pub async fn get_job_status(&self, p: &Principal, job_id: &str) -> Result<Done> {
        let id = job_id.to_owned();
        self.run(p, Op::GetJobStatus, Some(job_id), json!({"job_id": job_id}), move |c| {
            Box::pin(async move {
                let id = parse_id(&id)?;
                let job = load_job(c.conn(), &id).await?.ok_or(Error::NotFound)?;
                if job.team_id != c.principal.team_id || job.created_by_user_id != c.principal.user_id {
                    return Err(Error::NotFound);
                }
                if let Some(pid) = &job.project_id {
                    c.check_project(pid)?;
                }
                Output::one(job.to_json())
            })
        })
        .await
    }

    /// Claims and runs one job, if any is waiting. Returns whether it ran one. A worker calls this
    /// in a loop; tests call it directly instead of sleeping.
    pub async fn try_run_one_job(&self) -> anyhow::Result<bool> {
        let Some(job) = self.claim_job().await? else {
            return Ok(false);
        };
        let outcome = self.generate_codes(&job).await;
        if let Err(e) = outcome {
            tracing::error!(job_id = %job.id, error = ?e, "job failed");
            let status = if job.attempts >= MAX_ATTEMPTS {
                "failed"
            } else {
                "queued"
            };
            let mut tx = self.db.begin_write().await?;
            sqlx::query("UPDATE jobs SET status = $1, error = $2, locked_until = NULL, updated_at = $3 WHERE id = $4")
                .bind(status)
                .bind("code generation failed")
                .bind(now_ms())
                .bind(&job.id)
                .execute(&mut *tx)
                .await?;
            if status == "failed" {
                let entry = AuditDraft::system("job.failed", Some(job.team_id.clone())).subject("job", &job.id);
                audit::append(&mut tx, entry).await?;
            }
            tx.commit().await?;
        }
        Ok(true)
    }

    async fn claim_job(&self) -> anyhow::Result<Option<Job>> {
        let now = now_ms();
        let pick = match self.db.backend() {
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
        let mut tx = self.db.begin_write().await?;
        let claimed = sqlx::query_as::<_, Job>(AssertSqlSafe(format!(
            "UPDATE jobs SET status = 'running', locked_until = $1, attempts = attempts + 1, updated_at = $2 \
             WHERE id = ({pick}) RETURNING {JOB_COLUMNS}"
        )))
        .bind(now + LEASE_MS)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(claimed)
    }

    /// Generates the codes, keeps the clear batch for one download, completes the job and writes
    /// its audit entry: all in one transaction, so a crash leaves the job to be retried whole.
    async fn generate_codes(&self, job: &Job) -> anyhow::Result<()> {
        let input: JobInput = serde_json::from_str(&job.input)?;
        let mut tx = self.db.begin_write().await?;
        let now = now_ms();
        let expires_at = input.expires_in_days.map(|d| now + d * DAY_MS);
        let mut clear = Vec::with_capacity(input.quantity as usize);
        for _ in 0..input.quantity {
            let code = random_base62(16);
            insert_code(&mut tx, job, &input, &code, expires_at, now).await?;
            clear.push(code);
        }
        sqlx::query("INSERT INTO access_code_downloads (job_id, codes, created_at) VALUES ($1, $2, $3)")
            .bind(&job.id)
            .bind(serde_json::to_string(&clear)?)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let result = json!({"plan_id": input.plan_id, "generated": input.quantity,
            "download": "the clear codes can be downloaded once from the dashboard"});
        sqlx::query("UPDATE jobs SET status = 'completed', result = $1, error = NULL, locked_until = NULL, updated_at = $2 WHERE id = $3")
            .bind(result.to_string())
            .bind(now)
            .bind(&job.id)
            .execute(&mut *tx)
            .await?;
        let mut entry = AuditDraft::system("access_codes.generated", Some(job.team_id.clone()))
            .subject("job", &job.id)
            .properties(json!({"plan_id": input.plan_id, "quantity": input.quantity}));
        entry.project_id = Some(input.project_id.clone());
        audit::append(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_code(
    tx: &mut Tx,
    job: &Job,
    input: &JobInput,
    code: &str,
    expires_at: Option<i64>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO access_codes (id, team_id, project_id, plan_id, job_id, code_digest, code_masked, status, expires_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'unused', $8, $9)",
    )
    .bind(new_id())
    .bind(&job.team_id)
    .bind(&input.project_id)
    .bind(&input.plan_id)
    .bind(&job.id)
    .bind(hex::encode(Sha256::digest(code.as_bytes())))
    .bind(mask(code))
    .bind(expires_at)
    .bind(now)
    .execute(&mut **tx)
    .await
    .map(|_| ())
}

pub async fn load_job(conn: &mut crate::store::Conn, id: &str) -> sqlx::Result<Option<Job>> {
    sqlx::query_as::<_, Job>(AssertSqlSafe(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}
