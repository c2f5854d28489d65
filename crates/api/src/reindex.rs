//! `$reindex`: `POST [base]/$reindex` and `POST [base]/[type]/$reindex` queue a
//! background job (202 with `Content-Location` naming its status); `GET
//! [base]/$reindex/{id}` reports the job as a `Parameters` resource (`id`, `status`
//! queued | running | done, `scope`, `processed`, `total`, `created`, `started`,
//! `finished`).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::AppState;
use crate::error::ApiError;
use crate::fhir::json_response;
use crate::negotiate::Fhir;

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// `POST [base]/$reindex`: every type.
pub(crate) async fn system(State(state): State<AppState>, fhir: Fhir) -> Result<Response> {
    start(&state, &fhir, None).await
}

/// `POST [base]/[type]/$reindex`.
pub(crate) async fn for_type(
    State(state): State<AppState>,
    res_type: Result<Path<String>, PathRejection>,
    fhir: Fhir,
) -> Result<Response> {
    let Path(res_type) =
        res_type.map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))?;
    start(&state, &fhir, Some(&res_type)).await
}

/// `GET [base]/$reindex/{id}`.
pub(crate) async fn status(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    fhir: Fhir,
) -> Result<Response> {
    let Path(id) = id.map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))?;
    let status = state.repo.reindex_status(&id).await?;
    Ok(json_response(&fhir, StatusCode::OK, &status))
}

async fn start(state: &AppState, fhir: &Fhir, res_type: Option<&str>) -> Result<Response> {
    let job = state.repo.reindex(res_type).await?;
    let status = state.repo.reindex_status(&job).await?;
    let mut response = json_response(fhir, StatusCode::ACCEPTED, &status);
    if let Ok(v) = HeaderValue::from_str(&format!("{}/$reindex/{}", fhir.base, job)) {
        response.headers_mut().insert(header::CONTENT_LOCATION, v);
    }
    Ok(response)
}
