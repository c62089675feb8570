//! Discovery: where a client learns that `/mcp` takes OAuth and how.
//!
//! - RFC 9728 protected-resource metadata: `/.well-known/oauth-protected-resource/mcp` for the
//!   resource `<public URL>/mcp`, and `/.well-known/oauth-protected-resource` for the origin
//!   (older clients probe the root; a client checks `resource` against the URL it was given).
//! - RFC 8414 authorization-server metadata at `/.well-known/oauth-authorization-server`, the
//!   same document at `/.well-known/openid-configuration` (clients try both).
//! - Any other `/.well-known/*` is a `404` in the §4 envelope, never a redirect.
//!
//! The documents are public and hold no credential: any origin may read them (CORS `*`), as a
//! browser-based client (the MCP Inspector) must.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

use crate::domain::error::ErrorCode;
use crate::domain::oauth::{all_scopes, baseline_scopes, issuer, mcp_resource};
use crate::web::AppState;
use crate::web::error::ApiError;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(mcp_resource_metadata).options(preflight),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(origin_resource_metadata).options(preflight),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(authorization_server_metadata).options(preflight),
        )
        .route(
            "/.well-known/openid-configuration",
            get(authorization_server_metadata).options(preflight),
        )
        .route("/.well-known/{*rest}", any(unknown))
}

/// The protected-resource document of `resource`.
pub fn resource_metadata(public_url: &str, resource: &str) -> Value {
    json!({
        "resource": resource,
        "authorization_servers": [issuer(public_url)],
        "scopes_supported": baseline_scopes(),
        "bearer_methods_supported": ["header"],
        "resource_name": "MemberPass MCP",
    })
}

/// The authorization server's document: endpoints at the issuer's root.
pub fn authorization_server(public_url: &str) -> Value {
    let issuer = issuer(public_url);
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": all_scopes(),
        "client_id_metadata_document_supported": true,
        "authorization_response_iss_parameter_supported": true,
    })
}

async fn mcp_resource_metadata(State(s): State<AppState>) -> Response {
    public(resource_metadata(&s.http.public_url, &mcp_resource(&s.http.public_url)))
}

async fn origin_resource_metadata(State(s): State<AppState>) -> Response {
    public(resource_metadata(&s.http.public_url, &issuer(&s.http.public_url)))
}

async fn authorization_server_metadata(State(s): State<AppState>) -> Response {
    public(authorization_server(&s.http.public_url))
}

async fn unknown() -> ApiError {
    ApiError::new(ErrorCode::ResourceNotFound, "No such discovery document.")
}

fn public(document: Value) -> Response {
    let mut res = Json(document).into_response();
    res.headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    res
}

/// A browser's CORS preflight (a client sending `MCP-Protocol-Version` with its GET).
pub(super) async fn preflight() -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    let h = res.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, MCP-Protocol-Version"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    res
}
