//! Group commit of audit entries: calls that finish together share one write transaction and one
//! commit (one fsync). A read runs its body in a read transaction of its own and hands its entry
//! here; refusals hand theirs here too. One writer task per process takes every entry waiting,
//! takes the chain's lock, re-checks each caller under it (a caller refused now gets its refusal
//! entry instead of its entry), appends them all, commits once, then answers each.
//!
//! Nothing is answered before the commit that holds its entry. A revocation commits with an
//! entry of its own: a batch that commits after it re-checks and refuses the token; a batch that
//! committed before it was serialised before it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::principal::Principal;
use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::role::Role;
use crate::store::{Db, Tx, audit};

/// Most entries one batch commits.
const MAX_BATCH: usize = 512;
/// How many entries may wait for the writer before callers wait to hand theirs in.
const QUEUE: usize = 8192;

/// One entry waiting for a batch.
struct Pending {
    /// Taken by the batch that writes it.
    entry: Option<AuditDraft>,
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
            .send(Pending {
                entry: Some(entry),
                check,
                reply,
            })
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

/// One transaction for the whole batch: the chain's lock first, then each caller re-checked
/// under it (once per distinct caller), then every entry — or, for a caller refused now, its
/// refusal instead — appended in order with one head update.
async fn commit(db: &Db, batch: &mut [Pending]) -> std::result::Result<Vec<Result<()>>, Error> {
    let mut tx = db.begin_write().await?;
    let head = audit::lock_head(&mut tx).await?;
    let mut checked: HashMap<CallerKey, Checked> = HashMap::new();
    let mut answers = Vec::with_capacity(batch.len());
    let mut entries = Vec::with_capacity(batch.len());
    for pending in batch.iter_mut() {
        let Some(mut entry) = pending.entry.take() else {
            // Every entry is handed in once; keep the answers aligned with the callers anyway.
            answers.push(Err(Error::Internal(anyhow::anyhow!("an audit entry was taken twice"))));
            continue;
        };
        let answer = match &pending.check {
            None => Ok(()),
            Some((principal, ability)) => {
                let key = (
                    principal.token_id().map(str::to_owned),
                    principal.team_id.clone(),
                    principal.user_id.clone(),
                );
                let state = match checked.get(&key) {
                    Some(state) => state.clone(),
                    None => {
                        let state = check(&mut tx, principal).await?;
                        checked.insert(key, state.clone());
                        state
                    }
                };
                let verdict = match state {
                    Checked::Refused(reason) => Err((Error::AuthenticationRequired, Some(reason))),
                    Checked::Role(role) => match ability {
                        Some(a) if !principal.can_as(role, *a) => Err((Error::missing(*a), None)),
                        _ => Ok(()),
                    },
                };
                match verdict {
                    Ok(()) => Ok(()),
                    Err((e, reason)) => {
                        if let Some(reason) = reason {
                            entry.properties = json!({ "reason": reason });
                        }
                        super::call::mark_refused(&mut entry, &e);
                        Err(e)
                    }
                }
            }
        };
        answers.push(answer);
        entries.push(entry);
    }
    audit::append_after(&mut tx, head, entries).await?;
    tx.commit().await?;
    Ok(answers)
}

type CallerKey = (Option<String>, String, String);

/// What the re-check found for one caller: refused (with the reason), or the role held now.
#[derive(Clone)]
enum Checked {
    Refused(&'static str),
    Role(Role),
}

async fn check(tx: &mut Tx, p: &Principal) -> std::result::Result<Checked, Error> {
    match super::call::current_role(tx, p, false).await {
        Ok(role) => Ok(Checked::Role(role)),
        Err((Error::AuthenticationRequired, Some(reason))) => Ok(Checked::Refused(reason)),
        Err((e, _)) => Err(e),
    }
}
