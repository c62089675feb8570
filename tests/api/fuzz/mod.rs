//! Property-based fuzzing of the network entry points through the real server.

mod found;
