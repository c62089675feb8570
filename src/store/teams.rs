//! `teams`, `team_members` and `users`.

use serde::Serialize;
use sqlx::FromRow;

use super::Conn;
use crate::domain::role::Role;
use crate::domain::time::ser_ts;

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
}

#[derive(Clone, Debug, FromRow, Serialize)]
pub struct TeamMember {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: i64,
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
