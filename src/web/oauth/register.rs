//! `POST /register`: OAuth dynamic client registration (RFC 7591), public clients only.
//! Rate-limited per client IP before the body is read; the body is capped; refusals are RFC
//! 7591's JSON (`invalid_redirect_uri`, `invalid_client_metadata`). The checks and the audited
//! write are `service::accounts::oauth_clients`.

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::discovery::preflight;
use crate::domain::oauth::{RegistrationError, RegistrationRequest};
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::extract::Ctx;
use crate::web::limits::Kind;

/// Largest registration body read: ten redirect URIs of 2 KB each and the rest fit.
pub const MAX_REGISTRATION_BYTES: usize = 32 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/register", post(register).options(preflight))
}

async fn register(State(s): State<AppState>, Ctx(ctx): Ctx, body: Body) -> Result<Response, ApiError> {
    s.limits.admit(Kind::OAuthRegistrations, &ctx).await?;
    let Ok(body) = axum::body::to_bytes(body, MAX_REGISTRATION_BYTES).await else {
        return Ok(refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_client_metadata",
            &format!("the registration must be at most {MAX_REGISTRATION_BYTES} bytes"),
        ));
    };
    let Ok(request) = serde_json::from_slice::<RegistrationRequest>(&body) else {
        return Ok(refusal(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            "the body must be a JSON object of client metadata (RFC 7591)",
        ));
    };
    Ok(match s.service.register_client(request, &ctx).await? {
        Ok(client) => {
            let mut res = (StatusCode::CREATED, Json(client.to_json())).into_response();
            cors(&mut res);
            res
        }
        Err(e) => registration_refused(&e),
    })
}

fn registration_refused(e: &RegistrationError) -> Response {
    refusal(StatusCode::BAD_REQUEST, e.code(), e.description())
}

/// RFC 7591 §3.2.2: `{"error", "error_description"}`.
fn refusal(status: StatusCode, code: &str, description: &str) -> Response {
    let mut res = (status, Json(json!({"error": code, "error_description": description}))).into_response();
    cors(&mut res);
    res
}

/// A browser-based client registers from its own origin; no cookie is involved.
fn cors(res: &mut Response) {
    res.headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
}
