//! `CodeSystem/$lookup`: `GET|POST [base]/CodeSystem/$lookup` with `system` and `code`
//! (or a `coding`), optionally `version` and `property`; a `Parameters` answer from
//! `ember_repo`.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use ember_repo::LookupRequest;
use serde_json::Value;

use super::params::Call;
use crate::AppState;
use crate::error::{ApiError, Result};
use crate::negotiate::Fhir;
use crate::response::json_response;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/{type}/$lookup", get(lookup).post(lookup))
}

async fn lookup(State(state): State<AppState>, fhir: Fhir, call: Call) -> Result<Response> {
    let (_, params) = call.on("CodeSystem", "$lookup")?;
    let coding = params.value("coding");
    let field = |name: &str| -> Result<Option<String>> {
        Ok(match coding {
            Some(c) => c.get(name).and_then(Value::as_str).map(str::to_owned),
            None => params.text(name)?.map(str::to_owned),
        })
    };
    let (Some(system), Some(code)) = (field("system")?, field("code")?) else {
        return Err(ApiError::BadRequest(
            "$lookup needs system and code, or a coding with both".into(),
        ));
    };
    let req = LookupRequest {
        system,
        code,
        version: field("version")?,
        properties: params
            .texts("property")
            .into_iter()
            .map(str::to_owned)
            .collect(),
    };
    let answer = state.repo.lookup(req).await?;
    Ok(json_response(&fhir, StatusCode::OK, &answer))
}
