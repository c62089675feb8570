//! Settings → Team tokens (issue 21, item 1): every token of the team through `list_team_tokens`
//! (`token:view-any`: owners and admins), with the API's filters as a form, and each active
//! token's revocation by an owner or admin through `revoke_team_token` (`token:revoke-any`),
//! confirmed on a page of its own. The service checks the abilities; this only translates.
//!
//! Each row's `Usage` cell (`td.usage`) holds the token's sparkline over 30 days.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Map, Value, json};

use super::pages::{Nav, error_page, field_errors, refused};
use super::session::{CsrfForm, SignedIn};
use crate::domain::ability::Ability;
use crate::domain::error::Error;
use crate::service::core::args::{Limit, PageArgs};
use crate::service::core::op::Input;
use crate::service::ops::projects::ListProjects;
use crate::service::ops::team_tokens::{ListTeamTokens, Origin, RevokeTeamToken, TeamToken, TokenRef, TokenState};
use crate::service::ops::teams::{ListTeamMembers, TeamPage};
use crate::web::AppState;

const NOT_FOUND: &str = "No such token in this team.";

/// Tokens one page of the list shows.
const PER_PAGE: i64 = 100;

/// One row of the table.
struct Row {
    id: String,
    name: String,
    owner_email: String,
    owner_name: String,
    abilities: Vec<String>,
    writes: bool,
    /// The projects it is limited to (their names where known), or empty: the whole team.
    projects: Vec<String>,
    created_at: String,
    last_used: String,
    expires_at: String,
    origin: &'static str,
    state: &'static str,
    active: bool,
    /// Its calls over the last 30 days, as a labelled sparkline.
    usage: super::usage_chart::Sparkline,
}

/// The filter form as the query gave it.
#[derive(Default)]
struct Filters {
    user_id: String,
    ability: String,
    can_write: String,
    never_used: bool,
    unused: bool,
    expiring: bool,
}

#[derive(Template, WebTemplate)]
#[template(path = "team_tokens.html")]
struct TeamTokensPage {
    nav: Option<Nav>,
    f: Filters,
    people: Vec<(String, String)>,
    abilities: Vec<&'static str>,
    rows: Vec<Row>,
    total: i64,
    error: Option<String>,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "team_token_revoke.html")]
struct RevokePage {
    nav: Option<Nav>,
    id: String,
    name: String,
    owner: String,
    csrf: String,
}

/// A time as the table shows it, to the minute (`2026-01-31 12:00 UTC`): the API has the rest.
fn short(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(minute) => format!("{} UTC", minute.replacen('T', " ", 1)),
        None => rfc3339.to_owned(),
    }
}

fn row(t: &TeamToken, project_names: &[(String, String)]) -> Row {
    let v = &t.token;
    let last_used = match &v.last_used_at {
        Some(at) => [Some(short(at)), v.last_used_ip.clone(), t.last_used_client.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · "),
        None => "never".to_owned(),
    };
    let name_of = |id: &String| {
        project_names
            .iter()
            .find(|(pid, _)| pid == id)
            .map_or_else(|| id.clone(), |(_, name)| name.clone())
    };
    Row {
        id: v.id.clone(),
        name: v.name.clone(),
        owner_email: t.owner.email.clone(),
        owner_name: t.owner.name.clone(),
        abilities: v.abilities.clone(),
        writes: t.can_write,
        projects: v.project_ids.iter().flatten().map(name_of).collect(),
        created_at: short(&v.created_at),
        last_used,
        expires_at: v.expires_at.as_deref().map_or_else(|| "never".to_owned(), short),
        origin: match t.origin {
            Origin::Minted => "minted",
            Origin::Oauth => "OAuth",
        },
        state: match t.state {
            TokenState::Revoked => "revoked",
            TokenState::Expired => "expired",
            TokenState::Active if v.grace_until.is_some() => "superseded",
            TokenState::Active => "active",
        },
        active: t.state == TokenState::Active,
        usage: super::usage_chart::sparkline(&t.usage),
    }
}

pub(super) async fn page(
    State(s): State<AppState>,
    SignedIn { session, caller, .. }: SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let query: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let given = |k: &str| {
        query
            .iter()
            .find(|(q, _)| q == k)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let f = Filters {
        user_id: given("user_id"),
        ability: given("ability"),
        can_write: given("can_write"),
        never_used: given("never_used") == "true",
        unused: !given("unused_days").is_empty(),
        expiring: !given("expiring_days").is_empty(),
    };
    // The filters as the API takes them: the form's fixed choices, 30 and 7 days.
    let mut filters = Map::new();
    for (name, value) in [
        ("user_id", &f.user_id),
        ("ability", &f.ability),
        ("can_write", &f.can_write),
    ] {
        if !value.is_empty() {
            filters.insert(name.into(), json!(value));
        }
    }
    if f.can_write == "true" || f.can_write == "false" {
        filters.insert("can_write".into(), json!(f.can_write == "true"));
    }
    if f.never_used {
        filters.insert("never_used".into(), json!(true));
    }
    if f.unused {
        filters.insert("unused_days".into(), json!(30));
    }
    if f.expiring {
        filters.insert("expiring_days".into(), json!(7));
    }
    let page_no = given("page").parse::<i64>().ok().filter(|n| *n >= 1).unwrap_or(1);
    let team_id = session.person.team_id.to_string();
    let mut args = filters.clone();
    args.insert("team_id".into(), json!(team_id));
    args.insert("limit".into(), json!(PER_PAGE));
    args.insert("page".into(), json!(page_no));
    let mut status = StatusCode::OK;
    let mut error = None;
    let (tokens, total, has_more) = match s
        .service
        .invoke_json::<ListTeamTokens>(&caller, Input::json(Value::Object(args)))
        .await
    {
        Ok(listed) => (listed.data, listed.meta.total, listed.meta.has_more),
        Err(Error::MissingAbility(..)) => {
            return error_page(
                StatusCode::FORBIDDEN,
                "Only an owner or an admin of the team sees the team's tokens.",
            );
        }
        Err(Error::Validation(fields)) => {
            status = StatusCode::UNPROCESSABLE_ENTITY;
            error = Some(format!("Filter not applied: {}.", field_errors(&fields)));
            (Vec::new(), 0, false)
        }
        Err(e) => return refused(e, NOT_FOUND),
    };
    // The people of the team for the person filter; the projects' names for the scopes. Either
    // may be refused (the page still shows, with what the tokens themselves say).
    let all = || PageArgs {
        page: None,
        limit: Some(Limit::max()),
    };
    let people = match s
        .service
        .invoke::<ListTeamMembers>(
            &caller,
            TeamPage {
                team_id: session.person.team_id.clone(),
                page: None,
                limit: Some(Limit::max()),
            },
        )
        .await
    {
        Ok(members) => members
            .data
            .into_iter()
            .map(|m| (m.user_id.to_string(), format!("{} ({})", m.name, m.email)))
            .collect(),
        Err(_) => {
            let mut people: Vec<(String, String)> = tokens
                .iter()
                .map(|t| (t.owner.id.clone(), format!("{} ({})", t.owner.name, t.owner.email)))
                .collect();
            people.sort();
            people.dedup();
            people
        }
    };
    let project_names: Vec<(String, String)> = match s.service.invoke::<ListProjects>(&caller, all()).await {
        Ok(listed) => listed.data.into_iter().map(|p| (p.id.into(), p.name)).collect(),
        Err(_) => Vec::new(),
    };
    let link = |page: i64| {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query {
            if k != "page" && !v.trim().is_empty() {
                q.append_pair(k, v.trim());
            }
        }
        q.append_pair("page", &page.to_string());
        q.finish()
    };
    TeamTokensPage {
        nav: Nav::of(&s, &session, &caller, "team-tokens").await,
        people,
        abilities: Ability::ALL.iter().map(|a| a.as_str()).collect(),
        rows: tokens.iter().map(|t| row(t, &project_names)).collect(),
        total,
        error,
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: has_more.then(|| link(page_no + 1)),
        f,
    }
    .into_response()
    .map_status(status)
}

/// The page that asks an owner or admin to confirm a team token's revocation.
pub(super) async fn revoke_page(
    State(s): State<AppState>,
    Path(token_id): Path<String>,
    SignedIn { session, caller, .. }: SignedIn,
) -> Response {
    match s.service.team_token(&caller, &token_id).await {
        Ok((t, owner)) if t.revoked_at.is_none() => RevokePage {
            nav: Nav::of(&s, &session, &caller, "team-tokens").await,
            id: t.id,
            name: t.name,
            owner,
            csrf: session.csrf,
        }
        .into_response(),
        Ok(_) => error_page(StatusCode::CONFLICT, "This token is already revoked."),
        Err(e) => refused(e, NOT_FOUND),
    }
}

/// Revokes a token of the team as the signed-in owner or admin (`revoke_team_token`: audited as
/// them, the token's owner notified), then back to the list.
pub(super) async fn revoke(
    State(s): State<AppState>,
    Path(token_id): Path<String>,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    match s
        .service
        .invoke::<RevokeTeamToken>(&caller, TokenRef { token_id })
        .await
    {
        Ok(_) => Redirect::to("/settings/team-tokens").into_response(),
        Err(e) => refused(e, NOT_FOUND),
    }
}

/// A response with another status (the page of a refused filter is a `422`).
trait MapStatus {
    fn map_status(self, status: StatusCode) -> Response;
}

impl MapStatus for Response {
    fn map_status(mut self, status: StatusCode) -> Response {
        if status != StatusCode::OK {
            *self.status_mut() = status;
        }
        self
    }
}
