//! `ember dataset` against a real `ember serve` on both stores: the generated
//! telemonitoring population (with its Conditions, Encounters, lab results and a deep
//! patient) loads without errors, every resource type arrives in the counts the dry run
//! announces, it reads back under its deterministic ids, and a second run rewrites the
//! same content.

use serde_json::Value;

use crate::common::{self, Backend, Process, TestDb};

/// Small, so one load takes about a second: 3 patients x 30 days and a deep patient
/// of 200 Observations.
const ARGS: [&str; 8] = [
    "--patients",
    "3",
    "--days",
    "30",
    "--deep",
    "200",
    "--bundle-size",
    "200",
];

async fn run_dataset(url: &str) -> String {
    let mut args = vec!["dataset", "--url", url];
    args.extend(ARGS);
    common::run_ember_ok(&args).await
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

async fn dataset_loads_and_reruns_idempotently(backend: Backend) {
    let db = TestDb::new(backend).await;
    let p = Process::spawn(&db.url, &[]);
    let base = p.http.base.clone();

    let mut dry = vec!["dataset", "--dry-run"];
    dry.extend(ARGS);
    let plan = common::run_ember_ok(&dry).await;
    let expected = reported(&plan, "total ");
    let text = run_dataset(&base).await;
    assert_eq!(reported(&text, "resources written"), expected, "{text}");
    assert_eq!(reported(&text, "errors"), 0, "{text}");
    // Every resource type arrived, as many as announced: 3 + 1 patients with 5
    // ServiceRequests each, 3 x 30 days of about 4.3 home readings plus labs, and the
    // deep patient's 200 Observations.
    for (res_type, at_least) in [
        ("Practitioner", 2),
        ("Patient", 4),
        ("CareTeam", 4),
        ("CarePlan", 4),
        ("ServiceRequest", 20),
        ("Condition", 4),
        ("Encounter", 12),
        ("Observation", 3 * (30 * 4 + 5 + 4) + 200),
    ] {
        let count = reported(&plan, &format!("{res_type:<18} "));
        assert!(count >= at_least, "{res_type}: {count}\n{plan}");
        let total = p
            .http
            .get(&format!("{res_type}?_summary=count"))
            .await
            .json()["total"]
            .clone();
        assert_eq!(total, count, "{res_type}");
    }

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

    // k = 0..3 of a patient are the first morning's blood pressure, SpO2, pulse and weight.
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
    let pulse = p.http.get("Observation/dataset-42-obs-2-2").await.json();
    assert_eq!(pulse["code"]["coding"][0]["code"], "8867-4");
    assert_eq!(pulse["valueQuantity"]["code"], "/min");
    let weight = p.http.get("Observation/dataset-42-obs-2-3").await.json();
    assert_eq!(weight["code"]["coding"][0]["code"], "29463-7");
    assert_eq!(weight["valueQuantity"]["code"], "kg");

    // Lab results, Conditions and Encounters.
    let labs = p
        .http
        .get("Observation?category=laboratory&_count=5")
        .await
        .json();
    let entries = labs["entry"].as_array().expect("lab results");
    assert!(!entries.is_empty(), "{labs}");
    for e in entries {
        let r = &e["resource"];
        assert_eq!(r["category"][0]["coding"][0]["code"], "laboratory");
        assert_eq!(r["code"]["coding"][0]["system"], "http://loinc.org");
        assert!(r["valueQuantity"].is_object() || r["valueCodeableConcept"].is_object());
    }
    let condition = p.http.get("Condition/dataset-42-cond-0-0").await.json();
    assert_eq!(
        condition["code"]["coding"][0]["system"],
        "http://snomed.info/sct"
    );
    assert_eq!(
        condition["subject"]["reference"],
        "Patient/dataset-42-pat-0"
    );
    let encounter = p.http.get("Encounter/dataset-42-enc-0-0").await.json();
    assert_eq!(
        encounter["subject"]["reference"],
        "Patient/dataset-42-pat-0"
    );
    assert!(encounter["class"]["code"].is_string());
    assert!(encounter["period"]["start"].is_string());

    // The deep patient: its own Practitioner, exactly 200 Observations.
    let careteam = p.http.get("CareTeam/dataset-42-ct-deep-200").await.json();
    assert_eq!(
        careteam["participant"][0]["member"]["reference"],
        "Practitioner/dataset-42-prac-deep"
    );
    assert_eq!(
        careteam["subject"]["reference"],
        "Patient/dataset-42-pat-deep-200"
    );
    let deep = p
        .http
        .get("Observation?subject=Patient/dataset-42-pat-deep-200&_summary=count")
        .await
        .json();
    assert_eq!(deep["total"], 200);
    assert_eq!(
        p.http
            .get("Observation/dataset-42-obs-deep-200-199")
            .await
            .status,
        200
    );

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
    let encounter_again = p.http.get("Encounter/dataset-42-enc-0-0").await.json();
    assert_eq!(without_meta(encounter_again), without_meta(encounter));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    dataset_loads_and_reruns_idempotently(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    dataset_loads_and_reruns_idempotently(Backend::Postgres).await;
}

/// `ember dataset --out DIR` writes the same population as NDJSON files, with the
/// references between a patient's resources as `Type/id`; `ember import DIR` loads it
/// into a server where it reads back as the direct load does.
async fn files_import_as_the_direct_load(backend: Backend) {
    let direct_db = TestDb::new(backend).await;
    let direct = Process::spawn(&direct_db.url, &[]);
    run_dataset(&direct.http.base).await;
    let files_db = TestDb::new(backend).await;
    let from_files = Process::spawn(&files_db.url, &[]);
    let dir = common::TempDir::new("ember-dataset-out");
    let out = dir.0.join("data");
    let mut args = vec!["dataset", "--out", out.to_str().unwrap()];
    args.extend(ARGS);
    let text = common::run_ember_ok(&args).await;
    let mut dry = vec!["dataset", "--dry-run"];
    dry.extend(ARGS);
    let expected = reported(&common::run_ember_ok(&dry).await, "total ");
    assert_eq!(reported(&text, "resources written"), expected, "{text}");
    let lines: usize = std::fs::read_dir(&out)
        .unwrap()
        .map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum();
    assert_eq!(lines as u64, expected);
    // Run in the temporary folder, where the checkpoint and rejects files go.
    let (code, imported, err) = common::run_ember(
        &dir.0,
        &[
            "import",
            "--url",
            &from_files.http.base,
            out.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(code, 0, "{imported}\n{err}");
    for res_type in [
        "Practitioner",
        "Patient",
        "CareTeam",
        "CarePlan",
        "ServiceRequest",
        "Condition",
        "Encounter",
        "Observation",
    ] {
        let query = format!("{res_type}?_summary=count");
        let want = direct.http.get(&query).await.json()["total"].clone();
        let got = from_files.http.get(&query).await.json()["total"].clone();
        assert!(want.as_u64().is_some_and(|n| n > 0), "{res_type}: {want}");
        assert_eq!(got, want, "{res_type}");
    }
    for path in [
        "ServiceRequest/dataset-42-sr-0-spo2",
        "CarePlan/dataset-42-cp-0",
        "CareTeam/dataset-42-ct-deep-200",
        "Observation/dataset-42-obs-2-0",
    ] {
        let a = without_meta(direct.http.get(path).await.json());
        let b = without_meta(from_files.http.get(path).await.json());
        assert_eq!(a, b, "{path}");
    }
    // The urn:uuid references were written as ids.
    let sr = from_files
        .http
        .get("ServiceRequest/dataset-42-sr-0-spo2")
        .await
        .json();
    assert_eq!(sr["basedOn"][0]["reference"], "CarePlan/dataset-42-cp-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_sqlite() {
    files_import_as_the_direct_load(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_postgres() {
    files_import_as_the_direct_load(Backend::Postgres).await;
}
