//! `members`: a project's subscribers and where each stands.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, Filter};
use crate::domain::ids::{MemberId, ProjectId};
use crate::domain::kinds::MemberStatus;
use crate::domain::time::Millis;

pub const COLUMNS: &str =
    "id, project_id, telegram_user_id, username, display_name, status, status_reason, created_at, updated_at";

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct Member {
    pub id: MemberId,
    pub project_id: ProjectId,
    pub telegram_user_id: String,
    pub username: Option<String>,
    pub display_name: String,
    #[sqlx(try_from = "String")]
    pub status: MemberStatus,
    pub status_reason: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

super::query::scoped!(Member, crate::domain::ids::marker::Member, "members", project_id);

pub struct NewMember<'a> {
    pub id: &'a str,
    pub team_id: &'a str,
    pub project_id: &'a str,
    pub telegram_user_id: &'a str,
    pub username: Option<&'a str>,
    pub display_name: &'a str,
    pub status: MemberStatus,
    pub status_reason: Option<&'a str>,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, m: &NewMember<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO members (id, team_id, project_id, telegram_user_id, username, display_name, status, status_reason, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(m.id)
    .bind(m.team_id)
    .bind(m.project_id)
    .bind(m.telegram_user_id)
    .bind(m.username)
    .bind(m.display_name)
    .bind(m.status.as_str())
    .bind(m.status_reason)
    .bind(m.created_at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub async fn set_status(
    conn: &mut Conn,
    id: &str,
    status: MemberStatus,
    reason: Option<&str>,
    now: i64,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE members SET status = $1, status_reason = $2, updated_at = $3 WHERE id = $4")
        .bind(status.as_str())
        .bind(reason)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|_| ())
}

/// One page of a project's members, newest first, by status and a case-insensitive search.
pub async fn page_of_project(
    conn: &mut Conn,
    project_id: &str,
    status: Option<MemberStatus>,
    search: Option<&str>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<(Vec<Member>, i64)> {
    let mut f = Filter::default()
        .eq("project_id", project_id)
        .eq_opt("status", status.map(MemberStatus::as_str));
    if let Some(s) = search {
        f = f.contains_any(&["display_name", "username", "telegram_user_id"], s);
    }
    f.page(conn, COLUMNS, "members", "created_at DESC, id", limit, offset)
        .await
}
