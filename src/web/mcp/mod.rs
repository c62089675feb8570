//! The MCP surface (SPEC §6): Streamable HTTP at `/mcp` with the official Rust SDK, stateless
//! with JSON responses so any replica serves any request. Every tool is an operation of the
//! catalog, called through the same [`Service::call`] as REST: no MCP-specific operation code.
//!
//! The HTTP guard ([`guard`]) runs before any JSON-RPC: token, `mcp:full`, the `mcp` bucket,
//! `Host` and `Origin`. Its refusals are JSON-RPC error bodies with the §4 object in `data`.

pub mod clients;
mod framing;
mod guard;
mod server;
pub mod tools;

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use crate::web::AppState;
use server::McpServer;

/// `/mcp`: the guard, then rmcp's Streamable HTTP service.
pub fn router(state: &AppState, allowed_hosts: Vec<String>) -> Router<AppState> {
    let service = state.service.clone();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        // The guard has already checked Host and Origin against the same lists, with
        // answers a client can show; rmcp's own checks stay on as a second line.
        .with_allowed_hosts(allowed_hosts)
        .with_max_request_body_bytes(crate::web::limits::MAX_BODY_BYTES);
    let mcp = StreamableHttpService::new(
        move || Ok(McpServer::new(service.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
}
