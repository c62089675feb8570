//! `tokens`: metadata and the digest of each token; the plaintext is never here.

use schemars::JsonSchema;
use serde::Serialize;
use sqlx::{AssertSqlSafe, FromRow};

use super::{Conn, now_ms};
use crate::domain::ids::{TeamId, UserId};

/// A token as the API shows it: everything but the digest.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// `live` or `test`.
    pub env: String,
    pub team_id: String,
    pub user_id: String,
    pub abilities: Vec<String>,
    /// The projects it is limited to; `null`: the whole team.
    pub project_ids: Option<Vec<String>>,
    /// `scope:team:<id>`, then `scope:project:<id>` for each project.
    pub scopes: Vec<String>,
    #[schemars(with = "crate::domain::time::Rfc3339Time")]
    pub created_at: String,
    #[schemars(with = "Option<crate::domain::time::Rfc3339Time>")]
    pub expires_at: Option<String>,
    #[schemars(with = "Option<crate::domain::time::Rfc3339Time>")]
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    #[schemars(with = "Option<crate::domain::time::Rfc3339Time>")]
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
    pub replaced_by: Option<String>,
    /// The CIDR blocks (IPv4, IPv6) it may be used from; `null`: anywhere.
    pub allowed_ips: Option<Vec<String>>,
    /// Superseded by `replaced_by` in a rotation with a grace: it still works until then.
    #[schemars(with = "Option<crate::domain::time::Rfc3339Time>")]
    pub grace_until: Option<String>,
}

/// A stored token: metadata and the digest; the plaintext is never here.
#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    pub id: String,
    pub env: String,
    pub digest: String,
    pub team_id: TeamId,
    pub user_id: UserId,
    pub name: String,
    pub abilities: String,
    pub project_ids: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub replaced_by: Option<String>,
    /// The CIDR blocks it may be used from (JSON array), or `None`: anywhere.
    pub allowed_ips: Option<String>,
    /// Superseded by a rotation with a grace: it works until then (ms).
    pub grace_until: Option<i64>,
}

impl TokenRow {
    pub fn ability_names(&self) -> Vec<String> {
        serde_json::from_str(&self.abilities).unwrap_or_default()
    }

    /// The project scope (`None`: the whole team). Unreadable is an error, never "no scope".
    pub fn project_id_list(&self) -> serde_json::Result<Option<Vec<String>>> {
        self.project_ids.as_deref().map(serde_json::from_str).transpose()
    }

    /// The public view: everything but the digest.
    pub fn view(&self) -> TokenView {
        use crate::domain::time::rfc3339;
        let projects = self.project_id_list().unwrap_or_default();
        let mut scopes = vec![format!("scope:team:{}", self.team_id)];
        for p in projects.iter().flatten() {
            scopes.push(format!("scope:project:{p}"));
        }
        TokenView {
            id: self.id.clone(),
            name: self.name.clone(),
            env: self.env.clone(),
            team_id: self.team_id.to_string(),
            user_id: self.user_id.to_string(),
            abilities: self.ability_names(),
            project_ids: projects,
            scopes,
            created_at: rfc3339(self.created_at),
            expires_at: self.expires_at.map(rfc3339),
            last_used_at: self.last_used_at.map(rfc3339),
            last_used_ip: self.last_used_ip.clone(),
            revoked_at: self.revoked_at.map(rfc3339),
            revoked_reason: self.revoked_reason.clone(),
            replaced_by: self.replaced_by.clone(),
            allowed_ips: self.allowed_ips.as_deref().and_then(|s| serde_json::from_str(s).ok()),
            grace_until: self.grace_until.map(rfc3339),
        }
    }

    /// [`TokenRow::view`] as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.view()).unwrap_or_default()
    }
}

pub const TOKEN_COLUMNS: &str = "id, env, digest, team_id, user_id, name, abilities, project_ids, \
     created_at, expires_at, last_used_at, last_used_ip, revoked_at, revoked_reason, replaced_by, allowed_ips, grace_until";

pub async fn find(conn: &mut Conn, id: &str) -> sqlx::Result<Option<TokenRow>> {
    sqlx::query_as::<_, TokenRow>(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn insert(conn: &mut Conn, row: &TokenRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO tokens (id, env, digest, team_id, user_id, name, abilities, project_ids, created_at, expires_at, \
         allowed_ips) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&row.id)
    .bind(&row.env)
    .bind(&row.digest)
    .bind(row.team_id.as_str())
    .bind(row.user_id.as_str())
    .bind(&row.name)
    .bind(&row.abilities)
    .bind(&row.project_ids)
    .bind(row.created_at)
    .bind(row.expires_at)
    .bind(&row.allowed_ips)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// Revokes a token that is not revoked yet (a second revoke keeps the first time and reason);
/// true when this call revoked it.
pub async fn revoke(conn: &mut Conn, id: &str, reason: &str) -> sqlx::Result<bool> {
    sqlx::query("UPDATE tokens SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(reason)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
}

pub async fn set_replaced_by(conn: &mut Conn, id: &str, replacement: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE tokens SET replaced_by = $1 WHERE id = $2")
        .bind(replacement)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// One page of a user's tokens in a team, newest first. OAuth access tokens are not listed:
/// each refresh issues one, and their grant is what the person sees (Connected apps).
pub async fn page_of_owner(
    conn: &mut Conn,
    team_id: &str,
    user_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<TokenRow>, i64)> {
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM tokens WHERE team_id = $1 AND user_id = $2 AND oauth_grant_id IS NULL",
    )
    .bind(team_id)
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await?;
    let rows = sqlx::query_as::<_, TokenRow>(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE team_id = $1 AND user_id = $2 AND oauth_grant_id IS NULL \
         ORDER BY created_at DESC, id LIMIT $3 OFFSET $4"
    )))
    .bind(team_id)
    .bind(user_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows, total))
}

/// A live token of a team with its owner, as the dashboard's budget form offers it.
#[derive(Clone, Debug, FromRow)]
pub struct TeamToken {
    pub id: String,
    pub name: String,
    pub owner_name: String,
    pub owner_email: String,
}

/// A team's tokens that are neither revoked nor expired at `now`, by owner then newest first.
/// OAuth access tokens are left out: each refresh replaces one, so a budget set on it would not
/// outlive the hour.
pub async fn live_of_team(conn: &mut Conn, team_id: &str, now: i64) -> sqlx::Result<Vec<TeamToken>> {
    sqlx::query_as(
        "SELECT t.id, t.name, u.name AS owner_name, u.email AS owner_email FROM tokens t \
         JOIN users u ON u.id = t.user_id \
         WHERE t.team_id = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
         AND t.oauth_grant_id IS NULL ORDER BY u.email, t.created_at DESC, t.id",
    )
    .bind(team_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await
}

/// Operator listing, by owner email and/or team, newest first.
pub async fn list(conn: &mut Conn, user_email: Option<&str>, team_id: Option<&str>) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as::<_, TokenRow>(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE ($1 = '' OR user_id IN (SELECT id FROM users WHERE email = $1)) \
         AND ($2 = '' OR team_id = $2) ORDER BY created_at DESC, id"
    )))
    .bind(user_email.unwrap_or_default())
    .bind(team_id.unwrap_or_default())
    .fetch_all(&mut *conn)
    .await
}

/// A token with what authentication needs of its owner: their role in the token's team now
/// (`None` when they are no longer in it), email and name.
#[derive(FromRow)]
pub struct AuthRow {
    #[sqlx(flatten)]
    pub token: TokenRow,
    pub role: Option<String>,
    pub email: String,
    pub user_name: String,
    /// For an OAuth access token: its grant, the grant's client, and whether the grant was
    /// revoked (its tokens are revoked with it; this is read too, so neither can be missed).
    pub oauth_grant_id: Option<String>,
    pub oauth_client_id: Option<String>,
    pub grant_revoked_at: Option<i64>,
    /// The team's unused rule (`expire_unused_ms`, `unused_since`) and whether pasted tokens may
    /// use `/mcp`, read in the same statement (issue 21): NULL when the team has no policy.
    pub expire_unused_ms: Option<i64>,
    pub unused_since: Option<i64>,
    pub mcp_pasted_tokens: Option<String>,
}

/// The token `id` with what authentication needs, or, when no token has that ID, the token
/// `decoy` (one that exists) instead. Either way the statement looks the ID up, finds one token,
/// joins its owner and returns one row of the same shape, so an unknown ID costs the time of a
/// known one (SPEC §2); the caller tells them apart by the row's ID. `None` only when no `decoy`
/// is given (there is no token yet) and the ID is unknown.
///
/// Spelled out rather than formatted from [`TOKEN_COLUMNS`]: it runs on every request.
pub async fn find_for_auth(conn: &mut Conn, id: &str, decoy: Option<&str>) -> sqlx::Result<Option<AuthRow>> {
    sqlx::query_as::<_, AuthRow>(
        "SELECT t.id, t.env, t.digest, t.team_id, t.user_id, t.name, t.abilities, t.project_ids, t.created_at, \
         t.expires_at, t.last_used_at, t.last_used_ip, t.revoked_at, t.revoked_reason, t.replaced_by, t.allowed_ips, \
         t.grace_until, \
         m.role, u.email, u.name AS user_name, \
         t.oauth_grant_id, g.client_id AS oauth_client_id, g.revoked_at AS grant_revoked_at, \
         p.expire_unused_ms, p.unused_since, p.mcp_pasted_tokens FROM tokens t \
         JOIN users u ON u.id = t.user_id \
         LEFT JOIN team_members m ON m.team_id = t.team_id AND m.user_id = t.user_id \
         LEFT JOIN oauth_grants g ON g.id = t.oauth_grant_id \
         LEFT JOIN team_token_policies p ON p.team_id = t.team_id \
         WHERE t.id = COALESCE((SELECT k.id FROM tokens k WHERE k.id = $1), $2)",
    )
    .bind(id)
    .bind(decoy)
    .fetch_optional(&mut *conn)
    .await
}

/// The ID of a token that exists, if any: the decoy of [`find_for_auth`]. Tokens are never
/// deleted, so once there is one it stays.
pub async fn any_id(conn: &mut Conn) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT MIN(id) FROM tokens")
        .fetch_one(&mut *conn)
        .await
}

/// Records a use unless one was recorded in the last `window_ms`: the condition makes concurrent
/// replicas agree on which one writes. True when this call recorded it.
pub async fn touch_last_used(
    conn: &mut Conn,
    id: &str,
    ip: Option<&str>,
    now: i64,
    window_ms: i64,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE tokens SET last_used_at = $1, last_used_ip = $2 \
         WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $4)",
    )
    .bind(now)
    .bind(ip)
    .bind(id)
    .bind(now - window_ms)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

/// A token's revocation and expiry with the role its owner holds now in `team_id` (none when
/// they left it), in one statement; `None` when the token does not exist.
pub async fn state_and_role(
    conn: &mut Conn,
    id: &str,
    team_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<(Option<i64>, Option<i64>, Option<String>)>> {
    sqlx::query_as(
        "SELECT t.revoked_at, CASE WHEN t.grace_until IS NOT NULL AND (t.expires_at IS NULL OR t.grace_until < t.expires_at) \
         THEN t.grace_until ELSE t.expires_at END, m.role FROM tokens t \
         LEFT JOIN team_members m ON m.team_id = $2 AND m.user_id = $3 WHERE t.id = $1",
    )
    .bind(id)
    .bind(team_id)
    .bind(user_id)
    .fetch_optional(&mut *conn)
    .await
}

/// Revokes every live token a user holds in a team; returns their ids.
pub async fn revoke_all_of_member(
    conn: &mut Conn,
    team_id: &str,
    user_id: &str,
    reason: &str,
) -> sqlx::Result<Vec<String>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM tokens WHERE team_id = $1 AND user_id = $2 AND revoked_at IS NULL ORDER BY id",
    )
    .bind(team_id)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?;
    for id in &ids {
        revoke(conn, id, reason).await?;
    }
    Ok(ids)
}

/// Replaces a token's network allowlist (`None`: anywhere).
pub async fn set_allowed_ips(conn: &mut Conn, id: &str, allowed: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE tokens SET allowed_ips = $1 WHERE id = $2")
        .bind(allowed)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Marks a token superseded by `replacement` until `grace_until` (it keeps working till then).
pub async fn supersede(conn: &mut Conn, id: &str, replacement: &str, grace_until: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE tokens SET replaced_by = $1, grace_until = $2 WHERE id = $3")
        .bind(replacement)
        .bind(grace_until)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Live tokens that expire before `until` (ms), with the warnings already given for each (as a
/// comma-separated list, empty when none).
pub async fn expiring_before(conn: &mut Conn, until: i64) -> sqlx::Result<Vec<(TokenRow, String)>> {
    let rows: Vec<TokenRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS} FROM tokens WHERE revoked_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 \
         AND NOT EXISTS (SELECT 1 FROM token_warnings w WHERE w.token_id = tokens.id AND w.kind = 'expired') \
         ORDER BY expires_at, id LIMIT 1000"
    )))
    .bind(until)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let given: Vec<String> = sqlx::query_scalar("SELECT kind FROM token_warnings WHERE token_id = $1")
            .bind(&row.id)
            .fetch_all(&mut *conn)
            .await?;
        out.push((row, given.join(",")));
    }
    Ok(out)
}

/// Records that a warning was given; false when it had been already (another replica).
pub async fn record_warning(conn: &mut Conn, token_id: &str, kind: &str, now: i64) -> sqlx::Result<bool> {
    sqlx::query("INSERT INTO token_warnings (token_id, kind, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
        .bind(token_id)
        .bind(kind)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
}

/// What a team's inventory is narrowed to; every filter left `None` lets everything through.
#[derive(Clone, Debug, Default)]
pub struct TeamTokenFilter<'a> {
    pub user_id: Option<&'a str>,
    /// An ability name the token must carry.
    pub ability: Option<&'a str>,
    /// The ability names that permit writes, with whether the token must carry one of them
    /// (`true`) or none of them (`false`).
    pub can_write: Option<(&'a [&'static str], bool)>,
    /// Not used since this time (a token never used: not since it was minted).
    pub idle_since: Option<i64>,
    /// Expiring after `now` and by this time.
    pub expires_by: Option<i64>,
    /// Never used (`true`) or used at least once (`false`).
    pub never_used: Option<bool>,
}

/// A token of a team with its owner, as the team's inventory shows it.
#[derive(Clone, Debug, FromRow)]
pub struct InventoryRow {
    #[sqlx(flatten)]
    pub token: TokenRow,
    /// Set on an OAuth access token: the grant that issued it.
    pub oauth_grant_id: Option<String>,
    pub owner_email: String,
    pub owner_name: String,
    /// The client of its latest successful call: the MCP client's name, else the User-Agent.
    pub last_used_client: Option<String>,
}

/// One page of a team's tokens (minted and OAuth, live or not), newest first, and how many match.
///
/// The ability filters look into the JSON array of names (`"name"` with its quotes, so one
/// name never matches inside another); the names come from the catalog, never from the caller.
pub async fn page_of_team(
    conn: &mut Conn,
    team_id: &str,
    filter: &TeamTokenFilter<'_>,
    now: i64,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<InventoryRow>, i64)> {
    let writes = match filter.can_write {
        Some((names, wants)) => {
            let any = names
                .iter()
                .map(|n| format!("abilities LIKE '%\"{n}\"%'"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let any = if any.is_empty() { "1 = 0".to_owned() } else { any };
            format!(" AND {}({any})", if wants { "" } else { "NOT " })
        }
        None => String::new(),
    };
    let writes = match filter.never_used {
        Some(true) => format!("{writes} AND last_used_at IS NULL"),
        Some(false) => format!("{writes} AND last_used_at IS NOT NULL"),
        None => writes,
    };
    let filters = format!(
        "team_id = $1 AND ($2 = '' OR user_id = $2) AND ($3 = '' OR abilities LIKE $3) \
         AND ($4 < 0 OR COALESCE(last_used_at, created_at) < $4) \
         AND ($5 < 0 OR (expires_at > $6 AND expires_at <= $5)){writes}"
    );
    let ability = filter.ability.map(|a| format!("%\"{a}\"%")).unwrap_or_default();
    let total: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM tokens WHERE {filters}")))
        .bind(team_id)
        .bind(filter.user_id.unwrap_or_default())
        .bind(&ability)
        .bind(filter.idle_since.unwrap_or(-1))
        .bind(filter.expires_by.unwrap_or(-1))
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query_as::<_, InventoryRow>(AssertSqlSafe(format!(
        "SELECT {TOKEN_COLUMNS}, oauth_grant_id, \
         (SELECT u.email FROM users u WHERE u.id = tokens.user_id) AS owner_email, \
         (SELECT u.name FROM users u WHERE u.id = tokens.user_id) AS owner_name, \
         (SELECT COALESCE(a.client, a.user_agent) FROM audit_log a WHERE a.team_id = tokens.team_id \
          AND a.token_id = tokens.id AND a.outcome = 'success' ORDER BY a.seq DESC LIMIT 1) AS last_used_client \
         FROM tokens WHERE {filters} ORDER BY created_at DESC, id LIMIT $7 OFFSET $8"
    )))
    .bind(team_id)
    .bind(filter.user_id.unwrap_or_default())
    .bind(&ability)
    .bind(filter.idle_since.unwrap_or(-1))
    .bind(filter.expires_by.unwrap_or(-1))
    .bind(now)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows, total))
}

/// A live token minted by a person (no OAuth access token) with the role its owner holds now.
#[derive(FromRow)]
pub struct LiveMinted {
    #[sqlx(flatten)]
    pub token: TokenRow,
    pub role: Option<String>,
}

/// A team's live minted tokens (neither revoked nor expired at `now`) with their owners' roles,
/// oldest first: what the token policy is applied to.
pub async fn live_minted_of_team(conn: &mut Conn, team_id: &str, now: i64) -> sqlx::Result<Vec<LiveMinted>> {
    sqlx::query_as::<_, LiveMinted>(AssertSqlSafe(format!(
        "SELECT {}, m.role FROM tokens t \
         LEFT JOIN team_members m ON m.team_id = t.team_id AND m.user_id = t.user_id \
         WHERE t.team_id = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2) \
         AND t.oauth_grant_id IS NULL ORDER BY t.created_at, t.id",
        TOKEN_COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(team_id)
    .bind(now)
    .fetch_all(&mut *conn)
    .await
}

/// Sets a token's expiry (the team's token policy shortening it).
pub async fn set_expiry(conn: &mut Conn, id: &str, expires_at: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE tokens SET expires_at = $1 WHERE id = $2")
        .bind(expires_at)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}
