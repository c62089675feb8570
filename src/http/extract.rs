//! What the HTTP surfaces read from a request: the client's address, the bearer token, the
//! audit context, and the calling principal.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header, request::Parts};

use super::AppState;
use super::error::{ApiError, current_request_id};
use crate::domain::audit::{ActorKind, RequestCtx};
use crate::service::Principal;

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

/// Where a request came from, for its audit entry; passed explicitly to the service.
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
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        ctx: &RequestCtx,
        actor: ActorKind,
    ) -> Result<Principal, ApiError> {
        let ip = ctx.ip.clone().unwrap_or_default();
        if let Some(wait) = self.limits.auth_blocked(&ip) {
            return Err(ApiError::rate_limited(wait));
        }
        match self.service.authenticate(bearer(headers), actor, ctx).await {
            Ok(p) => {
                let bucket = if actor == ActorKind::Mcp {
                    &self.limits.mcp
                } else {
                    &self.limits.rest
                };
                if let Some(wait) = p.token_id().and_then(|id| bucket.check(id)) {
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
