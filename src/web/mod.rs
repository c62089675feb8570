//! The web surfaces, under one roof: REST (`rest`), MCP (`mcp`), the dashboard (`dashboard`) and
//! the leak endpoints (`leaks`), OAuth's discovery and registration (`oauth`), each translating onto the service layer; what they share (the
//! state, the error envelope, extractors, limits, the OpenAPI document); and the router that
//! composes them. Dependencies run one way: `router` → surfaces → shared pieces → `state`.

pub mod dashboard;
pub mod error;
pub mod extract;
mod leaks;
pub mod limits;
pub mod mcp;
mod meta;
pub mod oauth;
pub mod openapi;
pub mod request_log;
pub mod rest;
pub mod router;
pub mod state;

pub use router::{make_service, router};
pub use state::{AppState, HttpConfig, Shared};
