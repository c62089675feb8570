//! The dashboard (SPEC §9): server-rendered pages for people. A session is a principal like a
//! token (the user's live role, actor `human`, no token), and every action goes through the
//! same service calls as REST and MCP.
//!
//! Cookies are `HttpOnly`, `SameSite=Strict`, and under TLS `Secure` with the `__Host-` prefix.
//! Every state-changing form carries the session's CSRF token and must come from this origin
//! (`Sec-Fetch-Site: same-origin`, or without that header an `Origin` equal to ours).

mod activity;
mod token;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::domain::audit::RequestCtx;
use crate::http::AppState;
use crate::http::extract::request_ctx;
use crate::service::catalog;
use crate::service::op::Input;
use crate::service::sessions::{SESSION_TTL_MS, Session};

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/session/team", axum::routing::post(switch_team))
        .route("/settings/tokens", get(tokens_page).post(mint))
        .route("/settings/tokens/{token_id}", get(token::page))
        .route(
            "/settings/tokens/{token_id}/replace",
            axum::routing::post(token::replace),
        )
        .route("/settings/tokens/{token_id}/revoke", get(revoke_page).post(revoke))
        .route("/settings/tokens/{token_id}/rotate", axum::routing::post(rotate))
        .route("/settings/activity", get(activity::page))
        .route("/settings/access-codes", get(access_codes_page))
        .route(
            "/settings/access-codes/{job_id}/download",
            axum::routing::post(download_codes),
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

fn secure(s: &AppState) -> bool {
    s.http.public_url.starts_with("https://")
}

fn cookie_name(s: &AppState) -> &'static str {
    if secure(s) { "__Host-mp_session" } else { "mp_session" }
}

fn session_cookie(s: &AppState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if secure(s) { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}",
        cookie_name(s)
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cookie_secret(s: &AppState, headers: &HeaderMap) -> Option<String> {
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
fn same_origin(s: &AppState, headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        Some(site) => site == "same-origin",
        None => headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|o| o.trim_end_matches('/') == s.http.public_url.trim_end_matches('/')),
    }
}

fn form(body: &Bytes) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

async fn current(s: &AppState, headers: &HeaderMap) -> Option<(String, Session)> {
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

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<&'static str>,
    email: String,
}

async fn login_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if current(&s, &headers).await.is_some() {
        return Redirect::to("/settings/tokens").into_response();
    }
    LoginPage {
        error: None,
        email: String::new(),
    }
    .into_response()
}

async fn login(State(s): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let ctx = request_ctx(&parts, s.http.behind_proxy);
    if !same_origin(&s, &parts.headers) {
        return (
            StatusCode::FORBIDDEN,
            "This form must be sent from the MemberPass sign-in page.",
        )
            .into_response();
    }
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let fields = form(&body);
    let email = fields.get("email").cloned().unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let ip_key = format!("sign-in ip {}", ctx.ip.clone().unwrap_or_default());
    let account_key = format!("sign-in account {}", email.trim().to_lowercase());
    let blocked = s
        .limits
        .auth_blocked(&ip_key)
        .or_else(|| s.limits.auth_blocked(&account_key));
    if let Some(wait) = blocked {
        let page = LoginPage {
            error: Some("Too many failed sign-ins. Wait a minute and try again."),
            email,
        };
        let mut res = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return res;
    }
    match s.service.sign_in(&email, &password, &ctx).await {
        Ok((secret, _)) => {
            let mut res = Redirect::to("/settings/tokens").into_response();
            res.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&s, &secret, SESSION_TTL_MS / 1000));
            res
        }
        Err(e) => {
            if !matches!(e, crate::domain::error::Error::AuthenticationRequired) {
                tracing::error!(error = ?e, "sign-in failed");
            }
            let by_ip = s.limits.auth_failed(&ip_key);
            let by_account = s.limits.auth_failed(&account_key);
            if let Some(wait) = by_ip.or(by_account) {
                let page = LoginPage {
                    error: Some("Too many failed sign-ins. Wait a minute and try again."),
                    email,
                };
                let mut res = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
                res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
                return res;
            }
            let page = LoginPage {
                error: Some("The email or the password is not right."),
                email,
            };
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
    }
}

async fn logout(State(s): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let ctx = request_ctx(&parts, s.http.behind_proxy);
    let Some((secret, session)) = current(&s, &parts.headers).await else {
        return Redirect::to("/login").into_response();
    };
    let body = axum::body::to_bytes(body, 16 * 1024).await.unwrap_or_default();
    let csrf_ok = form(&body)
        .get("csrf")
        .is_some_and(|c| subtle::ConstantTimeEq::ct_eq(c.as_bytes(), session.csrf.as_bytes()).into());
    if !same_origin(&s, &parts.headers) || !csrf_ok {
        return (
            StatusCode::FORBIDDEN,
            "This form is missing its CSRF token or comes from another site.",
        )
            .into_response();
    }
    if let Err(e) = s.service.sign_out(&secret, &session, &ctx).await {
        tracing::error!(error = ?e, "sign-out failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(header::SET_COOKIE, session_cookie(&s, "", 0));
    res
}

/// One row of the tokens page.
struct TokenView {
    active: bool,
    id: String,
    name: String,
    abilities: Vec<String>,
    scopes: Vec<String>,
    created_at: String,
    last_used: String,
    expires_at: String,
    state: &'static str,
}

#[derive(Template, WebTemplate)]
#[template(path = "tokens.html")]
struct TokensPage {
    team_name: String,
    user_email: String,
    csrf: String,
    tokens: Vec<TokenView>,
    error: Option<String>,
    role: String,
    groups: Vec<AbilityGroup>,
    projects: Vec<(String, String)>,
    teams: Vec<(String, String)>,
}

struct AbilityGroup {
    name: &'static str,
    abilities: Vec<AbilityChoice>,
}

struct AbilityChoice {
    name: &'static str,
    description: &'static str,
    writes: bool,
    allowed: bool,
}

/// The catalog's abilities by group, each offered only if the person's role holds it.
fn ability_groups(role: crate::domain::role::Role) -> Vec<AbilityGroup> {
    let mut groups: Vec<AbilityGroup> = Vec::new();
    for a in crate::domain::ability::Ability::ALL {
        let choice = AbilityChoice {
            name: a.as_str(),
            description: a.description(),
            writes: a.permits_writes(),
            allowed: role.holds(*a),
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
struct MintedPage {
    heading: &'static str,
    team_name: String,
    id: String,
    token: String,
    url: String,
    claude_desktop: String,
    cursor: String,
    vscode: String,
}

impl MintedPage {
    fn new(s: &AppState, heading: &'static str, team_name: String, minted: &crate::service::tokens::Minted) -> Self {
        let token = minted.secret.expose_secret().to_owned();
        let url = s.http.public_url.trim_end_matches('/').to_owned();
        let pretty = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default();
        MintedPage {
            heading,
            team_name,
            id: minted.row.id.clone(),
            claude_desktop: pretty(json!({"mcpServers": {"memberpass": {"command": "npx",
                "args": ["-y", "mcp-remote", format!("{url}/mcp"), "--header", "Authorization:${AUTH_TOKEN}"],
                "env": {"AUTH_TOKEN": format!("Bearer {token}")}}}})),
            cursor: pretty(json!({"mcpServers": {"memberpass": {"url": format!("{url}/mcp"),
                "headers": {"Authorization": format!("Bearer {token}")}}}})),
            vscode: pretty(json!({"inputs": [{"type": "promptString", "id": "memberpass-token",
                "description": "MemberPass token", "password": true}],
                "servers": {"memberpass": {"type": "http", "url": format!("{url}/mcp"),
                "headers": {"Authorization": "Bearer ${input:memberpass-token}"}}}})),
            token,
            url,
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "revoke.html")]
struct RevokePage {
    id: String,
    name: String,
    csrf: String,
}

/// A state-changing form: signed in, from this origin, with the session's CSRF token.
async fn checked_form(s: &AppState, req: Request) -> Result<(Session, RequestCtx, Vec<(String, String)>), Response> {
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
        return Err((
            StatusCode::FORBIDDEN,
            "This form is missing its CSRF token or comes from another site.",
        )
            .into_response());
    }
    Ok((session, ctx, fields))
}

fn all_of(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

async fn mint(State(s): State<AppState>, req: Request) -> Response {
    let (session, ctx, fields) = match checked_form(&s, req).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let p = &session.principal;
    let days: Option<i64> = all_of(&fields, "expires").first().and_then(|d| d.parse().ok());
    let request = crate::service::tokens::MintRequest {
        team_id: p.team_id.clone(),
        user_email: p.user_email.clone(),
        name: all_of(&fields, "name").first().cloned().unwrap_or_default(),
        abilities: all_of(&fields, "ability"),
        project_ids: all_of(&fields, "project"),
        expires_in_ms: days.map(|d| d * crate::domain::time::DAY_MS),
    };
    let actor = crate::service::tokens::Actor::person(p, &ctx);
    let team_name = s.service.team_name(&p.team_id).await.unwrap_or_default();
    match s.service.mint_token(&actor, request).await {
        Ok(minted) => MintedPage::new(&s, "Your new token", team_name, &minted).into_response(),
        Err(crate::domain::error::Error::Validation(fields)) => {
            let why: Vec<String> = fields.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let page = tokens_view(&s, &session, &ctx, Some(format!("Not minted: {}.", why.join("; ")))).await;
            (StatusCode::UNPROCESSABLE_ENTITY, page).into_response()
        }
        Err(e) => {
            tracing::error!(error = ?e, "minting from the dashboard failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn revoke_page(
    State(s): State<AppState>,
    axum::extract::Path(token_id): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((_, session)) = current(&s, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    let listed = s
        .service
        .list_tokens_admin(Some(&session.principal.user_email), Some(&session.principal.team_id))
        .await
        .unwrap_or_default();
    match listed.into_iter().find(|t| t.id == token_id && t.revoked_at.is_none()) {
        Some(t) => RevokePage {
            id: t.id,
            name: t.name,
            csrf: session.csrf,
        }
        .into_response(),
        None => (StatusCode::NOT_FOUND, "No such token.").into_response(),
    }
}

async fn revoke(
    State(s): State<AppState>,
    axum::extract::Path(token_id): axum::extract::Path<String>,
    req: Request,
) -> Response {
    let (session, ctx, _) = match checked_form(&s, req).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match s.service.revoke_own_token(&session.principal, &ctx, &token_id).await {
        Ok(row) => Redirect::to(&format!("/settings/tokens/{}#playbook", row.id)).into_response(),
        Err(crate::domain::error::Error::NotFound) => (StatusCode::NOT_FOUND, "No such token.").into_response(),
        Err(crate::domain::error::Error::Conflict(why)) => (StatusCode::CONFLICT, why).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "revoking from the dashboard failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn rotate(
    State(s): State<AppState>,
    axum::extract::Path(token_id): axum::extract::Path<String>,
    req: Request,
) -> Response {
    let (session, ctx, _) = match checked_form(&s, req).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let team_name = s
        .service
        .team_name(&session.principal.team_id)
        .await
        .unwrap_or_default();
    match s.service.rotate_own_token(&session.principal, &ctx, &token_id).await {
        Ok(minted) => MintedPage::new(&s, "The replacement token", team_name, &minted).into_response(),
        Err(crate::domain::error::Error::NotFound) => (StatusCode::NOT_FOUND, "No such token.").into_response(),
        Err(crate::domain::error::Error::Conflict(why)) => (StatusCode::CONFLICT, why).into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "rotating from the dashboard failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect()
}

async fn tokens_page(State(s): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let ctx: RequestCtx = request_ctx(&parts, s.http.behind_proxy);
    let Some((_, session)) = current(&s, &parts.headers).await else {
        return Redirect::to("/login").into_response();
    };
    tokens_view(&s, &session, &ctx, None).await
}

/// The tokens page: the person's tokens (through `list_tokens`, audited as human) and the mint
/// form (projects through `list_projects` when the role may list them).
async fn tokens_view(s: &AppState, session: &Session, ctx: &RequestCtx, error: Option<String>) -> Response {
    let call = |name: &'static str, args: Value| async move {
        let op = catalog::find(name)?;
        match s.service.call(op, &session.principal, ctx, Input::json(args)).await {
            Ok(done) => Some(done.output.data),
            Err(e) => {
                tracing::warn!(error = ?e, operation = name, "dashboard call refused");
                None
            }
        }
    };
    let Some(data) = call("list_tokens", json!({"limit": 100})).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let projects: Vec<(String, String)> = call("list_projects", json!({"limit": 100}))
        .await
        .unwrap_or_default()
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?.to_owned(), p["name"].as_str()?.to_owned())))
        .collect();
    let text = |v: &Value| v.as_str().unwrap_or("—").to_owned();
    let tokens = data
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| TokenView {
            active: t["revoked_at"].is_null(),
            id: text(&t["id"]),
            name: text(&t["name"]),
            abilities: strings(&t["abilities"]),
            scopes: strings(&t["scopes"]),
            created_at: text(&t["created_at"]),
            last_used: match (t["last_used_at"].as_str(), t["last_used_ip"].as_str()) {
                (Some(at), Some(ip)) => format!("{at} from {ip}"),
                (Some(at), None) => at.to_owned(),
                _ => "never".to_owned(),
            },
            expires_at: t["expires_at"].as_str().unwrap_or("never").to_owned(),
            state: if !t["revoked_at"].is_null() {
                "revoked"
            } else {
                "active"
            },
        })
        .collect();
    let p = &session.principal;
    TokensPage {
        team_name: s.service.team_name(&p.team_id).await.unwrap_or_default(),
        user_email: p.user_email.clone(),
        csrf: session.csrf.clone(),
        tokens,
        error,
        role: p.role.as_str().to_owned(),
        groups: ability_groups(p.role),
        projects,
        teams: s.service.teams_of(&p.user_id).await.unwrap_or_default(),
    }
    .into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "access_codes.html")]
struct AccessCodesPage {
    team_name: String,
    csrf: String,
    batches: Vec<(String, i64, String)>,
}

async fn access_codes_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, session)) = current(&s, &headers).await else {
        return Redirect::to("/login").into_response();
    };
    match s.service.pending_batches(&session.principal).await {
        Ok(batches) => AccessCodesPage {
            team_name: s
                .service
                .team_name(&session.principal.team_id)
                .await
                .unwrap_or_default(),
            csrf: session.csrf.clone(),
            batches: batches
                .into_iter()
                .map(|b| (b.job_id, b.quantity, crate::domain::time::rfc3339(b.kept_since)))
                .collect(),
        }
        .into_response(),
        Err(crate::domain::error::Error::MissingAbility(..)) => (
            StatusCode::FORBIDDEN,
            "Your role cannot generate access codes, so it cannot download them.",
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "listing code batches failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn download_codes(
    State(s): State<AppState>,
    axum::extract::Path(job_id): axum::extract::Path<String>,
    req: Request,
) -> Response {
    let (session, ctx, _) = match checked_form(&s, req).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    match s.service.download_batch(&session.principal, &ctx, &job_id).await {
        Ok(codes) => {
            let body: String = std::iter::once("code".to_owned())
                .chain(codes)
                .map(|c| c + "\n")
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (header::CONTENT_DISPOSITION, "attachment; filename=\"access-codes.csv\""),
                ],
                body,
            )
                .into_response()
        }
        Err(crate::domain::error::Error::MissingAbility(..)) => {
            (StatusCode::FORBIDDEN, "Your role cannot download access codes.").into_response()
        }
        Err(crate::domain::error::Error::NotFound) => (
            StatusCode::NOT_FOUND,
            "This batch was already downloaded, has expired, or does not exist.",
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "downloading a code batch failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn switch_team(State(s): State<AppState>, req: Request) -> Response {
    let secret = cookie_secret(&s, req.headers());
    let (session, ctx, fields) = match checked_form(&s, req).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let Some(secret) = secret else {
        return Redirect::to("/login").into_response();
    };
    let team = all_of(&fields, "team").first().cloned().unwrap_or_default();
    match s.service.switch_team(&secret, &session, &team, &ctx).await {
        Ok(()) => Redirect::to("/settings/tokens").into_response(),
        Err(crate::domain::error::Error::NotFound) => (StatusCode::NOT_FOUND, "No such team.").into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "switching teams failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
