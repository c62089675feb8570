//! A small JSON Schema validator for the subset schemars emits (`type`, `properties`,
//! `required`, `additionalProperties`, `items`, `enum`, `const`, `anyOf` / `oneOf` / `allOf`,
//! `minimum`, `$ref` into `$defs`, boolean schemas), strict about objects: a property a schema
//! with `properties` does not declare is an error, so a schema that forgets a field fails too.

use serde_json::Value;

/// Every place `instance` breaks `schema`, as `<JSON pointer>: <why>`; empty when it conforms.
pub fn violations(schema: &Value, instance: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, schema, instance, "", &mut out);
    out
}

fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        _ => false,
    }
}

fn check(root: &Value, schema: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let s = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => return out.push(format!("{at}: no value is allowed here")),
        Value::Object(s) => s,
        other => return out.push(format!("{at}: not a schema: {other}")),
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(target) => check(root, target, v, at, out),
            None => out.push(format!("{at}: unresolved $ref {r}")),
        }
    }
    if let Some(ty) = s.get("type") {
        let types: Vec<&str> = match ty {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !types.iter().any(|t| type_matches(t, v)) {
            out.push(format!("{at}: {v} is not of type {ty}"));
            return;
        }
    }
    if let Some(Value::Array(values)) = s.get("enum")
        && !values.contains(v)
    {
        out.push(format!("{at}: {v} is not one of {values:?}"));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        out.push(format!("{at}: {v} is not {c}"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        out.push(format!("{at}: {n} is below {min}"));
    }
    for (key, need) in [("anyOf", 1..=usize::MAX), ("oneOf", 1..=1)] {
        if let Some(Value::Array(options)) = s.get(key) {
            let passing = options
                .iter()
                .filter(|o| violations_at(root, o, v, at).is_empty())
                .count();
            if !need.contains(&passing) {
                out.push(format!("{at}: {v} matches {passing} of the {key} options"));
            }
        }
    }
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(root, sub, v, at, out);
        }
    }
    if let Value::Object(obj) = v {
        for name in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = name.as_str()
                && !obj.contains_key(name)
            {
                out.push(format!("{at}: `{name}` is required"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, item) in obj {
            let here = format!("{at}/{k}");
            match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                (Some(sub), _) => check(root, sub, item, &here, out),
                (None, Some(extra)) => check(root, extra, item, &here, out),
                (None, None) if props.is_some() => out.push(format!("{here}: not in the schema")),
                (None, None) => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, s.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(root, item_schema, item, &format!("{at}/{i}"), out);
        }
    }
}

fn violations_at(root: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut out = Vec::new();
    check(root, schema, v, at, &mut out);
    out
}

#[test]
fn the_validator_catches_what_it_claims_to() {
    use serde_json::json;
    let schema = json!({
        "type": "object", "required": ["id", "tags"],
        "properties": {
            "id": {"type": "string"},
            "n": {"type": ["integer", "null"], "minimum": 0},
            "kind": {"anyOf": [{"$ref": "#/$defs/Kind"}, {"type": "null"}]},
            "tags": {"type": "array", "items": {"type": "string"}},
            "any": true
        },
        "$defs": {"Kind": {"type": "string", "enum": ["a", "b"]}}
    });
    let good = json!({"id": "x", "n": null, "kind": "a", "tags": ["t"], "any": {"deep": [1]}});
    assert_eq!(violations(&schema, &good), Vec::<String>::new());
    let bad = json!({"n": -1, "kind": "c", "tags": [1], "extra": 1});
    let found = violations(&schema, &bad);
    for expected in [
        "`id` is required",
        "/n: -1 is below 0",
        "/kind:",
        "/tags/0:",
        "/extra: not in the schema",
    ] {
        assert!(found.iter().any(|f| f.contains(expected)), "{expected} in {found:?}");
    }
}
