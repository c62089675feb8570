//! Access codes: listed masked only; generated in bulk by a background job ([`super::jobs`])
//! whose clear codes are kept for one download by a person (dashboard), never returned by REST
//! or MCP.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::ability::Ability;
use crate::domain::error::{Error, Result};
use crate::domain::ids::{PlanId, new_id};
use crate::domain::kinds::AccessCodeStatus;
use crate::domain::role::Role;
use crate::domain::time::DAY_MS;
use crate::service::Call;
use crate::service::core::args::{Bounded, Limit, PageNo};
use crate::service::core::caller::{Caller, Member};
use crate::service::core::op::{DynOp, One, Operation, Paged, Spec};
use crate::service::core::page::Page;
use crate::store::access_codes as store;
use crate::store::plans::Plan;
use crate::store::{jobs, now_ms};

pub static OPS: &[&dyn DynOp] = &[&ListAccessCodes, &BulkGenerateAccessCodes];

/// The most codes one request may ask for.
pub const MAX_QUANTITY: i64 = 1_000;
/// The most generation jobs a team may have queued or running at once.
pub const MAX_PENDING_JOBS: i64 = 3;
/// The most clear batches a team may have waiting for their one download.
pub const MAX_UNDOWNLOADED: i64 = 10;
/// The most codes a team may ask for in 24 hours.
pub const MAX_CODES_PER_DAY: i64 = 20_000;
/// How long a clear batch waits for its download before it is forgotten.
pub const DOWNLOAD_TTL_MS: i64 = DAY_MS;
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
    /// How many codes, 1 to 1 000.
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
    type Output = Paged<store::AccessCode>;
    const SPEC: Spec = Spec {
        name: "list_access_codes",
        event: "list_access_codes",
        ability: Some(Ability::AccessCodeViewAny),
        path: "/v1/plans/{plan_id}/access-codes",
        subject_type: "project-access-code",
        summary: "A plan's access codes, masked.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, args: AccessCodeArgs) -> Result<Self::Output> {
        let plan = c.load::<Plan>(&args.plan_id).await?;
        let page = Page::of(args.page, args.limit);
        let (rows, total) = store::page_of_plan(c.conn(), &plan.id, args.status, page.limit, page.offset()).await?;
        Paged::ok(rows, page.meta(total))
    }
}

pub struct BulkGenerateAccessCodes;
impl Operation for BulkGenerateAccessCodes {
    type Args = BulkGenerateArgs;
    type Output = One<jobs::JobView>;
    const SPEC: Spec = Spec {
        name: "bulk_generate_access_codes",
        event: "bulk_generate_access_codes",
        ability: Some(Ability::AccessCodeCreate),
        path: "/v1/plans/{plan_id}/access-codes",
        subject_type: "job",
        success_status: 202,
        summary: "Generate access codes for a plan as a background job.",
        creates: Some("job_id"),
        ..Spec::CREATE
    };

    async fn run(c: &mut Call, args: BulkGenerateArgs) -> Result<Self::Output> {
        let plan = c.load::<Plan>(&args.plan_id).await?;
        within_quotas(c, args.quantity.get()).await?;
        let input = GenerateInput {
            plan_id: plan.id.to_string(),
            project_id: plan.project_id.to_string(),
            quantity: args.quantity.get(),
            expires_in_days: args.expires_in_days.map(Bounded::get),
        };
        let input = serde_json::to_string(&input).map_err(|e| Error::Internal(e.into()))?;
        let (job_id, team) = (new_id(), c.team_id());
        let (user, token) = (c.user_id().to_owned(), c.caller.token_id().map(str::to_owned));
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
        One::ok(job.view())
    }
}

/// Per-team quotas, so that one team (or one leaked token) cannot fill the database or hold the
/// writer: jobs pending, clear batches waiting for download, codes per 24 hours.
async fn within_quotas(c: &mut Call, quantity: i64) -> Result<()> {
    let team = c.team_id();
    if jobs::count_pending(c.conn(), &team, GENERATE_JOB).await? >= MAX_PENDING_JOBS {
        return Err(Error::Conflict(format!(
            "the team already has {MAX_PENDING_JOBS} batches of codes being generated; wait for one to finish"
        )));
    }
    let now = now_ms();
    if store::count_downloads(c.conn(), &team, now - DOWNLOAD_TTL_MS).await? >= MAX_UNDOWNLOADED {
        return Err(Error::Conflict(format!(
            "{MAX_UNDOWNLOADED} batches of clear codes wait to be downloaded from the dashboard; download them or let them expire"
        )));
    }
    let recent = jobs::inputs_since(c.conn(), &team, GENERATE_JOB, now - DAY_MS).await?;
    let mut used = 0;
    let mut frees_at = Vec::with_capacity(recent.len());
    for (input, created_at) in &recent {
        let n = serde_json::from_str::<GenerateInput>(input).map_or(0, |i| i.quantity);
        used += n;
        frees_at.push((created_at + DAY_MS, n));
    }
    if used + quantity > MAX_CODES_PER_DAY {
        // Room comes back as the oldest batches leave the 24-hour window.
        let mut room = MAX_CODES_PER_DAY - used;
        let mut at = now + DAY_MS;
        for (when, n) in frees_at {
            room += n;
            if room >= quantity {
                at = when;
                break;
            }
        }
        return Err(Error::RateLimited {
            retry_after_secs: ((at - now) / 1000).max(1) as u64,
            why: format!("the team may generate {MAX_CODES_PER_DAY} access codes in 24 hours"),
        });
    }
    Ok(())
}

/// A clear batch waiting for its one download.
#[derive(Debug, Clone)]
pub struct PendingBatch {
    pub job_id: String,
    pub quantity: i64,
    pub kept_since: i64,
    /// Who generated it, when not the person asking (whose role then is owner or admin).
    pub generated_by: Option<String>,
}

/// Whether `p` may take the batch `created_by` generated: its creator, or an owner or admin of
/// the team (audited as taking another person's batch). Anyone else is told it does not exist.
fn may_download(p: &Member, created_by: &str) -> bool {
    p.user_id == created_by || matches!(p.role, Role::Owner | Role::Admin)
}

impl crate::service::Service {
    /// The team's batches waiting for download that the person may take: their own, or every
    /// one for an owner or admin. Their role must be able to generate codes.
    pub async fn pending_batches(&self, caller: &Caller) -> Result<Vec<PendingBatch>> {
        if !caller.can(Ability::AccessCodeCreate) {
            return Err(Error::missing(Ability::AccessCodeCreate));
        }
        // The page's view entry is re-checked for it before the list is shown.
        if let Some(view) = &caller.page_view {
            view.read(Some(Ability::AccessCodeCreate));
        }
        let p = caller.in_team()?;
        let mut conn = self.db().pool().acquire().await?;
        let rows = store::downloads_of_team(&mut conn, &p.team_id).await?;
        Ok(rows
            .into_iter()
            .filter(|b| b.project_id.as_deref().is_none_or(|pid| caller.sees_project(pid)))
            .filter(|b| may_download(p, &b.created_by))
            .map(|b| PendingBatch {
                quantity: serde_json::from_str::<GenerateInput>(&b.input).map_or(0, |i| i.quantity),
                generated_by: (p.user_id != b.created_by).then_some(b.created_by_email),
                job_id: b.job_id,
                kept_since: b.kept_since,
            })
            .collect())
    }

    /// The one download of a batch's clear codes, by its creator or an owner or admin of the
    /// team: taken out of the database and audited (`access_codes.downloaded`, naming the creator
    /// and the role when it is another person's batch) in one transaction; a second download
    /// finds nothing. Anyone else gets what a batch that does not exist gets.
    pub async fn download_batch(&self, caller: &Caller, job_id: &str) -> Result<Vec<String>> {
        if !caller.can(Ability::AccessCodeCreate) {
            return Err(Error::missing(Ability::AccessCodeCreate));
        }
        let p = caller.in_team()?;
        let job_id = crate::domain::ids::parse_id(job_id)?;
        let mut w = self.audited().await?;
        let (project, created_by) = store::find_download(w.conn(), &p.team_id, &job_id)
            .await?
            .ok_or(Error::NotFound)?;
        if project.as_deref().is_some_and(|pid| !caller.sees_project(pid)) || !may_download(p, &created_by) {
            return Err(Error::NotFound);
        }
        let codes = store::take_download(w.conn(), &job_id).await?.ok_or(Error::NotFound)?;
        let codes: Vec<String> = serde_json::from_str(&codes).map_err(|e| Error::Internal(e.into()))?;
        let mut properties = serde_json::json!({"quantity": codes.len()});
        if p.user_id != created_by {
            properties["others_batch"] = serde_json::json!({"created_by": created_by, "as_role": p.role.as_str()});
        }
        let mut entry = caller
            .draft("access_codes.downloaded", &p.team_id)
            .subject("job", &job_id)
            .properties(properties);
        entry.project_id = project;
        w.record(entry);
        w.commit().await?;
        Ok(codes)
    }
}
