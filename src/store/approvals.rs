//! Approvals (migrations 0007 and 0008): a team's approval policy, per-token budgets and their
//! uses, and the requests of held calls.

use sqlx::FromRow;

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

/// Every budget of a team's tokens: token ID, operation, limit.
pub async fn budgets_of_team(conn: &mut Conn, team_id: &str) -> sqlx::Result<Vec<(String, String, i64)>> {
    sqlx::query_as(
        "SELECT b.token_id, b.operation, b.max_calls FROM token_budgets b JOIN tokens t ON t.id = b.token_id \
         WHERE t.team_id = $1 ORDER BY b.token_id, b.operation",
    )
    .bind(team_id)
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

/// How many budgeted calls of `operation` the token made since `since` (ms).
pub async fn uses_since(conn: &mut Conn, token_id: &str, operation: &str, since: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM token_budget_uses WHERE token_id = $1 AND operation = $2 AND used_at > $3")
        .bind(token_id)
        .bind(operation)
        .bind(since)
        .fetch_one(&mut *conn)
        .await
}

/// Counts one budgeted call.
pub async fn add_use(
    conn: &mut Conn,
    token_id: &str,
    operation: &str,
    now: i64,
    request_id: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO token_budget_uses (token_id, operation, used_at, request_id) VALUES ($1, $2, $3, $4)")
        .bind(token_id)
        .bind(operation)
        .bind(now)
        .bind(request_id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Forgets uses older than `before` (they count in no window any more).
pub async fn prune_uses(conn: &mut Conn, before: i64) -> sqlx::Result<u64> {
    sqlx::query("DELETE FROM token_budget_uses WHERE used_at <= $1")
        .bind(before)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
}

pub const COLUMNS: &str = "id, team_id, project_id, token_id, owner_id, oauth_grant_id, oauth_client_id, client_name, \
     surface, operation, arguments, digest, policy_version, hold, approver_rule, status, requested_at, expires_at, \
     decided_at, decided_by, used_at, used_request_id, voided_reason, reported_at, preview";

/// One approval request, as stored.
#[derive(Clone, Debug, FromRow)]
pub struct ApprovalRow {
    pub id: String,
    pub team_id: String,
    pub project_id: Option<String>,
    pub token_id: String,
    pub owner_id: String,
    pub oauth_grant_id: Option<String>,
    pub oauth_client_id: Option<String>,
    pub client_name: Option<String>,
    pub surface: String,
    pub operation: String,
    pub arguments: String,
    pub digest: String,
    pub policy_version: i64,
    pub hold: String,
    pub approver_rule: String,
    pub status: String,
    pub requested_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub decided_by: Option<String>,
    pub used_at: Option<i64>,
    pub used_request_id: Option<String>,
    pub voided_reason: Option<String>,
    pub reported_at: Option<i64>,
    /// The changes the call's body made when it was held (rolled back), as JSON.
    pub preview: Option<String>,
}

pub async fn insert_request(conn: &mut Conn, r: &ApprovalRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO approval_requests (id, team_id, project_id, token_id, owner_id, oauth_grant_id, oauth_client_id, \
         client_name, surface, operation, arguments, digest, policy_version, hold, approver_rule, status, requested_at, \
         expires_at, preview) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(&r.id)
    .bind(&r.team_id)
    .bind(&r.project_id)
    .bind(&r.token_id)
    .bind(&r.owner_id)
    .bind(&r.oauth_grant_id)
    .bind(&r.oauth_client_id)
    .bind(&r.client_name)
    .bind(&r.surface)
    .bind(&r.operation)
    .bind(&r.arguments)
    .bind(&r.digest)
    .bind(r.policy_version)
    .bind(&r.hold)
    .bind(&r.approver_rule)
    .bind(&r.status)
    .bind(r.requested_at)
    .bind(r.expires_at)
    .bind(&r.preview)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find_request(conn: &mut Conn, id: &str) -> sqlx::Result<Option<ApprovalRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// The latest request of this token for this call (operation and canonical arguments) that has
/// not been answered as unusable yet.
pub async fn latest_open(
    conn: &mut Conn,
    token_id: &str,
    operation: &str,
    arguments: &str,
) -> sqlx::Result<Option<ApprovalRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests WHERE token_id = $1 AND operation = $2 AND arguments = $3 \
         AND reported_at IS NULL ORDER BY requested_at DESC, id DESC LIMIT 1"
    )))
    .bind(token_id)
    .bind(operation)
    .bind(arguments)
    .fetch_optional(&mut *conn)
    .await
}

/// A team's requests, newest first; `status` narrows them; `owner` keeps one person's tokens'.
pub async fn of_team(
    conn: &mut Conn,
    team_id: &str,
    status: Option<&str>,
    owner: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<ApprovalRow>> {
    let mut sql = format!("SELECT {COLUMNS} FROM approval_requests WHERE team_id = $1");
    let mut n = 1;
    for (present, column) in [(status.is_some(), "status"), (owner.is_some(), "owner_id")] {
        if present {
            n += 1;
            sql.push_str(&format!(" AND {column} = ${n}"));
        }
    }
    sql.push_str(&format!(" ORDER BY requested_at DESC, id DESC LIMIT ${}", n + 1));
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(team_id);
    for value in [status, owner].into_iter().flatten() {
        q = q.bind(value);
    }
    q.bind(limit).fetch_all(&mut *conn).await
}

/// Moves a request from one status to another when it is still in `from` (and, for a decision
/// or a use, not expired at `now`); true when it moved.
pub async fn decide(conn: &mut Conn, id: &str, to: &str, by: &str, now: i64) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE approval_requests SET status = $1, decided_at = $2, decided_by = $3 \
         WHERE id = $4 AND status = 'pending' AND expires_at > $2",
    )
    .bind(to)
    .bind(now)
    .bind(by)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Uses a granted request for the call with request ID `request_id`; true when it was usable.
pub async fn consume(conn: &mut Conn, id: &str, now: i64, request_id: Option<&str>) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE approval_requests SET status = 'used', used_at = $1, used_request_id = $2 \
         WHERE id = $3 AND status = 'granted' AND expires_at > $1",
    )
    .bind(now)
    .bind(request_id)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// Marks a request as answered unusable; a pending or granted one past its expiry, or made under
/// an older policy, changes status too (`status`), never a used, denied or voided one.
pub async fn close(conn: &mut Conn, id: &str, status: Option<(&str, Option<&str>)>, now: i64) -> sqlx::Result<()> {
    if let Some((status, reason)) = status {
        sqlx::query(
            "UPDATE approval_requests SET status = $1, voided_reason = COALESCE($2, voided_reason) \
             WHERE id = $3 AND status IN ('pending', 'granted')",
        )
        .bind(status)
        .bind(reason)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("UPDATE approval_requests SET reported_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Expires every pending or granted request past its expiry; the ones that moved.
pub async fn expire_due(conn: &mut Conn, now: i64) -> sqlx::Result<Vec<ApprovalRow>> {
    let due: Vec<ApprovalRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests WHERE status IN ('pending', 'granted') AND expires_at <= $1 \
         ORDER BY requested_at, id LIMIT 500"
    )))
    .bind(now)
    .fetch_all(&mut *conn)
    .await?;
    move_each(conn, due, "expired", None).await
}

/// Moves each row still pending or granted to `status` (with `reason`), one by one, so that a
/// row another writer moved meanwhile is left alone; the rows that moved.
async fn move_each(
    conn: &mut Conn,
    rows: Vec<ApprovalRow>,
    status: &str,
    reason: Option<&str>,
) -> sqlx::Result<Vec<ApprovalRow>> {
    let mut moved = Vec::with_capacity(rows.len());
    for row in rows {
        let done = sqlx::query(
            "UPDATE approval_requests SET status = $1, voided_reason = COALESCE($2, voided_reason) \
             WHERE id = $3 AND status IN ('pending', 'granted')",
        )
        .bind(status)
        .bind(reason)
        .bind(&row.id)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() == 1 {
            moved.push(row);
        }
    }
    Ok(moved)
}

/// Which pending or granted requests a change voids.
#[derive(Clone, Copy, Debug)]
pub enum Voids<'a> {
    /// Those of one token.
    Token(&'a str),
    /// Those of every token issued under one OAuth grant.
    Grant(&'a str),
    /// Those of every token a person owns in a team.
    Owner { team_id: &'a str, user_id: &'a str },
}

/// Voids the pending and granted requests `which` names; the ones that moved.
pub async fn void(conn: &mut Conn, which: Voids<'_>, reason: &str) -> sqlx::Result<Vec<ApprovalRow>> {
    let (clause, binds) = match which {
        Voids::Token(id) => ("token_id = $1", vec![id]),
        Voids::Grant(id) => ("oauth_grant_id = $1", vec![id]),
        Voids::Owner { team_id, user_id } => ("team_id = $1 AND owner_id = $2", vec![team_id, user_id]),
    };
    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approval_requests WHERE {clause} AND status IN ('pending', 'granted') \
         ORDER BY requested_at, id"
    )));
    for b in binds {
        q = q.bind(b);
    }
    let rows: Vec<ApprovalRow> = q.fetch_all(&mut *conn).await?;
    move_each(conn, rows, "voided", Some(reason)).await
}

/// Every budget of a token with its uses since `since`: (operation, limit, used).
pub async fn budgets_used(conn: &mut Conn, token_id: &str, since: i64) -> sqlx::Result<Vec<(String, i64, i64)>> {
    sqlx::query_as(
        "SELECT b.operation, b.max_calls, (SELECT COUNT(*) FROM token_budget_uses u \
         WHERE u.token_id = b.token_id AND u.operation = b.operation AND u.used_at > $2) \
         FROM token_budgets b WHERE b.token_id = $1 ORDER BY b.operation",
    )
    .bind(token_id)
    .bind(since)
    .fetch_all(&mut *conn)
    .await
}

/// How many requests of a team are pending and unexpired at `now`; `owner` keeps one person's.
pub async fn count_pending(conn: &mut Conn, team_id: &str, owner: Option<&str>, now: i64) -> sqlx::Result<i64> {
    let mut sql =
        "SELECT COUNT(*) FROM approval_requests WHERE team_id = $1 AND status = 'pending' AND expires_at > $2"
            .to_owned();
    if owner.is_some() {
        sql.push_str(" AND owner_id = $3");
    }
    let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(team_id).bind(now);
    if let Some(owner) = owner {
        q = q.bind(owner);
    }
    q.fetch_one(&mut *conn).await
}

/// Whether any request is pending or granted past `now`, or any budget use older than
/// `uses_before`: what the timer would have to write (read first, so an idle server never takes
/// the writer every few seconds for nothing).
pub async fn sweep_due(conn: &mut Conn, now: i64, uses_before: i64) -> sqlx::Result<(bool, bool)> {
    let expiring: Option<String> = sqlx::query_scalar(
        "SELECT id FROM approval_requests WHERE status IN ('pending', 'granted') AND expires_at <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    let stale: Option<i64> = sqlx::query_scalar("SELECT used_at FROM token_budget_uses WHERE used_at <= $1 LIMIT 1")
        .bind(uses_before)
        .fetch_optional(&mut *conn)
        .await?;
    Ok((expiring.is_some(), stale.is_some()))
}
