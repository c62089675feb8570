//! Errors on the HTTP surfaces: the §4 envelope (built in `domain::error`) with the status and
//! headers HTTP adds.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::domain::error::{Error, ErrorBody, ErrorCode};

/// What an error body needs to know about the request it answers.
#[derive(Clone, Debug)]
pub struct RequestScope {
    pub request_id: String,
    /// `<public URL>/docs`, where `docs_url` points.
    pub docs_base: std::sync::Arc<str>,
}

tokio::task_local! {
    /// Set by the outermost middleware for the whole of one request.
    pub static REQUEST_SCOPE: RequestScope;
}

pub fn current_request_id() -> String {
    REQUEST_SCOPE.try_with(|s| s.request_id.clone()).unwrap_or_default()
}

pub fn current_docs_base() -> std::sync::Arc<str> {
    REQUEST_SCOPE
        .try_with(|s| s.docs_base.clone())
        .unwrap_or_else(|_| "".into())
}

/// An error on the way out of an HTTP handler.
#[derive(Debug)]
pub struct ApiError {
    pub body: ErrorBody,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            body: ErrorBody::new(code, message),
            retry_after_secs: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Error::AuthenticationRequired.into()
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..ApiError::new(ErrorCode::RateLimited, "Too many requests.")
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if let Error::Internal(cause) = &e {
            tracing::error!(request_id = %current_request_id(), error = ?cause, "internal error");
        }
        let retry_after_secs = match &e {
            Error::RateLimited { retry_after_secs, .. } => Some((*retry_after_secs).max(1)),
            _ => None,
        };
        ApiError {
            body: e.body(),
            retry_after_secs,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.body.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.body.envelope(&current_request_id(), &current_docs_base());
        let mut res = (status, axum::Json(body)).into_response();
        let headers = res.headers_mut();
        if self.body.code == ErrorCode::AuthenticationRequired {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
