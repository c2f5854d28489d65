//! Search: `GET [type]` and `POST [type]/_search` (the form's parameters join the
//! URL's), `GET [base]` (system search, `_type` for the types) and
//! `GET [compartment]/[id]/[type]`. The answer is the `searchset` Bundle the repo
//! writes, sent as it is.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use ember_repo::SearchScope;

use crate::AppState;
use crate::body::SearchForm;
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::path::{CompartmentPath, TypePath};
use crate::response::text_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/{type}", get(for_type))
        .route("/{type}/_search", post(for_type_post))
        .route("/{compartment}/{id}/{type}", get(compartment))
}

/// System search at `base`: the base itself (see `crate::base_routes`).
pub(crate) fn system_routes(base: &str) -> Router<AppState> {
    Router::new().route(base, get(system))
}

async fn for_type(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
) -> Result<Response> {
    let endpoint = format!("{}/{res_type}", fhir.base);
    search(
        &state,
        &fhir,
        SearchScope::Type(&res_type),
        &fhir.query,
        &endpoint,
    )
    .await
}

/// `POST [type]/_search`: the parameters come in a form body, and in the URL.
async fn for_type_post(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
    SearchForm(form): SearchForm,
) -> Result<Response> {
    let mut pairs = fhir.query.clone();
    pairs.extend(form);
    let endpoint = format!("{}/{res_type}", fhir.base);
    search(
        &state,
        &fhir,
        SearchScope::Type(&res_type),
        &pairs,
        &endpoint,
    )
    .await
}

async fn system(State(state): State<AppState>, fhir: Fhir) -> Result<Response> {
    let endpoint = fhir.base.clone();
    search(&state, &fhir, SearchScope::System, &fhir.query, &endpoint).await
}

async fn compartment(
    State(state): State<AppState>,
    fhir: Fhir,
    CompartmentPath {
        compartment,
        id,
        res_type,
    }: CompartmentPath,
) -> Result<Response> {
    let endpoint = format!("{}/{compartment}/{id}/{res_type}", fhir.base);
    let scope = SearchScope::Compartment {
        compartment: &compartment,
        id: &id,
        res_type: &res_type,
    };
    search(&state, &fhir, scope, &fhir.query, &endpoint).await
}

pub(crate) async fn search(
    state: &AppState,
    fhir: &Fhir,
    scope: SearchScope<'_>,
    pairs: &[(String, String)],
    endpoint: &str,
) -> Result<Response> {
    let bundle = state
        .repo
        .search(scope, pairs, fhir.handling, &fhir.base, endpoint)
        .await?;
    Ok(text_response(fhir, StatusCode::OK, bundle))
}
