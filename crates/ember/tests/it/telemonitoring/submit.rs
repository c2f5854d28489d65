//! `$submit-measurement`: rejections with a location and nothing stored, atomic
//! storage, immutability of what was submitted, and plain REST writes left alone.

use serde_json::{Value, json};

use super::*;
use crate::common::{TestServer, expect_outcome};

both_stores!(
    rejections_have_a_location_and_store_nothing,
    submitted_observations_are_immutable,
    plain_rest_writes_are_neither_triaged_nor_immutable,
);

/// Posts a submission that must be rejected with 422 at `location`.
async fn rejected(s: &TestServer, resources: &[Value], location: &str) {
    let r = s.post("$submit-measurement", &submission(resources)).await;
    expect_outcome(&r, 422);
    let outcome = r.json();
    let locations: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["expression"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .collect();
    assert!(locations.contains(&location), "{location} not in {outcome}");
}

async fn count(s: &TestServer, query: &str) -> u64 {
    let r = s
        .get(&format!(
            "{query}{}_summary=count",
            if query.contains('?') { "&" } else { "?" }
        ))
        .await;
    expect(&r, 200);
    r.json()["total"].as_u64().unwrap()
}

async fn rejections_have_a_location_and_store_nothing(s: &TestServer) {
    setup(s).await;
    let good = reading("spo2", "59408-5", 95.0, "%");
    let at = |i: usize, rest: &str| {
        format!("Parameters.parameter[0].resource.entry[{i}].resource{rest}")
    };
    // Each bad entry follows a good one: the good one is not stored either.
    rejected(
        s,
        &[good.clone(), reading("nope", "59408-5", 95.0, "%")],
        &at(1, ".basedOn[0]"),
    )
    .await;
    rejected(
        s,
        &[good.clone(), reading("stopped", "8867-4", 70.0, "/min")],
        &at(1, ".basedOn[0]"),
    )
    .await;
    rejected(
        s,
        &[good.clone(), reading("pulse-other", "8867-4", 70.0, "/min")],
        &at(1, ".basedOn[0]"),
    )
    .await;
    let mut no_system = good.clone();
    no_system["code"]["coding"][0]
        .as_object_mut()
        .unwrap()
        .remove("system");
    rejected(s, &[good.clone(), no_system], &at(1, ".code.coding[0]")).await;
    let mut no_unit = good.clone();
    no_unit["valueQuantity"]
        .as_object_mut()
        .unwrap()
        .remove("code");
    rejected(s, &[good.clone(), no_unit], &at(1, ".valueQuantity")).await;
    rejected(
        s,
        &[
            good.clone(),
            json!({"resourceType": "Patient", "active": true}),
        ],
        &at(1, ".resourceType"),
    )
    .await;
    let mut no_performer = good.clone();
    no_performer.as_object_mut().unwrap().remove("performer");
    rejected(s, &[no_performer], &at(0, ".performer")).await;
    assert_eq!(count(s, "Observation").await, 0);
    assert_eq!(count(s, "Task").await, 0);
    assert_eq!(
        count(s, "Patient").await,
        2,
        "the rejected Patient was not stored"
    );

    // Not a Parameters, or no transaction: 400.
    expect_outcome(&s.post("$submit-measurement", &good).await, 400);
    let batch = json!({"resourceType": "Parameters", "parameter": [{"name": "measurement",
        "resource": {"resourceType": "Bundle", "type": "batch", "entry": []}}]});
    expect_outcome(&s.post("$submit-measurement", &batch).await, 400);
}

async fn submitted_observations_are_immutable(s: &TestServer) {
    setup(s).await;
    let refs = submit(s, &[reading("spo2", "59408-5", 95.0, "%")]).await;
    let reference = &refs[0];
    triaged(s, reference).await;
    let mut obs = s.get(reference).await.json();
    obs["status"] = json!("amended");
    let msg = expect_outcome(&s.put(reference, &obs).await, 422);
    assert!(msg.contains("cannot be changed"), "{msg}");
    let patch = json!([{"op": "replace", "path": "/status", "value": "amended"}]);
    let r = s
        .send(
            "PATCH",
            reference,
            &[("content-type", "application/json-patch+json")],
            Some(&patch.to_string()),
        )
        .await;
    expect_outcome(&r, 422);
    expect_outcome(&s.delete(reference).await, 422);
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": obs, "request": {"method": "PUT", "url": reference}},
    ]});
    expect_outcome(&s.post("", &tx).await, 422);
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "DELETE", "url": reference}},
    ]});
    expect_outcome(&s.post("", &tx).await, 422);
    // Unchanged: still version 1.
    let now = s.get(reference).await.json();
    assert_eq!(now["meta"]["versionId"], "1");
    assert_eq!(now["status"], "final");
}

async fn plain_rest_writes_are_neither_triaged_nor_immutable(s: &TestServer) {
    setup(s).await;
    let r = s
        .post("Observation", &reading("spo2", "59408-5", 80.0, "%"))
        .await;
    expect(&r, 201);
    let created = r.json();
    let reference = format!("Observation/{}", created["id"].as_str().unwrap());
    let mut changed = created.clone();
    changed["status"] = json!("amended");
    expect(&s.put(&reference, &changed).await, 200);
    // Only $submit-measurement may tag a resource as submitted.
    let mut forged = reading("spo2", "59408-5", 80.0, "%");
    forged["meta"] = json!({"tag": [{"system": "http://ember.dev/fhir/CodeSystem/telemonitoring", "code": "submitted"}]});
    let msg = expect_outcome(&s.post("Observation", &forged).await, 422);
    assert!(msg.contains("$submit-measurement"), "{msg}");
    // A submission afterwards is triaged; the plain write never was.
    let refs = submit(s, &[reading("spo2", "59408-5", 95.0, "%")]).await;
    triaged(s, &refs[0]).await;
    assert_eq!(
        count(s, &format!("ClinicalImpression?investigation={reference}")).await,
        0
    );
    let jobs = s.repo.jobs(None, 100).await.unwrap();
    assert_eq!(jobs.iter().filter(|j| j.kind == "triage").count(), 1);
    expect(&s.delete(&reference).await, 204);
}
