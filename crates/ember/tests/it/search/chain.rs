//! Chained parameters (`subject:Patient.name=…`).

use serde_json::json;

use super::{Checks, obs, put, reference};
use crate::common::TestServer;

both_stores!(chaining, chaining_without_type_modifier,);

/// Shared by chaining tests: organizations, practitioners, patients, observations,
/// encounters.
async fn chain_fixture(s: &TestServer) {
    put(
        s,
        "Organization",
        "org1",
        json!({"name": "Northwind Clinic"}),
    )
    .await;
    put(s, "Organization", "org2", json!({"name": "Southgate Care"})).await;
    put(
        s,
        "Practitioner",
        "gp1",
        json!({"name": [{"family": "Holm"}]}),
    )
    .await;
    put(
        s,
        "Practitioner",
        "gp2",
        json!({"name": [{"family": "Dahl"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "pa",
        json!({"name": [{"family": "Rasmussen"}], "managingOrganization": reference("Organization/org1"),
               "generalPractitioner": [reference("Practitioner/gp1")]}),
    )
    .await;
    put(
        s,
        "Patient",
        "pb",
        json!({"name": [{"family": "Madsen"}], "managingOrganization": reference("Organization/org2"),
               "generalPractitioner": [reference("Practitioner/gp2")]}),
    )
    .await;
    put(s, "Patient", "pc", json!({"name": [{"family": "Rask"}]})).await;
    put(
        s,
        "Group",
        "g1",
        json!({"type": "person", "actual": true, "name": "Rasmussen group"}),
    )
    .await;
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
        obs(json!({"subject": reference("Patient/pc")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o4",
        obs(json!({"subject": reference("Group/g1")})),
    )
    .await;
    let enc_body = |p: &str| {
        json!({"status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": reference(p)})
    };
    put(s, "Encounter", "e1", enc_body("Patient/pa")).await;
    put(s, "Encounter", "e2", enc_body("Patient/pb")).await;
    put(s, "Encounter", "e3", enc_body("Patient/pc")).await;
}

async fn chaining(s: &TestServer) {
    chain_fixture(s).await;
    let mut c = Checks::new(s);
    c.ids("Observation?subject:Patient.name=ras", &["o1", "o3"])
        .await; // Rasmussen, Rask
    c.ids("Observation?subject:Patient.name=mad,rask", &["o2", "o3"])
        .await;
    c.ids("Observation?patient.name=mad", &["o2"]).await;
    c.ids("Observation?subject:Patient.family:exact=Rask", &["o3"])
        .await;
    c.ids(
        "Observation?subject:Patient.organization=Organization/org2",
        &["o2"],
    )
    .await;
    c.ids("Observation?subject:Patient._id=pa", &["o1"]).await;
    // Two levels.
    c.ids(
        "Observation?subject:Patient.organization.name=north",
        &["o1"],
    )
    .await;
    c.ids(
        "Observation?subject:Patient.organization.name=south",
        &["o2"],
    )
    .await;
    c.ids("Observation?subject:Patient.organization.name=nowhere", &[])
        .await;
    c.ids(
        "Encounter?subject:Patient.general-practitioner:Practitioner.name=dahl",
        &["e2"],
    )
    .await;
    c.ids(
        "Encounter?subject:Patient.general-practitioner.name=holm",
        &["e1"],
    )
    .await;
    // A chain ANDed with a plain parameter.
    c.ids("Observation?subject:Patient.name=ras&_id=o3", &["o3"])
        .await;
    c.finish();
}

async fn chaining_without_type_modifier(s: &TestServer) {
    chain_fixture(s).await;
    let mut c = Checks::new(s);
    // Encounter.subject is Patient or Group; general-practitioner exists on Patient only,
    // and its name on Practitioner (and Organization).
    c.ids("Encounter?subject.general-practitioner.name=dahl", &["e2"])
        .await;
    c.ids("Encounter?subject.organization.name=north", &["e1"])
        .await;
    c.finish();
}
