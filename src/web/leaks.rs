//! The two unauthenticated leak-report routes: GitHub's secret-scanning partner alerts and
//! revoke by possession. Each is rate-limited per client IP before its body is read, and only
//! translates: the checks and the revocation are `service::leaks`.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::Ctx;
use super::limits::Kind;
use crate::domain::error::{Error, ErrorCode};
use crate::service::accounts::leaks::AlertRejected;

/// Largest alert body read (GitHub batches up to a few hundred items).
const MAX_ALERT_BYTES: usize = 1024 * 1024;
/// Largest revoke-by-possession body read.
const MAX_REVOKE_BYTES: usize = 4 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/secret-scanning/github", post(github_alert))
        .route("/v1/tokens/revoke", post(revoke_by_possession))
}

/// The body of `POST /v1/tokens/revoke`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandedIn {
    token: String,
    #[serde(default)]
    source: Option<String>,
}

async fn body_of(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| Error::PayloadTooLarge.into())
}

/// The one value of a header that must appear once; a repeated header counts as absent.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then(|| first.to_str().ok()).flatten()
}

async fn github_alert(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    s.limits.admit(Kind::PartnerAlerts, &ctx).await?;
    let body = body_of(body, MAX_ALERT_BYTES).await?;
    let key_id = single(&headers, "github-public-key-identifier");
    let signature = single(&headers, "github-public-key-signature");
    match s.service.github_alert(key_id, signature, &body, &ctx).await {
        Ok(Ok(feedback)) => Ok((StatusCode::OK, axum::Json(feedback)).into_response()),
        Ok(Err(e)) => Err(e.into()),
        Err(rejected) => {
            tracing::warn!(request_id = ?ctx.request_id, ip = ?ctx.ip, why = ?rejected, "secret-scanning alert rejected");
            Err(match rejected {
                AlertRejected::Unsigned => ApiError::new(
                    ErrorCode::AuthenticationRequired,
                    "The alert must carry one Github-Public-Key-Identifier and one Github-Public-Key-Signature header.",
                ),
                AlertRejected::UnknownKey => ApiError::new(
                    ErrorCode::AuthenticationRequired,
                    "The alert names a key identifier that GitHub does not publish.",
                ),
                AlertRejected::BadSignature => ApiError::new(
                    ErrorCode::AuthenticationRequired,
                    "The alert's signature does not verify over its body.",
                ),
                AlertRejected::Malformed(why) => Error::field("body", why).into(),
            })
        }
    }
}

async fn revoke_by_possession(State(s): State<AppState>, Ctx(ctx): Ctx, body: Body) -> Result<Response, ApiError> {
    s.limits.admit(Kind::RevokeReports, &ctx).await?;
    let body = body_of(body, MAX_REVOKE_BYTES).await?;
    // Our own words only: serde's message could quote the body, and the body holds a token.
    let handed: HandedIn = serde_json::from_slice(&body).map_err(|_| {
        Error::field(
            "body",
            "must be a JSON object with `token` (a string) and optionally `source` (a string), nothing else",
        )
    })?;
    // An OAuth refresh token (mprt_…) is handed in the same way.
    if crate::domain::refresh_token::AnyToken::parse(handed.token.trim()).is_err() {
        return Err(Error::field(
            "token",
            "is not a MemberPass token (mpt_… or mprt_…, with a valid checksum)",
        )
        .into());
    }
    if handed.source.as_ref().is_some_and(|s| s.chars().count() > 500) {
        return Err(Error::field("source", "must be at most 500 characters").into());
    }
    s.service
        .revoke_by_possession(handed.token.trim(), handed.source.as_deref(), &ctx)
        .await?;
    // The same answer whether the token existed, was live, or was already revoked.
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({"data": {
            "status": "accepted",
            "message": "If this was a live MemberPass token, it no longer works, and its owner has been told.",
        }})),
    )
        .into_response())
}
