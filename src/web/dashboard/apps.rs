//! Settings → Connected apps: the person's OAuth grants in every team, each with a
//! CSRF-protected disconnect (`POST /settings/apps/{grant_id}/revoke`, button `#revoke-<grant
//! id>`). The listing and the audited revocation are `service::accounts::connected_apps`.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{Nav, internal_error, refused};
use super::session::{CsrfForm, SignedIn};
use crate::domain::oauth_flow::redirect_host;
use crate::domain::time::rfc3339;
use crate::service::accounts::connected_apps::ConnectedApp;
use crate::web::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "apps.html")]
pub(super) struct AppsPage {
    nav: Option<Nav>,
    csrf: String,
    apps: Vec<AppLine>,
}

pub(super) struct AppLine {
    id: String,
    client_name: String,
    unverified: bool,
    redirect_host: String,
    team_name: String,
    projects: Vec<String>,
    abilities: Vec<String>,
    created_at: String,
    last_used: String,
    use_count: i64,
}

fn line(app: ConnectedApp) -> AppLine {
    let g = &app.grant;
    AppLine {
        id: g.id.clone(),
        redirect_host: redirect_host(&g.redirect_uri).0,
        abilities: g.ability_names(),
        created_at: rfc3339(g.created_at),
        last_used: g.last_used_at.map_or_else(|| "never".to_owned(), rfc3339),
        use_count: g.use_count,
        client_name: app.client_name,
        unverified: app.unverified,
        team_name: app.team_name,
        projects: app.project_names,
    }
}

pub(super) async fn page(State(s): State<AppState>, SignedIn { session, caller, .. }: SignedIn) -> Response {
    let apps = match s.service.connected_apps(&caller).await {
        Ok(apps) => apps.into_iter().map(line).collect(),
        Err(e) => {
            tracing::error!(error = ?e, "connected apps could not be listed");
            return internal_error();
        }
    };
    AppsPage {
        nav: Nav::of(&s, &session, &caller, "apps").await,
        csrf: session.csrf.clone(),
        apps,
    }
    .into_response()
}

pub(super) async fn revoke(
    State(s): State<AppState>,
    Path(grant_id): Path<String>,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    match s.service.revoke_own_grant(&caller, &grant_id).await {
        Ok(()) => Redirect::to("/settings/apps").into_response(),
        Err(e) => refused(e, "No such connected app."),
    }
}
