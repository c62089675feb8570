//! The approval gate (issue 20): before a token's write runs, inside its batch's transaction
//! (under the chain's lock, so every replica sees the same budgets and approvals), the team's
//! policy and the token's budget say whether it needs a person's approval. When it does, the
//! call runs only under a granted approval of the same token for the same call (operation and
//! canonical arguments) under the same policy version, consumed in this transaction; otherwise
//! it is held (a new request, or the pending one again) or refused with why.
//!
//! A signed-in person is never held: they are the person. The server itself calls no operation.

use serde_json::{Value, json};

use super::caller::{Caller, Surface, Who};
use super::op::Spec;
use super::service::ServiceConfig;
use crate::domain::approval::{self, ApprovalPolicy, Hold, Invalid, Status};
use crate::domain::audit::AuditDraft;
use crate::domain::error::{ApprovalNotice, Error, Result};
use crate::domain::ids::new_id;
use crate::domain::time::{DAY_MS, rfc3339};
use crate::store::approvals::{self as store, ApprovalRow};
use crate::store::{Conn, now_ms};

/// A team's policy: its stored row, or the defaults of a new team.
pub async fn policy_in(conn: &mut Conn, team_id: &str) -> Result<ApprovalPolicy> {
    match store::find_policy(conn, team_id).await? {
        Some((rules, approver, version)) => ApprovalPolicy::from_stored(&rules, &approver, version)
            .map_err(|e| Error::Internal(anyhow::anyhow!("team {team_id}: {e}"))),
        None => Ok(ApprovalPolicy::default()),
    }
}

/// The page where a person decides on a request.
pub fn approval_url(public_url: &str, id: &str) -> String {
    format!("{}/settings/approvals/{id}", public_url.trim_end_matches('/'))
}

/// What the gate lets through.
#[derive(Debug, Default)]
pub(super) struct Pass {
    /// The call runs under this approval (consumed), granted by this person.
    pub approved: Option<(String, String)>,
    /// The token has a budget of this operation: a success counts one use.
    pub budgeted: bool,
}

/// What the gate stops: the answer, the entry that replaces the call's own (a new request's
/// `approval.requested`), and entries recorded after it (`approval.expired`). What the gate
/// wrote (a new request, a request closed) commits even though the call did not run.
#[derive(Debug)]
pub(super) struct Stop {
    pub error: Error,
    pub entry: Option<AuditDraft>,
    pub also: Vec<AuditDraft>,
}

impl From<Error> for Stop {
    fn from(error: Error) -> Self {
        Stop {
            error,
            entry: None,
            also: Vec::new(),
        }
    }
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        Error::from(e).into()
    }
}

/// The gate's answer: run (perhaps under a consumed approval), or hold.
#[derive(Debug)]
pub(super) enum Gate {
    Run(Pass),
    Hold(Box<Held>),
}

/// A call the gate holds, before anything is written: the call path first runs its body and
/// rolls it back (a call that would fail — an unknown id, another team's row, bad input — gets
/// that answer and leaves no request), then [`Held::record`] writes the request or its refusal.
#[derive(Debug)]
pub(super) struct Held {
    kind: HeldKind,
    surface: approval::Surface,
    now: i64,
}

#[derive(Debug)]
enum HeldKind {
    /// A new request, and its `approval.requested` entry.
    New(Box<(ApprovalRow, AuditDraft)>),
    /// The request of this same call, still pending.
    Pending(Box<ApprovalRow>),
    /// The request of this same call cannot be used: why, and whether it changes status.
    Invalid(Box<ApprovalRow>, Invalid, Option<Status>),
}

/// The gate of one call; `entry` is the call's entry, its `properties` the typed arguments.
/// Reads only, except that a granted approval is consumed here (in the call's savepoint, so a
/// body that then fails gives it back).
pub(super) async fn gate(
    conn: &mut Conn,
    p: &Caller,
    spec: &Spec,
    entry: &AuditDraft,
    config: &ServiceConfig,
) -> Result<Gate> {
    let Who::Token { member, grant, surface } = &p.who else {
        return Ok(Gate::Run(Pass::default()));
    };
    if !spec.is_write() {
        return Ok(Gate::Run(Pass::default()));
    }
    let surface = match surface {
        Surface::Mcp => approval::Surface::Mcp,
        Surface::Rest => approval::Surface::Rest,
    };
    let now = now_ms();
    let policy = policy_in(conn, member.team_id.as_str()).await?;
    let budget = store::budget(conn, &grant.id, spec.name).await?;
    let spent = match budget {
        Some(max) => store::uses_since(conn, &grant.id, spec.name, now - DAY_MS).await? >= max,
        None => false,
    };
    let hold = if policy.needs_approval(spec.name, surface) {
        Hold::Policy
    } else if spent {
        Hold::Budget
    } else {
        return Ok(Gate::Run(Pass {
            approved: None,
            budgeted: budget.is_some(),
        }));
    };
    let arguments = approval::canonical(&entry.properties);
    let digest = approval::digest(&grant.id, spec.name, &arguments, policy.version);
    let held = |kind| Ok(Gate::Hold(Box::new(Held { kind, surface, now })));
    if let Some(row) = store::latest_open(conn, &grant.id, spec.name, &arguments).await? {
        let status: Status = row
            .status
            .parse()
            .map_err(|e: String| Error::Internal(anyhow::anyhow!("approval {}: {e}", row.id)))?;
        let live = row.expires_at > now;
        let (why, moves) = if row.policy_version != policy.version {
            (Invalid::PolicyChanged, Some(Status::Voided))
        } else if row.digest != digest {
            (Invalid::OtherArguments, Some(Status::Voided))
        } else {
            match (status, live) {
                (Status::Pending, true) => return held(HeldKind::Pending(Box::new(row))),
                (Status::Granted, true) => {
                    if store::consume(conn, &row.id, now, p.ctx.request_id.as_deref()).await? {
                        return Ok(Gate::Run(Pass {
                            approved: Some((row.id.clone(), row.decided_by.clone().unwrap_or_default())),
                            budgeted: budget.is_some(),
                        }));
                    }
                    (Invalid::Used, None)
                }
                (Status::Pending | Status::Granted, false) => (Invalid::Expired, Some(Status::Expired)),
                (Status::Expired, _) => (Invalid::Expired, None),
                (Status::Denied, _) => (Invalid::Denied, None),
                (Status::Used, _) => (Invalid::Used, None),
                (Status::Voided, _) if row.voided_reason.as_deref() == Some("policy_changed") => {
                    (Invalid::PolicyChanged, None)
                }
                (Status::Voided, _) => (Invalid::CallerVoided, None),
            }
        };
        return held(HeldKind::Invalid(Box::new(row), why, moves));
    }
    let row = ApprovalRow {
        id: new_id(),
        team_id: member.team_id.to_string(),
        project_id: entry
            .properties
            .get("project_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        token_id: grant.id.clone(),
        owner_id: member.user_id.to_string(),
        oauth_grant_id: grant.oauth.as_ref().map(|o| o.grant_id.clone()),
        oauth_client_id: grant.oauth.as_ref().map(|o| o.client_id.clone()),
        client_name: p.ctx.client.clone(),
        surface: surface_name(surface).to_owned(),
        operation: spec.name.to_owned(),
        arguments,
        digest,
        policy_version: policy.version,
        hold: hold.as_str().to_owned(),
        approver_rule: policy.approver.as_str().to_owned(),
        status: Status::Pending.as_str().to_owned(),
        requested_at: now,
        expires_at: now.saturating_add(i64::try_from(config.approval_ttl.as_millis()).unwrap_or(i64::MAX)),
        decided_at: None,
        decided_by: None,
        used_at: None,
        used_request_id: None,
        voided_reason: None,
        reported_at: None,
        preview: None,
    };
    let mut requested = p
        .draft("approval.requested", &row.team_id)
        .subject("approval", row.id.as_str());
    requested.project_id = row.project_id.clone();
    requested.properties = json!({
        "operation": spec.name,
        "arguments": entry.properties,
        "hold": hold.as_str(),
        "policy_version": policy.version,
        "expires_at": rfc3339(row.expires_at),
    });
    held(HeldKind::New(Box::new((row, requested))))
}

fn surface_name(surface: approval::Surface) -> &'static str {
    match surface {
        approval::Surface::Mcp => "mcp",
        approval::Surface::Rest => "rest",
    }
}

impl Held {
    /// Records what holding the call means, once its body has shown it would run: a new request
    /// (with `preview`, the changes its body made before they were rolled back), or the refusal
    /// of an unusable one. The answer, and the entries, for the call path.
    pub(super) async fn record(
        self,
        conn: &mut Conn,
        preview: Option<Value>,
        project_id: Option<String>,
        config: &ServiceConfig,
    ) -> Stop {
        match self.record_inner(conn, preview, project_id, config).await {
            Ok(stop) | Err(stop) => stop,
        }
    }

    async fn record_inner(
        self,
        conn: &mut Conn,
        preview: Option<Value>,
        project_id: Option<String>,
        config: &ServiceConfig,
    ) -> std::result::Result<Stop, Stop> {
        let relay = |url: &str| match self.surface {
            approval::Surface::Mcp => {
                format!("A person must approve this on {url}; then call the same tool again with the same arguments.")
            }
            approval::Surface::Rest => format!(
                "A person must approve this on {url}; then send the same request again with the same arguments."
            ),
        };
        let required = |row: &ApprovalRow| {
            let url = approval_url(&config.public_url, &row.id);
            Error::ApprovalRequired(Box::new(ApprovalNotice {
                approval_id: row.id.clone(),
                message: relay(&url),
                url,
                reason: None,
                resource: Some(resource(row, &config.public_url)),
            }))
        };
        match self.kind {
            HeldKind::New(new) => {
                let (mut row, mut requested) = *new;
                row.preview = preview.as_ref().map(Value::to_string);
                if row.project_id.is_none() {
                    row.project_id = project_id;
                }
                requested.project_id = row.project_id.clone();
                if let Some(changes) = preview {
                    requested.properties["preview"] = changes;
                }
                store::insert_request(conn, &row).await?;
                Ok(Stop {
                    error: required(&row),
                    entry: Some(requested),
                    also: Vec::new(),
                })
            }
            HeldKind::Pending(row) => Ok(Stop::from(required(&row))),
            HeldKind::Invalid(row, why, moves) => {
                let mut also = Vec::new();
                if moves == Some(Status::Expired) {
                    also.push(expired_entry(&row));
                }
                let moved = moves.map(|s| {
                    let reason = (s == Status::Voided).then_some(Invalid::PolicyChanged.as_str());
                    (s.as_str(), reason)
                });
                store::close(conn, &row.id, moved, self.now).await?;
                let message = format!(
                    "{} It did not run; make the same call again to request a new approval.",
                    why.explain()
                );
                Ok(Stop {
                    error: Error::ApprovalInvalid(Box::new(ApprovalNotice {
                        approval_id: row.id.clone(),
                        url: approval_url(&config.public_url, &row.id),
                        message,
                        reason: Some(why.as_str()),
                        resource: None,
                    })),
                    entry: None,
                    also,
                })
            }
        }
    }
}

/// After a budgeted call succeeded: one use more in the token's window.
pub(super) async fn count_use(conn: &mut Conn, p: &Caller, spec: &Spec) -> Result<()> {
    if let Some(grant) = p.grant() {
        store::add_use(conn, &grant.id, spec.name, now_ms(), p.ctx.request_id.as_deref()).await?;
    }
    Ok(())
}

/// The `approval.expired` entry of a request that expired, by the server.
pub fn expired_entry(row: &ApprovalRow) -> AuditDraft {
    let mut e = AuditDraft::system("approval.expired", Some(row.team_id.clone())).subject("approval", row.id.as_str());
    e.token_id = Some(row.token_id.clone());
    e.project_id = row.project_id.clone();
    e.properties = json!({
        "operation": row.operation,
        "was": row.status,
        "expires_at": rfc3339(row.expires_at),
    });
    e
}

/// The approval resource: what REST answers as `data` with `202`, and what the dashboard reads.
pub fn resource(row: &ApprovalRow, public_url: &str) -> Value {
    let arguments: Value = serde_json::from_str(&row.arguments).unwrap_or(Value::Null);
    json!({
        "id": row.id,
        "status": row.status,
        "operation": row.operation,
        "arguments": arguments,
        "hold": row.hold,
        "surface": row.surface,
        "token_id": row.token_id,
        "requested_at": rfc3339(row.requested_at),
        "expires_at": rfc3339(row.expires_at),
        "url": approval_url(public_url, &row.id),
        "preview": row.preview.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()),
    })
}

/// Voids the pending and granted requests a revocation, a removal or a lowered role makes
/// unusable; their `approval.voided` entries, for the change's own transaction to record.
pub async fn void_approvals(conn: &mut Conn, which: store::Voids<'_>, reason: &str) -> Result<Vec<AuditDraft>> {
    let mut entries = Vec::new();
    for row in store::void(conn, which, reason).await? {
        let mut e =
            AuditDraft::system("approval.voided", Some(row.team_id.clone())).subject("approval", row.id.as_str());
        e.token_id = Some(row.token_id.clone());
        e.project_id = row.project_id.clone();
        e.properties = json!({"operation": row.operation, "reason": reason, "was": row.status});
        entries.push(e);
    }
    Ok(entries)
}
