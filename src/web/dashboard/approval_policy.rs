//! Settings → Approvals → Policy and budgets (issue 20): the team's approval policy (which
//! writes wait for a person's approval, on which surface, and who approves) and the budgets of
//! its tokens, changed by an owner or admin.
//!
//! Everyone in the team reads the policy, read-only unless they may change it: it says which of
//! their own agents' calls will wait, which is theirs to know. The budgets, and the team's tokens
//! they are set on, are shown only to those who may set them. Who may change what is
//! `Service::change_approval_policy` and `Service::set_token_budget`; this page only asks.
//!
//! The ids `policy-form`, `rule-<operation>`, `approver`, `policy-version`, `save-policy`,
//! `budget-form` and `save-budget` are what browser scripts drive: keep them.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{Nav, field_errors, refused};
use super::session::{CsrfForm, SignedIn, first_of};
use crate::domain::approval::{ApproverRule, SurfaceRule};
use crate::domain::error::Error;
use crate::service::Caller;
use crate::service::accounts::approvals::{Controls, PolicyChange, holdable_operations};
use crate::service::accounts::sessions::Session;
use crate::web::AppState;

const PAGE: &str = "/settings/approvals/policy";
const NOT_FOUND: &str = "No such token in this team.";
/// The REST operation's bound on a budget, kept here so both surfaces refuse the same numbers.
const MAX_LIMIT: u32 = 1_000_000;

/// One holdable operation and the rule the policy has for it.
struct RuleRow {
    name: &'static str,
    summary: &'static str,
    rule: &'static str,
}

/// One budget of one live token.
struct BudgetRow {
    token_id: String,
    token_name: String,
    owner: String,
    operation: String,
    limit: i64,
}

#[derive(Template, WebTemplate)]
#[template(path = "approval_policy.html")]
struct PolicyPage {
    nav: Option<Nav>,
    csrf: String,
    manages: bool,
    version: i64,
    approver: &'static str,
    rules: Vec<RuleRow>,
    /// The rules a select offers: value and what it means.
    surfaces: Vec<(&'static str, &'static str)>,
    approvers: Vec<(&'static str, &'static str)>,
    /// The team's live tokens: ID and how the select names it.
    tokens: Vec<(String, String)>,
    budgets: Vec<BudgetRow>,
    /// What was just done (after a redirect), or why it was not.
    notice: Option<&'static str>,
    error: Option<String>,
}

/// What a surface rule means, as its option says it.
fn surface_label(rule: SurfaceRule) -> &'static str {
    match rule {
        SurfaceRule::Mcp => "on MCP",
        SurfaceRule::Rest => "on REST",
        SurfaceRule::Both => "on MCP and REST",
        SurfaceRule::None => "never (runs without approval)",
    }
}

fn approver_label(rule: ApproverRule) -> &'static str {
    match rule {
        ApproverRule::OwnerOrAdmin => "the token's owner, an owner or an admin",
        ApproverRule::NotTheCaller => "an owner or admin, not the token's owner",
    }
}

/// The sentence a redirect back asks for (`?saved=policy` …); anything else shows none.
fn notice_of(query: Option<&str>) -> Option<&'static str> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find_map(|(k, v)| {
        match (k.as_ref(), v.as_ref()) {
            ("saved", "policy") => Some("Policy saved. Approvals asked for under the last version no longer count."),
            ("unchanged", "policy") => Some("Nothing to save: the form is the policy as it is."),
            ("saved", "budget") => Some("Budget saved."),
            ("unchanged", "budget") => Some("Nothing to save: the token already has that budget."),
            _ => None,
        }
    })
}

pub(super) async fn page(
    State(s): State<AppState>,
    SignedIn { session, caller, .. }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    render(&s, &session, &caller, notice_of(query.as_deref()), None).await
}

/// Save on the policy form: only what differs from the policy goes to the service, so the
/// audit entry names the change. A form drawn from an older version is not applied over a
/// newer one (the page again, with why, 409).
pub(super) async fn save_policy(
    State(s): State<AppState>,
    CsrfForm {
        session,
        caller,
        fields,
    }: CsrfForm,
) -> Response {
    let controls = match s.service.approval_controls(&caller).await {
        Ok(c) => c,
        Err(e) => return refused(e, NOT_FOUND),
    };
    let version = fields.iter().find(|(k, _)| k == "version").map(|(_, v)| v.as_str());
    if version != Some(controls.policy.version.to_string().as_str()) {
        let why = format!(
            "The policy changed while this form was open (it is now version {}). Here it is as it is now: make your change again.",
            controls.policy.version
        );
        return conflict(&s, &session, &caller, why).await;
    }
    let rules = fields
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("rule.")?, v.as_str())));
    let approver = fields.iter().find(|(k, _)| k == "approver").map(|(_, v)| v.as_str());
    let change = PolicyChange::towards(&controls.policy, rules, approver);
    if change.is_empty() {
        return Redirect::to(&format!("{PAGE}?unchanged=policy")).into_response();
    }
    let team = session.person.team_id.to_string();
    match s.service.change_approval_policy(&caller, &team, &change).await {
        Ok(_) => Redirect::to(&format!("{PAGE}?saved=policy")).into_response(),
        Err(e) => answer_refusal(&s, &session, &caller, e).await,
    }
}

/// Save on the budget form: one token's budget of one operation (`0` removes it).
pub(super) async fn save_budget(
    State(s): State<AppState>,
    CsrfForm {
        session,
        caller,
        fields,
    }: CsrfForm,
) -> Response {
    let field = |name: &str| first_of(&fields, name).trim();
    let limit = match field("limit").parse::<u32>() {
        Ok(n) if n <= MAX_LIMIT => n,
        _ => {
            let e = Error::field("limit", format!("must be a whole number from 0 to {MAX_LIMIT}"));
            return answer_refusal(&s, &session, &caller, e).await;
        }
    };
    match s
        .service
        .set_token_budget(&caller, field("token_id"), field("operation"), limit)
        .await
    {
        Ok(change) if change.from == change.to => Redirect::to(&format!("{PAGE}?unchanged=budget")).into_response(),
        Ok(_) => Redirect::to(&format!("{PAGE}?saved=budget#budgets")).into_response(),
        Err(e) => answer_refusal(&s, &session, &caller, e).await,
    }
}

/// A refusal the person can act on (their role, a stale form, a bad field) is the page again
/// with why; anything else is the error page.
async fn answer_refusal(s: &AppState, session: &Session, caller: &Caller, e: Error) -> Response {
    match e {
        Error::Conflict(why) => conflict(s, session, caller, why).await,
        Error::Validation(fields) => {
            let why = format!("Not saved: {}.", field_errors(&fields));
            let page = render(s, session, caller, None, Some(why)).await;
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        e => refused(e, NOT_FOUND),
    }
}

async fn conflict(s: &AppState, session: &Session, caller: &Caller, why: String) -> Response {
    let page = render(s, session, caller, None, Some(why)).await;
    (StatusCode::CONFLICT, page).into_response()
}

async fn render(
    s: &AppState,
    session: &Session,
    caller: &Caller,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let Controls {
        policy,
        manages,
        tokens,
    } = match s.service.approval_controls(caller).await {
        Ok(c) => c,
        Err(e) => return refused(e, NOT_FOUND),
    };
    let rules = holdable_operations()
        .into_iter()
        .map(|(name, summary)| RuleRow {
            name,
            summary,
            rule: policy.rule(name).as_str(),
        })
        .collect();
    let budgets = tokens
        .iter()
        .flat_map(|t| {
            t.budgets.iter().map(|(operation, limit)| BudgetRow {
                token_id: t.token.id.clone(),
                token_name: t.token.name.clone(),
                owner: t.token.owner_email.clone(),
                operation: operation.clone(),
                limit: *limit,
            })
        })
        .collect();
    PolicyPage {
        nav: Nav::of(s, session, caller, "approvals").await,
        csrf: session.csrf.clone(),
        manages,
        version: policy.version,
        approver: policy.approver.as_str(),
        rules,
        surfaces: SurfaceRule::ALL
            .iter()
            .map(|r| (r.as_str(), surface_label(*r)))
            .collect(),
        approvers: ApproverRule::ALL
            .iter()
            .map(|r| (r.as_str(), approver_label(*r)))
            .collect(),
        tokens: tokens
            .iter()
            .map(|t| {
                let label = format!("{} — {} ({})", t.token.name, t.token.owner_name, t.token.id);
                (t.token.id.clone(), label)
            })
            .collect(),
        budgets,
        notice,
        error,
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_known_redirect_notices_show() {
        assert_eq!(notice_of(None), None);
        assert_eq!(notice_of(Some("saved=anything")), None);
        assert!(
            notice_of(Some("unchanged=policy"))
                .unwrap()
                .starts_with("Nothing to save")
        );
        assert_eq!(notice_of(Some("saved=budget")), Some("Budget saved."));
    }
}
