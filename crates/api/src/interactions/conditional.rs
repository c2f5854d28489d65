//! `PUT`, `PATCH` and `DELETE [type]?criteria`: conditional update, patch and delete.
//! The criteria are a strict search, evaluated by the repo. (Conditional create is
//! `POST [type]` with `If-None-Exist`, in [`create`](super::create).)

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::put;

use crate::AppState;
use crate::body::{IfMatch, Patch, Resource};
use crate::error::{ApiError, Result};
use crate::negotiate::Fhir;
use crate::path::TypePath;
use crate::response::{delete_response, write_response};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/{type}", put(update).patch(patch).delete(delete))
}

/// `PUT [type]?criteria`: conditional update.
async fn update(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
    IfMatch(if_match): IfMatch,
    Resource(resource): Resource,
) -> Result<Response> {
    let stored = state
        .repo
        .update_conditional(&res_type, &fhir.query, resource, if_match)
        .await?;
    Ok(write_response(
        &fhir,
        &stored,
        if stored.created { "created" } else { "updated" },
    ))
}

/// `PATCH [type]?criteria`: conditional patch.
async fn patch(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
    IfMatch(if_match): IfMatch,
    Patch(patch_doc): Patch,
) -> Result<Response> {
    let stored = state
        .repo
        .patch_conditional(&res_type, &fhir.query, &patch_doc, if_match)
        .await?;
    Ok(write_response(&fhir, &stored, "patched"))
}

/// `DELETE [type]?criteria`: conditional delete, of one or several matches.
async fn delete(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
) -> Result<Response> {
    if fhir.headers.contains_key(header::IF_MATCH) {
        return Err(ApiError::BadRequest(
            "If-Match is not supported on a conditional delete".into(),
        ));
    }
    let result = state
        .repo
        .delete_conditional(&res_type, &fhir.query)
        .await?;
    let message = || match result.deleted.as_slice() {
        [] => "no resource matched the criteria; nothing was deleted".to_owned(),
        deleted => format!(
            "deleted {} resource(s): {}",
            deleted.len(),
            deleted
                .iter()
                .map(|(id, _)| format!("{res_type}/{id}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let version = match result.deleted.as_slice() {
        [(_, version)] => Some(*version),
        _ => None,
    };
    Ok(delete_response(&fhir, message, version))
}
