//! Approval controls (issue 20): a team's approval policy and per-token budgets — reading and
//! changing them (the operator's CLI, the dashboard's Settings → Approvals → Policy), each change
//! audited in its transaction. The call path reads them in `service::core::hold`.
//!
//! Who may change them: the operator (CLI), and a person who is an owner or admin of the team
//! (their role read again inside the transaction). No ability of the catalog is exactly "owner
//! or admin" (a viewer holds `role:view-any`), so the role itself is checked. A token never
//! changes them: an agent must not be able to loosen the rule that holds its own calls.

use serde_json::json;

use crate::domain::approval::{ApprovalPolicy, ApproverRule, parse_assignment};
use crate::domain::error::{Error, Result};
use crate::domain::ids::parse_id;
use crate::domain::role::Role;
use crate::domain::token::TokenId;
use crate::service::{Caller, Service, Who};
use crate::store::{Conn, approvals, now_ms, teams, tokens};

/// A change of a team's policy, as typed: `OPERATION=mcp|rest|both|none` assignments and an
/// approver rule, all checked before anything is written.
#[derive(Clone, Debug, Default)]
pub struct PolicyChange {
    pub approvals: Vec<String>,
    pub approver: Option<String>,
}

impl PolicyChange {
    pub fn is_empty(&self) -> bool {
        self.approvals.is_empty() && self.approver.is_none()
    }

    /// The change that takes `policy` to what a form asks for: each `(operation, rule)` that
    /// differs from the policy's, and the approver when it differs, so the audit entry shows only
    /// what changed. Values go on as typed: an unknown one is refused by
    /// [`Service::change_approval_policy`], never dropped.
    pub fn towards<'a>(
        policy: &ApprovalPolicy,
        rules: impl IntoIterator<Item = (&'a str, &'a str)>,
        approver: Option<&str>,
    ) -> PolicyChange {
        PolicyChange {
            approvals: rules
                .into_iter()
                .filter(|(op, rule)| policy.rule(op).as_str() != *rule)
                .map(|(op, rule)| format!("{op}={rule}"))
                .collect(),
            approver: approver.filter(|a| *a != policy.approver.as_str()).map(str::to_owned),
        }
    }
}

/// The operations a policy can hold or a budget count (the catalog's writes): name and summary.
pub fn holdable_operations() -> Vec<(&'static str, &'static str)> {
    crate::service::ops::catalog::all()
        .map(|op| op.spec())
        .filter(|spec| can_be_held(spec.name))
        .map(|spec| (spec.name, spec.summary))
        .collect()
}

/// A live token of the team with its budgets (operation, calls per 24 h).
#[derive(Clone, Debug)]
pub struct BudgetedToken {
    pub token: tokens::TeamToken,
    pub budgets: Vec<(String, i64)>,
}

/// What a signed-in person sees of their team's approval controls.
#[derive(Clone, Debug)]
pub struct Controls {
    pub policy: ApprovalPolicy,
    /// Whether they may change them: an owner or admin of the team, by their role now.
    pub manages: bool,
    /// The team's live tokens and their budgets; empty unless `manages` (who holds which token,
    /// and what it may do unasked, is for those who set it).
    pub tokens: Vec<BudgetedToken>,
}

/// A budget before and after a change (`None`: no budget).
#[derive(Clone, Debug)]
pub struct BudgetChange {
    pub token_id: String,
    pub operation: String,
    pub from: Option<i64>,
    pub to: Option<i64>,
}

impl BudgetChange {
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "token_id": self.token_id,
            "operation": self.operation,
            "limit": self.to,
            "previous": self.from,
            "window": "24h",
        })
    }
}

pub use crate::service::ops::catalog::can_be_held;

pub use crate::service::core::hold::policy_in;

/// Checks that `actor` may change the controls of `team_id`; the person to name as `updated_by`.
async fn controller(conn: &mut Conn, actor: &Caller, team_id: &str) -> Result<Option<String>> {
    match &actor.who {
        Who::System => Ok(None),
        Who::Person(m) if m.team_id.as_str() == team_id => {
            let role = teams::role_of(conn, team_id, m.user_id.as_str()).await?;
            match role.as_deref().map(str::parse::<Role>) {
                Some(Ok(Role::Owner | Role::Admin)) => Ok(Some(m.user_id.to_string())),
                Some(_) => Err(Error::Conflict(
                    "only an owner or an admin of the team can change its approval controls".into(),
                )),
                None => Err(Error::NotFound),
            }
        }
        Who::Person(_) => Err(Error::NotFound),
        Who::Token { .. } => Err(Error::Conflict(
            "approval controls are changed by a person in the dashboard or by the operator, never with a token".into(),
        )),
    }
}

/// What a token's calls will meet: its team's policy and its budgets with their uses over the
/// last 24 h (operation, limit, used). `tools/list` says it in each tool.
#[derive(Clone, Debug)]
pub struct Outlook {
    pub policy: crate::domain::approval::ApprovalPolicy,
    pub budgets: Vec<(String, i64, i64)>,
}

impl Service {
    /// The policy and budgets a token's calls meet now.
    pub async fn approval_outlook(&self, caller: &Caller) -> Result<Outlook> {
        let member = caller.in_team()?;
        let mut conn = self.db.pool().acquire().await?;
        let policy = policy_in(&mut conn, member.team_id.as_str()).await?;
        let budgets = match caller.token_id() {
            Some(id) => {
                let since = now_ms() - crate::domain::time::DAY_MS;
                approvals::budgets_used(&mut conn, id, since).await?
            }
            None => Vec::new(),
        };
        Ok(Outlook { policy, budgets })
    }

    /// A team's approval policy (the defaults while nobody has changed it).
    pub async fn approval_policy(&self, team_id: &str) -> Result<ApprovalPolicy> {
        let team = parse_id(team_id).map_err(|_| Error::field("team", "no such team"))?;
        let mut conn = self.db.pool().acquire().await?;
        if !teams::exists(&mut conn, &team).await? {
            return Err(Error::field("team", "no such team"));
        }
        policy_in(&mut conn, &team).await
    }

    /// Applies a change to a team's policy: one new version, audited as
    /// `approval.policy_changed` with the policy before and after. Nothing is written when any
    /// part of the change is invalid.
    pub async fn change_approval_policy(
        &self,
        actor: &Caller,
        team_id: &str,
        change: &PolicyChange,
    ) -> Result<ApprovalPolicy> {
        let mut assignments = Vec::new();
        for text in &change.approvals {
            assignments.push(parse_assignment(text, can_be_held).map_err(|e| Error::field("approval", e))?);
        }
        let approver = match change.approver.as_deref() {
            Some(a) => Some(a.parse::<ApproverRule>().map_err(|e| Error::field("approver", e))?),
            None => None,
        };
        if assignments.is_empty() && approver.is_none() {
            return Err(Error::field("approval", "name at least one change"));
        }
        let team = parse_id(team_id).map_err(|_| Error::field("team", "no such team"))?;
        let mut w = self.audited().await?;
        if !teams::exists(w.conn(), &team).await? {
            return Err(Error::field("team", "no such team"));
        }
        let by = controller(w.conn(), actor, &team).await?;
        let before = policy_in(w.conn(), &team).await?;
        let after = before.changed(&assignments, approver);
        let stored = approvals::store_policy(
            w.conn(),
            &team,
            &after.rules_json(),
            after.approver.as_str(),
            after.version,
            now_ms(),
            by.as_deref(),
        )
        .await?;
        if !stored {
            return Err(Error::Conflict(
                "the policy was changed at the same time; read it again and retry".into(),
            ));
        }
        w.record(
            actor
                .draft("approval.policy_changed", &team)
                .subject("team", team.as_str())
                .properties(json!({"before": before.to_audit_json(), "after": after.to_audit_json()})),
        );
        w.commit().await?;
        Ok(after)
    }

    /// Sets a token's budget of one operation (calls per rolling 24 h); `0` removes it. Audited
    /// as `token.budget_changed`; removing a budget the token does not have changes nothing.
    pub async fn set_token_budget(
        &self,
        actor: &Caller,
        token_id: &str,
        operation: &str,
        max_calls: u32,
    ) -> Result<BudgetChange> {
        if !can_be_held(operation) {
            return Err(Error::field(
                "operation",
                format!("`{operation}` is not an operation a budget can count"),
            ));
        }
        let id = TokenId::parse(token_id).map_err(|_| Error::NotFound)?;
        let mut w = self.audited().await?;
        let row = tokens::find(w.conn(), id.as_str()).await?.ok_or(Error::NotFound)?;
        let by = controller(w.conn(), actor, row.team_id.as_str()).await?;
        if row.revoked_at.is_some() {
            return Err(Error::Conflict("this token is revoked".into()));
        }
        let from = approvals::budget(w.conn(), id.as_str(), operation).await?;
        let to = (max_calls > 0).then_some(i64::from(max_calls));
        let change = BudgetChange {
            token_id: id.as_str().to_owned(),
            operation: operation.to_owned(),
            from,
            to,
        };
        if from == to {
            return Ok(change);
        }
        match to {
            Some(n) => approvals::set_budget(w.conn(), id.as_str(), operation, n, now_ms(), by.as_deref()).await?,
            None => {
                approvals::remove_budget(w.conn(), id.as_str(), operation).await?;
            }
        }
        w.record(
            actor
                .draft("token.budget_changed", row.team_id.as_str())
                .subject("token", id.as_str())
                .properties(json!({"operation": operation, "limit": {"from": from, "to": to}, "window": "24h"})),
        );
        w.commit().await?;
        Ok(change)
    }

    /// The approval controls of the signed-in person's team, as the dashboard shows them.
    pub async fn approval_controls(&self, caller: &Caller) -> Result<Controls> {
        let team = caller.in_team()?.team_id.to_string();
        let mut conn = self.db.pool().acquire().await?;
        let policy = policy_in(&mut conn, &team).await?;
        let manages = match controller(&mut conn, caller, &team).await {
            Ok(_) => true,
            Err(Error::Conflict(_)) => false,
            Err(e) => return Err(e),
        };
        if !manages {
            return Ok(Controls {
                policy,
                manages,
                tokens: Vec::new(),
            });
        }
        let budgets = approvals::budgets_of_team(&mut conn, &team).await?;
        let tokens = tokens::live_of_team(&mut conn, &team, now_ms())
            .await?
            .into_iter()
            .map(|token| BudgetedToken {
                budgets: budgets
                    .iter()
                    .filter(|(id, _, _)| *id == token.id)
                    .map(|(_, op, limit)| (op.clone(), *limit))
                    .collect(),
                token,
            })
            .collect();
        Ok(Controls {
            policy,
            manages,
            tokens,
        })
    }

    /// A token's budgets, by operation.
    pub async fn token_budgets(&self, token_id: &str) -> Result<Vec<(String, i64)>> {
        let id = TokenId::parse(token_id).map_err(|_| Error::NotFound)?;
        let mut conn = self.db.pool().acquire().await?;
        tokens::find(&mut conn, id.as_str()).await?.ok_or(Error::NotFound)?;
        Ok(approvals::budgets_of(&mut conn, id.as_str()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_becomes_only_what_differs_from_the_policy() {
        let policy = ApprovalPolicy::default();
        let form = [
            ("kick_member", "mcp"),
            ("ban_member", "none"),
            ("create_project", "none"),
        ];
        let change = PolicyChange::towards(&policy, form, Some("owner-or-admin"));
        assert_eq!(change.approvals, vec!["ban_member=none"]);
        assert_eq!(change.approver, None);
        let change = PolicyChange::towards(&policy, [("create_project", "sometimes")], Some("not-the-caller"));
        assert_eq!(
            change.approvals,
            vec!["create_project=sometimes"],
            "passed on, to be refused"
        );
        assert_eq!(change.approver.as_deref(), Some("not-the-caller"));
        assert!(PolicyChange::towards(&policy, [], None).is_empty());
    }
}
