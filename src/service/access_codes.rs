//! Access codes: listed masked only; generated in bulk by a background job ([`super::jobs`])
//! whose clear codes are kept for one download by a person (dashboard), never returned by REST
//! or MCP.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Call;
use super::args::{Bounded, Limit, PageNo};
use super::op::{Op, Operation, Output, Spec};
use super::page::Page;
use super::plans::plan_in_scope;
use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{PlanId, new_id};
use crate::domain::kinds::AccessCodeStatus;
use crate::store::access_codes as store;
use crate::store::{jobs, now_ms};

pub static OPS: &[&dyn Op] = &[&ListAccessCodes, &BulkGenerateAccessCodes];

pub const MAX_QUANTITY: i64 = 10_000;
/// The kind of job that generates a batch.
pub const GENERATE_JOB: &str = "access_codes.generate";

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessCodeArgs {
    pub plan_id: PlanId,
    /// Only codes in this status.
    pub status: Option<AccessCodeStatus>,
    /// Page number, from 1.
    pub page: Option<PageNo>,
    /// Items per page, 1 to 100 (default 25).
    pub limit: Option<Limit>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkGenerateArgs {
    pub plan_id: PlanId,
    /// How many codes, 1 to 10 000.
    pub quantity: Bounded<1, MAX_QUANTITY>,
    /// Days until the codes expire, 1 to 3650 (default: never).
    pub expires_in_days: Option<Bounded<1, 3650>>,
}

/// What a generation job is given.
#[derive(Debug, Deserialize, Serialize)]
pub struct GenerateInput {
    pub plan_id: String,
    pub project_id: String,
    pub quantity: i64,
    pub expires_in_days: Option<i64>,
}

/// `AbCd********WxYz`: the first and last four characters only.
pub fn mask(code: &str) -> String {
    let n = code.chars().count();
    let head: String = code.chars().take(4).collect();
    let tail: String = code.chars().skip(n.saturating_sub(4)).collect();
    format!("{head}{}{tail}", "*".repeat(n.saturating_sub(8)))
}

pub struct ListAccessCodes;
impl Operation for ListAccessCodes {
    type Args = AccessCodeArgs;
    const SPEC: Spec = Spec {
        name: "list_access_codes",
        event: "list_access_codes",
        ability: Some(Ability::AccessCodeViewAny),
        path: "/v1/plans/{plan_id}/access-codes",
        subject_type: "project-access-code",
        summary: "A plan's access codes, masked.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: AccessCodeArgs) -> Result<Output> {
        let plan = plan_in_scope(c, args.plan_id.as_str()).await?;
        let page = Page::of(args.page, args.limit);
        let (rows, total) = store::page_of_plan(c.conn(), &plan.id, args.status, page.limit, page.offset()).await?;
        Output::list(rows, page.meta(total))
    }
}

pub struct BulkGenerateAccessCodes;
impl Operation for BulkGenerateAccessCodes {
    type Args = BulkGenerateArgs;
    const SPEC: Spec = Spec {
        name: "bulk_generate_access_codes",
        event: "bulk_generate_access_codes",
        ability: Some(Ability::AccessCodeCreate),
        path: "/v1/plans/{plan_id}/access-codes",
        subject_type: "job",
        success_status: 202,
        summary: "Generate access codes for a plan as a background job.",
        ..Spec::CREATE
    };

    async fn run(c: &mut Call, args: BulkGenerateArgs) -> Result<Output> {
        let plan = plan_in_scope(c, args.plan_id.as_str()).await?;
        let input = GenerateInput {
            plan_id: plan.id.clone(),
            project_id: plan.project_id.clone(),
            quantity: args.quantity.get(),
            expires_in_days: args.expires_in_days.map(Bounded::get),
        };
        let input = serde_json::to_string(&input).map_err(|e| Error::Internal(e.into()))?;
        let (job_id, team) = (new_id(), c.team_id());
        let (user, token) = (c.principal.user_id.clone(), c.principal.token_id().map(str::to_owned));
        let job = jobs::NewJob {
            id: &job_id,
            team_id: &team,
            project_id: Some(&plan.project_id),
            kind: GENERATE_JOB,
            input: &input,
            created_by_user_id: &user,
            created_by_token_id: token.as_deref(),
            created_at: now_ms(),
        };
        jobs::insert(c.conn(), &job).await?;
        c.subject(&job_id);
        c.wake_jobs();
        let job = jobs::find(c.conn(), &job_id).await?.ok_or(Error::NotFound)?;
        Output::one(job.to_json())
    }
}
