//! What the fuzzers send: hostile text and JSON, values shaped by an argument's schema (so a
//! good share of the cases gets past validation to the operation itself), and raw bytes.

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use serde_json::{Map, Number, Value, json};

/// What the strategies may borrow from the running server: token plaintexts, and real ids.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub tokens: Vec<String>,
    pub ids: Vec<String>,
}

/// Text an attacker or a confused client sends: anything at all, NUL and controls, Unicode
/// edge cases, very long runs, numbers and dates as text, ids, and tokens on their own, inside
/// text, or escaped.
pub fn text(ctx: &Ctx) -> BoxedStrategy<String> {
    let tokens = ctx.tokens.clone();
    let ids = ctx.ids.clone();
    prop_oneof![
        4 => "[A-Za-z0-9 _.-]{0,24}",
        3 => any::<String>(),
        2 => prop::sample::select(vec![
            "", " ", "\0", "a\0b", "\u{7}", "\r\n", "\t", "\u{85}", "\u{202e}evil", "\u{feff}", "\u{fffd}", "😀",
            "e\u{301}", "Ω", "%00", "%", "%G1", "%2F", "../..", "\\", "'", "\"", "' OR 1=1 --", "\"; DROP TABLE projects; --",
            "null", "true", "[]", "{}", "0", "-0", "1e309", "NaN", "Infinity", "-9223372036854775809",
            "18446744073709551616", "0x10", "1.5", " 7", "7 ", "+7", "2026-01-31T12:00:00Z", "2026-13-45T99:99:99Z",
            "9999-12-31T23:59:59.999999999Z", "0000-01-01T00:00:00Z", "2026-01-31T12:00:00+99:59", "1970-01-01T00:00:00-23:59",
            "month", "year", "week", "channel", "group", "usd", "USD", "customer", "banned", "active", "unused", "mcp",
            "api_token", "success", "denied", "project", "token", "mpt_", "mpt_test_", "mpt_live_AAAAAAAAAAAA_",
        ])
        .prop_map(str::to_owned),
        1 => (0usize..70_000, prop::sample::select(vec!['x', 'é', '\0', '😀', ' '])).prop_map(|(n, c)| c.to_string().repeat(n)),
        2 => prop::sample::select(tokens.clone()),
        1 => (prop::sample::select(tokens), "[ -~]{0,8}", "[ -~]{0,8}").prop_map(|(t, a, b)| format!("{a}{t}{b}")),
        1 => prop::sample::select(ids.clone()),
        1 => prop::sample::select(ids).prop_map(|i| i.to_uppercase()),
    ]
    .boxed()
}

/// A JSON number of any kind: small, at the edges of i64 and u64, fractional, tiny and huge.
pub fn number() -> BoxedStrategy<Value> {
    prop_oneof![
        (-3i64..200).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![i64::MIN, i64::MAX, i64::from(i32::MAX) + 1, -1, 0]).prop_map(Value::from),
        prop::num::f64::NORMAL
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        prop::sample::select(vec![0.5, -0.0, 1e308, -1e308, 5e-324, 100.0, 1.0000000000000002]).prop_map(|f| json!(f)),
    ]
    .boxed()
}

/// Any JSON value, nested a few levels, with hostile leaves.
pub fn json(ctx: &Ctx) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text(ctx).prop_map(Value::String),
    ];
    let keys = key(ctx);
    leaf.prop_recursive(4, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// An object key: a plausible name, or hostile text.
pub fn key(ctx: &Ctx) -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z_]{1,12}",
        1 => text(ctx),
    ]
    .boxed()
}

/// A value for an argument of this JSON Schema: usually one the schema allows (an enum value,
/// an integer in range, a real id where a uuid is asked for, plausible text), otherwise
/// anything at all.
pub fn for_schema(schema: &Value, ctx: &Ctx) -> BoxedStrategy<Value> {
    let mut plausible: Vec<BoxedStrategy<Value>> = Vec::new();
    let mut types: Vec<&str> = Vec::new();
    for s in std::iter::once(schema).chain(schema["anyOf"].as_array().into_iter().flatten()) {
        if let Some(values) = s["enum"].as_array() {
            // An enum's values are all it takes; its type adds only the null it may allow.
            plausible.push(prop::sample::select(values.clone()).boxed());
            continue;
        }
        match &s["type"] {
            Value::String(t) => types.push(t),
            Value::Array(ts) => types.extend(ts.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    for t in types {
        plausible.push(match t {
            "integer" => {
                let min = schema["minimum"].as_i64().unwrap_or(-1_000);
                let max = schema["maximum"].as_i64().unwrap_or(1_000_000);
                prop_oneof![
                    4 => (min..=max).prop_map(Value::from),
                    1 => prop::sample::select(vec![min.saturating_sub(1), max.saturating_add(1)]).prop_map(Value::from),
                ]
                .boxed()
            }
            "number" => number(),
            "boolean" => any::<bool>().prop_map(Value::Bool).boxed(),
            "null" => Just(Value::Null).boxed(),
            "string" if schema["format"] == "uuid" => {
                prop::sample::select(ctx.ids.clone()).prop_map(Value::String).boxed()
            }
            "string" => {
                let min = schema["minLength"].as_u64().unwrap_or(1).max(1) as usize;
                let max = schema["maxLength"].as_u64().unwrap_or(30).min(40) as usize;
                prop_oneof![
                    2 => prop::string::string_regex(&format!("[a-z]{{{min},{}}}", max.max(min))).unwrap(),
                    1 => prop::string::string_regex(&format!("[a-z][a-z0-9]{{{},{}}}", min - 1, max.max(min) - 1)).unwrap(),
                    1 => "[A-Z][A-Za-z0-9 ]{0,20}",
                    2 => "-100[0-9]{10}",
                ]
                .prop_map(Value::String)
                .boxed()
            }
            _ => json(ctx),
        });
    }
    if plausible.is_empty() {
        return json(ctx);
    }
    prop_oneof![6 => Union::new(plausible), 1 => json(ctx)].boxed()
}

/// An arguments object for this schema: each property present or not (required ones mostly
/// present), with a schema-shaped value; sometimes an extra key. `skip` names arguments that
/// come from elsewhere (the path).
pub fn object_for(schema: &Value, skip: &[&str], ctx: &Ctx) -> BoxedStrategy<Value> {
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut fields: Vec<BoxedStrategy<Option<(String, Value)>>> = Vec::new();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        if skip.contains(&name.as_str()) {
            continue;
        }
        let present = if required.contains(&name.as_str()) { 0.95 } else { 0.5 };
        let name = name.clone();
        fields.push(
            prop::option::weighted(present, for_schema(prop, ctx))
                .prop_map(move |v| v.map(|v| (name.clone(), v)))
                .boxed(),
        );
    }
    let extra = prop::option::weighted(0.1, (key(ctx), json(ctx)));
    (fields, extra)
        .prop_map(|(fields, extra)| {
            let mut map: Map<String, Value> = fields.into_iter().flatten().collect();
            if let Some((k, v)) = extra {
                map.insert(k, v);
            }
            Value::Object(map)
        })
        .boxed()
}

/// Bytes made from a JSON document by a few edits: flipped, inserted and removed bytes, a cut,
/// garbage after it, a byte-order mark, deep nesting, or bytes that are not UTF-8.
pub fn mangled(doc: BoxedStrategy<Value>) -> BoxedStrategy<Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4);
    prop_oneof![
        3 => (doc.clone(), edits).prop_map(|(v, edits)| {
            let mut b = serde_json::to_vec(&v).unwrap();
            for (at, byte, how) in edits {
                let i = at.index(b.len() + 1);
                match how {
                    0 if i < b.len() => b[i] = byte,
                    1 => b.insert(i, byte),
                    2 if i < b.len() => {
                        b.remove(i);
                    }
                    _ => b.truncate(i),
                }
            }
            b
        }),
        1 => (doc.clone(), "[ -~]{1,6}").prop_map(|(v, tail)| [serde_json::to_vec(&v).unwrap(), tail.into_bytes()].concat()),
        1 => doc.clone().prop_map(|v| [b"\xef\xbb\xbf".to_vec(), serde_json::to_vec(&v).unwrap()].concat()),
        // JSON escapes: a token whose `_` is `\u005f` is still a token once parsed.
        1 => doc.clone().prop_map(|v| serde_json::to_string(&v).unwrap().replace("mpt_", "mpt\\u005f").into_bytes()),
        1 => (1usize..3000, prop::sample::select(vec!["[", "{\"a\":", "[{\"a\":"]))
            .prop_map(|(n, open)| open.repeat(n).into_bytes()),
        1 => (1usize..200).prop_map(|n| format!("{}1{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        1 => prop::sample::select(vec![
            b"{\"name\": \"\xff\xfe\"}".to_vec(),
            b"{\"name\": \"\\ud800\"}".to_vec(),
            b"{\"name\": \"x\", \"name\": \"y\"}".to_vec(),
            b"{\"quantity\": 1e99999}".to_vec(),
            b"{\"quantity\": 123456789012345678901234567890}".to_vec(),
            b"{\"quantity\": NaN}".to_vec(),
            b"{\"a\": 1}{\"b\": 2}".to_vec(),
            b"\x00".to_vec(),
            b"{\"a\":\x00}".to_vec(),
        ]),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
    .boxed()
}
