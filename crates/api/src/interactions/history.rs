//! `GET [base]/_history`, `GET [type]/_history` and `GET [type]/[id]/_history`: the
//! history of the system, a type or an instance, as a `history` Bundle.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use ember_repo::{HistoryParams, HistoryScope, history_bundle};

use crate::AppState;
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::path::{ResourcePath, TypePath};
use crate::response::json_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/_history", get(system))
        .route("/{type}/_history", get(for_type))
        .route("/{type}/{id}/_history", get(instance))
}

async fn system(State(state): State<AppState>, fhir: Fhir) -> Result<Response> {
    history(&state, &fhir, HistoryScope::System, "_history".into()).await
}

async fn for_type(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
) -> Result<Response> {
    let path = format!("{res_type}/_history");
    history(&state, &fhir, HistoryScope::Type(&res_type), path).await
}

async fn instance(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
) -> Result<Response> {
    let path = format!("{res_type}/{id}/_history");
    history(&state, &fhir, HistoryScope::Instance(&res_type, &id), path).await
}

/// One page of the history of `scope`; `path` is the endpoint, relative to the base.
async fn history(
    state: &AppState,
    fhir: &Fhir,
    scope: HistoryScope<'_>,
    path: String,
) -> Result<Response> {
    let params = HistoryParams::parse(&fhir.query, &state.repo)?;
    let page = state.repo.history(scope, &params).await?;
    let bundle = history_bundle(&page, &params, &fhir.base, &format!("{}/{path}", fhir.base));
    Ok(json_response(fhir, StatusCode::OK, &bundle))
}
