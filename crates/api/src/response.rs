//! Every successful FHIR response is shaped here: JSON bodies (pretty on
//! `_pretty=true`), the responses of reads, writes and deletes with `Prefer: return=…`,
//! and the version headers (`ETag`, `Last-Modified`, `Location`, `Content-Location`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember_fhir::{IssueType, OperationOutcome, Severity, instant};
use ember_repo::{Prefer, Stored};
use serde_json::Value;

use crate::negotiate::Fhir;

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
pub(crate) fn text_response(fhir: &Fhir, status: StatusCode, text: String) -> Response {
    if fhir.pretty {
        if let Ok(value) = serde_json::from_str::<Value>(&text) {
            return json_response(fhir, status, &value);
        }
    }
    (status, [(header::CONTENT_TYPE, fhir.content_type)], text).into_response()
}

/// The response of read and vread: the stored version with its version headers.
pub(crate) fn read_response(fhir: &Fhir, stored: &Stored) -> Response {
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
pub(crate) fn write_response(fhir: &Fhir, stored: &Stored, what: &str) -> Response {
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

/// The response of a delete: 204, or 200 with `message` on
/// `Prefer: return=OperationOutcome`; with the `ETag` of the deletion `version` when
/// there is one.
pub(crate) fn delete_response(
    fhir: &Fhir,
    message: impl FnOnce() -> String,
    version: Option<i64>,
) -> Response {
    let mut response = if fhir.prefer == Prefer::OperationOutcome {
        json_response(fhir, StatusCode::OK, &info_outcome(message()))
    } else {
        StatusCode::NO_CONTENT.into_response()
    };
    if let Some(version) = version {
        set_header(&mut response, header::ETAG, &ember_repo::etag(version));
    }
    response
}

/// An `OperationOutcome` with one informational issue.
pub(crate) fn info_outcome(message: String) -> Value {
    OperationOutcome::single(Severity::Information, IssueType::Informational, message).to_json()
}

/// `ETag` and `Last-Modified` of a stored version.
pub(crate) fn set_version_headers(response: &mut Response, stored: &Stored) {
    set_header(response, header::ETAG, &stored.etag());
    set_header(
        response,
        header::LAST_MODIFIED,
        &instant::format_http_date(stored.last_updated),
    );
}

/// Sets a header, leaving it out when `value` is not a valid header value.
pub(crate) fn set_header(response: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}
