//! `projects`: rows, columns and the SQL that reads and writes them.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, Filter, now_ms};
use crate::domain::ids::{ProjectId, TeamId};
use crate::domain::time::Millis;

pub const COLUMNS: &str = "id, team_id, name, handle, description, active, created_at, updated_at";

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct Project {
    pub id: ProjectId,
    pub team_id: TeamId,
    pub name: String,
    pub handle: String,
    pub description: Option<String>,
    #[sqlx(try_from = "super::query::Flag")]
    pub active: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
}

super::query::scoped!(Project, crate::domain::ids::marker::Project, "projects", id);

/// A project to insert; its values are already validated.
pub struct NewProject<'a> {
    pub team_id: &'a str,
    pub name: &'a str,
    pub handle: &'a str,
    pub description: Option<&'a str>,
    pub created_at: i64,
}

/// Inserts a project (active) and returns its id. A taken handle is a unique violation.
pub async fn insert(conn: &mut Conn, p: &NewProject<'_>) -> sqlx::Result<ProjectId> {
    let id = ProjectId::generate();
    sqlx::query(
        "INSERT INTO projects (id, team_id, name, handle, description, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
    )
    .bind(id.as_str())
    .bind(p.team_id)
    .bind(p.name)
    .bind(p.handle)
    .bind(p.description)
    .bind(p.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// A project of this team, or none.
pub async fn find_in_team(conn: &mut Conn, team_id: &str, id: &str) -> sqlx::Result<Option<Project>> {
    super::find_in_team(conn, "projects", COLUMNS, team_id, id).await
}

pub async fn update(conn: &mut Conn, id: &str, name: &str, description: Option<&str>) -> sqlx::Result<()> {
    sqlx::query("UPDATE projects SET name = $1, description = $2, updated_at = $3 WHERE id = $4")
        .bind(name)
        .bind(description)
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

pub async fn archive(conn: &mut Conn, id: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE projects SET active = 0, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// One page of a team's projects (optionally only some), oldest first.
pub async fn page(
    conn: &mut Conn,
    team_id: &str,
    only: Option<&[String]>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Project>, i64)> {
    Filter::default()
        .eq("team_id", team_id)
        .in_list("id", only)
        .page(conn, COLUMNS, "projects", "created_at, id", limit, offset)
        .await
}
