//! `$validate`: `POST [type]/$validate` and `POST [type]/[id]/$validate` check a
//! resource (the body, or the `resource` parameter of a `Parameters` body) against the
//! structural rules of its type, strictly, against the `profile` parameter (query, or
//! a parameter of a `Parameters` body) and against the stored profiles it claims in
//! `meta.profile`, and answer with the OperationOutcome; an unknown `profile` is an
//! error issue. `GET [type]/[id]/$validate` checks the stored current version (a read).
//! Nothing is stored.

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
use crate::path::{ResourcePath, TypePath};
use crate::response::json_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/{type}/$validate", post(for_type))
        .route("/{type}/{id}/$validate", post(instance).get(stored))
}

async fn for_type(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
    Resource(resource): Resource,
) -> Result<Response> {
    validate(&state, &fhir, &res_type, None, resource).await
}

/// The instance form also requires the resource's id to be the one in the URL.
async fn instance(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
    Resource(resource): Resource,
) -> Result<Response> {
    validate(&state, &fhir, &res_type, Some(&id), resource).await
}

/// `GET`: the operation changes nothing, so it may be called on what is stored.
async fn stored(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
) -> Result<Response> {
    let current = state.repo.read(&res_type, &id).await?;
    let resource: Value = serde_json::from_str(&current.body).map_err(|e| {
        ember_repo::RepoError::Unprocessable(format!("the stored resource is not JSON: {e}"))
    })?;
    validate(&state, &fhir, &res_type, Some(&id), resource).await
}

async fn validate(
    state: &AppState,
    fhir: &Fhir,
    res_type: &str,
    id: Option<&str>,
    mut resource: Value,
) -> Result<Response> {
    let parameters = resource.get("resourceType").and_then(Value::as_str) == Some("Parameters")
        && res_type != "Parameters";
    let mut profiles: Vec<String> = fhir
        .query
        .iter()
        .filter(|(n, _)| n == "profile")
        .map(|(_, v)| v.clone())
        .collect();
    if parameters {
        for p in resource["parameter"].as_array().into_iter().flatten() {
            if p["name"] != "profile" {
                continue;
            }
            let url = ["valueUri", "valueCanonical", "valueString"]
                .iter()
                .find_map(|k| p.get(*k).and_then(Value::as_str))
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "$validate: the profile parameter must be a valueUri or valueCanonical"
                            .into(),
                    )
                })?;
            profiles.push(url.to_owned());
        }
    }
    if profiles.len() > 1 || profiles.iter().any(|p| p.trim().is_empty()) {
        return Err(ApiError::BadRequest(
            "$validate takes at most one profile, a canonical URL".into(),
        ));
    }
    if parameters {
        resource = resource["parameter"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "resource"))
            .and_then(|p| p.get("resource").cloned())
            .ok_or_else(|| {
                ApiError::BadRequest(
                    "$validate: the Parameters body has no `resource` parameter".into(),
                )
            })?;
        ember_fhir::json::check_resource(&resource).map_err(ember_repo::RepoError::Body)?;
    }
    if resource.get("resourceType").and_then(Value::as_str) != Some(res_type) {
        return Err(ApiError::BadRequest(format!(
            "$validate on {res_type} takes a {res_type} resource"
        )));
    }
    if let Some(id) = id {
        if resource.get("id").and_then(Value::as_str) != Some(id) {
            return Err(ApiError::BadRequest(format!(
                "the resource id must be {id:?}, as in the URL"
            )));
        }
    }
    let outcome = state
        .repo
        .validate_with_profiles(&resource, profiles.first().map(String::as_str))
        .await?;
    Ok(json_response(fhir, StatusCode::OK, &outcome.to_json()))
}
