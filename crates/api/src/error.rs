//! Every error response, rendered as an `OperationOutcome` with the right status.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ember_fhir::{IssueType, OperationOutcome};
use ember_repo::RepoError;

use crate::AppState;
use crate::negotiate::FHIR_JSON;

/// The result of a handler or an extractor.
pub(crate) type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Why a request failed.
#[derive(Debug)]
pub enum ApiError {
    /// A domain error; its status and outcome come from the domain.
    Repo(RepoError),
    /// An XML request body that is not FHIR XML (400, with the element's location).
    Xml(ember_fhir::xml::XmlError),
    BadRequest(String),
    NotFound(String),
    /// The caller's token does not allow this.
    Forbidden(String),
    Conflict(String),
    MethodNotAllowed(String),
    NotAcceptable(String),
    PayloadTooLarge(usize),
    UnsupportedMediaType(String),
    NotImplemented(String),
    /// Something Ember depends on (the token issuer) cannot be reached.
    Unavailable(String),
    Timeout,
}

impl From<RepoError> for ApiError {
    fn from(e: RepoError) -> Self {
        ApiError::Repo(e)
    }
}

impl ApiError {
    fn status_and_outcome(&self) -> (StatusCode, OperationOutcome) {
        use ApiError::*;
        let (status, code, text) = match self {
            Repo(e) => {
                let status =
                    StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                return (status, e.outcome());
            }
            Xml(e) => {
                let mut outcome = OperationOutcome::error(IssueType::Structure, e.to_string());
                outcome.issues[0].expression.extend(e.path.clone());
                return (StatusCode::BAD_REQUEST, outcome);
            }
            BadRequest(m) => (StatusCode::BAD_REQUEST, IssueType::Invalid, m.clone()),
            NotFound(m) => (StatusCode::NOT_FOUND, IssueType::NotFound, m.clone()),
            Forbidden(m) => (StatusCode::FORBIDDEN, IssueType::Forbidden, m.clone()),
            Conflict(m) => (StatusCode::CONFLICT, IssueType::Conflict, m.clone()),
            MethodNotAllowed(m) => (
                StatusCode::METHOD_NOT_ALLOWED,
                IssueType::NotSupported,
                m.clone(),
            ),
            NotAcceptable(m) => (
                StatusCode::NOT_ACCEPTABLE,
                IssueType::NotSupported,
                m.clone(),
            ),
            PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                IssueType::TooLong,
                format!(
                    "the request body is larger than the limit of {limit} bytes (EMBER_MAX_BODY_BYTES)"
                ),
            ),
            UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                IssueType::NotSupported,
                m.clone(),
            ),
            NotImplemented(m) => (
                StatusCode::NOT_IMPLEMENTED,
                IssueType::NotSupported,
                m.clone(),
            ),
            Unavailable(m) => (
                StatusCode::SERVICE_UNAVAILABLE,
                IssueType::Transient,
                m.clone(),
            ),
            Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                IssueType::Timeout,
                "the request took too long".into(),
            ),
        };
        (status, OperationOutcome::error(code, text))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, outcome) = self.status_and_outcome();
        if status.is_server_error() {
            match &self {
                ApiError::Repo(e) => {
                    tracing::error!(status = status.as_u16(), error = %e, "request failed")
                }
                other => {
                    tracing::error!(status = status.as_u16(), error = ?other, "request failed")
                }
            }
        }
        outcome_response(status, &outcome)
    }
}

/// An `OperationOutcome` response with the given status.
pub(crate) fn outcome_response(status: StatusCode, outcome: &OperationOutcome) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, FHIR_JSON)],
        outcome.to_json().to_string(),
    )
        .into_response()
}

/// The response for any path that no route matches.
pub(crate) async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!("no FHIR endpoint at {}", request.uri().path()))
}

/// The response for a known path with a method it does not allow; a 404 naming the
/// operation when the path ends in one Ember does not have (`Patient/$foo`).
pub(crate) async fn method_not_allowed(request: Request) -> ApiError {
    let last = request.uri().path().rsplit('/').next().unwrap_or_default();
    if last.starts_with('$') {
        return crate::path::unknown_operation(last);
    }
    ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}",
        request.method(),
        request.uri().path()
    ))
}

/// The response when a handler panics: a 500 with an OperationOutcome, never a dropped connection.
pub(crate) fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    outcome_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &OperationOutcome::error(IssueType::Exception, "an internal error occurred"),
    )
}

/// Bounds every request's time.
pub(crate) async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(state.settings.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}
