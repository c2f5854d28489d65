//! What a request carries besides its path and negotiated details, as extractors:
//! the body, read within the size and depth limits as a resource ([`Resource`]), a
//! patch ([`Patch`]) or a search form ([`SearchForm`]), and [`IfMatch`], the version a
//! write expects to replace. Each rejects with the `ApiError` of what is wrong. A body
//! extractor comes last in a handler's arguments, so the path and headers are checked
//! before the body is.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use ember_repo::{PatchDocument, RepoError, parse_etag};
use serde_json::Value;

use crate::AppState;
use crate::error::{ApiError, Result};
use crate::negotiate::{BodyKind, body_kind};

/// A FHIR resource, sent as JSON or as XML (converted to JSON here).
pub(crate) struct Resource(pub Value);

/// The body of a PATCH: a JSON Patch, or a FHIRPath Patch `Parameters` resource.
pub(crate) struct Patch(pub PatchDocument);

/// The parameters of a `POST [type]/_search` body: an
/// `application/x-www-form-urlencoded` form, or nothing.
pub(crate) struct SearchForm(pub Vec<(String, String)>);

/// `If-Match: W/"n"`; an unreadable value is a 400.
pub(crate) struct IfMatch(pub Option<i64>);

impl FromRequest<AppState> for Resource {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let kind = body_kind(request.headers())?;
        if kind == BodyKind::JsonPatch {
            return Err(ApiError::UnsupportedMediaType(
                "this interaction takes a FHIR resource (application/fhir+json or application/fhir+xml)".into(),
            ));
        }
        let bytes = body_bytes(request, state).await?;
        let max_depth = state.repo.limits().max_json_depth;
        let resource = match kind {
            BodyKind::FhirXml => {
                ember_fhir::xml::from_xml(&bytes, max_depth).map_err(ApiError::Xml)?
            }
            _ => ember_fhir::json::parse_resource(&bytes, max_depth).map_err(RepoError::Body)?,
        };
        Ok(Resource(resource))
    }
}

impl FromRequest<AppState> for Patch {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let kind = body_kind(request.headers())?;
        let bytes = body_bytes(request, state).await?;
        let max_depth = state.repo.limits().max_json_depth;
        let document = match kind {
            BodyKind::FhirXml => {
                ember_fhir::xml::from_xml(&bytes, max_depth).map_err(ApiError::Xml)?
            }
            _ => ember_fhir::json::parse_json(&bytes, max_depth).map_err(RepoError::Body)?,
        };
        Ok(Patch(match kind {
            BodyKind::JsonPatch => PatchDocument::Json(document),
            BodyKind::FhirJson | BodyKind::FhirXml => {
                if document.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
                    return Err(ApiError::BadRequest(
                        "PATCH with a FHIR resource takes a Parameters resource (FHIRPath Patch); send a JSON Patch as application/json-patch+json".into(),
                    ));
                }
                PatchDocument::FhirPath(document)
            }
        }))
    }
}

impl FromRequest<AppState> for SearchForm {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self> {
        let form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let body = body_bytes(request, state).await?;
        if !form && !body.is_empty() {
            return Err(ApiError::UnsupportedMediaType(
                "_search takes an application/x-www-form-urlencoded body".into(),
            ));
        }
        Ok(SearchForm(
            form_urlencoded::parse(&body).into_owned().collect(),
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self> {
        match parts.headers.get(header::IF_MATCH) {
            None => Ok(IfMatch(None)),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(parse_etag)
                .map(|version| IfMatch(Some(version)))
                .ok_or_else(|| {
                    ApiError::BadRequest("If-Match must be a version ETag such as W/\"3\"".into())
                }),
        }
    }
}

/// The body's bytes; one over `EMBER_MAX_BODY_BYTES` is a 413.
async fn body_bytes(request: Request, state: &AppState) -> Result<Bytes> {
    Bytes::from_request(request, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.settings.max_body_bytes)
        } else {
            ApiError::BadRequest(format!("the request body could not be read: {e}"))
        }
    })
}
