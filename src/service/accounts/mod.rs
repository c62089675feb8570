//! The lifecycle around calls: sign-in and sessions, minting, rotating and revoking tokens, leak
//! reports and revoke by possession, the operator's commands.

pub mod admin;
pub mod leaks;
pub mod sessions;
pub mod tokens;
