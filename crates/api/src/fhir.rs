//! The FHIR REST routes and their handlers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ember_fhir::{IssueType, OperationOutcome, Severity, instant};
use ember_repo::{
    HistoryParams, HistoryScope, PatchDocument, Prefer, SearchScope, Stored, history_bundle,
    parse_condition, parse_etag,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, method_not_allowed};
use crate::negotiate::{BodyKind, Fhir, body_kind};
use crate::{AppState, capabilities};

type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The FHIR REST API, relative to its base path.
pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(system_routes("/"))
        .route("/metadata", get(metadata))
        .route("/_history", get(history_system))
        .route(
            "/{type}",
            get(type_search)
                .post(create)
                .put(conditional_update)
                .patch(conditional_patch)
                .delete(conditional_delete),
        )
        .route("/{type}/_search", post(type_search_post))
        .route("/$reindex", post(crate::reindex::system))
        .route("/$reindex/{id}", get(crate::reindex::status))
        .route("/{type}/$reindex", post(crate::reindex::for_type))
        .route("/{type}/$validate", post(validate))
        .route("/{type}/{id}/$validate", post(validate_instance))
        .route("/{type}/_history", get(history_type))
        .route(
            "/{type}/{id}",
            get(read).put(update).patch(patch).delete(delete),
        )
        .route("/{type}/{id}/_history", get(history_instance))
        .route("/{type}/{id}/_history/{vid}", get(vread))
        .route("/{compartment}/{id}/{type}", get(compartment_search))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            state.settings.max_body_bytes,
        ))
}

/// The system-level interactions at `path`: the base itself (`/`), and also the base
/// with a trailing slash when the API is mounted under a path.
pub(crate) fn system_routes(path: &str) -> Router<AppState> {
    Router::new().route(path, post(bundle).get(system_search))
}

/// Path parameters; a malformed path is a 400 OperationOutcome.
struct Params<T>(T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Params(t))
            .map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))
    }
}

async fn metadata(State(state): State<AppState>, fhir: Fhir) -> Response {
    json_response(
        &fhir,
        StatusCode::OK,
        &capabilities::statement(
            &fhir.base,
            state.repo.store().backend(),
            state.repo.limits(),
        ),
    )
}

async fn create(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    ember_repo::check_type(&res_type)?;
    let resource = resource_body(&state, &fhir, body)?;
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

/// `PUT [type]?criteria`: conditional update.
async fn conditional_update(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    ember_repo::check_type(&res_type)?;
    let if_match = if_match(&fhir.headers)?;
    let resource = resource_body(&state, &fhir, body)?;
    let stored = state
        .repo
        .update_conditional(&res_type, &fhir.query, resource, if_match)
        .await?;
    Ok(write_response(
        &fhir,
        &stored,
        if stored.created { "created" } else { "updated" },
    ))
}

/// `PATCH [type]?criteria`: conditional patch.
async fn conditional_patch(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    ember_repo::check_type(&res_type)?;
    let if_match = if_match(&fhir.headers)?;
    let patch_doc = patch_body(&state, &fhir, body)?;
    let stored = state
        .repo
        .patch_conditional(&res_type, &fhir.query, &patch_doc, if_match)
        .await?;
    Ok(write_response(&fhir, &stored, "patched"))
}

/// `DELETE [type]?criteria`: conditional delete, of one or several matches.
async fn conditional_delete(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
) -> Result<Response> {
    ember_repo::check_type(&res_type)?;
    if fhir.headers.contains_key(header::IF_MATCH) {
        return Err(ApiError::BadRequest(
            "If-Match is not supported on a conditional delete".into(),
        ));
    }
    let result = state
        .repo
        .delete_conditional(&res_type, &fhir.query)
        .await?;
    let mut response = if fhir.prefer == Prefer::OperationOutcome {
        let message = match result.deleted.as_slice() {
            [] => "no resource matched the criteria; nothing was deleted".to_owned(),
            deleted => format!(
                "deleted {} resource(s): {}",
                deleted.len(),
                deleted
                    .iter()
                    .map(|(id, _)| format!("{res_type}/{id}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        json_response(&fhir, StatusCode::OK, &info_outcome(message))
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if let [(_, version)] = result.deleted.as_slice() {
        set_header(&mut response, header::ETAG, &ember_repo::etag(*version));
    }
    Ok(response)
}

async fn update(
    State(state): State<AppState>,
    Params((res_type, id)): Params<(String, String)>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    ember_repo::check_type(&res_type)?;
    ember_repo::check_id(&id)?;
    let if_match = if_match(&fhir.headers)?;
    let resource = resource_body(&state, &fhir, body)?;
    let stored = state
        .repo
        .update(&res_type, &id, resource, if_match)
        .await?;
    Ok(write_response(
        &fhir,
        &stored,
        if stored.created { "created" } else { "updated" },
    ))
}

async fn patch(
    State(state): State<AppState>,
    Params((res_type, id)): Params<(String, String)>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    ember_repo::check_type(&res_type)?;
    ember_repo::check_id(&id)?;
    let if_match = if_match(&fhir.headers)?;
    let patch_doc = patch_body(&state, &fhir, body)?;
    let stored = state
        .repo
        .patch(&res_type, &id, &patch_doc, if_match)
        .await?;
    Ok(write_response(&fhir, &stored, "patched"))
}

/// The body of a PATCH: a JSON Patch, or a FHIRPath Patch `Parameters` resource.
fn patch_body(
    state: &AppState,
    fhir: &Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<PatchDocument> {
    let max_depth = state.repo.limits().max_json_depth;
    Ok(match body_kind(&fhir.headers)? {
        BodyKind::JsonPatch => {
            let bytes = body_bytes(state, body)?;
            PatchDocument::Json(
                ember_fhir::json::parse_json(&bytes, max_depth)
                    .map_err(ember_repo::RepoError::Body)?,
            )
        }
        BodyKind::FhirJson => {
            let bytes = body_bytes(state, body)?;
            let parameters = ember_fhir::json::parse_json(&bytes, max_depth)
                .map_err(ember_repo::RepoError::Body)?;
            if parameters.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
                return Err(ApiError::BadRequest(
                    "PATCH with FHIR JSON takes a Parameters resource (FHIRPath Patch); send a JSON Patch as application/json-patch+json".into(),
                ));
            }
            PatchDocument::FhirPath(parameters)
        }
    })
}

async fn delete(
    State(state): State<AppState>,
    Params((res_type, id)): Params<(String, String)>,
    fhir: Fhir,
) -> Result<Response> {
    let if_match = if_match(&fhir.headers)?;
    let deleted = state.repo.delete(&res_type, &id, if_match).await?;
    let mut response = if fhir.prefer == Prefer::OperationOutcome {
        let message = match deleted.version {
            Some(_) => format!("{res_type}/{id} deleted"),
            None => format!("{res_type}/{id} was already deleted"),
        };
        json_response(&fhir, StatusCode::OK, &info_outcome(message))
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if let Some(version) = deleted.version {
        set_header(&mut response, header::ETAG, &ember_repo::etag(version));
    }
    Ok(response)
}

async fn read(
    State(state): State<AppState>,
    Params((res_type, id)): Params<(String, String)>,
    fhir: Fhir,
) -> Result<Response> {
    let stored = state.repo.read(&res_type, &id).await?;
    if not_modified(&fhir.headers, &stored) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_header(&mut response, header::ETAG, &stored.etag());
        set_header(
            &mut response,
            header::LAST_MODIFIED,
            &instant::format_http_date(stored.last_updated),
        );
        return Ok(response);
    }
    Ok(read_response(&fhir, &stored))
}

async fn vread(
    State(state): State<AppState>,
    Params((res_type, id, vid)): Params<(String, String, String)>,
    fhir: Fhir,
) -> Result<Response> {
    let stored = state.repo.vread(&res_type, &id, &vid).await?;
    Ok(read_response(&fhir, &stored))
}

async fn history_system(State(state): State<AppState>, fhir: Fhir) -> Result<Response> {
    history(&state, &fhir, HistoryScope::System, "_history".into()).await
}

async fn history_type(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
) -> Result<Response> {
    let path = format!("{res_type}/_history");
    history(&state, &fhir, HistoryScope::Type(&res_type), path).await
}

async fn history_instance(
    State(state): State<AppState>,
    Params((res_type, id)): Params<(String, String)>,
    fhir: Fhir,
) -> Result<Response> {
    let path = format!("{res_type}/{id}/_history");
    history(&state, &fhir, HistoryScope::Instance(&res_type, &id), path).await
}

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

async fn bundle(
    State(state): State<AppState>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let resource = resource_body(&state, &fhir, body)?;
    if resource.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(ApiError::BadRequest(
            "POST to the base URL takes a batch or transaction Bundle".into(),
        ));
    }
    let response = state
        .repo
        .process_bundle(resource, &fhir.base, fhir.prefer)
        .await?;
    Ok(json_response(&fhir, StatusCode::OK, &response))
}

/// `$validate`: checks a resource (the body, or the `resource` parameter of a
/// `Parameters` body) against the structural rules of its type, strictly, and answers
/// with the OperationOutcome. Nothing is stored.
async fn validate(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    validate_body(&state, &res_type, None, &fhir, body)
}

async fn validate_instance(
    State(state): State<AppState>,
    Params((res_type, id)): Params<(String, String)>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    ember_repo::check_id(&id)?;
    validate_body(&state, &res_type, Some(&id), &fhir, body)
}

fn validate_body(
    state: &AppState,
    res_type: &str,
    id: Option<&str>,
    fhir: &Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    ember_repo::check_type(res_type)?;
    let mut resource = resource_body(state, fhir, body)?;
    if resource.get("resourceType").and_then(Value::as_str) == Some("Parameters")
        && res_type != "Parameters"
    {
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
    Ok(json_response(
        fhir,
        StatusCode::OK,
        &state.repo.validate(&resource).to_json(),
    ))
}

async fn type_search(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
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
async fn type_search_post(
    State(state): State<AppState>,
    Params(res_type): Params<String>,
    fhir: Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let form = fhir
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = body_bytes(&state, body)?;
    if !form && !body.is_empty() {
        return Err(ApiError::UnsupportedMediaType(
            "_search takes an application/x-www-form-urlencoded body".into(),
        ));
    }
    let mut pairs = fhir.query.clone();
    pairs.extend(form_urlencoded::parse(&body).into_owned());
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

async fn system_search(State(state): State<AppState>, fhir: Fhir) -> Result<Response> {
    let endpoint = fhir.base.clone();
    search(&state, &fhir, SearchScope::System, &fhir.query, &endpoint).await
}

async fn compartment_search(
    State(state): State<AppState>,
    Params((compartment, id, res_type)): Params<(String, String, String)>,
    fhir: Fhir,
) -> Result<Response> {
    let endpoint = format!("{}/{compartment}/{id}/{res_type}", fhir.base);
    let scope = SearchScope::Compartment {
        compartment: &compartment,
        id: &id,
        res_type: &res_type,
    };
    search(&state, &fhir, scope, &fhir.query, &endpoint).await
}

async fn search(
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

/// Reads the body as a JSON resource within the size and depth limits.
fn resource_body(
    state: &AppState,
    fhir: &Fhir,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value> {
    if body_kind(&fhir.headers)? != BodyKind::FhirJson {
        return Err(ApiError::UnsupportedMediaType(
            "this interaction takes a FHIR resource (application/fhir+json)".into(),
        ));
    }
    let bytes = body_bytes(state, body)?;
    Ok(
        ember_fhir::json::parse_resource(&bytes, state.repo.limits().max_json_depth)
            .map_err(ember_repo::RepoError::Body)?,
    )
}

fn body_bytes(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.settings.max_body_bytes)
        } else {
            ApiError::BadRequest(format!("the request body could not be read: {e}"))
        }
    })
}

/// `If-Match: W/"n"`; an unreadable value is a 400.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>> {
    match headers.get(header::IF_MATCH) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(parse_etag)
            .map(Some)
            .ok_or_else(|| {
                ApiError::BadRequest("If-Match must be a version ETag such as W/\"3\"".into())
            }),
    }
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

fn read_response(fhir: &Fhir, stored: &Stored) -> Response {
    let mut response = text_response(fhir, StatusCode::OK, stored.body.clone());
    set_version_headers(&mut response, stored);
    set_header(
        &mut response,
        header::CONTENT_LOCATION,
        &format!("{}/{}", fhir.base, stored.versioned_reference()),
    );
    response
}

/// The response of create, update and patch, shaped by `Prefer: return=…`.
fn write_response(fhir: &Fhir, stored: &Stored, what: &str) -> Response {
    let status = if stored.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = match fhir.prefer {
        Prefer::Representation => text_response(fhir, status, stored.body.clone()),
        Prefer::Minimal => status.into_response(),
        Prefer::OperationOutcome => json_response(
            fhir,
            status,
            &info_outcome(format!("{}/{} {what}", stored.res_type, stored.id)),
        ),
    };
    set_version_headers(&mut response, stored);
    let location = format!("{}/{}", fhir.base, stored.versioned_reference());
    let name = if stored.created {
        header::LOCATION
    } else {
        header::CONTENT_LOCATION
    };
    set_header(&mut response, name, &location);
    response
}

fn info_outcome(message: String) -> Value {
    OperationOutcome::single(Severity::Information, IssueType::Informational, message).to_json()
}

fn set_version_headers(response: &mut Response, stored: &Stored) {
    set_header(response, header::ETAG, &stored.etag());
    set_header(
        response,
        header::LAST_MODIFIED,
        &instant::format_http_date(stored.last_updated),
    );
}

fn set_header(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// A JSON value as a response, pretty-printed on `_pretty=true`.
pub(crate) fn json_response(fhir: &Fhir, status: StatusCode, value: &Value) -> Response {
    let text = if fhir.pretty {
        serde_json::to_string_pretty(value).unwrap_or_default()
    } else {
        value.to_string()
    };
    (status, [(header::CONTENT_TYPE, fhir.content_type)], text).into_response()
}

/// Stored JSON text as a response; re-formatted only when `_pretty=true` asks for it.
fn text_response(fhir: &Fhir, status: StatusCode, text: String) -> Response {
    if fhir.pretty {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            return json_response(fhir, status, &value);
        }
    }
    (status, [(header::CONTENT_TYPE, fhir.content_type)], text).into_response()
}
