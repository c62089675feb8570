//! The approval controls over REST and MCP (issue 20): read the team's policy; change it; set a
//! token's budget. Only an owner or admin of the team changes them, and a token only ever makes
//! them stricter: an agent holding an owner's token can add a hold or lower a budget, never
//! release a hold, relax the approver rule, or raise or remove a budget — the rule that holds a
//! call cannot be undone by what it holds. Loosening is for a person (dashboard) or the operator
//! (CLI).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::ability::Ability;
use crate::domain::approval::{ApprovalPolicy, ApproverRule, SurfaceRule, budget_loosens};
use crate::domain::error::{Error, Result};
use crate::domain::role::Role;
use crate::domain::token::TokenId;
use crate::service::Call;
use crate::service::core::args::{Bounded, NoArgs};
use crate::service::core::hold::policy_in;
use crate::service::core::op::{DynOp, One, Operation, Spec, Verb};
use crate::store::{approvals as store, now_ms, tokens};

pub static OPS: &[&dyn DynOp] = &[&GetApprovalPolicy, &UpdateApprovalPolicy, &SetTokenBudget];

/// On which surfaces a call of an operation waits for a person's approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Surfaces {
    Mcp,
    Rest,
    Both,
    None,
}

impl From<Surfaces> for SurfaceRule {
    fn from(s: Surfaces) -> Self {
        match s {
            Surfaces::Mcp => SurfaceRule::Mcp,
            Surfaces::Rest => SurfaceRule::Rest,
            Surfaces::Both => SurfaceRule::Both,
            Surfaces::None => SurfaceRule::None,
        }
    }
}

/// Who may approve a held call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Approver {
    /// The token's owner, or an owner or admin of the team.
    OwnerOrAdmin,
    /// An owner or admin of the team other than the token's owner.
    NotTheCaller,
}

impl From<Approver> for ApproverRule {
    fn from(a: Approver) -> Self {
        match a {
            Approver::OwnerOrAdmin => ApproverRule::OwnerOrAdmin,
            Approver::NotTheCaller => ApproverRule::NotTheCaller,
        }
    }
}

/// One operation's rule.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// A write operation of the catalog (e.g. `kick_member`).
    #[schemars(length(max = 64))]
    pub operation: String,
    pub surfaces: Surfaces,
}

/// A team's approval policy.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PolicyView {
    /// The operations that wait for approval somewhere; any other runs without.
    pub rules: Vec<Rule>,
    pub approver: Approver,
    /// Grows by one at every change; a change voids the approvals asked for under the last.
    pub version: i64,
}

impl From<&ApprovalPolicy> for PolicyView {
    fn from(p: &ApprovalPolicy) -> Self {
        let surfaces = |r: SurfaceRule| match r {
            SurfaceRule::Mcp => Surfaces::Mcp,
            SurfaceRule::Rest => Surfaces::Rest,
            SurfaceRule::Both => Surfaces::Both,
            SurfaceRule::None => Surfaces::None,
        };
        PolicyView {
            rules: p
                .rules
                .iter()
                .map(|(op, r)| Rule {
                    operation: op.clone(),
                    surfaces: surfaces(*r),
                })
                .collect(),
            approver: match p.approver {
                ApproverRule::OwnerOrAdmin => Approver::OwnerOrAdmin,
                ApproverRule::NotTheCaller => Approver::NotTheCaller,
            },
            version: p.version,
        }
    }
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicyArgs {
    /// Rules to set (`none` releases an operation); the others stay as they are. At most 64.
    #[schemars(length(max = 64))]
    pub rules: Option<Vec<Rule>>,
    pub approver: Option<Approver>,
}

#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetArgs {
    /// The token (its ID, `tok_…` is not part of it): one of the team's.
    pub token_id: String,
    /// A write operation of the catalog.
    #[schemars(length(max = 64))]
    pub operation: String,
    /// Calls per rolling 24 h; `0` removes the budget.
    pub max_calls: Bounded<0, 1_000_000>,
}

/// A token's budget after a change.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct BudgetView {
    pub token_id: String,
    pub operation: String,
    /// Calls per rolling 24 h (`null`: no budget).
    pub limit: Option<i64>,
    pub previous: Option<i64>,
    pub window: &'static str,
}

/// The caller changes controls only as an owner or admin of the team (their role now).
fn manager(c: &Call) -> Result<()> {
    match c.caller.in_team()?.role {
        Role::Owner | Role::Admin => Ok(()),
        _ => Err(Error::Conflict(
            "only an owner or an admin of the team can change its approval controls".into(),
        )),
    }
}

/// A token makes controls only stricter; what it would loosen is refused, naming it.
fn tightens_only(c: &Call, loosened: &[String]) -> Result<()> {
    if c.caller.grant().is_some() && !loosened.is_empty() {
        return Err(Error::Conflict(format!(
            "a token can only make the approval controls stricter; releasing {} is for a person in the \
             dashboard (Settings → Approvals) or the operator's CLI",
            loosened.join(", ")
        )));
    }
    Ok(())
}

fn operation_field(c: &Call, name: &str, op: &str) -> Result<()> {
    if (c.config().holdable)(op) {
        Ok(())
    } else {
        Err(Error::field(
            name,
            format!("`{op}` is not a write operation of the catalog"),
        ))
    }
}

pub struct GetApprovalPolicy;
impl Operation for GetApprovalPolicy {
    type Args = NoArgs;
    type Output = One<PolicyView>;
    const SPEC: Spec = Spec {
        name: "get_approval_policy",
        event: "get_approval_policy",
        ability: Some(Ability::TeamView),
        path: "/v1/approval-policy",
        subject_type: "team",
        summary: "The team's approval policy: which calls wait for a person's approval, on which surface, and who approves.",
        ..Spec::READ
    };

    async fn run(c: &mut Call, _: NoArgs) -> Result<Self::Output> {
        let team = c.team_id();
        let policy = policy_in(c.conn(), &team).await?;
        One::ok(PolicyView::from(&policy))
    }
}

pub struct UpdateApprovalPolicy;
impl Operation for UpdateApprovalPolicy {
    type Args = UpdatePolicyArgs;
    type Output = One<PolicyView>;
    const SPEC: Spec = Spec {
        name: "update_approval_policy",
        event: "approval.policy_changed",
        method: Verb::Patch,
        path: "/v1/approval-policy",
        subject_type: "team",
        idempotent: false,
        replayable: false,
        summary: "Change the team's approval policy (owners and admins; a token can only make it stricter).",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: UpdatePolicyArgs) -> Result<Self::Output> {
        manager(c)?;
        let rules = args.rules.unwrap_or_default();
        if rules.len() > 64 {
            return Err(Error::field("rules", "at most 64 rules"));
        }
        for r in &rules {
            operation_field(c, "rules", &r.operation)?;
        }
        if rules.is_empty() && args.approver.is_none() {
            return Err(Error::field("rules", "name at least one change"));
        }
        let team = c.team_id();
        let before = policy_in(c.conn(), &team).await?;
        let assignments: Vec<(String, SurfaceRule)> =
            rules.iter().map(|r| (r.operation.clone(), r.surfaces.into())).collect();
        let after = before.changed(&assignments, args.approver.map(Into::into));
        tightens_only(c, &before.loosened_by(&after))?;
        let by = c.user_id().to_owned();
        let stored = store::store_policy(
            c.conn(),
            &team,
            &after.rules_json(),
            after.approver.as_str(),
            after.version,
            now_ms(),
            Some(&by),
        )
        .await?;
        if !stored {
            return Err(Error::Conflict(
                "the policy was changed at the same time; read it again and retry".into(),
            ));
        }
        c.changes(json!({"before": before.to_audit_json(), "after": after.to_audit_json()}));
        One::ok(PolicyView::from(&after))
    }
}

pub struct SetTokenBudget;
impl Operation for SetTokenBudget {
    type Args = BudgetArgs;
    type Output = One<BudgetView>;
    const SPEC: Spec = Spec {
        name: "set_token_budget",
        event: "token.budget_changed",
        path: "/v1/token-budgets",
        subject_type: "token",
        subject_arg: Some("token_id"),
        summary: "Set a token's budget of an operation: calls per rolling 24 h before each needs a person's approval (owners and admins; a token can only lower or add one).",
        ..Spec::WRITE
    };

    async fn run(c: &mut Call, args: BudgetArgs) -> Result<Self::Output> {
        manager(c)?;
        operation_field(c, "operation", &args.operation)?;
        let id = TokenId::parse(&args.token_id).map_err(|_| Error::NotFound)?;
        let team = c.team_id();
        let row = tokens::find(c.conn(), id.as_str())
            .await?
            .filter(|t| t.team_id.as_str() == team)
            .ok_or(Error::NotFound)?;
        if row.revoked_at.is_some() {
            return Err(Error::Conflict("this token is revoked".into()));
        }
        c.subject(id.as_str());
        let from = store::budget(c.conn(), id.as_str(), &args.operation).await?;
        let to = (args.max_calls.get() > 0).then_some(args.max_calls.get());
        if budget_loosens(from, to) {
            tightens_only(c, &[format!("the budget of {}", args.operation)])?;
        }
        let by = c.user_id().to_owned();
        match to {
            Some(n) if from != to => {
                store::set_budget(c.conn(), id.as_str(), &args.operation, n, now_ms(), Some(&by)).await?
            }
            None if from.is_some() => {
                store::remove_budget(c.conn(), id.as_str(), &args.operation).await?;
            }
            _ => {}
        }
        c.changes(json!({"operation": args.operation, "limit": {"from": from, "to": to}, "window": "24h"}));
        One::ok(BudgetView {
            token_id: id.as_str().to_owned(),
            operation: args.operation,
            limit: to,
            previous: from,
            window: "24h",
        })
    }
}
