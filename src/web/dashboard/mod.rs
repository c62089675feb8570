//! The dashboard (SPEC §9): server-rendered pages for people. A session is a principal like a
//! token (the user's live role, actor `human`, no token), and every action goes through the
//! same service calls as REST and MCP.
//!
//! Cookies are `HttpOnly`, `SameSite=Strict`, and under TLS `Secure` with the `__Host-` prefix.
//! Every state-changing form carries the session's CSRF token and must come from this origin
//! (`Sec-Fetch-Site: same-origin`, or without that header an `Origin` equal to ours).

mod activity;
mod approval_policy;
mod approvals;
mod apps;
mod assets;
mod authorize;
mod codes;
mod export;
mod pages;
mod session;
mod sign_in;
mod team_tokens;
mod token;
mod token_policy;
mod tokens;
mod usage_chart;
mod views;

use axum::Router;
use axum::middleware;
use axum::routing::get;

use crate::web::AppState;

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
            "/settings/tokens/{token_id}/allowed-ips",
            axum::routing::post(token::set_allowed_ips),
        )
        .route(
            "/settings/tokens/{token_id}/end-grace",
            axum::routing::post(token::end_grace),
        )
        .route(
            "/settings/notifications/{id}/dismiss",
            axum::routing::post(tokens::dismiss),
        )
        .route(
            "/settings/token-policy",
            get(token_policy::page).post(token_policy::save),
        )
        .route("/settings/team-tokens", get(team_tokens::page))
        .route(
            "/settings/team-tokens/{token_id}/revoke",
            get(team_tokens::revoke_page).post(team_tokens::revoke),
        )
        .route("/settings/activity", get(activity::page))
        .route("/settings/apps", get(apps::page))
        .route("/settings/apps/{grant_id}/revoke", axum::routing::post(apps::revoke))
        .route("/settings/approvals", get(approvals::list))
        .route(
            "/settings/approvals/policy",
            get(approval_policy::page).post(approval_policy::save_policy),
        )
        .route(
            "/settings/approvals/budgets",
            axum::routing::post(approval_policy::save_budget),
        )
        .route("/settings/approvals/{id}", get(approvals::page))
        .route(
            "/settings/approvals/{id}/approve",
            axum::routing::post(approvals::approve),
        )
        .route("/settings/approvals/{id}/deny", axum::routing::post(approvals::deny))
        .route("/authorize", get(authorize::authorize_page).post(authorize::answer))
        .route("/settings/access-codes", get(codes::access_codes_page))
        .route(
            "/settings/access-codes/{job_id}/download",
            axum::routing::post(codes::download_codes),
        )
        .route("/assets/app.css", get(assets::stylesheet))
        .route("/assets/app.js", get(assets::script))
        .route_layer(middleware::from_fn_with_state(state.clone(), views::record))
        .layer(middleware::from_fn_with_state(state.clone(), assets::page_headers))
}
