//! What `memberpass scan` tells the user: one line per finding (as each file is done), per file
//! redacted and per token revoked, or one JSON document with `--json`. A token appears only as
//! `mpt_<env>_<id>`: its secret part is never printed. A path is printed through [`shown`](super::shown), so a
//! file name cannot forge a line or drive the terminal.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::redact::Redacted;
use super::revoke::Answer;
use super::shown::shown;
use crate::domain::refresh_token::AnyToken;

/// A token in a file.
pub struct Finding {
    pub path: PathBuf,
    pub line: u64,
    pub token: AnyToken,
}

/// Everything a run found and did, for the final output.
#[derive(Default)]
pub struct Report {
    pub json: bool,
    pub findings: Vec<Finding>,
    pub files_scanned: u64,
    pub bytes_scanned: u64,
    pub binary_files_skipped: u64,
    /// With `--redact`: each file with findings and what redacting it did.
    pub redacted: Option<Vec<(PathBuf, Result<Redacted, String>)>>,
    /// With `--revoke`: each distinct token and the server's answer.
    pub revoked: Option<Vec<(AnyToken, Answer)>>,
}

/// `mpt_<env>_<id>` (`mprt_…` for a refresh token): what identifies a token without revealing it.
pub fn public_name(token: &AnyToken) -> String {
    format!("{}{}_{}", token.prefix(), token.env(), token.id())
}

/// A problem with one path; never fatal. Goes to stderr in both modes.
pub fn warn(path: &Path, why: impl std::fmt::Display) {
    eprintln!("warning: {}: {why}", shown(path));
}

impl Report {
    /// Prints the findings from `first` on as soon as their file is scanned (human mode only).
    pub fn print_findings_from(&self, first: usize, out: &mut impl Write) -> io::Result<()> {
        if self.json {
            return Ok(());
        }
        for f in &self.findings[first..] {
            writeln!(
                out,
                "{}:{}: token {} (secret not shown)",
                shown(&f.path),
                f.line,
                public_name(&f.token)
            )?;
        }
        Ok(())
    }

    /// Prints what redaction and revocation did, and the totals; or the one JSON document.
    pub fn print_end(&self, out: &mut impl Write) -> io::Result<()> {
        if self.json {
            return writeln!(out, "{}", self.to_json());
        }
        for (path, outcome) in self.redacted.iter().flatten() {
            match outcome {
                Ok(r) => {
                    writeln!(out, "redacted {} in {}", plural(r.tokens as u64, "token"), shown(path))?;
                    if r.other_links > 0 {
                        warn(
                            path,
                            format!(
                                "{} still hold the old content",
                                plural(r.other_links, "other hard link")
                            ),
                        );
                    }
                }
                Err(why) => warn(path, format!("not redacted: {why}")),
            }
        }
        for (token, answer) in self.revoked.iter().flatten() {
            match answer {
                Ok(status) => writeln!(out, "revoke {}: server answered {status}", public_name(token))?,
                Err(why) => writeln!(out, "revoke {}: failed, {why}", public_name(token))?,
            }
        }
        eprintln!("{}", self.summary());
        Ok(())
    }

    fn summary(&self) -> String {
        let mut scanned = format!(
            "{} scanned ({})",
            plural(self.files_scanned, "file"),
            human_bytes(self.bytes_scanned)
        );
        if self.binary_files_skipped > 0 {
            scanned.push_str(&format!(
                ", {} skipped",
                plural(self.binary_files_skipped, "binary file")
            ));
        }
        if self.findings.is_empty() {
            return format!("no tokens found; {scanned}");
        }
        let mut files: Vec<&Path> = self.findings.iter().map(|f| f.path.as_path()).collect();
        files.dedup();
        format!(
            "{} found in {}; {scanned}",
            plural(self.findings.len() as u64, "token"),
            plural(files.len() as u64, "file")
        )
    }

    fn to_json(&self) -> Value {
        let findings: Vec<Value> = self
            .findings
            .iter()
            .map(|f| {
                json!({"path": f.path.to_string_lossy(), "line": f.line,
                       "token_id": f.token.id(), "env": f.token.env()})
            })
            .collect();
        let mut doc = json!({
            "findings": findings,
            "files_scanned": self.files_scanned,
            "bytes_scanned": self.bytes_scanned,
            "binary_files_skipped": self.binary_files_skipped,
        });
        if let Some(redacted) = &self.redacted {
            doc["redacted"] = redacted.iter().map(redaction_json).collect();
        }
        if let Some(revoked) = &self.revoked {
            doc["revoked"] = revoked.iter().map(|(t, a)| revocation_json(t, a)).collect();
        }
        doc
    }
}

fn redaction_json((path, outcome): &(PathBuf, Result<Redacted, String>)) -> Value {
    let path = path.to_string_lossy();
    match outcome {
        Ok(r) => json!({"path": path, "tokens": r.tokens, "other_hard_links": r.other_links}),
        Err(why) => json!({"path": path, "tokens": 0, "error": why}),
    }
}

fn revocation_json(token: &AnyToken, answer: &Answer) -> Value {
    let mut v = json!({"token_id": token.id(), "env": token.env()});
    match answer {
        Ok(status) => v["status"] = json!(status.as_u16()),
        Err(why) => {
            v["status"] = Value::Null;
            v["error"] = json!(why);
        }
    }
    v
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / (1u64 << 10) as f64),
        n => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::TokenEnv;

    #[test]
    fn the_json_document_names_tokens_by_id_only() {
        let token = AnyToken::from(crate::domain::token::TokenSecret::generate(TokenEnv::Test));
        let report = Report {
            json: true,
            findings: vec![Finding {
                path: "a.log".into(),
                line: 3,
                token: token.clone(),
            }],
            files_scanned: 1,
            bytes_scanned: 100,
            revoked: Some(vec![(token.clone(), Ok(reqwest::StatusCode::ACCEPTED))]),
            ..Report::default()
        };
        let doc = report.to_json();
        assert_eq!(doc["findings"][0]["token_id"], token.id().as_str());
        assert_eq!(doc["findings"][0]["env"], "test");
        assert_eq!(doc["revoked"][0]["status"], 202);
        assert!(doc.get("redacted").is_none());
        assert!(!doc.to_string().contains(&token.expose_secret()[22..]));
        assert_eq!(public_name(&token), format!("mpt_test_{}", token.id()));
    }

    #[test]
    fn sizes_and_counts_read_naturally() {
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(2, "file"), "2 files");
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(3 << 20), "3.0 MiB");
    }
}
