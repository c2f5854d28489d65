//! `GET [type]/[id]` (read, conditional on `If-None-Match`/`If-Modified-Since`) and
//! `GET [type]/[id]/_history/[vid]` (vread), both with `_summary` and `_elements`.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ember_fhir::instant;
use ember_repo::{Stored, parse_etag};

use crate::AppState;
use crate::error::Result;
use crate::negotiate::Fhir;
use crate::path::{ResourcePath, VersionPath};
use crate::response::{read_response, set_version_headers};

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/{type}/{id}", get(read))
        .route("/{type}/{id}/_history/{vid}", get(vread))
}

async fn read(
    State(state): State<AppState>,
    fhir: Fhir,
    ResourcePath { res_type, id }: ResourcePath,
) -> Result<Response> {
    let mut stored = state.repo.read(&res_type, &id).await?;
    if not_modified(&fhir.headers, &stored) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_version_headers(&mut response, &stored);
        return Ok(response);
    }
    subset(&fhir, &mut stored)?;
    Ok(read_response(&fhir, &stored))
}

/// `_summary` and `_elements`, when the query asks for them.
fn subset(fhir: &Fhir, stored: &mut ember_repo::Stored) -> Result<()> {
    if let Some(body) = ember_repo::subset_read(&stored.body, &fhir.query)? {
        stored.body = body;
    }
    Ok(())
}

async fn vread(
    State(state): State<AppState>,
    fhir: Fhir,
    VersionPath { res_type, id, vid }: VersionPath,
) -> Result<Response> {
    let mut stored = state.repo.vread(&res_type, &id, &vid).await?;
    subset(&fhir, &mut stored)?;
    Ok(read_response(&fhir, &stored))
}

/// Whether `If-None-Match` or `If-Modified-Since` make this read a 304.
fn not_modified(headers: &HeaderMap, stored: &Stored) -> bool {
    if let Some(v) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        return v
            .split(',')
            .any(|tag| tag.trim() == "*" || parse_etag(tag) == Some(stored.version));
    }
    if let Some(since) = headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(instant::parse_http_date)
    {
        return stored.last_updated / 1_000_000 <= since / 1_000_000;
    }
    false
}
