//! Tokens' calls per UTC day (migration 0013): added to as entries are chained (see
//! [`crate::domain::usage`] for what counts), read for a page of tokens in one query, pruned by
//! the maintenance pass.

use std::collections::BTreeMap;

use sqlx::AssertSqlSafe;

use super::Conn;
use crate::domain::usage::Tally;

/// Rows per multi-row upsert (6 parameters each).
const ROWS_PER_UPSERT: usize = 64;

/// What a batch of entries adds, per token, on one day.
#[derive(Debug, Default)]
pub struct Added {
    /// By token id: its team and its counts.
    per_token: BTreeMap<String, (String, Tally)>,
}

impl Added {
    pub fn add(&mut self, token_id: &str, team_id: &str, tally: Tally) {
        match self.per_token.get_mut(token_id) {
            Some((_, t)) => t.add(tally),
            None => {
                self.per_token.insert(token_id.to_owned(), (team_id.to_owned(), tally));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.per_token.is_empty()
    }
}

/// Adds a batch's counts to `day`: one statement for every token in it (in chunks of
/// [`ROWS_PER_UPSERT`]), whatever the number of calls. Must run in the transaction that appends
/// the entries.
pub async fn add(conn: &mut Conn, day: i64, added: Added) -> sqlx::Result<()> {
    let rows: Vec<_> = added.per_token.into_iter().collect();
    for chunk in rows.chunks(ROWS_PER_UPSERT) {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| {
                let n = i * 6;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO token_usage_daily (token_id, day, team_id, successes, refusals, writes) VALUES {} \
             ON CONFLICT (token_id, day) DO UPDATE SET \
             successes = token_usage_daily.successes + excluded.successes, \
             refusals = token_usage_daily.refusals + excluded.refusals, \
             writes = token_usage_daily.writes + excluded.writes",
            values.join(", ")
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (token_id, (team_id, t)) in chunk {
            q = q
                .bind(token_id)
                .bind(day)
                .bind(team_id)
                .bind(t.successes)
                .bind(t.refusals)
                .bind(t.writes);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The stored days from `first_day` on of these tokens of the team (only the ones `owner` holds,
/// when given): `(token_id, day, tally)`, in one query.
pub async fn of_tokens(
    conn: &mut Conn,
    team_id: &str,
    owner: Option<&str>,
    token_ids: &[&str],
    first_day: i64,
) -> sqlx::Result<Vec<(String, i64, Tally)>> {
    if token_ids.is_empty() {
        return Ok(Vec::new());
    }
    let slots: Vec<String> = (0..token_ids.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "SELECT token_id, day, successes, refusals, writes FROM token_usage_daily \
         WHERE team_id = $1 AND day >= $2 AND token_id IN ({}) \
         AND ($3 = '' OR token_id IN (SELECT id FROM tokens WHERE team_id = $1 AND user_id = $3))",
        slots.join(", ")
    );
    let mut q = sqlx::query_as::<_, (String, i64, i64, i64, i64)>(AssertSqlSafe(sql))
        .bind(team_id)
        .bind(first_day)
        .bind(owner.unwrap_or_default());
    for id in token_ids {
        q = q.bind(*id);
    }
    Ok(q.fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(token_id, day, successes, refusals, writes)| {
            (
                token_id,
                day,
                Tally {
                    successes,
                    refusals,
                    writes,
                },
            )
        })
        .collect())
}

/// Removes the days before `first_kept`; how many rows went.
pub async fn prune(conn: &mut Conn, first_kept: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM token_usage_daily WHERE day < $1")
        .bind(first_kept)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
}
