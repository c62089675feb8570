//! What an operation is. Each operation of SPEC §5 is one type implementing [`Operation`]: its
//! row of the catalog ([`Spec`]), its argument type (which is also its published schema), its
//! output type (the published schema of a success) and its body. Every surface reaches it through [`DynOp`], the same object the catalog lists.

use std::future::Future;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::call::Call;
use super::caller::Caller;
pub use super::output::{BoxFuture, Done, JsonOutput, One, PageMeta, Paged, to_value};
use super::service::Service;
use crate::domain::ability::Ability;
use crate::domain::error::Result;

/// The REST method of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
        }
    }

    /// Whether REST reads the arguments from a JSON body (else from the query string).
    pub fn takes_body(self) -> bool {
        matches!(self, Verb::Post | Verb::Patch)
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an operation touches state; drives the MCP annotations and the audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    Read,
    Write,
    Destructive,
}

/// One row of the catalog.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spec {
    /// The operation's name: its MCP tool name and OpenAPI `operationId`.
    pub name: &'static str,
    /// What the audit entry's `event` says (the name, except for token lifecycle events).
    pub event: &'static str,
    /// The ability the caller needs, if any.
    #[serde(serialize_with = "ser_ability")]
    pub ability: Option<Ability>,
    pub method: Verb,
    pub path: &'static str,
    /// The audit entry's `subject_type`.
    pub subject_type: &'static str,
    /// The argument that names the subject, if one does (creations name theirs once they exist).
    pub subject_arg: Option<&'static str>,
    /// For a creation: the argument under which other operations take the id it returns
    /// (`project_id`), which `/openapi.json` turns into links.
    pub creates: Option<&'static str>,
    pub effect: Effect,
    /// Doing it twice has the effect of doing it once (MCP `idempotentHint`).
    pub idempotent: bool,
    /// Accepts an `Idempotency-Key`: a repeat within 24 h replays the first result.
    pub replayable: bool,
    /// The HTTP status of a success.
    pub success_status: u16,
    pub summary: &'static str,
    /// Taken from the token's rate-limit bucket. Only a token revoking itself is not: a leaked
    /// token's own traffic must never stand between its holder and its revocation.
    #[serde(skip)]
    pub metered: bool,
}

fn ser_ability<S: serde::Serializer>(a: &Option<Ability>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match a {
        Some(a) => s.serialize_str(a.as_str()),
        None => s.serialize_none(),
    }
}

impl Spec {
    /// The fields most reads share; each operation names the rest.
    pub const READ: Spec = Spec {
        name: "",
        event: "",
        ability: None,
        method: Verb::Get,
        path: "",
        subject_type: "",
        subject_arg: None,
        creates: None,
        effect: Effect::Read,
        idempotent: true,
        replayable: false,
        success_status: 200,
        summary: "",
        metered: true,
    };

    /// The fields most state-setting writes share (`POST`, replayable, idempotent).
    pub const WRITE: Spec = Spec {
        method: Verb::Post,
        effect: Effect::Write,
        replayable: true,
        ..Spec::READ
    };

    /// A creation: not idempotent without a key, answered with 201.
    pub const CREATE: Spec = Spec {
        idempotent: false,
        success_status: 201,
        ..Spec::WRITE
    };

    pub fn is_write(&self) -> bool {
        self.effect != Effect::Read
    }

    /// The path parameters, in order (`{project_id}` → `project_id`).
    pub fn path_params(&self) -> Vec<&'static str> {
        self.path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

/// One operation of SPEC §5: its catalog row, its arguments, its body.
///
/// The body runs inside the call's transaction, after the ability check, and everything it
/// loads goes through the scoped loaders of its resource module. What it notes on the [`Call`]
/// becomes the audit entry, committed with its writes.
pub trait Operation: Send + Sync + 'static {
    /// The arguments, path ids included: the one type every surface deserialises into, and the
    /// source of the operation's published JSON Schema.
    type Args: DeserializeOwned + Serialize + JsonSchema + Send + 'static;

    /// What a success answers ([`One`] object or a [`Paged`] list): the source of the published
    /// schema of its `data` (and `meta`). Only the surfaces see it erased, as [`JsonOutput`].
    type Output: Serialize + JsonSchema + Send + 'static;

    const SPEC: Spec;

    fn run(c: &mut Call, args: Self::Args) -> impl Future<Output = Result<Self::Output>> + Send;
}

/// A call's input as a surface could read it: its arguments as JSON, or why they could not be
/// read (a body too large, not JSON, a path that does not decode). Either way the service
/// checks the ability first and audits the outcome.
#[derive(Debug)]
pub struct Input {
    pub args: Result<Value>,
    pub idempotency_key: Option<String>,
}

impl Input {
    pub fn json(args: Value) -> Self {
        Input {
            args: Ok(args),
            idempotency_key: None,
        }
    }
}

/// An operation as every surface holds it: the catalog is a list of these.
pub trait DynOp: Send + Sync {
    fn spec(&self) -> Spec;

    /// The JSON Schema of the arguments, subschemas inlined.
    fn args_schema(&self) -> Value;

    /// The JSON Schema of a success's body (`data`, and `meta` for lists), subschemas inlined.
    fn output_schema(&self) -> Value;

    /// Runs the operation for `caller`: ability check, then the arguments, then the body, with its
    /// audit entry. See [`Service::call`].
    fn call<'a>(&'a self, service: &'a Service, caller: &'a Caller, input: Input) -> BoxFuture<'a, Result<Done>>;
}

impl<O: Operation> DynOp for O {
    fn spec(&self) -> Spec {
        O::SPEC
    }

    fn args_schema(&self) -> Value {
        schema_of::<O::Args>()
    }

    fn output_schema(&self) -> Value {
        let mut schema = schema_of::<O::Output>();
        every_field_required(&mut schema);
        schema
    }

    fn call<'a>(&'a self, service: &'a Service, caller: &'a Caller, input: Input) -> BoxFuture<'a, Result<Done>> {
        Box::pin(service.call_json::<O>(caller, input))
    }
}

/// Marks every property of every object schema in `schema` required. An output's fields are
/// always there (`null` when empty: no output skips one), and the schema says so, which
/// schemars does not for `Option` fields.
fn every_field_required(schema: &mut Value) {
    let Value::Object(m) = schema else { return };
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        props.values_mut().for_each(every_field_required);
        let names = props.keys().cloned().map(Value::String).collect();
        m.insert("required".into(), Value::Array(names));
    }
    for (key, sub) in m.iter_mut() {
        match (key.as_str(), sub) {
            ("items" | "additionalProperties", sub) => every_field_required(sub),
            ("anyOf" | "oneOf" | "allOf", Value::Array(subs)) => subs.iter_mut().for_each(every_field_required),
            ("$defs", Value::Object(defs)) => defs.values_mut().for_each(every_field_required),
            _ => {}
        }
    }
}

/// A schema as it is published inside another document (an OpenAPI response, an MCP tool):
/// without its `$schema` and generated `title`, an object.
pub fn published_schema(mut schema: Value) -> serde_json::Map<String, Value> {
    if let Some(m) = schema.as_object_mut() {
        m.remove("$schema");
        m.remove("title");
    }
    match schema {
        Value::Object(m) => m,
        _ => Default::default(),
    }
}

/// A type's JSON Schema with every subschema inlined, so each property stands on its own (an
/// OpenAPI parameter, an MCP input schema).
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    serde_json::to_value(schema).unwrap_or_default()
}
