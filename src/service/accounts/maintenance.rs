//! Warnings before a token breaks (issue 21, item 4): on every run of the maintenance timer
//! (`serve --maintenance-interval`, 1 h), each live token with an expiry gets — once each, across
//! restarts and replicas — a warning 7 days before it expires, one 1 day before, and a note when it
//! has: a dashboard notification for its owner and an audit entry (`token.expiring` with
//! `days_left`, `token.expired`). A token minted with less than 7 days left gets the 7-day warning
//! at once (with the days it has), one with less than a day only the 1-day one.
//!
//! The same pass prunes the tokens' usage days older than [`KEEP_DAYS`] (issue 21, item 2).

use serde_json::json;

use crate::domain::audit::AuditDraft;
use crate::domain::error::Result;
use crate::domain::time::{DAY_MS, rfc3339};
use crate::domain::usage::{KEEP_DAYS, day_of};
use crate::service::Service;
use crate::service::accounts::leaks::notify;
use crate::store::{now_ms, tokens, usage};

pub const EXPIRING: &str = "expiring";
pub const EXPIRED: &str = "expired";

impl Service {
    /// One run of the token maintenance; how many warnings it gave.
    pub async fn maintain_tokens(&self) -> Result<usize> {
        // The team policies first: what they shorten or expire is warned about below.
        let mut given = self.maintain_token_policies().await?;
        let mut w = self.audited().await?;
        // Read once the writer is ours: a token minted while this pass waited is not from the
        // future.
        let now = now_ms();
        usage::prune(w.conn(), day_of(now) - (KEEP_DAYS - 1)).await?;
        let due = tokens::expiring_before(w.conn(), now + 7 * DAY_MS).await?;
        for (row, warned) in due {
            let Some(expires) = row.expires_at else { continue };
            let left = expires - now;
            let (kind, event) = if left <= 0 {
                ("expired", "token.expired")
            } else if left <= DAY_MS {
                ("expiring_1d", "token.expiring")
            } else {
                ("expiring_7d", "token.expiring")
            };
            if warned.split(',').any(|k| k == kind) || !tokens::record_warning(w.conn(), &row.id, kind, now).await? {
                continue;
            }
            // Whole days left, rounded up: 36 hours is "2 days".
            let days_left = (left.max(0) + DAY_MS - 1) / DAY_MS;
            let mut properties = json!({"token_name": row.name, "expires_at": rfc3339(expires)});
            if left > 0 {
                properties["days_left"] = json!(days_left);
            }
            let notice = if left > 0 { EXPIRING } else { EXPIRED };
            notify(w.conn(), &row, notice, &properties).await?;
            w.record(
                AuditDraft::system(event, Some(row.team_id.to_string()))
                    .subject("token", row.id.as_str())
                    .properties(properties),
            );
            given += 1;
        }
        w.commit().await?;
        Ok(given)
    }
}
