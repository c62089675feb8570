//! Who is calling, and from where: the one answer every surface and every lifecycle change
//! gives. A token's caller (REST, MCP) and a signed-in person (dashboard) are resolved on every
//! request and never cached across requests; the server itself (CLI, demo seeding) is
//! [`Who::System`]. Every audit entry starts from [`Caller::draft`].

use crate::domain::ability::{Ability, AbilitySet};
use crate::domain::audit::{ActorKind, AuditDraft, OAuthRef, RequestCtx};
use crate::domain::error::{Error, Result};
use crate::domain::ids::{TeamId, UserId};
use crate::domain::narrowing::Narrowing;
use crate::domain::role::Role;

#[derive(Clone, Debug)]
pub struct Caller {
    pub who: Who,
    /// Where the request came from, copied into every entry it leaves.
    pub ctx: RequestCtx,
    /// Set while a dashboard page (a `GET`) is answered: its successful reads leave no entry of
    /// their own; the page's one `dashboard.view` entry stands for them (see [`PageView`]).
    pub page_view: Option<PageView>,
}

/// The reads of one dashboard page view. A successful read made for it leaves no entry of its
/// own and notes the ability it needed here; the page's `dashboard.view` entry is then re-checked
/// under the chain's lock for every one of them before the page is answered
/// ([`crate::service::Service::record_page_view`]). Refused and failed reads are audited as any.
/// Clones share what was noted (a caller is cloned into each call).
#[derive(Clone, Debug, Default)]
pub struct PageView {
    used: std::sync::Arc<std::sync::Mutex<Vec<Ability>>>,
}

impl PageView {
    /// Notes that a read needing `ability` (if any) answered for this page.
    pub fn read(&self, ability: Option<Ability>) {
        if let Some(a) = ability
            && let Ok(mut used) = self.used.lock()
            && !used.contains(&a)
        {
            used.push(a);
        }
    }

    /// The abilities the page's reads needed.
    pub fn abilities(&self) -> Vec<Ability> {
        self.used.lock().map(|u| u.clone()).unwrap_or_default()
    }
}

#[derive(Clone, Debug)]
pub enum Who {
    /// A token's owner, as a member of the token's team, through REST or MCP.
    Token {
        member: Member,
        grant: TokenGrant,
        surface: Surface,
    },
    /// A person signed in to the dashboard.
    Person(Member),
    /// The server itself: the operator's CLI, the demo seeding. It is in no team, so it calls
    /// no team operation; what it does (mint, revoke, rotate) checks its own rules.
    System,
}

/// The surface a token call came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Rest,
    Mcp,
}

/// A person as a member of one team, with the role they hold now.
#[derive(Clone, Debug)]
pub struct Member {
    pub team_id: TeamId,
    pub user_id: UserId,
    pub user_email: String,
    pub user_name: String,
    pub role: Role,
}

/// What a token carries, frozen at mint.
#[derive(Clone, Debug)]
pub struct TokenGrant {
    pub id: String,
    pub name: String,
    /// The token's own abilities, as minted.
    pub abilities: AbilitySet,
    /// The projects it is limited to, if any.
    pub project_ids: Option<Vec<String>>,
    /// The OAuth grant it was issued under (an access token for `/mcp`); `None` for a token
    /// minted in the dashboard or by the CLI.
    pub oauth: Option<OAuthRef>,
    /// What this connection's `X-MemberPass-*` headers took away (MCP only).
    pub narrowing: Option<Box<Narrowing>>,
    /// A rotated token still in its grace: every entry it leaves says so.
    pub superseded: bool,
}

impl Caller {
    pub fn system() -> Caller {
        Caller {
            who: Who::System,
            ctx: RequestCtx::default(),
            page_view: None,
        }
    }

    pub fn person(member: Member, ctx: RequestCtx) -> Caller {
        Caller {
            who: Who::Person(member),
            ctx,
            page_view: None,
        }
    }

    /// The caller as a member of a team; `None` for the server itself.
    pub fn member(&self) -> Option<&Member> {
        match &self.who {
            Who::Token { member, .. } | Who::Person(member) => Some(member),
            Who::System => None,
        }
    }

    /// The caller as a member of a team, for what only a member can do: the server itself is
    /// in no team, and asking for one as it is a bug of the server's.
    pub fn in_team(&self) -> Result<&Member> {
        self.member()
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("the server itself is in no team")))
    }

    pub fn grant(&self) -> Option<&TokenGrant> {
        match &self.who {
            Who::Token { grant, .. } => Some(grant),
            _ => None,
        }
    }

    pub fn token_id(&self) -> Option<&str> {
        self.grant().map(|g| g.id.as_str())
    }

    /// Which surface the audit log names.
    pub fn actor_kind(&self) -> ActorKind {
        match &self.who {
            Who::Token {
                surface: Surface::Mcp, ..
            } => ActorKind::Mcp,
            Who::Token {
                surface: Surface::Rest, ..
            } => ActorKind::ApiToken,
            Who::Person(_) => ActorKind::Human,
            Who::System => ActorKind::System,
        }
    }

    /// Effective permission: what the member's role holds now, ∩ the token's abilities when the
    /// call carries a token. The server itself holds no team ability.
    pub fn can(&self, ability: Ability) -> bool {
        self.member().is_some_and(|m| self.can_as(m.role, ability))
    }

    /// Whether the caller could do it holding `role` (the role read again under the chain's lock).
    pub fn can_as(&self, role: Role, ability: Ability) -> bool {
        match &self.who {
            Who::Token { grant, .. } => role.holds(ability) && grant.abilities.contains(&ability),
            Who::Person(_) => role.holds(ability),
            Who::System => false,
        }
    }

    pub fn effective_abilities(&self) -> AbilitySet {
        Ability::ALL.iter().copied().filter(|a| self.can(*a)).collect()
    }

    /// Why this connection may not list or call the operation `name` (its headers narrowed it
    /// away), or `None` when it may.
    pub fn narrowed_out(&self, name: &str, writes: bool) -> Option<String> {
        let n = self.grant()?.narrowing.as_deref()?;
        (!n.allows(name, writes)).then(|| n.why_not(name, writes))
    }

    /// The projects the caller is limited to (`None`: every project of the team).
    pub fn project_ids(&self) -> Option<&[String]> {
        self.grant().and_then(|g| g.project_ids.as_deref())
    }

    pub fn sees_project(&self, project_id: &str) -> bool {
        self.project_ids().is_none_or(|ids| ids.iter().any(|p| p == project_id))
    }

    /// Whose `Idempotency-Key`s these are: the token's, or the signed-in person's.
    pub fn idempotency_owner(&self) -> String {
        match (self.token_id(), self.member()) {
            (Some(id), _) => id.to_owned(),
            (None, Some(m)) => format!("user:{}", m.user_id),
            (None, None) => "system".to_owned(),
        }
    }

    /// The entry of something this caller did in `team_id`: who (surface, person, token) and
    /// from where. Every entry a caller leaves starts here.
    pub fn draft(&self, event: &str, team_id: &str) -> AuditDraft {
        let mut d = AuditDraft::system(event, Some(team_id.to_owned()));
        d.actor_kind = self.actor_kind();
        d.causer_id = self.member().map(|m| m.user_id.to_string());
        d.token_id = self.token_id().map(str::to_owned);
        d.oauth = self.grant().and_then(|g| g.oauth.clone());
        if let Some(g) = self.grant() {
            if let Some(n) = g.narrowing.as_deref() {
                d.marks.insert("narrowed".into(), n.to_json());
            }
            if g.superseded {
                d.marks.insert("superseded".into(), serde_json::Value::Bool(true));
            }
        }
        d.ctx = self.ctx.clone();
        d
    }
}
