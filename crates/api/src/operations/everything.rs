//! `$everything`: `GET Patient/[id]/$everything` and `GET Patient/$everything` (and the
//! same on Encounter, the other type R4 defines it for), with `_since`, `_type` and
//! `_count`; a `searchset` Bundle with keyset paging like any search. The search itself
//! is the repo's (`ember_repo::SearchScope::Everything`).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use ember_repo::SearchScope;

use crate::AppState;
use crate::error::Result;
use crate::interactions::search::search;
use crate::negotiate::Fhir;
use crate::path::{ResourcePath, TypePath, unknown_operation};

/// The types R4 defines `$everything` for.
pub(crate) const TYPES: [&str; 2] = ["Patient", "Encounter"];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/{type}/$everything", get(for_type))
        .route("/{type}/{id}/$everything", get(instance))
}

async fn for_type(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
) -> Result<Response> {
    if !TYPES.contains(&res_type.as_str()) {
        return Err(unknown_operation("$everything"));
    }
    let endpoint = format!("{}/{res_type}/$everything", fhir.base);
    let scope = SearchScope::Everything {
        compartment: &res_type,
        id: None,
    };
    search(&state, &fhir, scope, &fhir.query, &endpoint).await
}

async fn instance(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
) -> Result<Response> {
    if !TYPES.contains(&res_type.as_str()) {
        return Err(unknown_operation("$everything"));
    }
    let endpoint = format!("{}/{res_type}/{id}/$everything", fhir.base);
    let scope = SearchScope::Everything {
        compartment: &res_type,
        id: Some(&id),
    };
    search(&state, &fhir, scope, &fhir.query, &endpoint).await
}
