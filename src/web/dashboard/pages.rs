//! How a dashboard page answers: the navigation bar of a signed-in page, the error page, and
//! the translation of a service refusal into one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::service::Caller;
use crate::service::accounts::sessions::Session;
use crate::web::AppState;

/// How a page answers a service call it could not complete: the status and a sentence for the
/// person (`not_found` names what is missing); an internal error is logged, never shown.
pub(super) fn refused(e: crate::domain::error::Error, not_found: &'static str) -> Response {
    use crate::domain::error::Error;
    match e {
        Error::NotFound => error_page(StatusCode::NOT_FOUND, not_found),
        Error::Conflict(why) => error_page(StatusCode::CONFLICT, why),
        Error::MissingAbility(a, _) => error_page(
            StatusCode::FORBIDDEN,
            format!("Your role does not allow this (it lacks `{a}`)."),
        ),
        Error::Validation(fields) => {
            error_page(StatusCode::UNPROCESSABLE_ENTITY, format!("{}.", field_errors(&fields)))
        }
        Error::PolicyViolation(v) => error_page(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "Refused by the team's token policy: {} ({} = {}).",
                v.message, v.policy, v.limit
            ),
        ),
        e => {
            tracing::error!(error = ?e, "a dashboard action failed");
            internal_error()
        }
    }
}

/// The top bar of every signed-in page: the team it acts in (and the others the person may
/// switch to), the pages, who is signed in, and the way out; under it, how many held calls wait
/// for this person's decision, so an agent's request is seen from whatever page they are on.
pub(super) struct Nav {
    pub(super) team_id: String,
    pub(super) team_name: String,
    pub(super) user_email: String,
    pub(super) csrf: String,
    pub(super) teams: Vec<(String, String)>,
    pub(super) current: &'static str,
    pub(super) pending_approvals: usize,
    /// The person's role may see every token of the team (Team tokens is in the bar).
    pub(super) team_tokens: bool,
}

impl Nav {
    pub(super) async fn of(s: &AppState, session: &Session, caller: &Caller, current: &'static str) -> Option<Nav> {
        let p = &session.person;
        // A page still shows when the count cannot be read; the notice is a pointer, not the list.
        let pending_approvals = s.service.pending_approvals(caller).await.unwrap_or_else(|e| {
            tracing::warn!(error = ?e, "pending approvals could not be counted");
            0
        });
        Some(Nav {
            team_id: p.team_id.to_string(),
            team_name: s.service.team_name(&p.team_id).await.unwrap_or_default(),
            user_email: p.user_email.clone(),
            csrf: session.csrf.clone(),
            teams: s.service.teams_of(&p.user_id).await.unwrap_or_default(),
            current,
            pending_approvals,
            team_tokens: caller.can(crate::domain::ability::Ability::TokenViewAny),
        })
    }
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "error.html")]
struct ErrorPage {
    nav: Option<Nav>,
    status: u16,
    title: &'static str,
    message: String,
}

/// An answer that is not the page asked for, in the dashboard's own style: the status, a title,
/// and a sentence saying what went wrong (never an internal detail).
pub(super) fn error_page(status: StatusCode, message: impl Into<String>) -> Response {
    let title = match status {
        StatusCode::BAD_REQUEST => "This request cannot be answered",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Not possible now",
        StatusCode::UNPROCESSABLE_ENTITY => "Check the form",
        StatusCode::PAYLOAD_TOO_LARGE => "Too large",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
        _ => "Something went wrong",
    };
    let page = ErrorPage {
        nav: None,
        status: status.as_u16(),
        title,
        message: message.into(),
    };
    (status, page).into_response()
}

/// A failure the person cannot fix: logged where it happened, shown as a plain apology.
pub(super) fn internal_error() -> Response {
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not complete this request; it has been logged. Try again in a moment.",
    )
}

/// `field why; field why` for a form's rejected fields.
pub(super) fn field_errors(fields: &std::collections::BTreeMap<String, String>) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}
