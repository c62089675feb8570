//! A token's page and the leaked-token playbook: revoke now → the last 24 hours of the owner's
//! activity, this token first → a replacement with the same abilities and projects in one click
//! → the client configuration to update → the ID to quote to support. Each step is a service
//! call of the person's, audited.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::activity::{entry_kind, event_label, via};
use super::pages::{error_page, field_errors, refused};
use super::session::{CsrfForm, SignedIn};
use super::tokens::MintedPage;
use crate::domain::usage::Usage;
use crate::service::core::args::Bounded;
use crate::service::ops::activity::{ActivityQuery, GetActivityLog};
use crate::web::AppState;

struct Row {
    created_at: String,
    token_id: Option<String>,
    event: String,
    subject: String,
    outcome: String,
    kind: &'static str,
    via: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "token.html")]
struct TokenPage {
    nav: Option<super::pages::Nav>,
    id: String,
    name: String,
    abilities: Vec<String>,
    state: &'static str,
    revoked: bool,
    /// Superseded by a rotation with a grace: the replacement, until when it works, and how many
    /// of the entries below are its uses since.
    grace: Option<Grace>,
    csrf: String,
    entries: Vec<Row>,
    /// Its calls over the last 30 days: the chart and its text equivalent.
    usage: super::usage_chart::UsageFigure,
    /// The "show page views" switch is on.
    page_views: bool,
    /// The networks it may be used from (empty: anywhere).
    allowed_ips: Vec<String>,
}

struct Grace {
    replaced_by: String,
    until: String,
    uses: usize,
}

pub async fn page(
    State(s): State<AppState>,
    Path(id): Path<String>,
    SignedIn { session, caller, .. }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    // The person's own page views are left out of the 24 hours unless the switch asks for them.
    let page_views = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(k, v)| k == "page_views" && (v == "on" || v == "true"));
    let p = &session.person;
    let token = match s.service.own_token(&caller, &id).await {
        Ok(t) => t,
        Err(e) => return refused(e, "No such token."),
    };
    let since = crate::domain::time::rfc3339(crate::store::now_ms() - crate::domain::time::DAY_MS);
    let args = ActivityQuery {
        causer_id: Some(p.user_id.to_string()),
        since: Some(since),
        limit: Some(Bounded::max()),
        page_views: (!page_views).then_some(false),
        ..ActivityQuery::default()
    };
    let mut entries = match s.service.invoke::<GetActivityLog>(&caller, args).await {
        Ok(page) => page.data,
        Err(_) => Vec::new(),
    };
    // This token's entries first; the order within each part stays newest first.
    entries.sort_by_key(|e| e.token_id.as_deref() != Some(id.as_str()));
    let rows: Vec<Row> = entries
        .iter()
        .map(|e| {
            let outcome = e.outcome.clone();
            Row {
                created_at: e.created_at.clone(),
                token_id: e.token_id.clone(),
                subject: format!(
                    "{} {}",
                    e.subject_type.as_deref().unwrap_or_default(),
                    e.subject_id.as_deref().unwrap_or_default()
                ),
                kind: entry_kind(e),
                via: via(e),
                event: event_label(e),
                outcome,
            }
        })
        .collect();
    let usage = match s.service.own_tokens_usage(&caller, &[token.id.as_str()]).await {
        Ok(mut all) => all
            .remove(&token.id)
            .unwrap_or_else(|| Usage::window(crate::domain::usage::day_of(crate::store::now_ms()), [])),
        Err(e) => return refused(e, "No such token."),
    };
    let revoked = token.revoked_at.is_some();
    let grace = match (&token.replaced_by, token.grace_until) {
        (Some(by), Some(until)) if !revoked => Some(Grace {
            replaced_by: by.clone(),
            until: crate::domain::time::rfc3339(until),
            uses: rows
                .iter()
                .filter(|r: &&Row| r.token_id.as_deref() == Some(id.as_str()))
                .count(),
        }),
        _ => None,
    };
    TokenPage {
        nav: super::pages::Nav::of(&s, &session, &caller, "tokens").await,
        abilities: token.ability_names(),
        state: if revoked {
            "revoked"
        } else if grace.is_some() {
            "superseded"
        } else {
            "active"
        },
        revoked,
        grace,
        csrf: session.csrf.clone(),
        entries: rows,
        usage: super::usage_chart::figure(&usage, &token.name),
        page_views,
        allowed_ips: token.view().allowed_ips.unwrap_or_default(),
        id: token.id,
        name: token.name,
    }
    .into_response()
}

/// Ends a superseded token's grace now (it is revoked), back to its page.
pub async fn end_grace(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    match s.service.end_grace(&caller, &id).await {
        Ok(row) => axum::response::Redirect::to(&format!("/settings/tokens/{}", row.id)).into_response(),
        Err(e) => refused(e, "No such token."),
    }
}

/// Replaces the token's network allowlist (empty: anywhere), back to its page; audited as
/// `token.allowed_ips_changed` by the service, which lets only the token's owner do it.
pub async fn set_allowed_ips(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { caller, fields, .. }: CsrfForm,
) -> Response {
    let blocks = super::tokens::network_blocks(&fields);
    match s.service.set_allowed_ips(&caller, &id, &blocks).await {
        Ok(row) => axum::response::Redirect::to(&format!("/settings/tokens/{}#networks", row.id)).into_response(),
        Err(e) => refused(e, "No such token."),
    }
}

/// Step 3: a new token with the same name, abilities and projects (and the same lifetime).
pub async fn replace(
    State(s): State<AppState>,
    Path(id): Path<String>,
    CsrfForm { session, caller, .. }: CsrfForm,
) -> Response {
    let p = &session.person;
    let old = match s.service.own_token(&caller, &id).await {
        Ok(t) => t,
        Err(e) => return refused(e, "No such token."),
    };
    let request = crate::service::accounts::tokens::MintRequest {
        team_id: p.team_id.to_string(),
        user_email: p.user_email.clone(),
        name: old.name.clone(),
        abilities: old.ability_names(),
        project_ids: old.project_id_list().ok().flatten().unwrap_or_default(),
        expires_in_ms: old.expires_at.map(|e| e - old.created_at),
        // The replacement is fenced like the old one.
        allowed_ips: old.view().allowed_ips.unwrap_or_default(),
        replaces: Some(old.id.clone()),
    };
    let nav = super::pages::Nav::of(&s, &session, &caller, "tokens").await;
    match s.service.mint_token(&caller, request).await {
        Ok(minted) => MintedPage::new(&s, "The replacement token", nav, &minted).into_response(),
        // The role no longer holds one of the old token's abilities: the state forbids it.
        Err(crate::domain::error::Error::Validation(fields)) => error_page(
            StatusCode::CONFLICT,
            format!("No replacement: {}.", field_errors(&fields)),
        ),
        Err(e) => refused(e, "No such token."),
    }
}
