//! Resources: the Telegram chats a project sells access to.

use serde::Deserialize;
use serde_json::json;
use sqlx::AssertSqlSafe;

use super::catalog::Op;
use super::page::Page;
use super::projects::{project_in_scope, validate_name};
use super::{Call, Done, Output, Principal, Service};
use crate::domain::error::{Error, Result};
use crate::domain::ids::{new_id, parse_id};
use crate::store::Filter;
use crate::store::now_ms;
use crate::store::rows::Resource;

const COLUMNS: &str = "id, project_id, kind, title, telegram_chat_id, created_at";
pub const KINDS: &[&str] = &["channel", "group", "supergroup"];

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResource {
    #[schemars(extend("enum" = ["channel", "group", "supergroup"]))]
    pub kind: String,
    pub title: String,
    pub telegram_chat_id: String,
}

async fn resource_in_scope(c: &mut Call, id: &str) -> Result<Resource> {
    let id = parse_id(id)?;
    let team = c.team_id();
    let r = sqlx::query_as::<_, Resource>(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM project_resources WHERE id = $1 AND team_id = $2"
    )))
    .bind(&id)
    .bind(&team)
    .fetch_optional(c.conn())
    .await?
    .ok_or(Error::NotFound)?;
    c.check_project(&r.project_id)?;
    Ok(r)
}

impl Service {
    pub async fn list_resources(&self, p: &Principal, project_id: &str, page: Page) -> Result<Done> {
        let pid = project_id.to_owned();
        let args = json!({"project_id": project_id, "page": page.page, "limit": page.limit});
        self.run(p, Op::ListResources, None, args, move |c| {
            Box::pin(async move {
                let project = project_in_scope(c, &pid).await?;
                let filter = Filter::default().eq("project_id", &project.id);
                page.fetch::<Resource>(c.conn(), filter, COLUMNS, "project_resources", "created_at, id")
                    .await
            })
        })
        .await
    }

    pub async fn get_resource(&self, p: &Principal, resource_id: &str) -> Result<Done> {
        let id = resource_id.to_owned();
        self.run(
            p,
            Op::GetResource,
            Some(resource_id),
            json!({"resource_id": resource_id}),
            move |c| Box::pin(async move { Output::one(resource_in_scope(c, &id).await?) }),
        )
        .await
    }

    pub async fn create_resource(&self, p: &Principal, project_id: &str, input: CreateResource) -> Result<Done> {
        let pid = project_id.to_owned();
        let args = json!({"project_id": project_id, "kind": input.kind, "title": input.title, "telegram_chat_id": input.telegram_chat_id});
        self.run(p, Op::CreateResource, None, args, move |c| {
            Box::pin(async move {
                let project = project_in_scope(c, &pid).await?;
                if !KINDS.contains(&input.kind.as_str()) {
                    return Err(Error::field("kind", format!("must be one of {}", KINDS.join(", "))));
                }
                let title = validate_name("title", &input.title, 200)?;
                let chat = input.telegram_chat_id.trim();
                let digits = chat.strip_prefix('-').unwrap_or(chat);
                if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::field("telegram_chat_id", "must be a Telegram chat id such as -1001234567890"));
                }
                let id = new_id();
                sqlx::query(
                    "INSERT INTO project_resources (id, team_id, project_id, kind, title, telegram_chat_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&id)
                .bind(c.team_id())
                .bind(&project.id)
                .bind(&input.kind)
                .bind(&title)
                .bind(chat)
                .bind(now_ms())
                .execute(c.conn())
                .await?;
                c.subject(&id);
                Output::one(resource_in_scope(c, &id).await?)
            })
        })
        .await
    }
}
