//! `POST [base]`: a batch or transaction Bundle, processed by the repo.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde_json::Value;

use crate::AppState;
use crate::body::Resource;
use crate::error::{ApiError, Result};
use crate::negotiate::Fhir;
use crate::response::json_response;

/// The interaction at `base`: the base itself (see `crate::base_routes`).
pub(crate) fn routes(base: &str) -> Router<AppState> {
    Router::new().route(base, post(bundle))
}

async fn bundle(
    State(state): State<AppState>,
    fhir: Fhir,
    Resource(resource): Resource,
) -> Result<Response> {
    if resource.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::BadRequest(
            "POST to the base URL takes a batch or transaction Bundle".into(),
        ));
    }
    let response = state
        .repo
        .process_bundle(resource, &fhir.base, fhir.prefer)
        .await?;
    Ok(json_response(&fhir, StatusCode::OK, &response))
}
