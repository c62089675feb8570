//! Rate limits (SPEC §8): per token for REST and MCP, and failed authentications per client IP
//! (the dashboard's sign-ins have buckets of their own, [`sign_in`]).
//!
//! On SQLite (one process) the buckets live in memory; on PostgreSQL they live in the database,
//! shared by every replica (`store::limits`), so a limit holds however a load balancer spreads
//! the calls. Nothing about revocation lives here.
//!
//! `bucket` is what every limit shares, `calls` the API's limits, `sign_in` the dashboard's, and
//! `body` the size of a request body.

mod body;
mod bucket;
mod calls;
mod sign_in;

pub use body::MAX_BODY_BYTES;
pub use bucket::{Bucket, Wait};
pub use calls::{Kind, Limits, PerMinute};
pub use sign_in::SignInLimits;
