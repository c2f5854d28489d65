//! `POST [type]`: create, and conditional create when `If-None-Exist` carries criteria
//! (the repo checks them and writes in one transaction).

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use ember_repo::parse_condition;

use crate::AppState;
use crate::body::Resource;
use crate::error::{ApiError, Result};
use crate::negotiate::Fhir;
use crate::path::TypePath;
use crate::response::write_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/{type}", post(create))
}

async fn create(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
    Resource(resource): Resource,
) -> Result<Response> {
    // Criteria in the URL are not R4's conditional create: refused, never ignored (which
    // would create a second resource where the client expects the first).
    if let Some((name, _)) = fhir
        .query
        .iter()
        .find(|(n, _)| !matches!(n.as_str(), "_format" | "_pretty"))
    {
        return Err(ApiError::BadRequest(format!(
            "create takes no search parameters ({name}); for a conditional create send the criteria in If-None-Exist"
        )));
    }
    let Some(criteria) = fhir.headers.get("if-none-exist") else {
        let stored = state.repo.create(&res_type, resource).await?;
        return Ok(write_response(&fhir, &stored, "created"));
    };
    let criteria = criteria
        .to_str()
        .map_err(|_| ApiError::BadRequest("If-None-Exist must be a query string".into()))?;
    let stored = state
        .repo
        .create_conditional(&res_type, resource, &parse_condition(criteria))
        .await?;
    let what = if stored.created {
        "created"
    } else {
        "already exists (If-None-Exist); nothing was created"
    };
    Ok(write_response(&fhir, &stored, what))
}
