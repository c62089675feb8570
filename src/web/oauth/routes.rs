//! The OAuth routes that stand on their own: the discovery documents, `/.well-known/*`'s
//! 404s, and `POST /register` (the challenge wraps `/mcp`'s routes instead).

use axum::Router;

use super::{discovery, register};
use crate::web::AppState;

pub fn router() -> Router<AppState> {
    discovery::router().merge(register::router())
}
