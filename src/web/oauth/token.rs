//! `POST /token` (RFC 6749 §3.2, OAuth 2.1: `authorization_code` with PKCE, `refresh_token`)
//! and `POST /revoke` (RFC 7009). Form-encoded in, JSON out, never cached; refusals are RFC
//! 6749's `{"error", "error_description"}` (400, or 401 for `invalid_client`). Public clients
//! only: no client authentication, `client_id` in the form.
//!
//! Limits: bodies are capped; `/token` takes from a per-address bucket of its own (as large as
//! the MCP bucket of one token: a client refreshes a few times an hour), not from the
//! failed-authentication bucket — an MCP client's expired access tokens are refused at `/mcp`
//! and counted there, and must not lock it out of the refresh that mends them; `/revoke` takes
//! from the per-address bucket of revoke by possession.
//! The checks and the audited writes are `service::accounts::oauth_tokens`.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::discovery::preflight;
use crate::service::accounts::oauth_tokens::{Issued, TokenRequest};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::extract::Ctx;
use crate::web::limits::Kind;

/// Largest `/token` or `/revoke` body read.
pub const MAX_TOKEN_BODY_BYTES: usize = 16 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/token", post(token).options(preflight))
        .route("/revoke", post(revoke).options(preflight))
}

/// What every answer of these endpoints carries: never cached (RFC 6749 §5.1), readable by a
/// browser-based client (no cookie is involved).
fn finish(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    finish((status, Json(json!({"error": error, "error_description": description}))).into_response())
}

/// The form's fields, each at most once (RFC 6749 §3.2); `None` when one is repeated.
fn fields(body: &[u8]) -> Option<TokenRequest> {
    let mut r = TokenRequest::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        let slot = match k.as_ref() {
            "grant_type" => &mut r.grant_type,
            "code" => &mut r.code,
            "redirect_uri" => &mut r.redirect_uri,
            "client_id" => &mut r.client_id,
            "code_verifier" => &mut r.code_verifier,
            "resource" => &mut r.resource,
            "refresh_token" => &mut r.refresh_token,
            "scope" => &mut r.scope,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return None;
        }
    }
    Some(r)
}

/// The form of `/token` or `/revoke`, at most 16 KiB; beyond it, the RFC 6749 `413`.
async fn form_body(body: Body) -> Result<axum::body::Bytes, Response> {
    axum::body::to_bytes(body, MAX_TOKEN_BODY_BYTES).await.map_err(|_| {
        oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "the request is larger than 16 KiB",
        )
    })
}

async fn token(State(s): State<AppState>, Ctx(ctx): Ctx, body: Body) -> Result<Response, ApiError> {
    s.limits.admit(Kind::OAuthTokens, &ctx).await?;
    let body = match form_body(body).await {
        Ok(body) => body,
        Err(too_large) => return Ok(too_large),
    };
    let Some(request) = fields(&body) else {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a parameter is repeated",
        ));
    };
    match s.service.token(request, &ctx).await? {
        Ok(issued) => Ok(issued_response(&issued)),
        Err(refused) => {
            let status = StatusCode::from_u16(refused.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Ok(oauth_error(status, refused.error, refused.description))
        }
    }
}

fn issued_response(issued: &Issued) -> Response {
    finish(
        Json(json!({
            "access_token": issued.access_token.expose_secret(),
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token.expose_secret(),
            "scope": issued.scope,
        }))
        .into_response(),
    )
}

async fn revoke(State(s): State<AppState>, Ctx(ctx): Ctx, body: Body) -> Result<Response, ApiError> {
    s.limits.admit(Kind::RevokeReports, &ctx).await?;
    let body = match form_body(body).await {
        Ok(body) => body,
        Err(too_large) => return Ok(too_large),
    };
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned());
    let Some(token) = token else {
        return Ok(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        ));
    };
    // RFC 7009 §2.2: 200 whether or not the token was known, valid or already revoked.
    s.service.revoke_oauth_token(&token, &ctx).await?;
    Ok(finish(StatusCode::OK.into_response()))
}
