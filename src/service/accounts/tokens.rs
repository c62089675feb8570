//! Token lifecycle: mint, list, show, revoke, rotate, and the caller's own token.

use serde_json::{Value, json};

use crate::domain::ability::Ability;
use crate::domain::allow_list::AllowList;

use crate::domain::error::{Error, Result};
use crate::domain::ids::{TeamId, UserId, parse_id};
use crate::domain::role::Role;
use crate::domain::time::DAY_MS;
use crate::domain::token::{TokenEnv, TokenId, TokenSecret};
use crate::domain::token_policy::{TokenPolicy, TokenShape};
use crate::service::Who;
use crate::service::{Caller, Service};
use crate::store::tokens::{self as store, TokenRow};
use crate::store::{now_ms, projects, teams};

/// The longest lifetime a token can be minted with: ten years.
pub const MAX_LIFETIME_MS: i64 = 3650 * DAY_MS;

/// What to mint. Abilities are names, checked against the catalog and the owner's role.
#[derive(Clone, Debug, Default)]
pub struct MintRequest {
    pub team_id: String,
    pub user_email: String,
    pub name: String,
    pub abilities: Vec<String>,
    pub project_ids: Vec<String>,
    pub expires_in_ms: Option<i64>,
    /// The leaked-token playbook's replacement: the (revoked or live) token of the same owner
    /// this one replaces, linked by `replaced_by` and named in the `token.minted` entry.
    pub replaces: Option<String>,
    /// The CIDR blocks it may be used from (empty: anywhere).
    pub allowed_ips: Vec<String>,
}

/// A freshly minted token: the one place its plaintext exists.
#[derive(Debug)]
pub struct Minted {
    pub secret: TokenSecret,
    pub row: TokenRow,
}

impl Minted {
    /// `{"id", "token", "team_id", "abilities", "project_ids", …}` (SPEC §10).
    pub fn to_json(&self) -> Value {
        let mut v = self.row.to_json();
        v["token"] = json!(self.secret.expose_secret());
        v
    }
}

/// The longest grace a rotation may give the old token: 7 days.
pub const MAX_GRACE_MS: i64 = 7 * crate::domain::time::DAY_MS;

impl Service {
    /// Mints a token (CLI and dashboard). Nobody can mint beyond their role.
    pub async fn mint_token(&self, actor: &Caller, req: MintRequest) -> Result<Minted> {
        let mut w = self.audited().await?;
        let team_id = parse_id(&req.team_id).map_err(|_| Error::field("team", "no such team"))?;
        let owner = teams::member_by_email(w.conn(), &team_id, &req.user_email.trim().to_lowercase()).await?;
        let (user_id, role) = owner.ok_or_else(|| Error::field("user", "no such user in this team"))?;
        let role: Role = role.parse().map_err(|e: String| Error::Internal(anyhow::anyhow!(e)))?;
        let name = req.name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Error::field("name", "must be 1 to 100 characters"));
        }
        let mut abilities = Vec::new();
        for a in &req.abilities {
            let ability: Ability = a
                .parse()
                .map_err(|e: crate::domain::ability::UnknownAbility| Error::field("abilities", e.to_string()))?;
            if !role.holds(ability) {
                return Err(Error::field(
                    "abilities",
                    format!("the {role} role does not hold `{ability}`"),
                ));
            }
            if !abilities.contains(&ability) {
                abilities.push(ability);
            }
        }
        abilities.sort();
        let mut projects = Vec::new();
        for pid in &req.project_ids {
            let pid = parse_id(pid).map_err(|_| Error::field("projects", "no such project in this team"))?;
            projects::find_in_team(w.conn(), &team_id, &pid)
                .await?
                .ok_or_else(|| Error::field("projects", "no such project in this team"))?;
            if !projects.contains(&pid) {
                projects.push(pid);
            }
        }
        if let Some(ms) = req.expires_in_ms
            && !(1..=MAX_LIFETIME_MS).contains(&ms)
        {
            return Err(lifetime_refused());
        }
        let allowed = AllowList::parse(&req.allowed_ips).map_err(|e| Error::field("allowed_ips", e))?;
        // The team's token policy (issue 21): a replacement's lifetime is cut to its maximum; any
        // other token that breaks it is refused, and the refusal audited.
        let policy = crate::store::token_policies::policy(w.conn(), &team_id).await?;
        let lifetime = match req.replaces {
            Some(_) => fit_lifetime(&policy, req.expires_in_ms),
            None => req.expires_in_ms,
        };
        let shape = TokenShape {
            role,
            abilities: &abilities,
            lifetime_ms: lifetime,
        };
        if let Some(v) = policy.check(&shape) {
            let mut entry = actor.draft("token.minted", &team_id).properties(json!({
                "name": name, "owner_id": user_id, "abilities": abilities, "policy": v.policy, "limit": v.limit,
            }));
            crate::service::core::authz::mark_refused(&mut entry, &Error::from(v.clone()));
            drop(w);
            self.append_alone(entry).await?;
            return Err(v.into());
        }
        let secret = TokenSecret::generate(self.config.env);
        let now = now_ms();
        let row = TokenRow {
            id: secret.id().to_string(),
            env: self.config.env.as_str().to_owned(),
            digest: secret.digest().as_str().to_owned(),
            team_id: TeamId::from_stored(team_id.clone()),
            user_id: UserId::from_stored(user_id),
            name: name.to_owned(),
            abilities: json!(abilities).to_string(),
            project_ids: (!projects.is_empty()).then(|| json!(projects).to_string()),
            created_at: now,
            expires_at: lifetime.map(|ms| now + ms),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            revoked_reason: None,
            replaced_by: None,
            allowed_ips: allowed.as_ref().map(AllowList::to_stored),
            grace_until: None,
        };
        store::insert(w.conn(), &row).await?;
        if let Some(old) = &req.replaces {
            let old = store::find(w.conn(), old)
                .await?
                .filter(|t| t.team_id == team_id && t.user_id == row.user_id)
                .ok_or(Error::NotFound)?;
            if let Some(by) = old.replaced_by {
                return Err(Error::Conflict(format!("this token was already replaced by {by}")));
            }
            store::set_replaced_by(w.conn(), &old.id, &row.id).await?;
        }
        let entry = actor
            .draft("token.minted", &team_id)
            .subject("token", &row.id)
            .properties(json!({
                "name": row.name, "owner_id": row.user_id, "abilities": abilities, "project_ids": projects,
                "expires_at": row.expires_at.map(crate::domain::time::rfc3339), "replaces": req.replaces,
                "allowed_ips": allowed.as_ref().map(AllowList::blocks),
            }));
        w.record(entry);
        w.commit().await?;
        Ok(Minted { secret, row })
    }

    /// Revokes by ID (CLI, dashboard). Revoking a revoked token is a conflict.
    pub async fn revoke_token(&self, actor: &Caller, token_id: &str, reason: Option<&str>) -> Result<TokenRow> {
        let id = TokenId::parse(token_id).map_err(|_| Error::NotFound)?;
        let mut w = self.audited().await?;
        let row = store::find(w.conn(), id.as_str()).await?.ok_or(Error::NotFound)?;
        if row.revoked_at.is_some() {
            return Err(Error::Conflict("this token is already revoked".into()));
        }
        let reason = reason.unwrap_or("revoked");
        store::revoke(w.conn(), id.as_str(), reason).await?;
        w.void_approvals(crate::store::approvals::Voids::Token(id.as_str()), "token_revoked")
            .await?;
        let entry = actor
            .draft("token.revoked", &row.team_id)
            .subject("token", id.as_str())
            .properties(json!({"reason": reason}));
        w.record(entry);
        let row = store::find(w.conn(), id.as_str()).await?.ok_or(Error::NotFound)?;
        w.commit().await?;
        Ok(row)
    }

    /// Mints a replacement with the same name, abilities, scopes and network list, in one
    /// transaction with the old token's end: revoked at once (`grace` zero), or superseded — still
    /// working, every use audited `superseded: true` — until `grace` has passed (at most 7 days),
    /// so the clients still holding it can be found and moved first.
    pub async fn rotate_token(&self, actor: &Caller, token_id: &str, grace: std::time::Duration) -> Result<Minted> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        if grace_ms > MAX_GRACE_MS {
            return Err(Error::field("grace", "at most 7 days"));
        }
        let id = TokenId::parse(token_id).map_err(|_| Error::NotFound)?;
        let mut w = self.audited().await?;
        let old = store::find(w.conn(), id.as_str()).await?.ok_or(Error::NotFound)?;
        if old.revoked_at.is_some() {
            return Err(Error::Conflict(
                "a revoked token cannot be rotated; mint a new one".into(),
            ));
        }
        if let Some(by) = &old.replaced_by {
            return Err(Error::Conflict(format!(
                "this token was already replaced by {by}; rotate that one"
            )));
        }
        if crate::store::oauth_grants::grant_of_token(w.conn(), &old.id)
            .await?
            .is_some()
        {
            // Its replacement would not be bound to /mcp: an OAuth client refreshes instead.
            return Err(Error::Conflict(
                "an OAuth access token is not rotated: its app refreshes it (Connected apps disconnects it)".into(),
            ));
        }
        let now = now_ms();
        if old.expires_at.is_some_and(|e| e <= now) {
            return Err(Error::Conflict(
                "an expired token cannot be rotated; mint a new one".into(),
            ));
        }
        // The replacement lives in the environment of the token it replaces, whatever this
        // process serves.
        let env: TokenEnv = old
            .env
            .parse()
            .map_err(|e: String| Error::Internal(anyhow::anyhow!("corrupt token environment: {e}")))?;
        let role = teams::role_of(w.conn(), &old.team_id, &old.user_id).await?;
        let role: Role = role
            .ok_or_else(|| Error::Conflict("the token's owner is no longer in its team".into()))?
            .parse()
            .map_err(|e: String| Error::Internal(anyhow::anyhow!(e)))?;
        let mut abilities = Vec::new();
        for a in old.ability_names() {
            match a.parse::<Ability>() {
                Ok(a) if !role.holds(a) => {
                    return Err(Error::Conflict(format!(
                        "the owner's {role} role no longer holds `{a}`"
                    )));
                }
                Ok(a) => abilities.push(a),
                Err(_) => {}
            }
        }
        // The team's token policy: the replacement's lifetime is cut to its maximum; abilities
        // the owner's role may no longer put on a token are refused (mint one within it).
        let policy = crate::store::token_policies::policy(w.conn(), &old.team_id).await?;
        let lifetime = fit_lifetime(&policy, old.expires_at.map(|e| e - old.created_at));
        if let Some(v) = policy.check(&TokenShape {
            role,
            abilities: &abilities,
            lifetime_ms: lifetime,
        }) {
            return Err(v.into());
        }
        let secret = TokenSecret::generate(env);
        let row = TokenRow {
            id: secret.id().to_string(),
            digest: secret.digest().as_str().to_owned(),
            env: env.as_str().to_owned(),
            created_at: now,
            // The replacement gets the same lifetime the old one was minted with (within the
            // team's maximum).
            expires_at: lifetime.map(|ms| now + ms),
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            revoked_reason: None,
            replaced_by: None,
            grace_until: None,
            ..old.clone()
        };
        store::insert(w.conn(), &row).await?;
        let grace_until = (grace_ms > 0).then(|| now + grace_ms);
        match grace_until {
            Some(until) => store::supersede(w.conn(), &old.id, &row.id, until).await?,
            None => {
                store::revoke(w.conn(), &old.id, "rotated").await?;
                w.void_approvals(crate::store::approvals::Voids::Token(&old.id), "token_revoked")
                    .await?;
                store::set_replaced_by(w.conn(), &old.id, &row.id).await?;
            }
        }
        let entry = actor
            .draft("token.rotated", &old.team_id)
            .subject("token", &old.id)
            .properties(json!({
                "replaced_by": row.id, "name": row.name,
                "grace_until": grace_until.map(crate::domain::time::rfc3339),
            }));
        w.record(entry);
        w.commit().await?;
        Ok(Minted { secret, row })
    }

    /// Replaces a token's network allowlist (`cidrs` empty: anywhere), by the operator (CLI) or
    /// the token's owner signed in (dashboard): audited as `token.allowed_ips_changed` with the
    /// list before and after. A token never changes its own list; a revoked one is not changed.
    pub async fn set_allowed_ips(&self, actor: &Caller, token_id: &str, cidrs: &[String]) -> Result<TokenRow> {
        let list = AllowList::parse(cidrs).map_err(|e| Error::field("allowed_ips", e))?;
        match &actor.who {
            Who::System => {}
            Who::Person(_) => {
                self.own_token(actor, token_id).await?;
            }
            Who::Token { .. } => {
                return Err(Error::Conflict(
                    "a token's network allowlist is changed by its owner in the dashboard or by the operator".into(),
                ));
            }
        }
        let id = TokenId::parse(token_id).map_err(|_| Error::NotFound)?;
        let mut w = self.audited().await?;
        let row = store::find(w.conn(), id.as_str()).await?.ok_or(Error::NotFound)?;
        if row.revoked_at.is_some() {
            return Err(Error::Conflict("this token is revoked".into()));
        }
        let stored = list.as_ref().map(AllowList::to_stored);
        store::set_allowed_ips(w.conn(), &row.id, stored.as_deref()).await?;
        let before = row.view().allowed_ips;
        w.record(
            actor
                .draft("token.allowed_ips_changed", &row.team_id)
                .subject("token", &row.id)
                .properties(json!({"allowed_ips": {"from": before, "to": list.as_ref().map(AllowList::blocks)}})),
        );
        let row = store::find(w.conn(), &row.id).await?.ok_or(Error::NotFound)?;
        w.commit().await?;
        Ok(row)
    }

    /// Revokes one of the signed-in person's own tokens in their session's team (dashboard).
    /// Anyone else's token, or one of another team, does not exist for them.
    pub async fn revoke_own_token(&self, caller: &Caller, token_id: &str) -> Result<TokenRow> {
        self.own_token(caller, token_id).await?;
        self.revoke_token(caller, token_id, Some("revoked from the dashboard"))
            .await
    }

    /// Rotates one of the signed-in person's own tokens (dashboard), with a grace (zero: none).
    pub async fn rotate_own_token(
        &self,
        caller: &Caller,
        token_id: &str,
        grace: std::time::Duration,
    ) -> Result<Minted> {
        self.own_token(caller, token_id).await?;
        self.rotate_token(caller, token_id, grace).await
    }

    /// Ends a superseded token's grace now: it is revoked (`grace ended`), audited as
    /// `token.grace_ended`. By the operator, or the token's owner signed in.
    pub async fn end_grace(&self, actor: &Caller, token_id: &str) -> Result<TokenRow> {
        if matches!(actor.who, Who::Person(_)) {
            self.own_token(actor, token_id).await?;
        } else if !matches!(actor.who, Who::System) {
            return Err(Error::Conflict(
                "a grace is ended by the token's owner or the operator".into(),
            ));
        }
        let id = TokenId::parse(token_id).map_err(|_| Error::NotFound)?;
        let mut w = self.audited().await?;
        let row = store::find(w.conn(), id.as_str()).await?.ok_or(Error::NotFound)?;
        if row.grace_until.is_none() || row.revoked_at.is_some() {
            return Err(Error::Conflict("this token is not in a grace period".into()));
        }
        store::revoke(w.conn(), &row.id, "grace ended").await?;
        w.void_approvals(crate::store::approvals::Voids::Token(&row.id), "token_revoked")
            .await?;
        w.record(
            actor
                .draft("token.grace_ended", &row.team_id)
                .subject("token", &row.id)
                .properties(json!({"replaced_by": row.replaced_by, "grace_until": row.grace_until.map(crate::domain::time::rfc3339)})),
        );
        let row = store::find(w.conn(), &row.id).await?.ok_or(Error::NotFound)?;
        w.commit().await?;
        Ok(row)
    }

    /// One of the signed-in person's own tokens in their session's team; any other is not found.
    pub async fn own_token(&self, caller: &Caller, token_id: &str) -> Result<TokenRow> {
        let p = caller.in_team()?;
        let row = self.show_token(token_id).await?;
        if row.team_id != p.team_id || row.user_id != p.user_id {
            return Err(Error::NotFound);
        }
        Ok(row)
    }

    /// One token of the caller's team and its owner's email, for the page where an owner or
    /// admin confirms its revocation (`token:revoke-any`, noted for the page's view entry).
    /// Another team's token, or any for a project-scoped caller, is not found.
    pub async fn team_token(&self, caller: &Caller, token_id: &str) -> Result<(TokenRow, String)> {
        if !caller.can(Ability::TokenRevokeAny) {
            return Err(Error::missing(Ability::TokenRevokeAny));
        }
        if let Some(view) = &caller.page_view {
            view.read(Some(Ability::TokenRevokeAny));
        }
        let p = caller.in_team()?;
        if caller.project_ids().is_some() {
            return Err(Error::NotFound);
        }
        let row = self.show_token(token_id).await?;
        if row.team_id != p.team_id {
            return Err(Error::NotFound);
        }
        let mut conn = self.db.pool().acquire().await?;
        let owner = crate::store::users::name_and_email(&mut conn, row.user_id.as_str())
            .await?
            .map(|(_, email)| email)
            .unwrap_or_default();
        Ok((row, owner))
    }

    pub async fn show_token(&self, token_id: &str) -> Result<TokenRow> {
        let id = TokenId::parse(token_id).map_err(|_| Error::NotFound)?;
        let mut conn = self.db.pool().acquire().await?;
        store::find(&mut conn, id.as_str()).await?.ok_or(Error::NotFound)
    }

    /// Operator listing, by user and/or team.
    pub async fn list_tokens_admin(&self, user_email: Option<&str>, team_id: Option<&str>) -> Result<Vec<TokenRow>> {
        let mut conn = self.db.pool().acquire().await?;
        let email = user_email.map(|e| e.trim().to_lowercase());
        let rows = store::list(&mut conn, email.as_deref(), team_id).await?;
        Ok(rows)
    }
}

/// A replacement's lifetime under the team's policy: the old one's, cut to the maximum (and the
/// maximum when the old one had none).
fn fit_lifetime(policy: &TokenPolicy, lifetime: Option<i64>) -> Option<i64> {
    match policy.max_lifetime_ms {
        Some(max) => Some(lifetime.map_or(max, |l| l.min(max))),
        None => lifetime,
    }
}

/// The refusal of a lifetime out of bounds, whichever surface gave it.
fn lifetime_refused() -> Error {
    Error::field(
        "expires_in",
        format!("must be from 1 minute to {} days", MAX_LIFETIME_MS / DAY_MS),
    )
}

/// A lifetime given as a whole number of days (the dashboard's form field), in milliseconds for
/// [`MintRequest::expires_in_ms`]; empty is none (the token never expires). The bounds are
/// [`Service::mint_token`]'s; a number of days whose milliseconds do not fit, or anything that
/// is not a number, is refused the same way, never wrapped or read as "never".
pub fn lifetime_of_days(days: &str) -> Result<Option<i64>> {
    let days = days.trim();
    if days.is_empty() {
        return Ok(None);
    }
    days.parse::<i64>()
        .ok()
        .and_then(|d| d.checked_mul(DAY_MS))
        .map(Some)
        .ok_or_else(lifetime_refused)
}

/// Parses `30d`, `12h`, `45m` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let unit = s.chars().last()?;
    let n: i64 = s[..s.len() - unit.len_utf8()].parse().ok().filter(|n| *n > 0)?;
    let unit_ms = match unit {
        'd' => crate::domain::time::DAY_MS,
        'h' => 3_600_000,
        'm' => crate::domain::time::MINUTE_MS,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}
