//! The token endpoint's operations (issue 19 item 4) and RFC 7009 revocation: a code for an
//! access token (an ordinary `mpt_` row naming its grant, with an expiry) and a refresh token
//! (`mprt_`), a refresh token for the next pair (rotation with a grace), and the reuse of a code
//! or of a refresh token past its grace, which revokes the whole grant. Entries:
//! `oauth.token_issued`, `oauth.token_refreshed`, `oauth.code_reused`,
//! `oauth.refresh_reuse_detected`, `oauth.grant_revoked`, `token.revoked`. No code, verifier or
//! token is in any of them — only IDs.

use serde_json::json;

use crate::domain::ability::Ability;
use crate::domain::audit::{ActorKind, AuditDraft, OAuthRef, Outcome, RequestCtx};
use crate::domain::error::{Error, Result};
use crate::domain::ids::{TeamId, UserId};
use crate::domain::oauth_flow::{REFRESH_TTL_MS, resource_of, scope_abilities, scope_of, verifier_matches};
use crate::domain::refresh_token::{AnyToken, RefreshSecret};
use crate::domain::token::{TokenDigest, TokenSecret};
use crate::service::Service;
use crate::service::core::audited::Audited;
use crate::store::now_ms;
use crate::store::oauth_grants::{self as store, GrantRow, RefreshRow};
use crate::store::tokens::{self, TokenRow};

/// The form of `POST /token`, as sent (every field optional: what is missing is refused here).
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub client_id: Option<String>,
    pub code_verifier: Option<String>,
    pub resource: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// An RFC 6749 §5.2 refusal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenError {
    pub error: &'static str,
    pub description: &'static str,
}

impl TokenError {
    fn new(error: &'static str, description: &'static str) -> Self {
        TokenError { error, description }
    }

    fn grant(description: &'static str) -> Self {
        TokenError::new("invalid_grant", description)
    }

    /// `invalid_client` is a 401 (RFC 6749 §5.2); the rest are 400s.
    pub fn status(&self) -> u16 {
        if self.error == "invalid_client" { 401 } else { 400 }
    }
}

/// A pair as the token response shows it, once.
#[derive(Debug)]
pub struct Issued {
    pub access_token: TokenSecret,
    pub expires_in: u64,
    pub refresh_token: RefreshSecret,
    pub scope: String,
}

type Answer = std::result::Result<Issued, TokenError>;

/// An entry of the token endpoint: made by the grant's client for its person, in the grant's
/// team, naming the grant.
fn client_entry(event: &str, grant: &GrantRow, ctx: &RequestCtx) -> AuditDraft {
    let mut d = AuditDraft::system(event, Some(grant.team_id.clone())).subject("oauth_grant", &grant.id);
    d.actor_kind = ActorKind::Mcp;
    d.causer_id = Some(grant.user_id.clone());
    d.oauth = Some(OAuthRef {
        grant_id: grant.id.clone(),
        client_id: grant.client_id.clone(),
    });
    d.ctx = ctx.clone();
    d
}

impl Service {
    /// `POST /token`. A refusal is `Ok(Err(…))`; a reuse's revocation has committed by then.
    pub async fn token(&self, req: TokenRequest, ctx: &RequestCtx) -> Result<Answer> {
        match req.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(req, ctx).await,
            Some("refresh_token") => self.refresh(req, ctx).await,
            None => Ok(Err(TokenError::new("invalid_request", "grant_type is required"))),
            Some(_) => Ok(Err(TokenError::new(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            ))),
        }
    }

    async fn exchange_code(&self, req: TokenRequest, ctx: &RequestCtx) -> Result<Answer> {
        let (Some(code), Some(client_id), Some(verifier), Some(redirect_uri)) = (
            req.code.as_deref(),
            req.client_id.as_deref(),
            req.code_verifier.as_deref(),
            req.redirect_uri.as_deref(),
        ) else {
            return Ok(Err(TokenError::new(
                "invalid_request",
                "code, client_id, code_verifier and redirect_uri are required",
            )));
        };
        if resource_of(&self.config.public_url, req.resource.as_deref()).is_none() {
            return Ok(Err(TokenError::new(
                "invalid_target",
                "resource must be this server's /mcp endpoint",
            )));
        }
        let now = now_ms();
        let mut w = self.audited().await?;
        let code_digest = TokenDigest::of(code).as_str().to_owned();
        let Some(found) = store::find_code(w.conn(), &code_digest).await? else {
            return Ok(Err(TokenError::grant("the code is unknown")));
        };
        let grant = store::find_grant(w.conn(), &found.grant_id)
            .await?
            .ok_or(Error::NotFound)?;
        if found.used_at.is_some() {
            // A code used twice was intercepted, or its first answer was: what it gave dies.
            w.record(client_entry("oauth.code_reused", &grant, ctx).properties(json!({"revoked": "grant"})));
            self.revoke_grant_in(&mut w, &grant, "code_reused", ctx).await?;
            w.commit().await?;
            return Ok(Err(TokenError::grant(
                "the code was already used; what it gave is revoked",
            )));
        }
        if found.expires_at <= now {
            return Ok(Err(TokenError::grant("the code has expired")));
        }
        if found.client_id != client_id {
            return Ok(Err(TokenError::grant("the code was issued to another client")));
        }
        if found.redirect_uri != redirect_uri {
            return Ok(Err(TokenError::grant(
                "redirect_uri is not the one the code was issued for",
            )));
        }
        if !verifier_matches(verifier, &found.code_challenge) {
            return Ok(Err(TokenError::grant(
                "code_verifier does not match the code_challenge",
            )));
        }
        if let Some(refused) = self.grant_unusable(&mut w, &grant).await? {
            return Ok(Err(refused));
        }
        let abilities = grant_abilities(&grant);
        let issued = self.issue_pair(&mut w, &grant, &abilities, None).await?;
        if !store::use_code(
            w.conn(),
            &code_digest,
            now,
            issued.access_token.id().as_str(),
            issued.refresh_token.id().as_str(),
        )
        .await?
        {
            return Ok(Err(TokenError::grant("the code was already used")));
        }
        w.record(client_entry("oauth.token_issued", &grant, ctx).properties(json!({
            "access_token_id": issued.access_token.id().as_str(),
            "refresh_token_id": issued.refresh_token.id().as_str(),
            "scope": issued.scope, "expires_in": issued.expires_in,
        })));
        w.commit().await?;
        Ok(Ok(issued))
    }

    async fn refresh(&self, req: TokenRequest, ctx: &RequestCtx) -> Result<Answer> {
        let (Some(presented), Some(client_id)) = (req.refresh_token.as_deref(), req.client_id.as_deref()) else {
            return Ok(Err(TokenError::new(
                "invalid_request",
                "refresh_token and client_id are required",
            )));
        };
        if resource_of(&self.config.public_url, req.resource.as_deref()).is_none() {
            return Ok(Err(TokenError::new(
                "invalid_target",
                "resource must be this server's /mcp endpoint",
            )));
        }
        let Ok(secret) = RefreshSecret::parse(presented.trim()) else {
            return Ok(Err(TokenError::grant("the refresh token is not valid")));
        };
        let now = now_ms();
        let mut w = self.audited().await?;
        let Some(row) = self.held_refresh(&mut w, &secret).await? else {
            return Ok(Err(TokenError::grant("the refresh token is not valid")));
        };
        let grant = store::find_grant(w.conn(), &row.grant_id)
            .await?
            .ok_or(Error::NotFound)?;
        if grant.client_id != client_id {
            return Ok(Err(TokenError::grant("the refresh token was issued to another client")));
        }
        if row.revoked_at.is_some() || grant.revoked_at.is_some() {
            return Ok(Err(TokenError::grant("the refresh token is revoked")));
        }
        if row.expires_at.is_some_and(|e| e <= now) || row.env != self.config.env.as_str() {
            return Ok(Err(TokenError::grant("the refresh token has expired")));
        }
        if row.replaced_by.is_some() && row.grace_until.is_none_or(|g| g < now) {
            // Used again after its successor's grace: the token leaked, or its successor did.
            w.record(
                client_entry("oauth.refresh_reuse_detected", &grant, ctx)
                    .properties(json!({"refresh_token_id": row.id, "replaced_by": row.replaced_by})),
            );
            self.revoke_grant_in(&mut w, &grant, "refresh_reuse", ctx).await?;
            w.commit().await?;
            return Ok(Err(TokenError::grant(
                "the refresh token was already used; the grant is revoked",
            )));
        }
        if let Some(refused) = self.grant_unusable(&mut w, &grant).await? {
            return Ok(Err(refused));
        }
        let granted = grant_abilities(&grant);
        // A scope may narrow the access token, never widen it; one naming no ability is none.
        let abilities = match req.scope.as_deref().map(scope_abilities).filter(|a| !a.is_empty()) {
            None => granted,
            Some(asked) => {
                let mut asked = asked;
                if !asked.contains(&Ability::McpFull) {
                    asked.push(Ability::McpFull);
                    asked.sort();
                }
                if asked.iter().any(|a| !granted.contains(a)) {
                    return Ok(Err(TokenError::new(
                        "invalid_scope",
                        "a refresh cannot ask for more than the grant holds",
                    )));
                }
                asked
            }
        };
        let issued = self.issue_pair(&mut w, &grant, &abilities, Some(&row.id)).await?;
        let grace = i64::try_from(self.config.oauth.refresh_grace.as_millis()).unwrap_or(i64::MAX / 4);
        store::replace_refresh(w.conn(), &row.id, issued.refresh_token.id().as_str(), now, now + grace).await?;
        w.record(client_entry("oauth.token_refreshed", &grant, ctx).properties(json!({
            "refresh_token_id": row.id,
            "new_refresh_token_id": issued.refresh_token.id().as_str(),
            "access_token_id": issued.access_token.id().as_str(),
            "scope": issued.scope, "within_grace": row.replaced_by.is_some(),
        })));
        w.commit().await?;
        Ok(Ok(issued))
    }

    /// The refresh token row a presented token matches (digests compared in constant time).
    async fn held_refresh(&self, w: &mut Audited, secret: &RefreshSecret) -> Result<Option<RefreshRow>> {
        let row = store::find_refresh(w.conn(), secret.id().as_str()).await?;
        let stored = row
            .as_ref()
            .map(|r| TokenDigest::from_stored(r.digest.clone()))
            .unwrap_or_else(TokenDigest::decoy);
        let matches = secret.digest().ct_eq(&stored);
        Ok(row.filter(|_| matches))
    }

    /// Why a grant can give no more tokens: revoked, its client removed, or its person no longer
    /// in its team.
    async fn grant_unusable(&self, w: &mut Audited, grant: &GrantRow) -> Result<Option<TokenError>> {
        if grant.revoked_at.is_some() {
            return Ok(Some(TokenError::grant("the grant is revoked")));
        }
        let client = crate::store::oauth::find(w.conn(), &grant.client_id).await?;
        if client.is_none_or(|c| c.revoked_at.is_some()) {
            return Ok(Some(TokenError::new("invalid_client", "the client was removed")));
        }
        if crate::store::teams::role_of(w.conn(), &grant.team_id, &grant.user_id)
            .await?
            .is_none()
        {
            return Ok(Some(TokenError::grant("the person is no longer in the grant's team")));
        }
        Ok(None)
    }

    /// A new access token (an `mpt_` row naming the grant, expiring after `--oauth-access-ttl`)
    /// and a new refresh token, in the caller's transaction.
    async fn issue_pair(
        &self,
        w: &mut Audited,
        grant: &GrantRow,
        abilities: &[Ability],
        previous: Option<&str>,
    ) -> Result<Issued> {
        let now = now_ms();
        let ttl_ms = i64::try_from(self.config.oauth.access_ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let client_name = crate::store::oauth::find(w.conn(), &grant.client_id)
            .await?
            .and_then(|c| c.client_name)
            .unwrap_or_else(|| "OAuth client".to_owned());
        let access = TokenSecret::generate(self.config.env);
        let row = TokenRow {
            // An OAuth access token is bound to /mcp and its grant; no network list of its own.
            allowed_ips: None,
            grace_until: None,
            id: access.id().to_string(),
            env: self.config.env.as_str().to_owned(),
            digest: access.digest().as_str().to_owned(),
            team_id: TeamId::from_stored(grant.team_id.clone()),
            user_id: UserId::from_stored(grant.user_id.clone()),
            name: format!("OAuth: {}", client_name.chars().take(90).collect::<String>()),
            abilities: json!(abilities).to_string(),
            project_ids: grant.project_ids.clone(),
            created_at: now,
            expires_at: Some(now.saturating_add(ttl_ms)),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            revoked_reason: None,
            replaced_by: None,
        };
        store::insert_access_token(w.conn(), &row, &grant.id).await?;
        let refresh = RefreshSecret::generate(self.config.env);
        store::insert_refresh(
            w.conn(),
            &RefreshRow {
                id: refresh.id().to_string(),
                env: self.config.env.as_str().to_owned(),
                digest: refresh.digest().as_str().to_owned(),
                grant_id: grant.id.clone(),
                previous_id: previous.map(str::to_owned),
                access_token_id: Some(row.id.clone()),
                created_at: now,
                expires_at: Some(now + REFRESH_TTL_MS),
                replaced_by: None,
                replaced_at: None,
                grace_until: None,
                revoked_at: None,
                revoked_reason: None,
            },
        )
        .await?;
        Ok(Issued {
            access_token: access,
            expires_in: u64::try_from(ttl_ms / 1000).unwrap_or(0),
            refresh_token: refresh,
            scope: scope_of(abilities),
        })
    }

    /// Revokes a grant with its tokens, by the system (a reuse) or its client, with its entry.
    async fn revoke_grant_in(&self, w: &mut Audited, grant: &GrantRow, reason: &str, ctx: &RequestCtx) -> Result<()> {
        if store::revoke_grant(w.conn(), &grant.id, reason, None, now_ms()).await? {
            w.void_approvals(crate::store::approvals::Voids::Grant(&grant.id), "token_revoked")
                .await?;
            w.record(
                client_entry("oauth.grant_revoked", grant, ctx)
                    .properties(json!({"reason": reason, "client_id": grant.client_id})),
            );
        }
        Ok(())
    }

    /// `POST /revoke` (RFC 7009): a refresh token revokes its whole grant; an OAuth access token
    /// revokes itself only (its grant's refresh token can still give another); a pasted `mpt_`
    /// token is revoked by possession as `POST /v1/tokens/revoke` does. Anything else changes
    /// nothing; the caller answers 200 whatever happened.
    pub async fn revoke_oauth_token(&self, presented: &str, ctx: &RequestCtx) -> Result<()> {
        match AnyToken::parse(presented.trim()) {
            Ok(AnyToken::Refresh(secret)) => {
                self.revoke_by_refresh_token(&secret, "revoked by its client", ctx)
                    .await
            }
            Ok(AnyToken::Access(secret)) => {
                let mut conn = self.db.pool().acquire().await?;
                let grant_id = store::grant_of_token(&mut conn, secret.id().as_str()).await?;
                drop(conn);
                match grant_id {
                    Some(grant_id) => self.revoke_oauth_access(&secret, &grant_id, ctx).await,
                    None => {
                        self.revoke_by_possession(presented.trim(), Some("oauth revoke"), ctx)
                            .await
                    }
                }
            }
            Err(_) => Ok(()),
        }
    }

    /// A refresh token held by whoever presents it: its grant is revoked (RFC 7009 §2.1, and
    /// revoke by possession).
    pub async fn revoke_by_refresh_token(&self, secret: &RefreshSecret, reason: &str, ctx: &RequestCtx) -> Result<()> {
        let mut w = self.audited().await?;
        let Some(row) = self.held_refresh(&mut w, secret).await? else {
            return Ok(());
        };
        let grant = store::find_grant(w.conn(), &row.grant_id)
            .await?
            .ok_or(Error::NotFound)?;
        self.revoke_grant_in(&mut w, &grant, reason, ctx).await?;
        w.commit().await
    }

    async fn revoke_oauth_access(&self, secret: &TokenSecret, grant_id: &str, ctx: &RequestCtx) -> Result<()> {
        let mut w = self.audited().await?;
        let Some(row) = tokens::find(w.conn(), secret.id().as_str()).await? else {
            return Ok(());
        };
        if !secret.digest().ct_eq(&TokenDigest::from_stored(row.digest.clone())) {
            return Ok(());
        }
        let Some(grant) = store::find_grant(w.conn(), grant_id).await? else {
            return Ok(());
        };
        if tokens::revoke(w.conn(), &row.id, "revoked by its client").await? {
            w.void_approvals(crate::store::approvals::Voids::Token(&row.id), "token_revoked")
                .await?;
            let mut entry = client_entry("token.revoked", &grant, ctx)
                .subject("token", &row.id)
                .properties(json!({"reason": "revoked by its client"}));
            entry.token_id = Some(row.id.clone());
            entry.outcome = Outcome::Success;
            w.record(entry);
        }
        w.commit().await
    }
}

/// A grant's abilities, as stored (catalog names; an unknown one is dropped, never widened).
fn grant_abilities(grant: &GrantRow) -> Vec<Ability> {
    let mut a: Vec<Ability> = grant.ability_names().iter().filter_map(|n| n.parse().ok()).collect();
    a.sort();
    a
}
