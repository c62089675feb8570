//! Resources: the Telegram chats a project sells access to.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::projects::{ProjectPage, validate_name};
use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{ProjectId, ResourceId};
use crate::domain::kinds::ResourceKind;
use crate::service::Call;
use crate::service::core::op::{DynOp, One, Operation, Paged, Spec};
use crate::store::now_ms;
use crate::store::projects::Project;
use crate::store::resources::{self as store, NewResource, Resource};

pub static OPS: &[&dyn DynOp] = &[&ListResources, &GetResource, &CreateResource];

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceRef {
    pub resource_id: ResourceId,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResourceArgs {
    pub project_id: ProjectId,
    pub kind: ResourceKind,
    pub title: String,
    /// The Telegram chat id, such as -1001234567890.
    pub telegram_chat_id: String,
}

pub struct ListResources;
impl Operation for ListResources {
    type Args = ProjectPage;
    type Output = Paged<Resource>;
    const SPEC: Spec = Spec {
        name: "list_resources",
        event: "list_resources",
        ability: Some(Ability::ProjectResourceViewAny),
        path: "/v1/projects/{project_id}/resources",
        subject_type: "project-resource",
        summary: "The chats a project sells access to.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: ProjectPage) -> Result<Self::Output> {
        c.page_in_project(&args.project_id, args.page()).await
    }
}

pub struct GetResource;
impl Operation for GetResource {
    type Args = ResourceRef;
    type Output = One<Resource>;
    const SPEC: Spec = Spec {
        name: "get_resource",
        event: "get_resource",
        ability: Some(Ability::ProjectResourceView),
        path: "/v1/resources/{resource_id}",
        subject_type: "project-resource",
        subject_arg: Some("resource_id"),
        summary: "One chat.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: ResourceRef) -> Result<Self::Output> {
        One::ok(c.load::<Resource>(&args.resource_id).await?)
    }
}

pub struct CreateResource;
impl Operation for CreateResource {
    type Args = CreateResourceArgs;
    type Output = One<Resource>;
    const SPEC: Spec = Spec {
        name: "create_resource",
        event: "create_resource",
        ability: Some(Ability::ProjectResourceCreate),
        path: "/v1/projects/{project_id}/resources",
        subject_type: "project-resource",
        summary: "Add a chat to a project.",
        creates: Some("resource_id"),
        ..Spec::CREATE
    };

    async fn run(c: &mut Call, args: CreateResourceArgs) -> Result<Self::Output> {
        let project = c.load::<Project>(&args.project_id).await?;
        let title = validate_name("title", &args.title, 200)?;
        let chat = args.telegram_chat_id.trim();
        let digits = chat.strip_prefix('-').unwrap_or(chat);
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::field(
                "telegram_chat_id",
                "must be a Telegram chat id such as -1001234567890",
            ));
        }
        let team = c.team_id();
        let new = NewResource {
            team_id: &team,
            project_id: &project.id,
            kind: args.kind,
            title: &title,
            telegram_chat_id: chat,
            created_at: now_ms(),
        };
        let id = store::insert(c.conn(), &new).await?;
        c.subject(&id);
        One::ok(c.load::<Resource>(&id).await?)
    }
}
