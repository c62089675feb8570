//! The activity log exported from the dashboard: NDJSON (each entry as the API gives it) or CSV
//! (its columns for a spreadsheet, every formula-led cell defused).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::store::audit::AuditView;

/// The columns of the CSV export, in order.
const CSV_COLUMNS: [&str; 13] = [
    "created_at",
    "team_id",
    "actor_kind",
    "causer_id",
    "token_id",
    "event",
    "subject_type",
    "subject_id",
    "outcome",
    "error_code",
    "request_id",
    "ip",
    "client",
];

/// Each entry as the API gives it, as JSON.
fn as_json(entries: &[AuditView]) -> Vec<Value> {
    entries
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or_default())
        .collect()
}

pub(super) fn ndjson(entries: &[AuditView]) -> Response {
    let body: String = as_json(entries).iter().map(|e| format!("{e}\n")).collect();
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"activity.ndjson\""),
        ],
        body,
    )
        .into_response()
}

pub(super) fn csv(entries: &[AuditView]) -> Response {
    let mut body = CSV_COLUMNS.join(",") + "\n";
    for e in as_json(entries) {
        let row: Vec<String> = CSV_COLUMNS.iter().map(|c| csv_field(&e[*c])).collect();
        body.push_str(&row.join(","));
        body.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"activity.csv\""),
        ],
        body,
    )
        .into_response()
}

fn csv_field(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    // Quoted, and a leading formula character defused for spreadsheets (OWASP's list: a TAB or
    // CR before the `=` makes some spreadsheets read a formula too; LF for good measure).
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r', '\n']) {
        format!("'{s}")
    } else {
        s
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_a_spreadsheet_would_read_as_formulas_are_defused() {
        for lead in ["=", "+", "-", "@", "\t", "\r", "\n"] {
            let cell = csv_field(&json!(format!("{lead}HYPERLINK(\"x\")")));
            assert!(cell.starts_with("\"'"), "{cell:?}");
        }
        assert_eq!(csv_field(&json!("plain \"q\"")), "\"plain \"\"q\"\"\"");
        assert_eq!(csv_field(&Value::Null), "\"\"");
    }
}
