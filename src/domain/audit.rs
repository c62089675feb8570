//! Audit entries (SPEC §7): who did what, through which surface, with what outcome.

use serde_json::Value;

pub use super::kinds::{ActorKind, Outcome};

/// Where a request came from; copied into its audit entry.
#[derive(Clone, Debug, Default)]
pub struct RequestCtx {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The MCP client's name and version, where known.
    pub client: Option<String>,
}

/// An entry before it is chained; [`crate::store::audit::append`] assigns seq, id and hashes.
#[derive(Clone, Debug)]
pub struct AuditDraft {
    pub team_id: Option<String>,
    pub project_id: Option<String>,
    pub actor_kind: ActorKind,
    pub causer_id: Option<String>,
    pub token_id: Option<String>,
    pub event: String,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub properties: Value,
    pub outcome: Outcome,
    pub error_code: Option<&'static str>,
    pub ctx: RequestCtx,
}

impl AuditDraft {
    pub fn system(event: &str, team_id: Option<String>) -> Self {
        AuditDraft {
            team_id,
            project_id: None,
            actor_kind: ActorKind::System,
            causer_id: None,
            token_id: None,
            event: event.to_owned(),
            subject_type: None,
            subject_id: None,
            properties: Value::Object(Default::default()),
            outcome: Outcome::Success,
            error_code: None,
            ctx: RequestCtx::default(),
        }
    }

    pub fn subject(mut self, kind: &str, id: impl Into<String>) -> Self {
        self.subject_type = Some(kind.to_owned());
        self.subject_id = Some(id.into());
        self
    }

    pub fn properties(mut self, properties: Value) -> Self {
        self.properties = properties;
        self
    }
}

const REDACTED: &str = "[REDACTED]";

/// Whether a key names a secret, whatever its case and separators (`accessToken`, `api-key`,
/// `ACCESS_CODE`, `Bearer`). `token_id` and other ids are not secrets.
fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    k.ends_with("token")
        || k == "code"
        || k == "codes"
        || k.ends_with("accesscode")
        || k.ends_with("accesscodes")
        || [
            "secret",
            "password",
            "passwd",
            "apikey",
            "privatekey",
            "authorization",
            "bearer",
            "cookie",
            "session",
        ]
        .iter()
        .any(|s| k.contains(s))
}

/// Redacts secret-looking keys and every `mpt_…` run inside strings, recursively.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) && !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) if s.contains("mpt_") => *s = redact_token_runs(s),
        _ => {}
    }
}

/// Replaces `mpt_` and the token characters after it with `[REDACTED]`.
pub fn redact_token_runs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find("mpt_") {
        out.push_str(&rest[..at]);
        out.push_str(REDACTED);
        let tail = &rest[at + 4..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_and_token_strings_are_redacted() {
        let mut v = json!({
            "name": "ok",
            "token_id": "abc",
            "token": "x",
            "client_secret": "y",
            "nested": [{"password": "p", "note": "leaked mpt_test_abc_def here"}],
        });
        redact(&mut v);
        assert_eq!(v["name"], "ok");
        assert_eq!(v["token_id"], "abc");
        assert_eq!(v["token"], REDACTED);
        assert_eq!(v["client_secret"], REDACTED);
        assert_eq!(v["nested"][0]["password"], REDACTED);
        assert_eq!(v["nested"][0]["note"], "leaked [REDACTED] here");
    }

    #[test]
    fn secret_keys_are_found_whatever_their_case_and_separators() {
        for key in [
            "accessToken",
            "api-key",
            "API_KEY",
            "access_code",
            "Bearer",
            "refresh-token",
            "Cookie",
        ] {
            let mut v = json!({ key: "x" });
            redact(&mut v);
            assert_eq!(v[key], REDACTED, "{key}");
        }
        for key in ["token_id", "tokenId", "name", "subject_id", "reason"] {
            let mut v = json!({ key: "x" });
            redact(&mut v);
            assert_eq!(v[key], "x", "{key}");
        }
    }
}
