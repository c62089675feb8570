//! How large a request body may be, on every surface.

/// A JSON body of REST or MCP (`413 PAYLOAD_TOO_LARGE` past it).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
