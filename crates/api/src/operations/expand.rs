//! `ValueSet/$expand`: `GET|POST [base]/ValueSet/$expand` (`url`, optionally with
//! `valueSetVersion`, or a `valueSet` resource in the body) and
//! `GET|POST [base]/ValueSet/[id]/$expand`, with `filter`, `offset`, `count` and
//! `activeOnly`. The expansion is `ember_repo`'s.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use ember_repo::{ExpandRequest, ValueSetRef};

use super::params::{Call, Params};
use crate::AppState;
use crate::error::{ApiError, Result};
use crate::negotiate::Fhir;
use crate::response::json_response;

const OP: &str = "$expand";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/{type}/$expand", get(expand).post(expand))
        .route("/{type}/{id}/$expand", get(expand).post(expand))
}

/// Which value set `ValueSet/$expand` or `$validate-code` works on: the instance, the
/// `valueSet` resource, or `url` (with `valueSetVersion`).
pub(crate) fn target(id: Option<String>, params: &Params, op: &str) -> Result<ValueSetRef> {
    if let Some(id) = id {
        return Ok(ValueSetRef::Id(id));
    }
    if let Some(vs) = params.value("valueSet") {
        return Ok(ValueSetRef::Resource(vs.clone()));
    }
    let url = params.text("url")?.ok_or_else(|| {
        ApiError::BadRequest(format!(
            "{op} needs the ValueSet: url (a canonical URL) or valueSet (a resource), or use ValueSet/[id]/{op}"
        ))
    })?;
    Ok(ValueSetRef::Url(match params.text("valueSetVersion")? {
        Some(v) => format!("{url}|{v}"),
        None => url.to_owned(),
    }))
}

async fn expand(State(state): State<AppState>, fhir: Fhir, call: Call) -> Result<Response> {
    let (id, params) = call.on("ValueSet", OP)?;
    let req = ExpandRequest {
        value_set: target(id, &params, OP)?,
        filter: params.text("filter")?.map(str::to_owned),
        offset: params.number("offset")?.unwrap_or(0),
        count: params.number("count")?,
        active_only: params.flag("activeOnly")?.unwrap_or(false),
    };
    let vs = state.repo.expand(req).await?;
    Ok(json_response(&fhir, StatusCode::OK, &vs))
}
