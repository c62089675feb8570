//! Tools and resources from the catalog: each operation's MCP tool (name, title, description
//! naming its ability, annotations from its effect, input schema from its `Args`, output schema
//! from its `Output`), the `memberpass://enums/…` resources, and `/mcp-tools.json`.

use std::sync::Arc;

use rmcp::model::{Tool, ToolAnnotations};
use serde_json::{Value, json};

use crate::domain::approval::Surface;
use crate::domain::error::{ErrorBody, ErrorCode};
use crate::domain::kinds::{MemberStatus, SubscriptionStatus};
use crate::service::accounts::approvals::Outlook;
use crate::service::core::op::{DynOp, Effect, published_schema};
use crate::service::ops::catalog;

/// "list_projects" → "List projects".
fn title(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// What an agent reads before calling: what it does, the ability it needs, and how it behaves.
fn description(op: &dyn DynOp) -> String {
    let spec = op.spec();
    let needs = match spec.ability {
        Some(a) => format!("Requires the ability `{a}`."),
        None => "Needs no ability beyond `mcp:full`.".to_owned(),
    };
    let effect = match spec.effect {
        Effect::Read => "Read-only.",
        Effect::Write => "Changes data; audited.",
        Effect::Destructive => "Changes data and cannot be undone by calling it again; audited.",
    };
    format!(
        "{} {needs} {effect} Ids are UUIDs from other tools' results.",
        spec.summary
    )
}

/// Every operation's MCP tool, in catalog order, built once: a tool's input and output schemas
/// come from the operation's types and never change while the process runs, so `tools/list`
/// filters and clones them instead of generating 60 JSON Schemas per request.
pub fn all() -> &'static [Tool] {
    static TOOLS: std::sync::LazyLock<Vec<Tool>> =
        std::sync::LazyLock::new(|| crate::service::ops::catalog::all().map(tool).collect());
    &TOOLS
}

/// The MCP tool of an operation.
pub fn tool(op: &dyn DynOp) -> Tool {
    let spec = op.spec();
    let schema = published_schema(op.args_schema());
    // What `structuredContent` holds: the REST body, `{"data": …}` (and `meta` for lists) — or,
    // for a refused call (`isError`), the §4 envelope `{"error": …}`. Both are declared: a client
    // that checks every structured result against the schema (the TypeScript SDK does, errors
    // included) must not turn a refusal it should read into a protocol error.
    let mut output = published_schema(op.output_schema());
    if let Some(required) = output.remove("required") {
        output.insert("anyOf".into(), json!([{"required": required}, {"required": ["error"]}]));
    }
    if let Some(Value::Object(props)) = output.get_mut("properties") {
        props.insert("error".into(), crate::domain::error::error_object_schema());
    }
    let annotations = ToolAnnotations::from_raw(
        Some(title(spec.name)),
        Some(spec.effect == Effect::Read),
        Some(spec.effect == Effect::Destructive),
        Some(spec.idempotent),
        Some(false),
    );
    Tool::new(spec.name, description(op), Arc::new(schema))
        .with_title(title(spec.name))
        .with_annotations(annotations)
        .with_raw_output_schema(Arc::new(output))
}

/// A tool as this caller sees it: under the team's policy a held tool says so in its
/// description and in `_meta["io.memberpass/approval"]` (MCP's annotations are a closed set of
/// hints, none of which says "a person must approve"), and a budgeted one says how many calls
/// remain in the rolling 24 h.
pub fn as_seen(tool: &Tool, op: &dyn DynOp, outlook: &Outlook) -> Tool {
    let name = op.spec().name;
    let held = outlook.policy.needs_approval(name, Surface::Mcp);
    let budget = outlook.budgets.iter().find(|(o, _, _)| o == name);
    if !held && budget.is_none() {
        return tool.clone();
    }
    let mut tool = tool.clone();
    let mut description = tool.description.as_deref().unwrap_or_default().to_owned();
    let mut approval = serde_json::Map::new();
    if held {
        description.push_str(
            " Needs a person's approval under your team's policy: the call answers APPROVAL_REQUIRED with the \
             approval page's URL and runs nothing; relay the URL, and once a person has approved, call it again \
             with the same arguments.",
        );
        approval.insert("required".into(), json!(true));
    }
    if let Some((_, limit, used)) = budget {
        let left = (limit - used).max(0);
        description.push_str(&format!(
            " This token may make {limit} of these calls per rolling 24 h ({left} left); past that, each needs a \
             person's approval."
        ));
        approval.insert(
            "budget".into(),
            json!({"limit": limit, "used": used, "remaining": left, "window": "24h"}),
        );
    }
    tool.description = Some(description.into());
    let mut meta = tool.meta.take().unwrap_or_default();
    meta.0.insert(APPROVAL_META.into(), Value::Object(approval));
    tool.meta = Some(meta);
    tool
}

/// The `_meta` key a tool's approval rule is published under.
pub const APPROVAL_META: &str = "io.memberpass/approval";

/// A sentence an agent can relay to its user about a refused call.
pub fn relayable(body: &ErrorBody) -> String {
    match (body.code, body.required_ability) {
        (ErrorCode::TokenMissingAbility, Some(a)) => format!(
            "This token lacks `{a}`; mint one with it in Settings → API Tokens (the owner's role must hold it too)."
        ),
        // The message already says what to do, with the approval page's URL.
        (ErrorCode::ApprovalRequired | ErrorCode::ApprovalInvalid, _) => body.message.clone(),
        _ => format!("{} {}", body.message, body.code.remediation()),
    }
}

type Content = fn() -> Value;

/// The resources of SPEC §6: URI, name, content.
pub const RESOURCES: &[(&str, &str, Content)] = &[
    ("memberpass://enums/ability", "ability", || {
        crate::domain::ability::catalog_json()
    }),
    ("memberpass://enums/error-code", "error-code", || {
        crate::domain::error::catalog_json()
    }),
    (
        "memberpass://enums/member-status",
        "member-status",
        || json!({"data": MemberStatus::ALL}),
    ),
    (
        "memberpass://enums/subscription-status",
        "subscription-status",
        || json!({"data": SubscriptionStatus::ALL}),
    ),
];

/// `/mcp-tools.json`: every tool as the server registers it, with its ability.
pub fn catalog_json() -> Value {
    let tools: Vec<Value> = catalog::all()
        .map(|op| {
            let mut t = serde_json::to_value(tool(op)).unwrap_or_default();
            t["ability"] = json!(op.spec().ability.map(|a| a.as_str()));
            t
        })
        .collect();
    json!({ "data": tools })
}
