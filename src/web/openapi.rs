//! `/openapi.json`, generated from the catalog: each operation's path, query and body come from
//! its argument type's schema, its success body from its output type's, its success status and
//! required ability from its spec.

use serde_json::{Map, Value, json};

use crate::domain::error::error_object_schema;
use crate::service::core::op::{DynOp, Verb, published_schema};
use crate::service::ops::catalog;

pub fn openapi_json(public_url: &str) -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for op in catalog::all() {
        let spec = op.spec();
        let entry = paths.entry(spec.path.to_owned()).or_insert_with(|| json!({}));
        entry[spec.method.as_str().to_ascii_lowercase()] = operation(op);
    }
    leak_reports(&mut paths);
    json!({
        "openapi": "3.1.0",
        "info": {"title": "MemberPass API", "version": env!("CARGO_PKG_VERSION")},
        "servers": [{"url": public_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "mpt_<env>_<id>_<secret><check>"}},
            "responses": {"Error": {"description": "The error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": error_object_schema()}},
                "Held": {
                    "type": "object",
                    "description": "A call held for a person's approval (202): the approval request, and APPROVAL_REQUIRED.",
                    "required": ["data", "error"],
                    "properties": {"data": held_schema(), "error": error_object_schema()}
                }
            }
        }
    })
}

/// The two routes outside the catalog: unauthenticated leak reports (`http::leaks`).
fn leak_reports(paths: &mut Map<String, Value>) {
    let error = json!({"$ref": "#/components/responses/Error"});
    paths.insert(
        "/v1/tokens/revoke".into(),
        json!({"post": {
            "operationId": "revoke_by_possession",
            "summary": "Revoke a token by holding it: the same 202 whether or not it existed",
            "security": [],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false, "required": ["token"],
                "properties": {
                    "token": {"type": "string", "description": "The whole mpt_ token"},
                    "source": {"type": "string", "maxLength": 500, "description": "Where it was found"}
                }
            }}}},
            "responses": {
                "202": {"description": "Accepted", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["data"], "properties": {"data": {
                        "type": "object", "required": ["status", "message"], "properties": {
                            "status": {"type": "string", "const": "accepted"}, "message": {"type": "string"}
                        }
                    }}
                }}}},
                "413": error, "422": error, "429": error, "500": error
            }
        }}),
    );
    paths.insert(
        "/v1/secret-scanning/github".into(),
        json!({"post": {
            "operationId": "github_secret_scanning_alert",
            "summary": "GitHub secret-scanning partner alert (signed by GitHub)",
            "security": [],
            "parameters": [
                {"name": "Github-Public-Key-Identifier", "in": "header", "required": true, "schema": {"type": "string"}},
                {"name": "Github-Public-Key-Signature", "in": "header", "required": true, "schema": {"type": "string"}}
            ],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "array", "maxItems": crate::service::accounts::leaks::MAX_ALERT_ITEMS,
                "items": {"type": "object", "required": ["token", "type"], "properties": {
                    "token": {"type": "string"}, "type": {"type": "string"},
                    "url": {"type": "string"}, "source": {"type": "string"}
                }}
            }}}},
            "responses": {
                "200": {"description": "GitHub's feedback format", "content": {"application/json": {"schema": {
                    "type": "array", "items": {"type": "object", "required": ["token_hash", "token_type", "label"], "properties": {
                        "token_hash": {"type": "string"}, "token_type": {"type": "string"},
                        "label": {"type": "string", "enum": ["true_positive", "false_positive"]}
                    }}
                }}}},
                "401": error, "413": error, "422": error, "429": error, "500": error
            }
        }}),
    );
}

fn operation(op: &dyn DynOp) -> Value {
    let spec = op.spec();
    let schema = op.args_schema();
    let path_params = spec.path_params();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let error = json!({"$ref": "#/components/responses/Error"});
    let mut responses = json!({
        spec.success_status.to_string(): {"description": "Success", "content": {"application/json": {"schema": published_schema(op.output_schema())}}},
        "401": error, "404": error, "422": error, "429": error, "500": error,
    });
    if spec.ability.is_some() {
        responses["403"] = error.clone();
    }
    if spec.method != Verb::Get {
        responses["409"] = error.clone();
        responses["413"] = error.clone();
    }
    if spec.is_write() && spec.success_status != 202 {
        responses["202"] = json!({
            "description": "Held for a person's approval (the team's policy or the token's budget); nothing ran. \
                            `Location` is the approval page.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Held"}}}
        });
    }
    let mut parameters: Vec<Value> = path_params
        .iter()
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": schema["properties"][name]}))
        .collect();
    let mut body = Map::new();
    for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
        if path_params.contains(&name.as_str()) {
            continue;
        } else if spec.method.takes_body() {
            body.insert(name.clone(), prop.clone());
        } else {
            parameters.push(query_parameter(name, prop, required.contains(&name.as_str())));
        }
    }
    if let Some(arg) = spec.creates {
        // Where the new id goes next: every operation that takes it (for clients and for a
        // schema fuzzer's stateful phase).
        let links: Map<String, Value> = catalog::all()
            .map(|other| other.spec())
            .filter(|other| other.path_params().contains(&arg))
            .map(|other| {
                (
                    other.name.to_owned(),
                    json!({"operationId": other.name, "parameters": {arg: "$response.body#/data/id"}}),
                )
            })
            .collect();
        responses[spec.success_status.to_string()]["links"] = Value::Object(links);
    }
    let mut item = json!({
        "operationId": spec.name,
        "summary": spec.summary,
        "security": [{"bearer": []}],
        "responses": responses,
        "x-required-ability": spec.ability.map(|a| a.as_str()),
        "x-effect": spec.effect,
    });
    if spec.method.takes_body() {
        let body_required: Vec<&str> = required.iter().copied().filter(|r| !path_params.contains(r)).collect();
        item["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": {
            "type": "object",
            "properties": body,
            "required": body_required,
            "additionalProperties": false,
        }}}});
    }
    if spec.replayable {
        parameters.push(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Replays the saved response for 24 h for the same request; visible ASCII, 1 to 255 characters.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]([ -~]*[!-~])?$"}
        }));
    }
    item["parameters"] = Value::Array(parameters);
    item
}

/// A query parameter from an argument's schema. A query string has no null: an absent
/// parameter is the null, so `null` leaves the parameter's type and values.
fn query_parameter(name: &str, prop: &Value, required: bool) -> Value {
    let mut schema = prop.clone();
    let mut param = json!({"name": name, "in": "query", "required": required});
    if let Some(m) = schema.as_object_mut() {
        if let Some(d) = m.remove("description") {
            param["description"] = d;
        }
        if let Some(Value::Array(values)) = m.get_mut("enum") {
            values.retain(|v| !v.is_null());
        }
        if let Some(Value::Array(types)) = m.get_mut("type") {
            types.retain(|t| t != "null");
            if types.len() == 1 {
                let only = types[0].clone();
                m.insert("type".into(), only);
            }
        }
        if let Some(Value::Array(options)) = m.remove("anyOf") {
            let mut options: Vec<Value> = options.into_iter().filter(|o| o["type"] != "null").collect();
            if options.len() == 1 {
                if let Some(only) = options.pop().and_then(|o| o.as_object().cloned()) {
                    m.extend(only);
                }
            } else {
                m.insert("anyOf".into(), Value::Array(options));
            }
        }
    }
    param["schema"] = schema;
    param
}

/// The approval resource a held call answers with (`data` of a `202`).
fn held_schema() -> Value {
    let text = json!({"type": "string"});
    json!({
        "type": "object",
        "required": ["id", "status", "operation", "arguments", "hold", "surface", "token_id", "requested_at", "expires_at", "url"],
        "properties": {
            "id": text, "status": {"type": "string", "enum": ["pending", "granted", "denied", "expired", "used", "voided"]},
            "operation": text, "arguments": {"type": "object"}, "hold": {"type": "string", "enum": ["policy", "budget"]},
            "surface": {"type": "string", "enum": ["mcp", "rest"]}, "token_id": text,
            "requested_at": {"type": "string", "format": "date-time"}, "expires_at": {"type": "string", "format": "date-time"},
            "url": text, "preview": {"description": "What the call would change, as its body found when it was held."}
        }
    })
}
