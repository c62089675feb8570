//! Group commit of audit entries: calls that finish together share one write transaction and one
//! commit (one fsync). A read runs its body in a read transaction of its own and hands its entry
//! here; refusals hand theirs here too. One writer task per process takes every entry waiting,
//! appends each inside a savepoint, re-checks its caller under the chain's lock (a caller refused
//! now rolls back alone and gets its refusal entry instead), commits once, then answers each.
//!
//! Nothing is answered before the commit that holds its entry. A revocation commits with an
//! entry of its own: a batch that commits after it re-checks and refuses the token; a batch that
//! committed before it was serialised before it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::principal::Principal;
use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::store::{Db, Tx, audit};

/// Most entries one batch commits.
const MAX_BATCH: usize = 512;
/// How many entries may wait for the writer before callers wait to hand theirs in.
const QUEUE: usize = 8192;

/// One entry waiting for a batch.
struct Pending {
    entry: AuditDraft,
    /// The caller to re-check under the chain's lock (a refusal's entry has nothing to check).
    check: Option<(Principal, Option<Ability>)>,
    reply: oneshot::Sender<Result<()>>,
}

/// How many batches and entries this process has committed (for benchmarks and operators).
#[derive(Debug, Default)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub entries: AtomicU64,
}

#[derive(Clone, Debug)]
pub struct Batcher {
    queue: mpsc::Sender<Pending>,
    pub stats: Arc<BatchStats>,
}

impl Batcher {
    /// Starts the writer task, which ends when the last `Batcher` clone is dropped.
    pub fn start(db: Db) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(BatchStats::default());
        tokio::spawn(write_batches(db, rx, stats.clone()));
        Batcher { queue, stats }
    }

    /// Appends a successful read's entry once its caller is still allowed; the error is the
    /// refusal (already audited) when the token was revoked, the owner removed, or the role
    /// lowered since authentication.
    pub async fn append_checked(&self, p: &Principal, ability: Option<Ability>, entry: AuditDraft) -> Result<()> {
        self.send(entry, Some((p.clone(), ability))).await
    }

    /// Appends an entry as it is (a refusal's).
    pub async fn append(&self, entry: AuditDraft) -> Result<()> {
        self.send(entry, None).await
    }

    async fn send(&self, entry: AuditDraft, check: Option<(Principal, Option<Ability>)>) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { entry, check, reply })
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the audit writer has stopped")))?;
        answer
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("the audit writer dropped an entry")))?
    }
}

async fn write_batches(db: Db, mut queue: mpsc::Receiver<Pending>, stats: Arc<BatchStats>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let entries = batch.len() as u64;
        match commit(&db, &mut batch).await {
            Ok(answers) => {
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.entries.fetch_add(entries, Ordering::Relaxed);
                for (pending, answer) in batch.drain(..).zip(answers) {
                    let _ = pending.reply.send(answer);
                }
            }
            Err(e) => {
                // Nothing of this batch committed: every caller gets an internal error, and
                // none of them is answered as if its entry existed.
                tracing::error!(error = ?e, entries, "an audit batch failed");
                for pending in batch.drain(..) {
                    let _ = pending
                        .reply
                        .send(Err(Error::Internal(anyhow::anyhow!("the audit batch failed"))));
                }
            }
        }
    }
}

/// One transaction for the whole batch; each entry in a savepoint of its own.
async fn commit(db: &Db, batch: &mut [Pending]) -> std::result::Result<Vec<Result<()>>, Error> {
    let mut tx = db.begin_write().await?;
    let mut answers = Vec::with_capacity(batch.len());
    for pending in batch.iter_mut() {
        answers.push(append_one(&mut tx, pending).await?);
    }
    tx.commit().await?;
    Ok(answers)
}

/// Appends one entry and re-checks its caller; a refused caller's entry is rolled back and its
/// refusal appended instead. `Err` only for a database failure, which fails the whole batch.
async fn append_one(tx: &mut Tx, pending: &mut Pending) -> std::result::Result<Result<()>, Error> {
    let Some((principal, ability)) = &pending.check else {
        audit::append(tx, pending.entry.clone()).await?;
        return Ok(Ok(()));
    };
    sqlx::query("SAVEPOINT entry").execute(&mut **tx).await?;
    let appended = audit::append(tx, pending.entry.clone()).await?;
    match super::call::still_allowed(tx, principal, *ability, false).await {
        Ok(()) => {
            sqlx::query("RELEASE SAVEPOINT entry").execute(&mut **tx).await?;
            Ok(Ok(()))
        }
        Err((Error::Internal(e), _)) => Err(Error::Internal(e)),
        Err((e, reason)) => {
            sqlx::query("ROLLBACK TO SAVEPOINT entry").execute(&mut **tx).await?;
            sqlx::query("RELEASE SAVEPOINT entry").execute(&mut **tx).await?;
            let mut refused = pending.entry.clone();
            refused.properties = match reason {
                Some(reason) => json!({ "reason": reason }),
                None => serde_json::from_str(&appended.properties).unwrap_or_else(|_| json!({})),
            };
            super::call::mark_refused(&mut refused, &e);
            audit::append(tx, refused).await?;
            Ok(Err(e))
        }
    }
}
