//! Arguments: the small types several operations share, and the one conversion from JSON
//! arguments to an operation's typed `Args`, whose errors name the field without echoing it.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::domain::error::{Error, Result};
use crate::domain::ids::MALFORMED_ID;

/// No arguments: anything given is refused.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// A whole number within `MIN..=MAX`, refused otherwise while the arguments are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Bounded<const MIN: i64, const MAX: i64>(i64);

impl<const MIN: i64, const MAX: i64> Bounded<MIN, MAX> {
    /// The largest value allowed (a caller asking for as much as it may).
    pub const fn max() -> Self {
        Bounded(MAX)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    fn why() -> String {
        format!("must be a whole number from {MIN} to {MAX}")
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d).map_err(|_| serde::de::Error::custom(Self::why()))?;
        if (MIN..=MAX).contains(&n) {
            Ok(Bounded(n))
        } else {
            Err(serde::de::Error::custom(Self::why()))
        }
    }
}

impl<const MIN: i64, const MAX: i64> JsonSchema for Bounded<MIN, MAX> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Int{MIN}To{MAX}").into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "integer", "format": "int64", "minimum": MIN, "maximum": MAX})
    }
}

/// `?page=`: from 1.
pub type PageNo = Bounded<1, 1_000_000>;
/// `?limit=` of the paged lists: 1 to 100.
pub type Limit = Bounded<1, 100>;

/// The arguments of a list that only pages.
#[derive(Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PageArgs {
    /// Page number, from 1.
    pub page: Option<PageNo>,
    /// Items per page, 1 to 100 (default 25).
    pub limit: Option<Limit>,
}

/// Reads an operation's arguments. A field that is missing, unknown, of the wrong type or out of
/// range is `VALIDATION_FAILED` naming it; a malformed id is `RESOURCE_NOT_FOUND`; and a
/// well-formed token anywhere in the arguments is refused rather than stored where it would
/// outlive a revocation (a name, a ban reason, an audit entry).
pub fn from_json<T: serde::de::DeserializeOwned>(args: Value) -> Result<T> {
    if !args.is_object() {
        return Err(Error::field("arguments", "must be a JSON object"));
    }
    if let Some((field, why)) = refused_text(&args, None) {
        return Err(Error::field(&field, why));
    }
    serde_path_to_error::deserialize(args).map_err(|e| arg_error(&e))
}

/// Text no argument may hold, and the top-level argument it was found in: a well-formed token,
/// or a control character (NUL, which PostgreSQL cannot store and SQLite cuts a string at, and
/// the rest of C0, DEL and C1, which no name, reason or filter needs).
fn refused_text(v: &Value, top: Option<&str>) -> Option<(String, &'static str)> {
    let why = |s: &str| {
        if s.chars().any(char::is_control) {
            Some("must not contain control characters")
        } else if crate::domain::token::contains_token(s) {
            Some("contains a MemberPass API token; tokens never belong in request fields (revoke it if it was shared)")
        } else {
            None
        }
    };
    match v {
        Value::String(s) => why(s).map(|w| (top.unwrap_or("arguments").to_owned(), w)),
        Value::Array(items) => items.iter().find_map(|i| refused_text(i, top)),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            let top = top.unwrap_or(k);
            match why(k) {
                // The key itself is the offence: name the argument without repeating it.
                Some(w) => Some(("arguments".to_owned(), w)),
                None => refused_text(v, Some(top)),
            }
        }),
        _ => None,
    }
}

/// Turns a serde error into `fields`: which field, and why, in words of our own (serde's
/// messages quote the input, and the envelope never echoes it).
fn arg_error(e: &serde_path_to_error::Error<serde_json::Error>) -> Error {
    let msg = e.inner().to_string();
    if msg == MALFORMED_ID {
        return Error::NotFound;
    }
    let path = e.path().to_string();
    let at = |field: &str| -> String {
        if path == "." || path.is_empty() {
            field.to_owned()
        } else if path.ends_with(field) {
            path.clone()
        } else {
            format!("{path}.{field}")
        }
    };
    let quoted = |prefix: &str| {
        msg.strip_prefix(prefix)
            .and_then(|r| r.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = quoted("unknown field `") {
        return Error::field(&at(&field), "is not a known field");
    }
    if let Some(field) = quoted("missing field `") {
        return Error::field(&at(&field), "is required");
    }
    if let Some(field) = quoted("duplicate field `") {
        return Error::field(&at(&field), "is given more than once");
    }
    let field = if path == "." || path.is_empty() {
        "arguments".to_owned()
    } else {
        path.clone()
    };
    let why = if msg.starts_with("unknown variant `") {
        let allowed = msg.split_once("expected ").map_or("", |(_, r)| r);
        format!("must be {}", allowed.replace('`', ""))
    } else if let Some((_, expected)) = msg.split_once(", expected ") {
        format!("must be {}", plain_type(expected))
    } else if msg.starts_with("invalid ") {
        "is not valid".to_owned()
    } else {
        // Our own messages (ranges, formats), which never quote the input.
        msg
    };
    Error::field(&field, why)
}

/// serde's names for Rust types, in the words of a JSON API.
fn plain_type(expected: &str) -> &str {
    match expected {
        "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64" | "isize" | "usize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" | "a string" => expected,
        e if e.starts_with("struct ") || e.starts_with("a map") => "an object",
        e if e.starts_with("a sequence") => "a list",
        e if e.starts_with("a borrowed string") || e.starts_with("a string") => "a string",
        e if e.starts_with("one of ") => e,
        _ => "of another type",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        limit: Option<Limit>,
        id: Option<crate::domain::ids::ProjectId>,
    }

    fn field_error(v: Value) -> (String, String) {
        match from_json::<Sample>(v).unwrap_err() {
            Error::Validation(f) => f.into_iter().next().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field_and_never_echo_the_value() {
        let (f, why) = field_error(json!({"name": "SECRET-VALUE-1", "limit": "SECRET-VALUE-2"}));
        assert_eq!(f, "limit");
        assert!(!why.contains("SECRET"), "{why}");
        let (f, why) = field_error(json!({"name": 1234567}));
        assert_eq!((f.as_str(), why.as_str()), ("name", "must be a string"));
        assert!(!why.contains("1234567"));
        assert_eq!(field_error(json!({"name": "x", "limit": 101})).0, "limit");
        assert_eq!(field_error(json!({"name": "x", "SECRET": 1})).0, "SECRET");
        assert_eq!(field_error(json!({})).0, "name");
        assert!(matches!(
            from_json::<Sample>(json!({"name": "x", "id": "nope"})),
            Err(Error::NotFound)
        ));
    }

    #[test]
    fn control_characters_are_refused_wherever_they_are() {
        for v in [
            json!({"name": "a\u{0}b"}),
            json!({"name": "x", "list": ["\u{7}"]}),
            json!({"name": "x", "a\u{0}": 1}),
            json!({"name": "line\nbreak"}),
            json!({"name": "c1\u{85}"}),
        ] {
            let (_, why) = field_error(v);
            assert!(why.contains("control characters"), "{why}");
        }
    }

    #[test]
    fn a_token_anywhere_in_the_arguments_is_refused() {
        let token = crate::domain::token::TokenSecret::generate(crate::domain::token::TokenEnv::Test);
        let t = token.expose_secret();
        for v in [
            json!({"name": format!("see {t} here")}),
            json!({"name": "x", "nested": [{"deep": t}]}),
            json!({"name": "x", t: 1}),
        ] {
            let (f, why) = field_error(v);
            assert!(why.contains("token"), "{f}: {why}");
            assert!(!why.contains(t));
        }
    }
}
