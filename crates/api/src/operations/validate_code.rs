//! `ValueSet/$validate-code`: `GET|POST [base]/ValueSet/$validate-code` (`url` or a
//! `valueSet` resource) and `GET|POST [base]/ValueSet/[id]/$validate-code`, with `code`
//! and `system` (and `display`), a `coding` or a `codeableConcept`; a `Parameters`
//! answer with `result` from `ember_repo`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use ember_repo::{Coded, ValidateCodeRequest};
use serde_json::Value;

use super::expand::target;
use super::params::{Call, Params};
use crate::AppState;
use crate::error::{ApiError, Result};
use crate::negotiate::Fhir;
use crate::response::json_response;

const OP: &str = "$validate-code";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{type}/$validate-code",
            get(validate_code).post(validate_code),
        )
        .route(
            "/{type}/{id}/$validate-code",
            get(validate_code).post(validate_code),
        )
}

/// A Coding's system, code and display.
fn coded(coding: &Value) -> Option<Coded> {
    let text = |k: &str| coding.get(k).and_then(Value::as_str).map(str::to_owned);
    Some(Coded {
        system: text("system"),
        code: text("code")?,
        display: text("display"),
    })
}

/// The codes to check: `code` (with `system`, `display`), or `coding`, or every coding
/// of `codeableConcept`.
fn codings(params: &Params) -> Result<Vec<Coded>> {
    if let Some(code) = params.text("code")? {
        return Ok(vec![Coded {
            system: params.text("system")?.map(str::to_owned),
            code: code.to_owned(),
            display: params.text("display")?.map(str::to_owned),
        }]);
    }
    if let Some(coding) = params.value("coding") {
        return coded(coding)
            .map(|c| vec![c])
            .ok_or_else(|| ApiError::BadRequest(format!("{OP}: the coding has no code")));
    }
    if let Some(cc) = params.value("codeableConcept") {
        return Ok(cc["coding"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(coded)
            .collect());
    }
    Err(ApiError::BadRequest(format!(
        "{OP} needs code (with system), coding or codeableConcept"
    )))
}

async fn validate_code(State(state): State<AppState>, fhir: Fhir, call: Call) -> Result<Response> {
    let (id, params) = call.on("ValueSet", OP)?;
    let req = ValidateCodeRequest {
        value_set: target(id, &params, OP)?,
        codings: codings(&params)?,
    };
    let answer = state.repo.validate_code(req).await?;
    Ok(json_response(&fhir, StatusCode::OK, &answer))
}
