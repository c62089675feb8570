//! Audit entries (SPEC §7): who did what, through which surface, with what outcome.

use serde_json::{Value, json};

use super::text;

pub use super::kinds::{ActorKind, Outcome};

/// The event of a dashboard page view: one per page a signed-in person loads, standing for the
/// page's reads (issue 21, item 8).
pub const PAGE_VIEW: &str = "dashboard.view";

/// Where a request came from; copied into its audit entry.
#[derive(Clone, Debug, Default)]
pub struct RequestCtx {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The MCP client's name and version, where known.
    pub client: Option<String>,
}

/// The OAuth grant a token was issued under, and its client: named in every entry the token's
/// calls leave (as `properties.oauth`), so the log shows which connected app acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthRef {
    pub grant_id: String,
    pub client_id: String,
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
    /// Set for a call made with an OAuth access token; chained into `properties.oauth`.
    pub oauth: Option<OAuthRef>,
    /// What the caller's connection adds to every entry it leaves, chained into `properties`:
    /// `narrowed` (its headers narrowed it), `superseded: true` (a rotated token in its grace).
    pub marks: serde_json::Map<String, Value>,
    /// The call is of a write operation. Not part of the entry: it tells the token's usage
    /// (issue 21) which successes were writes.
    pub write: bool,
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
            oauth: None,
            marks: serde_json::Map::new(),
            write: false,
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

/// Redacts secret-looking keys and every `mpt_…` run inside strings and keys, recursively.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.keys().any(|k| holds_token_start(k)) {
                // A key is no place for a token either: rename it (keeping keys distinct).
                *map = std::mem::take(map)
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, v))| match holds_token_start(&k) {
                        true => (format!("{}#{i}", redact_token_runs(&k)), v),
                        false => (k, v),
                    })
                    .collect();
            }
            for (k, v) in map.iter_mut() {
                if is_secret_key(k) && !v.is_null() {
                    *v = Value::String(REDACTED.to_owned());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) if holds_token_start(s) => *s = redact_token_runs(s),
        _ => {}
    }
}

/// How every token starts (`mpt_`, and `mprt_` for an OAuth refresh token), whether or not the
/// rest is well formed.
const TOKEN_START: &str = "mpt_";
const REFRESH_TOKEN_START: &str = "mprt_";

/// Whether a text holds the start of a token of either kind.
fn holds_token_start(s: &str) -> bool {
    s.contains(TOKEN_START) || s.contains(REFRESH_TOKEN_START)
}

/// Where the first token start of either kind is, and its length.
fn next_token_start(s: &str) -> Option<(usize, usize)> {
    let access = s.find(TOKEN_START).map(|at| (at, TOKEN_START.len()));
    let refresh = s.find(REFRESH_TOKEN_START).map(|at| (at, REFRESH_TOKEN_START.len()));
    match (access, refresh) {
        (Some(a), Some(r)) => Some(if r.0 < a.0 { r } else { a }),
        (a, r) => a.or(r),
    }
}

/// Most bytes of key names a refusal before the arguments were read keeps.
pub const ARGUMENT_KEYS_MAX: usize = 2048;
/// Longest key name it keeps.
const ARGUMENT_KEY_MAX: usize = 64;

/// What the entry of a call refused before its arguments were read keeps of them: the names of
/// the top-level keys, never their values, each made storable, any `mpt_…` run in it replaced,
/// at most [`ARGUMENT_KEYS_MAX`] bytes of names in all (`argument_keys_truncated` says when more
/// were sent). A caller without the ability cannot put a token, or 64 KiB of anything, in the log.
pub fn argument_keys(args: &Value) -> Value {
    let Some(map) = args.as_object() else {
        return json!({});
    };
    let mut keys = Vec::new();
    let mut size = 0;
    for k in map.keys() {
        let k = text::storable(&redact_token_runs(k), ARGUMENT_KEY_MAX);
        size += k.len();
        if size > ARGUMENT_KEYS_MAX {
            return json!({ "argument_keys": keys, "argument_keys_truncated": true });
        }
        keys.push(k);
    }
    json!({ "argument_keys": keys })
}

/// Replaces `mpt_` (or `mprt_`) and the token characters after it with `[REDACTED]`.
pub fn redact_token_runs(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((at, len)) = next_token_start(rest) {
        out.push_str(&rest[..at]);
        out.push_str(REDACTED);
        let tail = &rest[at + len..];
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
    fn refresh_tokens_are_redacted_like_access_tokens() {
        let refresh = crate::domain::refresh_token::RefreshSecret::generate(crate::domain::token::TokenEnv::Test);
        let mut v = json!({"note": format!("a {} b", refresh.expose_secret()), refresh.expose_secret(): 1,
                           "both": "mprt_x mpt_y"});
        redact(&mut v);
        let text = v.to_string();
        assert!(!text.contains("mprt_") && !text.contains("mpt_"), "{text}");
        assert_eq!(v["note"], "a [REDACTED] b");
        assert_eq!(v["both"], "[REDACTED] [REDACTED]");
    }

    #[test]
    fn a_token_in_a_key_is_redacted_and_keys_stay_distinct() {
        let token = "mpt_test_hQ0DtJ1bd3M1_fhoQfzI5fBJZYG8nF4wkxfSAVFe7tLT80L6KM0";
        let mut v = json!({ token: 1, "ok": 2, "mpt_live_x": {"mpt_test_y": 3} });
        redact(&mut v);
        let text = v.to_string();
        assert!(!text.contains("mpt_"), "{text}");
        assert_eq!(v["ok"], 2);
        assert_eq!(v.as_object().unwrap().len(), 3);
    }

    #[test]
    fn a_refusal_keeps_key_names_only_capped_and_without_tokens() {
        let token = "mpt_test_hQ0DtJ1bd3M1_fhoQfzI5fBJZYG8nF4wkxfSAVFe7tLT80L6KM0";
        let kept = argument_keys(&json!({ token: "v", "name": "secret value", "a\u{0}b": 1 }));
        let text = kept.to_string();
        assert!(!text.contains("mpt_") && !text.contains("secret value"), "{text}");
        assert!(kept["argument_keys"].as_array().unwrap().contains(&json!("name")));
        assert!(kept.get("argument_keys_truncated").is_none());
        let many: serde_json::Map<String, Value> = (0..5000).map(|i| (format!("k{i:060}"), json!(i))).collect();
        let kept = argument_keys(&Value::Object(many));
        assert!(kept.to_string().len() < ARGUMENT_KEYS_MAX + 200);
        assert_eq!(kept["argument_keys_truncated"], true);
        assert_eq!(argument_keys(&json!([1, 2])), json!({}));
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
