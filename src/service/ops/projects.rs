//! Projects: list, read, create, update, archive, and the public portal URL.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::ProjectId;
use crate::service::Call;
use crate::service::core::args::PageArgs;
use crate::service::core::args::{Limit, PageNo};
use crate::service::core::op::{DynOp, Effect, One, Operation, Paged, Spec, Verb};
use crate::service::core::page::Page;
use crate::store::projects::{self as store, NewProject, Project};
use crate::store::{is_unique_violation, now_ms};

pub static OPS: &[&dyn DynOp] = &[
    &ListProjects,
    &GetProject,
    &CreateProject,
    &UpdateProject,
    &ArchiveProject,
    &GetPortalUrl,
];

/// One project, named by the path.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectRef {
    pub project_id: ProjectId,
}

/// A page of things under one project.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPage {
    pub project_id: ProjectId,
    /// Page number, from 1.
    pub page: Option<PageNo>,
    /// Items per page, 1 to 100 (default 25).
    pub limit: Option<Limit>,
}

impl ProjectPage {
    pub fn page(&self) -> Page {
        Page::of(self.page, self.limit)
    }
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProjectArgs {
    #[schemars(length(min = 1, max = 100))]
    pub name: String,
    /// The portal handle: 3 to 40 characters of a-z, 0-9 and inner hyphens (default: from the name).
    pub handle: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProjectArgs {
    pub project_id: ProjectId,
    pub name: Option<String>,
    pub description: Option<String>,
}

/// A name, title, description or reason: 1 to `max` printable characters after trimming. Bidi
/// controls and invisible characters are refused too: they would let a name shown in the
/// dashboard or an agent's transcript read as something else.
pub fn validate_name(field: &str, name: &str, max: usize) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > max || name.chars().any(crate::domain::text::is_unsafe) {
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

/// Validates and inserts a project of `team_id` (every surface and the CLI create through here).
pub async fn create_in(conn: &mut crate::store::Conn, team_id: &str, args: &CreateProjectArgs) -> Result<Project> {
    let name = validate_name("name", &args.name, 100)?;
    let handle = match &args.handle {
        Some(h) => validate_handle(h)?,
        None => slug(&name),
    };
    let description = args
        .description
        .as_deref()
        .map(|d| validate_name("description", d, 1000))
        .transpose()?;
    let new = NewProject {
        team_id,
        name: &name,
        handle: &handle,
        description: description.as_deref(),
        created_at: now_ms(),
    };
    let id = match store::insert(conn, &new).await {
        Err(e) if is_unique_violation(&e) => return Err(Error::Conflict("this handle is taken".into())),
        other => other?,
    };
    store::find_in_team(conn, team_id, &id).await?.ok_or(Error::NotFound)
}

pub struct ListProjects;
impl Operation for ListProjects {
    type Args = PageArgs;
    type Output = Paged<Project>;
    const SPEC: Spec = Spec {
        name: "list_projects",
        event: "list_projects",
        ability: Some(Ability::ProjectViewAny),
        path: "/v1/projects",
        subject_type: "project",
        summary: "Projects in the team (or the token's projects).",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: PageArgs) -> Result<Self::Output> {
        let page = args.page();
        let (team, only) = (c.team_id(), c.caller.project_ids().map(<[String]>::to_vec));
        let (rows, total) = store::page(c.conn(), &team, only.as_deref(), page.limit, page.offset()).await?;
        Paged::ok(rows, page.meta(total))
    }
}

pub struct GetProject;
impl Operation for GetProject {
    type Args = ProjectRef;
    type Output = One<Project>;
    const SPEC: Spec = Spec {
        name: "get_project",
        event: "get_project",
        ability: Some(Ability::ProjectView),
        path: "/v1/projects/{project_id}",
        subject_type: "project",
        subject_arg: Some("project_id"),
        summary: "One project.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: ProjectRef) -> Result<Self::Output> {
        One::ok(c.load::<Project>(&args.project_id).await?)
    }
}

pub struct CreateProject;
impl Operation for CreateProject {
    type Args = CreateProjectArgs;
    type Output = One<Project>;
    const SPEC: Spec = Spec {
        name: "create_project",
        event: "create_project",
        ability: Some(Ability::ProjectCreate),
        path: "/v1/projects",
        subject_type: "project",
        summary: "Create a project.",
        creates: Some("project_id"),
        ..Spec::CREATE
    };

    async fn run(c: &mut Call, args: CreateProjectArgs) -> Result<Self::Output> {
        if c.caller.project_ids().is_some() {
            return Err(Error::MissingAbility(
                Ability::ProjectCreate,
                Some("a project-scoped token cannot create projects".into()),
            ));
        }
        let team = c.team_id();
        let project = create_in(c.conn(), &team, &args).await?;
        c.subject(&project.id);
        c.in_project(&project.id);
        One::ok(project)
    }
}

pub struct UpdateProject;
impl Operation for UpdateProject {
    type Args = UpdateProjectArgs;
    type Output = One<Project>;
    const SPEC: Spec = Spec {
        name: "update_project",
        event: "update_project",
        ability: Some(Ability::ProjectUpdate),
        method: Verb::Patch,
        path: "/v1/projects/{project_id}",
        subject_type: "project",
        subject_arg: Some("project_id"),
        replayable: false,
        summary: "Change a project's name or description.",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: UpdateProjectArgs) -> Result<Self::Output> {
        let before = c.load::<Project>(&args.project_id).await?;
        if args.name.is_none() && args.description.is_none() {
            return Err(Error::field("name", "give at least one of name or description"));
        }
        let name = args
            .name
            .as_deref()
            .map(|n| validate_name("name", n, 100))
            .transpose()?;
        let description = args
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
        let name = name.unwrap_or(before.name.clone());
        let description = description.or(before.description.clone());
        store::update(c.conn(), &before.id, &name, description.as_deref()).await?;
        c.changes(changes.into());
        One::ok(c.load::<Project>(&args.project_id).await?)
    }
}

pub struct ArchiveProject;
impl Operation for ArchiveProject {
    type Args = ProjectRef;
    type Output = One<Project>;
    const SPEC: Spec = Spec {
        name: "archive_project",
        event: "archive_project",
        ability: Some(Ability::ProjectUpdate),
        path: "/v1/projects/{project_id}/archive",
        subject_type: "project",
        subject_arg: Some("project_id"),
        effect: Effect::Destructive,
        summary: "Archive a project (active = false).",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: ProjectRef) -> Result<Self::Output> {
        let before = c.load::<Project>(&args.project_id).await?;
        if before.active {
            store::archive(c.conn(), &before.id).await?;
            c.changes(json!({"active": {"from": true, "to": false}}));
        }
        One::ok(c.load::<Project>(&args.project_id).await?)
    }
}

/// Where a project's members sign up, as `get_portal_url` shows it.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PortalUrl {
    pub project_id: String,
    pub handle: String,
    pub url: String,
    pub active: bool,
}

pub struct GetPortalUrl;
impl Operation for GetPortalUrl {
    type Args = ProjectRef;
    type Output = One<PortalUrl>;
    const SPEC: Spec = Spec {
        name: "get_portal_url",
        event: "get_portal_url",
        ability: Some(Ability::DistributionRead),
        path: "/v1/projects/{project_id}/portal-url",
        subject_type: "project",
        subject_arg: Some("project_id"),
        summary: "A project's public portal URL.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: ProjectRef) -> Result<Self::Output> {
        let project = c.load::<Project>(&args.project_id).await?;
        let base = c.config().public_url.trim_end_matches('/').to_owned();
        One::ok(PortalUrl {
            url: format!("{base}/portal/{}", project.handle),
            project_id: project.id.into(),
            handle: project.handle,
            active: project.active,
        })
    }
}
