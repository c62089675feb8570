//! Settings → Activity Log: the team's audit trail through `get_activity_log`, as the signed-in
//! person (their role decides whether they may read it), with every filter of SPEC §7, a "last
//! 24 hours" preset, older pages by cursor, and NDJSON or CSV export of the filtered entries.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::export;
use super::pages::{error_page, field_errors, internal_error};
use super::session::SignedIn;
use crate::domain::error::Error;
use crate::service::core::op::Input;
use crate::service::ops::activity::GetActivityLog;
use crate::service::ops::catalog;
use crate::store::audit::AuditView;
use crate::web::AppState;
use axum::extract::RawQuery;

/// The filters of SPEC §7: argument name and label; the two closed sets are offered as choices.
const FILTERS: &[(&str, &str)] = &[
    ("actor_kind", "Actor kind"),
    ("token_id", "Token ID"),
    ("causer_id", "Causer (user id)"),
    ("subject_type", "Subject type"),
    ("subject_id", "Subject id"),
    ("event", "Event"),
    ("outcome", "Outcome"),
    ("since", "Since (RFC 3339)"),
    ("until", "Until (RFC 3339)"),
];

/// The choices of a filter with a closed set of values (empty: free text).
fn choices(filter: &str) -> &'static [&'static str] {
    match filter {
        "actor_kind" => &["mcp", "api_token", "human", "system"],
        "outcome" => &["success", "denied", "failed"],
        _ => &[],
    }
}

/// Most entries one export writes.
const EXPORT_MAX: usize = 10_000;

struct Filter {
    name: &'static str,
    label: &'static str,
    value: String,
    choices: &'static [&'static str],
}

struct EntryView {
    created_at: String,
    token_id: Option<String>,
    event: String,
    subject_type: String,
    subject_id: Option<String>,
    outcome: String,
    error_code: Option<String>,
    /// `write`, `denied`, `failed` or `read`: how the row is shown.
    kind: &'static str,
    via: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "activity.html")]
struct ActivityPage {
    nav: Option<super::pages::Nav>,
    error: Option<String>,
    filters: Vec<Filter>,
    /// The "Show page views" switch is on.
    page_views: bool,
    query: String,
    entries: Vec<EntryView>,
    next: Option<String>,
}

/// How an entry is shown: refusals and failures apart, writes (operations that change state,
/// token lifecycle events) highlighted, reads plain.
pub(super) fn entry_kind(e: &AuditView) -> &'static str {
    let event = e.event.as_str();
    let writes = catalog::writes(event) || event.starts_with("token.");
    match e.outcome.as_str() {
        "denied" => "denied",
        "failed" => "failed",
        _ if writes => "write",
        _ => "read",
    }
}

fn view(e: &AuditView) -> EntryView {
    EntryView {
        created_at: e.created_at.clone(),
        token_id: e.token_id.clone(),
        event: event_label(e),
        subject_type: e.subject_type.clone().unwrap_or_default(),
        subject_id: e.subject_id.clone(),
        outcome: e.outcome.clone(),
        error_code: e.error_code.clone(),
        kind: entry_kind(e),
        via: via(e),
    }
}

/// The event as the tables show it: a failed authentication names its reason.
pub(super) fn event_label(e: &AuditView) -> String {
    match e.event.as_str() {
        "auth.failed" => {
            let reason = e.properties.get("reason").and_then(serde_json::Value::as_str);
            format!("auth.failed ({})", reason.unwrap_or("?"))
        }
        event => event.to_owned(),
    }
}

/// Who acted, as the tables show it: the actor kind (`api_token` is REST, `mcp` is MCP,
/// `human` the dashboard or CLI), with the MCP client's name where it gave one.
pub(super) fn via(e: &AuditView) -> String {
    let kind = &e.actor_kind;
    match &e.client {
        Some(client) => format!("{kind} · {client}"),
        None => kind.clone(),
    }
}

pub async fn page(
    State(s): State<AppState>,
    SignedIn { session, caller, .. }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let given = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.trim().to_owned());
    let mut args = Map::new();
    for (name, _) in FILTERS {
        if let Some(v) = given(name).filter(|v| !v.is_empty()) {
            args.insert((*name).to_owned(), Value::String(v));
        }
    }
    if given("preset").as_deref() == Some("24h") {
        let since = crate::domain::time::rfc3339(crate::store::now_ms() - crate::domain::time::DAY_MS);
        args.insert("since".into(), Value::String(since));
    }
    // People's page views (`dashboard.view`) are left out unless the switch asks for them (or
    // the event filter names an event: then that event is what is asked for).
    let page_views = given("page_views").is_some_and(|v| v == "on" || v == "true");
    let filter_query = {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.extend_pairs(args.iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default())));
        if page_views {
            q.append_pair("page_views", "on");
        }
        q.finish()
    };
    if !page_views && !args.contains_key("event") {
        args.insert("page_views".into(), Value::Bool(false));
    }
    let format = given("format");
    let mut collected: Vec<AuditView> = Vec::new();
    let mut cursor = given("cursor").filter(|c| !c.is_empty());
    let mut next = None;
    let mut error = None;
    loop {
        let mut call_args = args.clone();
        call_args.insert("limit".into(), Value::from(if format.is_some() { 200 } else { 50 }));
        if let Some(c) = &cursor {
            call_args.insert("cursor".into(), Value::String(c.clone()));
        }
        // The filters as the person typed them, read as any surface's arguments are.
        let input = Input::json(Value::Object(call_args));
        match s.service.invoke_json::<GetActivityLog>(&caller, input).await {
            Ok(page) => {
                collected.extend(page.data);
                cursor = page.meta.next_cursor;
            }
            Err(Error::MissingAbility(..)) => {
                return error_page(StatusCode::FORBIDDEN, "Your role cannot read this team's activity log.");
            }
            Err(Error::Validation(fields)) => {
                error = Some(format!("Filter not applied: {}.", field_errors(&fields)));
                cursor = None;
            }
            Err(e) => {
                tracing::error!(error = ?e, "activity log failed");
                return internal_error();
            }
        }
        if format.is_none() || cursor.is_none() || collected.len() >= EXPORT_MAX {
            break;
        }
    }
    match format.as_deref() {
        Some("ndjson") => export::ndjson(&collected),
        Some("csv") => export::csv(&collected),
        _ => {
            if let Some(c) = cursor {
                let mut q = url::form_urlencoded::Serializer::new(filter_query.clone());
                q.append_pair("cursor", &c);
                next = Some(q.finish());
            }
            let status = if error.is_some() {
                StatusCode::UNPROCESSABLE_ENTITY
            } else {
                StatusCode::OK
            };
            let page = ActivityPage {
                nav: super::pages::Nav::of(&s, &session, &caller, "activity").await,
                error,
                filters: FILTERS
                    .iter()
                    .map(|(name, label)| Filter {
                        name,
                        label,
                        value: args.get(*name).and_then(Value::as_str).unwrap_or_default().to_owned(),
                        choices: choices(name),
                    })
                    .collect(),
                page_views,
                query: filter_query,
                entries: collected.iter().map(view).collect(),
                next,
            };
            (status, page).into_response()
        }
    }
}
