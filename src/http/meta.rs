//! Unauthenticated endpoints: health, readiness, and the generated catalogs.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use crate::domain::{ability, error};
use crate::service::catalog;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/abilities.json", get(|| async { Json(ability::catalog_json()) }))
        .route("/error-codes.json", get(|| async { Json(error::catalog_json()) }))
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

async fn openapi(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(catalog::openapi_json(&s.http.public_url))
}
