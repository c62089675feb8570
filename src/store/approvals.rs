//! Approvals (migration 0007): a team's approval policy and per-token budgets. The requests
//! table (`approval_requests`) gets its SQL with the calls that hold and run (issue 20, items 2–4).

use super::Conn;

/// A stored policy row: rules (JSON), approver, version.
pub type PolicyRow = (String, String, i64);

pub async fn find_policy(conn: &mut Conn, team_id: &str) -> sqlx::Result<Option<PolicyRow>> {
    sqlx::query_as("SELECT rules, approver, version FROM team_approval_policies WHERE team_id = $1")
        .bind(team_id)
        .fetch_optional(&mut *conn)
        .await
}

/// Stores version `version` of a team's policy over `version - 1`. False when another writer
/// changed it first (its version is no longer `version - 1`).
pub async fn store_policy(
    conn: &mut Conn,
    team_id: &str,
    rules: &str,
    approver: &str,
    version: i64,
    now: i64,
    by: Option<&str>,
) -> sqlx::Result<bool> {
    let done = if version == 1 {
        sqlx::query(
            "INSERT INTO team_approval_policies (team_id, rules, approver, version, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(team_id)
        .bind(rules)
        .bind(approver)
        .bind(version)
        .bind(now)
        .bind(by)
        .execute(&mut *conn)
        .await
    } else {
        sqlx::query(
            "UPDATE team_approval_policies SET rules = $1, approver = $2, version = $3, updated_at = $4, \
             updated_by = $5 WHERE team_id = $6 AND version = $7",
        )
        .bind(rules)
        .bind(approver)
        .bind(version)
        .bind(now)
        .bind(by)
        .bind(team_id)
        .bind(version - 1)
        .execute(&mut *conn)
        .await
    };
    match done {
        Ok(r) => Ok(r.rows_affected() == 1),
        Err(e) if super::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A token's budget of one operation: calls per rolling 24 h.
pub async fn budget(conn: &mut Conn, token_id: &str, operation: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar("SELECT max_calls FROM token_budgets WHERE token_id = $1 AND operation = $2")
        .bind(token_id)
        .bind(operation)
        .fetch_optional(&mut *conn)
        .await
}

/// Every budget of a token, by operation.
pub async fn budgets_of(conn: &mut Conn, token_id: &str) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT operation, max_calls FROM token_budgets WHERE token_id = $1 ORDER BY operation")
        .bind(token_id)
        .fetch_all(&mut *conn)
        .await
}

/// Sets a budget (replacing one of the same token and operation).
pub async fn set_budget(
    conn: &mut Conn,
    token_id: &str,
    operation: &str,
    max_calls: i64,
    now: i64,
    by: Option<&str>,
) -> sqlx::Result<()> {
    let updated = sqlx::query(
        "UPDATE token_budgets SET max_calls = $1, updated_at = $2, updated_by = $3 \
         WHERE token_id = $4 AND operation = $5",
    )
    .bind(max_calls)
    .bind(now)
    .bind(by)
    .bind(token_id)
    .bind(operation)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        sqlx::query(
            "INSERT INTO token_budgets (token_id, operation, max_calls, created_at, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_id)
        .bind(operation)
        .bind(max_calls)
        .bind(now)
        .bind(by)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Removes a budget; true when there was one.
pub async fn remove_budget(conn: &mut Conn, token_id: &str, operation: &str) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM token_budgets WHERE token_id = $1 AND operation = $2")
        .bind(token_id)
        .bind(operation)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
}
