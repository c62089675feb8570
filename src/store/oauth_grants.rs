//! The authorization-code flow's tables (migration 0006): `oauth_authorization_requests` (what a
//! consent form is bound to), `oauth_grants` (connected apps), `oauth_codes` and
//! `oauth_refresh_tokens`. Secrets are here only as SHA-256 digests.

use sqlx::{AssertSqlSafe, FromRow};

use super::Conn;
use super::tokens::TokenRow;

// ---------------------------------------------------------------- authorization requests

#[derive(Clone, Debug, FromRow)]
pub struct RequestRow {
    pub handle_digest: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub state: Option<String>,
    pub resource: String,
    pub scope: Option<String>,
    pub user_id: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub answered_at: Option<i64>,
}

pub async fn insert_request(conn: &mut Conn, r: &RequestRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_authorization_requests (handle_digest, client_id, redirect_uri, code_challenge, state, \
         resource, scope, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.handle_digest)
    .bind(&r.client_id)
    .bind(&r.redirect_uri)
    .bind(&r.code_challenge)
    .bind(&r.state)
    .bind(&r.resource)
    .bind(&r.scope)
    .bind(&r.user_id)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find_request(conn: &mut Conn, handle_digest: &str) -> sqlx::Result<Option<RequestRow>> {
    sqlx::query_as(
        "SELECT handle_digest, client_id, redirect_uri, code_challenge, state, resource, scope, user_id, \
         created_at, expires_at, answered_at FROM oauth_authorization_requests WHERE handle_digest = $1",
    )
    .bind(handle_digest)
    .fetch_optional(&mut *conn)
    .await
}

/// Forgets requests that expired before `before` (answered or not): nothing refers to them.
pub async fn sweep_requests(conn: &mut Conn, before: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM oauth_authorization_requests WHERE expires_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Marks a request answered; false when it already was (a form is answered once).
pub async fn answer_request(conn: &mut Conn, handle_digest: &str, now: i64) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE oauth_authorization_requests SET answered_at = $1 WHERE handle_digest = $2 AND answered_at IS NULL",
    )
    .bind(now)
    .bind(handle_digest)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

// ---------------------------------------------------------------- grants

#[derive(Clone, Debug, FromRow)]
pub struct GrantRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub team_id: String,
    pub abilities: String,
    pub project_ids: Option<String>,
    pub redirect_uri: String,
    pub resource: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub use_count: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
    pub revoked_by: Option<String>,
}

impl GrantRow {
    pub fn ability_names(&self) -> Vec<String> {
        serde_json::from_str(&self.abilities).unwrap_or_default()
    }

    pub fn project_id_list(&self) -> Vec<String> {
        self.project_ids
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default()
    }
}

const GRANT_COLUMNS: &str = "id, client_id, user_id, team_id, abilities, project_ids, redirect_uri, resource, \
     created_at, last_used_at, use_count, revoked_at, revoked_reason, revoked_by";

pub async fn insert_grant(conn: &mut Conn, g: &GrantRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_grants (id, client_id, user_id, team_id, abilities, project_ids, redirect_uri, resource, \
         created_at, use_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0)",
    )
    .bind(&g.id)
    .bind(&g.client_id)
    .bind(&g.user_id)
    .bind(&g.team_id)
    .bind(&g.abilities)
    .bind(&g.project_ids)
    .bind(&g.redirect_uri)
    .bind(&g.resource)
    .bind(g.created_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find_grant(conn: &mut Conn, id: &str) -> sqlx::Result<Option<GrantRow>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// A person's live grants to one client (to replace on re-authorisation).
pub async fn live_grants_of_client(conn: &mut Conn, client_id: &str, user_id: &str) -> sqlx::Result<Vec<GrantRow>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE client_id = $1 AND user_id = $2 AND revoked_at IS NULL"
    )))
    .bind(client_id)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

/// Every live grant of a client, whoever gave it.
pub async fn live_grant_ids_of_client(conn: &mut Conn, client_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT id FROM oauth_grants WHERE client_id = $1 AND revoked_at IS NULL ORDER BY id")
        .bind(client_id)
        .fetch_all(&mut *conn)
        .await
}

/// A person's live grants in one team.
pub async fn live_grant_ids_of_member(conn: &mut Conn, team_id: &str, user_id: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM oauth_grants WHERE team_id = $1 AND user_id = $2 AND revoked_at IS NULL ORDER BY id",
    )
    .bind(team_id)
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

/// A person's live grants in every team, newest first.
pub async fn live_grants_of_user(conn: &mut Conn, user_id: &str) -> sqlx::Result<Vec<GrantRow>> {
    sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE user_id = $1 AND revoked_at IS NULL \
         ORDER BY created_at DESC, id"
    )))
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

/// Revokes a grant, its live access tokens and its live refresh tokens; false when the grant
/// was already revoked (nothing changes then).
pub async fn revoke_grant(conn: &mut Conn, id: &str, reason: &str, by: Option<&str>, now: i64) -> sqlx::Result<bool> {
    let revoked = sqlx::query(
        "UPDATE oauth_grants SET revoked_at = $1, revoked_reason = $2, revoked_by = $3 \
         WHERE id = $4 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(by)
    .bind(id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    sqlx::query(
        "UPDATE tokens SET revoked_at = $1, revoked_reason = $2 WHERE oauth_grant_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE oauth_refresh_tokens SET revoked_at = $1, revoked_reason = $2 WHERE grant_id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(revoked)
}

/// Records a use of a grant (with its token's `last_used_at`, at most once a minute per token).
pub async fn touch_grant(conn: &mut Conn, id: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE oauth_grants SET last_used_at = $1, use_count = use_count + 1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Inserts an access token row naming its grant.
pub async fn insert_access_token(conn: &mut Conn, row: &TokenRow, grant_id: &str) -> sqlx::Result<()> {
    super::tokens::insert(conn, row).await?;
    sqlx::query("UPDATE tokens SET oauth_grant_id = $1 WHERE id = $2")
        .bind(grant_id)
        .bind(&row.id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

// ---------------------------------------------------------------- codes

#[derive(Clone, Debug, FromRow)]
pub struct CodeRow {
    pub code_digest: String,
    pub grant_id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub access_token_id: Option<String>,
    pub refresh_token_id: Option<String>,
}

pub async fn insert_code(conn: &mut Conn, c: &CodeRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_codes (code_digest, grant_id, client_id, redirect_uri, code_challenge, resource, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&c.code_digest)
    .bind(&c.grant_id)
    .bind(&c.client_id)
    .bind(&c.redirect_uri)
    .bind(&c.code_challenge)
    .bind(&c.resource)
    .bind(c.created_at)
    .bind(c.expires_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find_code(conn: &mut Conn, code_digest: &str) -> sqlx::Result<Option<CodeRow>> {
    sqlx::query_as(
        "SELECT code_digest, grant_id, client_id, redirect_uri, code_challenge, resource, created_at, expires_at, \
         used_at, access_token_id, refresh_token_id FROM oauth_codes WHERE code_digest = $1",
    )
    .bind(code_digest)
    .fetch_optional(&mut *conn)
    .await
}

/// Marks a code used (once) with what it gave; false when it was used already.
pub async fn use_code(
    conn: &mut Conn,
    code_digest: &str,
    now: i64,
    access_token_id: &str,
    refresh_token_id: &str,
) -> sqlx::Result<bool> {
    sqlx::query(
        "UPDATE oauth_codes SET used_at = $1, access_token_id = $2, refresh_token_id = $3 \
         WHERE code_digest = $4 AND used_at IS NULL",
    )
    .bind(now)
    .bind(access_token_id)
    .bind(refresh_token_id)
    .bind(code_digest)
    .execute(&mut *conn)
    .await
    .map(|r| r.rows_affected() == 1)
}

// ---------------------------------------------------------------- refresh tokens

#[derive(Clone, Debug, FromRow)]
pub struct RefreshRow {
    pub id: String,
    pub env: String,
    pub digest: String,
    pub grant_id: String,
    pub previous_id: Option<String>,
    pub access_token_id: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub replaced_by: Option<String>,
    pub replaced_at: Option<i64>,
    pub grace_until: Option<i64>,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

pub async fn insert_refresh(conn: &mut Conn, r: &RefreshRow) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO oauth_refresh_tokens (id, env, digest, grant_id, previous_id, access_token_id, created_at, \
         expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&r.id)
    .bind(&r.env)
    .bind(&r.digest)
    .bind(&r.grant_id)
    .bind(&r.previous_id)
    .bind(&r.access_token_id)
    .bind(r.created_at)
    .bind(r.expires_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find_refresh(conn: &mut Conn, id: &str) -> sqlx::Result<Option<RefreshRow>> {
    sqlx::query_as(
        "SELECT id, env, digest, grant_id, previous_id, access_token_id, created_at, expires_at, replaced_by, \
         replaced_at, grace_until, revoked_at, revoked_reason FROM oauth_refresh_tokens WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// Records the first successor of a refresh token and the end of its grace; a token already
/// replaced keeps its first successor and grace (a use within the grace does not extend it).
pub async fn replace_refresh(
    conn: &mut Conn,
    id: &str,
    successor: &str,
    now: i64,
    grace_until: i64,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE oauth_refresh_tokens SET replaced_by = $1, replaced_at = $2, grace_until = $3 \
         WHERE id = $4 AND replaced_by IS NULL",
    )
    .bind(successor)
    .bind(now)
    .bind(grace_until)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

// ---------------------------------------------------------------- what the consent page offers

/// A person's teams with their role in each (id, name, role), in the order they joined.
pub async fn memberships(conn: &mut Conn, user_id: &str) -> sqlx::Result<Vec<(String, String, String)>> {
    sqlx::query_as(
        "SELECT t.id, t.name, m.role FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1 \
         ORDER BY m.created_at, t.id",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

/// A team's projects (id, name), by name.
pub async fn team_projects(conn: &mut Conn, team_id: &str) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as("SELECT id, name FROM projects WHERE team_id = $1 ORDER BY name, id")
        .bind(team_id)
        .fetch_all(&mut *conn)
        .await
}

/// The grant an access token was issued under, if any.
pub async fn grant_of_token(conn: &mut Conn, token_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar::<_, Option<String>>("SELECT oauth_grant_id FROM tokens WHERE id = $1")
        .bind(token_id)
        .fetch_optional(&mut *conn)
        .await
        .map(Option::flatten)
}
