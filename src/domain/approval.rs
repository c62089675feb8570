//! Approvals (issue 20): a team's policy of which calls wait for a person's approval, on which
//! surface, and who may approve them. Pure: which operations exist is the caller's to say.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::{Value, json};

/// Where a call is made, as the policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    Mcp,
    Rest,
}

/// On which surfaces an operation needs approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SurfaceRule {
    Mcp,
    Rest,
    Both,
    None,
}

impl SurfaceRule {
    pub const ALL: &'static [SurfaceRule] = &[
        SurfaceRule::Mcp,
        SurfaceRule::Rest,
        SurfaceRule::Both,
        SurfaceRule::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SurfaceRule::Mcp => "mcp",
            SurfaceRule::Rest => "rest",
            SurfaceRule::Both => "both",
            SurfaceRule::None => "none",
        }
    }

    pub fn covers(self, surface: Surface) -> bool {
        matches!(
            (self, surface),
            (SurfaceRule::Both, _) | (SurfaceRule::Mcp, Surface::Mcp) | (SurfaceRule::Rest, Surface::Rest)
        )
    }
}

impl fmt::Display for SurfaceRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SurfaceRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SurfaceRule::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown surface rule `{s}` (expected mcp, rest, both or none)"))
    }
}

/// Who may approve a held call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApproverRule {
    /// The token's owner, or an owner or admin of the team.
    OwnerOrAdmin,
    /// An owner or admin of the team other than the token's owner.
    NotTheCaller,
}

impl ApproverRule {
    pub const ALL: &'static [ApproverRule] = &[ApproverRule::OwnerOrAdmin, ApproverRule::NotTheCaller];

    pub fn as_str(self) -> &'static str {
        match self {
            ApproverRule::OwnerOrAdmin => "owner-or-admin",
            ApproverRule::NotTheCaller => "not-the-caller",
        }
    }
}

impl fmt::Display for ApproverRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApproverRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ApproverRule::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown approver rule `{s}` (expected owner-or-admin or not-the-caller)"))
    }
}

/// The destructive MCP tools a new team holds for approval: the calls an eager agent must not
/// make alone. REST holds nothing by default (scripts) until an owner says so.
pub const HELD_ON_MCP_BY_DEFAULT: &[&str] = &[
    "ban_member",
    "kick_member",
    "cancel_subscription",
    "archive_project",
    "bulk_generate_access_codes",
];

/// A team's policy. `version` 0 is the defaults, never stored; every change stores the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalPolicy {
    /// Operations that need approval somewhere; an operation absent needs none.
    pub rules: BTreeMap<String, SurfaceRule>,
    pub approver: ApproverRule,
    pub version: i64,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        ApprovalPolicy {
            rules: HELD_ON_MCP_BY_DEFAULT
                .iter()
                .map(|op| ((*op).to_owned(), SurfaceRule::Mcp))
                .collect(),
            approver: ApproverRule::OwnerOrAdmin,
            version: 0,
        }
    }
}

impl ApprovalPolicy {
    pub fn needs_approval(&self, operation: &str, surface: Surface) -> bool {
        self.rule(operation).covers(surface)
    }

    pub fn rule(&self, operation: &str) -> SurfaceRule {
        self.rules.get(operation).copied().unwrap_or(SurfaceRule::None)
    }

    /// Sets one operation's rule (`none` removes it from the map).
    pub fn set(&mut self, operation: &str, rule: SurfaceRule) {
        match rule {
            SurfaceRule::None => self.rules.remove(operation),
            rule => self.rules.insert(operation.to_owned(), rule),
        };
    }

    /// The `rules` column: a JSON object operation → rule.
    pub fn rules_json(&self) -> String {
        let map: serde_json::Map<String, Value> = self
            .rules
            .iter()
            .map(|(op, rule)| (op.clone(), json!(rule.as_str())))
            .collect();
        Value::Object(map).to_string()
    }

    /// Reads a stored policy back; a row that does not parse is a bug or a tampered database.
    pub fn from_stored(rules: &str, approver: &str, version: i64) -> Result<Self, String> {
        let map: BTreeMap<String, String> =
            serde_json::from_str(rules).map_err(|e| format!("stored approval rules are not a JSON map: {e}"))?;
        let rules = map
            .into_iter()
            .map(|(op, rule)| Ok((op, rule.parse::<SurfaceRule>()?)))
            .collect::<Result<_, String>>()?;
        Ok(ApprovalPolicy {
            rules,
            approver: approver.parse()?,
            version,
        })
    }

    /// What the CLI prints and audit entries carry.
    pub fn to_json(&self) -> Value {
        let rules: serde_json::Map<String, Value> = self
            .rules
            .iter()
            .map(|(op, rule)| (op.clone(), json!(rule.as_str())))
            .collect();
        json!({"rules": rules, "approver": self.approver.as_str(), "version": self.version})
    }

    /// What an audit entry carries: the rules as a list, since the audit log redacts a value
    /// whose key looks like a secret (`bulk_generate_access_codes` ends in "access codes").
    pub fn to_audit_json(&self) -> Value {
        let rules: Vec<Value> = self
            .rules
            .iter()
            .map(|(op, rule)| json!({"operation": op, "surfaces": rule.as_str()}))
            .collect();
        json!({"rules": rules, "approver": self.approver.as_str(), "version": self.version})
    }
}

impl ApprovalPolicy {
    /// The next version: these rules set, and the approver rule when given.
    pub fn changed(&self, assignments: &[(String, SurfaceRule)], approver: Option<ApproverRule>) -> ApprovalPolicy {
        let mut after = self.clone();
        for (op, rule) in assignments {
            after.set(op, *rule);
        }
        if let Some(a) = approver {
            after.approver = a;
        }
        after.version = self.version + 1;
        after
    }

    /// What `after` stops holding that `self` held: an operation released on a surface, or an
    /// approver rule relaxed from `not-the-caller`. Empty when `after` is as strict or stricter.
    pub fn loosened_by(&self, after: &ApprovalPolicy) -> Vec<String> {
        let mut loosened = Vec::new();
        for (op, rule) in &self.rules {
            for surface in [Surface::Mcp, Surface::Rest] {
                if rule.covers(surface) && !after.needs_approval(op, surface) {
                    let name = if surface == Surface::Mcp { "mcp" } else { "rest" };
                    loosened.push(format!("{op} on {name}"));
                }
            }
        }
        if self.approver == ApproverRule::NotTheCaller && after.approver == ApproverRule::OwnerOrAdmin {
            loosened.push("the approver rule".to_owned());
        }
        loosened
    }
}

/// Whether a budget change loosens it: a budget removed or raised (`None` is no budget).
pub fn budget_loosens(from: Option<i64>, to: Option<i64>) -> bool {
    match (from, to) {
        (Some(_), None) => true,
        (Some(a), Some(b)) => b > a,
        (None, _) => false,
    }
}

/// Parses `OPERATION=mcp|rest|both|none`; `is_operation` says which operations can be held.
pub fn parse_assignment(text: &str, is_operation: impl Fn(&str) -> bool) -> Result<(String, SurfaceRule), String> {
    let (op, rule) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not OPERATION=mcp|rest|both|none"))?;
    let op = op.trim();
    if !is_operation(op) {
        return Err(format!("`{op}` is not an operation that can be held for approval"));
    }
    Ok((op.to_owned(), rule.trim().parse()?))
}

/// Whether a person may approve a held call: their role must be able to make the call itself,
/// and the team's approver rule must name them (the token's owner, or an owner or admin of the
/// team; under `not-the-caller`, an owner or admin other than the token's owner). The reason
/// when not.
pub fn may_approve(
    rule: ApproverRule,
    is_token_owner: bool,
    role: crate::domain::role::Role,
    needs: Option<crate::domain::ability::Ability>,
) -> Result<(), &'static str> {
    use crate::domain::role::Role;
    let manages = matches!(role, Role::Owner | Role::Admin);
    if needs.is_some_and(|a| !role.holds(a)) {
        return Err("your role could not make this call yourself, so you cannot approve it");
    }
    match rule {
        ApproverRule::OwnerOrAdmin if is_token_owner || manages => Ok(()),
        ApproverRule::OwnerOrAdmin => Err("only the token's owner or an owner or admin of the team can approve it"),
        ApproverRule::NotTheCaller if is_token_owner => {
            Err("the team requires someone other than the token's owner to approve its calls")
        }
        ApproverRule::NotTheCaller if manages => Ok(()),
        ApproverRule::NotTheCaller => Err("only an owner or admin of the team can approve it"),
    }
}

/// Whether a person may deny a held call: denying is always safe, so the token's owner may, and
/// any owner or admin of the team.
pub fn may_deny(is_token_owner: bool, role: crate::domain::role::Role) -> bool {
    use crate::domain::role::Role;
    is_token_owner || matches!(role, Role::Owner | Role::Admin)
}

/// Why a call was held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// The team's policy holds the operation on this surface.
    Policy,
    /// The token's budget of the operation is spent for the rolling 24 h.
    Budget,
}

impl Hold {
    pub fn as_str(self) -> &'static str {
        match self {
            Hold::Policy => "policy",
            Hold::Budget => "budget",
        }
    }
}

/// Where an approval request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Pending,
    Granted,
    Denied,
    Expired,
    Used,
    Voided,
}

impl Status {
    pub const ALL: &'static [Status] = &[
        Status::Pending,
        Status::Granted,
        Status::Denied,
        Status::Expired,
        Status::Used,
        Status::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Granted => "granted",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Used => "used",
            Status::Voided => "voided",
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown approval status `{s}`"))
    }
}

/// Why an approval cannot be used (`APPROVAL_INVALID`'s `reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    Expired,
    Denied,
    Used,
    OtherArguments,
    OtherCaller,
    PolicyChanged,
    CallerVoided,
}

impl Invalid {
    pub fn as_str(self) -> &'static str {
        match self {
            Invalid::Expired => "expired",
            Invalid::Denied => "denied",
            Invalid::Used => "used",
            Invalid::OtherArguments => "other_arguments",
            Invalid::OtherCaller => "other_caller",
            Invalid::PolicyChanged => "policy_changed",
            Invalid::CallerVoided => "caller_voided",
        }
    }

    /// One sentence for the caller.
    pub fn explain(self) -> &'static str {
        match self {
            Invalid::Expired => "The approval for this call expired before the call was repeated.",
            Invalid::Denied => "A person denied this call.",
            Invalid::Used => "The approval for this call was used already: one approval runs a call once.",
            Invalid::OtherArguments => "The approval was given for other arguments.",
            Invalid::OtherCaller => "The approval was given to another token.",
            Invalid::PolicyChanged => "The team's approval policy changed since the approval was requested.",
            Invalid::CallerVoided => {
                "The approval was voided: the token was revoked, or its owner's role lowered or removed."
            }
        }
    }
}

/// An argument object in canonical form: keys sorted at every level, nothing else changed. The
/// arguments are the operation's typed arguments written back (every field present, `null`
/// where not given), so two calls are the same call exactly when their canonical texts are equal.
pub fn canonical(args: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(args).to_string()
}

/// What an approval is bound to: SHA-256 (hex) of {token, operation, canonical arguments, policy
/// version}, each part length-prefixed so no two different tuples share an input.
pub fn digest(token_id: &str, operation: &str, canonical_args: &str, policy_version: i64) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in [token_id, operation, canonical_args, &policy_version.to_string()] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(op: &str) -> bool {
        ["kick_member", "create_project"].contains(&op)
    }

    #[test]
    fn a_new_team_holds_the_destructive_tools_on_mcp_only() {
        let p = ApprovalPolicy::default();
        for op in HELD_ON_MCP_BY_DEFAULT {
            assert!(p.needs_approval(op, Surface::Mcp), "{op}");
            assert!(!p.needs_approval(op, Surface::Rest), "{op}");
        }
        assert!(!p.needs_approval("create_project", Surface::Mcp));
        assert_eq!(p.approver, ApproverRule::OwnerOrAdmin);
        assert_eq!(p.version, 0);
    }

    #[test]
    fn each_rule_covers_its_surfaces() {
        let mut p = ApprovalPolicy::default();
        for (rule, mcp, rest) in [
            (SurfaceRule::Mcp, true, false),
            (SurfaceRule::Rest, false, true),
            (SurfaceRule::Both, true, true),
            (SurfaceRule::None, false, false),
        ] {
            p.set("kick_member", rule);
            assert_eq!(p.needs_approval("kick_member", Surface::Mcp), mcp, "{rule}");
            assert_eq!(p.needs_approval("kick_member", Surface::Rest), rest, "{rule}");
            assert_eq!(p.rule("kick_member"), rule);
        }
        assert!(!p.rules.contains_key("kick_member"), "none is stored as absence");
    }

    #[test]
    fn assignments_parse_against_the_known_operations() {
        assert_eq!(
            parse_assignment("kick_member=both", known),
            Ok(("kick_member".to_owned(), SurfaceRule::Both))
        );
        assert!(
            parse_assignment("nuke_team=mcp", known)
                .unwrap_err()
                .contains("nuke_team")
        );
        assert!(
            parse_assignment("kick_member=always", known)
                .unwrap_err()
                .contains("always")
        );
        assert!(parse_assignment("kick_member", known).is_err());
        assert!(parse_assignment("=mcp", known).is_err());
    }

    #[test]
    fn rules_and_approvers_round_trip_through_their_names() {
        for r in SurfaceRule::ALL {
            assert_eq!(r.as_str().parse::<SurfaceRule>(), Ok(*r));
        }
        for a in ApproverRule::ALL {
            assert_eq!(a.as_str().parse::<ApproverRule>(), Ok(*a));
        }
        assert!("owner".parse::<ApproverRule>().is_err());
        let mut p = ApprovalPolicy::default();
        p.set("create_project", SurfaceRule::Rest);
        p.approver = ApproverRule::NotTheCaller;
        p.version = 3;
        assert_eq!(ApprovalPolicy::from_stored(&p.rules_json(), "not-the-caller", 3), Ok(p));
        assert!(ApprovalPolicy::from_stored(r#"{"kick_member":"sometimes"}"#, "owner-or-admin", 1).is_err());
    }

    #[test]
    fn canonical_arguments_ignore_key_order_only() {
        let a = json!({"member_id": "m", "reason": null, "nested": {"b": 1, "a": [{"y": 1, "x": 2}]}});
        let b = json!({"nested": {"a": [{"x": 2, "y": 1}], "b": 1}, "reason": null, "member_id": "m"});
        assert_eq!(canonical(&a), canonical(&b));
        let c = json!({"member_id": "m", "reason": "spam", "nested": {"b": 1, "a": [{"y": 1, "x": 2}]}});
        assert_ne!(canonical(&a), canonical(&c));
    }

    #[test]
    fn the_digest_binds_every_part() {
        let d = digest("tok", "kick_member", "{}", 1);
        assert_eq!(d.len(), 64);
        assert_ne!(d, digest("tok2", "kick_member", "{}", 1));
        assert_ne!(d, digest("tok", "ban_member", "{}", 1));
        assert_ne!(d, digest("tok", "kick_member", "{\"a\":1}", 1));
        assert_ne!(d, digest("tok", "kick_member", "{}", 2));
        // Length prefixes: moving a boundary changes the digest.
        assert_ne!(digest("ab", "c", "{}", 1), digest("a", "bc", "{}", 1));
    }

    #[test]
    fn who_may_approve_follows_the_rule_and_the_role() {
        use crate::domain::ability::Ability;
        use crate::domain::role::Role;
        let kick = Some(Ability::MemberUpdate);
        let rule = ApproverRule::OwnerOrAdmin;
        assert!(
            may_approve(rule, true, Role::Manager, kick).is_ok(),
            "the token's owner"
        );
        assert!(may_approve(rule, false, Role::Admin, kick).is_ok());
        assert!(may_approve(rule, false, Role::Owner, kick).is_ok());
        assert!(
            may_approve(rule, false, Role::Manager, kick).is_err(),
            "another manager"
        );
        assert!(may_approve(rule, false, Role::Viewer, kick).is_err());
        assert!(
            may_approve(rule, true, Role::Viewer, kick).is_err(),
            "a viewer cannot kick"
        );
        let rule = ApproverRule::NotTheCaller;
        assert!(
            may_approve(rule, true, Role::Owner, kick).is_err(),
            "not the token's owner"
        );
        assert!(may_approve(rule, false, Role::Admin, kick).is_ok());
        assert!(may_approve(rule, false, Role::Manager, kick).is_err());
        // A manager's role does not hold project:delete: nor can they approve a call needing it.
        let delete = Some(Ability::ProjectDelete);
        assert!(may_approve(ApproverRule::OwnerOrAdmin, true, Role::Manager, delete).is_err());
        assert!(may_deny(true, Role::Viewer));
        assert!(!may_deny(false, Role::Manager));
    }

    #[test]
    fn loosening_is_releasing_a_hold_or_relaxing_the_approver() {
        let before = ApprovalPolicy::default();
        let mut after = before.clone();
        after.set("create_project", SurfaceRule::Both);
        after.set("kick_member", SurfaceRule::Both);
        after.approver = ApproverRule::NotTheCaller;
        assert!(before.loosened_by(&after).is_empty(), "stricter everywhere");
        let mut looser = after.clone();
        looser.set("kick_member", SurfaceRule::Rest);
        looser.approver = ApproverRule::OwnerOrAdmin;
        assert_eq!(
            after.loosened_by(&looser),
            ["kick_member on mcp".to_owned(), "the approver rule".to_owned()]
        );
        assert!(budget_loosens(Some(2), None));
        assert!(budget_loosens(Some(2), Some(3)));
        assert!(!budget_loosens(Some(2), Some(1)));
        assert!(!budget_loosens(None, Some(5)));
    }
}
