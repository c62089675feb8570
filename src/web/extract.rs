//! What the HTTP surfaces read from a request: the client's address, the bearer token, the
//! audit context, and the caller a token stands for.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{HeaderMap, header, request::Parts};

use super::AppState;
use super::error::{ApiError, current_request_id};
use super::limits::Kind;
use crate::domain::audit::RequestCtx;
use crate::domain::error::{Error, ErrorCode};
use crate::service::core::auth::AuthError;
use crate::service::{Caller, Surface};

/// The client's IP: the peer address, or behind a TLS proxy the hop the proxy appended last.
/// Every `X-Forwarded-For` line counts (a client can send its own lines before the proxy's); a
/// last hop that is not an IP address is ignored in favour of the peer address.
pub fn client_ip(parts: &Parts, behind_proxy: bool) -> Option<String> {
    let peer = || {
        parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip().to_string())
    };
    if !behind_proxy {
        return peer();
    }
    let last_hop = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|line| line.to_str().ok())
        .and_then(|line| line.rsplit(',').next())
        .and_then(|hop| hop.trim().parse::<IpAddr>().ok());
    match last_hop {
        Some(ip) => Some(ip.to_string()),
        None => peer(),
    }
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Where a request came from, as a handler's argument: `Ctx(ctx): Ctx`.
pub struct Ctx(pub RequestCtx);

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Ctx(request_ctx(parts, s.http.behind_proxy)))
    }
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
            .and_then(|s| crate::domain::text::label(s, crate::store::audit::LABEL_MAX)),
        client: None,
    }
}

impl AppState {
    /// Resolves the caller of one request, applying the auth-failure and per-token limits.
    ///
    /// A refused token takes a slot of its IP's failure bucket before its refusal is recorded:
    /// past the limit it is answered `429` and leaves no entry, so parallel requests cannot
    /// write more `auth.failed` entries (or get more answers) than the limit allows. A locked-out
    /// IP is refused after the token lookup (with a good token too), so a locked-out and an
    /// unlocked IP take the same path and the lock-out check shares the bucket's round trip.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        ctx: &RequestCtx,
        surface: Surface,
    ) -> Result<Caller, ApiError> {
        self.authenticate_for(headers, ctx, surface, true).await
    }

    /// [`AppState::authenticate`], taking from the token's bucket only when `metered` (see
    /// [`crate::service::core::op::Spec::metered`]); the address's lock-out applies either way.
    pub async fn authenticate_for(
        &self,
        headers: &HeaderMap,
        ctx: &RequestCtx,
        surface: Surface,
        metered: bool,
    ) -> Result<Caller, ApiError> {
        let ip = ctx.ip.clone().unwrap_or_default();
        let limited = |e: sqlx::Error| ApiError::from(Error::Internal(e.into()));
        let kind = match surface {
            Surface::Mcp => Kind::Mcp,
            Surface::Rest => Kind::Rest,
        };
        // One round trip on PostgreSQL: the address's lock-out, then the token's bucket.
        let take = |p: &Caller| {
            let id = p.token_id().filter(|_| metered).map(str::to_owned);
            let ip = ip.clone();
            async move {
                match id {
                    Some(id) => self.limits.take_unless_blocked(kind, &id, Some(&ip)).await,
                    None => self.limits.auth_blocked(&ip).await,
                }
            }
        };
        match self.service.authenticate(bearer(headers), surface, ctx).await {
            Ok(p) => {
                if let Some(wait) = take(&p).await.map_err(limited)? {
                    return Err(ApiError::rate_limited(wait));
                }
                Ok(p)
            }
            // The right secret from the wrong network: no authentication failure (the address's
            // failure bucket is untouched), but the token's own bucket pays for it, and it is
            // audited before it is answered.
            Err(AuthError::OutsideAllowList(refused)) => {
                let (p, entry) = *refused;
                if let Some(wait) = take(&p).await.map_err(limited)? {
                    return Err(ApiError::rate_limited(wait));
                }
                self.service.record_denied(entry).await?;
                Err(ApiError::new(
                    ErrorCode::TokenIpNotAllowed,
                    "This token may not be used from this network address.",
                ))
            }
            // A pasted token on /mcp when the team allows only OAuth apps: the same treatment.
            Err(AuthError::PolicyRefused(refused)) => {
                let (p, entry, violation) = *refused;
                if let Some(wait) = take(&p).await.map_err(limited)? {
                    return Err(ApiError::rate_limited(wait));
                }
                self.service.record_denied(entry).await?;
                Err(Error::from(violation).into())
            }
            Err(AuthError::Internal(e)) => Err(e.into()),
            Err(AuthError::Refused(refusal)) => match self.limits.auth_failed(&ip).await.map_err(limited)? {
                Some(wait) => Err(ApiError::rate_limited(wait)),
                None => {
                    self.service.record_refusal(refusal);
                    Err(ApiError::unauthenticated())
                }
            },
        }
    }
}
