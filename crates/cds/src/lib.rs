//! CDS Hooks 2.0 services over Ember's telemonitoring data: what a clinician's own
//! system shows when a telemonitored patient is opened, an order is signed or an
//! appointment is booked. Knows nothing of HTTP: `api` parses nothing here but the
//! transport, hands the hook request to [`evaluate`] with a [`Source`] for data that
//! was not prefetched, and renders the [`Response`].

pub mod card;
mod feedback;
mod hook;
mod local;
mod order_check;
mod patient_view;
mod prefetch;
mod replay;
mod text;

pub use card::{Card, Kind, Response};
pub use feedback::{Recorded, record_feedback};
pub use hook::{FhirAuthorization, HookRequest};
pub use local::LocalSource;
pub use prefetch::Source;
pub use replay::admit_once;

use serde_json::{Value, json};

/// Why a CDS Hooks call fails.
#[derive(Debug, thiserror::Error)]
pub enum CdsError {
    /// The request is not a valid call of this service (400).
    #[error("{0}")]
    BadRequest(String),
    /// No service has this id (404).
    #[error("no CDS service {0:?}")]
    UnknownService(String),
    /// Data the service needs was neither prefetched nor fetchable (412).
    #[error("{0}")]
    Precondition(String),
    #[error(transparent)]
    Repo(#[from] ember_repo::RepoError),
}

impl CdsError {
    /// The HTTP status of this error.
    pub fn status(&self) -> u16 {
        match self {
            CdsError::BadRequest(_) => 400,
            CdsError::UnknownService(_) => 404,
            CdsError::Precondition(_) => 412,
            CdsError::Repo(e) => e.status(),
        }
    }
}

/// One CDS service.
#[derive(Debug)]
pub struct Service {
    pub id: &'static str,
    pub hook: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    /// Prefetch templates: key and FHIR query, with the specification's tokens only.
    pub prefetch: &'static [(&'static str, &'static str)],
}

/// The open follow-up Tasks of the patient with their triage results and the
/// measurements those name.
const OPEN_TASKS: &str = "Task?patient={{context.patientId}}\
    &status=requested,received,accepted,ready,in-progress,on-hold\
    &_include=Task:focus&_include:iterate=ClinicalImpression:investigation&_count=200";

/// The patient's active orders.
const ACTIVE_ORDERS: &str = "ServiceRequest?patient={{context.patientId}}&status=active&_count=200";

/// Every service Ember offers, in discovery order.
pub const SERVICES: [Service; 3] = [
    Service {
        id: "telemonitoring-summary",
        hook: "patient-view",
        title: "Telemonitoring results awaiting a decision",
        description: "Red and yellow home measurements whose follow-up is still open, and \
                      missed measurements, most urgent first.",
        prefetch: &[("tasks", OPEN_TASKS)],
    },
    Service {
        id: "telemonitoring-order-check",
        hook: "order-sign",
        title: "Telemonitoring order check",
        description: "Warns when a telemonitoring order has no alarm thresholds, thresholds \
                      that contradict each other or a unit that does not fit the \
                      measurement, or duplicates an active order.",
        prefetch: &[("orders", ACTIVE_ORDERS)],
    },
    Service {
        id: "telemonitoring-appointment-check",
        hook: "appointment-book",
        title: "Telemonitoring appointment check",
        description: "Warns when the patient has red home measurements still awaiting a \
                      decision, so the patient should be seen sooner.",
        prefetch: &[("tasks", OPEN_TASKS)],
    },
];

/// The service with this id.
pub fn service(id: &str) -> Result<&'static Service, CdsError> {
    SERVICES
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| CdsError::UnknownService(id.to_owned()))
}

/// The discovery document (`GET /cds-services`).
pub fn discovery() -> Value {
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            let prefetch: serde_json::Map<String, Value> = s
                .prefetch
                .iter()
                .map(|(k, q)| ((*k).to_owned(), Value::from(*q)))
                .collect();
            json!({
                "hook": s.hook,
                "id": s.id,
                "title": s.title,
                "description": s.description,
                "prefetch": prefetch,
            })
        })
        .collect();
    json!({ "services": services })
}

/// Runs one call of `service`: the data it needs from the prefetch, or else from
/// `source`, then its cards.
pub async fn evaluate(
    service: &'static Service,
    request: &HookRequest,
    source: Option<&dyn Source>,
) -> Result<Response, CdsError> {
    let data = prefetch::resolve(service, request, source).await?;
    let cards = match service.id {
        "telemonitoring-summary" => patient_view::summary(request, &data),
        "telemonitoring-order-check" => order_check::check(request, &data)?,
        _ => patient_view::appointment_check(request, &data)?,
    };
    Ok(Response::new(service, cards))
}

#[cfg(test)]
mod tests;
