//! The machinery every operation runs on (see the service layer's module doc).

pub mod args;
pub mod audited;
pub mod auth;
pub mod authz;
pub mod batch;
pub mod call;
pub mod caller;
pub mod hold;
pub mod idempotency;
pub mod op;
pub mod output;
pub mod page;
pub mod partner_keys;
pub mod path;
pub mod service;
