//! Token verification (SPEC §2): parse → look up by ID → constant-time digest compare → revoked,
//! expired, environment, membership. One answer for every failure; the reason goes to the audit.
//!
//! A known ID and an unknown one take the same path: the same lookup returning one token's row
//! (a decoy token's for an unknown ID), a digest compare, a refusal entry built, and the same
//! hand-off to the queue that writes `auth.failed` entries off the request path (an unknown ID's
//! entry is dropped there: it hands off nothing to write).

use serde_json::json;
use tokio::sync::mpsc;

use super::caller::{Caller, Member, Surface, TokenGrant, Who};
use super::service::Service;
use crate::domain::ability::Ability;
use crate::domain::allow_list::AllowList;
use crate::domain::audit::{ActorKind, AuditDraft, OAuthRef, Outcome, RequestCtx};
use crate::domain::error::{Error, ErrorCode};
use crate::domain::role::Role;
use crate::domain::time::MINUTE_MS;
use crate::domain::token::{TokenDigest, TokenSecret};
use crate::domain::token_policy::{PastedTokens, TokenPolicy, Violation};
use crate::store::tokens::{self, AuthRow, TokenRow};
use crate::store::{Db, audit, now_ms};

/// How many `auth.failed` entries may wait for the writer; past that they are dropped (the
/// per-IP failure limit keeps honest deployments far below it).
pub const AUTH_FAILURE_QUEUE: usize = 4096;

/// Why a token was refused. Only the audit entry ever sees this.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    UnknownId,
    SecretMismatch,
    Revoked,
    Expired,
    WrongEnvironment,
    OwnerNotInTeam,
    /// An OAuth access token presented anywhere but `/mcp`, the resource it was issued for.
    WrongResource,
    /// A rotated token whose grace has passed.
    GraceEnded,
    /// Not used for longer than the team's unused rule allows (issue 21).
    Unused,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::UnknownId => "unknown_id",
            AuthFailure::SecretMismatch => "secret_mismatch",
            AuthFailure::Revoked => "revoked",
            AuthFailure::Expired => "expired",
            AuthFailure::WrongEnvironment => "wrong_environment",
            AuthFailure::OwnerNotInTeam => "owner_not_in_team",
            AuthFailure::WrongResource => "wrong_resource",
            AuthFailure::GraceEnded => "grace_ended",
            AuthFailure::Unused => "unused",
        }
    }
}

/// A refused token: the caller is told only `AUTHENTICATION_REQUIRED`. The surface decides
/// whether the refusal is recorded ([`Service::record_refusal`]): not past the failure limit.
#[derive(Debug)]
pub struct Refusal {
    pub reason: AuthFailure,
    /// The `auth.failed` entry, when the token ID exists.
    entry: Option<Box<AuditDraft>>,
}

#[derive(Debug)]
pub enum AuthError {
    Refused(Refusal),
    /// A valid token used from outside its network allowlist: not an authentication failure
    /// (the secret was right), refused with `TOKEN_IP_NOT_ALLOWED` and this entry. The caller
    /// is who it would have been, for the token's own rate limit.
    OutsideAllowList(Box<(Caller, AuditDraft)>),
    /// A valid token the team's token policy refuses here (a pasted token on `/mcp` when the
    /// team allows only OAuth-connected apps): audited, answered `POLICY_VIOLATION`, not an
    /// authentication failure.
    PolicyRefused(Box<(Caller, AuditDraft, Violation)>),
    /// The database failed, or a stored token is corrupt: a 500, never a silent downgrade.
    Internal(Error),
}

impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        AuthError::Internal(e.into())
    }
}

fn refused(reason: AuthFailure) -> AuthError {
    AuthError::Refused(Refusal { reason, entry: None })
}

impl Service {
    /// Resolves the bearer token of one request. Called on every request: nothing is cached,
    /// so a revocation or a role change is seen by the next request on every replica.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        surface: Surface,
        ctx: &RequestCtx,
    ) -> Result<Caller, AuthError> {
        let actor = match surface {
            Surface::Rest => ActorKind::ApiToken,
            Surface::Mcp => ActorKind::Mcp,
        };
        let raw = bearer.ok_or(refused(AuthFailure::Missing))?;
        let token = TokenSecret::parse(raw.trim()).map_err(|_| refused(AuthFailure::Malformed))?;
        let row = self.load_for_auth(token.id().as_str()).await?;
        // The token's row, or a decoy token's when the ID is unknown: both paths decode one row,
        // compare a stored digest and build a refusal entry.
        let known = row.as_ref().is_some_and(|r| r.token.id == token.id().as_str());
        let stored = row
            .as_ref()
            .map(|r| TokenDigest::from_stored(r.token.digest.clone()))
            .unwrap_or_else(TokenDigest::decoy);
        let matches = token.digest().ct_eq(&stored);
        let Some(row) = row else {
            // No token exists yet: there is no known ID to tell apart.
            return Err(refused(AuthFailure::UnknownId));
        };
        let now = now_ms();
        // The team's rules read with the token (issue 21): the unused rule, pasted tokens on MCP.
        let policy = TokenPolicy {
            expire_unused_ms: row.expire_unused_ms,
            unused_since: row.unused_since,
            mcp_pasted_tokens: match row.mcp_pasted_tokens.as_deref() {
                Some("deny") => PastedTokens::Deny,
                _ => PastedTokens::Allow,
            },
            ..TokenPolicy::default()
        };
        let minted = row.oauth_grant_id.is_none();
        let unused = minted
            && policy
                .unused_deadline(row.token.last_used_at.unwrap_or(row.token.created_at))
                .is_some_and(|d| d <= now);
        let failure = if !known {
            Some(AuthFailure::UnknownId)
        } else if !matches {
            Some(AuthFailure::SecretMismatch)
        } else if row.token.revoked_at.is_some() || row.grant_revoked_at.is_some() {
            Some(AuthFailure::Revoked)
        } else if row.token.expires_at.is_some_and(|e| e <= now) {
            Some(AuthFailure::Expired)
        } else if row.token.grace_until.is_some_and(|g| g <= now) {
            Some(AuthFailure::GraceEnded)
        } else if unused {
            Some(AuthFailure::Unused)
        } else if row.token.env != self.config.env.as_str() {
            Some(AuthFailure::WrongEnvironment)
        } else if row.role.is_none() {
            Some(AuthFailure::OwnerNotInTeam)
        } else if row.oauth_grant_id.is_some() && surface != Surface::Mcp {
            Some(AuthFailure::WrongResource)
        } else {
            None
        };
        if let Some(reason) = failure {
            let entry = Box::new(failure_entry(&row, reason, actor, ctx.clone()));
            return Err(AuthError::Refused(Refusal {
                reason,
                // The decoy's entry is dropped: an unknown ID records nothing.
                entry: known.then_some(entry),
            }));
        }
        let corrupt =
            |what: &str| AuthError::Internal(Error::Internal(anyhow::anyhow!("token {}: {what}", row.token.id)));
        let role: Role = row
            .role
            .as_deref()
            .unwrap_or_default()
            .parse()
            .map_err(|_| corrupt("unknown role"))?;
        let project_ids = row
            .token
            .project_id_list()
            .map_err(|_| corrupt("unreadable project scope"))?;
        let allowed = match row.token.allowed_ips.as_deref() {
            Some(stored) => AllowList::from_stored(stored).map_err(|e| corrupt(&e))?,
            None => None,
        };
        let outside = allowed.as_ref().is_some_and(|list| !list.allows(ctx.ip.as_deref()));
        // Only a use that goes on counts as one.
        let pasted_refused = (minted && surface == Surface::Mcp)
            .then(|| policy.pasted_on_mcp())
            .flatten();
        if !outside && pasted_refused.is_none() {
            self.touch_last_used(&row.token, row.oauth_grant_id.as_deref(), ctx.ip.as_deref(), now)
                .await;
        }
        let grant = TokenGrant {
            abilities: row
                .token
                .ability_names()
                .iter()
                .filter_map(|a| a.parse::<Ability>().ok())
                .collect(),
            project_ids,
            id: row.token.id,
            name: row.token.name,
            oauth: oauth_of(&row.oauth_grant_id, &row.oauth_client_id),
            narrowing: None,
            superseded: row.token.grace_until.is_some(),
        };
        let member = Member {
            team_id: row.token.team_id,
            user_id: row.token.user_id,
            user_email: row.email,
            user_name: row.user_name,
            role,
        };
        let caller = Caller {
            who: Who::Token { member, grant, surface },
            ctx: ctx.clone(),
            page_view: None,
        };
        if outside {
            let team = caller.in_team().map_err(AuthError::Internal)?.team_id.to_string();
            let mut entry = caller
                .draft("auth.ip_not_allowed", &team)
                .subject("token", caller.token_id().unwrap_or_default())
                .properties(json!({
                    "ip": ctx.ip,
                    "allowed_ips": allowed.as_ref().map(AllowList::blocks),
                }));
            entry.outcome = Outcome::Denied;
            entry.error_code = Some(ErrorCode::TokenIpNotAllowed.as_str());
            return Err(AuthError::OutsideAllowList(Box::new((caller, entry))));
        }
        if let Some(v) = pasted_refused {
            let team = caller.in_team().map_err(AuthError::Internal)?.team_id.to_string();
            let mut entry = caller
                .draft("auth.policy_refused", &team)
                .subject("token", caller.token_id().unwrap_or_default())
                .properties(json!({"policy": v.policy, "limit": v.limit}));
            entry.outcome = Outcome::Denied;
            entry.error_code = Some(ErrorCode::PolicyViolation.as_str());
            return Err(AuthError::PolicyRefused(Box::new((caller, entry, v))));
        }
        Ok(caller)
    }

    async fn load_for_auth(&self, id: &str) -> sqlx::Result<Option<AuthRow>> {
        let mut conn = self.db.read_pool().acquire().await?;
        let decoy = match self.decoy_token.get() {
            Some(decoy) => Some(decoy.as_str()),
            // Until a token exists (then it is kept: tokens are never deleted).
            None => tokens::any_id(&mut conn)
                .await?
                .map(|found| self.decoy_token.get_or_init(|| found).as_str()),
        };
        tokens::find_for_auth(&mut conn, id, decoy).await
    }

    /// `last_used_at` to the minute: at most one write per token per minute, and the condition
    /// makes concurrent replicas agree on which one writes. An OAuth access token's grant is
    /// touched in the same write (`last_used_at`, and `use_count` counts these recorded uses).
    async fn touch_last_used(&self, token: &TokenRow, grant_id: Option<&str>, ip: Option<&str>, now: i64) {
        if token.last_used_at.is_some_and(|t| now - t < MINUTE_MS) {
            return;
        }
        // Through the writer queue, like every other write, so SQLite never busy-waits for it.
        let res = async {
            let mut tx = self.db.begin_write().await?;
            let touched = tokens::touch_last_used(&mut tx, &token.id, ip, now, MINUTE_MS).await?;
            if let (true, Some(grant_id)) = (touched, grant_id) {
                crate::store::oauth_grants::touch_grant(&mut tx, grant_id, now).await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = res {
            tracing::warn!(error = ?e, token_id = %token.id, "could not record last use");
        }
    }

    /// Hands a refusal to the `auth.failed` writer. Every refusal is handed off the same way,
    /// whether or not it has an entry to write, so recording costs a known ID no more time.
    pub fn record_refusal(&self, refusal: Refusal) {
        self.metrics.auth_failure(refusal.reason.as_str());
        if self.auth_failures.try_send(refusal.entry.map(|e| *e)).is_err() {
            tracing::warn!("auth.failed queue full; an entry was dropped");
        }
    }
}

/// How long the writer gathers `auth.failed` entries before it writes them: the write then
/// lands at a moment unrelated to the refusal that queued it, so it cannot be timed against it.
const GATHER: std::time::Duration = std::time::Duration::from_millis(50);

/// Writes queued `auth.failed` entries in batches, one transaction each, until every sender is
/// gone.
pub async fn write_auth_failures(db: Db, mut queue: mpsc::Receiver<Option<AuditDraft>>) {
    while let Some(first) = queue.recv().await {
        tokio::time::sleep(GATHER).await;
        let mut batch: Vec<AuditDraft> = first.into_iter().collect();
        while let Ok(next) = queue.try_recv() {
            batch.extend(next);
        }
        if batch.is_empty() {
            continue;
        }
        let written = async {
            let mut tx = db.begin_write().await?;
            let head = audit::lock_head(&mut tx).await?;
            audit::append_after(&mut tx, head, batch).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = ?e, "could not record failed authentications");
        }
    }
}

/// `auth.failed`, with the precise reason, for a token ID that exists.
fn failure_entry(row: &AuthRow, reason: AuthFailure, actor: ActorKind, ctx: RequestCtx) -> AuditDraft {
    let token = &row.token;
    AuditDraft {
        team_id: Some(token.team_id.to_string()),
        project_id: None,
        actor_kind: actor,
        causer_id: Some(token.user_id.to_string()),
        token_id: Some(token.id.clone()),
        event: "auth.failed".to_owned(),
        subject_type: Some("token".to_owned()),
        subject_id: Some(token.id.clone()),
        properties: json!({ "reason": reason.as_str() }),
        outcome: Outcome::Denied,
        error_code: Some(ErrorCode::AuthenticationRequired.as_str()),
        ctx,
        oauth: oauth_of(&row.oauth_grant_id, &row.oauth_client_id),
        marks: serde_json::Map::new(),
        write: false,
    }
}

/// The grant and client of an OAuth access token, as its row gives them.
fn oauth_of(grant_id: &Option<String>, client_id: &Option<String>) -> Option<OAuthRef> {
    match (grant_id, client_id) {
        (Some(grant_id), Some(client_id)) => Some(OAuthRef {
            grant_id: grant_id.clone(),
            client_id: client_id.clone(),
        }),
        _ => None,
    }
}
