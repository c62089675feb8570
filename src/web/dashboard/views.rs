//! One audit entry per dashboard page (issue 21, item 8): a page (`GET`) a signed-in person loads
//! leaves one `dashboard.view` entry — which page, the filters its query gave, the status it was
//! answered with — instead of one entry per service read it made.
//!
//! The [`record`] layer puts a [`PageSlot`] in every page request it knows the name of; the
//! [`super::session::SignedIn`] extractor finds it, marks its caller as a page view (its
//! successful reads then leave no entry of their own and note the ability they needed) and leaves
//! a clone of it in the slot. Once the handler has made its page, the layer records the view
//! through the checked append — the person re-checked under the chain's lock, still in the team
//! and their role still holding every ability the page's reads needed — and only then answers;
//! a refusal there (audited, `denied`) answers the refusal instead of the page. Refused and failed
//! reads, forms (`POST`) and every REST or MCP call are audited as before.

use std::sync::{Arc, Mutex};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::pages::{error_page, internal_error};
use crate::domain::error::Error;
use crate::service::Caller;
use crate::web::AppState;

/// Where the signed-in extractor leaves the caller of a page view.
#[derive(Clone, Default)]
pub(super) struct PageSlot(Arc<Mutex<Option<Caller>>>);

impl PageSlot {
    pub(super) fn put(&self, caller: Caller) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(caller);
        }
    }

    fn take(&self) -> Option<Caller> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// The stable name of the page a route shows, and the kind of what its path parameter names
/// (the entry's subject); `None` for what is not a page of a signed-in person's settings.
fn page_of(route: &str) -> Option<(&'static str, Option<&'static str>)> {
    Some(match route {
        "/settings/tokens" => ("tokens", None),
        "/settings/tokens/{token_id}" => ("token", Some("token")),
        "/settings/tokens/{token_id}/revoke" => ("token_revoke", Some("token")),
        "/settings/team-tokens" => ("team_tokens", None),
        "/settings/team-tokens/{token_id}/revoke" => ("team_token_revoke", Some("token")),
        "/settings/activity" => ("activity", None),
        "/settings/apps" => ("apps", None),
        "/settings/approvals" => ("approvals", None),
        "/settings/approvals/policy" => ("approval_policy", None),
        "/settings/approvals/{id}" => ("approval", Some("approval")),
        "/settings/access-codes" => ("access_codes", None),
        "/settings/token-policy" => ("token_policy", None),
        _ => return None,
    })
}

/// Most query parameters, and longest value, a view entry keeps.
const FILTERS_MAX: usize = 20;
const FILTER_VALUE_MAX: usize = 200;

/// The query's parameters as given (the non-empty ones, the first of each name, each value cut
/// at [`FILTER_VALUE_MAX`] characters). The audit store redacts any token in them, as in every
/// entry; no page takes a secret in its query.
fn filters_of(query: Option<&str>) -> Value {
    let mut filters = Map::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let v = v.trim();
        if v.is_empty() || filters.contains_key(k.as_ref()) {
            continue;
        }
        if filters.len() == FILTERS_MAX {
            break;
        }
        filters.insert(
            k.chars().take(64).collect(),
            Value::String(v.chars().take(FILTER_VALUE_MAX).collect()),
        );
    }
    Value::Object(filters)
}

/// The path parameter of `route` in `path` (the one id a page's route names, if any), kept
/// only when it looks like an id (as a call's subject is): junk stays out of the log.
fn path_param(route: &str, path: &str) -> Option<String> {
    route
        .split('/')
        .zip(path.split('/'))
        .find(|(r, _)| r.starts_with('{'))
        .map(|(_, p)| p.to_owned())
        .filter(|p| p.len() <= 64 && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// The layer of the dashboard's routes: records the view of each page a signed-in person loads.
pub(super) async fn record(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let page = route.as_deref().and_then(page_of);
    let (Some(route), Some((name, subject_kind)), true) =
        (route, page, [Method::GET, Method::HEAD].contains(req.method()))
    else {
        return next.run(req).await;
    };
    let filters = filters_of(req.uri().query());
    // The Activity Log's export is a download of the log: a page of its own name.
    let name = match name {
        "activity" if filters.get("format").is_some() => "activity_export",
        name => name,
    };
    let id = path_param(&route, req.uri().path());
    let slot = PageSlot::default();
    req.extensions_mut().insert(slot.clone());
    let response = next.run(req).await;
    // Nobody signed in (the sign-in page answered instead): no page was shown to anyone.
    let Some(caller) = slot.take() else {
        return response;
    };
    let properties = json!({"page": name, "filters": filters, "status": response.status().as_u16()});
    let subject = subject_kind.zip(id.as_deref());
    match s.service.record_page_view(&caller, properties, subject).await {
        Ok(()) => response,
        Err(Error::MissingAbility(a, _)) => error_page(
            StatusCode::FORBIDDEN,
            format!("Your role no longer allows this page (it lacks `{a}`)."),
        ),
        Err(Error::AuthenticationRequired) => error_page(
            StatusCode::FORBIDDEN,
            "You no longer have access to this team. Sign in again.",
        ),
        Err(e) => {
            tracing::error!(error = ?e, page = name, "a page view could not be recorded");
            internal_error()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_keeps_the_query_as_given_without_the_empty_fields() {
        let f = filters_of(Some(
            "event=&outcome=denied&since=2026-01-01T00%3A00%3A00Z&outcome=success",
        ));
        assert_eq!(f, json!({"outcome": "denied", "since": "2026-01-01T00:00:00Z"}));
        assert_eq!(filters_of(None), json!({}));
        let long = format!("token_id={}", "a".repeat(500));
        assert_eq!(
            filters_of(Some(&long))["token_id"].as_str().map(str::len),
            Some(FILTER_VALUE_MAX)
        );
    }

    #[test]
    fn the_id_of_a_page_is_its_path_parameter() {
        assert_eq!(
            path_param("/settings/tokens/{token_id}", "/settings/tokens/abc").as_deref(),
            Some("abc")
        );
        assert_eq!(path_param("/settings/tokens", "/settings/tokens"), None);
        assert_eq!(
            path_param("/settings/tokens/{token_id}", "/settings/tokens/a%20b"),
            None
        );
        let long = format!("/settings/tokens/{}", "a".repeat(65));
        assert_eq!(path_param("/settings/tokens/{token_id}", &long), None);
        assert_eq!(
            page_of("/settings/approvals/{id}"),
            Some(("approval", Some("approval")))
        );
        assert_eq!(page_of("/login"), None);
    }
}
