//! Settings → API Tokens: the list, the mint form, the token shown once, revoke, rotate.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::pages::{Nav, error_page, field_errors, internal_error, refused};
use super::session::{CsrfForm, SignedIn, all_of};
use crate::domain::token_policy::TokenPolicy;
use crate::domain::usage::Usage;
use crate::service::Caller;
use crate::service::accounts::sessions::Session;
use crate::service::core::args::{Limit, PageArgs};
use crate::service::ops::projects::ListProjects;
use crate::service::ops::tokens::ListTokens;
use crate::store::tokens::TokenView as Token;
use crate::web::AppState;
use crate::web::mcp::clients;

/// One row of the tokens page.
pub(super) struct TokenView {
    active: bool,
    id: String,
    name: String,
    abilities: Vec<String>,
    scopes: Vec<String>,
    created_at: String,
    last_used: String,
    expires_at: String,
    state: &'static str,
    /// Its calls per day over the last 30 days.
    usage: super::usage_chart::Sparkline,
}

#[derive(Template, WebTemplate)]
#[template(path = "tokens.html")]
pub(super) struct TokensPage {
    nav: Option<Nav>,
    notices: Vec<Notice>,
    csrf: String,
    tokens: Vec<TokenView>,
    error: Option<String>,
    role: String,
    groups: Vec<AbilityGroup>,
    projects: Vec<(String, String)>,
    /// Whether the team's token policy lets a token never expire.
    never_expires: bool,
    /// The lifetimes the form offers (days, label), within the team's maximum.
    expiry_choices: Vec<(String, String)>,
}

/// A notification shown above the tokens until dismissed: a token of the person's was revoked
/// because someone reported it, or by an owner or admin of the team.
pub(super) struct Notice {
    id: String,
    token_id: String,
    /// What happened to the token, after "Token <ID>".
    heading: &'static str,
    text: String,
}

/// What a leak notification's properties say (every field optional: an older or unexpected
/// notification still shows).
#[derive(serde::Deserialize, Default)]
struct NoticeProps {
    token_name: Option<String>,
    url: Option<String>,
    source: Option<String>,
    expires_at: Option<String>,
    days_left: Option<i64>,
    revoked_by: Option<String>,
    reason: Option<String>,
    policy: Option<String>,
    limit: Option<String>,
    expire_unused: Option<String>,
}

fn notice(n: crate::store::notifications::NotificationRow) -> Notice {
    let p: NoticeProps = serde_json::from_str(&n.properties).unwrap_or_default();
    let name = p.token_name.as_deref().unwrap_or("a token");
    let at = crate::domain::time::rfc3339(n.created_at);
    let text = match n.kind.as_str() {
        crate::service::accounts::leaks::LEAKED => format!(
            "“{name}” was found in public by a secret scanner{}{} and revoked at {at}. Check what it did, then mint a replacement.",
            p.url.as_deref().map(|u| format!(" at {u}")).unwrap_or_default(),
            p.source.as_deref().map(|s| format!(" ({s})")).unwrap_or_default(),
        ),
        crate::service::accounts::token_policy::POLICY => format!(
            "“{name}” breaks the team's token policy ({} {}: {}). It keeps working until {} — mint a replacement within the policy and move its clients before then.",
            p.policy.as_deref().unwrap_or("policy"),
            p.limit.as_deref().unwrap_or_default(),
            p.reason.as_deref().unwrap_or("changed after it was minted"),
            p.expires_at.as_deref().unwrap_or("soon"),
        ),
        crate::service::accounts::maintenance::EXPIRING if p.reason.as_deref() == Some("unused") => format!(
            "“{name}” has not been used for a while and expires under the team's unused-token rule ({}) at {} — in {} day(s). A call with it before then keeps it.",
            p.expire_unused.as_deref().unwrap_or("on"),
            p.expires_at.as_deref().unwrap_or("soon"),
            p.days_left.unwrap_or(1),
        ),
        crate::service::accounts::maintenance::EXPIRED if p.reason.as_deref() == Some("unused") => format!(
            "“{name}” expired at {} under the team's unused-token rule ({}). Mint a new one if it is still needed.",
            p.expires_at.as_deref().unwrap_or("its deadline"),
            p.expire_unused.as_deref().unwrap_or("on"),
        ),
        crate::service::accounts::maintenance::EXPIRING => format!(
            "“{name}” expires at {} — in {} day(s). Mint a replacement and move its clients before then.",
            p.expires_at.as_deref().unwrap_or("soon"),
            p.days_left.unwrap_or(1),
        ),
        crate::service::accounts::maintenance::EXPIRED => format!(
            "“{name}” expired at {}. Mint a replacement if it is still needed.",
            p.expires_at.as_deref().unwrap_or("its expiry"),
        ),
        crate::service::ops::team_tokens::REVOKED_BY_TEAM => format!(
            "Your token “{name}” was revoked by {} at {at}.",
            p.revoked_by.as_deref().unwrap_or("someone of the team"),
        ),
        _ => format!(
            "“{name}” was handed in by someone who held it{} and revoked at {at}. If that was not you, check what it did.",
            p.source.as_deref().map(|s| format!(" ({s})")).unwrap_or_default(),
        ),
    };
    let heading = match n.kind.as_str() {
        crate::service::accounts::maintenance::EXPIRING => "expires soon",
        crate::service::accounts::maintenance::EXPIRED => "has expired",
        crate::service::accounts::token_policy::POLICY => "breaks the team's token policy",
        _ => "was revoked for you",
    };
    Notice {
        id: n.id,
        token_id: n.token_id,
        heading,
        text,
    }
}

pub(super) async fn dismiss(
    State(s): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    match s.service.dismiss_notification(&caller, &id).await {
        Ok(()) => Redirect::to("/settings/tokens").into_response(),
        Err(e) => refused(e, "No such notification."),
    }
}

pub(super) struct AbilityGroup {
    name: &'static str,
    abilities: Vec<AbilityChoice>,
}

pub(super) struct AbilityChoice {
    name: &'static str,
    description: &'static str,
    writes: bool,
    allowed: bool,
    /// The role holds it, but the team's token policy does not let this role put it on a token.
    by_policy: bool,
}

/// The catalog's abilities by group, each offered only if the person's role holds it and the
/// team's token policy lets the role put it on a token.
fn ability_groups(role: crate::domain::role::Role, policy: &TokenPolicy) -> Vec<AbilityGroup> {
    let mut groups: Vec<AbilityGroup> = Vec::new();
    let permitted = policy.allowed_for(role);
    for a in crate::domain::ability::Ability::ALL {
        let choice = AbilityChoice {
            name: a.as_str(),
            description: a.description(),
            writes: a.permits_writes(),
            allowed: permitted.contains(a),
            by_policy: role.holds(*a) && !permitted.contains(a),
        };
        match groups.iter_mut().find(|g| g.name == a.group()) {
            Some(g) => g.abilities.push(choice),
            None => groups.push(AbilityGroup {
                name: a.group(),
                abilities: vec![choice],
            }),
        }
    }
    groups
}

#[derive(Template, WebTemplate)]
#[template(path = "minted.html")]
pub(super) struct MintedPage {
    nav: Option<Nav>,
    heading: &'static str,
    id: String,
    token: String,
    url: String,
    claude_desktop: String,
    cursor: String,
    vscode: String,
}

impl MintedPage {
    pub(super) fn new(
        s: &AppState,
        heading: &'static str,
        nav: Option<Nav>,
        minted: &crate::service::accounts::tokens::Minted,
    ) -> Self {
        let token = minted.secret.expose_secret().to_owned();
        let url = s.http.public_url.trim_end_matches('/').to_owned();
        let pretty = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default();
        MintedPage {
            heading,
            nav,
            id: minted.row.id.clone(),
            claude_desktop: pretty(clients::claude_desktop(&url, &token)),
            cursor: pretty(clients::cursor(&url, &token)),
            vscode: pretty(clients::vscode(&url)),
            token,
            url,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "revoke.html")]
pub(super) struct RevokePage {
    nav: Option<Nav>,
    id: String,
    name: String,
    csrf: String,
}

pub(super) async fn mint(
    State(s): State<AppState>,
    CsrfForm {
        session,
        caller,
        fields,
    }: CsrfForm,
) -> Response {
    let p = &session.person;
    let expires = all_of(&fields, "expires").first().cloned().unwrap_or_default();
    let minted = match crate::service::accounts::tokens::lifetime_of_days(&expires) {
        Ok(expires_in_ms) => {
            let request = crate::service::accounts::tokens::MintRequest {
                team_id: p.team_id.to_string(),
                user_email: p.user_email.clone(),
                name: all_of(&fields, "name").first().cloned().unwrap_or_default(),
                abilities: all_of(&fields, "ability"),
                project_ids: all_of(&fields, "project"),
                expires_in_ms,
                allowed_ips: network_blocks(&fields),
                replaces: None,
            };
            s.service.mint_token(&caller, request).await
        }
        Err(e) => Err(e),
    };
    let nav = Nav::of(&s, &session, &caller, "tokens").await;
    match minted {
        Ok(minted) => MintedPage::new(&s, "Your new token", nav, &minted).into_response(),
        Err(crate::domain::error::Error::Validation(fields)) => {
            let page = tokens_view(
                &s,
                &session,
                &caller,
                Some(format!("Not minted: {}.", field_errors(&fields))),
            )
            .await;
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        Err(crate::domain::error::Error::PolicyViolation(v)) => {
            let page = tokens_view(&s, &session, &caller, Some(policy_refusal(&v))).await;
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        Err(e) => refused(e, "No such token."),
    }
}

/// The network blocks a form's `allowed_ips` field lists: separated by commas or white space.
pub(super) fn network_blocks(fields: &[(String, String)]) -> Vec<String> {
    all_of(fields, "allowed_ips")
        .iter()
        .flat_map(|v| {
            v.split([',', ' ', '\n', '\r', '\t'])
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// What a person reads when the team's token policy refuses a token: the rule and its limit.
pub(super) fn policy_refusal(v: &crate::domain::token_policy::Violation) -> String {
    format!("Not minted: {} (team policy {} = {}).", v.message, v.policy, v.limit)
}

pub(super) async fn revoke_page(
    State(s): State<AppState>,
    axum::extract::Path(token_id): axum::extract::Path<String>,
    SignedIn { session, caller, .. }: SignedIn,
) -> Response {
    match s.service.own_token(&caller, &token_id).await {
        Ok(t) if t.revoked_at.is_none() => RevokePage {
            nav: Nav::of(&s, &session, &caller, "tokens").await,
            id: t.id,
            name: t.name,
            csrf: session.csrf,
        }
        .into_response(),
        Ok(_) => error_page(StatusCode::NOT_FOUND, "This token is already revoked."),
        Err(e) => refused(e, "No such token."),
    }
}

pub(super) async fn revoke(
    State(s): State<AppState>,
    axum::extract::Path(token_id): axum::extract::Path<String>,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    match s.service.revoke_own_token(&caller, &token_id).await {
        Ok(row) => Redirect::to(&format!("/settings/tokens/{}#playbook", row.id)).into_response(),
        Err(e) => refused(e, "No such token."),
    }
}

pub(super) async fn rotate(
    State(s): State<AppState>,
    axum::extract::Path(token_id): axum::extract::Path<String>,
    CsrfForm {
        session,
        caller,
        fields,
    }: CsrfForm,
) -> Response {
    let nav = Nav::of(&s, &session, &caller, "tokens").await;
    // The old secret's grace: none (revoked now), or one of the choices the form offers.
    let grace = match fields.iter().find(|(k, _)| k == "grace").map(|(_, v)| v.as_str()) {
        None | Some("" | "0") => std::time::Duration::ZERO,
        Some(v) => match crate::domain::oauth::parse_duration(v) {
            Ok(d) => d,
            Err(_) => {
                return refused(
                    crate::domain::error::Error::field("grace", "not a duration"),
                    "No such token.",
                );
            }
        },
    };
    match s.service.rotate_own_token(&caller, &token_id, grace).await {
        Ok(minted) => MintedPage::new(&s, "The replacement token", nav, &minted).into_response(),
        Err(e) => refused(e, "No such token."),
    }
}

/// A token as its row of the page shows it.
fn token_line(t: &Token, usage: &Usage) -> TokenView {
    TokenView {
        usage: super::usage_chart::sparkline(usage),
        active: t.revoked_at.is_none(),
        id: t.id.clone(),
        name: t.name.clone(),
        abilities: t.abilities.clone(),
        scopes: t.scopes.clone(),
        created_at: t.created_at.clone(),
        last_used: match (&t.last_used_at, &t.last_used_ip) {
            (Some(at), Some(ip)) => format!("{at} from {ip}"),
            (Some(at), None) => at.clone(),
            _ => "never".to_owned(),
        },
        expires_at: t.expires_at.clone().unwrap_or_else(|| "never".to_owned()),
        state: if t.revoked_at.is_some() {
            "revoked"
        } else if t.grace_until.is_some() {
            "superseded"
        } else if t
            .expires_at
            .as_deref()
            .and_then(crate::domain::time::parse_rfc3339)
            .is_some_and(|at| at <= crate::domain::time::now_ms())
        {
            "expired"
        } else {
            "active"
        },
    }
}

pub(super) async fn tokens_page(State(s): State<AppState>, SignedIn { session, caller, .. }: SignedIn) -> Response {
    tokens_view(&s, &session, &caller, None).await
}

/// The tokens page: the person's tokens (through `list_tokens`, audited as human) and the mint
/// form (projects through `list_projects` when the role may list them).
pub(super) async fn tokens_view(s: &AppState, session: &Session, caller: &Caller, error: Option<String>) -> Response {
    // As many as a page holds: the person's tokens, the projects the mint form offers.
    let page = || PageArgs {
        page: None,
        limit: Some(Limit::max()),
    };
    let listed = match s.service.invoke::<ListTokens>(caller, page()).await {
        Ok(listed) => listed.data,
        Err(e) => {
            tracing::warn!(error = ?e, operation = "list_tokens", "dashboard call refused");
            return internal_error();
        }
    };
    // The sparklines: the usage of every listed token, in one query.
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    let usage = match s.service.own_tokens_usage(caller, &ids).await {
        Ok(usage) => usage,
        Err(e) => {
            tracing::warn!(error = ?e, "token usage unavailable");
            return internal_error();
        }
    };
    let none = Usage::window(crate::domain::usage::day_of(crate::store::now_ms()), []);
    let tokens = listed
        .iter()
        .map(|t| token_line(t, usage.get(&t.id).unwrap_or(&none)))
        .collect();
    let projects = match s.service.invoke::<ListProjects>(caller, page()).await {
        Ok(listed) => listed.data.into_iter().map(|p| (p.id.into(), p.name)).collect(),
        Err(e) => {
            tracing::warn!(error = ?e, operation = "list_projects", "dashboard call refused");
            Vec::new()
        }
    };
    let p = &session.person;
    // The team's token policy shapes the form (the service refuses what breaks it anyway).
    let policy = s
        .service
        .token_policy(caller, p.team_id.as_str())
        .await
        .unwrap_or_default();
    let max_days = policy.max_lifetime_ms.map(|ms| ms / crate::domain::time::DAY_MS);
    let expiry_choices = [
        (7, "In 7 days"),
        (30, "In 30 days"),
        (90, "In 90 days"),
        (365, "In a year"),
    ]
    .into_iter()
    .filter(|(d, _)| max_days.is_none_or(|m| *d <= m))
    .map(|(d, label)| (d.to_string(), label.to_owned()))
    .chain(
        max_days
            .filter(|m| ![7, 30, 90, 365].contains(m) && *m >= 1)
            .map(|m| (m.to_string(), format!("In {m} days (the team's maximum)"))),
    )
    .collect();
    TokensPage {
        never_expires: !policy.require_expiry && policy.max_lifetime_ms.is_none(),
        expiry_choices,
        nav: Nav::of(s, session, caller, "tokens").await,
        notices: s
            .service
            .notifications(caller)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(notice)
            .collect(),
        csrf: session.csrf.clone(),
        tokens,
        error,
        role: p.role.as_str().to_owned(),
        groups: ability_groups(p.role, &policy),
        projects,
    }
    .into_response()
}
