use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;

use super::{Id, page};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, respond};
use crate::service::Principal;
use crate::service::args::{NoArgs, PageArgs};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/teams", get(list))
        .route("/v1/teams/{team_id}", get(show))
        .route("/v1/teams/{team_id}/members", get(members))
        .route("/v1/roles", get(roles))
}

async fn list(State(s): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<PageArgs>) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_teams(&p, page(q.page())?).await?))
}

async fn show(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_team(&p, &id).await?))
}

async fn members(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(q): ApiQuery<PageArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(
        200,
        s.service.list_team_members(&p, &id, page(q.page())?).await?,
    ))
}

async fn roles(State(s): State<AppState>, p: Principal, ApiQuery(_q): ApiQuery<NoArgs>) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_roles(&p).await?))
}
