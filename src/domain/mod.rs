//! Pure types: no I/O.

pub mod ability;
pub mod address;
pub mod allow_list;
pub mod approval;
pub mod audit;
pub mod error;
pub mod ids;
pub mod kinds;
pub mod narrowing;
pub mod oauth;
pub mod oauth_flow;
pub mod refresh_token;
pub mod role;
pub mod signature;
pub mod text;
pub mod time;
pub mod token;
pub mod token_policy;
pub mod usage;
