//! Plans: the prices a project sells; names unique per project.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::projects::{ProjectPage, validate_name};
use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{PlanId, ProjectId};
use crate::domain::kinds::BillingInterval;
use crate::service::Call;
use crate::service::core::op::{DynOp, One, Operation, Paged, Spec};
use crate::store::plans::{self as store, NewPlan, Plan};
use crate::store::projects::Project;
use crate::store::{is_unique_violation, now_ms};

pub static OPS: &[&dyn DynOp] = &[&ListPlans, &GetPlan, &CreatePlan, &PublishPlan];

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanRef {
    pub plan_id: PlanId,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanArgs {
    pub project_id: ProjectId,
    pub name: String,
    #[schemars(range(min = 0, max = 100_000_000))]
    pub price_cents: i64,
    /// A three-letter ISO 4217 code.
    #[schemars(length(min = 3, max = 3))]
    pub currency: String,
    pub billing_interval: BillingInterval,
    /// Plans start unpublished unless asked.
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishPlanArgs {
    pub plan_id: PlanId,
    pub active: bool,
}

pub struct ListPlans;
impl Operation for ListPlans {
    type Args = ProjectPage;
    type Output = Paged<Plan>;
    const SPEC: Spec = Spec {
        name: "list_plans",
        event: "list_plans",
        ability: Some(Ability::PlanViewAny),
        path: "/v1/projects/{project_id}/plans",
        subject_type: "project-subscription-plan",
        summary: "A project's plans.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: ProjectPage) -> Result<Self::Output> {
        c.page_in_project(&args.project_id, args.page()).await
    }
}

pub struct GetPlan;
impl Operation for GetPlan {
    type Args = PlanRef;
    type Output = One<Plan>;
    const SPEC: Spec = Spec {
        name: "get_plan",
        event: "get_plan",
        ability: Some(Ability::PlanView),
        path: "/v1/plans/{plan_id}",
        subject_type: "project-subscription-plan",
        subject_arg: Some("plan_id"),
        summary: "One plan.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: PlanRef) -> Result<Self::Output> {
        One::ok(c.load::<Plan>(&args.plan_id).await?)
    }
}

pub struct CreatePlan;
impl Operation for CreatePlan {
    type Args = CreatePlanArgs;
    type Output = One<Plan>;
    const SPEC: Spec = Spec {
        name: "create_plan",
        event: "create_plan",
        ability: Some(Ability::PlanCreate),
        path: "/v1/projects/{project_id}/plans",
        subject_type: "project-subscription-plan",
        summary: "Create a plan (names are unique per project).",
        creates: Some("plan_id"),
        ..Spec::CREATE
    };

    async fn run(c: &mut Call, args: CreatePlanArgs) -> Result<Self::Output> {
        let project = c.load::<Project>(&args.project_id).await?;
        let name = validate_name("name", &args.name, 100)?;
        if !(0..=100_000_000).contains(&args.price_cents) {
            return Err(Error::field("price_cents", "must be from 0 to 100000000"));
        }
        let currency = args.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::field("currency", "must be a three-letter ISO 4217 code"));
        }
        let team = c.team_id();
        let new = NewPlan {
            team_id: &team,
            project_id: &project.id,
            name: &name,
            price_cents: args.price_cents,
            currency: &currency,
            billing_interval: args.billing_interval,
            active: args.active.unwrap_or(false),
            created_at: now_ms(),
        };
        let id = match store::insert(c.conn(), &new).await {
            Err(e) if is_unique_violation(&e) => {
                return Err(Error::Conflict(
                    "a plan with this name already exists in the project".into(),
                ));
            }
            other => other?,
        };
        c.subject(&id);
        One::ok(c.load::<Plan>(&id).await?)
    }
}

pub struct PublishPlan;
impl Operation for PublishPlan {
    type Args = PublishPlanArgs;
    type Output = One<Plan>;
    const SPEC: Spec = Spec {
        name: "publish_plan",
        event: "publish_plan",
        ability: Some(Ability::PlanUpdate),
        path: "/v1/plans/{plan_id}/publish",
        subject_type: "project-subscription-plan",
        subject_arg: Some("plan_id"),
        summary: "Publish or unpublish a plan.",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: PublishPlanArgs) -> Result<Self::Output> {
        let before = c.load::<Plan>(&args.plan_id).await?;
        if before.active != args.active {
            store::set_active(c.conn(), &before.id, args.active).await?;
            c.changes(json!({"active": {"from": before.active, "to": args.active}}));
        }
        One::ok(c.load::<Plan>(&before.id).await?)
    }
}
