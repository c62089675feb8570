//! `/v1`: one module per resource, each owning its routes. Handlers only translate: extract →
//! call the operation → respond.

mod activity;
mod members;
mod plans;
mod projects;
mod teams;
mod tokens;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::Deserialize;

use super::AppState;
use super::error::ApiError;
use crate::service::page::Page;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(tokens::router())
        .merge(teams::router())
        .merge(projects::router())
        .merge(plans::router())
        .merge(members::router())
        .merge(activity::router())
}

/// The one id in a path; anything undecodable is simply not found.
pub struct Id(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Id(id))
            .map_err(|_| ApiError::not_found())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub page: Option<i64>,
    pub limit: Option<i64>,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page::new(self.page, self.limit)?)
    }
}

/// `?status=&page=&limit=`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    pub status: Option<String>,
    pub page: Option<i64>,
    pub limit: Option<i64>,
}

impl StatusQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        Ok(Page::new(self.page, self.limit)?)
    }
}

/// Routes that take no query parameters still refuse unknown ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoQuery {}
