//! The one download of a batch of clear access codes.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::pages::{error_page, internal_error, refused};
use super::session::{CsrfForm, SignedIn};
use crate::web::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "access_codes.html")]
pub(super) struct AccessCodesPage {
    nav: Option<super::pages::Nav>,
    csrf: String,
    /// Batch (job) id, codes, generated when, by whom ("you" for the person's own).
    batches: Vec<(String, i64, String, String)>,
}

pub(super) async fn access_codes_page(
    State(s): State<AppState>,
    SignedIn { session, caller, .. }: SignedIn,
) -> Response {
    match s.service.pending_batches(&caller).await {
        Ok(batches) => AccessCodesPage {
            nav: super::pages::Nav::of(&s, &session, &caller, "access-codes").await,
            csrf: session.csrf.clone(),
            batches: batches
                .into_iter()
                .map(|b| {
                    let by = b.generated_by.unwrap_or_else(|| "you".to_owned());
                    (b.job_id, b.quantity, crate::domain::time::rfc3339(b.kept_since), by)
                })
                .collect(),
        }
        .into_response(),
        Err(crate::domain::error::Error::MissingAbility(..)) => error_page(
            StatusCode::FORBIDDEN,
            "Your role cannot generate access codes, so it cannot download them.",
        ),
        Err(e) => {
            tracing::error!(error = ?e, "listing code batches failed");
            internal_error()
        }
    }
}

pub(super) async fn download_codes(
    State(s): State<AppState>,
    axum::extract::Path(job_id): axum::extract::Path<String>,
    CsrfForm { caller, .. }: CsrfForm,
) -> Response {
    match s.service.download_batch(&caller, &job_id).await {
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
        Err(e) => refused(e, "This batch was already downloaded, has expired, or does not exist."),
    }
}
