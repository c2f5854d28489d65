//! `ember import` against a test server on both stores: an NDJSON file (with a line
//! that is not JSON and a Patient the server refuses) and a transaction Bundle load in
//! small parallel batches, the two bad lines are the rejects and the exit status is 1;
//! a re-run with the checkpoint writes nothing new and retries only the rejects;
//! `--restart` writes every resource again (a new version each, no duplicate); once
//! the two lines are fixed, a run imports exactly them and exits 0.

use std::path::Path;

use serde_json::{Value, json};

use crate::common::{TempDir, TestServer, run_ember};

both_stores!(import_loads_rejects_and_resumes);

/// A folder of its own with `data/bundles`, removed on drop.
fn data_dir() -> TempDir {
    let dir = TempDir::new("ember-import-it");
    std::fs::create_dir_all(dir.0.join("data/bundles")).expect("temp dir");
    dir
}

/// Runs `ember import --url URL ARGS… data` in `dir`.
async fn import(dir: &Path, url: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["import", "--url", url];
    all.extend(args);
    all.extend(["--batch", "2", "--concurrency", "3", "data"]);
    run_ember(dir, &all).await
}

/// The numbers after `label` on its summary line.
pub fn row(summary: &str, label: &str) -> Vec<u64> {
    summary
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{summary}"))
        .split_whitespace()
        .map_while(|w| w.parse().ok())
        .collect()
}

fn patient(id: &str) -> Value {
    json!({"resourceType": "Patient", "id": id, "gender": "female",
           "name": [{"family": "Import", "given": [id]}]})
}

fn observation(subject: &str) -> Value {
    json!({"resourceType": "Observation", "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "subject": {"reference": subject},
           "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
}

const NDJSON: &str = "data/resources.ndjson";

/// Six lines: two Patients, an Observation, a broken line (4), an Observation without
/// an id, and a Patient whose birthDate the server refuses (6).
fn write_ndjson(dir: &Path, broken: &str, bad_birth_date: &str) {
    let mut o1 = observation("Patient/imp-p1");
    o1["id"] = json!("imp-o1");
    let mut bad = patient("imp-bad");
    bad["birthDate"] = json!(bad_birth_date);
    let lines = [
        patient("imp-p1").to_string(),
        patient("imp-p2").to_string(),
        o1.to_string(),
        broken.to_owned(),
        observation("Patient/imp-p2").to_string(),
        bad.to_string(),
    ];
    std::fs::write(dir.join(NDJSON), lines.join("\n") + "\n").expect("write");
}

fn write_bundle(dir: &Path) {
    let patient_url = "urn:uuid:6f1c1f2e-8d7c-4b36-9d53-1c1d3c7a0a01";
    let mut obs = observation(patient_url);
    obs["id"] = json!("imp-tx-o");
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": patient_url, "resource": patient("imp-tx"),
         "request": {"method": "PUT", "url": "Patient/imp-tx"}},
        {"resource": obs, "request": {"method": "PUT", "url": "Observation/imp-tx-o"}},
    ]});
    std::fs::write(dir.join("data/bundles/patient-tx.json"), bundle.to_string()).expect("write");
}

async fn total(server: &TestServer, query: &str) -> u64 {
    let body = server.get(query).await.json();
    body["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("{query}: {body}"))
}

/// Every version the server holds, from the system history.
async fn versions(server: &TestServer) -> usize {
    let body = server.get("_history?_count=1000").await.json();
    body["entry"].as_array().map_or(0, Vec::len)
}

async fn version_of(server: &TestServer, path: &str) -> String {
    let body = server.get(path).await.json();
    body["meta"]["versionId"]
        .as_str()
        .unwrap_or_else(|| panic!("{path}: {body}"))
        .to_owned()
}

fn rejects(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("import-rejects.ndjson"))
        .expect("the rejects file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// The two bad lines, whatever the order they were found in.
fn assert_two_rejects(dir: &Path) {
    let mut lines = rejects(dir);
    lines.sort_by_key(|l| l["line"].as_u64());
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let (broken, refused) = (&lines[0], &lines[1]);
    assert_eq!(broken["file"], NDJSON);
    assert_eq!(broken["line"], 4);
    assert!(broken.get("status").is_none(), "{broken}");
    assert_eq!(broken["outcome"]["resourceType"], "OperationOutcome");
    let why = broken["outcome"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap();
    assert!(why.starts_with("not valid JSON"), "{why}");
    assert_eq!(refused["file"], NDJSON);
    assert_eq!(refused["line"], 6);
    assert_eq!(refused["resourceType"], "Patient");
    assert_eq!(refused["id"], "imp-bad");
    let status = refused["status"].as_u64().unwrap();
    assert!((400..500).contains(&status), "{refused}");
    let why = refused["outcome"]["issue"][0]["diagnostics"]
        .as_str()
        .unwrap();
    assert!(why.contains("birthDate"), "{why}");
}

async fn import_loads_rejects_and_resumes(server: &TestServer) {
    let dir = data_dir();
    let d = dir.0.as_path();
    write_ndjson(
        d,
        r#"{"resourceType":"Patient","id":"imp-broken""#,
        "not-a-date",
    );
    write_bundle(d);
    let url = server.base.clone();

    // First run: everything but the two bad lines, exit status 1.
    let (code, out, err) = import(d, &url, &[]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(row(&out, "Patient"), [3, 1], "{out}");
    assert_eq!(row(&out, "Observation"), [3, 0], "{out}");
    assert_eq!(row(&out, "(unparsed)"), [0, 1], "{out}");
    assert_eq!(row(&out, "total"), [6, 2], "{out}");
    assert_eq!(row(&out, "skipped (done before)"), [0], "{out}");
    assert!(err.contains("2 resource(s) were rejected"), "{err}");
    assert_two_rejects(d);
    assert_eq!(total(server, "Patient?_summary=count").await, 3);
    assert_eq!(total(server, "Observation?_summary=count").await, 3);
    assert_eq!(server.get("Patient/imp-bad").await.status, 404);
    // The Observation without an id got the UUIDv5 of its line.
    let found = server
        .get("Observation?subject=Patient/imp-p2")
        .await
        .json();
    let derived = found["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let line = observation("Patient/imp-p2").to_string();
    let namespace = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, b"urn:ember:import");
    assert_eq!(
        derived,
        uuid::Uuid::new_v5(&namespace, line.as_bytes()).to_string()
    );
    // The transaction's reference to its Patient's urn:uuid was resolved.
    let tx_obs = server.get("Observation/imp-tx-o").await.json();
    assert_eq!(tx_obs["subject"]["reference"], "Patient/imp-tx");
    let checkpoint: Value = serde_json::from_slice(
        &std::fs::read(d.join("import-checkpoint.json")).expect("the checkpoint"),
    )
    .expect("JSON");
    let files = checkpoint["files"].as_object().expect("files");
    let ndjson = files
        .iter()
        .find(|(k, _)| k.ends_with("resources.ndjson"))
        .expect("the NDJSON file")
        .1;
    assert_eq!(ndjson, &json!({"done": 6, "rejected": "4,6"}));
    assert_eq!(versions(server).await, 6);

    // Again with the checkpoint: nothing new is written, the rejects are tried again.
    let (code, out, err) = import(d, &url, &[]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(row(&out, "total"), [0, 2], "{out}");
    assert_eq!(row(&out, "skipped (done before)"), [6], "{out}");
    assert_two_rejects(d);
    assert_eq!(versions(server).await, 6);
    assert_eq!(version_of(server, "Patient/imp-p1").await, "1");
    assert_eq!(version_of(server, "Observation/imp-tx-o").await, "1");

    // --restart sends everything again: same ids, a new version of each.
    let (code, out, err) = import(d, &url, &["--restart"]).await;
    assert_eq!(code, 1, "{out}\n{err}");
    assert_eq!(row(&out, "total"), [6, 2], "{out}");
    assert_two_rejects(d);
    assert_eq!(total(server, "Patient?_summary=count").await, 3);
    assert_eq!(total(server, "Observation?_summary=count").await, 3);
    assert_eq!(versions(server).await, 12);
    assert_eq!(version_of(server, "Patient/imp-p1").await, "2");
    assert_eq!(
        version_of(server, &format!("Observation/{derived}")).await,
        "2"
    );

    // The two lines fixed in place: the next run imports exactly them and succeeds.
    write_ndjson(d, &patient("imp-fixed").to_string(), "1970-01-01");
    let (code, out, err) = import(d, &url, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(row(&out, "total"), [2, 0], "{out}");
    assert_eq!(row(&out, "skipped (done before)"), [6], "{out}");
    assert!(!d.join("import-rejects.ndjson").exists());
    assert_eq!(total(server, "Patient?_summary=count").await, 5);
    assert_eq!(version_of(server, "Patient/imp-bad").await, "1");
    assert_eq!(versions(server).await, 14);
}
