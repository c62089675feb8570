//! MemberPass server: the security boundary through which people, scripts and AI agents reach a
//! creator's membership business.

// No unwrap, expect or panic outside tests: an invariant that can fail is an error to answer;
// the few that may not (the OS CSPRNG) say why where they are allowed.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod app;
pub mod cli;
pub mod domain;
pub mod metrics;
pub mod scan;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod web;
