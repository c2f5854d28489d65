//! CDS Hooks 2.0 over HTTP: discovery (`GET /cds-services`), service calls
//! (`POST /cds-services/{id}`) and feedback (`POST /cds-services/{id}/feedback`), at the
//! root beside the FHIR base. The services themselves are `ember_cds`; this module
//! checks who calls (`trust`), picks where data that was not prefetched comes from
//! (`source`) and counts cards and outcomes in the metrics.

mod source;
mod trust;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ember_cds::{CdsError, HookRequest, LocalSource};
use ember_repo::RepoError;
use serde_json::Value;

pub use trust::CdsTrust;

use crate::AppState;
use crate::error::{ApiError, Result};

/// The path of the discovery endpoint; services are below it.
pub(crate) const CDS_SERVICES: &str = "/cds-services";

pub(crate) fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(CDS_SERVICES, get(discovery))
        .route("/cds-services/{id}", post(call))
        .route("/cds-services/{id}/feedback", post(feedback))
        .layer(axum::extract::DefaultBodyLimit::max(
            state.settings.max_body_bytes,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            trust::check,
        ))
}

impl From<CdsError> for ApiError {
    fn from(e: CdsError) -> Self {
        match e {
            CdsError::BadRequest(m) => ApiError::BadRequest(m),
            CdsError::UnknownService(_) => ApiError::NotFound(e.to_string()),
            CdsError::Precondition(m) => ApiError::Repo(RepoError::Precondition(m)),
            CdsError::Repo(e) => ApiError::Repo(e),
        }
    }
}

fn json(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

async fn discovery() -> Response {
    json(&ember_cds::discovery())
}

fn parse_body(state: &AppState, body: &Bytes) -> Result<Value> {
    ember_fhir::json::parse_json(body, state.repo.limits().max_json_depth)
        .map_err(|e| ApiError::BadRequest(format!("the request is not valid JSON: {e}")))
}

async fn call(
    State(state): State<AppState>,
    Path(id): Path<String>,
    parts: Parts,
    body: Bytes,
) -> Result<Response> {
    let service = ember_cds::service(&id)?;
    let request = HookRequest::parse(service, &parse_body(&state, &body)?)?;
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let own_base = state.settings.public_url.resolve(&parts.headers, peer);
    let response = match request.fhir_server.as_deref() {
        None => ember_cds::evaluate(service, &request, None).await?,
        Some(server) if server == own_base => {
            let local = LocalSource {
                repo: state.repo.clone(),
                base: own_base.clone(),
            };
            let (source, grants) = source::own(&state, &request, local).await;
            let evaluate = ember_cds::evaluate(service, &request, Some(source.as_ref()));
            match grants {
                Some(grants) => ember_repo::access::with_access(grants, evaluate).await?,
                None => evaluate.await?,
            }
        }
        Some(server) => {
            let remote = source::Remote::new(&state, server, &request);
            ember_cds::evaluate(service, &request, Some(&remote)).await?
        }
    };
    for card in &response.cards {
        state.metrics.cds_card(response.service, card.kind.name());
    }
    let mut answer = json(&response.to_json());
    if let Ok(patient) = request.patient_id() {
        let patient = crate::audit::AuditPatient(patient.to_owned());
        answer.extensions_mut().insert(patient);
    }
    Ok(answer)
}

async fn feedback(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    let service = ember_cds::service(&id)?;
    let body = parse_body(&state, &body)?;
    for r in ember_cds::record_feedback(&state.repo, service, &body).await? {
        state
            .metrics
            .cds_feedback(r.service, r.kind.name(), r.outcome);
    }
    Ok(StatusCode::OK.into_response())
}
