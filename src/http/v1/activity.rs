use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, respond};
use crate::service::Principal;
use crate::service::activity::ActivityQuery;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/activity", get(list))
}

async fn list(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_activity_log(&p, q).await?))
}
