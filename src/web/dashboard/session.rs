//! Who is signed in: the session cookie and its secret, the session it resolves to, and the
//! state-changing form that must come from this origin with the session's CSRF token.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::error_page;
use crate::service::Caller;
use crate::service::accounts::sessions::Session;
use crate::web::AppState;
use crate::web::extract::request_ctx;

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

/// A signed-in person, as a handler's argument: their live session, its cookie secret, and the
/// person as the caller of whatever the page asks the service (with this request's context).
/// Without one the request is answered with a redirect to the sign-in page.
pub(super) struct SignedIn {
    pub(super) secret: String,
    pub(super) session: Session,
    pub(super) caller: Caller,
}

impl SignedIn {
    async fn of(parts: &Parts, s: &AppState) -> Option<SignedIn> {
        let (secret, session) = current(s, &parts.headers).await?;
        let mut caller = Caller::person(session.person.clone(), request_ctx(parts, s.http.behind_proxy));
        // A page (`GET`) of the dashboard: one `dashboard.view` entry stands for its reads.
        if let Some(slot) = parts.extensions.get::<super::views::PageSlot>() {
            caller.page_view = Some(crate::service::PageView::default());
            slot.put(caller.clone());
        }
        Some(SignedIn {
            secret,
            session,
            caller,
        })
    }
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Redirect;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        SignedIn::of(parts, s).await.ok_or_else(|| Redirect::to("/login"))
    }
}

impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Option<Self>, Self::Rejection> {
        Ok(SignedIn::of(parts, s).await)
    }
}

/// A state-changing form, as a handler's (last) argument: signed in, from this origin, with the
/// session's CSRF token (compared in constant time), at most 16 KiB.
pub(super) struct CsrfForm {
    pub(super) session: Session,
    /// The signed-in person, as the caller of what the form asks.
    pub(super) caller: Caller,
    pub(super) fields: Vec<(String, String)>,
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Self::Rejection> {
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
        let caller = Caller::person(session.person.clone(), ctx);
        Ok(CsrfForm {
            session,
            caller,
            fields,
        })
    }
}

/// The first value of a form field, or empty when it was not sent.
pub(super) fn first_of<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default()
}

pub(super) fn all_of(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}
