use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};

use super::{Id, page};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, respond};
use crate::service::Principal;
use crate::service::access_codes::BulkGenerate;
use crate::service::args::{NoArgs, PageArgs, StatusPageArgs};
use crate::service::catalog::Op;
use crate::service::plans::{CreatePlan, PublishPlan};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project_id}/plans", get(list).post(create))
        .route("/v1/plans/{plan_id}", get(show))
        .route("/v1/plans/{plan_id}/publish", post(publish))
        .route("/v1/plans/{plan_id}/access-codes", get(list_codes).post(generate_codes))
        .route("/v1/jobs/{job_id}", get(job))
}

async fn list(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(q): ApiQuery<PageArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.list_plans(&p, &id, page(q.page())?).await?))
}

async fn show(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_plan(&p, &id).await?))
}

async fn create(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<CreatePlan>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(
        Op::CreatePlan.spec().success_status,
        s.service.create_plan(&p, &id, body.value).await?,
    ))
}

async fn publish(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<PublishPlan>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(200, s.service.publish_plan(&p, &id, body.value).await?))
}

async fn list_codes(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(q): ApiQuery<StatusPageArgs>,
) -> Result<Response, ApiError> {
    let page = page(q.page())?;
    Ok(respond(
        200,
        s.service.list_access_codes(&p, &id, q.status, page).await?,
    ))
}

async fn generate_codes(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<BulkGenerate>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    let status = Op::BulkGenerateAccessCodes.spec().success_status;
    Ok(respond(
        status,
        s.service.bulk_generate_access_codes(&p, &id, body.value).await?,
    ))
}

async fn job(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_job_status(&p, &id).await?))
}
