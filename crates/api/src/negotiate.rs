//! Content negotiation and the request details every FHIR handler needs:
//! `Accept`/`_format`, `_pretty`, `Prefer`, `Content-Type` and the base URL.
//!
//! Handlers always answer in JSON. When a request asks for XML, [`XmlResponses`] (a
//! layer) converts the FHIR JSON of the answer, errors included, with
//! `ember_fhir::xml`; an XML request body is converted to JSON by the body extractors.
//! A JSON request never reaches the conversion.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use ember_fhir::{IssueType, OperationOutcome};
use ember_repo::{Handling, Prefer};
use futures_util::future::{BoxFuture, Either};
use http_body_util::BodyExt;
use tower::{Layer, Service};

use crate::{ApiError, AppState};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const PLAIN_JSON: &str = "application/json; charset=utf-8";
pub const FHIR_XML: &str = "application/fhir+xml; charset=utf-8";
pub const PLAIN_XML: &str = "application/xml; charset=utf-8";

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

/// The format of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON with this `Content-Type`.
    Json(&'static str),
    /// XML with this `Content-Type`.
    Xml(&'static str),
}

/// The negotiated details of a FHIR request.
#[derive(Debug, Clone)]
pub struct Fhir {
    /// The `Content-Type` of the JSON the handler answers with (FHIR JSON when XML was
    /// asked for: [`XmlResponses`] converts it).
    pub content_type: &'static str,
    /// `_pretty=true` (for JSON; XML is indented by the conversion).
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
        let (content_type, xml) = match response_type(accept, format)? {
            Format::Json(t) => (t, false),
            Format::Xml(_) => (FHIR_JSON, true),
        };
        let pretty = !xml && query.iter().any(|(k, v)| k == "_pretty" && v == "true");
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

/// Chooses the response format from `_format` (which wins) or `Accept` (the first
/// acceptable media type in it). R4 names `xml`, `text/xml`, `application/xml` and
/// `application/fhir+xml` as XML; plain `application/xml` and `text/xml` are answered as
/// `application/xml`, as plain JSON is.
fn response_type(accept: Option<&str>, format: Option<&str>) -> Result<Format, ApiError> {
    if let Some(format) = format {
        // A `+` in a query value decodes to a space; undo that for media types.
        let format = format.trim().replace(' ', "+").to_ascii_lowercase();
        let format = format.split(';').next().unwrap_or_default().trim();
        return match format {
            "json" | "application/fhir+json" | "application/json+fhir" => {
                Ok(Format::Json(FHIR_JSON))
            }
            "application/json" | "text/json" => Ok(Format::Json(PLAIN_JSON)),
            "application/xml" | "text/xml" => Ok(Format::Xml(PLAIN_XML)),
            f if XML_TYPES.contains(&f) => Ok(Format::Xml(FHIR_XML)),
            f => Err(ApiError::NotAcceptable(format!(
                "_format={f} is not supported; use _format=json or _format=xml"
            ))),
        };
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Format::Json(FHIR_JSON));
    };
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
            "application/json" | "text/json" => return Ok(Format::Json(PLAIN_JSON)),
            m if JSON_TYPES.contains(&m) || m == "*/*" || m == "application/*" => {
                return Ok(Format::Json(FHIR_JSON));
            }
            "application/xml" | "text/xml" => return Ok(Format::Xml(PLAIN_XML)),
            m if XML_TYPES.contains(&m) => return Ok(Format::Xml(FHIR_XML)),
            _ => {}
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "none of the media types in Accept ({accept}) is supported; use application/fhir+json or application/fhir+xml"
    )))
}

/// The XML `Content-Type` a request asks for, if it does. Requests that do not mention
/// `xml` in `Accept` nor have a `_format` are answered at the cost of two byte scans.
fn xml_asked(headers: &HeaderMap, query: Option<&str>) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT).map(|v| v.as_bytes());
    let mentions_xml = accept.is_some_and(|a| a.windows(3).any(|w| w.eq_ignore_ascii_case(b"xml")));
    let format = query.filter(|q| q.contains("_format="));
    if !mentions_xml && format.is_none() {
        return None;
    }
    let format = format.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "_format")
            .map(|(_, v)| v.into_owned())
    });
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match response_type(accept, format.as_deref()) {
        Ok(Format::Xml(t)) => Some(t),
        _ => None,
    }
}

/// The layer that answers in XML the FHIR requests (under `base_path`) that ask for it:
/// the FHIR JSON of the response, whatever its status, becomes FHIR XML, indented on
/// `_pretty=true`. Other requests go straight to the inner service, with no allocation
/// and no extra future.
#[derive(Clone)]
pub(crate) struct XmlResponses {
    pub base_path: Arc<str>,
}

impl<S> Layer<S> for XmlResponses {
    type Service = XmlService<S>;

    fn layer(&self, inner: S) -> XmlService<S> {
        XmlService {
            inner,
            base_path: self.base_path.clone(),
        }
    }
}

/// The service of [`XmlResponses`].
#[derive(Clone)]
pub(crate) struct XmlService<S> {
    inner: S,
    base_path: Arc<str>,
}

impl<S> Service<Request> for XmlService<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let uri = request.uri();
        let Some(content_type) = xml_asked(request.headers(), uri.query())
            .filter(|_| uri.path().starts_with(&*self.base_path))
        else {
            return Either::Left(self.inner.call(request));
        };
        let pretty = uri.query().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "_pretty" && v == "true")
        });
        let response = self.inner.call(request);
        Either::Right(Box::pin(async move {
            let response = response.await?;
            Ok(xml_response(response, content_type, pretty).await)
        }))
    }
}

/// A response whose body is FHIR JSON, as FHIR XML. Content XML cannot carry as it is
/// (an element the definitions do not know) is a 406 rather than a lossy answer.
async fn xml_response(response: Response, content_type: &'static str, pretty: bool) -> Response {
    let is_fhir_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/fhir+json"));
    if !is_fhir_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let converted = match body.collect().await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes.to_bytes())
            .map_err(|e| e.to_string())
            .and_then(|json| ember_fhir::xml::to_xml(&json, pretty).map_err(|e| e.to_string())),
        Err(e) => Err(e.to_string()),
    };
    let xml = match converted {
        Ok(xml) => xml,
        Err(e) => {
            let outcome = OperationOutcome::error(
                IssueType::NotSupported,
                format!("the response cannot be given as XML ({e}); ask for application/fhir+json"),
            )
            .to_json();
            parts.status = StatusCode::NOT_ACCEPTABLE;
            ember_fhir::xml::to_xml(&outcome, pretty).unwrap_or_default()
        }
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Response::from_parts(parts, Body::from(xml))
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
    /// FHIR XML (`application/fhir+xml`, `application/xml`, `text/xml`).
    FhirXml,
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
        m if XML_TYPES.contains(&m) => Ok(BodyKind::FhirXml),
        m => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {m:?} is not supported; send application/fhir+json or application/fhir+xml"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_json_and_xml() {
        let json = Format::Json(FHIR_JSON);
        assert_eq!(response_type(None, None).unwrap(), json);
        assert_eq!(
            response_type(Some("application/fhir+json"), None).unwrap(),
            json
        );
        assert_eq!(
            response_type(Some("application/json"), None).unwrap(),
            Format::Json(PLAIN_JSON)
        );
        assert_eq!(
            response_type(Some("text/html, */*;q=0.8"), None).unwrap(),
            json
        );
        assert_eq!(
            response_type(Some("application/fhir+xml"), None).unwrap(),
            Format::Xml(FHIR_XML)
        );
        assert_eq!(
            response_type(Some("text/html, application/xml;q=0.9, */*"), None).unwrap(),
            Format::Xml(PLAIN_XML)
        );
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
            json
        );
        assert_eq!(
            response_type(None, Some("application/fhir json")).unwrap(),
            json
        );
        assert_eq!(
            response_type(None, Some("xml")).unwrap(),
            Format::Xml(FHIR_XML)
        );
        assert_eq!(
            response_type(Some("application/json"), Some("application/fhir xml")).unwrap(),
            Format::Xml(FHIR_XML)
        );
        assert_eq!(
            response_type(None, Some("text/xml")).unwrap(),
            Format::Xml(PLAIN_XML)
        );
        assert!(matches!(
            response_type(None, Some("turtle")),
            Err(ApiError::NotAcceptable(_))
        ));
    }

    #[test]
    fn only_requests_that_ask_for_xml_get_it() {
        let mut headers = HeaderMap::new();
        assert_eq!(xml_asked(&headers, None), None);
        assert_eq!(xml_asked(&headers, Some("name=x&_pretty=true")), None);
        assert_eq!(xml_asked(&headers, Some("_format=xml")), Some(FHIR_XML));
        assert_eq!(xml_asked(&headers, Some("_format=json")), None);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/fhir+XML"),
        );
        assert_eq!(xml_asked(&headers, None), Some(FHIR_XML));
        assert_eq!(xml_asked(&headers, Some("_format=json")), None);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/fhir+json, application/xml"),
        );
        assert_eq!(xml_asked(&headers, None), None);
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
