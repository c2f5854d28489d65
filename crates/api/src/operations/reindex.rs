//! `$reindex`: `POST [base]/$reindex` and `POST [base]/[type]/$reindex` queue a
//! background job (202 with `Content-Location` naming its status); `GET
//! [base]/$reindex/{id}` reports the job as a `Parameters` resource (`id`, `status`
//! queued | running | done, `scope`, `processed`, `total`, `created`, `started`,
//! `finished`).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use crate::AppState;
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::path::{JobPath, TypePath};
use crate::response::{json_response, set_header};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/$reindex", post(system))
        .route("/$reindex/{id}", get(status))
        .route("/{type}/$reindex", post(for_type))
}

/// `POST [base]/$reindex`: every type.
async fn system(State(state): State<AppState>, fhir: Fhir) -> Result<Response> {
    start(&state, &fhir, None).await
}

/// `POST [base]/[type]/$reindex`.
async fn for_type(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
) -> Result<Response> {
    start(&state, &fhir, Some(&res_type)).await
}

/// `GET [base]/$reindex/{id}`.
async fn status(
    State(state): State<AppState>,
    fhir: Fhir,
    JobPath { id }: JobPath,
) -> Result<Response> {
    let status = state.repo.reindex_status(&id).await?;
    Ok(json_response(&fhir, StatusCode::OK, &status))
}

async fn start(state: &AppState, fhir: &Fhir, res_type: Option<&str>) -> Result<Response> {
    let job = state.repo.reindex(res_type).await?;
    let status = state.repo.reindex_status(&job).await?;
    let mut response = json_response(fhir, StatusCode::ACCEPTED, &status);
    set_header(
        &mut response,
        header::CONTENT_LOCATION,
        &format!("{}/$reindex/{}", fhir.base, job),
    );
    Ok(response)
}
