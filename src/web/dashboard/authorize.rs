//! `GET /authorize` and `POST /authorize`: the OAuth authorization endpoint and its consent
//! page, in the dashboard's style, with its sign-in and CSRF rules. The checks, the form's
//! server-side binding and the grant are `service::accounts::oauth_consent`; this translates.
//!
//! The consent form is a fixed contract (browser automation in the interop tests relies on it):
//! `<form method="post" action="/authorize">` with hidden `request` (the handle) and `csrf`,
//! `<select name="team">`, checkboxes `project` (none = every project of the team) and
//! `ability` (the read-only preset checked in the HTML, writes unchecked, nothing beyond the
//! person's role offered), and the buttons `#allow` / `#deny` (`name="decision"`).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages::{error_page, internal_error, refused};
use super::session::{CsrfForm, SignedIn, all_of};
use super::sign_in::sign_in_then;
use crate::domain::ability::Ability;
use crate::domain::oauth_flow::{redirect_host, redirect_source};
use crate::service::accounts::client_documents::is_document_url;
use crate::service::accounts::oauth_consent::{AuthorizeParams, AuthorizeRefusal, Consent, ConsentAnswer};
use crate::store::oauth::REGISTERED;
use crate::web::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "consent.html")]
pub(super) struct ConsentPage {
    nav: Option<super::pages::Nav>,
    handle: String,
    csrf: String,
    client_name: String,
    unverified: bool,
    document_domain: Option<String>,
    redirect_host: String,
    loopback: bool,
    teams: Vec<TeamChoice>,
    groups: Vec<AbilityGroup>,
}

pub(super) struct TeamChoice {
    id: String,
    name: String,
    role: String,
    projects: Vec<(String, String)>,
}

pub(super) struct AbilityGroup {
    name: &'static str,
    abilities: Vec<AbilityChoice>,
}

pub(super) struct AbilityChoice {
    name: &'static str,
    description: &'static str,
    writes: bool,
    checked: bool,
    requested: bool,
}

/// A `303 See Other` to `url`, or an error page when it cannot be a `Location` (never a panic).
pub(super) fn see_other(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "The application's redirect address cannot be used in a redirect.",
        ),
    }
}

/// The parameters, each at most once (RFC 6749 §3.1): a repeated one refuses the request on a
/// page, since which redirect or state is meant cannot be told.
fn params_of(query: &str) -> Option<AuthorizeParams> {
    let mut p = AuthorizeParams::default();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "response_type" => &mut p.response_type,
            "client_id" => &mut p.client_id,
            "redirect_uri" => &mut p.redirect_uri,
            "code_challenge" => &mut p.code_challenge,
            "code_challenge_method" => &mut p.code_challenge_method,
            "state" => &mut p.state,
            "resource" => &mut p.resource,
            "scope" => &mut p.scope,
            _ => continue,
        };
        if slot.replace(v.into_owned()).is_some() {
            return None;
        }
    }
    Some(p)
}

pub(super) async fn authorize_page(
    State(s): State<AppState>,
    RawQuery(query): RawQuery,
    signed_in: Option<SignedIn>,
) -> Response {
    let query = query.unwrap_or_default();
    let Some(params) = params_of(&query) else {
        return error_page(StatusCode::BAD_REQUEST, "A parameter of this request is repeated.");
    };
    let checked = match s.service.check_authorization(&params).await {
        Ok(Ok(checked)) => checked,
        Ok(Err(AuthorizeRefusal::Page(why))) => return error_page(StatusCode::BAD_REQUEST, why),
        Ok(Err(AuthorizeRefusal::Redirect(url))) => return see_other(&url),
        Err(e) => {
            tracing::error!(error = ?e, "an authorization request could not be checked");
            return internal_error();
        }
    };
    let Some(SignedIn { session, caller, .. }) = signed_in else {
        return sign_in_then(&format!("/authorize?{query}"));
    };
    match s.service.open_consent(&caller, checked).await {
        Ok(consent) => consent_page(consent, session.csrf),
        Err(e) => refused(e, "No such request."),
    }
}

fn consent_page(consent: Consent, csrf: String) -> Response {
    let request = &consent.request;
    let (host, loopback) = redirect_host(&request.redirect_uri);
    let offered = |a: Ability| consent.teams.iter().any(|t| t.role.holds(a));
    let mut groups: Vec<AbilityGroup> = Vec::new();
    for a in Ability::ALL.iter().copied().filter(|a| offered(*a)) {
        let choice = AbilityChoice {
            name: a.as_str(),
            description: a.description(),
            writes: a.permits_writes(),
            checked: a.is_read_only(),
            requested: consent.requested.contains(&a),
        };
        match groups.iter_mut().find(|g| g.name == a.group()) {
            Some(g) => g.abilities.push(choice),
            None => groups.push(AbilityGroup {
                name: a.group(),
                abilities: vec![choice],
            }),
        }
    }
    let page = ConsentPage {
        nav: None,
        handle: consent.handle.clone(),
        csrf,
        client_name: request
            .client
            .client_name
            .clone()
            .unwrap_or_else(|| "An unnamed application".to_owned()),
        unverified: request.client.kind == REGISTERED,
        document_domain: is_document_url(&request.client.id)
            .then(|| url::Url::parse(&request.client.id).ok())
            .flatten()
            .and_then(|u| u.host_str().map(str::to_owned)),
        redirect_host: host,
        loopback,
        teams: consent
            .teams
            .iter()
            .map(|t| TeamChoice {
                id: t.id.clone(),
                name: t.name.clone(),
                role: t.role.as_str().to_owned(),
                projects: t.projects.clone(),
            })
            .collect(),
        groups,
    };
    let mut res = page.into_response();
    // Chromium applies form-action to the redirect that answers the POST: the client's redirect
    // origin must be allowed beside our own.
    let action = redirect_source(&request.redirect_uri).unwrap_or_default();
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self' {action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

pub(super) async fn answer(State(s): State<AppState>, CsrfForm { caller, fields, .. }: CsrfForm) -> Response {
    let one = |name: &str| all_of(&fields, name).into_iter().next().unwrap_or_default();
    let allow = match one("decision").as_str() {
        "allow" => true,
        "deny" => false,
        _ => return error_page(StatusCode::UNPROCESSABLE_ENTITY, "Choose Allow or Deny."),
    };
    let answer = ConsentAnswer {
        handle: one("request"),
        allow,
        team: one("team"),
        projects: all_of(&fields, "project"),
        abilities: all_of(&fields, "ability"),
    };
    match s.service.answer_consent(&caller, answer).await {
        Ok(url) => see_other(&url),
        Err(e) => refused(
            e,
            "This consent form does not exist or is not yours. Start again from the application.",
        ),
    }
}
