//! OAuth 2.1 for `/mcp` (issue 19), on the web side: discovery (RFC 9728 protected-resource
//! metadata, RFC 8414 authorization-server metadata), the `WWW-Authenticate` challenge every
//! `401` of `/mcp` carries, dynamic client registration (`POST /register`, RFC 7591), and the token and revocation
//! endpoints (the authorization endpoint and its consent page are the dashboard's). The
//! rules live in `domain::oauth` and `service::accounts::oauth_clients`; these only translate.

pub mod challenge;
mod discovery;
mod register;
mod routes;
mod token;

pub use challenge::with_challenge;
pub use routes::router;
