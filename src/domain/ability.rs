//! The ability catalog of SPEC §3, as data. There is no wildcard.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! abilities {
    ($( $variant:ident => $name:literal, $group:literal, $write:literal, $desc:literal; )*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Ability { $( $variant, )* }

        impl Ability {
            pub const ALL: &'static [Ability] = &[ $( Ability::$variant, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Ability::$variant => $name, )* }
            }
            pub fn group(self) -> &'static str {
                match self { $( Ability::$variant => $group, )* }
            }
            /// Whether holding this ability permits changing state.
            pub fn permits_writes(self) -> bool {
                match self { $( Ability::$variant => $write, )* }
            }
            pub fn description(self) -> &'static str {
                match self { $( Ability::$variant => $desc, )* }
            }
        }
    };
}

abilities! {
    McpFull => "mcp:full", "gate", false, "May speak MCP at all; grants nothing else.";
    ActivityRead => "activity:read", "audit", false, "Read the team's activity log.";
    TeamViewAny => "team:view-any", "team", false, "List the token's team.";
    TeamView => "team:view", "team", false, "Read the token's team.";
    TeamMemberViewAny => "team-member:view-any", "team", false, "List the people in the team and their roles.";
    RoleViewAny => "role:view-any", "team", false, "List the roles and the abilities each holds.";
    ProjectViewAny => "project:view-any", "project", false, "List projects.";
    ProjectView => "project:view", "project", false, "Read a project.";
    ProjectCreate => "project:create", "project", true, "Create a project.";
    ProjectUpdate => "project:update", "project", true, "Rename, describe or archive a project.";
    ProjectDelete => "project:delete", "project", true, "Delete a project.";
    ProjectResourceViewAny => "project-resource:view-any", "resources", false, "List a project's chats.";
    ProjectResourceView => "project-resource:view", "resources", false, "Read a chat.";
    ProjectResourceCreate => "project-resource:create", "resources", true, "Add a chat to a project.";
    ProjectResourceUpdate => "project-resource:update", "resources", true, "Change a chat.";
    PlanViewAny => "project-subscription-plan:view-any", "plans", false, "List a project's plans.";
    PlanView => "project-subscription-plan:view", "plans", false, "Read a plan.";
    PlanCreate => "project-subscription-plan:create", "plans", true, "Create a plan.";
    PlanUpdate => "project-subscription-plan:update", "plans", true, "Publish or unpublish a plan.";
    MemberViewAny => "project-user:view-any", "members", false, "List and search a project's members.";
    MemberView => "project-user:view", "members", false, "Read a member and their subscriptions.";
    MemberUpdate => "project-user:update", "members", true, "Ban, unban or kick a member.";
    SubscriptionViewAny => "project-subscription:view-any", "subscriptions", false, "List subscriptions and payments.";
    SubscriptionUpdate => "project-subscription:update", "subscriptions", true, "Cancel a subscription.";
    AccessCodeViewAny => "project-access-code:view-any", "access codes", false, "List access codes, masked.";
    AccessCodeCreate => "project-access-code:create", "access codes", true, "Generate access codes in bulk.";
    DistributionRead => "distribution:read", "distribution", false, "Read a project's public portal URL.";
    TokenViewAny => "token:view-any", "tokens", false, "List every token of the team: owners, abilities, last use (never secrets).";
    TokenRevokeAny => "token:revoke-any", "tokens", true, "Revoke any token of the team.";
}

impl Ability {
    /// Abilities over other people's credentials: only owners and admins hold them, and nobody
    /// is offered them by default.
    pub fn is_admin_only(self) -> bool {
        matches!(self, Ability::TokenViewAny | Ability::TokenRevokeAny)
    }

    /// Read-only abilities: the ones a `viewer` holds (`view-any`, `view`, `:read`, and the MCP
    /// gate), and the default of a consent. Reading the team's tokens is not among them: it
    /// permits no write, but it shows who holds what, which is the owners' and admins' business.
    pub fn is_read_only(self) -> bool {
        !self.permits_writes() && !self.is_admin_only()
    }
}

impl fmt::Display for Ability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown ability `{0}`")]
pub struct UnknownAbility(pub String);

impl FromStr for Ability {
    type Err = UnknownAbility;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ability::ALL
            .iter()
            .copied()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAbility(s.to_owned()))
    }
}

impl Serialize for Ability {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Ability {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An ability's name, one of the catalog's.
impl schemars::JsonSchema for Ability {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Ability".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Ability::ALL.iter().map(|a| a.as_str()).collect();
        schemars::json_schema!({"type": "string", "enum": names})
    }
}

pub type AbilitySet = BTreeSet<Ability>;

/// `/abilities.json`: the catalog with descriptions and whether each permits writes.
pub fn catalog_json() -> serde_json::Value {
    let items: Vec<_> = Ability::ALL
        .iter()
        .map(|a| {
            serde_json::json!({
                "name": a.as_str(),
                "group": a.group(),
                "description": a.description(),
                "permits_writes": a.permits_writes(),
            })
        })
        .collect();
    serde_json::json!({ "data": items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ability_round_trips_through_its_name() {
        for a in Ability::ALL {
            assert_eq!(a.as_str().parse::<Ability>().unwrap(), *a);
        }
        assert!("*".parse::<Ability>().is_err());
        assert!("project:*".parse::<Ability>().is_err());
    }

    #[test]
    fn writes_are_exactly_the_create_update_delete_revoke_abilities() {
        for a in Ability::ALL {
            let name = a.as_str();
            let looks_write = [":create", ":update", ":delete", ":revoke-any"]
                .iter()
                .any(|s| name.ends_with(s));
            assert_eq!(a.permits_writes(), looks_write, "{name}");
        }
    }
}
