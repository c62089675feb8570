//! `team_token_policies`: one row per team that set a token policy (issue 21).

use super::Conn;
use crate::domain::error::{Error, Result};
use crate::domain::token_policy::{PastedTokens, TokenPolicy};

type Row = (Option<i64>, i64, Option<String>, Option<i64>, Option<i64>, String);

/// A team's policy; the default (every knob off) when it never set one.
pub async fn policy(conn: &mut Conn, team_id: &str) -> Result<TokenPolicy> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT max_lifetime_ms, require_expiry, role_abilities, expire_unused_ms, unused_since, mcp_pasted_tokens \
         FROM team_token_policies WHERE team_id = $1",
    )
    .bind(team_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((max_lifetime_ms, require_expiry, roles, expire_unused_ms, unused_since, pasted)) = row else {
        return Ok(TokenPolicy::default());
    };
    let corrupt = |e: String| Error::Internal(anyhow::anyhow!("team {team_id}: {e}"));
    Ok(TokenPolicy {
        max_lifetime_ms,
        require_expiry: require_expiry != 0,
        role_abilities: TokenPolicy::role_abilities_from_stored(roles.as_deref()).map_err(corrupt)?,
        expire_unused_ms,
        unused_since,
        mcp_pasted_tokens: PastedTokens::parse(&pasted).map_err(corrupt)?,
    })
}

/// Stores a team's policy (the one writer of the chain serialises changes).
pub async fn store(conn: &mut Conn, team_id: &str, p: &TokenPolicy, now: i64, by: Option<&str>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO team_token_policies (team_id, max_lifetime_ms, require_expiry, role_abilities, expire_unused_ms, \
         unused_since, mcp_pasted_tokens, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (team_id) DO UPDATE SET max_lifetime_ms = $2, require_expiry = $3, role_abilities = $4, \
         expire_unused_ms = $5, unused_since = $6, mcp_pasted_tokens = $7, updated_at = $8, updated_by = $9",
    )
    .bind(team_id)
    .bind(p.max_lifetime_ms)
    .bind(i64::from(p.require_expiry))
    .bind(p.role_abilities_stored())
    .bind(p.expire_unused_ms)
    .bind(p.unused_since)
    .bind(p.mcp_pasted_tokens.as_str())
    .bind(now)
    .bind(by)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// The teams that have a policy with a lifetime, expiry, role or unused rule (the maintenance
/// pass looks only at their tokens).
pub async fn teams_with_rules(conn: &mut Conn) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT team_id FROM team_token_policies WHERE max_lifetime_ms IS NOT NULL OR require_expiry <> 0 \
         OR role_abilities IS NOT NULL OR expire_unused_ms IS NOT NULL ORDER BY team_id",
    )
    .fetch_all(&mut *conn)
    .await
}
