//! A lifecycle write outside the call path (the operator's commands, sign-in, token mint, rotate
//! and revoke, leak reports): one write transaction whose changes commit only with the audit
//! entries it records, chained in the order recorded. Nothing commits without its entries, and
//! the chain's lock is taken only at the end, for as long as the append and the commit take.

use super::service::Service;
use crate::domain::audit::AuditDraft;
use crate::domain::error::Result;
use crate::store::{Conn, Tx, audit};

pub struct Audited {
    tx: Tx,
    entries: Vec<AuditDraft>,
}

impl Audited {
    /// The transaction, for the change itself.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.tx
    }

    /// An entry that commits with the change.
    pub fn record(&mut self, entry: AuditDraft) {
        self.entries.push(entry);
    }

    /// Voids the approval requests a revocation, removal or lowered role makes unusable, each
    /// with its `approval.voided` entry, in this transaction.
    pub async fn void_approvals(&mut self, which: crate::store::approvals::Voids<'_>, reason: &str) -> Result<()> {
        let entries = super::hold::void_approvals(&mut self.tx, which, reason).await?;
        self.entries.extend(entries);
        Ok(())
    }

    /// Appends the recorded entries and commits; dropped instead, it rolls everything back.
    pub async fn commit(mut self) -> Result<()> {
        if !self.entries.is_empty() {
            let head = audit::lock_head(&mut self.tx).await?;
            audit::append_after(&mut self.tx, head, self.entries).await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

impl Service {
    /// Begins a lifecycle write (see the module doc).
    pub async fn audited(&self) -> Result<Audited> {
        Ok(Audited {
            tx: self.db.begin_write().await?,
            entries: Vec::new(),
        })
    }
}
