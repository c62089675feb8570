//! Every answer of `/mcp` is JSON-RPC. rmcp answers a body that is not a JSON-RPC message with
//! `415 Unsupported Media Type` and a plain-text reason, and its other HTTP-level refusals
//! (`Accept`, `Content-Type`, `MCP-Protocol-Version`) in plain text too, which MCP clients
//! discard. So a POST body is checked before rmcp reads it (a body that is not JSON is a
//! JSON-RPC parse error, JSON that is not a message an invalid request, both `400`), and any
//! other plain-text `4xx` of rmcp's is carried in a JSON-RPC error with its status kept.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use rmcp::model::ClientJsonRpcMessage;
use serde_json::{Value, json};

use crate::domain::audit::redact_token_runs;
use crate::domain::error::{Error, ErrorCode};
use crate::domain::token::contains_token;
use crate::web::error::{ApiError, current_docs_base, current_request_id};
use crate::web::limits::MAX_BODY_BYTES;

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// The body of a JSON POST, once it is known to be one JSON-RPC message that rmcp will read;
/// otherwise the JSON-RPC error that answers it. Other requests pass untouched.
pub async fn checked_body(parts: &Parts, body: Body) -> Result<Body, Response> {
    if parts.method != Method::POST || !is_json(&parts.headers) {
        return Ok(body);
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Err(refusal(ApiError::from(Error::PayloadTooLarge), Value::Null));
    };
    // The same type rmcp reads the body into, so what passes here is what rmcp accepts.
    if serde_json::from_slice::<ClientJsonRpcMessage>(&bytes).is_ok() {
        // Read a second time, as a tree, only when a token could be in it: written out, or
        // behind a `\u` escape. Most messages hold neither and are not parsed again.
        let text = std::str::from_utf8(&bytes).unwrap_or_default();
        let may_hold_token = contains_token(text) || text.contains("\\u");
        if may_hold_token && token_outside_arguments(&serde_json::from_slice(&bytes).unwrap_or_default()) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                Value::Null,
                INVALID_REQUEST,
                "Invalid Request: the message holds a MemberPass API token outside a tool's arguments; \
                 tokens never belong in requests (revoke it if it was shared).",
            ));
        }
        return Ok(Body::from(bytes));
    }
    Err(match serde_json::from_slice::<Value>(&bytes) {
        Err(_) => error(
            StatusCode::BAD_REQUEST,
            Value::Null,
            PARSE_ERROR,
            "Parse error: the body is not JSON.",
        ),
        Ok(v) => {
            let id = echoable_id(v.get("id"));
            error(
                StatusCode::BAD_REQUEST,
                id,
                INVALID_REQUEST,
                "Invalid Request: the body is not one JSON-RPC 2.0 request, notification or response this server accepts.",
            )
        }
    })
}

/// Whether a well-formed token is anywhere in the message but a `tools/call`'s arguments.
/// rmcp logs a request's id and method, and an error's message, at `warn`, and errors repeat
/// what they name (an unknown method, a resource URI): a token there would be logged and sent
/// back. A tool's arguments go to the operation, which refuses a token as a bad argument.
fn token_outside_arguments(message: &Value) -> bool {
    let mut rest = message.clone();
    if let Some(params) = rest.get_mut("params").and_then(Value::as_object_mut) {
        params.remove("arguments");
    }
    holds_token(&rest)
}

fn holds_token(v: &Value) -> bool {
    match v {
        Value::String(s) => contains_token(s),
        Value::Array(items) => items.iter().any(holds_token),
        Value::Object(map) => map.iter().any(|(k, v)| contains_token(k) || holds_token(v)),
        _ => false,
    }
}

/// The id a refusal may answer with: a string or a number, and not one holding a token.
pub fn echoable_id(id: Option<&Value>) -> Value {
    id.filter(|id| id.is_string() || id.is_i64() || id.is_u64())
        .filter(|id| !holds_token(id))
        .cloned()
        .unwrap_or(Value::Null)
}

/// rmcp's plain-text `4xx` answers, as JSON-RPC errors with the same status and headers.
pub async fn as_json_rpc(res: Response) -> Response {
    if !res.status().is_client_error() || is_json(res.headers()) {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    // Its reason may quote a header the client sent; a token there is not repeated.
    let reason: String = redact_token_runs(String::from_utf8_lossy(&text).lines().next().unwrap_or_default())
        .chars()
        .take(200)
        .collect();
    let reason = if reason.is_empty() {
        parts.status.canonical_reason().unwrap_or("Bad request").to_owned()
    } else {
        reason
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    let rpc = error(parts.status, Value::Null, INVALID_REQUEST, &reason);
    let (rpc_parts, body) = rpc.into_parts();
    parts.headers.extend(rpc_parts.headers);
    Response::from_parts(parts, body)
}

fn error(status: StatusCode, id: Value, code: i64, message: &str) -> Response {
    let rpc = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (status, axum::Json(rpc)).into_response()
}

/// `Content-Type: application/json`, parameters aside, as rmcp reads it.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// The JSON-RPC error code of every refusal at the HTTP layer (SPEC §6).
const REFUSED: i64 = -32001;

/// A refusal at the HTTP layer as SPEC §6 has it: JSON-RPC error `-32001`, the §4 object in
/// `data`, the status and headers of its code.
pub(super) fn refusal(error: ApiError, id: Value) -> Response {
    let envelope = error.body.envelope(&current_request_id(), &current_docs_base());
    let message = format!("{}: {}", error.body.code.as_str(), error.body.message);
    let rpc =
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": REFUSED, "message": message, "data": envelope["error"]}});
    let status = StatusCode::from_u16(error.body.code.http_status()).unwrap_or(StatusCode::FORBIDDEN);
    let mut res = (status, axum::Json(rpc)).into_response();
    if error.body.code == ErrorCode::AuthenticationRequired {
        res.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(secs) = error.retry_after_secs {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    res
}
