use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get};

use super::page;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::{ApiQuery, respond};
use crate::service::Principal;
use crate::service::args::{NoArgs, PageArgs};
use crate::service::catalog::Op;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me))
        .route("/v1/tokens", get(list))
        .route("/v1/tokens/current", delete(revoke_current))
}

async fn me(State(s): State<AppState>, p: Principal, ApiQuery(_): ApiQuery<NoArgs>) -> Result<Response, ApiError> {
    Ok(respond(200, s.service.get_token_info(&p).await?))
}

async fn list(State(s): State<AppState>, p: Principal, ApiQuery(q): ApiQuery<PageArgs>) -> Result<Response, ApiError> {
    Ok(respond(
        Op::ListTokens.spec().success_status,
        s.service.list_tokens(&p, page(q.page())?).await?,
    ))
}

async fn revoke_current(
    State(s): State<AppState>,
    p: Principal,
    ApiQuery(_): ApiQuery<NoArgs>,
) -> Result<Response, ApiError> {
    Ok(respond(
        Op::RevokeCurrentToken.spec().success_status,
        s.service.revoke_current_token(&p).await?,
    ))
}
