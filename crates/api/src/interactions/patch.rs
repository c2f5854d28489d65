//! `PATCH [type]/[id]`: JSON Patch or FHIRPath Patch.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::patch;

use crate::AppState;
use crate::body::{IfMatch, Patch};
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::path::ResourcePath;
use crate::response::write_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/{type}/{id}", patch(patch_resource))
}

async fn patch_resource(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
    IfMatch(if_match): IfMatch,
    Patch(patch_doc): Patch,
) -> Result<Response> {
    let stored = state
        .repo
        .patch(&res_type, &id, &patch_doc, if_match)
        .await?;
    Ok(write_response(&fhir, &stored, "patched"))
}
