//! Token verification (SPEC §2): parse → look up by ID → constant-time digest compare → revoked,
//! expired, environment, membership. One answer for every failure; the reason goes to the audit.

use serde_json::json;

use super::Service;
use super::principal::{Principal, TokenGrant};
use crate::domain::ability::Ability;
use crate::domain::audit::{ActorKind, AuditDraft, Outcome, RequestCtx};
use crate::domain::error::ErrorCode;
use crate::domain::role::Role;
use crate::domain::time::MINUTE_MS;
use crate::domain::token::{TokenDigest, TokenSecret};
use crate::store::now_ms;
use crate::store::tokens::{self, AuthRow, TokenRow};

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
        }
    }
}

impl Service {
    /// Resolves the bearer token of one request. Called on every request: nothing is cached,
    /// so a revocation or a role change is seen by the next request on every replica.
    pub async fn authenticate(
        &self,
        bearer: Option<&str>,
        actor: ActorKind,
        ctx: &RequestCtx,
    ) -> Result<Principal, AuthFailure> {
        let raw = bearer.ok_or(AuthFailure::Missing)?;
        let token = TokenSecret::parse(raw.trim()).map_err(|_| AuthFailure::Malformed)?;
        let row = self.load_for_auth(token.id().as_str()).await.map_err(|e| {
            tracing::error!(error = ?e, "token lookup failed");
            AuthFailure::UnknownId
        })?;
        // Compare against a decoy when the ID is unknown, so both paths do the same work.
        let stored = row
            .as_ref()
            .map(|r| TokenDigest::from_stored(r.token.digest.clone()))
            .unwrap_or_else(TokenDigest::decoy);
        let matches = token.digest().ct_eq(&stored);
        let Some(row) = row else {
            return Err(AuthFailure::UnknownId);
        };
        let now = now_ms();
        let failure = if !matches {
            Some(AuthFailure::SecretMismatch)
        } else if row.token.revoked_at.is_some() {
            Some(AuthFailure::Revoked)
        } else if row.token.expires_at.is_some_and(|e| e <= now) {
            Some(AuthFailure::Expired)
        } else if row.token.env != self.config.env.as_str() {
            Some(AuthFailure::WrongEnvironment)
        } else if row.role.is_none() {
            Some(AuthFailure::OwnerNotInTeam)
        } else {
            None
        };
        if let Some(reason) = failure {
            self.record_auth_failure(&row.token, reason, actor, ctx.clone());
            return Err(reason);
        }
        let role: Role = row.role.as_deref().unwrap_or("viewer").parse().unwrap_or(Role::Viewer);
        self.touch_last_used(&row.token, ctx.ip.as_deref(), now).await;
        let grant = TokenGrant {
            abilities: row
                .token
                .ability_names()
                .iter()
                .filter_map(|a| a.parse::<Ability>().ok())
                .collect(),
            project_ids: row.token.project_id_list(),
            id: row.token.id,
            name: row.token.name,
        };
        Ok(Principal {
            team_id: row.token.team_id,
            user_id: row.token.user_id,
            user_email: row.email,
            user_name: row.user_name,
            role,
            actor,
            token: Some(grant),
        })
    }

    async fn load_for_auth(&self, id: &str) -> sqlx::Result<Option<AuthRow>> {
        let mut conn = self.db.pool().acquire().await?;
        tokens::find_for_auth(&mut conn, id).await
    }

    /// `last_used_at` to the minute: at most one write per token per minute, and the condition
    /// makes concurrent replicas agree on which one writes.
    async fn touch_last_used(&self, token: &TokenRow, ip: Option<&str>, now: i64) {
        if token.last_used_at.is_some_and(|t| now - t < MINUTE_MS) {
            return;
        }
        // Through the writer queue, like every other write, so SQLite never busy-waits for it.
        let res = async {
            let mut tx = self.db.begin_write().await?;
            tokens::touch_last_used(&mut tx, &token.id, ip, now, MINUTE_MS).await?;
            tx.commit().await
        }
        .await;
        if let Err(e) = res {
            tracing::warn!(error = ?e, token_id = %token.id, "could not record last use");
        }
    }

    /// `auth.failed`, written off the request path so a known ID costs the caller no more time
    /// than an unknown one.
    fn record_auth_failure(&self, token: &TokenRow, reason: AuthFailure, actor: ActorKind, ctx: RequestCtx) {
        let entry = AuditDraft {
            team_id: Some(token.team_id.clone()),
            project_id: None,
            actor_kind: actor,
            causer_id: Some(token.user_id.clone()),
            token_id: Some(token.id.clone()),
            event: "auth.failed".to_owned(),
            subject_type: Some("token".to_owned()),
            subject_id: Some(token.id.clone()),
            properties: json!({ "reason": reason.as_str() }),
            outcome: Outcome::Denied,
            error_code: Some(ErrorCode::AuthenticationRequired.as_str()),
            ctx,
        };
        let service = self.clone();
        tokio::spawn(async move {
            if let Err(e) = service.append_alone(entry).await {
                tracing::error!(error = ?e, "could not record a failed authentication");
            }
        });
    }
}
