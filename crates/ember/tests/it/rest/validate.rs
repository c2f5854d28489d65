//! Validation of what is written (422 with locations), `$validate`, and lenient validation.

use serde_json::json;

use super::{current_version, history_len, patch, put};
use crate::common::{self, TestServer, expect, expect_outcome};

both_stores!(
    invalid_resources_are_422_with_locations,
    validate_operation,
    lenient_validation_accepts_unknown_elements,
);

async fn invalid_resources_are_422_with_locations(s: &TestServer) {
    let resp = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "gender": "yes", "foo": 1}),
        )
        .await;
    expect_outcome(&resp, 422);
    let outcome = resp.json();
    let locations: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["expression"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
        })
        .collect();
    assert!(locations.contains(&"Patient.gender"), "{outcome}");
    assert!(locations.contains(&"Patient.foo"), "{outcome}");
    let resp = s
        .put(
            "Observation/o1",
            &json!({"resourceType": "Observation", "id": "o1", "code": {"text": "x"}}),
        )
        .await;
    expect_outcome(&resp, 422);
    assert!(
        resp.json().to_string().contains("Observation.status"),
        "status is required"
    );
    assert_eq!(
        history_len(s, "_history").await,
        0,
        "nothing is stored from a rejected request"
    );
    // A patch that would make the resource invalid is rejected too.
    expect(&put(s, "Patient", "pv", json!({"active": true})).await, 201);
    let doc = r#"[{"op": "add", "path": "/birthDate", "value": "1974-13-01"}]"#;
    expect_outcome(&patch(s, "Patient/pv", doc, &[]).await, 422);
    assert_eq!(current_version(s, "Patient/pv").await, "W/\"1\"");
}

async fn validate_operation(s: &TestServer) {
    let good = json!({"resourceType": "Patient", "gender": "female"});
    let resp = s.post("Patient/$validate", &good).await;
    expect(&resp, 200);
    assert_eq!(
        resp.json()["issue"][0]["severity"],
        "information",
        "{}",
        resp.json()
    );
    let bad = json!({"resourceType": "Patient", "birthDate": "yesterday"});
    let resp = s.post("Patient/$validate", &bad).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["issue"][0]["severity"], "error");
    assert_eq!(
        resp.json()["issue"][0]["expression"][0],
        "Patient.birthDate"
    );
    let wrapped =
        json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": bad}]});
    assert_eq!(
        s.post("Patient/$validate", &wrapped).await.json()["issue"][0]["severity"],
        "error"
    );
    let resp = s
        .post(
            "Patient/p9/$validate",
            &json!({"resourceType": "Patient", "id": "p9"}),
        )
        .await;
    expect(&resp, 200);
    expect_outcome(&s.post("Observation/$validate", &good).await, 400);
    assert_eq!(
        history_len(s, "_history").await,
        0,
        "$validate stores nothing"
    );
    // GET validates what is stored.
    expect(
        &s.put(
            "Patient/v1",
            &json!({"resourceType": "Patient", "id": "v1"}),
        )
        .await,
        201,
    );
    let resp = s.get("Patient/v1/$validate").await;
    expect(&resp, 200);
    assert_eq!(resp.json()["issue"][0]["severity"], "information");
    expect_outcome(&s.get("Patient/nobody/$validate").await, 404);
    // A profile the server does not hold is an error issue, in either form (profiles
    // themselves are in `profiles`).
    let url = "http://example.org/StructureDefinition/nowhere";
    let named = s
        .post(&format!("Patient/$validate?profile={url}"), &good)
        .await;
    expect(&named, 200);
    let issue = &named.json()["issue"][0];
    assert_eq!(issue["severity"], "error", "{issue}");
    assert_eq!(issue["code"], "not-found");
    assert!(issue["diagnostics"].as_str().unwrap().contains(url));
    let in_body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": good}, {"name": "profile", "valueUri": url}]});
    let resp = s.post("Patient/$validate", &in_body).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["issue"][0]["code"], "not-found");
}

async fn lenient_validation_accepts_unknown_elements(s: &TestServer) {
    let mut settings = common::TestSettings::default();
    settings.limits.validation = ember_fhir::validate::Mode::Lenient;
    let lenient = TestServer::start_with(s.backend, settings).await;
    expect(
        &lenient
            .post("Patient", &json!({"resourceType": "Patient", "foo": 1}))
            .await,
        201,
    );
    expect_outcome(
        &lenient
            .post(
                "Patient",
                &json!({"resourceType": "Patient", "active": "yes"}),
            )
            .await,
        422,
    );
}
