//! The lifecycle around calls: sign-in and sessions, minting, rotating and revoking tokens, leak
//! reports and revoke by possession, the operator's commands, OAuth clients (registration and
//! client ID metadata documents), consent and grants, the token endpoint.

pub mod admin;
pub mod approval_requests;
pub mod approvals;
pub mod client_documents;
pub mod connected_apps;
pub mod leaks;
pub mod maintenance;
pub mod oauth_clients;
pub mod oauth_consent;
pub mod oauth_tokens;
pub mod sessions;
pub mod token_policy;
pub mod tokens;
pub mod usage;
