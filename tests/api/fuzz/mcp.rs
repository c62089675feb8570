//! `POST /mcp` fuzzed with JSON-RPC-ish bodies: known and unknown methods, tool calls with
//! schema-shaped and hostile arguments, ids of every JSON type, batches, huge numbers, NUL
//! bytes, deep nesting and bytes that are not JSON, all with a valid token and the headers of a
//! real client. The server answers without a 5xx, with JSON-RPC (or an empty 202 for what needs
//! no answer), a refused tool call carries the §4 envelope, nothing changes unless a write tool
//! succeeded, and no token's secret comes back.

use memberpass::service::core::op::DynOp;
use memberpass::service::ops::catalog;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use proptest::test_runner::TestCaseResult;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::values::{self, Ctx};
use super::{Answer, Harness, check, headers, ids_by_param};

const CASES: u32 = 128;

const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "server/discover",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

const VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Every tool but the one that revokes the calling token (which would end the run).
fn tools() -> Vec<&'static dyn DynOp> {
    catalog::all()
        .filter(|op| op.spec().name != "revoke_current_token")
        .collect()
}

fn id(ctx: &Ctx) -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        4 => (0i64..1000).prop_map(|n| Some(json!(n))),
        2 => values::text(ctx).prop_map(|s| Some(Value::String(s))),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => values::number().prop_map(Some),
        1 => any::<bool>().prop_map(|b| Some(Value::Bool(b))),
        1 => values::json(ctx).prop_map(Some),
    ]
    .boxed()
}

/// Parameters shaped for the method where it has a shape, else anything.
fn params(ctx: &Ctx) -> BoxedStrategy<(String, Option<Value>)> {
    let tools = tools();
    let names: Vec<String> = tools.iter().map(|op| op.spec().name.to_owned()).collect();
    let calls: Vec<BoxedStrategy<Value>> = tools
        .iter()
        .map(|op| {
            let name = op.spec().name;
            prop_oneof![
                4 => values::object_for(&op.args_schema(), &[], ctx),
                1 => values::json(ctx),
            ]
            .prop_map(move |args| json!({"name": name, "arguments": args}))
            .boxed()
        })
        .collect();
    let uris: Vec<String> = memberpass::web::mcp::tools::RESOURCES
        .iter()
        .map(|(u, _, _)| u.to_string())
        .collect();
    let anything = prop::option::of(values::json(ctx));
    prop_oneof![
        6 => proptest::strategy::Union::new(calls).prop_map(|p| ("tools/call".to_owned(), Some(p))),
        1 => (prop_oneof![prop::sample::select(names), values::text(ctx)], prop::option::of(values::json(ctx)))
            .prop_map(|(name, args)| {
                let mut p = json!({"name": name});
                if let Some(a) = args {
                    p["arguments"] = a;
                }
                ("tools/call".to_owned(), Some(p))
            }),
        1 => prop_oneof![prop::sample::select(uris), values::text(ctx)]
            .prop_map(|uri| ("resources/read".to_owned(), Some(json!({"uri": uri})))),
        1 => (prop_oneof![prop::sample::select(VERSIONS.to_vec()).prop_map(str::to_owned), values::text(ctx)], values::json(ctx), values::text(ctx))
            .prop_map(|(v, caps, name)| ("initialize".to_owned(), Some(json!({
                "protocolVersion": v, "capabilities": caps, "clientInfo": {"name": name, "version": "1.0"}
            })))),
        3 => (prop::sample::select(METHODS.to_vec()), anything.clone()).prop_map(|(m, p)| (m.to_owned(), p)),
        1 => (values::text(ctx), anything).prop_map(|(m, p)| (m, p)),
    ]
    .boxed()
}

/// One JSON-RPC message, mostly well-formed.
fn message(ctx: &Ctx) -> BoxedStrategy<Value> {
    let jsonrpc = prop_oneof![
        8 => Just(Some(json!("2.0"))),
        1 => Just(None),
        1 => prop::sample::select(vec![json!("1.0"), json!(2.0), json!(null), json!("2.0 ")]).prop_map(Some),
    ];
    let extra = prop::option::weighted(
        0.1,
        (
            prop::sample::select(vec!["result", "error", "_meta", "params"]),
            values::json(ctx),
        ),
    );
    (jsonrpc, id(ctx), params(ctx), extra)
        .prop_map(|(jsonrpc, id, (method, params), extra)| {
            let mut m = Map::new();
            if let Some(v) = jsonrpc {
                m.insert("jsonrpc".into(), v);
            }
            if let Some(id) = id {
                m.insert("id".into(), id);
            }
            m.insert("method".into(), Value::String(method));
            if let Some(p) = params {
                m.insert("params".into(), p);
            }
            if let Some((k, v)) = extra {
                m.insert(k.into(), v);
            }
            Value::Object(m)
        })
        .boxed()
}

#[derive(Clone, Debug)]
struct Rpc {
    body: Vec<u8>,
    version: Option<&'static str>,
}

fn rpc(ctx: &Ctx) -> BoxedStrategy<Rpc> {
    let one = message(ctx);
    let body = prop_oneof![
        8 => one.clone().prop_map(|m| serde_json::to_vec(&m).unwrap()),
        1 => prop::collection::vec(one.clone(), 0..4).prop_map(|b| serde_json::to_vec(&b).unwrap()),
        3 => values::mangled(one),
        1 => values::json(ctx).prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ];
    let version = prop_oneof![
        8 => Just(Some("2025-11-25")),
        2 => prop::sample::select(VERSIONS.to_vec()).prop_map(Some),
        1 => Just(None),
        1 => prop::sample::select(vec!["1999-01-01", "2025-11-25 ", "latest", ""]).prop_map(Some),
    ];
    (body, version)
        .prop_map(|(body, version)| Rpc { body, version })
        .boxed()
}

/// A JSON-RPC 2.0 response (or the empty `202` of a notification), with the §4 envelope where
/// a tool or the HTTP layer refused.
fn check_json_rpc(h: &Harness, a: &Answer) -> TestCaseResult {
    if a.status == 202 {
        return check(a.bytes.is_empty(), format!("202 with a body: {}", a.text()));
    }
    check(
        a.header("content-type").starts_with("application/json"),
        format!("{} {:?}: {}", a.status, a.header("content-type"), a.text()),
    )?;
    let body: Value = serde_json::from_slice(&a.bytes)
        .map_err(|_| TestCaseError::fail(format!("{}: not JSON: {}", a.status, a.text())))?;
    let r = body
        .as_object()
        .ok_or_else(|| TestCaseError::fail(format!("not an object: {body}")))?;
    check(
        r.get("jsonrpc") == Some(&json!("2.0")),
        format!("not JSON-RPC 2.0: {body}"),
    )?;
    let id_ok = match r.get("id") {
        None | Some(Value::Null | Value::String(_)) => true,
        Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    check(id_ok, format!("an id JSON-RPC does not allow: {body}"))?;
    match (r.get("result"), r.get("error")) {
        (Some(result), None) => {
            check(a.status == 200, format!("a result with {}: {body}", a.status))?;
            if result["isError"] == true {
                h.check_error_object(&result["structuredContent"], None, None)?;
            }
            Ok(())
        }
        (None, Some(error)) => {
            check(
                error["code"].is_i64() && error["message"].is_string(),
                format!("malformed error: {body}"),
            )?;
            if error["code"] == -32001 {
                h.check_error_object(&json!({"error": error["data"]}), Some(a.status), None)?;
            }
            Ok(())
        }
        _ => Err(TestCaseError::fail(format!(
            "not exactly one of result and error: {body}"
        ))),
    }
}

/// Whether this answer is a write tool that did its work (the only answer that may change state).
fn wrote(sent: &[u8], a: &Answer) -> bool {
    let sent: Value = serde_json::from_slice(sent).unwrap_or_default();
    let tool = sent["params"]["name"].as_str().and_then(catalog::find);
    let body: Value = serde_json::from_slice(&a.bytes).unwrap_or_default();
    tool.is_some_and(|op| op.spec().is_write()) && body["result"].is_object() && body["result"]["isError"] != true
}

#[test]
fn json_rpc_on_mcp_never_breaks_the_server_or_writes_half() {
    let h = Harness::start();
    let ctx = Ctx {
        tokens: h.pool.clone(),
        ids: ids_by_param(&h).into_values().flatten().collect(),
    };
    h.run(CASES, rpc(&ctx), |r| {
        h.block_on(async {
            let mut pairs = vec![
                ("authorization", format!("Bearer {}", h.token).into_bytes()),
                ("content-type", b"application/json".to_vec()),
                ("accept", b"application/json, text/event-stream".to_vec()),
            ];
            if let Some(v) = r.version {
                pairs.push(("mcp-protocol-version", v.as_bytes().to_vec()));
            }
            let before = h.state().await;
            let a = h
                .send(Method::POST, "/mcp", headers(&pairs), Some(r.body.clone()))
                .await;
            let after = h.state().await;
            check(a.status < 500, format!("{} {}", a.status, a.text()))?;
            check_json_rpc(&h, &a)?;
            // JSON-RPC echoes the request's id: a token put there comes back by protocol.
            let bytes = match serde_json::from_slice::<Value>(&a.bytes) {
                Ok(Value::Object(mut o)) => {
                    o.remove("id");
                    serde_json::to_vec(&o).unwrap()
                }
                _ => a.bytes.clone(),
            };
            h.check_no_secret(&Answer {
                status: a.status,
                headers: a.headers.clone(),
                bytes,
                sent: a.sent.clone(),
            })?;
            if !wrote(&r.body, &a) {
                check(
                    before == after,
                    format!("changed state with {}: {}", a.status, a.text()),
                )?;
            }
            Ok(())
        })
    });
}
