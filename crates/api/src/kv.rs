//! The key-value API for small, non-clinical application settings (never clinical
//! data), outside the FHIR base:
//! - `GET /kv/{namespace}/{key}`: the value, with its media type and `ETag: "<version>"`;
//! - `PUT /kv/{namespace}/{key}[?ttl=seconds]`: store bytes (201 for a new key, 200
//!   after a change); `If-Match` for compare-and-swap, `If-None-Match: *` to create
//!   only (412 otherwise); larger than `EMBER_KV_MAX_BYTES` is a 413;
//! - `DELETE /kv/{namespace}/{key}`: 204 (404 when there is none, 412 on `If-Match`);
//! - `GET /kv/{namespace}?prefix=&limit=`: the live keys, in order, as JSON.
//!
//! With authentication on, a token may use the namespace named by its client id and
//! those granted by `ember-kv:<namespace>` scopes or roles. Namespaces starting with
//! `ember.` are Ember's own and refused (403).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ember_auth::Principal;
use ember_store::KvExpect;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::{ApiError, Result};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/kv/{namespace}", get(list)).route(
        "/kv/{namespace}/{*key}",
        get(read).put(write).delete(remove),
    )
}

/// The caller, when authentication is on.
type Caller = Option<axum::Extension<Arc<Principal>>>;

/// Refuses a namespace the caller may not use. Namespaces starting with `ember.` hold
/// Ember's own records (CDS Hooks feedback and token ids) and are never served.
fn check_namespace(caller: &Caller, namespace: &str) -> Result<()> {
    if namespace.starts_with("ember.") {
        return Err(ApiError::Forbidden(format!(
            "the key-value namespace {namespace:?} is reserved for Ember"
        )));
    }
    match caller {
        Some(axum::Extension(p)) if !p.may_use_namespace(namespace) => {
            Err(ApiError::Forbidden(format!(
                "the token may not use the key-value namespace {namespace:?} (its own is its client id; others need the scope ember-kv:{namespace})"
            )))
        }
        _ => Ok(()),
    }
}

fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// `"3"` or `W/"3"` → 3.
fn version_of(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<i64>> {
    let Some(value) = headers.get(&name) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| ApiError::BadRequest(format!("{name} must be an ETag such as \"3\"")))
}

async fn read(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, key)): Path<(String, String)>,
) -> Result<Response> {
    check_namespace(&caller, &namespace)?;
    let entry = state.repo.kv_get(&namespace, &key).await?;
    let media_type = HeaderValue::from_str(&entry.media_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = (StatusCode::OK, entry.value).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, media_type);
    headers.insert(header::ETAG, etag(entry.version));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[derive(Deserialize)]
struct WriteQuery {
    ttl: Option<u64>,
}

async fn write(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, key)): Path<(String, String)>,
    query: std::result::Result<Query<WriteQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response> {
    check_namespace(&caller, &namespace)?;
    let Query(query) =
        query.map_err(|e| ApiError::BadRequest(format!("ttl: {}", e.body_text())))?;
    let max = state.settings.kv_max_bytes;
    let body: Bytes = axum::body::to_bytes(body, max.saturating_add(1))
        .await
        .map_err(|_| ApiError::PayloadTooLarge(max))?;
    let expect = match (
        version_of(&headers, header::IF_MATCH)?,
        headers.get(header::IF_NONE_MATCH),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::BadRequest(
                "If-Match and If-None-Match cannot be combined".into(),
            ));
        }
        (Some(v), None) => KvExpect::Version(v),
        (None, Some(v)) if v.as_bytes() == b"*" => KvExpect::Absent,
        (None, Some(_)) => {
            return Err(ApiError::BadRequest("If-None-Match must be *".into()));
        }
        (None, None) => KvExpect::Any,
    };
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let version = state
        .repo
        .kv_put(
            &namespace,
            &key,
            &body,
            media_type,
            query.ttl.map(Duration::from_secs),
            expect,
            state.settings.kv_max_bytes,
        )
        .await?;
    let status = if version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = status.into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path((namespace, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    check_namespace(&caller, &namespace)?;
    let version = version_of(&headers, header::IF_MATCH)?;
    state.repo.kv_delete(&namespace, &key, version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct ListQuery {
    prefix: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(namespace): Path<String>,
    query: std::result::Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response> {
    check_namespace(&caller, &namespace)?;
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let items = state
        .repo
        .kv_list(
            &namespace,
            query.prefix.as_deref().unwrap_or(""),
            query.limit.unwrap_or(100),
        )
        .await?;
    let keys: Vec<_> = items
        .iter()
        .map(|i| {
            let mut item = json!({
                "key": i.key, "mediaType": i.media_type, "version": i.version, "size": i.size,
            });
            if let Some(at) = i.expires_at {
                item["expires"] = json!(ember_fhir::instant::format_instant(at));
            }
            item
        })
        .collect();
    Ok(axum::Json(json!({"namespace": namespace, "keys": keys})).into_response())
}
