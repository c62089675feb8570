//! `/v1`: one module per resource, each owning its routes. Handlers only translate: extract →
//! call the operation → respond.

mod activity;
mod members;
mod plans;
mod projects;
mod teams;
mod tokens;

use axum::Router;
use axum::extract::{FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::{ApiError, InputRejected};
use super::extract::PrincipalSlot;
use crate::service::catalog::Op;

/// Audits a call whose input was refused before its operation ran, so every call with a valid
/// token leaves one entry. The operation is found in the catalog by method and route.
pub async fn audit_rejections(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let slot = PrincipalSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().as_str().to_owned();
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let res = next.run(req).await;
    let Some(InputRejected(error)) = res.extensions().get::<InputRejected>().cloned() else {
        return res;
    };
    let principal = slot.0.lock().expect("slot").take();
    let op = Op::ALL
        .iter()
        .copied()
        .find(|o| Some(o.spec().path) == route.as_deref() && o.spec().method == method);
    if let (Some(p), Some(op)) = (principal, op)
        && let Err(e) = s.service.record_rejected(&p, op, &error).await
    {
        tracing::error!(error = ?e, "could not audit a refused call");
        return ApiError::from(crate::domain::error::Error::Internal(e.into())).into_response();
    }
    res
}

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
            .map_err(|_| ApiError::not_found().input())
    }
}

/// A page from list arguments; a bad one is refused input (audited by the middleware above).
pub fn page(
    p: crate::domain::error::Result<crate::service::page::Page>,
) -> Result<crate::service::page::Page, ApiError> {
    p.map_err(|e| ApiError::from(e).input())
}
