//! `memberpass scan`: finds MemberPass tokens where they leak (AI-client logs and transcripts,
//! shell histories, exports, ignored `.env` files), reports each by file, line and token ID —
//! never the secret — and can redact them in place or hand them to a server to be revoked.
//!
//! `grammar` is the pure part (what a token is, where it stands on its own), `stream` the same
//! over chunks; `content` says what a file holds; `file` streams one file through the grammar;
//! `walk` and `places` say which files; `redact`, `revoke` and `report` act on what was found (`shown` prints a path safely);
//! `command` runs it all.

pub mod command;
pub mod content;
pub mod file;
pub mod grammar;
pub mod places;
pub mod redact;
pub mod report;
pub mod revoke;
pub mod shown;
pub mod stream;
pub mod walk;

pub use command::{Options, run};
pub use grammar::{Found, find_tokens};
pub use stream::StreamScanner;
