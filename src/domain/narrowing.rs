//! Narrowing one MCP connection without minting a token (issue 21, item 7): the headers
//! `X-MemberPass-Read-Only: true`, `X-MemberPass-Tools: a,b` and `X-MemberPass-Exclude-Tools: c`
//! take tools away from what the token may list and call on this connection — never add any. A
//! name that is not a tool is refused (naming it); a real tool beyond the token simply stays
//! unavailable.

use std::collections::BTreeSet;

use serde_json::{Value, json};

pub const READ_ONLY: &str = "x-memberpass-read-only";
pub const TOOLS: &str = "x-memberpass-tools";
pub const EXCLUDE_TOOLS: &str = "x-memberpass-exclude-tools";

/// What a connection's headers take away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Narrowing {
    /// Only tools that change nothing.
    pub read_only: bool,
    /// Only these tools (when given).
    pub tools: Option<BTreeSet<String>>,
    /// Never these tools.
    pub exclude: BTreeSet<String>,
}

impl Narrowing {
    /// Reads the three headers (each given at most once: `values` holds every occurrence);
    /// `is_tool` says which names exist. `None` when no header narrows anything.
    pub fn from_headers<'a>(
        values: impl Fn(&str) -> Vec<&'a str>,
        is_tool: impl Fn(&str) -> bool,
    ) -> Result<Option<Narrowing>, String> {
        let once = |name: &str| -> Result<Option<&'a str>, String> {
            match values(name).as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(*one)),
                _ => Err(format!("{}: send it at most once", display(name))),
            }
        };
        let read_only = match once(READ_ONLY)?.map(|v| v.trim().to_ascii_lowercase()) {
            None => false,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(_) => return Err(format!("{}: must be true or false", display(READ_ONLY))),
        };
        let names = |header: &str| -> Result<Option<BTreeSet<String>>, String> {
            let Some(list) = once(header)? else { return Ok(None) };
            let mut set = BTreeSet::new();
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !is_tool(name) {
                    let shown: String = name.chars().take(64).collect();
                    return Err(format!("{}: `{shown}` is not a tool", display(header)));
                }
                set.insert(name.to_owned());
            }
            Ok(Some(set))
        };
        let tools = names(TOOLS)?;
        let exclude = names(EXCLUDE_TOOLS)?.unwrap_or_default();
        if !read_only && tools.is_none() && exclude.is_empty() {
            return Ok(None);
        }
        Ok(Some(Narrowing {
            read_only,
            tools,
            exclude,
        }))
    }

    /// Whether this connection may list and call the tool `name` (`writes`: it changes state).
    pub fn allows(&self, name: &str, writes: bool) -> bool {
        !(self.read_only && writes)
            && self.tools.as_ref().is_none_or(|t| t.contains(name))
            && !self.exclude.contains(name)
    }

    /// What the call's audit entry records: `{read_only, tools, exclude_tools}`.
    pub fn to_json(&self) -> Value {
        json!({
            "read_only": self.read_only,
            "tools": self.tools,
            "exclude_tools": self.exclude,
        })
    }

    /// Why a tool is not available, for the caller.
    pub fn why_not(&self, name: &str, writes: bool) -> String {
        if self.read_only && writes {
            format!("`{name}` changes data and this connection is read-only (X-MemberPass-Read-Only)")
        } else if self.exclude.contains(name) {
            format!("`{name}` is excluded on this connection (X-MemberPass-Exclude-Tools)")
        } else {
            format!("`{name}` is not among this connection's tools (X-MemberPass-Tools)")
        }
    }
}

/// A header's name as people write it.
fn display(name: &str) -> &'static str {
    match name {
        READ_ONLY => "X-MemberPass-Read-Only",
        TOOLS => "X-MemberPass-Tools",
        _ => "X-MemberPass-Exclude-Tools",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(headers: &[(&'static str, &'static str)]) -> Result<Option<Narrowing>, String> {
        Narrowing::from_headers(
            |name| headers.iter().filter(|(h, _)| *h == name).map(|(_, v)| *v).collect(),
            |t| ["list_projects", "create_project", "kick_member"].contains(&t),
        )
    }

    #[test]
    fn no_header_narrows_nothing() {
        assert_eq!(parse(&[]), Ok(None));
        assert_eq!(parse(&[(READ_ONLY, "false")]), Ok(None));
        assert_eq!(parse(&[(EXCLUDE_TOOLS, " , ")]), Ok(None));
    }

    #[test]
    fn headers_only_take_away() {
        let n = parse(&[(READ_ONLY, "TRUE"), (TOOLS, "list_projects, create_project")])
            .unwrap()
            .unwrap();
        assert!(n.allows("list_projects", false));
        assert!(!n.allows("create_project", true), "read-only wins");
        assert!(!n.allows("kick_member", true));
        let n = parse(&[(EXCLUDE_TOOLS, "kick_member")]).unwrap().unwrap();
        assert!(n.allows("create_project", true) && !n.allows("kick_member", true));
        // An empty allow list allows nothing.
        let n = parse(&[(TOOLS, "")]).unwrap().unwrap();
        assert!(!n.allows("list_projects", false));
    }

    #[test]
    fn unknown_names_repeated_headers_and_bad_flags_are_refused() {
        let e = parse(&[(TOOLS, "list_projects,drop_tables")]).unwrap_err();
        assert!(e.contains("`drop_tables` is not a tool"), "{e}");
        let e = parse(&[(TOOLS, "list_projects"), (TOOLS, "kick_member")]).unwrap_err();
        assert!(e.starts_with("X-MemberPass-Tools: send it at most once"), "{e}");
        assert!(parse(&[(READ_ONLY, "yes")]).is_err());
        let long = Box::leak("x".repeat(5000).into_boxed_str());
        let e = parse(&[(EXCLUDE_TOOLS, long)]).unwrap_err();
        assert!(e.len() < 200, "a long name is not echoed whole");
    }
}
