//! Reference parameters.

use serde_json::json;

use super::{Checks, obs, put, reference};
use crate::common::TestServer;

both_stores!(reference_search);

async fn reference_search(s: &TestServer) {
    put(s, "Patient", "pa", json!({})).await;
    put(s, "Patient", "pb", json!({})).await;
    put(s, "Group", "g1", json!({"type": "person", "actual": true})).await;
    put(
        s,
        "Observation",
        "o1",
        obs(json!({"subject": reference("Patient/pa")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o2",
        obs(json!({"subject": reference("Patient/pb")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o3",
        obs(json!({"subject": reference("Group/g1")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o4",
        obs(json!({"subject": reference("http://other.example/fhir/Patient/pa")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o5",
        obs(json!({"subject": {"identifier": {"system": "urn:mrn", "value": "M5"}}})),
    )
    .await;
    put(s, "Observation", "o6", obs(json!({}))).await;

    let mut c = Checks::new(s);
    // A relative reference means this server: o4 points at another server's Patient/pa.
    c.ids("Observation?subject=Patient/pa", &["o1"]).await;
    c.ids("Observation?subject=Patient/pb", &["o2"]).await;
    // An id alone: any target type with that id.
    c.ids("Observation?subject=pa", &["o1"]).await;
    c.ids("Observation?subject=g1", &["o3"]).await;
    // :Type.
    c.ids("Observation?subject:Patient=pa", &["o1"]).await;
    c.ids("Observation?subject:Group=g1", &["o3"]).await;
    c.ids("Observation?subject:Group=pa", &[]).await;
    // Absolute URL.
    c.ids(
        "Observation?subject=http://other.example/fhir/Patient/pa",
        &["o4"],
    )
    .await;
    // :identifier.
    c.ids("Observation?subject:identifier=urn:mrn|M5", &["o5"])
        .await;
    c.ids("Observation?subject:identifier=urn:mrn|M6", &[])
        .await;
    // :missing.
    c.ids("Observation?subject:missing=true", &["o6"]).await;
    c.ids(
        "Observation?subject:missing=false",
        &["o1", "o2", "o3", "o4", "o5"],
    )
    .await;
    // OR.
    c.ids("Observation?subject=Patient/pa,Group/g1", &["o1", "o3"])
        .await;
    // patient = subject.where(resolve() is Patient).
    c.ids("Observation?patient=Patient/pb", &["o2"]).await;
    c.ids("Observation?patient=pb", &["o2"]).await;
    c.finish();
}
