//! The operations of SPEC §5, one module per resource, and the catalog that lists them all.

pub mod access_codes;
pub mod activity;
pub mod approvals;
pub mod catalog;
pub mod jobs;
pub mod members;
pub mod plans;
pub mod projects;
pub mod resources;
pub mod subscriptions;
pub mod team_tokens;
pub mod teams;
pub mod tokens;
