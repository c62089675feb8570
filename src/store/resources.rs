//! `project_resources`: the Telegram chats a project sells access to.

use serde::Serialize;
use sqlx::FromRow;

use super::Conn;
use crate::domain::ids::{ProjectId, ResourceId};
use crate::domain::kinds::ResourceKind;
use crate::domain::time::Millis;

pub const COLUMNS: &str = "id, project_id, kind, title, telegram_chat_id, created_at";

#[derive(Clone, Debug, FromRow, Serialize, schemars::JsonSchema)]
pub struct Resource {
    pub id: ResourceId,
    pub project_id: ProjectId,
    #[sqlx(try_from = "String")]
    pub kind: ResourceKind,
    pub title: String,
    pub telegram_chat_id: String,
    pub created_at: Millis,
}

super::query::scoped!(
    Resource,
    crate::domain::ids::marker::Resource,
    "project_resources",
    project_id
);

pub struct NewResource<'a> {
    pub team_id: &'a str,
    pub project_id: &'a str,
    pub kind: ResourceKind,
    pub title: &'a str,
    pub telegram_chat_id: &'a str,
    pub created_at: i64,
}

pub async fn insert(conn: &mut Conn, r: &NewResource<'_>) -> sqlx::Result<ResourceId> {
    let id = ResourceId::generate();
    sqlx::query(
        "INSERT INTO project_resources (id, team_id, project_id, kind, title, telegram_chat_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id.as_str())
    .bind(r.team_id)
    .bind(r.project_id)
    .bind(r.kind.as_str())
    .bind(r.title)
    .bind(r.telegram_chat_id)
    .bind(r.created_at)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}
