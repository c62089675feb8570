//! The OAuth routes that stand on their own: the discovery documents, `/.well-known/*`'s
//! 404s, `POST /register`, `POST /token` and `POST /revoke` (the challenge wraps `/mcp`'s routes instead).

use axum::Router;

use super::{discovery, register, token};
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    discovery::router().merge(register::router()).merge(token::router())
}
