//! The team's token policy (issue 21, item 3): read by any member, changed by an owner of the team
//! (dashboard) or the operator (CLI, `memberpass team policy`), never by a token — a policy that
//! limits tokens is not for a token to loosen. Every change is audited
//! (`team.token_policy_changed`, each field `from`/`to`) and applied in the same transaction to
//! the tokens minted before it: a live token it breaks gets an expiry no later than 7 days from
//! now (or its lifetime's end under a new maximum, if later), its owner is told on the dashboard,
//! and `token.expiry_shortened` names the rule. The maintenance pass applies the same rules again
//! (an owner's role can change after the policy) and expires tokens by the unused rule.

use serde_json::{Value, json};

use crate::domain::ability::Ability;
use crate::domain::audit::AuditDraft;
use crate::domain::error::{Error, Result};
use crate::domain::ids::parse_id;
use crate::domain::role::Role;
use crate::domain::time::{DAY_MS, rfc3339};
use crate::domain::token_policy::{MIN_UNUSED_MS, NOTICE_MS, PastedTokens, TokenPolicy, TokenShape};
use crate::service::accounts::leaks::notify;
use crate::service::accounts::tokens::MAX_LIFETIME_MS;
use crate::service::{Caller, Service, Who};
use crate::store::{Conn, now_ms, teams, token_policies, tokens};

/// The notification a token's owner gets when the policy shortens its life.
pub const POLICY: &str = "policy";

/// The shortest maximum lifetime a policy may set: an hour.
pub const MIN_MAX_LIFETIME_MS: i64 = 3_600_000;

/// What a change sets; `None` leaves a knob as it is.
#[derive(Clone, Debug, Default)]
pub struct PolicyChange {
    /// `Some(None)`: no maximum.
    pub max_lifetime_ms: Option<Option<i64>>,
    pub require_expiry: Option<bool>,
    /// Each role's rule replaced; `None` as the list clears that role's rule.
    pub role_abilities: Vec<(Role, Option<Vec<Ability>>)>,
    /// `Some(None)`: unused tokens never expire.
    pub expire_unused_ms: Option<Option<i64>>,
    pub mcp_pasted_tokens: Option<PastedTokens>,
}

impl PolicyChange {
    pub fn is_empty(&self) -> bool {
        self.max_lifetime_ms.is_none()
            && self.require_expiry.is_none()
            && self.role_abilities.is_empty()
            && self.expire_unused_ms.is_none()
            && self.mcp_pasted_tokens.is_none()
    }

    fn apply(&self, to: &TokenPolicy, now: i64) -> Result<TokenPolicy> {
        let mut p = to.clone();
        if let Some(max) = self.max_lifetime_ms {
            if let Some(ms) = max
                && !(MIN_MAX_LIFETIME_MS..=MAX_LIFETIME_MS).contains(&ms)
            {
                return Err(Error::field(
                    "max_lifetime",
                    format!("must be from 1 hour to {} days", MAX_LIFETIME_MS / DAY_MS),
                ));
            }
            p.max_lifetime_ms = max;
        }
        if let Some(r) = self.require_expiry {
            p.require_expiry = r;
        }
        for (role, list) in &self.role_abilities {
            if let Some(list) = list
                && let Some(a) = list.iter().find(|a| !role.holds(**a))
            {
                return Err(Error::field(
                    "role_abilities",
                    format!("the {role} role does not hold `{a}`"),
                ));
            }
            match list {
                Some(list) => p.role_abilities.insert(*role, list.clone()),
                None => p.role_abilities.remove(role),
            };
        }
        if let Some(unused) = self.expire_unused_ms {
            if let Some(ms) = unused
                && !(MIN_UNUSED_MS..=MAX_LIFETIME_MS).contains(&ms)
            {
                return Err(Error::field(
                    "expire_unused",
                    format!("must be from 1 day to {} days", MAX_LIFETIME_MS / DAY_MS),
                ));
            }
            if unused != p.expire_unused_ms {
                // Turned on or changed: every token gets at least 7 days from now.
                p.unused_since = unused.map(|_| now);
            }
            p.expire_unused_ms = unused;
        }
        if let Some(m) = self.mcp_pasted_tokens {
            p.mcp_pasted_tokens = m;
        }
        Ok(p)
    }
}

impl Service {
    /// A team's token policy, for a member of the team or the operator.
    pub async fn token_policy(&self, actor: &Caller, team_id: &str) -> Result<TokenPolicy> {
        let team = self.policy_team(actor, team_id, false)?;
        let mut conn = self.db.read_pool().acquire().await?;
        token_policies::policy(&mut conn, &team).await
    }

    /// Changes a team's token policy and applies it to the tokens minted before it, in one
    /// transaction with its audit entries. Answers the policy now in force.
    pub async fn set_token_policy(&self, actor: &Caller, team_id: &str, change: &PolicyChange) -> Result<TokenPolicy> {
        let team = self.policy_team(actor, team_id, true)?;
        let mut w = self.audited().await?;
        teams::find(w.conn(), &team).await?.ok_or(Error::NotFound)?;
        let now = now_ms();
        let before = token_policies::policy(w.conn(), &team).await?;
        let after = change.apply(&before, now)?;
        let by = actor.member().map(|m| m.user_id.to_string());
        token_policies::store(w.conn(), &team, &after, now, by.as_deref()).await?;
        w.record(
            actor
                .draft("team.token_policy_changed", &team)
                .subject("team", &team)
                .properties(json!({"changes": changes(&before.to_json(), &after.to_json())})),
        );
        let entries = enforce(w.conn(), &team, &after, actor, now).await?;
        for e in entries {
            w.record(e);
        }
        w.commit().await?;
        Ok(after)
    }

    /// The team a policy call is about: the operator names any team; a person only their
    /// session's, and only an owner changes it.
    fn policy_team(&self, actor: &Caller, team_id: &str, change: bool) -> Result<String> {
        let team = parse_id(team_id).map_err(|_| Error::NotFound)?;
        match &actor.who {
            Who::System => Ok(team),
            Who::Person(m) if m.team_id.as_str() == team => {
                if change && m.role != Role::Owner {
                    return Err(Error::Conflict(
                        "only an owner of the team changes its token policy".into(),
                    ));
                }
                Ok(team)
            }
            Who::Person(_) => Err(Error::NotFound),
            Who::Token { .. } => Err(Error::Conflict(
                "the token policy is read and changed by people (dashboard) and the operator (CLI), not by a token"
                    .into(),
            )),
        }
    }

    /// The maintenance pass's share: the lifetime, expiry and role rules applied again to every
    /// team with a policy (a role may have changed since), then the unused rule: a warning 7 days
    /// and 1 day before a token's deadline (once per last use: a token used since is warned
    /// afresh when it nears its new deadline), and at the deadline its expiry.
    pub(crate) async fn maintain_token_policies(&self) -> Result<usize> {
        // Read first: with no team policy (the default) the pass never takes the writer.
        let mut conn = self.db.read_pool().acquire().await?;
        if token_policies::teams_with_rules(&mut conn).await?.is_empty() {
            return Ok(0);
        }
        drop(conn);
        let mut w = self.audited().await?;
        let now = now_ms();
        let teams = token_policies::teams_with_rules(w.conn()).await?;
        let mut n = 0;
        for team in teams {
            let policy = token_policies::policy(w.conn(), &team).await?;
            let mut entries = enforce(w.conn(), &team, &policy, &Caller::system(), now).await?;
            if policy.expire_unused_ms.is_some() {
                entries.extend(unused(w.conn(), &team, &policy, now).await?);
            }
            n += entries.len();
            for e in entries {
                w.record(e);
            }
        }
        w.commit().await?;
        Ok(n)
    }
}

/// The unused rule's warnings and expiries for one team.
async fn unused(conn: &mut Conn, team: &str, policy: &TokenPolicy, now: i64) -> Result<Vec<AuditDraft>> {
    use super::maintenance::{EXPIRED, EXPIRING};
    let mut entries = Vec::new();
    for live in tokens::live_minted_of_team(conn, team, now).await? {
        let t = live.token;
        let last_use = t.last_used_at.unwrap_or(t.created_at);
        let Some(deadline) = policy.unused_deadline(last_use) else {
            continue;
        };
        if t.expires_at.is_some_and(|e| e <= deadline) {
            continue; // Its own expiry comes first; that has its own warnings.
        }
        let left = deadline - now;
        let (kind, event, notice) = if left <= 0 {
            ("expired".to_owned(), "token.expired", EXPIRED)
        } else if left <= DAY_MS {
            (format!("unused_1d@{last_use}"), "token.expiring", EXPIRING)
        } else if left <= NOTICE_MS {
            (format!("unused_7d@{last_use}"), "token.expiring", EXPIRING)
        } else {
            continue;
        };
        if left <= 0 {
            // Refused from its deadline on already; the expiry keeps it so whatever the policy
            // becomes.
            tokens::set_expiry(conn, &t.id, deadline).await?;
        }
        if !tokens::record_warning(conn, &t.id, &kind, now).await? {
            continue;
        }
        let mut properties = json!({
            "token_name": t.name, "expires_at": rfc3339(deadline), "reason": "unused",
            "last_used_at": t.last_used_at.map(rfc3339),
            "expire_unused": policy.expire_unused_ms.map(crate::domain::token_policy::format_duration),
        });
        if left > 0 {
            properties["days_left"] = json!((left + DAY_MS - 1) / DAY_MS);
        }
        notify(conn, &t, notice, &properties).await?;
        entries.push(
            AuditDraft::system(event, Some(team.to_owned()))
                .subject("token", t.id.as_str())
                .properties(properties),
        );
    }
    Ok(entries)
}

/// `{field: {from, to}}` for the fields that changed.
fn changes(before: &Value, after: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        for (k, to) in a {
            let from = b.get(k).cloned().unwrap_or(Value::Null);
            if &from != to {
                out.insert(k.clone(), json!({"from": from, "to": to}));
            }
        }
    }
    Value::Object(out)
}

/// Applies `policy` to the team's live minted tokens: each one that breaks the lifetime, expiry
/// or role rule gets an expiry no later than [`NOTICE_MS`] from now (a new maximum lifetime's end
/// instead, when that is later), its owner a notification; a token the unused rule has reached
/// gets that deadline as its expiry (the per-call check already refuses it). Answers the entries
/// to record.
async fn enforce(
    conn: &mut Conn,
    team: &str,
    policy: &TokenPolicy,
    actor: &Caller,
    now: i64,
) -> Result<Vec<AuditDraft>> {
    let mut entries = Vec::new();
    for live in tokens::live_minted_of_team(conn, team, now).await? {
        let t = live.token;
        let Some(role) = live.role.as_deref().and_then(|r| r.parse::<Role>().ok()) else {
            continue; // Its owner left the team: it works for nobody already.
        };
        let abilities: Vec<Ability> = t.ability_names().iter().filter_map(|a| a.parse().ok()).collect();
        // The lifetime it has now (an earlier shortening counts).
        let shape = TokenShape {
            role,
            abilities: &abilities,
            lifetime_ms: t.expires_at.map(|e| e - t.created_at),
        };
        // The earliest end any broken rule gives it: a maximum lifetime's end (at least 7 days
        // away), 7 days for the others.
        let Some((v, target)) = policy
            .violations(&shape)
            .into_iter()
            .map(|v| {
                let end = match (v.policy, policy.max_lifetime_ms) {
                    ("max_lifetime", Some(max)) => t.created_at.saturating_add(max),
                    _ => now,
                };
                (v, end.max(now + NOTICE_MS))
            })
            .min_by_key(|(_, target)| *target)
        else {
            continue;
        };
        if t.expires_at.is_some_and(|e| e <= target) {
            continue; // It ends by then anyway (or was shortened already).
        }
        tokens::set_expiry(conn, &t.id, target).await?;
        if target - now <= NOTICE_MS {
            // This notice is its 7-day warning: the warnings' pass does not repeat it.
            tokens::record_warning(conn, &t.id, "expiring_7d", now).await?;
        }
        let properties = json!({
            "token_name": t.name, "policy": v.policy, "limit": v.limit, "reason": v.message,
            "from": t.expires_at.map(rfc3339), "expires_at": rfc3339(target),
            "days_left": (target - now + DAY_MS - 1) / DAY_MS,
        });
        notify(conn, &t, POLICY, &properties).await?;
        entries.push(
            actor
                .draft("token.expiry_shortened", team)
                .subject("token", &t.id)
                .properties(properties),
        );
    }
    Ok(entries)
}
