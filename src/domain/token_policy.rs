//! A team's token policy (issue 21, item 3): how long a new token may live and whether it must
//! expire, which abilities people of each role may put on a token, whether unused tokens expire,
//! and whether pasted tokens may speak MCP. Every knob is off by default (the seed's "tokens do
//! not expire" stays true until a team says otherwise).
//!
//! Applied at mint (a token that breaks it is not minted: `POLICY_VIOLATION`), at each call (the
//! unused rule and the MCP rule), and to tokens minted before the policy: a live token that breaks
//! a policy made after its mint gets an expiry of at most [`NOTICE_MS`] from when the policy is
//! seen, its owner is told at once, and it keeps working until then.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ability::Ability;
use super::role::Role;
use super::time::DAY_MS;

/// How long a token that breaks a policy made after its mint keeps working once its owner is
/// told; and the least time an unused token has after the unused rule is turned on.
pub const NOTICE_MS: i64 = 7 * DAY_MS;

/// The unused rule's shortest period: a day.
pub const MIN_UNUSED_MS: i64 = DAY_MS;

/// Whether a token minted by a person (pasted into a client's configuration) may be used on
/// `/mcp`; an OAuth-connected app's token always may.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PastedTokens {
    #[default]
    Allow,
    Deny,
}

impl PastedTokens {
    pub fn as_str(self) -> &'static str {
        match self {
            PastedTokens::Allow => "allow",
            PastedTokens::Deny => "deny",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(PastedTokens::Allow),
            "deny" => Ok(PastedTokens::Deny),
            other => Err(format!("`{other}` is not allow or deny")),
        }
    }
}

/// A team's policy. `Default` is no policy at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TokenPolicy {
    /// The longest a new token may live.
    pub max_lifetime_ms: Option<i64>,
    /// Whether a new token must have an expiry.
    pub require_expiry: bool,
    /// The abilities people of a role may put on a token; a role not listed may put any ability
    /// it holds.
    pub role_abilities: BTreeMap<Role, Vec<Ability>>,
    /// Tokens not used for this long expire.
    pub expire_unused_ms: Option<i64>,
    /// When the unused rule was last turned on or changed: no token expires by it sooner than
    /// [`NOTICE_MS`] after.
    pub unused_since: Option<i64>,
    pub mcp_pasted_tokens: PastedTokens,
}

/// One rule a token (or a token about to be minted) breaks: which policy, its limit, and the
/// sentence a person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `max_lifetime`, `require_expiry`, `role_abilities` or `mcp_pasted_tokens`.
    pub policy: &'static str,
    /// The limit as configured: `90d`, `true`, `manager=project:view,…`, `deny`.
    pub limit: String,
    pub message: String,
}

/// What a token holds, as the policy sees it.
pub struct TokenShape<'a> {
    pub role: Role,
    pub abilities: &'a [Ability],
    /// Its lifetime from mint (`None`: it does not expire).
    pub lifetime_ms: Option<i64>,
}

impl TokenPolicy {
    pub fn is_default(&self) -> bool {
        *self == TokenPolicy::default()
    }

    /// The abilities a person of `role` may put on a token under this policy.
    pub fn allowed_for(&self, role: Role) -> Vec<Ability> {
        let held = |a: &Ability| role.holds(*a);
        match self.role_abilities.get(&role) {
            Some(list) => list.iter().copied().filter(held).collect(),
            None => Ability::ALL.iter().copied().filter(held).collect(),
        }
    }

    /// The first rule a token of this shape breaks, if any (lifetime first, then abilities).
    pub fn check(&self, t: &TokenShape<'_>) -> Option<Violation> {
        self.violations(t).into_iter().next()
    }

    /// Every rule a token of this shape breaks: its lifetime's (at most one), then its abilities'.
    pub fn violations(&self, t: &TokenShape<'_>) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Some(v) = self.lifetime_violation(t) {
            out.push(v);
        }
        if let Some(v) = self.ability_violation(t) {
            out.push(v);
        }
        out
    }

    fn lifetime_violation(&self, t: &TokenShape<'_>) -> Option<Violation> {
        match (t.lifetime_ms, self.max_lifetime_ms) {
            (None, _) if self.require_expiry => {
                return Some(Violation {
                    policy: "require_expiry",
                    limit: "true".into(),
                    message: "the team's token policy requires an expiry".into(),
                });
            }
            (None, Some(max)) => {
                return Some(Violation {
                    policy: "max_lifetime",
                    limit: format_duration(max),
                    message: format!(
                        "the team's token policy allows tokens of at most {}: choose an expiry",
                        format_duration(max)
                    ),
                });
            }
            (Some(life), Some(max)) if life > max => {
                return Some(Violation {
                    policy: "max_lifetime",
                    limit: format_duration(max),
                    message: format!(
                        "the team's token policy allows tokens of at most {} (this one: {})",
                        format_duration(max),
                        format_duration(life)
                    ),
                });
            }
            _ => {}
        }
        None
    }

    fn ability_violation(&self, t: &TokenShape<'_>) -> Option<Violation> {
        if let Some(list) = self.role_abilities.get(&t.role)
            && let Some(extra) = t.abilities.iter().find(|a| !list.contains(a))
        {
            return Some(Violation {
                policy: "role_abilities",
                limit: role_rule(t.role, list),
                message: format!(
                    "the team's token policy does not let a {} put `{extra}` on a token",
                    t.role
                ),
            });
        }
        None
    }

    /// When a token not used since `last_use` (its mint when never used) expires under the unused
    /// rule: never sooner than [`NOTICE_MS`] after the rule was turned on.
    pub fn unused_deadline(&self, last_use: i64) -> Option<i64> {
        let n = self.expire_unused_ms?;
        let floor = self.unused_since.map_or(i64::MIN, |s| s.saturating_add(NOTICE_MS));
        Some(last_use.saturating_add(n).max(floor))
    }

    /// The violation of a pasted token speaking MCP, when the team denies it.
    pub fn pasted_on_mcp(&self) -> Option<Violation> {
        (self.mcp_pasted_tokens == PastedTokens::Deny).then(|| Violation {
            policy: "mcp_pasted_tokens",
            limit: "deny".into(),
            message: "the team's token policy lets only apps connected with OAuth use MCP: connect the client through its OAuth sign-in instead of pasting a token".into(),
        })
    }

    /// `--role-abilities` as given on the command line, e.g. `manager=project:view,member:view`.
    pub fn parse_role_rule(s: &str) -> Result<(Role, Vec<Ability>), String> {
        let (role, list) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not ROLE=ABILITY,ABILITY,…"))?;
        let role: Role = role.trim().parse()?;
        let mut abilities = Vec::new();
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let a: Ability = a.parse().map_err(|e: super::ability::UnknownAbility| e.to_string())?;
            if !role.holds(a) {
                return Err(format!("the {role} role does not hold `{a}`"));
            }
            if !abilities.contains(&a) {
                abilities.push(a);
            }
        }
        abilities.sort();
        Ok((role, abilities))
    }

    /// The stored `role_abilities` column: `{"manager": ["project:view", …]}`.
    pub fn role_abilities_stored(&self) -> Option<String> {
        (!self.role_abilities.is_empty()).then(|| serde_json::to_string(&self.role_abilities).unwrap_or_default())
    }

    pub fn role_abilities_from_stored(text: Option<&str>) -> Result<BTreeMap<Role, Vec<Ability>>, String> {
        match text {
            None => Ok(BTreeMap::new()),
            Some(t) => serde_json::from_str(t).map_err(|e| format!("stored role abilities: {e}")),
        }
    }

    /// The policy as JSON, for audit entries, the CLI and the dashboard.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "max_lifetime": self.max_lifetime_ms.map(format_duration),
            "require_expiry": self.require_expiry,
            "role_abilities": self.role_abilities,
            "expire_unused": self.expire_unused_ms.map(format_duration),
            "mcp_pasted_tokens": self.mcp_pasted_tokens.as_str(),
        })
    }
}

fn role_rule(role: Role, list: &[Ability]) -> String {
    let names: Vec<&str> = list.iter().map(|a| a.as_str()).collect();
    format!("{role}={}", names.join(","))
}

/// `90d`, `12h`, `45m`, `30s`: the largest unit that divides it.
pub fn format_duration(ms: i64) -> String {
    const UNITS: [(i64, &str); 4] = [(DAY_MS, "d"), (3_600_000, "h"), (60_000, "m"), (1_000, "s")];
    for (unit, name) in UNITS {
        if ms % unit == 0 && ms >= unit {
            return format!("{}{name}", ms / unit);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(role: Role, abilities: &[Ability], lifetime_ms: Option<i64>) -> TokenShape<'_> {
        TokenShape {
            role,
            abilities,
            lifetime_ms,
        }
    }

    #[test]
    fn the_default_policy_allows_everything() {
        let p = TokenPolicy::default();
        assert!(
            p.check(&shape(Role::Manager, &[Ability::ProjectCreate], None))
                .is_none()
        );
        assert!(p.unused_deadline(0).is_none());
        assert!(p.pasted_on_mcp().is_none());
    }

    #[test]
    fn lifetime_rules_name_the_policy_and_the_limit() {
        let p = TokenPolicy {
            max_lifetime_ms: Some(90 * DAY_MS),
            ..TokenPolicy::default()
        };
        let v = p.check(&shape(Role::Owner, &[], Some(91 * DAY_MS))).unwrap();
        assert_eq!((v.policy, v.limit.as_str()), ("max_lifetime", "90d"));
        assert_eq!(p.check(&shape(Role::Owner, &[], None)).unwrap().policy, "max_lifetime");
        assert!(p.check(&shape(Role::Owner, &[], Some(90 * DAY_MS))).is_none());
        let p = TokenPolicy {
            require_expiry: true,
            ..TokenPolicy::default()
        };
        assert_eq!(
            p.check(&shape(Role::Owner, &[], None)).unwrap().policy,
            "require_expiry"
        );
        assert!(p.check(&shape(Role::Owner, &[], Some(3650 * DAY_MS))).is_none());
    }

    #[test]
    fn role_rules_limit_only_their_role() {
        let (role, list) = TokenPolicy::parse_role_rule("manager=project:view, project:view-any").unwrap();
        let p = TokenPolicy {
            role_abilities: BTreeMap::from([(role, list)]),
            ..TokenPolicy::default()
        };
        let v = p
            .check(&shape(
                Role::Manager,
                &[Ability::ProjectView, Ability::ProjectCreate],
                None,
            ))
            .unwrap();
        assert_eq!(v.policy, "role_abilities");
        assert!(v.limit.starts_with("manager="), "{}", v.limit);
        assert!(v.message.contains("project:create"));
        assert!(p.check(&shape(Role::Manager, &[Ability::ProjectView], None)).is_none());
        assert!(p.check(&shape(Role::Admin, &[Ability::ProjectCreate], None)).is_none());
        assert!(TokenPolicy::parse_role_rule("viewer=project:create").is_err());
        assert!(TokenPolicy::parse_role_rule("manager=nope").is_err());
        assert!(TokenPolicy::parse_role_rule("boss=project:view").is_err());
    }

    #[test]
    fn the_unused_rule_gives_notice_after_it_is_turned_on() {
        let p = TokenPolicy {
            expire_unused_ms: Some(30 * DAY_MS),
            unused_since: Some(100 * DAY_MS),
            ..TokenPolicy::default()
        };
        // Unused for a year when the rule came: 7 days from then.
        assert_eq!(p.unused_deadline(0), Some(107 * DAY_MS));
        // Used recently: 30 days from its last use.
        assert_eq!(p.unused_deadline(99 * DAY_MS), Some(129 * DAY_MS));
    }

    #[test]
    fn durations_print_in_their_largest_unit() {
        assert_eq!(format_duration(90 * DAY_MS), "90d");
        assert_eq!(format_duration(36 * 3_600_000), "36h");
        assert_eq!(format_duration(1_500), "1500ms");
    }
}
