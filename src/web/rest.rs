//! REST from the catalog: one route per operation and one handler for all of them. The handler
//! only translates: token → principal; path ids + query string or JSON body → the operation's
//! JSON arguments; the service's answer → the operation's success status or the §4 envelope.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, RawPathParams, Request, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post};
use serde_json::{Map, Value};

use super::AppState;
use super::error::{ApiError, current_docs_base, current_request_id};
use super::extract::request_ctx;
use crate::domain::error::{ApprovalNotice, Error, Result};
use crate::service::Surface;
use crate::service::core::op::{Done, DynOp, Input, Spec, Verb};

pub use super::limits::MAX_BODY_BYTES;

/// One route per operation, each answered by [`handle`].
pub fn routes(ops: impl IntoIterator<Item = &'static dyn DynOp>) -> Router<AppState> {
    let mut router = Router::new();
    for op in ops {
        let spec = op.spec();
        let schema = Arc::new(op.args_schema());
        let handler = move |State(s): State<AppState>, req: Request| {
            let schema = schema.clone();
            async move { handle(op, &schema, s, req).await }
        };
        let route: MethodRouter<AppState> = match spec.method {
            Verb::Get => get(handler),
            Verb::Post => post(handler),
            Verb::Patch => patch(handler),
            Verb::Delete => delete(handler),
        };
        router = router.route(spec.path, route);
    }
    router
}

async fn handle(op: &'static dyn DynOp, schema: &Value, s: AppState, req: Request) -> Response {
    let spec = op.spec();
    let (mut parts, body) = req.into_parts();
    let ctx = request_ctx(&parts, s.http.behind_proxy);
    let p = match s
        .authenticate_for(&parts.headers, &ctx, Surface::Rest, spec.metered)
        .await
    {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let input = Input {
        args: read_args(&spec, schema, &mut parts, body).await,
        idempotency_key: parts
            .headers
            .get("idempotency-key")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
    };
    match s.service.call(op, &p, input).await {
        Ok(done) => respond(&spec, done),
        Err(Error::ApprovalRequired(notice)) => held(*notice),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// A held call (issue 20): `202 Accepted`, the approval resource as `data`, the §4 error object
/// with `APPROVAL_REQUIRED` beside it, and `Location` at the page where a person decides.
fn held(notice: ApprovalNotice) -> Response {
    let url = notice.url.clone();
    let resource = notice.resource.clone();
    let mut body = ApiError::from(Error::ApprovalRequired(Box::new(notice)))
        .body
        .envelope(&current_request_id(), &current_docs_base());
    body["data"] = resource.unwrap_or_default();
    let mut res = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
    if let Ok(location) = HeaderValue::from_str(&url) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    res
}

/// The operation's success status and `{"data", "meta"}`; a replay says so in a header.
fn respond(spec: &Spec, done: Done) -> Response {
    let status = StatusCode::from_u16(spec.success_status).unwrap_or(StatusCode::OK);
    let mut res = (status, axum::Json(done.output)).into_response();
    if done.replayed {
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    res
}

/// The call's arguments as one JSON object: the path ids, and the query string (reads) or the
/// JSON body (writes). A malformed id in the path is not found, whatever else is wrong.
async fn read_args(spec: &Spec, schema: &Value, parts: &mut Parts, body: Body) -> Result<Value> {
    let path = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|_| Error::NotFound)?;
    let mut args = Map::new();
    for (name, value) in &path {
        if schema["properties"][name]["format"] == "uuid" && uuid::Uuid::parse_str(value).is_err() {
            return Err(Error::NotFound);
        }
        args.insert(name.to_owned(), Value::String(value.to_owned()));
    }
    let query = parts.uri.query().unwrap_or_default();
    let given: Map<String, Value> = if spec.method.takes_body() {
        if let Some((name, _)) = url::form_urlencoded::parse(query.as_bytes()).next() {
            return Err(Error::field(&name, "is not a known query parameter"));
        }
        read_body(parts, body).await?
    } else {
        let mut given = Map::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if given.contains_key(name.as_ref()) {
                return Err(Error::field(&name, "is given more than once"));
            }
            let value = typed(&schema["properties"][name.as_ref()], &value);
            given.insert(name.into_owned(), value);
        }
        given
    };
    for (name, value) in given {
        if args.contains_key(&name) {
            return Err(Error::field(&name, "is given by the path"));
        }
        args.insert(name, value);
    }
    Ok(Value::Object(args))
}

/// A query value as the JSON its schema asks for: a whole number or a boolean where one is
/// expected and the text is one; otherwise the text, which the operation's type then refuses.
fn typed(schema: &Value, raw: &str) -> Value {
    let mut types = Vec::new();
    for s in std::iter::once(schema).chain(schema["anyOf"].as_array().into_iter().flatten()) {
        match &s["type"] {
            Value::String(t) => types.push(t.as_str()),
            Value::Array(ts) => types.extend(ts.iter().filter_map(Value::as_str)),
            _ => {}
        }
    }
    if types.contains(&"integer")
        && let Ok(n) = raw.parse::<i64>()
    {
        return Value::from(n);
    }
    if types.contains(&"boolean")
        && let Ok(b) = raw.parse::<bool>()
    {
        return Value::Bool(b);
    }
    Value::String(raw.to_owned())
}

/// A JSON object body of at most [`MAX_BODY_BYTES`]; an empty body is `{}`. A key given twice
/// is refused rather than letting the last one silently win.
async fn read_body(parts: &Parts, body: Body) -> Result<Map<String, Value>> {
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(Error::PayloadTooLarge);
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| Error::PayloadTooLarge)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
        && !ct.trim_start().to_ascii_lowercase().starts_with("application/json")
    {
        return Err(Error::field("body", "must be JSON (Content-Type: application/json)"));
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Error::field("body", "must be a JSON object"));
    }
    match serde_json::from_slice::<strict::StrictValue>(&bytes) {
        Ok(strict::StrictValue(Value::Object(map))) => Ok(map),
        Ok(_) => Err(Error::field("body", "must be a JSON object")),
        Err(e) if e.to_string().starts_with(strict::DUPLICATE_KEY) => {
            Err(Error::field("body", "has a key given more than once"))
        }
        Err(_) => Err(Error::field("body", "is not valid JSON")),
    }
}

/// JSON parsed into a [`Value`] that refuses an object key given twice, at any depth.
mod strict {
    use std::fmt;

    use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    pub const DUPLICATE_KEY: &str = "duplicate key";

    pub struct StrictValue(pub Value);

    impl<'de> Deserialize<'de> for StrictValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(StrictVisitor).map(StrictValue)
        }
    }

    struct StrictVisitor;

    impl<'de> DeserializeSeed<'de> for StrictVisitor {
        type Value = Value;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
            d.deserialize_any(StrictVisitor)
        }
    }

    impl<'de> Visitor<'de> for StrictVisitor {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
            let mut map = Map::new();
            while let Some(key) = access.next_key::<String>()? {
                if map.contains_key(&key) {
                    return Err(de::Error::custom(DUPLICATE_KEY));
                }
                let value = access.next_value_seed(StrictVisitor)?;
                map.insert(key, value);
            }
            Ok(Value::Object(map))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = access.next_element_seed(StrictVisitor)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
            serde_json::Number::from_f64(v)
                .map(Value::Number)
                .ok_or_else(|| de::Error::custom("not a finite number"))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_none<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }
    }
}
