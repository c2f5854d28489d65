//! `DELETE [type]/[id]`: delete, keeping the history; deleting a deleted resource
//! does nothing.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::delete;

use crate::AppState;
use crate::body::IfMatch;
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::path::ResourcePath;
use crate::response::delete_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/{type}/{id}", delete(delete_resource))
}

async fn delete_resource(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
    IfMatch(if_match): IfMatch,
) -> Result<Response> {
    let deleted = state.repo.delete(&res_type, &id, if_match).await?;
    let message = || match deleted.version {
        Some(_) => format!("{res_type}/{id} deleted"),
        None => format!("{res_type}/{id} was already deleted"),
    };
    Ok(delete_response(&fhir, message, deleted.version))
}
