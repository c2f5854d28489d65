//! `PUT [type]/[id]`: update, or create with the client's id.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::put;

use crate::AppState;
use crate::body::{IfMatch, Resource};
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::path::ResourcePath;
use crate::response::write_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/{type}/{id}", put(update))
}

async fn update(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
    IfMatch(if_match): IfMatch,
    Resource(resource): Resource,
) -> Result<Response> {
    let stored = state
        .repo
        .update(&res_type, &id, resource, if_match)
        .await?;
    Ok(write_response(
        &fhir,
        &stored,
        if stored.created { "created" } else { "updated" },
    ))
}
