//! The HTTP surface: router, middleware, and the application that binds and serves it.

pub mod error;
pub mod extract;
pub mod limits;
mod meta;
mod v1;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;

use crate::domain::error::ErrorCode;
use crate::service::Service;
use error::{ApiError, REQUEST_ID};
use limits::Limits;

#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Trust the last `X-Forwarded-For` hop as the client address.
    pub behind_proxy: bool,
    pub public_url: String,
}

#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub limits: Arc<Limits>,
    pub http: Arc<HttpConfig>,
}

pub fn router(state: AppState) -> Router {
    let _ = error::DOCS_BASE.set(format!("{}/docs", state.http.public_url.trim_end_matches('/')));
    Router::new()
        .merge(v1::router().route_layer(middleware::from_fn_with_state(state.clone(), v1::audit_rejections)))
        .merge(meta::router())
        .fallback(|| async { ApiError::new(ErrorCode::ResourceNotFound, "No such route.") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "This route does not accept this method.")
        })
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Gives every request an id: in the response header, error bodies and audit entries.
async fn request_id(req: Request, next: Next) -> Response {
    let id = crate::domain::ids::new_id();
    let mut res = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// The address a server is reachable at once bound (port 0 gives a free one).
pub fn make_service(router: Router) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    router.into_make_service_with_connect_info::<SocketAddr>()
}
