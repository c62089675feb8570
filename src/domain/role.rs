//! Team roles (SPEC §3) and the abilities each holds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ability::{Ability, AbilitySet};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Viewer,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Owner, Role::Admin, Role::Manager, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role is lower than `other` (owner > admin > manager > viewer).
    pub fn is_below(self, other: Role) -> bool {
        let rank = |r: Role| Role::ALL.iter().position(|x| *x == r).unwrap_or(usize::MAX);
        rank(self) > rank(other)
    }

    pub fn holds(self, ability: Ability) -> bool {
        match self {
            Role::Owner | Role::Admin => true,
            Role::Manager => {
                !matches!(ability, Ability::ProjectDelete | Ability::RoleViewAny) && !ability.is_admin_only()
            }
            Role::Viewer => ability.is_read_only(),
        }
    }

    pub fn abilities(self) -> AbilitySet {
        Ability::ALL.iter().copied().filter(|a| self.holds(*a)).collect()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}` (expected owner, admin, manager or viewer)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_hold_what_the_spec_says() {
        assert_eq!(Role::Owner.abilities().len(), Ability::ALL.len());
        assert!(!Role::Manager.holds(Ability::ProjectDelete));
        assert!(!Role::Manager.holds(Ability::RoleViewAny));
        assert!(Role::Manager.holds(Ability::ProjectUpdate));
        assert!(Role::Viewer.holds(Ability::McpFull));
        assert!(Role::Viewer.holds(Ability::ActivityRead));
        assert!(!Role::Viewer.holds(Ability::MemberUpdate));
        for a in [Ability::TokenViewAny, Ability::TokenRevokeAny] {
            assert!(Role::Owner.holds(a) && Role::Admin.holds(a), "{a}");
            assert!(!Role::Manager.holds(a) && !Role::Viewer.holds(a), "{a}");
        }
    }
}
