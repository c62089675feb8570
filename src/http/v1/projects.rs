use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};

use super::{Id, page};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, respond};
use crate::service::Principal;
use crate::service::args::{NoArgs, PageArgs};
use crate::service::catalog::Op;
use crate::service::projects::{CreateProject, UpdateProject};
use crate::service::resources::CreateResource;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list).post(create))
        .route("/v1/projects/{project_id}", get(show).patch(update))
        .route("/v1/projects/{project_id}/archive", post(archive))
        .route("/v1/projects/{project_id}/portal-url", get(portal_url))
        .route(
            "/v1/projects/{project_id}/resources",
            get(list_resources).post(create_resource),
        )
        .route("/v1/resources/{resource_id}", get(show_resource))
}

async fn list(State(s): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<PageArgs>) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_projects(&p, page(q.page())?).await?))
}

async fn show(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_project(&p, &id).await?))
}

async fn create(
    State(s): State<AppState>,
    mut p: Principal,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<CreateProject>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(
        Op::CreateProject.spec().success_status,
        s.service.create_project(&p, body.value).await?,
    ))
}

async fn update(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<UpdateProject>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.update_project(&p, &id, body.value).await?))
}

async fn archive(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<NoArgs>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(200, s.service.archive_project(&p, &id).await?))
}

async fn portal_url(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_portal_url(&p, &id).await?))
}

async fn list_resources(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(q): ApiQuery<PageArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_resources(&p, &id, page(q.page())?).await?))
}

async fn create_resource(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<CreateResource>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(
        Op::CreateResource.spec().success_status,
        s.service.create_resource(&p, &id, body.value).await?,
    ))
}

async fn show_resource(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_resource(&p, &id).await?))
}
