use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::{Id, PageQuery};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, respond};
use crate::service::Principal;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/teams", get(list))
        .route("/v1/teams/{team_id}", get(show))
        .route("/v1/teams/{team_id}/members", get(members))
        .route("/v1/roles", get(roles))
}

async fn list(State(s): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<PageQuery>) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_teams(&p, q.page()?).await?))
}

async fn show(State(s): State<AppState>, p: Principal, Id(id): Id) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_team(&p, &id).await?))
}

async fn members(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_team_members(&p, &id, q.page()?).await?))
}

async fn roles(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(_q): ApiQuery<super::NoQuery>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_roles(&p).await?))
}
