//! Content negotiation and the request details every FHIR handler needs:
//! `Accept`/`_format`, `_pretty`, `Prefer`, `Content-Type` and the base URL.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use ember_repo::{Handling, Prefer};

use crate::{ApiError, AppState};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const PLAIN_JSON: &str = "application/json; charset=utf-8";

const JSON_TYPES: &[&str] = &[
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
    "text/json",
];
const XML_TYPES: &[&str] = &[
    "application/fhir+xml",
    "application/xml",
    "application/xml+fhir",
    "text/xml",
    "xml",
];

/// The negotiated details of a FHIR request.
#[derive(Debug, Clone)]
pub struct Fhir {
    /// The `Content-Type` of JSON responses.
    pub content_type: &'static str,
    /// `_pretty=true`.
    pub pretty: bool,
    /// `Prefer: return=…`.
    pub prefer: Prefer,
    /// `Prefer: handling=strict|lenient` (searches).
    pub handling: Handling,
    /// The absolute base URL of the FHIR API, without a trailing slash.
    pub base: String,
    /// The decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
}

impl FromRequestParts<AppState> for Fhir {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let format = query
            .iter()
            .find(|(k, _)| k == "_format")
            .map(|(_, v)| v.as_str());
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok());
        let content_type = response_type(accept, format)?;
        let pretty = query.iter().any(|(k, v)| k == "_pretty" && v == "true");
        let prefer_header = parts.headers.get("prefer").and_then(|v| v.to_str().ok());
        let prefer = parse_prefer(prefer_header);
        let handling = parse_handling(prefer_header);
        let base = base_url(state, parts);
        Ok(Fhir {
            content_type,
            pretty,
            prefer,
            handling,
            base,
            query,
            headers: parts.headers.clone(),
        })
    }
}

/// Chooses the response media type from `_format` (which wins) or `Accept`.
fn response_type(accept: Option<&str>, format: Option<&str>) -> Result<&'static str, ApiError> {
    if let Some(format) = format {
        // A `+` in a query value decodes to a space; undo that for media types.
        let format = format.trim().replace(' ', "+").to_ascii_lowercase();
        let format = format.split(';').next().unwrap_or_default().trim();
        return match format {
            "json" | "application/fhir+json" | "application/json+fhir" => Ok(FHIR_JSON),
            "application/json" | "text/json" => Ok(PLAIN_JSON),
            f if XML_TYPES.contains(&f) => Err(xml_not_acceptable()),
            f => Err(ApiError::NotAcceptable(format!(
                "_format={f} is not supported; use _format=json"
            ))),
        };
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(FHIR_JSON);
    };
    let mut saw_xml = false;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            matches!(
                p.trim().replace(' ', "").as_str(),
                "q=0" | "q=0.0" | "q=0.00" | "q=0.000"
            )
        });
        if refused {
            continue;
        }
        match media.as_str() {
            "application/json" | "text/json" => return Ok(PLAIN_JSON),
            m if JSON_TYPES.contains(&m) || m == "*/*" || m == "application/*" => {
                return Ok(FHIR_JSON);
            }
            m if XML_TYPES.contains(&m) => saw_xml = true,
            _ => {}
        }
    }
    Err(if saw_xml {
        xml_not_acceptable()
    } else {
        ApiError::NotAcceptable(format!(
            "none of the media types in Accept ({accept}) is supported; use application/fhir+json"
        ))
    })
}

fn xml_not_acceptable() -> ApiError {
    ApiError::NotAcceptable("XML is not supported yet; ask for application/fhir+json".into())
}

/// Reads `Prefer: return=minimal|representation|OperationOutcome`.
fn parse_prefer(header: Option<&str>) -> Prefer {
    let Some(header) = header else {
        return Prefer::default();
    };
    for pref in header.split([',', ';']) {
        match pref.trim().replace(' ', "").as_str() {
            "return=minimal" => return Prefer::Minimal,
            "return=representation" => return Prefer::Representation,
            "return=OperationOutcome" => return Prefer::OperationOutcome,
            _ => {}
        }
    }
    Prefer::default()
}

/// Reads `Prefer: handling=strict|lenient`; lenient when absent.
fn parse_handling(header: Option<&str>) -> Handling {
    let strict = header.is_some_and(|h| {
        h.split([',', ';'])
            .any(|p| p.trim().replace(' ', "") == "handling=strict")
    });
    if strict {
        Handling::Strict
    } else {
        Handling::Lenient
    }
}

/// The absolute FHIR base URL: configured, told by a trusted proxy, or from `Host`.
fn base_url(state: &AppState, parts: &Parts) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    state.settings.public_url.resolve(&parts.headers, peer)
}

/// What a request body is, by its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// FHIR JSON (also assumed when no `Content-Type` is given).
    FhirJson,
    /// `application/json-patch+json`.
    JsonPatch,
}

/// Classifies the request body by `Content-Type`, rejecting what Ember cannot read.
pub fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(BodyKind::FhirJson);
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        m if JSON_TYPES.contains(&m) => Ok(BodyKind::FhirJson),
        "application/json-patch+json" => Ok(BodyKind::JsonPatch),
        m if XML_TYPES.contains(&m) => Err(ApiError::UnsupportedMediaType(
            "XML is not supported yet; send application/fhir+json".into(),
        )),
        m => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {m:?} is not supported; send application/fhir+json"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_json_and_refuses_xml() {
        assert_eq!(response_type(None, None).unwrap(), FHIR_JSON);
        assert_eq!(
            response_type(Some("application/fhir+json"), None).unwrap(),
            FHIR_JSON
        );
        assert_eq!(
            response_type(Some("application/json"), None).unwrap(),
            PLAIN_JSON
        );
        assert_eq!(
            response_type(Some("text/html, */*;q=0.8"), None).unwrap(),
            FHIR_JSON
        );
        assert!(matches!(
            response_type(Some("application/fhir+xml"), None),
            Err(ApiError::NotAcceptable(_))
        ));
        assert!(matches!(
            response_type(Some("text/plain"), None),
            Err(ApiError::NotAcceptable(_))
        ));
        assert!(matches!(
            response_type(Some("application/fhir+json;q=0"), None),
            Err(ApiError::NotAcceptable(_))
        ));
        assert_eq!(
            response_type(Some("application/fhir+xml"), Some("json")).unwrap(),
            FHIR_JSON
        );
        assert_eq!(
            response_type(None, Some("application/fhir json")).unwrap(),
            FHIR_JSON
        );
        assert!(matches!(
            response_type(None, Some("xml")),
            Err(ApiError::NotAcceptable(_))
        ));
        assert!(matches!(
            response_type(None, Some("turtle")),
            Err(ApiError::NotAcceptable(_))
        ));
    }

    #[test]
    fn reads_prefer() {
        assert_eq!(parse_prefer(None), Prefer::Representation);
        assert_eq!(parse_prefer(Some("return=minimal")), Prefer::Minimal);
        assert_eq!(
            parse_prefer(Some("handling=strict, return=OperationOutcome")),
            Prefer::OperationOutcome
        );
        assert_eq!(
            parse_handling(Some("handling=strict, return=minimal")),
            Handling::Strict
        );
        assert_eq!(parse_handling(Some("handling=lenient")), Handling::Lenient);
        assert_eq!(parse_handling(None), Handling::Lenient);
    }
}
