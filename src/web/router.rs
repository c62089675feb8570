//! The one router: every surface's routes merged, then the layers every request passes (request
//! id and log, panic and timeout answers in the §4 envelope, body and header limits).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;

use super::error::{self, ApiError, REQUEST_SCOPE, RequestScope};
use super::state::AppState;
use super::{dashboard, leaks, mcp, meta, oauth, request_log, rest};
use crate::domain::error::ErrorCode;

pub fn router(state: AppState) -> Router {
    let scope = ScopeState {
        docs_base: format!("{}/docs", state.http.public_url.trim_end_matches('/')).into(),
        requests: state.requests.clone(),
        metrics: state.service.metrics().clone(),
    };
    Router::new()
        .merge(rest::routes(crate::service::ops::catalog::all()))
        .merge(oauth::with_challenge(
            mcp::router(&state, state.http.mcp_hosts.clone()),
            &state,
        ))
        .merge(oauth::router())
        .merge(dashboard::router(&state))
        .merge(meta::router())
        .merge(leaks::router())
        .route_layer(middleware::from_fn(tag_route))
        .fallback(|| async { ApiError::new(ErrorCode::ResourceNotFound, "No such route.") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "This route does not accept this method.")
        })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                // The panic's message stays out of the response; the log has it with its request id.
                tracing::error!(request_id = %error::current_request_id(), "handler panicked");
                axum::response::IntoResponse::into_response(ApiError::new(
                    ErrorCode::InternalError,
                    "Something went wrong on our side.",
                ))
            },
        ))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async {
                        // A read's work is dropped with the handler. A write still waiting for its
                        // batch is not run (its entry says `abandoned`); one already running in
                        // the batch finishes, with its entry, whatever it answers.
                        tracing::warn!(request_id = %error::current_request_id(), "request timed out");
                        ApiError::new(
                            ErrorCode::InternalError,
                            "The request took too long and was abandoned. If it was a write, find its \
                             request id in the activity log before retrying, or retry with the same \
                             Idempotency-Key.",
                        )
                    },
                ))
                .timeout(state.http.request_timeout),
        )
        .layer(middleware::from_fn_with_state(scope, request_scope))
        .with_state(state)
}

/// What every request's scope starts from.
#[derive(Clone)]
struct ScopeState {
    docs_base: Arc<str>,
    requests: Arc<request_log::RequestCounts>,
    metrics: Arc<crate::metrics::Metrics>,
}

/// Gives every request an id: in the response header, error bodies and audit entries.
/// Counts and logs it (`request_log`): method, route, status, time. Never headers, bodies or
/// queries.
async fn request_scope(
    axum::extract::State(state): axum::extract::State<ScopeState>,
    req: Request,
    next: Next,
) -> Response {
    let id = crate::domain::ids::new_id();
    let header = HeaderValue::from_str(&id).ok();
    let scope = RequestScope {
        request_id: id.clone(),
        docs_base: state.docs_base,
    };
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let started = std::time::Instant::now();
    let mut res = REQUEST_SCOPE.scope(scope, next.run(req)).await;
    let took = started.elapsed();
    let status = res.status().as_u16();
    state.metrics.http(&path, status, took);
    match res.extensions_mut().remove::<RouteTemplate>() {
        Some(RouteTemplate(route)) => state.requests.record(&id, &method, route.as_str(), status, took),
        None => state.requests.record(&id, &method, &loggable_path(&path), status, took),
    }
    let headers = res.headers_mut();
    if let Some(v) = header {
        headers.insert("x-request-id", v);
    }
    // API answers are per caller and may describe tokens: never cache them.
    headers.insert(axum::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    res
}

/// The route a request matched (`/v1/projects/{project_id}`), carried out to the request log so
/// that what a client put in a path (ids, or a pasted token) is never logged.
#[derive(Clone)]
struct RouteTemplate(axum::extract::MatchedPath);

async fn tag_route(matched: axum::extract::MatchedPath, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    res.extensions_mut().insert(RouteTemplate(matched));
    res
}

/// A path that matched no route, as it may be logged: decoded, token runs and anything long
/// enough to be a secret replaced, and cut to 200 characters.
fn loggable_path(path: &str) -> String {
    let decoded = url::form_urlencoded::parse(format!("p={path}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let redacted = crate::domain::audit::redact_token_runs(&decoded);
    let mut out = String::new();
    let mut run = String::new();
    for c in redacted.chars().chain(std::iter::once('/')) {
        if c.is_ascii_alphanumeric() {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 24 { "[REDACTED]" } else { &run });
        run.clear();
        if !c.is_control() {
            out.push(c);
        }
    }
    out.pop();
    out.chars().take(200).collect()
}

/// The address a server is reachable at once bound (port 0 gives a free one).
pub fn make_service(router: Router) -> axum::extract::connect_info::IntoMakeServiceWithConnectInfo<Router, SocketAddr> {
    router.into_make_service_with_connect_info::<SocketAddr>()
}
