//! Held calls as people see them (issue 20): the Approvals list, one request with who asks and
//! exactly what it would do, Approve and Deny, and the server's own sweeps (expiry, voiding).
//!
//! Only a person signed in decides, on the dashboard: no token can approve, deny or even list
//! approvals, so an agent cannot reach the surface that lets its own calls run. Every decision
//! reads the person's role again inside its transaction.

use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::approval::{ApproverRule, Status, may_approve, may_deny};
use crate::domain::error::{Error, Result};
use crate::domain::ids::{Id, parse_id};
use crate::domain::role::Role;
use crate::domain::time::rfc3339;
use crate::service::core::hold::{approval_url, expired_entry, resource};
use crate::service::ops::catalog;
use crate::service::{Caller, Service, Who};
use crate::store::approvals::{self as store, ApprovalRow};
use crate::store::members::Member;
use crate::store::plans::Plan;
use crate::store::projects::Project;
use crate::store::subscriptions::{self, Subscription};
use crate::store::{Conn, find_scoped, now_ms, teams, tokens, users};

/// Most requests one list shows.
const LIST_MAX: i64 = 200;

/// One request as the Approvals page and list show it.
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalView {
    pub id: String,
    pub status: String,
    pub operation: String,
    /// The operation in words (its catalog summary).
    pub summary: String,
    /// Every argument, as `name: value` text, in canonical order.
    pub arguments: Vec<(String, String)>,
    pub hold: String,
    pub surface: String,
    pub token_id: String,
    pub token_name: String,
    pub owner_id: String,
    pub owner_name: String,
    pub owner_email: String,
    /// The MCP client's name and version, or the OAuth client's ID, when known.
    pub client: Option<String>,
    pub team_name: String,
    pub project_name: Option<String>,
    /// What running it would do, sentence by sentence, as the data stands now.
    pub effect: Vec<String>,
    pub requested_at: String,
    pub expires_at: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub used_at: Option<String>,
    pub voided_reason: Option<String>,
    pub url: String,
    /// Whether the person looking may approve it now, and why not.
    pub may_approve: bool,
    pub may_deny: bool,
    pub why_not: Option<String>,
    /// The approval resource (the same JSON a held REST call answers).
    pub resource: Value,
}

/// Which requests the list shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Show {
    #[default]
    All,
    Only(Status),
}

/// The person looking, read again: their id and the role they hold now in the caller's team.
async fn person(conn: &mut Conn, caller: &Caller) -> Result<(String, String, Role)> {
    let Who::Person(m) = &caller.who else {
        return Err(Error::Conflict(
            "approvals are seen and decided by a person signed in to the dashboard, never with a token".into(),
        ));
    };
    let role = teams::role_of(conn, m.team_id.as_str(), m.user_id.as_str())
        .await?
        .ok_or(Error::AuthenticationRequired)?
        .parse::<Role>()
        .map_err(|e| Error::Internal(anyhow::anyhow!("corrupt role: {e}")))?;
    Ok((m.team_id.to_string(), m.user_id.to_string(), role))
}

impl Service {
    /// The Approvals list of the caller's team: every request for an owner or admin, a person's
    /// own tokens' otherwise; newest first. Expired ones are marked so first.
    pub async fn approvals(&self, caller: &Caller, show: Show) -> Result<Vec<ApprovalView>> {
        self.expire_approvals().await?;
        let mut conn = self.db.pool().acquire().await?;
        let (team_id, user_id, role) = person(&mut conn, caller).await?;
        let owner = (!matches!(role, Role::Owner | Role::Admin)).then_some(user_id.as_str());
        let status = match show {
            Show::All => None,
            Show::Only(s) => Some(s.as_str()),
        };
        let rows = store::of_team(&mut conn, &team_id, status, owner, LIST_MAX).await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.view(&mut conn, &row, &user_id, role, false).await?);
        }
        Ok(views)
    }

    /// How many requests wait for a decision the caller may make (the dashboard's notice on
    /// every page): every pending, unexpired one of the team for an owner or admin, their own
    /// tokens' for anyone else (who may deny those). One count; it writes nothing.
    pub async fn pending_approvals(&self, caller: &Caller) -> Result<usize> {
        let mut conn = self.db.pool().acquire().await?;
        let (team_id, user_id, role) = person(&mut conn, caller).await?;
        let owner = (!matches!(role, Role::Owner | Role::Admin)).then_some(user_id.as_str());
        let n = store::count_pending(&mut conn, &team_id, owner, now_ms()).await?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// One request of the caller's team, with what it would do. Another team's, or (for a
    /// person who is neither an owner nor an admin) another person's, does not exist.
    pub async fn approval(&self, caller: &Caller, id: &str) -> Result<ApprovalView> {
        self.expire_approvals().await?;
        let mut conn = self.db.pool().acquire().await?;
        let (team_id, user_id, role) = person(&mut conn, caller).await?;
        let row = visible(&mut conn, id, &team_id, &user_id, role).await?;
        self.view(&mut conn, &row, &user_id, role, true).await
    }

    /// Approves (`grant`) or denies a pending request, as the caller (a person signed in):
    /// audited as `approval.granted` or `approval.denied`, naming them.
    pub async fn decide_approval(&self, caller: &Caller, id: &str, grant: bool) -> Result<ApprovalView> {
        self.expire_approvals().await?;
        let mut w = self.audited().await?;
        let (team_id, user_id, role) = person(w.conn(), caller).await?;
        let row = visible(w.conn(), id, &team_id, &user_id, role).await?;
        if row.status != Status::Pending.as_str() {
            return Err(Error::Conflict(format!(
                "this request is {} and can no longer be decided",
                row.status
            )));
        }
        // The token must still be live and its owner still in the team: a request of a revoked
        // token is void, whatever the sweeps have seen yet.
        let token = tokens::find(w.conn(), &row.token_id).await?.ok_or(Error::NotFound)?;
        let owner_in_team = teams::role_of(w.conn(), &team_id, &row.owner_id).await?.is_some();
        if token.revoked_at.is_some() || !owner_in_team {
            return Err(Error::Conflict(
                "the token that asked was revoked or its owner left the team: this request is void".into(),
            ));
        }
        let is_owner = row.owner_id == user_id;
        if grant {
            let rule: ApproverRule = row
                .approver_rule
                .parse()
                .map_err(|e: String| Error::Internal(anyhow::anyhow!(e)))?;
            let needs = catalog::find(&row.operation).and_then(|op| op.spec().ability);
            may_approve(rule, is_owner, role, needs)
                .map_err(|why| Error::Conflict(format!("You cannot approve this: {why}.")))?;
        } else if !may_deny(is_owner, role) {
            return Err(Error::Conflict(
                "You cannot deny this: only the token's owner or an owner or admin of the team can.".into(),
            ));
        }
        let to = if grant { Status::Granted } else { Status::Denied };
        if !store::decide(w.conn(), &row.id, to.as_str(), &user_id, now_ms()).await? {
            return Err(Error::Conflict(
                "this request was decided or expired meanwhile; reload the page".into(),
            ));
        }
        let event = if grant { "approval.granted" } else { "approval.denied" };
        let mut entry = caller.draft(event, &team_id).subject("approval", row.id.as_str());
        entry.project_id = row.project_id.clone();
        entry.properties = json!({
            "operation": row.operation,
            "token_id": row.token_id,
            "requested_by": row.owner_id,
            "hold": row.hold,
            "expires_at": rfc3339(row.expires_at),
        });
        w.record(entry);
        w.commit().await?;
        self.approval(caller, id).await
    }

    /// Marks every pending or granted request past its expiry `expired`, each with its
    /// `approval.expired` entry (by the server). Runs before every list and decision, and on a
    /// timer while the server runs.
    pub async fn expire_approvals(&self) -> Result<usize> {
        let (due, _) = self.sweep_due().await?;
        if !due {
            return Ok(0);
        }
        let mut w = self.audited().await?;
        let moved = store::expire_due(w.conn(), now_ms()).await?;
        if moved.is_empty() {
            return Ok(0);
        }
        for row in &moved {
            w.record(expired_entry(row));
        }
        w.commit().await?;
        Ok(moved.len())
    }

    /// The server's timer: expires what is due, and forgets budget uses no window counts.
    pub async fn sweep_approvals(&self) -> Result<()> {
        self.expire_approvals().await?;
        if self.sweep_due().await?.1 {
            let mut tx = self.db.begin_write().await?;
            store::prune_uses(&mut tx, now_ms() - crate::domain::time::DAY_MS).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// What the sweep would write (expired requests, stale budget uses), read without the writer.
    async fn sweep_due(&self) -> Result<(bool, bool)> {
        let mut conn = self.db.read_pool().acquire().await?;
        let now = now_ms();
        Ok(store::sweep_due(&mut conn, now, now - crate::domain::time::DAY_MS).await?)
    }

    /// Builds the view of one request for the person `user_id` holding `role`; `effect` reads
    /// what the call would touch (the single page shows it; the list does not need it).
    async fn view(
        &self,
        conn: &mut Conn,
        row: &ApprovalRow,
        user_id: &str,
        role: Role,
        effect: bool,
    ) -> Result<ApprovalView> {
        let args: Value = serde_json::from_str(&row.arguments).unwrap_or(Value::Null);
        let arguments = match &args {
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => "(not given)".to_owned(),
                        other => other.to_string(),
                    };
                    (k.clone(), text)
                })
                .collect(),
            _ => Vec::new(),
        };
        let token_name = tokens::find(conn, &row.token_id)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        let (owner_name, owner_email) = users::name_and_email(conn, &row.owner_id).await?.unwrap_or_default();
        let team_name = teams::find(conn, &row.team_id)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        let decided_by = match &row.decided_by {
            Some(id) => users::name_and_email(conn, id)
                .await?
                .map(|(name, email)| format!("{name} <{email}>")),
            None => None,
        };
        let (project_name, effect) = if effect {
            describe(conn, &row.team_id, &row.operation, &args).await?
        } else {
            let name = match &row.project_id {
                Some(p) => project_name(conn, &row.team_id, p).await?,
                None => None,
            };
            (name, Vec::new())
        };
        let is_owner = row.owner_id == user_id;
        let rule: ApproverRule = row.approver_rule.parse().unwrap_or(ApproverRule::OwnerOrAdmin);
        let needs = catalog::find(&row.operation).and_then(|op| op.spec().ability);
        let pending = row.status == Status::Pending.as_str();
        let approvable = may_approve(rule, is_owner, role, needs);
        Ok(ApprovalView {
            id: row.id.clone(),
            status: row.status.clone(),
            operation: row.operation.clone(),
            summary: catalog::find(&row.operation)
                .map(|op| op.spec().summary.to_owned())
                .unwrap_or_default(),
            arguments,
            hold: row.hold.clone(),
            surface: row.surface.clone(),
            token_id: row.token_id.clone(),
            token_name,
            owner_id: row.owner_id.clone(),
            owner_name,
            owner_email,
            client: row.client_name.clone().or_else(|| row.oauth_client_id.clone()),
            team_name,
            project_name,
            effect,
            requested_at: rfc3339(row.requested_at),
            expires_at: rfc3339(row.expires_at),
            decided_at: row.decided_at.map(rfc3339),
            decided_by,
            used_at: row.used_at.map(rfc3339),
            voided_reason: row.voided_reason.clone(),
            url: approval_url(&self.config.public_url, &row.id),
            may_approve: pending && approvable.is_ok(),
            may_deny: pending && may_deny(is_owner, role),
            why_not: pending.then(|| approvable.err().map(str::to_owned)).flatten(),
            resource: resource(row, &self.config.public_url),
        })
    }
}

/// A request the person may see: one of their team's, and for someone neither owner nor admin,
/// one of their own tokens'. Anything else does not exist.
async fn visible(conn: &mut Conn, id: &str, team_id: &str, user_id: &str, role: Role) -> Result<ApprovalRow> {
    let id = parse_id(id)?;
    let row = store::find_request(conn, &id).await?.ok_or(Error::NotFound)?;
    let sees = row.team_id == team_id && (matches!(role, Role::Owner | Role::Admin) || row.owner_id == user_id);
    if sees { Ok(row) } else { Err(Error::NotFound) }
}

async fn project_name(conn: &mut Conn, team_id: &str, project_id: &str) -> Result<Option<String>> {
    let Ok(id) = Id::parse(project_id) else { return Ok(None) };
    Ok(find_scoped::<Project>(conn, team_id, &id).await?.map(|p| p.name))
}

/// What a held call would do, read from the data as it stands: the project it acts in, and one
/// sentence per effect (for `kick_member`: the member's name and handle and what they lose).
async fn describe(
    conn: &mut Conn,
    team_id: &str,
    operation: &str,
    args: &Value,
) -> Result<(Option<String>, Vec<String>)> {
    let arg = |name: &str| args.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let reason = args
        .get("reason")
        .and_then(Value::as_str)
        .map(|r| format!(" Reason given: “{r}”."));
    match operation {
        "kick_member" | "ban_member" => {
            let Some(m) = load::<Member>(conn, team_id, &arg("member_id")).await? else {
                return Ok((None, vec!["The member named no longer exists in this team.".into()]));
            };
            let project = project_name(conn, team_id, &m.project_id).await?;
            let handle = m.username.as_deref().map(|u| format!(" (@{u})")).unwrap_or_default();
            let who = format!("{}{handle}, Telegram {}", m.display_name, m.telegram_user_id);
            let live: Vec<Subscription> = subscriptions::of_member(conn, &m.id)
                .await?
                .into_iter()
                .filter(|s| s.canceled_at.is_none() && s.status.as_str() != "canceled")
                .collect();
            let mut plans = Vec::new();
            for s in &live {
                let plan = load::<Plan>(conn, team_id, &s.plan_id).await?.map(|p| p.name);
                plans.push(plan.unwrap_or_else(|| s.plan_id.to_string()));
            }
            let mut effect = vec![if operation == "ban_member" {
                format!(
                    "Bans {who}: their status becomes banned (it is now {}).",
                    m.status.as_str()
                )
            } else {
                format!(
                    "Removes {who}: their status becomes churned (it is now {}).",
                    m.status.as_str()
                )
            }];
            if live.is_empty() {
                effect.push("They have no live subscription to lose.".into());
            } else {
                effect.push(format!(
                    "They lose {} live subscription(s), cancelled now: {}; and with them their access to the project's resources.",
                    live.len(),
                    plans.join(", ")
                ));
            }
            effect.extend(reason);
            Ok((project, effect))
        }
        "cancel_subscription" => {
            let Some(s) = load::<Subscription>(conn, team_id, &arg("subscription_id")).await? else {
                return Ok((
                    None,
                    vec!["The subscription named no longer exists in this team.".into()],
                ));
            };
            let project = project_name(conn, team_id, &s.project_id).await?;
            let member = load::<Member>(conn, team_id, &s.member_id).await?;
            let plan = load::<Plan>(conn, team_id, &s.plan_id).await?.map(|p| p.name);
            let who = member
                .map(|m| {
                    let handle = m.username.map(|u| format!(" (@{u})")).unwrap_or_default();
                    format!("{}{handle}", m.display_name)
                })
                .unwrap_or_else(|| "a member".into());
            Ok((
                project,
                vec![format!(
                    "Cancels {who}'s subscription to {} now (it is {}); they lose what the plan gives.",
                    plan.unwrap_or_else(|| "a plan".into()),
                    s.status.as_str()
                )],
            ))
        }
        "archive_project" => {
            let Some(p) = load::<Project>(conn, team_id, &arg("project_id")).await? else {
                return Ok((None, vec!["The project named no longer exists in this team.".into()]));
            };
            Ok((
                Some(p.name.clone()),
                vec![format!(
                    "Archives the project {} (/{}): it stops taking new members and its portal closes.",
                    p.name, p.handle
                )],
            ))
        }
        "bulk_generate_access_codes" => {
            let Some(plan) = load::<Plan>(conn, team_id, &arg("plan_id")).await? else {
                return Ok((None, vec!["The plan named no longer exists in this team.".into()]));
            };
            let project = project_name(conn, team_id, &plan.project_id).await?;
            let quantity = args.get("quantity").and_then(Value::as_i64).unwrap_or_default();
            let expiry = match args.get("expires_in_days").and_then(Value::as_i64) {
                Some(d) => format!(", each valid for {d} days"),
                None => ", valid until used".into(),
            };
            Ok((
                project,
                vec![format!(
                    "Creates {quantity} access codes for the plan {}{expiry}: each one grants the plan to whoever redeems it.",
                    plan.name
                )],
            ))
        }
        _ => {
            let project = match args.get("project_id").and_then(Value::as_str) {
                Some(p) => project_name(conn, team_id, p).await?,
                None => None,
            };
            Ok((project, vec![format!("Runs {operation} with the arguments above.")]))
        }
    }
}

/// A row of the team by an id given as text; a malformed id is no row.
async fn load<R: crate::store::Scoped>(conn: &mut Conn, team_id: &str, id: &str) -> Result<Option<R>> {
    let Ok(id) = Id::<R::Kind>::parse(id) else {
        return Ok(None);
    };
    Ok(find_scoped::<R>(conn, team_id, &id).await?)
}
