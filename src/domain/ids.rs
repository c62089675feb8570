//! Entity ids are UUID v7, stored and shown hyphenated.

use uuid::Uuid;

use super::error::Error;

pub fn new_id() -> String {
    Uuid::now_v7().hyphenated().to_string()
}

/// Parses an id from a path or argument; a malformed id is simply not found (SPEC §4).
pub fn parse_id(s: &str) -> Result<String, Error> {
    Uuid::parse_str(s)
        .map(|u| u.hyphenated().to_string())
        .map_err(|_| Error::NotFound)
}
