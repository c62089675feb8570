//! The error catalog of SPEC §4 and the one error type every operation returns.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ability::Ability;
use super::kinds::Outcome;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    AuthenticationRequired,
    TokenMissingAbility,
    TokenIpNotAllowed,
    OriginNotAllowed,
    ResourceNotFound,
    MethodNotAllowed,
    ValidationFailed,
    Conflict,
    IdempotencyKeyReused,
    PayloadTooLarge,
    RateLimited,
    ApprovalRequired,
    ApprovalInvalid,
    PolicyViolation,
    InternalError,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::AuthenticationRequired,
        ErrorCode::TokenMissingAbility,
        ErrorCode::TokenIpNotAllowed,
        ErrorCode::OriginNotAllowed,
        ErrorCode::ResourceNotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::ValidationFailed,
        ErrorCode::Conflict,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::ApprovalRequired,
        ErrorCode::ApprovalInvalid,
        ErrorCode::PolicyViolation,
        ErrorCode::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuthenticationRequired => "AUTHENTICATION_REQUIRED",
            ErrorCode::TokenMissingAbility => "TOKEN_MISSING_ABILITY",
            ErrorCode::TokenIpNotAllowed => "TOKEN_IP_NOT_ALLOWED",
            ErrorCode::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            ErrorCode::ResourceNotFound => "RESOURCE_NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::ValidationFailed => "VALIDATION_FAILED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::ApprovalRequired => "APPROVAL_REQUIRED",
            ErrorCode::ApprovalInvalid => "APPROVAL_INVALID",
            ErrorCode::PolicyViolation => "POLICY_VIOLATION",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::AuthenticationRequired => 401,
            ErrorCode::TokenMissingAbility | ErrorCode::TokenIpNotAllowed | ErrorCode::OriginNotAllowed => 403,
            ErrorCode::ResourceNotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::ValidationFailed | ErrorCode::IdempotencyKeyReused | ErrorCode::PolicyViolation => 422,
            ErrorCode::ApprovalRequired => 202,
            ErrorCode::Conflict | ErrorCode::ApprovalInvalid => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::InternalError => 500,
        }
    }

    pub fn when(self) -> &'static str {
        match self {
            ErrorCode::AuthenticationRequired => "No, malformed, unknown, revoked, expired or wrong-environment token.",
            ErrorCode::TokenMissingAbility => "The token (or its owner's role) lacks the ability.",
            ErrorCode::TokenIpNotAllowed => "The token has a network allowlist and this call came from outside it.",
            ErrorCode::OriginNotAllowed => "MCP request from a browser origin not on the allow list.",
            ErrorCode::ResourceNotFound => {
                "Unknown id, malformed id, unknown route, or anything outside the token's team/project scope."
            }
            ErrorCode::MethodNotAllowed => "The route exists but not with this HTTP method.",
            ErrorCode::ValidationFailed => "Bad input; `fields` says which and why.",
            ErrorCode::Conflict => "The current state forbids it.",
            ErrorCode::IdempotencyKeyReused => "Same Idempotency-Key, different request.",
            ErrorCode::PayloadTooLarge => "Body over the limit.",
            ErrorCode::RateLimited => "Bucket exhausted; see Retry-After.",
            ErrorCode::ApprovalRequired => {
                "The call needs a person's approval (the team's policy or the token's budget); it did not run."
            }
            ErrorCode::ApprovalInvalid => {
                "The approval cannot be used: expired, denied, used, other arguments, other caller, policy changed or caller voided."
            }
            ErrorCode::PolicyViolation => {
                "The team's token policy forbids it (a lifetime, a required expiry, a role's abilities, pasted tokens on MCP); `policy` and `limit` name the rule."
            }
            ErrorCode::InternalError => "Anything else; the body says nothing but request_id.",
        }
    }

    pub fn remediation(self) -> &'static str {
        match self {
            ErrorCode::AuthenticationRequired => {
                "Send a valid, unrevoked token as `Authorization: Bearer mpt_…`; mint a new one in Settings → API Tokens."
            }
            ErrorCode::TokenMissingAbility => {
                "Mint a token that includes the required ability (your role must hold it too)."
            }
            ErrorCode::TokenIpNotAllowed => {
                "Call from a network the token allows, or have its owner change the list (`memberpass token allow-ip`)."
            }
            ErrorCode::OriginNotAllowed => "Add the origin with --allowed-origin, or call from a non-browser client.",
            ErrorCode::ResourceNotFound => "Check the id and that it belongs to the token's team and projects.",
            ErrorCode::MethodNotAllowed => "See /openapi.json for the methods this path accepts.",
            ErrorCode::ValidationFailed => "Fix the fields listed in `fields` and retry.",
            ErrorCode::Conflict => "Read the current state and retry only if the change still makes sense.",
            ErrorCode::IdempotencyKeyReused => "Use a new Idempotency-Key for a different request.",
            ErrorCode::PayloadTooLarge => "Send a smaller body.",
            ErrorCode::RateLimited => "Wait for the number of seconds in Retry-After.",
            ErrorCode::ApprovalRequired => {
                "Ask a person to approve it at the approval URL, then repeat the same call with the same arguments."
            }
            ErrorCode::ApprovalInvalid => "Make the call again to request a new approval.",
            ErrorCode::PolicyViolation => {
                "Stay within the limit the error names, or ask an owner of the team to change the policy (`memberpass team policy`)."
            }
            ErrorCode::InternalError => "Retry later; quote request_id to support.",
        }
    }
}

/// The JSON Schema of the §4 error object (what `{"error": …}` holds), as `/openapi.json` and
/// every MCP tool's output schema publish it.
pub fn error_object_schema() -> serde_json::Value {
    serde_json::json!({
        "type": "object",
        "required": ["code", "message", "docs_url", "remediation", "request_id"],
        "properties": {
            "code": {"type": "string", "enum": ErrorCode::ALL.iter().map(|c| c.as_str()).collect::<Vec<_>>()},
            "message": {"type": "string"},
            "required_ability": {"type": "string"},
            "docs_url": {"type": "string"},
            "remediation": {"type": "string"},
            "request_id": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            "approval_id": {"type": "string", "description": "APPROVAL_REQUIRED / APPROVAL_INVALID: the approval request."},
            "approval_url": {"type": "string", "description": "Where a person signed in approves or denies it."},
            "reason": {"type": "string", "description": "APPROVAL_INVALID: expired, denied, used, other_arguments, other_caller, policy_changed or caller_voided."},
            "policy": {"type": "string", "description": "POLICY_VIOLATION: max_lifetime, require_expiry, role_abilities or mcp_pasted_tokens."},
            "limit": {"type": "string", "description": "POLICY_VIOLATION: the policy's limit, as configured (e.g. 90d)."}
        }
    })
}

/// `/error-codes.json`.
pub fn catalog_json() -> serde_json::Value {
    let items: Vec<_> = ErrorCode::ALL
        .iter()
        .map(|c| {
            serde_json::json!({
                "code": c.as_str(),
                "http_status": c.http_status(),
                "when": c.when(),
                "remediation": c.remediation(),
            })
        })
        .collect();
    serde_json::json!({ "data": items })
}

/// What an operation can fail with; every surface maps it to the §4 envelope in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("authentication required")]
    AuthenticationRequired,
    #[error("this token lacks the ability `{0}`")]
    MissingAbility(Ability, Option<std::borrow::Cow<'static, str>>),
    #[error("not found")]
    NotFound,
    #[error("the request has invalid fields")]
    Validation(BTreeMap<String, String>),
    #[error("{0}")]
    Conflict(String),
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyKeyReused,
    #[error("the body is too large")]
    PayloadTooLarge,
    /// A quota is used up; it has room again in `retry_after_secs`.
    #[error("{why}")]
    RateLimited { retry_after_secs: u64, why: String },
    /// The call needs a person's approval; it did not run (issue 20).
    #[error("{}", .0.message)]
    ApprovalRequired(Box<ApprovalNotice>),
    /// The approval the call would run under cannot be used; it did not run.
    #[error("{}", .0.message)]
    ApprovalInvalid(Box<ApprovalNotice>),
    /// The team's token policy forbids it (issue 21).
    #[error("{}", .0.message)]
    PolicyViolation(Box<super::token_policy::Violation>),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// What a held or refused call tells its caller about the approval: where a person decides, and
/// (for a new or pending request) the approval resource a REST caller gets as `data`.
#[derive(Clone, Debug)]
pub struct ApprovalNotice {
    pub approval_id: String,
    /// The approval page, where a person signed in approves or denies.
    pub url: String,
    /// The one sentence an agent can relay.
    pub message: String,
    /// `APPROVAL_INVALID`'s reason.
    pub reason: Option<&'static str>,
    /// The approval resource (REST answers it as `data` with `202`).
    pub resource: Option<serde_json::Value>,
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::AuthenticationRequired => ErrorCode::AuthenticationRequired,
            Error::MissingAbility(..) => ErrorCode::TokenMissingAbility,
            Error::NotFound => ErrorCode::ResourceNotFound,
            Error::Validation(_) => ErrorCode::ValidationFailed,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Error::PayloadTooLarge => ErrorCode::PayloadTooLarge,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::ApprovalRequired(_) => ErrorCode::ApprovalRequired,
            Error::ApprovalInvalid(_) => ErrorCode::ApprovalInvalid,
            Error::PolicyViolation(_) => ErrorCode::PolicyViolation,
            Error::Internal(_) => ErrorCode::InternalError,
        }
    }

    pub fn field(name: &str, why: impl Into<String>) -> Self {
        Error::Validation(BTreeMap::from([(name.to_owned(), why.into())]))
    }

    pub fn missing(ability: Ability) -> Self {
        Error::MissingAbility(ability, None)
    }

    /// Audit outcome: refusals of the caller are `denied`, the rest `failed`.
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::AuthenticationRequired
            | Error::MissingAbility(..)
            | Error::NotFound
            | Error::ApprovalRequired(_)
            | Error::ApprovalInvalid(_)
            | Error::PolicyViolation(_) => Outcome::Denied,
            _ => Outcome::Failed,
        }
    }

    /// What the caller is told. An internal error's cause is never part of it.
    pub fn body(&self) -> ErrorBody {
        let code = self.code();
        match self {
            Error::MissingAbility(a, why) => ErrorBody {
                required_ability: Some(*a),
                ..ErrorBody::new(
                    code,
                    match why {
                        Some(why) => format!("This token cannot do this: {why}."),
                        None => format!("This token lacks the ability `{a}`."),
                    },
                )
            },
            Error::Validation(fields) => ErrorBody {
                fields: Some(fields.clone()),
                ..ErrorBody::new(code, "The request is not valid.")
            },
            Error::Conflict(msg) => ErrorBody::new(code, msg.clone()),
            Error::NotFound => ErrorBody::new(code, "No such resource."),
            Error::AuthenticationRequired => ErrorBody::new(code, "A valid API token is required."),
            Error::IdempotencyKeyReused => {
                ErrorBody::new(code, "This Idempotency-Key was used with a different request.")
            }
            Error::PayloadTooLarge => ErrorBody::new(code, "The body is too large."),
            Error::RateLimited { why, .. } => ErrorBody::new(code, why.clone()),
            Error::ApprovalRequired(n) | Error::ApprovalInvalid(n) => {
                let mut extra = serde_json::Map::new();
                extra.insert("approval_id".into(), serde_json::json!(n.approval_id));
                extra.insert("approval_url".into(), serde_json::json!(n.url));
                if let Some(reason) = n.reason {
                    extra.insert("reason".into(), serde_json::json!(reason));
                }
                ErrorBody {
                    extra: Some(extra),
                    ..ErrorBody::new(code, n.message.clone())
                }
            }
            Error::PolicyViolation(v) => {
                let mut extra = serde_json::Map::new();
                extra.insert("policy".into(), serde_json::json!(v.policy));
                extra.insert("limit".into(), serde_json::json!(v.limit));
                ErrorBody {
                    extra: Some(extra),
                    ..ErrorBody::new(code, format!("Refused by the team's token policy: {}.", v.message))
                }
            }
            Error::Internal(_) => ErrorBody::new(code, "Something went wrong on our side."),
        }
    }
}

/// The error object of SPEC §4, as every surface shows it: REST bodies, MCP tool results, and
/// the `data` of MCP's JSON-RPC errors.
#[derive(Clone, Debug)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    pub required_ability: Option<Ability>,
    pub fields: Option<BTreeMap<String, String>>,
    /// Members of the error object some codes add (`approval_id`, `approval_url`, `reason`).
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            required_ability: None,
            fields: None,
            extra: None,
        }
    }

    /// `{"error": {...}}`; `docs_base` is `<public URL>/docs`.
    pub fn envelope(&self, request_id: &str, docs_base: &str) -> serde_json::Value {
        let mut e = serde_json::json!({
            "code": self.code.as_str(),
            "message": self.message,
            "docs_url": format!("{}/errors#{}", docs_base.trim_end_matches('/'), self.code.as_str()),
            "remediation": self.code.remediation(),
            "request_id": request_id,
        });
        if let Some(a) = self.required_ability {
            e["required_ability"] = serde_json::json!(a.as_str());
        }
        if let Some(f) = &self.fields {
            e["fields"] = serde_json::json!(f);
        }
        for (k, v) in self.extra.iter().flatten() {
            e[k.as_str()] = v.clone();
        }
        serde_json::json!({ "error": e })
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(e.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<super::token_policy::Violation> for Error {
    fn from(v: super::token_policy::Violation) -> Self {
        Error::PolicyViolation(Box::new(v))
    }
}
