//! `$submit-measurement`: `POST [base]/$submit-measurement` with a `Parameters`
//! resource whose `measurement` is a transaction Bundle of a patient's measurements
//! and answers; the answer is a `Parameters` with `bundle`, the transaction-response.
//! The checks, the thresholds and the triage live in `ember_telemed`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use crate::AppState;
use crate::body::Resource;
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::response::json_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/$submit-measurement", post(submit))
}

async fn submit(
    State(state): State<AppState>,
    fhir: Fhir,
    Resource(parameters): Resource,
) -> Result<Response> {
    let answer = ember_telemed::submit(&state.repo, parameters, &fhir.base, fhir.prefer).await?;
    Ok(json_response(&fhir, StatusCode::OK, &answer))
}
