//! Sign-in, sign-out and the team switcher.

use askama::Template;
use askama_web::WebTemplate;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::pages::{error_page, internal_error, refused};
use super::session::{CsrfForm, SignedIn, all_of, form, same_origin, session_cookie};
use crate::domain::audit::RequestCtx;
use crate::domain::error::Error;
use crate::domain::oauth_flow::safe_next;
use crate::service::accounts::sessions::SESSION_TTL_MS;
use crate::web::AppState;
use crate::web::extract::Ctx;
use crate::web::limits::Wait;

#[derive(Template, WebTemplate)]
#[template(path = "login.html")]
pub(super) struct LoginPage {
    nav: Option<super::pages::Nav>,
    error: Option<&'static str>,
    email: String,
    /// Where to go once signed in (a same-origin relative path, else empty).
    next: String,
}

/// The `next` of a query or a form, kept only when it is a relative path of this origin
/// ([`safe_next`]): the sign-in page is never an open redirect.
fn next_of(pairs: impl Iterator<Item = (String, String)>) -> String {
    pairs
        .filter(|(k, _)| k == "next")
        .map(|(_, v)| v)
        .next()
        .and_then(|n| safe_next(&n).map(str::to_owned))
        .unwrap_or_default()
}

/// The sign-in page for someone who followed a link to a page that needs them signed in (an
/// OAuth consent, an approval an agent asked for): once signed in, they land on `next`.
pub(super) fn sign_in_then(next: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    Redirect::to(&format!("/login?{query}")).into_response()
}

/// Where a signed-in person goes: `next`, or the tokens page.
fn after_sign_in(next: &str) -> Response {
    Redirect::to(if next.is_empty() { "/settings/tokens" } else { next }).into_response()
}

pub(super) async fn login_page(signed_in: Option<SignedIn>, RawQuery(query): RawQuery) -> Response {
    let next = next_of(url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned());
    if signed_in.is_some() {
        return after_sign_in(&next);
    }
    LoginPage {
        nav: None,
        error: None,
        email: String::new(),
        next,
    }
    .into_response()
}

/// The sign-in page again, refusing for `wait` seconds after too many failures.
fn too_many(email: String, next: String, wait: u64) -> Response {
    let page = LoginPage {
        nav: None,
        error: Some("Too many failed sign-ins. Wait a minute and try again."),
        email,
        next,
    };
    let mut res = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait));
    res
}

/// The shared limits could not be read or written (PostgreSQL down): refuse rather than sign in
/// unlimited.
fn unavailable(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "sign-in limits could not be checked");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not check its sign-in limits. Try again in a moment.",
    )
}

pub(super) async fn login(State(s): State<AppState>, Ctx(ctx): Ctx, headers: HeaderMap, body: Body) -> Response {
    if !same_origin(&s, &headers) {
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
    let next = next_of(url::form_urlencoded::parse(&body).into_owned());
    match attempt(&s, &email, &password, &ctx).await {
        Attempt::SignedIn(secret) => {
            let mut res = after_sign_in(&next);
            res.headers_mut()
                .insert(header::SET_COOKIE, session_cookie(&s, &secret, SESSION_TTL_MS / 1000));
            res
        }
        Attempt::Failed => {
            let page = LoginPage {
                nav: None,
                error: Some("The email or the password is not right."),
                email,
                next,
            };
            (StatusCode::UNAUTHORIZED, page).into_response()
        }
        Attempt::TooMany(wait) => too_many(email, next, wait),
        Attempt::Broken(res) => res,
    }
}

/// What one sign-in attempt came to.
enum Attempt {
    /// The new session's cookie secret.
    SignedIn(String),
    Failed,
    /// Refused before its password was checked: too many failures from this address, for this
    /// account or in all.
    TooMany(Wait),
    /// The limits or the service failed; the page to answer with.
    Broken(Response),
}

/// One sign-in: its attempt is reserved against the failure limits (per account and address, per
/// address) before the password is checked, so a parallel burst gets no more checks than the
/// limits allow; a sign-in that succeeds gives the reservation back (only failures count).
async fn attempt(s: &AppState, email: &str, password: &str, ctx: &RequestCtx) -> Attempt {
    let address = ctx.ip.as_deref().unwrap_or_default();
    let reservation = match s.limits.sign_in.reserve(email, address).await {
        Ok(Ok(reservation)) => reservation,
        Ok(Err(wait)) => return Attempt::TooMany(wait),
        Err(e) => return Attempt::Broken(unavailable(e)),
    };
    match s.service.sign_in(email, password, ctx).await {
        Ok((secret, _)) => {
            // Signed in whatever happens to the give-back: at worst it counts as one failure.
            if let Err(e) = s.limits.sign_in.give_back_reservation(reservation).await {
                tracing::warn!(error = %e, "a sign-in's reservation could not be given back");
            }
            Attempt::SignedIn(secret)
        }
        Err(Error::AuthenticationRequired) => Attempt::Failed,
        Err(e) => {
            tracing::error!(error = ?e, "sign-in failed");
            Attempt::Broken(internal_error())
        }
    }
}

pub(super) async fn logout(
    State(s): State<AppState>,
    SignedIn { secret, .. }: SignedIn,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    if let Err(e) = s.service.sign_out(&secret, &caller).await {
        tracing::error!(error = ?e, "sign-out failed");
        return internal_error();
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut().insert(header::SET_COOKIE, session_cookie(&s, "", 0));
    res
}

pub(super) async fn switch_team(
    State(s): State<AppState>,
    SignedIn { secret, .. }: SignedIn,
    CsrfForm { caller, fields, .. }: CsrfForm,
) -> Response {
    let team = all_of(&fields, "team").first().cloned().unwrap_or_default();
    match s.service.switch_team(&secret, &caller, &team).await {
        Ok(()) => Redirect::to("/settings/tokens").into_response(),
        Err(e) => refused(e, "No such team."),
    }
}
