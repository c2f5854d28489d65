//! The CapabilityStatement, generated from what this server really implements.

use ember_store::Backend;
use serde_json::{Value, json};

/// Interactions every resource type supports. Keep in step with `fhir::routes`;
/// a test checks that each one answers.
pub(crate) const TYPE_INTERACTIONS: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
];

/// When the content of this statement last changed; bump it with the interactions.
const RELEASE_DATE: &str = "2026-11-22";

/// Interactions on the whole system.
pub(crate) const SYSTEM_INTERACTIONS: &[&str] = &["transaction", "batch", "history-system"];

/// The CapabilityStatement of this instance, with `base` as its implementation URL.
pub(crate) fn statement(base: &str, backend: Backend) -> Value {
    let interactions =
        |codes: &[&str]| -> Vec<Value> { codes.iter().map(|c| json!({"code": c})).collect() };
    let resources: Vec<Value> = ember_fhir::resource_types()
        .iter()
        .map(|t| {
            json!({
                "type": t,
                "interaction": interactions(TYPE_INTERACTIONS),
                "versioning": "versioned-update",
                "readHistory": true,
                "updateCreate": true,
                "conditionalCreate": false,
                "conditionalRead": "full-support",
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
            })
        })
        .collect();
    let storage = match backend {
        Backend::Postgres => "PostgreSQL",
        Backend::Sqlite => "embedded SQLite",
    };
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASE_DATE,
        "kind": "instance",
        "software": {"name": "Ember", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": format!("Ember FHIR R4 server ({storage})"), "url": base},
        "fhirVersion": "4.0.1",
        "format": ["json", "application/fhir+json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [{
            "mode": "server",
            "resource": resources,
            "interaction": interactions(SYSTEM_INTERACTIONS),
            "operation": [{
                "name": "validate",
                "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
            }],
        }],
    })
}
