//! Sign-in, sign-out and the team switcher.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::{
    all_of, checked_form, cookie_secret, current, error_page, form, internal_error, refused, same_origin,
    session_cookie,
};
use crate::http::AppState;
use crate::http::extract::request_ctx;
use crate::service::sessions::SESSION_TTL_MS;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    nav: Option<super::Nav>,
    error: Option<&'static str>,
    email: String,
}

pub(super) async fn login_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if current(&s, &headers).await.is_some() {
        return Redirect::to("/settings/tokens").into_response();
    }
    LoginPage {
        nav: None,
        error: None,
        email: String::new(),
    }
    .into_response()
}

/// The sign-in page again, refusing for `wait` seconds after too many failures.
fn too_many(email: String, wait: u64) -> Response {
    let page = LoginPage {
        nav: None,
        error: Some("Too many failed sign-ins. Wait a minute and try again."),
        email,
    };
    let mut res = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    res
}

/// The shared limits could not be read (PostgreSQL down): refuse rather than sign in unlimited.
fn unavailable(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "sign-in limits could not be checked");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not check its sign-in limits. Try again in a moment.",
    )
}

pub(super) async fn login(State(s): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let ctx = request_ctx(&parts, s.http.behind_proxy);
    if !same_origin(&s, &parts.headers) {
        return error_page(
            StatusCode::FORBIDDEN,
            "This form must be sent from the MemberPass sign-in page.",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024).await else {
        return error_page(StatusCode::PAYLOAD_TOO_LARGE, "The form is larger than 16 KiB.");
    };
    let fields = form(&body);
    let email = fields.get("email").cloned().unwrap_or_default();
    let password = fields.get("password").cloned().unwrap_or_default();
    let ip_key = format!("sign-in ip {}", ctx.ip.clone().unwrap_or_default());
    let account_key = format!("sign-in account {}", email.trim().to_lowercase());
    let blocked = match s.limits.auth_blocked(&ip_key).await {
        Ok(None) => s.limits.auth_blocked(&account_key).await,
        other => other,
    };
    let blocked = match blocked {
        Ok(blocked) => blocked,
        Err(e) => return unavailable(e),
    };
    if let Some(wait) = blocked {
        return too_many(email, wait);
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
            let by_ip = s.limits.auth_failed(&ip_key).await;
            let by_account = s.limits.auth_failed(&account_key).await;
            let wait = match (by_ip, by_account) {
                (Ok(by_ip), Ok(by_account)) => by_ip.or(by_account),
                (Err(e), _) | (_, Err(e)) => return unavailable(e),
            };
            if let Some(wait) = wait {
                return too_many(email, wait);
            }
            let page = LoginPage {
                nav: None,
                error: Some("The email or the password is not right."),
                email,
            };
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
    }
}

pub(super) async fn logout(State(s): State<AppState>, req: Request) -> Response {
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
        return error_page(
            StatusCode::FORBIDDEN,
            "This form is missing its CSRF token or comes from another site.",
        );
    }
    if let Err(e) = s.service.sign_out(&secret, &session, &ctx).await {
        tracing::error!(error = ?e, "sign-out failed");
        return internal_error();
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(header::SET_COOKIE, session_cookie(&s, "", 0));
    res
}

pub(super) async fn switch_team(State(s): State<AppState>, req: Request) -> Response {
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
        Err(e) => refused(e, "No such team."),
    }
}
