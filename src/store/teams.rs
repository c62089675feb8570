//! `teams`, `team_members` and `users`.

use serde::Serialize;
use sqlx::FromRow;

use super::Conn;
use crate::domain::ids::{TeamId, UserId};
use crate::domain::role::Role;
use crate::domain::time::Millis;

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct TeamMember {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: Millis,
}

pub async fn find(conn: &mut Conn, id: &str) -> sqlx::Result<Option<Team>> {
    sqlx::query_as::<_, Team>("SELECT id, name, created_at FROM teams WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
}

pub async fn insert(conn: &mut Conn, id: &str, name: &str, now: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

pub async fn add_member(conn: &mut Conn, team_id: &str, user_id: &str, role: Role, now: i64) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO team_members (team_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
        .bind(team_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// One page of a team's people, in the order they joined.
pub async fn members_page(
    conn: &mut Conn,
    team_id: &str,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<TeamMember>, i64)> {
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM team_members WHERE team_id = $1")
        .bind(team_id)
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query_as::<_, TeamMember>(
        "SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at FROM team_members m \
         JOIN users u ON u.id = m.user_id WHERE m.team_id = $1 ORDER BY m.created_at, u.id LIMIT $2 OFFSET $3",
    )
    .bind(team_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    Ok((rows, total))
}

pub async fn exists(conn: &mut Conn, id: &str) -> sqlx::Result<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM teams WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

pub async fn count(conn: &mut Conn) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT COUNT(*) FROM teams")
        .fetch_one(&mut *conn)
        .await
}

/// A user's role in a team, as stored (`None`: not a member).
pub async fn role_of(conn: &mut Conn, team_id: &str, user_id: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
        .bind(team_id)
        .bind(user_id)
        .fetch_optional(&mut *conn)
        .await
}

/// The id and role of the member of `team_id` with this (normalised) email.
pub async fn member_by_email(conn: &mut Conn, team_id: &str, email: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT u.id, m.role FROM users u JOIN team_members m ON m.user_id = u.id \
         WHERE u.email = $1 AND m.team_id = $2",
    )
    .bind(email)
    .bind(team_id)
    .fetch_optional(&mut *conn)
    .await
}

/// The user with this email and a team they own, if any.
pub async fn owned_by_email(conn: &mut Conn, email: &str) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as(
        "SELECT u.id, m.team_id FROM users u JOIN team_members m ON m.user_id = u.id AND m.role = 'owner' \
         WHERE u.email = $1",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await
}

pub async fn set_role(conn: &mut Conn, team_id: &str, user_id: &str, role: Role) -> sqlx::Result<()> {
    sqlx::query("UPDATE team_members SET role = $1 WHERE team_id = $2 AND user_id = $3")
        .bind(role.as_str())
        .bind(team_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// Removes a member; returns whether they were one.
pub async fn remove_member(conn: &mut Conn, team_id: &str, user_id: &str) -> sqlx::Result<bool> {
    sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
        .bind(team_id)
        .bind(user_id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() > 0)
}
