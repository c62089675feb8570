//! `scan`: finds leaked tokens in files; needs no database.

use std::process::ExitCode;

use super::args::{Global, ScanArgs};

pub(super) async fn scan(g: &Global, args: ScanArgs) -> ExitCode {
    crate::scan::run(crate::scan::Options {
        paths: args.paths,
        json: g.json,
        redact: args.redact,
        revoke: args.revoke,
        use_proxy: args.use_proxy,
    })
    .await
}
