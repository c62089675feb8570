//! The dashboard (SPEC §9): server-rendered pages for people. A session is a principal like a
//! token (the user's live role, actor `human`, no token), and every action goes through the
//! same service calls as REST and MCP.
//!
//! Cookies are `HttpOnly`, `SameSite=Strict`, and under TLS `Secure` with the `__Host-` prefix.
//! Every state-changing form carries the session's CSRF token and must come from this origin
//! (`Sec-Fetch-Site: same-origin`, or without that header an `Origin` equal to ours).

mod activity;
mod codes;
mod sign_in;
mod token;
mod tokens;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::domain::audit::RequestCtx;
use crate::http::AppState;
use crate::http::extract::request_ctx;
use crate::service::sessions::Session;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/login", get(sign_in::login_page).post(sign_in::login))
        .route("/logout", axum::routing::post(sign_in::logout))
        .route("/session/team", axum::routing::post(sign_in::switch_team))
        .route("/settings/tokens", get(tokens::tokens_page).post(tokens::mint))
        .route("/settings/tokens/{token_id}", get(token::page))
        .route(
            "/settings/tokens/{token_id}/replace",
            axum::routing::post(token::replace),
        )
        .route(
            "/settings/tokens/{token_id}/revoke",
            get(tokens::revoke_page).post(tokens::revoke),
        )
        .route(
            "/settings/tokens/{token_id}/rotate",
            axum::routing::post(tokens::rotate),
        )
        .route(
            "/settings/notifications/{id}/dismiss",
            axum::routing::post(tokens::dismiss),
        )
        .route("/settings/activity", get(activity::page))
        .route("/settings/access-codes", get(codes::access_codes_page))
        .route(
            "/settings/access-codes/{job_id}/download",
            axum::routing::post(codes::download_codes),
        )
        .route("/assets/app.css", get(stylesheet))
        .route("/assets/app.js", get(script))
        .layer(middleware::from_fn_with_state(state.clone(), page_headers))
}

/// What every dashboard response carries: no inline script or style, no framing, no referrer.
async fn page_headers(State(_): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/app.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/app.css"),
    )
        .into_response()
}

pub(super) fn secure(s: &AppState) -> bool {
    s.http.public_url.starts_with("https://")
}

pub(super) fn cookie_name(s: &AppState) -> &'static str {
    if secure(s) { "__Host-mp_session" } else { "mp_session" }
}

pub(super) fn session_cookie(s: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if secure(s) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}",
        cookie_name(s)
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub(super) fn cookie_secret(s: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(s);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Whether a state-changing request comes from our own pages.
pub(super) fn same_origin(s: &AppState, headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin",
        None => headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| o.trim_end_matches('/') == s.http.public_url.trim_end_matches('/')),
    }
}

pub(super) fn form(body: &Bytes) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

pub(super) async fn current(s: &AppState, headers: &HeaderMap) -> Option<(String, Session)> {
    let secret = cookie_secret(s, headers)?;
    match s.service.session(&secret).await {
        Ok(Some(session)) => Some((secret, session)),
        Ok(None) => None,
        Err(e) => {
            tracing::error!(error = ?e, "session lookup failed");
            None
        }
    }
}

/// A state-changing form: signed in, from this origin, with the session's CSRF token.
pub(super) async fn checked_form(
    s: &AppState,
    req: Request,
) -> Result<(Session, RequestCtx, Vec<(String, String)>), Response> {
    let (parts, body) = req.into_parts();
    let ctx = request_ctx(&parts, s.http.behind_proxy);
    let Some((_, session)) = current(s, &parts.headers).await else {
        return Err(Redirect::to("/login").into_response());
    };
    let body = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let csrf_ok = fields
        .iter()
        .find(|(k, _)| k == "csrf")
        .is_some_and(|(_, c)| subtle::ConstantTimeEq::ct_eq(c.as_bytes(), session.csrf.as_bytes()).into());
    if !same_origin(s, &parts.headers) || !csrf_ok {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "This form is missing its CSRF token or comes from another site.",
        ));
    }
    Ok((session, ctx, fields))
}

pub(super) fn all_of(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

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
        e => {
            tracing::error!(error = ?e, "a dashboard action failed");
            internal_error()
        }
    }
}

/// The top bar of every signed-in page: the team it acts in (and the others the person may
/// switch to), the pages, who is signed in, and the way out.
pub(super) struct Nav {
    team_id: String,
    team_name: String,
    user_email: String,
    csrf: String,
    teams: Vec<(String, String)>,
    current: &'static str,
}

impl Nav {
    pub(super) async fn of(s: &AppState, session: &Session, current: &'static str) -> Option<Nav> {
        let p = &session.principal;
        Some(Nav {
            team_id: p.team_id.clone(),
            team_name: s.service.team_name(&p.team_id).await.unwrap_or_default(),
            user_email: p.user_email.clone(),
            csrf: session.csrf.clone(),
            teams: s.service.teams_of(&p.user_id).await.unwrap_or_default(),
            current,
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
