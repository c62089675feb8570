//! Projects: list, read, create, update, archive, and the public portal URL.

use serde::Deserialize;
use serde_json::json;
use sqlx::AssertSqlSafe;

use super::catalog::Op;
use super::page::Page;
use super::{Call, Done, Output, Principal, Service};
use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{new_id, parse_id};
use crate::store::Filter;
use crate::store::rows::Project;
use crate::store::{Conn, is_unique_violation, now_ms};

const COLUMNS: &str = "id, team_id, name, handle, description, active, created_at, updated_at";

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    pub handle: Option<String>,
    pub description: Option<String>,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    pub description: Option<String>,
}

/// Loads a project of the caller's team that the token may see, or `RESOURCE_NOT_FOUND`.
pub async fn project_in_scope(c: &mut Call, id: &str) -> Result<Project> {
    let id = parse_id(id)?;
    let team = c.team_id();
    let project = sqlx::query_as::<_, Project>(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM projects WHERE id = $1 AND team_id = $2"
    )))
    .bind(&id)
    .bind(&team)
    .fetch_optional(c.conn())
    .await?
    .ok_or(Error::NotFound)?;
    c.check_project(&project.id)?;
    Ok(project)
}

pub fn validate_name(field: &str, name: &str, max: usize) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(char::is_control) {
        return Err(Error::field(field, format!("must be 1 to {max} printable characters")));
    }
    Ok(name.to_owned())
}

pub fn validate_handle(handle: &str) -> Result<String> {
    let ok = (3..=40).contains(&handle.len())
        && handle
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !handle.starts_with('-')
        && !handle.ends_with('-');
    if ok {
        Ok(handle.to_owned())
    } else {
        Err(Error::field(
            "handle",
            "must be 3 to 40 characters of a-z, 0-9 and inner hyphens",
        ))
    }
}

pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for ch in name.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            s.push(ch);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-').chars().take(30).collect::<String>();
    let suffix = crate::domain::token::random_base62(6).to_lowercase();
    if s.len() < 3 {
        format!("project-{suffix}")
    } else {
        format!("{s}-{suffix}")
    }
}

async fn load(conn: &mut Conn, id: &str) -> Result<Project> {
    sqlx::query_as::<_, Project>(AssertSqlSafe(format!("SELECT {COLUMNS} FROM projects WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(Error::NotFound)
}

impl Service {
    pub async fn list_projects(&self, p: &Principal, page: Page) -> Result<Done> {
        self.run(
            p,
            Op::ListProjects,
            None,
            json!({"page": page.page, "limit": page.limit}),
            move |c| {
                Box::pin(async move {
                    let filter = Filter::default()
                        .eq("team_id", c.team_id())
                        .in_list("id", c.principal.project_ids.as_deref());
                    page.fetch::<Project>(c.conn(), filter, COLUMNS, "projects", "created_at, id")
                        .await
                })
            },
        )
        .await
    }

    pub async fn get_project(&self, p: &Principal, project_id: &str) -> Result<Done> {
        let id = project_id.to_owned();
        self.run(
            p,
            Op::GetProject,
            Some(project_id),
            json!({"project_id": project_id}),
            move |c| Box::pin(async move { Output::one(project_in_scope(c, &id).await?) }),
        )
        .await
    }

    pub async fn create_project(&self, p: &Principal, input: CreateProject) -> Result<Done> {
        let args = json!({"name": input.name, "handle": input.handle, "description": input.description});
        self.run(p, Op::CreateProject, None, args, move |c| {
            Box::pin(async move {
                if c.principal.project_ids.is_some() {
                    return Err(Error::MissingAbility(
                        Ability::ProjectCreate,
                        Some("a project-scoped token cannot create projects"),
                    ));
                }
                let name = validate_name("name", &input.name, 100)?;
                let handle = match &input.handle {
                    Some(h) => validate_handle(h)?,
                    None => slug(&name),
                };
                let description = input
                    .description
                    .as_deref()
                    .map(|d| validate_name("description", d, 1000))
                    .transpose()?;
                let (id, now, team) = (new_id(), now_ms(), c.team_id());
                let inserted = sqlx::query(
                    "INSERT INTO projects (id, team_id, name, handle, description, active, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
                )
                .bind(&id)
                .bind(&team)
                .bind(&name)
                .bind(&handle)
                .bind(&description)
                .bind(now)
                .execute(c.conn())
                .await;
                match inserted {
                    Err(e) if is_unique_violation(&e) => return Err(Error::Conflict("this handle is taken".into())),
                    other => other?,
                };
                c.subject(&id);
                c.in_project(&id);
                Output::one(load(c.conn(), &id).await?)
            })
        })
        .await
    }

    pub async fn update_project(&self, p: &Principal, project_id: &str, input: UpdateProject) -> Result<Done> {
        let id = project_id.to_owned();
        let args = json!({"project_id": project_id, "name": input.name, "description": input.description});
        self.run(p, Op::UpdateProject, Some(project_id), args, move |c| {
            Box::pin(async move {
                let before = project_in_scope(c, &id).await?;
                if input.name.is_none() && input.description.is_none() {
                    return Err(Error::field("name", "give at least one of name or description"));
                }
                let name = input
                    .name
                    .as_deref()
                    .map(|n| validate_name("name", n, 100))
                    .transpose()?;
                let description = input
                    .description
                    .as_deref()
                    .map(|d| validate_name("description", d, 1000))
                    .transpose()?;
                let mut changes = serde_json::Map::new();
                if let Some(n) = &name
                    && *n != before.name
                {
                    changes.insert("name".into(), json!({"from": before.name, "to": n}));
                }
                if let Some(d) = &description
                    && Some(d) != before.description.as_ref()
                {
                    changes.insert("description".into(), json!({"from": before.description, "to": d}));
                }
                sqlx::query("UPDATE projects SET name = $1, description = $2, updated_at = $3 WHERE id = $4")
                    .bind(name.unwrap_or(before.name.clone()))
                    .bind(description.or(before.description.clone()))
                    .bind(now_ms())
                    .bind(&before.id)
                    .execute(c.conn())
                    .await?;
                c.changes(changes.into());
                Output::one(load(c.conn(), &before.id).await?)
            })
        })
        .await
    }

    pub async fn archive_project(&self, p: &Principal, project_id: &str) -> Result<Done> {
        let id = project_id.to_owned();
        self.run(
            p,
            Op::ArchiveProject,
            Some(project_id),
            json!({"project_id": project_id}),
            move |c| {
                Box::pin(async move {
                    let before = project_in_scope(c, &id).await?;
                    if before.active != 0 {
                        sqlx::query("UPDATE projects SET active = 0, updated_at = $1 WHERE id = $2")
                            .bind(now_ms())
                            .bind(&before.id)
                            .execute(c.conn())
                            .await?;
                        c.changes(json!({"active": {"from": true, "to": false}}));
                    }
                    Output::one(load(c.conn(), &before.id).await?)
                })
            },
        )
        .await
    }

    pub async fn get_portal_url(&self, p: &Principal, project_id: &str) -> Result<Done> {
        let id = project_id.to_owned();
        let base = self.config.public_url.trim_end_matches('/').to_owned();
        self.run(
            p,
            Op::GetPortalUrl,
            Some(project_id),
            json!({"project_id": project_id}),
            move |c| {
                Box::pin(async move {
                    let project = project_in_scope(c, &id).await?;
                    Output::one(json!({
                        "project_id": project.id,
                        "handle": project.handle,
                        "url": format!("{base}/portal/{}", project.handle),
                        "active": project.active != 0,
                    }))
                })
            },
        )
        .await
    }
}
