//! Unauthenticated endpoints: health, readiness, and the generated catalogs.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::domain::{ability, error};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/abilities.json", get(|| async { Json(ability::catalog_json()) }))
        .route(
            "/mcp-tools.json",
            get(|| async { Json(crate::web::mcp::tools::catalog_json()) }),
        )
        .route("/error-codes.json", get(|| async { Json(error::catalog_json()) }))
        .route("/docs/errors", get(error_docs))
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.service.db().ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = ?e, "database not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "database unavailable"})),
            )
                .into_response()
        }
    }
}

/// Where every error's `docs_url` points: one anchor per code.
async fn error_docs() -> axum::response::Html<String> {
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>MemberPass errors</title></head><body><h1>Errors</h1>",
    );
    for c in error::ErrorCode::ALL {
        html.push_str(&format!(
            "<h2 id=\"{code}\">{code} (HTTP {status})</h2><p>{when}</p><p><strong>What to do:</strong> {fix}</p>",
            code = c.as_str(),
            status = c.http_status(),
            when = c.when(),
            fix = c.remediation(),
        ));
    }
    html.push_str("</body></html>");
    axum::response::Html(html)
}

async fn openapi(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(super::openapi::openapi_json(&s.http.public_url))
}
