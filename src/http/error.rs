//! The §4 envelope, rendered in one place for every failure on the HTTP surfaces.

use std::collections::BTreeMap;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::domain::ability::Ability;
use crate::domain::error::{Error, ErrorCode};

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

fn current_docs_base() -> std::sync::Arc<str> {
    REQUEST_SCOPE
        .try_with(|s| s.docs_base.clone())
        .unwrap_or_else(|_| "".into())
}

/// An error on the way out of an HTTP handler.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub required_ability: Option<Ability>,
    pub fields: Option<BTreeMap<String, String>>,
    pub retry_after_secs: Option<u64>,
    /// Refused before reaching an operation (bad body, query, path): the HTTP layer audits it.
    pub input_rejected: bool,
}

/// Marks a response whose refusal no operation has audited yet.
#[derive(Clone, Debug)]
pub struct InputRejected(pub std::sync::Arc<Error>);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            required_ability: None,
            fields: None,
            retry_after_secs: None,
            input_rejected: false,
        }
    }

    pub fn unauthenticated() -> Self {
        ApiError::new(ErrorCode::AuthenticationRequired, "A valid API token is required.")
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        ApiError {
            retry_after_secs: Some(retry_after_secs.max(1)),
            ..ApiError::new(ErrorCode::RateLimited, "Too many requests.")
        }
    }

    /// This error refuses the request's input before any operation ran.
    pub fn input(mut self) -> Self {
        self.input_rejected = true;
        self
    }

    pub fn not_found() -> Self {
        ApiError::new(ErrorCode::ResourceNotFound, "No such resource.")
    }

    pub fn validation(field: &str, why: impl Into<String>) -> Self {
        ApiError {
            fields: Some(BTreeMap::from([(field.to_owned(), why.into())])),
            ..ApiError::new(ErrorCode::ValidationFailed, "The request is not valid.")
        }
        .input()
    }

    /// The envelope object (also used inside MCP results and JSON-RPC error data).
    pub fn envelope(&self, docs_base: &str) -> serde_json::Value {
        let mut e = json!({
            "code": self.code.as_str(),
            "message": self.message,
            "docs_url": format!("{}/errors#{}", docs_base.trim_end_matches('/'), self.code.as_str()),
            "remediation": self.code.remediation(),
            "request_id": current_request_id(),
        });
        if let Some(a) = self.required_ability {
            e["required_ability"] = json!(a.as_str());
        }
        if let Some(f) = &self.fields {
            e["fields"] = json!(f);
        }
        json!({ "error": e })
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let code = e.code();
        match e {
            Error::MissingAbility(a, why) => ApiError {
                required_ability: Some(a),
                message: match why {
                    Some(why) => format!("This token cannot do this: {why}."),
                    None => format!("This token lacks the ability `{a}`."),
                },
                ..ApiError::new(code, "")
            },
            Error::Validation(fields) => ApiError {
                fields: Some(fields),
                ..ApiError::new(code, "The request is not valid.")
            },
            Error::Conflict(msg) => ApiError::new(code, msg),
            Error::NotFound => ApiError::not_found(),
            Error::AuthenticationRequired => ApiError::unauthenticated(),
            Error::IdempotencyKeyReused => {
                ApiError::new(code, "This Idempotency-Key was used with a different request.")
            }
            Error::PayloadTooLarge => ApiError::new(code, "The body is too large."),
            Error::Internal(cause) => {
                tracing::error!(request_id = %current_request_id(), error = ?cause, "internal error");
                ApiError::new(code, "Something went wrong on our side.")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = self.envelope(&current_docs_base());
        let mut res = (status, axum::Json(body)).into_response();
        let headers = res.headers_mut();
        if self.code == ErrorCode::AuthenticationRequired {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.input_rejected {
            let e = match self.code {
                ErrorCode::ValidationFailed => Error::Validation(self.fields.clone().unwrap_or_default()),
                ErrorCode::PayloadTooLarge => Error::PayloadTooLarge,
                _ => Error::NotFound,
            };
            res.extensions_mut().insert(InputRejected(std::sync::Arc::new(e)));
        }
        res
    }
}
