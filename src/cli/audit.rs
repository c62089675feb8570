//! `audit verify` (exit 2 when the chain was tampered with) and `audit export` (NDJSON).

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use super::args::{AuditCmd, Global};
use super::common::{print, service};

pub(super) async fn audit(g: &Global, cmd: AuditCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCmd::Verify => verify(g).await,
        AuditCmd::Export { team, since } => export(g, team, since).await.map(|()| ExitCode::SUCCESS),
    }
}

async fn verify(g: &Global) -> anyhow::Result<ExitCode> {
    let s = service(g).await?;
    let mut conn = s.db().pool().acquire().await?;
    let report = crate::store::audit::verify(&mut conn).await?;
    let ok = report.ok;
    print(g.json, serde_json::to_value(&report)?, || {
        if ok {
            format!("audit log intact: {} entries", report.entries)
        } else {
            format!("AUDIT LOG TAMPERED:\n  {}", report.problems.join("\n  "))
        }
    });
    if !ok {
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(g: &Global, team: Option<String>, since: Option<String>) -> anyhow::Result<()> {
    let since_ms = since
        .as_deref()
        .map(|s| crate::domain::time::parse_rfc3339(s).context("--since must be an RFC 3339 time"))
        .transpose()?;
    let s = service(g).await?;
    let mut conn = s.db().pool().acquire().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = 0;
    loop {
        let rows = crate::store::audit::page_in_order(&mut conn, after, 1000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in rows.iter().filter(|r| {
            team.as_ref().is_none_or(|t| r.team_id.as_ref() == Some(t)) && since_ms.is_none_or(|s| r.created_at >= s)
        }) {
            let mut v = row.to_json();
            v["seq"] = json!(row.seq);
            v["prev_hash"] = json!(row.prev_hash);
            v["hash"] = json!(row.hash);
            writeln!(out, "{v}")?;
        }
    }
    out.flush()?;
    Ok(())
}
