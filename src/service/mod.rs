//! The one service layer. Every surface (REST, MCP, dashboard, CLI) calls the same operations
//! the same way ([`Service::call`]); each checks the ability and the tenancy, acts, and writes
//! its audit entry in one transaction.
//!
//! Three rooms, and dependencies that run one way:
//! - [`core`]: what an operation is ([`core::op`]), the one call path ([`core::path`]) with its
//!   group-commit writer ([`core::batch`]) and the re-check of rights both share
//!   ([`core::authz`]), authentication, idempotency, arguments and pages. It imports nothing
//!   from the other rooms.
//! - [`ops`]: the operations of SPEC §5, one module per resource, and [`ops::catalog`], the
//!   list every surface is built from. They use `core`.
//! - [`accounts`]: the lifecycle around calls — sign-in and sessions, minting, rotating and
//!   revoking tokens, leak reports, the operator's commands. They use `core`.
//!
//! Beside them: [`start`] builds the service, [`jobs`] is the background worker, [`demo`]
//! seeds the demo data.

pub mod accounts;
pub mod core;
pub mod demo;
pub mod jobs;
pub mod ops;
pub mod start;

pub use core::call::Call;
pub use core::caller::{Caller, Member, PageView, Surface, TokenGrant, Who};
pub use core::op::{Done, DynOp, Input, JsonOutput, One, Operation, Paged};
pub use core::service::{DEFAULT_APPROVAL_TTL, GITHUB_KEYS_URL, Service, ServiceConfig};
