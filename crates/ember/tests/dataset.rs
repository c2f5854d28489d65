//! `ember dataset` against a real `ember serve` on PostgreSQL: the generated
//! telemonitoring population loads without errors, reads back under its
//! deterministic ids, and a second run rewrites the same content.

mod common;

use common::{Backend, Process, TestDb};
use serde_json::Value;

async fn run_dataset(url: &str) -> String {
    common::run_ember_ok(&[
        "dataset",
        "--url",
        url,
        "--patients",
        "3",
        "--years",
        "1",
        "--bundle-size",
        "200",
    ])
    .await
}

/// The number after `label` on its report line.
fn reported(text: &str, label: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .and_then(|rest| rest.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}

fn without_meta(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("meta");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataset_loads_and_reruns_idempotently() {
    let db = TestDb::new(Backend::Postgres).await;
    let p = Process::spawn(&db.url, &[]);
    let base = p.http.base.clone();

    let text = run_dataset(&base).await;
    // 1 Practitioner + 3 × (Patient, CareTeam, CarePlan, 4 ServiceRequests) + 3 × 966 Observations.
    let expected = 1 + 3 * 7 + 3 * (365 + 53 + 365 + 183);
    assert_eq!(reported(&text, "resources written"), expected, "{text}");
    assert_eq!(reported(&text, "errors"), 0, "{text}");

    let patient = p.http.get("Patient/dataset-42-pat-0").await;
    assert_eq!(patient.status, 200);
    let patient = patient.json();
    assert_eq!(
        patient["identifier"][0]["system"],
        "urn:oid:1.2.208.176.1.2"
    );
    assert!(
        patient["identifier"][0]["value"]
            .as_str()
            .unwrap()
            .starts_with("DS")
    );

    // Observation k = 0 of a patient is the first day's blood pressure, k = 1 its weight.
    let bp = p.http.get("Observation/dataset-42-obs-2-0").await;
    assert_eq!(bp.status, 200);
    let bp = bp.json();
    assert_eq!(bp["code"]["coding"][0]["code"], "85354-9");
    assert_eq!(bp["component"][0]["code"]["coding"][0]["code"], "8480-6");
    assert_eq!(bp["subject"]["reference"], "Patient/dataset-42-pat-2");
    assert_eq!(
        bp["basedOn"][0]["reference"],
        "ServiceRequest/dataset-42-sr-2-bp"
    );
    let weight = p.http.get("Observation/dataset-42-obs-2-1").await.json();
    assert_eq!(weight["code"]["coding"][0]["code"], "29463-7");
    assert_eq!(weight["valueQuantity"]["code"], "kg");

    // urn:uuid references inside the patient's Bundle were resolved to the real ids.
    let sr = p
        .http
        .get("ServiceRequest/dataset-42-sr-0-spo2")
        .await
        .json();
    assert_eq!(sr["subject"]["reference"], "Patient/dataset-42-pat-0");
    assert_eq!(sr["basedOn"][0]["reference"], "CarePlan/dataset-42-cp-0");
    assert_eq!(
        sr["extension"][0]["url"],
        "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-referenceRange"
    );
    let careplan = p.http.get("CarePlan/dataset-42-cp-0").await.json();
    assert_eq!(
        careplan["careTeam"][0]["reference"],
        "CareTeam/dataset-42-ct-0"
    );

    // A second run writes the same resources again (new versions, same content).
    let again = run_dataset(&base).await;
    assert_eq!(reported(&again, "resources written"), expected, "{again}");
    assert_eq!(reported(&again, "errors"), 0, "{again}");
    let bp_again = p.http.get("Observation/dataset-42-obs-2-0").await.json();
    assert_eq!(bp_again["meta"]["versionId"], "2");
    assert_eq!(without_meta(bp_again), without_meta(bp));
    let sr_again = p
        .http
        .get("ServiceRequest/dataset-42-sr-0-spo2")
        .await
        .json();
    assert_eq!(without_meta(sr_again), without_meta(sr));
    let patient_again = p.http.get("Patient/dataset-42-pat-0").await.json();
    assert_eq!(without_meta(patient_again), without_meta(patient));
}
