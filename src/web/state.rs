//! What every web surface is given: the service, the rate limits, the HTTP settings, the
//! request counts. A leaf: it imports nothing from the surfaces that use it.

use std::sync::Arc;

use super::limits::Limits;
use super::request_log::RequestCounts;
use crate::service::Service;

#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Trust the last `X-Forwarded-For` hop as the client address.
    pub behind_proxy: bool,
    pub public_url: String,
    /// How long one request may take before it is abandoned (its transaction rolls back).
    pub request_timeout: std::time::Duration,
    /// The browser origins `/mcp` accepts: the public URL's, and `--allowed-origin`'s; requests
    /// without one always pass.
    pub allowed_origins: Vec<String>,
    /// The `Host` names `/mcp` answers to: the public URL's host and the loopback names.
    pub mcp_hosts: Vec<String>,
}

/// What every handler and middleware is given: one pointer, so the per-request clones axum makes
/// cost one atomic increment each.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

pub struct Shared {
    pub service: Service,
    pub limits: Arc<Limits>,
    pub http: Arc<HttpConfig>,
    /// What the request log has counted since its last summary.
    pub requests: Arc<RequestCounts>,
}
