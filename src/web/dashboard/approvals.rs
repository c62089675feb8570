//! Settings → Approvals (issue 20): the calls the server held for a person's approval, and the
//! page each `APPROVAL_REQUIRED` answer links to (`/settings/approvals/{id}`), where a person
//! signed in reads who asks and exactly what the call would do, then approves or denies it.
//!
//! The element ids `approve`, `deny`, `approval-status` and `approval-why-not`, and the list's
//! `tr[data-approval-id]` with its `.approval-status` cell, are what browser and interop scripts
//! drive: keep them. Who may see and decide what is `service::accounts::approval_requests`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::pages::{Nav, error_page, refused};
use super::session::{CsrfForm, SignedIn};
use super::sign_in::sign_in_then;
use crate::domain::approval::Status;
use crate::domain::error::Error;
use crate::service::Caller;
use crate::service::accounts::approval_requests::{ApprovalView, Show};
use crate::service::accounts::sessions::Session;
use crate::web::AppState;

const NOT_FOUND: &str = "No such approval request.";

#[derive(Template, WebTemplate)]
#[template(path = "approvals.html")]
struct ListPage {
    nav: Option<Nav>,
    /// The status filtered on, or "" for all.
    showing: &'static str,
    statuses: Vec<&'static str>,
    approvals: Vec<ApprovalView>,
}

#[derive(Template, WebTemplate)]
#[template(path = "approval.html")]
struct ApprovalPage {
    nav: Option<Nav>,
    csrf: String,
    a: ApprovalView,
    /// The changes the call's body made when it was held (then rolled back), one per line.
    preview: Vec<String>,
    /// Why the decision just asked for was refused.
    error: Option<String>,
}

/// What `?status=` asks for (the first one given). An unknown status is a 400 page rather than
/// silently all: a mistyped link must not look like "nothing is pending".
fn show(query: Option<&str>) -> Result<Show, String> {
    let status = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "status")
        .map(|(_, v)| v.trim().to_owned());
    match status.as_deref() {
        None | Some("") => Ok(Show::All),
        Some(s) => s.parse::<Status>().map(Show::Only),
    }
}

pub(super) async fn list(
    State(s): State<AppState>,
    SignedIn { session, caller, .. }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let show = match show(query.as_deref()) {
        Ok(show) => show,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, format!("{why}.")),
    };
    let mut approvals = match s.service.approvals(&caller, show).await {
        Ok(approvals) => approvals,
        Err(e) => return refused(e, NOT_FOUND),
    };
    // What waits for someone comes first; the service's newest-first order holds within each part.
    approvals.sort_by_key(|a| a.status != Status::Pending.as_str());
    ListPage {
        nav: Nav::of(&s, &session, &caller, "approvals").await,
        showing: match show {
            Show::All => "",
            Show::Only(status) => status.as_str(),
        },
        statuses: Status::ALL.iter().map(|s| s.as_str()).collect(),
        approvals,
    }
    .into_response()
}

/// The page an `APPROVAL_REQUIRED` answer links to; whoever follows the link before signing in
/// comes back to it after.
pub(super) async fn page(State(s): State<AppState>, Path(id): Path<String>, signed_in: Option<SignedIn>) -> Response {
    match signed_in {
        Some(SignedIn { session, caller, .. }) => approval_page(&s, &session, &caller, &id, None).await,
        None => sign_in_then(&format!("/settings/approvals/{id}")),
    }
}

pub(super) async fn approve(s: State<AppState>, id: Path<String>, form: CsrfForm) -> Response {
    decide(s, id, form, true).await
}

pub(super) async fn deny(s: State<AppState>, id: Path<String>, form: CsrfForm) -> Response {
    decide(s, id, form, false).await
}

/// Approve or Deny: back to the page (which then shows the decision), or the page again with
/// why not (409) when the service refuses it.
async fn decide(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, caller, .. }: CsrfForm,
    grant: bool,
) -> Response {
    match s.service.decide_approval(&caller, &id, grant).await {
        Ok(a) => Redirect::to(&format!("/settings/approvals/{}", a.id)).into_response(),
        Err(Error::Conflict(why)) => approval_page(&s, &session, &caller, &id, Some(why)).await,
        Err(e) => refused(e, NOT_FOUND),
    }
}

/// The page of one request; with `error`, answered `409` to say the decision was refused.
async fn approval_page(s: &AppState, session: &Session, caller: &Caller, id: &str, error: Option<String>) -> Response {
    let a = match s.service.approval(caller, id).await {
        Ok(a) => a,
        Err(e) => return refused(e, NOT_FOUND),
    };
    let status = if error.is_some() {
        StatusCode::CONFLICT
    } else {
        StatusCode::OK
    };
    let page = ApprovalPage {
        nav: Nav::of(s, session, caller, "approvals").await,
        csrf: session.csrf.clone(),
        preview: preview_lines(&a.resource["preview"]),
        a,
        error,
    };
    (status, page).into_response()
}

/// The recorded changes (`{field: {from, to}}`, or `{field: value}`) as `field: from → to`.
fn preview_lines(preview: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "(none)".to_owned(),
        other => other.to_string(),
    };
    let Value::Object(changes) = preview else {
        return Vec::new();
    };
    changes
        .iter()
        .map(|(field, change)| match (change.get("from"), change.get("to")) {
            (Some(from), Some(to)) => format!("{field}: {} → {}", text(from), text(to)),
            _ => format!("{field}: {}", text(change)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_preview_reads_as_one_line_per_change() {
        let preview = json!({"status": {"from": "customer", "to": "churned"}, "subscriptions_canceled": 2});
        assert_eq!(
            preview_lines(&preview),
            vec!["status: customer → churned", "subscriptions_canceled: 2"]
        );
        assert!(preview_lines(&Value::Null).is_empty());
    }

    #[test]
    fn the_list_filter_takes_a_known_status_or_nothing() {
        assert_eq!(show(None), Ok(Show::All));
        assert_eq!(show(Some("status=")), Ok(Show::All));
        assert_eq!(
            show(Some("status=pending&status=used")),
            Ok(Show::Only(Status::Pending))
        );
        assert!(show(Some("status=approved")).is_err());
    }
}
