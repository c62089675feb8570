//! The usage of a person's own tokens for the dashboard (issue 21, item 2): the token page's
//! chart and the sparklines of Settings → API Tokens. The API gives the same counts in
//! `list_team_tokens`. See [`crate::domain::usage`] for what counts.

use std::collections::HashMap;

use crate::domain::error::Result;
use crate::domain::usage::{Usage, WINDOW_DAYS, day_of};
use crate::service::{Caller, Service};
use crate::store::{now_ms, usage};

impl Service {
    /// The last 30 days of each of `token_ids` that the signed-in person holds in their session's
    /// team, in one query: every id asked gets a usage, and one the person does not hold (another's,
    /// another team's, none) only zeros.
    pub async fn own_tokens_usage(&self, caller: &Caller, token_ids: &[&str]) -> Result<HashMap<String, Usage>> {
        let p = caller.in_team()?;
        let today = day_of(now_ms());
        let mut conn = self.db.pool().acquire().await?;
        let rows = usage::of_tokens(
            &mut conn,
            p.team_id.as_str(),
            Some(p.user_id.as_str()),
            token_ids,
            today - (WINDOW_DAYS - 1),
        )
        .await?;
        Ok(Usage::per_token(today, token_ids, rows))
    }
}
