//! Storage: one schema and one set of SQL for SQLite and PostgreSQL, through sqlx's Any driver.
//!
//! The SQL stays in the subset both dialects accept (`$N` placeholders, TEXT and BIGINT
//! columns). Where they differ, [`Backend`] chooses, and both versions sit side by side.

pub mod access_codes;
pub mod approvals;
pub mod audit;
mod db;
pub mod idempotency;
pub mod jobs;
pub mod limits;
pub mod members;
pub mod notifications;
pub mod oauth;
pub mod oauth_grants;
pub mod plans;
pub mod projects;
mod query;
pub mod resources;
pub mod sessions;
pub mod subscriptions;
pub mod teams;
pub mod token_policies;
pub mod tokens;
pub mod usage;
pub mod users;

/// Milliseconds since the Unix epoch: the one time representation on disk.
pub use crate::domain::time::now_ms;
pub use db::{Backend, Conn, Db, Synchronous, Tx, drop_database_blocking};
pub use query::{Filter, Scoped, find_in_team, find_scoped, is_unique_violation, page_in_project};
