//! `sessions`: dashboard sign-ins. The cookie's secret is never stored, only its SHA-256.

use sqlx::FromRow;

use super::Conn;
use crate::domain::ids::{TeamId, UserId};

#[derive(Clone, Debug, FromRow)]
pub struct SessionRow {
    pub user_id: UserId,
    pub team_id: TeamId,
    pub csrf: String,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub struct NewSession<'a> {
    pub id_digest: &'a str,
    pub user_id: &'a str,
    pub team_id: &'a str,
    pub csrf: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(conn: &mut Conn, s: &NewSession<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_digest, user_id, team_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(s.id_digest)
    .bind(s.user_id)
    .bind(s.team_id)
    .bind(s.csrf)
    .bind(s.created_at)
    .bind(s.expires_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn find(conn: &mut Conn, id_digest: &str) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as("SELECT user_id, team_id, csrf, expires_at, revoked_at FROM sessions WHERE id_digest = $1")
        .bind(id_digest)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn revoke(conn: &mut Conn, id_digest: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id_digest = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id_digest)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Ends every live session of a user; returns how many.
pub async fn revoke_all_of(conn: &mut Conn, user_id: &str, now: i64) -> sqlx::Result<u64> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected())
}

/// A user's password hash and id, by (normalised) email.
pub async fn credentials(conn: &mut Conn, email: &str) -> sqlx::Result<Option<(String, Option<String>)>> {
    sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await
}

/// The team a user signs in to first: the one they joined first.
pub async fn first_team(conn: &mut Conn, user_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT team_id FROM team_members WHERE user_id = $1 ORDER BY created_at, team_id LIMIT 1")
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
}

/// The user's email, name and role in the team now (`None`: no longer a member).
pub async fn member(conn: &mut Conn, team_id: &str, user_id: &str) -> sqlx::Result<Option<(String, String, String)>> {
    sqlx::query_as(
        "SELECT u.email, u.name, m.role FROM users u JOIN team_members m ON m.user_id = u.id \
         WHERE u.id = $1 AND m.team_id = $2",
    )
    .bind(user_id)
    .bind(team_id)
    .fetch_optional(&mut *conn)
    .await
}

/// The teams a user belongs to: id and name, in the order they joined.
pub async fn teams_of(conn: &mut Conn, user_id: &str) -> sqlx::Result<Vec<(String, String)>> {
    sqlx::query_as(
        "SELECT t.id, t.name FROM team_members m JOIN teams t ON t.id = m.team_id WHERE m.user_id = $1 \
         ORDER BY m.created_at, t.id",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await
}

pub async fn set_team(conn: &mut Conn, id_digest: &str, team_id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE sessions SET team_id = $1 WHERE id_digest = $2")
        .bind(team_id)
        .bind(id_digest)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}
