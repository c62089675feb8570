//! MemberPass server: the security boundary through which people, scripts and AI agents reach a
//! creator's membership business.

pub mod app;
pub mod cli;
pub mod domain;
pub mod scan;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod web;
