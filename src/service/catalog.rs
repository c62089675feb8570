//! The operation catalog: the single source of truth for SPEC §5. REST routes are checked
//! against it, `/openapi.json` and the test matrix are generated from it.

use serde::Serialize;

use crate::domain::ability::Ability;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    GetTokenInfo,
    ListTokens,
    RevokeCurrentToken,
    ListTeams,
    GetTeam,
    ListTeamMembers,
    ListRoles,
    ListProjects,
    GetProject,
    CreateProject,
    UpdateProject,
    ArchiveProject,
    ListResources,
    GetResource,
    CreateResource,
    ListPlans,
    GetPlan,
    CreatePlan,
    PublishPlan,
    ListSubscribers,
    GetMember,
    BanMember,
    UnbanMember,
    KickMember,
    CancelSubscription,
    ListRecentPayments,
    ListAccessCodes,
    BulkGenerateAccessCodes,
    GetJobStatus,
    GetPortalUrl,
    GetActivityLog,
}

/// How an operation touches state; drives the MCP annotations and the audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Read,
    Write,
    Destructive,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Operation {
    pub name: &'static str,
    /// What the audit entry's `event` says (the name, except for token lifecycle events).
    pub event: &'static str,
    #[serde(serialize_with = "ser_ability")]
    pub ability: Option<Ability>,
    pub method: &'static str,
    pub path: &'static str,
    pub subject_type: &'static str,
    pub effect: Effect,
    pub idempotent: bool,
    pub success_status: u16,
    pub summary: &'static str,
}

fn ser_ability<S: serde::Serializer>(a: &Option<Ability>, s: S) -> Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_str(a.as_str()),
        None => s.serialize_none(),
    }
}

impl Operation {
    pub fn is_write(&self) -> bool {
        self.effect != Effect::Read
    }

    /// The path parameters, in order (`{project_id}` → `project_id`).
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

fn op(
    name: &'static str,
    ability: Option<Ability>,
    method: &'static str,
    path: &'static str,
    subject_type: &'static str,
    effect: Effect,
    summary: &'static str,
) -> Operation {
    let creates = name.starts_with("create_") || name.starts_with("bulk_");
    let success_status = match name {
        n if n.starts_with("bulk_") => 202,
        n if n.starts_with("create_") => 201,
        _ => 200,
    };
    Operation {
        name,
        event: name,
        ability,
        method,
        path,
        subject_type,
        effect,
        // Reads are idempotent, and so are the state-setting writes (ban, publish, archive, …).
        idempotent: !creates,
        success_status,
        summary,
    }
}

use Ability as A;
use Effect::{Destructive, Read, Write};

impl Op {
    pub const ALL: &'static [Op] = &[
        Op::GetTokenInfo,
        Op::ListTokens,
        Op::RevokeCurrentToken,
        Op::ListTeams,
        Op::GetTeam,
        Op::ListTeamMembers,
        Op::ListRoles,
        Op::ListProjects,
        Op::GetProject,
        Op::CreateProject,
        Op::UpdateProject,
        Op::ArchiveProject,
        Op::ListResources,
        Op::GetResource,
        Op::CreateResource,
        Op::ListPlans,
        Op::GetPlan,
        Op::CreatePlan,
        Op::PublishPlan,
        Op::ListSubscribers,
        Op::GetMember,
        Op::BanMember,
        Op::UnbanMember,
        Op::KickMember,
        Op::CancelSubscription,
        Op::ListRecentPayments,
        Op::ListAccessCodes,
        Op::BulkGenerateAccessCodes,
        Op::GetJobStatus,
        Op::GetPortalUrl,
        Op::GetActivityLog,
    ];

    /// The catalog: one row per operation of SPEC §5 (name, ability, method, path, subject, effect).
    #[rustfmt::skip]
    pub fn spec(self) -> Operation {
        match self {
            Op::GetTokenInfo => op("get_token_info", None, "GET", "/v1/me", "token", Read, "The calling token's id, name, abilities, scopes and owner."),
            Op::ListTokens => op("list_tokens", None, "GET", "/v1/tokens", "token", Read, "The owner's tokens in this team (metadata only, never secrets)."),
            Op::RevokeCurrentToken => Operation { event: "token.revoked", ..op("revoke_current_token", None, "DELETE", "/v1/tokens/current", "token", Destructive, "Revoke the calling token.") },
            Op::ListTeams => op("list_teams", Some(A::TeamViewAny), "GET", "/v1/teams", "team", Read, "The token's team."),
            Op::GetTeam => op("get_team", Some(A::TeamView), "GET", "/v1/teams/{team_id}", "team", Read, "One team (only the token's own)."),
            Op::ListTeamMembers => op("list_team_members", Some(A::TeamMemberViewAny), "GET", "/v1/teams/{team_id}/members", "team", Read, "People in the team and their roles."),
            Op::ListRoles => op("list_roles", Some(A::RoleViewAny), "GET", "/v1/roles", "role", Read, "Roles and the abilities each holds."),
            Op::ListProjects => op("list_projects", Some(A::ProjectViewAny), "GET", "/v1/projects", "project", Read, "Projects in the team (or the token's projects)."),
            Op::GetProject => op("get_project", Some(A::ProjectView), "GET", "/v1/projects/{project_id}", "project", Read, "One project."),
            Op::CreateProject => op("create_project", Some(A::ProjectCreate), "POST", "/v1/projects", "project", Write, "Create a project."),
            Op::UpdateProject => op("update_project", Some(A::ProjectUpdate), "PATCH", "/v1/projects/{project_id}", "project", Write, "Change a project's name or description."),
            Op::ArchiveProject => op("archive_project", Some(A::ProjectUpdate), "POST", "/v1/projects/{project_id}/archive", "project", Destructive, "Archive a project (active = false)."),
            Op::ListResources => op("list_resources", Some(A::ProjectResourceViewAny), "GET", "/v1/projects/{project_id}/resources", "project-resource", Read, "The chats a project sells access to."),
            Op::GetResource => op("get_resource", Some(A::ProjectResourceView), "GET", "/v1/resources/{resource_id}", "project-resource", Read, "One chat."),
            Op::CreateResource => op("create_resource", Some(A::ProjectResourceCreate), "POST", "/v1/projects/{project_id}/resources", "project-resource", Write, "Add a chat to a project."),
            Op::ListPlans => op("list_plans", Some(A::PlanViewAny), "GET", "/v1/projects/{project_id}/plans", "project-subscription-plan", Read, "A project's plans."),
            Op::GetPlan => op("get_plan", Some(A::PlanView), "GET", "/v1/plans/{plan_id}", "project-subscription-plan", Read, "One plan."),
            Op::CreatePlan => op("create_plan", Some(A::PlanCreate), "POST", "/v1/projects/{project_id}/plans", "project-subscription-plan", Write, "Create a plan (names are unique per project)."),
            Op::PublishPlan => op("publish_plan", Some(A::PlanUpdate), "POST", "/v1/plans/{plan_id}/publish", "project-subscription-plan", Write, "Publish or unpublish a plan."),
            Op::ListSubscribers => op("list_subscribers", Some(A::MemberViewAny), "GET", "/v1/projects/{project_id}/members", "project-user", Read, "A project's members, by status or search."),
            Op::GetMember => op("get_member", Some(A::MemberView), "GET", "/v1/members/{member_id}", "project-user", Read, "One member with their subscriptions."),
            Op::BanMember => op("ban_member", Some(A::MemberUpdate), "POST", "/v1/members/{member_id}/ban", "project-user", Destructive, "Ban a member (status banned)."),
            Op::UnbanMember => op("unban_member", Some(A::MemberUpdate), "POST", "/v1/members/{member_id}/unban", "project-user", Write, "Lift a ban (status churned)."),
            Op::KickMember => op("kick_member", Some(A::MemberUpdate), "POST", "/v1/members/{member_id}/kick", "project-user", Destructive, "Remove a member from the chats (status churned)."),
            Op::CancelSubscription => op("cancel_subscription", Some(A::SubscriptionUpdate), "POST", "/v1/subscriptions/{subscription_id}/cancel", "project-subscription", Destructive, "Cancel a subscription."),
            Op::ListRecentPayments => op("list_recent_payments", Some(A::SubscriptionViewAny), "GET", "/v1/projects/{project_id}/payments", "payment", Read, "A project's payments, newest first."),
            Op::ListAccessCodes => op("list_access_codes", Some(A::AccessCodeViewAny), "GET", "/v1/plans/{plan_id}/access-codes", "project-access-code", Read, "A plan's access codes, masked."),
            Op::BulkGenerateAccessCodes => op("bulk_generate_access_codes", Some(A::AccessCodeCreate), "POST", "/v1/plans/{plan_id}/access-codes", "job", Write, "Generate access codes for a plan as a background job."),
            Op::GetJobStatus => op("get_job_status", None, "GET", "/v1/jobs/{job_id}", "job", Read, "A background job started by the caller."),
            Op::GetPortalUrl => op("get_portal_url", Some(A::DistributionRead), "GET", "/v1/projects/{project_id}/portal-url", "project", Read, "A project's public portal URL."),
            Op::GetActivityLog => op("get_activity_log", Some(A::ActivityRead), "GET", "/v1/activity", "activity", Read, "The team's activity log, newest first."),
        }
    }
}

impl Op {
    /// The JSON Schema of the operation's body, for operations that take one.
    pub fn body_schema(self) -> Option<serde_json::Value> {
        use schemars::schema_for;
        let schema = match self {
            Op::CreateProject => schema_for!(super::projects::CreateProject),
            Op::UpdateProject => schema_for!(super::projects::UpdateProject),
            Op::ArchiveProject | Op::UnbanMember | Op::CancelSubscription => schema_for!(super::args::NoArgs),
            Op::CreateResource => schema_for!(super::resources::CreateResource),
            Op::CreatePlan => schema_for!(super::plans::CreatePlan),
            Op::PublishPlan => schema_for!(super::plans::PublishPlan),
            Op::BanMember | Op::KickMember => schema_for!(super::members::Reason),
            Op::BulkGenerateAccessCodes => schema_for!(super::access_codes::BulkGenerate),
            _ => return None,
        };
        serde_json::to_value(schema).ok()
    }

    /// The JSON Schema of the operation's query arguments (an object; its properties are the
    /// parameters).
    pub fn query_schema(self) -> serde_json::Value {
        use schemars::schema_for;
        let schema = match self {
            Op::ListTokens
            | Op::ListTeams
            | Op::ListTeamMembers
            | Op::ListProjects
            | Op::ListResources
            | Op::ListPlans => {
                schema_for!(super::args::PageArgs)
            }
            Op::ListRecentPayments | Op::ListAccessCodes => schema_for!(super::args::StatusPageArgs),
            Op::ListSubscribers => schema_for!(super::args::SubscriberArgs),
            Op::GetActivityLog => schema_for!(super::activity::ActivityQuery),
            _ => schema_for!(super::args::NoArgs),
        };
        serde_json::to_value(schema).unwrap_or_default()
    }
}

/// `x-required-ability` and friends, for `/openapi.json`.
pub fn openapi_json(public_url: &str) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let mut paths: Map<String, Value> = Map::new();
    for (op, o) in Op::ALL.iter().map(|o| (*o, o.spec())) {
        let params: Vec<Value> = o
            .path_params()
            .into_iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}))
            .collect();
        let mut responses = json!({
            o.success_status.to_string(): {"description": "Success", "content": {"application/json": {"schema": {"type": "object", "required": ["data"]}}}},
            "401": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
            "422": {"$ref": "#/components/responses/Error"},
            "429": {"$ref": "#/components/responses/Error"},
            "500": {"$ref": "#/components/responses/Error"},
        });
        if o.ability.is_some() || o.name == "create_project" {
            responses["403"] = json!({"$ref": "#/components/responses/Error"});
        }
        if o.method != "GET" {
            responses["409"] = json!({"$ref": "#/components/responses/Error"});
            responses["413"] = json!({"$ref": "#/components/responses/Error"});
        }
        let mut item = json!({
            "operationId": o.name,
            "summary": o.summary,
            "security": [{"bearer": []}],
            "parameters": params,
            "responses": responses,
            "x-required-ability": o.ability.map(|a| a.as_str()),
            "x-effect": o.effect,
        });
        let query = op.query_schema();
        let required: Vec<&str> = query["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
            .collect();
        for (name, schema) in query["properties"].as_object().into_iter().flatten() {
            let mut schema = schema.clone();
            let mut param = json!({"name": name, "in": "query", "required": required.contains(&name.as_str())});
            if let Some(m) = schema.as_object_mut() {
                if let Some(d) = m.remove("description") {
                    param["description"] = d;
                }
                // A query string has no null: an absent parameter is the null.
                if let Some(Value::Array(values)) = m.get_mut("enum") {
                    values.retain(|v| !v.is_null());
                }
                if let Some(Value::Array(types)) = m.get_mut("type") {
                    types.retain(|t| t != "null");
                    if types.len() == 1 {
                        let only = types[0].clone();
                        m.insert("type".into(), only);
                    }
                }
            }
            param["schema"] = schema;
            item["parameters"].as_array_mut().expect("array").push(param);
        }
        if let Some(body) = op.body_schema() {
            item["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": body}}});
        }
        if o.method == "POST" {
            item["parameters"].as_array_mut().expect("array").push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Replays the saved response for 24 h for the same request; visible ASCII, 1 to 255 characters.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$"}
            }));
        }
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        entry[o.method.to_ascii_lowercase()] = item;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "MemberPass API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": public_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "mpt_<env>_<id>_<secret><check>"}},
            "responses": {"Error": {"description": "The error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "required": ["code", "message", "docs_url", "remediation", "request_id"], "properties": {
                "code": {"type": "string", "enum": crate::domain::error::ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()},
                "message": {"type": "string"}, "required_ability": {"type": "string"}, "docs_url": {"type": "string"},
                "remediation": {"type": "string"}, "request_id": {"type": "string"}, "fields": {"type": "object"}
            }}}}}
        }
    })
}
