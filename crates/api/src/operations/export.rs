//! Bulk Data `$export` (FHIR Bulk Data Access 2.0): `GET [base]/$export`,
//! `GET [base]/Patient/$export` and `GET [base]/Group/[id]/$export` with
//! `Prefer: respond-async` answer 202 with `Content-Location` naming the status;
//! `GET [base]/$export-status/[id]` answers 202 with `X-Progress` and `Retry-After`
//! while the job runs, then 200 with the manifest; `DELETE` on it cancels; the files
//! are `GET [base]/$export-file/[id]/[name]`. The work is `ember_repo::export`'s.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ember_auth::Principal;
use ember_fhir::{IssueType, OperationOutcome};
use ember_repo::export::{ExportLevel, ExportStatus, Owner};

use crate::AppState;
use crate::error::{ApiError, Result, outcome_response};
use crate::negotiate::Fhir;
use crate::path::{JobPath, ResourcePath, TypePath, unknown_operation};
use crate::response::set_header;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/$export", get(system))
        .route("/{type}/$export", get(for_type))
        .route("/{type}/{id}/$export", get(group))
        .route("/$export-status/{id}", get(status).delete(cancel))
        .route("/$export-file/{id}/{name}", get(file))
}

type Caller = Option<axum::Extension<Arc<Principal>>>;

/// Who asked: the token's issuer and client (or subject); `None` when Ember runs open.
fn owner(caller: &Caller) -> Owner {
    caller.as_ref().map(|axum::Extension(p)| {
        format!("{}|{}", p.issuer, p.client.as_deref().unwrap_or(&p.subject))
    })
}

async fn system(
    State(state): State<AppState>,
    fhir: Fhir,
    headers: HeaderMap,
    caller: Caller,
) -> Result<Response> {
    kick_off(
        &state,
        &fhir,
        &headers,
        &caller,
        ExportLevel::System,
        "$export",
    )
    .await
}

async fn for_type(
    State(state): State<AppState>,
    fhir: Fhir,
    TypePath { res_type }: TypePath,
    headers: HeaderMap,
    caller: Caller,
) -> Result<Response> {
    if res_type != "Patient" {
        return Err(unknown_operation("$export"));
    }
    kick_off(
        &state,
        &fhir,
        &headers,
        &caller,
        ExportLevel::Patient,
        "Patient/$export",
    )
    .await
}

async fn group(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
    headers: HeaderMap,
    caller: Caller,
) -> Result<Response> {
    if res_type != "Group" {
        return Err(unknown_operation("$export"));
    }
    let path = format!("Group/{id}/$export");
    kick_off(
        &state,
        &fhir,
        &headers,
        &caller,
        ExportLevel::Group(id),
        &path,
    )
    .await
}

async fn kick_off(
    state: &AppState,
    fhir: &Fhir,
    headers: &HeaderMap,
    caller: &Caller,
    level: ExportLevel,
    path: &str,
) -> Result<Response> {
    let asynchronous = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([',', ';']))
        .any(|p| p.trim() == "respond-async");
    if !asynchronous {
        return Err(ApiError::BadRequest(
            "$export runs asynchronously: send Prefer: respond-async".into(),
        ));
    }
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fhir.query.iter())
        .finish();
    let request = match query.is_empty() {
        true => format!("{}/{path}", fhir.base),
        false => format!("{}/{path}?{query}", fhir.base),
    };
    let id = state
        .repo
        .export_start(level, &fhir.query, &request, owner(caller))
        .await?;
    let mut response = StatusCode::ACCEPTED.into_response();
    set_header(
        &mut response,
        header::CONTENT_LOCATION,
        &format!("{}/$export-status/{id}", fhir.base),
    );
    Ok(response)
}

async fn status(
    State(state): State<AppState>,
    fhir: Fhir,
    JobPath { id }: JobPath,
    caller: Caller,
) -> Result<Response> {
    let status = state
        .repo
        .export_status(&id, &owner(&caller), &fhir.base)
        .await?;
    Ok(match status {
        ExportStatus::InProgress(progress) => {
            let mut response = StatusCode::ACCEPTED.into_response();
            set_header(&mut response, header::RETRY_AFTER, "2");
            set_header(
                &mut response,
                header::HeaderName::from_static("x-progress"),
                &progress,
            );
            response
        }
        ExportStatus::Complete(manifest) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            manifest.to_string(),
        )
            .into_response(),
        ExportStatus::Failed(why) => outcome_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &OperationOutcome::error(IssueType::Exception, format!("the export failed: {why}")),
        ),
    })
}

async fn cancel(
    State(state): State<AppState>,
    JobPath { id }: JobPath,
    caller: Caller,
) -> Result<Response> {
    state.repo.export_cancel(&id, &owner(&caller)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn file(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    caller: Caller,
) -> Result<Response> {
    let body = state.repo.export_file(&id, &name, &owner(&caller)).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/fhir+ndjson")],
        body,
    )
        .into_response())
}
