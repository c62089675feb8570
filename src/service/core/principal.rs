//! Who is calling. A principal is resolved on every request and never cached across requests:
//! from a token (REST, MCP) or, for the dashboard, from a signed-in person's session.

use crate::domain::ability::{Ability, AbilitySet};
use crate::domain::audit::ActorKind;
use crate::domain::role::Role;

#[derive(Clone, Debug)]
pub struct Principal {
    pub team_id: String,
    pub user_id: String,
    pub user_email: String,
    pub user_name: String,
    /// The user's role in the team, as it is now.
    pub role: Role,
    /// Which surface the call came through.
    pub actor: ActorKind,
    /// The token the call was made with; `None` for a person signed in to the dashboard.
    pub token: Option<TokenGrant>,
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
}

impl Principal {
    /// Effective permission: what the owner's role holds now, ∩ the token's abilities when the
    /// call carries a token.
    pub fn can(&self, ability: Ability) -> bool {
        self.can_as(self.role, ability)
    }

    /// Whether the caller could do it holding `role` (the role read again under the chain's lock).
    pub fn can_as(&self, role: crate::domain::role::Role, ability: Ability) -> bool {
        role.holds(ability) && self.token.as_ref().is_none_or(|t| t.abilities.contains(&ability))
    }

    pub fn effective_abilities(&self) -> AbilitySet {
        Ability::ALL.iter().copied().filter(|a| self.can(*a)).collect()
    }

    pub fn token_id(&self) -> Option<&str> {
        self.token.as_ref().map(|t| t.id.as_str())
    }

    /// The projects the caller is limited to (`None`: every project of the team).
    pub fn project_ids(&self) -> Option<&[String]> {
        self.token.as_ref().and_then(|t| t.project_ids.as_deref())
    }

    pub fn sees_project(&self, project_id: &str) -> bool {
        self.project_ids().is_none_or(|ids| ids.iter().any(|p| p == project_id))
    }

    /// Whose `Idempotency-Key`s these are: the token's, or the signed-in user's.
    pub fn idempotency_owner(&self) -> String {
        match self.token_id() {
            Some(id) => id.to_owned(),
            None => format!("user:{}", self.user_id),
        }
    }
}
