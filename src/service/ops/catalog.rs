//! The operation catalog: every operation of SPEC §5, gathered from the resource modules that
//! define them. REST routes, `/openapi.json`, the MCP tools and the test matrix all come from
//! this list, so an operation cannot exist on one surface and be missing from another.

use super::{
    access_codes, activity, approvals, jobs, members, plans, projects, resources, subscriptions, team_tokens, teams,
    tokens,
};
use crate::service::core::op::DynOp;

/// Each resource module's operations, in the order the catalog lists them.
const MODULES: &[&[&dyn DynOp]] = &[
    tokens::OPS,
    teams::OPS,
    team_tokens::OPS,
    projects::OPS,
    resources::OPS,
    plans::OPS,
    members::OPS,
    subscriptions::OPS,
    access_codes::OPS,
    jobs::OPS,
    activity::OPS,
    approvals::OPS,
];

/// Every operation.
pub fn all() -> impl Iterator<Item = &'static dyn DynOp> {
    MODULES.iter().flat_map(|ops| ops.iter().copied())
}

/// Whether the operation whose audit `event` this is changes state (for showing an entry).
pub fn writes(event: &str) -> bool {
    all().any(|op| op.spec().event == event && op.spec().is_write())
}

/// Whether an operation can be held for approval or budgeted: a write of the catalog (a read
/// changes nothing to approve) — except a token revoking itself, which nothing may ever stand
/// in front of (a leaked token's holder must be able to kill it at once, as with rate limits).
pub fn can_be_held(operation: &str) -> bool {
    find(operation).is_some_and(|op| op.spec().is_write() && op.spec().name != "revoke_current_token")
}

/// The operation of this name, if any.
pub fn find(name: &str) -> Option<&'static dyn DynOp> {
    all().find(|op| op.spec().name == name)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::all;

    #[test]
    fn names_routes_and_subject_arguments_are_consistent() {
        let mut names = HashSet::new();
        let mut routes = HashSet::new();
        for op in all() {
            let spec = op.spec();
            assert!(names.insert(spec.name), "{} is listed twice", spec.name);
            assert!(
                routes.insert((spec.method, spec.path)),
                "{} {} twice",
                spec.method,
                spec.path
            );
            let schema = op.args_schema();
            let props = schema["properties"].as_object().cloned().unwrap_or_default();
            for param in spec.path_params() {
                assert!(props.contains_key(param), "{}: {param} is not an argument", spec.name);
            }
            if let Some(arg) = spec.subject_arg {
                assert!(
                    props.contains_key(arg),
                    "{}: subject {arg} is not an argument",
                    spec.name
                );
            }
            assert_eq!(
                schema["additionalProperties"], false,
                "{} accepts unknown arguments",
                spec.name
            );
        }
        assert_eq!(names.len(), 36);
    }
}
