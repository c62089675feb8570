//! The usage of a person's own tokens for the dashboard (issue 21, item 2): the token page's
//! chart and the sparklines of Settings → API Tokens. The API gives the same counts in
//! `list_team_tokens`. See [`crate::domain::usage`] for what counts.

use std::collections::HashMap;

use crate::domain::error::Result;
use crate::domain::usage::{Tally, Usage, WINDOW_DAYS, day_of};
use crate::service::{Caller, Service};
use crate::store::{now_ms, usage};

impl Service {
    /// The last 30 days of each of `token_ids` that the signed-in person holds in their session's
    /// team (any other id gets nothing), in one query. Every id held gets a usage, zeros included.
    pub async fn own_tokens_usage(&self, caller: &Caller, token_ids: &[&str]) -> Result<HashMap<String, Usage>> {
        let p = caller.in_team()?;
        let today = day_of(now_ms());
        let mut conn = self.db.pool().acquire().await?;
        let mut days: HashMap<String, Vec<(i64, Tally)>> = HashMap::new();
        let rows = usage::of_tokens(
            &mut conn,
            p.team_id.as_str(),
            Some(p.user_id.as_str()),
            token_ids,
            today - (WINDOW_DAYS - 1),
        )
        .await?;
        for (token_id, day, tally) in rows {
            days.entry(token_id).or_default().push((day, tally));
        }
        Ok(token_ids
            .iter()
            .map(|id| {
                let usage = Usage::window(today, days.remove(*id).unwrap_or_default());
                ((*id).to_owned(), usage)
            })
            .collect())
    }
}
