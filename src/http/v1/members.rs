use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};

use super::{Id, page};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ApiQuery, respond};
use crate::service::Principal;
use crate::service::args::{NoArgs, StatusPageArgs, SubscriberArgs};
use crate::service::members::{Reason, SubscriberQuery};
use crate::service::page::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/projects/{project_id}/members", get(list))
        .route("/v1/projects/{project_id}/payments", get(payments))
        .route("/v1/members/{member_id}", get(show))
        .route("/v1/members/{member_id}/ban", post(ban))
        .route("/v1/members/{member_id}/unban", post(unban))
        .route("/v1/members/{member_id}/kick", post(kick))
        .route("/v1/subscriptions/{subscription_id}/cancel", post(cancel))
}

async fn list(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(q): ApiQuery<SubscriberArgs>,
) -> Result<Response, ApiError> {
    let page = Page::new(q.page, q.limit)?;
    let query = SubscriberQuery {
        status: q.status,
        search: q.search,
    };
    Ok(respond(200, s.service.list_subscribers(&p, &id, query, page).await?))
}

async fn payments(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(q): ApiQuery<StatusPageArgs>,
) -> Result<Response, ApiError> {
    let page = page(q.page())?;
    Ok(respond(
        200,
        s.service.list_recent_payments(&p, &id, q.status, page).await?,
    ))
}

async fn show(
    State(s): State<AppState>,
    p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_member(&p, &id).await?))
}

async fn ban(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<Reason>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(200, s.service.ban_member(&p, &id, body.value).await?))
}

async fn unban(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<NoArgs>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(200, s.service.unban_member(&p, &id).await?))
}

async fn kick(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<Reason>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(200, s.service.kick_member(&p, &id, body.value).await?))
}

async fn cancel(
    State(s): State<AppState>,
    mut p: Principal,
    Id(id): Id,
    ApiQuery(_): ApiQuery<NoArgs>,
    body: ApiJson<NoArgs>,
) -> Result<Response, ApiError> {
    p.idempotency = body.idempotency;
    Ok(respond(200, s.service.cancel_subscription(&p, &id).await?))
}
