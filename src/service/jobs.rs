//! Background jobs: `get_job_status`, and the worker that claims and runs them. A worker calls
//! [`Service::try_run_one_job`] in a loop; tests call it directly instead of sleeping.

use serde_json::json;
use sha2::{Digest, Sha256};

use super::Service;
use super::ops::access_codes::{DOWNLOAD_TTL_MS, GenerateInput, mask};
use crate::domain::audit::AuditDraft;
use crate::domain::kinds::JobStatus;
use crate::domain::time::DAY_MS;
use crate::domain::token::random_base62;
use crate::store::access_codes::{self, NewCode};
use crate::store::jobs::{self as store, Job};
use crate::store::{audit, now_ms};

/// How long a claimed job may go without news from its worker before another worker may take it
/// over (a replica killed mid-job): the worker renews it with every chunk it commits.
const LEASE_MS: i64 = 15_000;
const MAX_ATTEMPTS: i64 = 3;
/// Codes inserted per transaction.
const CHUNK: i64 = 200;

/// How a claimed job's run ended, when it did not fail.
enum Ran {
    Completed,
    /// The worker is stopping: the job was put back, whole, for another worker.
    PutBack,
    /// The lease ran out and another worker took the job over: this run changed nothing.
    TakenOver,
}

impl Service {
    /// Runs queued jobs until `shutdown` fires: woken by new jobs here, polling for other replicas'.
    /// A job running when it fires stops at its next chunk and goes back to the queue.
    pub async fn run_jobs(&self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            match self.run_one_job(&shutdown).await {
                Ok(true) if !*shutdown.borrow() => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = ?e, "job worker"),
            }
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = self.jobs_waiting.notified() => {}
                _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Claims and runs one job, if any is waiting. Returns whether it ran one.
    pub async fn try_run_one_job(&self) -> anyhow::Result<bool> {
        self.run_one_job(&tokio::sync::watch::channel(false).1).await
    }

    async fn run_one_job(&self, stopping: &tokio::sync::watch::Receiver<bool>) -> anyhow::Result<bool> {
        let mut tx = self.db.begin_write().await?;
        let forgotten = access_codes::forget_downloads_before(&mut tx, now_ms() - DOWNLOAD_TTL_MS).await?;
        if forgotten > 0 {
            tracing::info!(batches = forgotten, "clear access-code batches expired undownloaded");
        }
        let claimed = store::claim(&mut tx, self.db.backend(), LEASE_MS).await?;
        tx.commit().await?;
        let Some(job) = claimed else {
            return Ok(false);
        };
        tracing::info!(job_id = %job.id, attempt = job.attempts, "job claimed");
        match self.generate_codes(&job, stopping).await {
            Ok(Ran::Completed) => {}
            Ok(Ran::PutBack) => tracing::info!(job_id = %job.id, "job put back for another worker: stopping"),
            Ok(Ran::TakenOver) => {
                tracing::warn!(job_id = %job.id, "job taken over by another worker after its lease ran out")
            }
            Err(e) => {
                tracing::error!(job_id = %job.id, error = ?e, "job failed");
                let status = if job.attempts >= MAX_ATTEMPTS {
                    JobStatus::Failed
                } else {
                    JobStatus::Queued
                };
                let mut tx = self.db.begin_write().await?;
                let held = store::release(
                    &mut tx,
                    &job.id,
                    job.attempts,
                    status,
                    Some("code generation failed"),
                    false,
                )
                .await?;
                if held && status == JobStatus::Failed {
                    let entry = AuditDraft::system("job.failed", Some(job.team_id.to_string())).subject("job", &job.id);
                    audit::append(&mut tx, entry).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(true)
    }

    /// Generates the codes in chunks, each its own transaction, so other teams' writes run in
    /// between; then keeps the clear batch for one download, completes the job and writes its
    /// audit entry in one last transaction. A retry first removes what an interrupted run
    /// inserted, so a batch is whole or absent. Every transaction renews the lease, and holds
    /// the claim or rolls back.
    async fn generate_codes(&self, job: &Job, stopping: &tokio::sync::watch::Receiver<bool>) -> anyhow::Result<Ran> {
        let input: GenerateInput = serde_json::from_str(&job.input)?;
        if job.attempts > 1 {
            let mut tx = self.db.begin_write().await?;
            if !store::renew(&mut tx, &job.id, job.attempts, LEASE_MS).await? {
                return Ok(Ran::TakenOver);
            }
            access_codes::delete_of_job(&mut tx, &job.id).await?;
            tx.commit().await?;
        }
        let now = now_ms();
        let expires_at = input.expires_in_days.map(|d| now + d * DAY_MS);
        let mut clear = Vec::with_capacity(input.quantity as usize);
        let mut left = input.quantity;
        while left > 0 {
            let mut tx = self.db.begin_write().await?;
            if *stopping.borrow() {
                access_codes::delete_of_job(&mut tx, &job.id).await?;
                let held = store::release(&mut tx, &job.id, job.attempts, JobStatus::Queued, None, true).await?;
                tx.commit().await?;
                return Ok(if held { Ran::PutBack } else { Ran::TakenOver });
            }
            if !store::renew(&mut tx, &job.id, job.attempts, LEASE_MS).await? {
                return Ok(Ran::TakenOver);
            }
            for _ in 0..left.min(CHUNK) {
                let code = random_base62(16);
                let digest = hex::encode(Sha256::digest(code.as_bytes()));
                let new = NewCode {
                    team_id: &job.team_id,
                    project_id: &input.project_id,
                    plan_id: &input.plan_id,
                    job_id: &job.id,
                    digest: &digest,
                    masked: &mask(&code),
                    expires_at,
                    created_at: now,
                };
                access_codes::insert(&mut tx, &new).await?;
                clear.push(code);
            }
            tx.commit().await?;
            left -= CHUNK;
        }
        let mut tx = self.db.begin_write().await?;
        access_codes::keep_download(&mut tx, &job.id, &serde_json::to_string(&clear)?, now).await?;
        let result = json!({"plan_id": input.plan_id, "generated": input.quantity,
            "download": "the clear codes can be downloaded once from the dashboard"});
        if !store::complete(&mut tx, &job.id, job.attempts, &result, now).await? {
            return Ok(Ran::TakenOver);
        }
        let mut entry = AuditDraft::system("access_codes.generated", Some(job.team_id.to_string()))
            .subject("job", &job.id)
            .properties(json!({"plan_id": input.plan_id, "quantity": input.quantity}));
        entry.project_id = Some(input.project_id.clone());
        audit::append(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(Ran::Completed)
    }
}
