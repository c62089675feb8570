//! Settings → API Tokens → Team token policy (issue 21, item 3): everyone in the team reads the
//! policy (it bounds the tokens they may mint); only an owner changes it. Who may change it is
//! `Service::set_token_policy`; this page only asks, sending only what differs from the policy
//! as it is, so the audit entry names the change.
//!
//! A role's rule is offered as "any ability the role holds" or "read-only abilities only"; a
//! list of the operator's own (`memberpass team policy --role-abilities`) is shown and kept
//! unless changed here.
//!
//! The ids `token-policy-form`, `max-lifetime`, `require-expiry`, `role-<role>`,
//! `expire-unused`, `mcp-pasted-tokens` and `save-token-policy` are what browser scripts drive.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{Nav, field_errors, refused};
use super::session::{CsrfForm, SignedIn, first_of};
use crate::domain::ability::Ability;
use crate::domain::error::Error;
use crate::domain::role::Role;
use crate::domain::time::DAY_MS;
use crate::domain::token_policy::{PastedTokens, TokenPolicy};
use crate::service::Caller;
use crate::service::accounts::sessions::Session;
use crate::service::accounts::token_policy::PolicyChange;
use crate::web::AppState;

const PAGE: &str = "/settings/token-policy";

/// One role's rule as the form offers it.
struct RoleRow {
    role: &'static str,
    /// `any`, `reads` or `custom`.
    rule: &'static str,
    /// The abilities of a custom list.
    custom: Vec<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "token_policy.html")]
struct PolicyPage {
    nav: Option<Nav>,
    csrf: String,
    owner: bool,
    /// Whole days, or empty: none.
    max_lifetime_days: String,
    require_expiry: bool,
    roles: Vec<RoleRow>,
    expire_unused_days: String,
    mcp_deny: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// The read-only abilities a role holds: what "reads only" means for it.
fn reads_of(role: Role) -> Vec<Ability> {
    Ability::ALL
        .iter()
        .copied()
        .filter(|a| role.holds(*a) && !a.permits_writes())
        .collect()
}

fn days(ms: Option<i64>) -> String {
    ms.map(|ms| {
        if ms % DAY_MS == 0 {
            (ms / DAY_MS).to_string()
        } else {
            crate::domain::token_policy::format_duration(ms)
        }
    })
    .unwrap_or_default()
}

fn role_row(p: &TokenPolicy, role: Role) -> RoleRow {
    let (rule, custom) = match p.role_abilities.get(&role) {
        None => ("any", Vec::new()),
        Some(list) if *list == reads_of(role) => ("reads", Vec::new()),
        Some(list) => ("custom", list.iter().map(|a| a.as_str()).collect()),
    };
    RoleRow {
        role: role.as_str(),
        rule,
        custom,
    }
}

pub(super) async fn page(
    State(s): State<AppState>,
    SignedIn { session, caller, .. }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let notice = match query.as_deref() {
        Some("saved") => {
            Some("Policy saved. Tokens it breaks were given an expiry at most 7 days away, and their owners told.")
        }
        Some("unchanged") => Some("Nothing to save: the form is the policy as it is."),
        _ => None,
    };
    render(&s, &session, &caller, notice, None).await
}

/// A number of whole days from the form: empty is `None` (off).
fn days_field(name: &str, v: &str) -> Result<Option<i64>, Error> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse::<i64>()
        .ok()
        .filter(|d| (1..=3650).contains(d))
        .map(|d| Some(d * DAY_MS))
        .ok_or_else(|| Error::field(name, "must be a whole number of days from 1 to 3650, or empty"))
}

pub(super) async fn save(
    State(s): State<AppState>,
    CsrfForm {
        session,
        caller,
        fields,
    }: CsrfForm,
) -> Response {
    let team = session.person.team_id.to_string();
    let current = match s.service.token_policy(&caller, &team).await {
        Ok(p) => p,
        Err(e) => return refused(e, "No such team."),
    };
    let field = |name: &str| first_of(&fields, name);
    let read = || -> Result<PolicyChange, Error> {
        let mut change = PolicyChange::default();
        let max = days_field("max_lifetime", field("max_lifetime_days"))?;
        if max != current.max_lifetime_ms {
            change.max_lifetime_ms = Some(max);
        }
        let require = field("require_expiry") == "on";
        if require != current.require_expiry {
            change.require_expiry = Some(require);
        }
        for role in Role::ALL {
            let want = match field(&format!("role.{role}")) {
                "any" => None,
                "reads" => Some(reads_of(*role)),
                // `custom` (or nothing sent): left as it is.
                _ => continue,
            };
            if want.as_ref() != current.role_abilities.get(role) {
                change.role_abilities.push((*role, want));
            }
        }
        let unused = days_field("expire_unused", field("expire_unused_days"))?;
        if unused != current.expire_unused_ms {
            change.expire_unused_ms = Some(unused);
        }
        let pasted = match field("mcp_pasted_tokens") {
            "deny" => PastedTokens::Deny,
            _ => PastedTokens::Allow,
        };
        if pasted != current.mcp_pasted_tokens {
            change.mcp_pasted_tokens = Some(pasted);
        }
        Ok(change)
    };
    let change = match read() {
        Ok(c) if c.is_empty() => return Redirect::to(&format!("{PAGE}?unchanged")).into_response(),
        Ok(c) => c,
        Err(e) => return answer(&s, &session, &caller, e).await,
    };
    match s.service.set_token_policy(&caller, &team, &change).await {
        Ok(_) => Redirect::to(&format!("{PAGE}?saved")).into_response(),
        Err(e) => answer(&s, &session, &caller, e).await,
    }
}

async fn answer(s: &AppState, session: &Session, caller: &Caller, e: Error) -> Response {
    let (status, why) = match e {
        Error::Conflict(why) => (StatusCode::CONFLICT, why),
        Error::Validation(fields) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("Not saved: {}.", field_errors(&fields)),
        ),
        e => return refused(e, "No such team."),
    };
    (status, render(s, session, caller, None, Some(why)).await).into_response()
}

async fn render(
    s: &AppState,
    session: &Session,
    caller: &Caller,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let team = session.person.team_id.to_string();
    let p = match s.service.token_policy(caller, &team).await {
        Ok(p) => p,
        Err(e) => return refused(e, "No such team."),
    };
    PolicyPage {
        nav: Nav::of(s, session, caller, "tokens").await,
        csrf: session.csrf.clone(),
        owner: session.person.role == Role::Owner,
        max_lifetime_days: days(p.max_lifetime_ms),
        require_expiry: p.require_expiry,
        roles: [Role::Admin, Role::Manager, Role::Viewer]
            .into_iter()
            .map(|r| role_row(&p, r))
            .collect(),
        expire_unused_days: days(p.expire_unused_ms),
        mcp_deny: p.mcp_pasted_tokens == PastedTokens::Deny,
        notice,
        error,
    }
    .into_response()
}
