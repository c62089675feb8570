//! `memberpass scan [PATH...] [--json] [--redact] [--revoke URL]`: the walk, the scan of each
//! file, then revocation and redaction of what was found, then the report. No database.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use url::Url;

use super::content::Content;
use super::file::scan_file;
use super::places::default_roots;
use super::redact::{Redacted, redact_file};
use super::report::{Finding, Report, warn};
use super::revoke::{self, Handed};
use super::shown::shown;
use super::walk::{Trail, file_key, walk};
use crate::domain::refresh_token::AnyToken;

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Files and directories; empty means the default places under `$HOME`.
    pub paths: Vec<PathBuf>,
    pub json: bool,
    pub redact: bool,
    /// The base URL of a MemberPass server to hand every token to.
    pub revoke: Option<String>,
    /// Whether `--revoke` goes through the proxy the environment names (ignored otherwise).
    pub use_proxy: bool,
}

/// Exit code when tokens were found (0 when none).
const FOUND: u8 = 1;
/// Exit code for a command line that cannot be run (as clap uses for its own usage errors) or
/// a report that cannot be written.
const CANNOT_RUN: u8 = 2;

/// Runs the scan and reports it. Problems with single files are warnings; only a command line
/// that cannot be run (an unknown path, a bad URL, no `$HOME`) stops it, with exit code 2.
pub async fn run(options: Options) -> ExitCode {
    let (roots, endpoint) = match plan(&options) {
        Ok(plan) => plan,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    let mut report = Report {
        json: options.json,
        ..Report::default()
    };
    let mut seen = HashSet::new();
    // Each file with findings and how the walk reached it, for `--redact`.
    let mut found_in = Vec::new();
    // A report that cannot be written does not stop revoking and redacting what was found.
    let mut write_error = None;
    for root in &roots {
        scan_root(root, &mut report, &mut seen, &mut found_in, &mut write_error);
    }
    if let Some(endpoint) = &endpoint {
        report.revoked = Some(revoke_found(endpoint, &report.findings, options.use_proxy).await);
    }
    if options.redact {
        report.redacted = Some(redact_found(&found_in));
    }
    if let Some(e) = write_error.or_else(|| report.print_end(&mut io::stdout()).err()) {
        return cannot_report(e);
    }
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FOUND)
    }
}

/// A report that cannot be written (a closed pipe, a full disk) is not a scan that ran.
fn cannot_report(e: io::Error) -> ExitCode {
    eprintln!("error: cannot write the report: {e}");
    ExitCode::from(CANNOT_RUN)
}

/// The roots to walk and the revoke endpoint, or why the command line cannot be run.
fn plan(options: &Options) -> Result<(Vec<PathBuf>, Option<Url>), String> {
    let endpoint = options.revoke.as_deref().map(revoke::endpoint).transpose()?;
    if let Some(url) = &endpoint
        && revoke::is_exposed_in_transit(url)
    {
        eprintln!("warning: --revoke over plain HTTP: anyone on the way can read the tokens (and keep them alive)");
    }
    if !options.paths.is_empty() {
        if let Some(missing) = options.paths.iter().find(|p| std::fs::symlink_metadata(p).is_err()) {
            return Err(format!("{}: no such file or directory", shown(missing)));
        }
        return Ok((options.paths.clone(), endpoint));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or("$HOME is not set: name the paths to scan")?;
    let home = Path::new(&home);
    let roots = default_roots(home);
    if !options.json {
        eprintln!(
            "scanning {} of the places AI clients and shells keep logs and transcripts under {}",
            roots.len(),
            shown(home)
        );
    }
    Ok((roots, endpoint))
}

/// Scans every regular file under `root` once (`seen` holds the files already scanned),
/// printing findings as each file is done (keeping the first error writing them) and adding
/// each file with findings to `found_in`.
fn scan_root(
    root: &Path,
    report: &mut Report,
    seen: &mut HashSet<(u64, u64)>,
    found_in: &mut Vec<(PathBuf, Trail)>,
    write_error: &mut Option<io::Error>,
) {
    for item in walk(root) {
        let entry = match item {
            Ok(entry) => entry,
            Err(skipped) => {
                warn(&skipped.path, skipped.why);
                continue;
            }
        };
        if let Some(key) = file_key(&entry.meta)
            && !seen.insert(key)
        {
            continue;
        }
        let scan = match scan_file(&entry.path) {
            Ok(scan) => scan,
            Err(e) => {
                warn(&entry.path, e);
                continue;
            }
        };
        if let Some(why) = &scan.stopped {
            warn(&entry.path, why);
        }
        if scan.content == Content::Binary {
            report.binary_files_skipped += 1;
            continue;
        }
        report.files_scanned += 1;
        report.bytes_scanned += scan.bytes;
        if !scan.found.is_empty() {
            found_in.push((entry.path.clone(), entry.trail));
        }
        let first = report.findings.len();
        report.findings.extend(scan.found.into_iter().map(|f| Finding {
            path: entry.path.clone(),
            line: f.line,
            token: f.token,
        }));
        if let Err(e) = report.print_findings_from(first, &mut io::stdout()) {
            write_error.get_or_insert(e);
        }
    }
}

/// Hands each distinct token to the server once, with the first place it was found.
async fn revoke_found(endpoint: &Url, findings: &[Finding], use_proxy: bool) -> Vec<(AnyToken, revoke::Answer)> {
    let mut seen = HashSet::new();
    let handed: Vec<Handed> = findings
        .iter()
        .filter(|f| seen.insert(f.token.digest().as_str().to_owned()))
        .map(|f| Handed {
            token: f.token.clone(),
            // Escaped as printed: the server refuses control characters in any argument.
            source: revoke::source_of(&shown(&f.path), f.line),
        })
        .collect();
    let answers = revoke::revoke_all(endpoint, &handed, use_proxy).await;
    handed.into_iter().map(|h| h.token).zip(answers).collect()
}

/// Redacts each file with findings, where its path still leads the way the walk went.
fn redact_found(found_in: &[(PathBuf, Trail)]) -> Vec<(PathBuf, Result<Redacted, String>)> {
    found_in
        .iter()
        .map(|(path, trail)| (path.clone(), redact_file(path, trail).map_err(|e| e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_path_or_a_bad_url_is_a_usage_error() {
        let missing = Options {
            paths: vec!["/definitely/not/here".into()],
            ..Options::default()
        };
        assert!(plan(&missing).unwrap_err().contains("no such file"));
        let bad_url = Options {
            paths: vec![".".into()],
            revoke: Some("not a url".into()),
            ..Options::default()
        };
        assert!(plan(&bad_url).unwrap_err().starts_with("--revoke"));
    }
}
