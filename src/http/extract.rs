//! Extractors: the calling principal, JSON bodies and query strings, all failing into the §4
//! envelope.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::{HeaderMap, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::{ApiError, current_request_id};
use crate::domain::audit::{ActorKind, RequestCtx};
use crate::domain::error::ErrorCode;
use crate::service::{Done, IdempotencyKey, Principal};

/// The largest JSON body `/v1` accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The client's IP: the peer address, or behind a TLS proxy the address it appended last.
pub fn client_ip(parts: &Parts, behind_proxy: bool) -> Option<String> {
    if behind_proxy
        && let Some(xff) = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(last) = xff.rsplit(',').next().map(str::trim).filter(|s| !s.is_empty())
    {
        return Some(last.to_owned());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

pub fn request_ctx(parts: &Parts, behind_proxy: bool) -> RequestCtx {
    RequestCtx {
        request_id: Some(current_request_id()),
        ip: client_ip(parts, behind_proxy),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
        client: None,
    }
}

impl AppState {
    /// Resolves the principal of one request, applying the auth-failure and per-token limits.
    pub async fn authenticate(&self, parts: &Parts, actor: ActorKind) -> Result<Principal, ApiError> {
        let ctx = request_ctx(parts, self.http.behind_proxy);
        let ip = ctx.ip.clone().unwrap_or_default();
        if let Some(wait) = self.limits.auth_blocked(&ip) {
            return Err(ApiError::rate_limited(wait));
        }
        match self.service.authenticate(bearer(&parts.headers), actor, ctx).await {
            Ok(p) => {
                if let Some(slot) = parts.extensions.get::<PrincipalSlot>() {
                    *slot.0.lock().expect("slot") = Some(p.clone());
                }
                let bucket = if actor == ActorKind::Mcp {
                    &self.limits.mcp
                } else {
                    &self.limits.rest
                };
                if let Some(wait) = bucket.check(&p.token_id) {
                    return Err(ApiError::rate_limited(wait));
                }
                Ok(p)
            }
            Err(_) => match self.limits.auth_failed(&ip) {
                Some(wait) => Err(ApiError::rate_limited(wait)),
                None => Err(ApiError::unauthenticated()),
            },
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        state.authenticate(parts, ActorKind::ApiToken).await
    }
}

/// Where the principal of a request is left for the middleware that audits refused input.
#[derive(Clone, Default)]
pub struct PrincipalSlot(pub std::sync::Arc<std::sync::Mutex<Option<Principal>>>);

/// A JSON body, with a digest of its bytes for Idempotency-Key fingerprints. An empty body is `{}`.
pub struct ApiJson<T> {
    pub value: T,
    /// The request's `Idempotency-Key`, fingerprinted with this body.
    pub idempotency: Option<IdempotencyKey>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let bytes: Bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| too_large())?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            bytes
        };
        if let Some(ct) = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
            && !ct.trim_start().to_ascii_lowercase().starts_with("application/json")
        {
            return Err(ApiError::validation(
                "body",
                "must be JSON (Content-Type: application/json)",
            ));
        }
        let fingerprint = {
            let mut h = Sha256::new();
            h.update(parts.method.as_str().as_bytes());
            h.update(b" ");
            h.update(parts.uri.path().as_bytes());
            h.update(b"\n");
            h.update(&bytes);
            hex::encode(h.finalize())
        };
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::validation("body", "must be a JSON object"));
        }
        if carries_a_token(&bytes) {
            return Err(ApiError::validation(
                "body",
                "contains a MemberPass API token; tokens never belong in request fields (revoke it if it was shared)",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(de).map_err(|e| json_error(&e))?;
        let idempotency = idempotency_key(&parts.headers, &fingerprint)?;
        Ok(ApiJson { value, idempotency })
    }
}

/// Whether a body holds a well-formed token (checksum and all): such input is refused rather than
/// stored where it would outlive a revocation (a name, a ban reason, an audit entry).
fn carries_a_token(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.match_indices(crate::domain::token::PREFIX).any(|(at, _)| {
        text.get(at..at + crate::domain::token::TOKEN_LEN)
            .is_some_and(|candidate| crate::domain::token::TokenSecret::parse(candidate).is_ok())
    })
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("The body is larger than {MAX_BODY_BYTES} bytes."),
    )
    .input()
}

/// Turns a serde error into `fields`: which field, and why, without echoing the input.
fn json_error(e: &serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let inner = e.inner();
    let msg = inner.to_string();
    let path = e.path().to_string();
    let named = |prefix: &str| {
        msg.strip_prefix(prefix)
            .and_then(|r| r.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = named("unknown field `") {
        // The path already ends with the unknown field.
        let field = if path == "." || path.is_empty() { field } else { path };
        return ApiError::validation(&field, "is not a known field");
    }
    if let Some(field) = named("missing field `") {
        return ApiError::validation(&field, "is required");
    }
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::validation("body", "is not valid JSON");
    }
    let why = msg.split(" at line ").next().unwrap_or("is invalid").to_owned();
    let field = if path == "." || path.is_empty() {
        "body".to_owned()
    } else {
        path
    };
    ApiError::validation(&field, why)
}

/// A query string, failing into VALIDATION_FAILED.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_owned();
                let (field, why) = match detail.split_once(": ") {
                    Some((f, w)) if !f.contains(' ') => (f.to_owned(), w.to_owned()),
                    _ => ("query".to_owned(), detail),
                };
                ApiError::validation(&field, why)
            })
    }
}

/// The `Idempotency-Key` header, if any.
pub fn idempotency_key(headers: &HeaderMap, fingerprint: &str) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 255);
    let key =
        key.ok_or_else(|| ApiError::validation("Idempotency-Key", "must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(IdempotencyKey {
        key: key.to_owned(),
        fingerprint: fingerprint.to_owned(),
    }))
}

/// Renders an operation's result: its status and `{"data", "meta"}`, or a replayed response.
pub fn respond(status: u16, done: Done) -> Response {
    match done {
        Done::Fresh(output) => {
            let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
            (status, axum::Json(output)).into_response()
        }
        Done::Replayed(replay) => {
            let status = axum::http::StatusCode::from_u16(replay.status).unwrap_or(axum::http::StatusCode::OK);
            (
                status,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::HeaderName::from_static("idempotent-replayed"), "true"),
                ],
                replay.body,
            )
                .into_response()
        }
    }
}
