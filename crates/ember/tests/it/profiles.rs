//! Profile validation on both stores, with the R4 package's vital-signs profiles and
//! examples: `$validate` with a `profile` (query or Parameters) and with the profiles a
//! resource claims; writes checked against their `meta.profile` when
//! `Limits::validate_profiles` is on (a 422 with locations, nothing stored, in REST
//! writes, patches and transactions); profiles without a snapshot; and the profile
//! cache following a changed StructureDefinition.

use std::collections::HashMap;
use std::io::Read;

use serde_json::{Value, json};

use crate::common::{TestServer, TestSettings, corpus, expect, expect_outcome};

both_stores!(
    package_examples_conform,
    broken_variants_fail_at_their_location,
    writes_are_checked_when_the_setting_is_on,
    writes_are_not_checked_when_it_is_off,
    a_profile_without_a_snapshot_is_refused,
    a_changed_profile_is_used_at_once,
);

const VITALS: &str = "http://hl7.org/fhir/StructureDefinition/vitalsigns";
const BP: &str = "http://hl7.org/fhir/StructureDefinition/bp";
const HEART_RATE: &str = "http://hl7.org/fhir/StructureDefinition/heartrate";

/// The package's members by file name.
fn package(names: &[&str]) -> HashMap<String, Value> {
    let path = corpus::package_path();
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = HashMap::new();
    for member in archive.entries().expect("read the package") {
        let mut member = member.expect("member");
        let name = member.path().expect("path").display().to_string();
        let Some(file) = name.strip_prefix("package/") else {
            continue;
        };
        if names.contains(&file) {
            let mut text = String::new();
            member.read_to_string(&mut text).expect("read");
            out.insert(file.to_owned(), serde_json::from_str(&text).expect("JSON"));
        }
    }
    assert_eq!(out.len(), names.len(), "{names:?}");
    out
}

const DEFINITIONS: &[&str] = &[
    "StructureDefinition-vitalsigns.json",
    "StructureDefinition-bp.json",
    "StructureDefinition-heartrate.json",
    "StructureDefinition-oxygensat.json",
    "ValueSet-ucum-vitals-common.json",
    "ValueSet-observation-vitalsignresult.json",
];

const EXAMPLES: &[&str] = &[
    "Observation-blood-pressure.json",
    "Observation-blood-pressure-cancel.json",
    "Observation-blood-pressure-dar.json",
    "Observation-bmi.json",
    "Observation-body-height.json",
    "Observation-body-length.json",
    "Observation-body-temperature.json",
    "Observation-head-circumference.json",
    "Observation-heart-rate.json",
    "Observation-respiratory-rate.json",
    "Observation-satO2.json",
    "Observation-vitals-panel.json",
];

fn settings(validate_profiles: bool) -> TestSettings {
    let mut s = corpus::settings();
    s.limits.validate_profiles = validate_profiles;
    s
}

/// Stores the vital-signs profiles and the value sets they bind to.
async fn load_definitions(s: &TestServer) {
    for (_, r) in package(DEFINITIONS) {
        let path = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        let resp = s.put(&path, &r).await;
        assert!(resp.status.is_success(), "{path}: {}", resp.outcome());
    }
}

fn examples() -> HashMap<String, Value> {
    package(EXAMPLES)
}

/// The issues of `$validate` (200) with the profile in the query, if any.
async fn validate(s: &TestServer, resource: &Value, profile: Option<&str>) -> Vec<Value> {
    let path = match profile {
        Some(p) => format!("Observation/$validate?profile={p}"),
        None => "Observation/$validate".to_owned(),
    };
    let resp = s.post(&path, resource).await;
    expect(&resp, 200);
    resp.json()["issue"].as_array().cloned().unwrap_or_default()
}

fn errors(issues: &[Value]) -> Vec<&Value> {
    issues.iter().filter(|i| i["severity"] == "error").collect()
}

/// An error issue at `loc` whose diagnostics contain `needle`.
#[track_caller]
fn has_error(issues: &[Value], loc: &str, needle: &str) {
    assert!(
        errors(issues).iter().any(|i| i["expression"][0] == loc
            && i["diagnostics"]
                .as_str()
                .unwrap_or_default()
                .contains(needle)),
        "no error at {loc} with {needle:?}: {issues:#?}"
    );
}

async fn package_examples_conform(s: &TestServer) {
    let s = &TestServer::start_with(s.backend, settings(false)).await;
    load_definitions(s).await;
    let examples = examples();
    // Each example claims vitalsigns: checked without a parameter.
    for (name, ex) in &examples {
        let issues = validate(s, ex, None).await;
        assert!(errors(&issues).is_empty(), "{name}: {issues:#?}");
    }
    // The specific profiles, in the query and in a Parameters body.
    for (name, url) in [
        ("Observation-blood-pressure.json", BP),
        ("Observation-heart-rate.json", HEART_RATE),
        (
            "Observation-satO2.json",
            "http://hl7.org/fhir/StructureDefinition/oxygensat",
        ),
    ] {
        let issues = validate(s, &examples[name], Some(url)).await;
        assert!(errors(&issues).is_empty(), "{name}: {issues:#?}");
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "resource", "resource": examples[name]},
            {"name": "profile", "valueCanonical": url}]});
        let resp = s.post("Observation/$validate", &body).await;
        expect(&resp, 200);
        assert!(errors(resp.json()["issue"].as_array().unwrap()).is_empty());
    }
    // The heart rate is no blood pressure.
    let issues = validate(s, &examples["Observation-heart-rate.json"], Some(BP)).await;
    has_error(&issues, "Observation.code.coding", "BPCode");
}

async fn broken_variants_fail_at_their_location(s: &TestServer) {
    let s = &TestServer::start_with(s.backend, settings(false)).await;
    load_definitions(s).await;
    let ex = examples();
    let bp = &ex["Observation-blood-pressure.json"];
    let hr = &ex["Observation-heart-rate.json"];

    let mut r = bp.clone();
    r["component"].as_array_mut().unwrap().remove(0);
    has_error(
        &validate(s, &r, Some(BP)).await,
        "Observation.component",
        "SystolicBP",
    );

    let mut r = hr.clone();
    r.as_object_mut().unwrap().remove("subject");
    has_error(
        &validate(s, &r, Some(HEART_RATE)).await,
        "Observation.subject",
        "at least 1",
    );

    let mut r = hr.clone();
    r["valueQuantity"]["code"] = json!("/h");
    has_error(
        &validate(s, &r, Some(HEART_RATE)).await,
        "Observation.valueQuantity.code",
        "/min",
    );

    // Outside the required binding of the component values (the stored value set).
    let mut r = bp.clone();
    r["component"][1]["valueQuantity"]["code"] = json!("mmHg");
    let issues = validate(s, &r, Some(VITALS)).await;
    assert!(
        errors(&issues).iter().any(|i| i["code"] == "code-invalid"
            && i["expression"][0] == "Observation.component[1].valueQuantity"),
        "{issues:#?}"
    );

    let mut r = hr.clone();
    r.as_object_mut().unwrap().remove("valueQuantity");
    let issues = validate(s, &r, Some(VITALS)).await;
    has_error(&issues, "Observation", "vs-2");
    assert!(errors(&issues).iter().any(|i| i["code"] == "invariant"));

    let mut r = hr.clone();
    r.as_object_mut().unwrap().remove("valueQuantity");
    r["valueString"] = json!("fast");
    has_error(
        &validate(s, &r, Some(HEART_RATE)).await,
        "Observation.valueString",
        "string",
    );

    // meta.profile is checked by $validate too.
    let mut r = hr.clone();
    r["meta"]["profile"] = json!([HEART_RATE]);
    r["valueQuantity"]["code"] = json!("/h");
    has_error(
        &validate(s, &r, None).await,
        "Observation.valueQuantity.code",
        "/min",
    );
}

/// The heart-rate example claiming the heart-rate profile, with another id.
fn heart_rate(ex: &HashMap<String, Value>, id: &str) -> Value {
    let mut r = ex["Observation-heart-rate.json"].clone();
    r["id"] = json!(id);
    r["meta"] = json!({"profile": [HEART_RATE]});
    r
}

async fn writes_are_checked_when_the_setting_is_on(s: &TestServer) {
    let s = &TestServer::start_with(s.backend, settings(true)).await;
    load_definitions(s).await;
    let ex = examples();
    expect(
        &s.put("Observation/hr-good", &heart_rate(&ex, "hr-good"))
            .await,
        201,
    );

    // A failing update: a 422 with the location, and nothing stored.
    let mut bad = heart_rate(&ex, "hr-bad");
    bad["valueQuantity"]["code"] = json!("/h");
    let resp = s.put("Observation/hr-bad", &bad).await;
    expect_outcome(&resp, 422);
    let issues = resp.json()["issue"].as_array().cloned().unwrap();
    has_error(&issues, "Observation.valueQuantity.code", "/min");
    expect(&s.get("Observation/hr-bad").await, 404);
    // A create.
    bad.as_object_mut().unwrap().remove("id");
    expect_outcome(&s.post("Observation", &bad).await, 422);

    // A patch that breaks the stored resource.
    let patch = json!([{"op": "replace", "path": "/valueQuantity/code", "value": "/h"}]);
    let resp = s
        .send(
            "PATCH",
            "Observation/hr-good",
            &[("content-type", "application/json-patch+json")],
            Some(&patch.to_string()),
        )
        .await;
    expect_outcome(&resp, 422);
    assert_eq!(
        s.get("Observation/hr-good").await.json()["valueQuantity"]["code"],
        "/min"
    );

    // A transaction entry: the whole transaction fails and stores nothing.
    let mut entry = heart_rate(&ex, "hr-tx");
    entry.as_object_mut().unwrap().remove("subject");
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "tx-p"},
         "request": {"method": "PUT", "url": "Patient/tx-p"}},
        {"resource": entry, "request": {"method": "PUT", "url": "Observation/hr-tx"}}]});
    let resp = s.post(&s.base, &tx).await;
    assert_eq!(resp.status.as_u16(), 422, "{}", resp.outcome());
    expect(&s.get("Patient/tx-p").await, 404);
    expect(&s.get("Observation/hr-tx").await, 404);

    // A profile the server does not hold is not checked on writes.
    let mut unknown = heart_rate(&ex, "hr-unknown");
    unknown["meta"]["profile"] = json!(["http://example.org/StructureDefinition/elsewhere"]);
    unknown["valueQuantity"]["code"] = json!("/h");
    expect(&s.put("Observation/hr-unknown", &unknown).await, 201);
}

async fn writes_are_not_checked_when_it_is_off(s: &TestServer) {
    let s = &TestServer::start_with(s.backend, settings(false)).await;
    load_definitions(s).await;
    let mut bad = heart_rate(&examples(), "hr-off");
    bad["valueQuantity"]["code"] = json!("/h");
    expect(&s.put("Observation/hr-off", &bad).await, 201);
}

pub(crate) fn small_profile(code: &str, snapshot: bool) -> Value {
    let mut sd = json!({"resourceType": "StructureDefinition", "id": "small",
        "url": "http://example.org/StructureDefinition/small", "name": "Small",
        "status": "active", "kind": "resource", "abstract": false, "type": "Observation",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
        "derivation": "constraint",
        "differential": {"element": [{"id": "Observation.status", "path": "Observation.status",
            "fixedCode": code}]}});
    if snapshot {
        sd["snapshot"] = json!({"element": [
            {"id": "Observation", "path": "Observation", "min": 0, "max": "*"},
            {"id": "Observation.status", "path": "Observation.status", "min": 1, "max": "1",
             "type": [{"code": "code"}], "fixedCode": code}]});
    }
    sd
}

pub(crate) fn small_observation(id: &str, status: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": status,
        "meta": {"profile": ["http://example.org/StructureDefinition/small"]},
        "code": {"text": "x"}})
}

async fn a_profile_without_a_snapshot_is_refused(s: &TestServer) {
    let s = &TestServer::start_with(s.backend, settings(true)).await;
    expect(
        &s.put("StructureDefinition/small", &small_profile("final", false))
            .await,
        201,
    );
    let resp = s
        .post(
            "Observation/$validate?profile=http://example.org/StructureDefinition/small",
            &small_observation("a", "final"),
        )
        .await;
    assert!(expect_outcome(&resp, 422).contains("snapshot"));
    let resp = s
        .put("Observation/a", &small_observation("a", "final"))
        .await;
    assert!(expect_outcome(&resp, 422).contains("snapshot"));
    expect(&s.get("Observation/a").await, 404);
    // A snapshot whose first element is not the root cannot be used either.
    let mut broken = small_profile("final", true);
    broken["snapshot"]["element"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    expect(&s.put("StructureDefinition/small", &broken).await, 200);
    let resp = s
        .put("Observation/a", &small_observation("a", "final"))
        .await;
    assert!(expect_outcome(&resp, 422).contains("root"));
    // A profile parameter without a URL, or two profiles, are bad requests.
    let body = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": small_observation("a", "final")},
        {"name": "profile", "valueBoolean": true}]});
    expect_outcome(&s.post("Observation/$validate", &body).await, 400);
    let resp = s
        .post(
            "Observation/$validate?profile=http://a.example/1&profile=http://a.example/2",
            &small_observation("a", "final"),
        )
        .await;
    expect_outcome(&resp, 400);
}

async fn a_changed_profile_is_used_at_once(s: &TestServer) {
    let s = &TestServer::start_with(s.backend, settings(true)).await;
    expect(
        &s.put("StructureDefinition/small", &small_profile("final", true))
            .await,
        201,
    );
    expect(
        &s.put("Observation/a", &small_observation("a", "final"))
            .await,
        201,
    );
    expect_outcome(
        &s.put("Observation/b", &small_observation("b", "amended"))
            .await,
        422,
    );
    expect(
        &s.put("StructureDefinition/small", &small_profile("amended", true))
            .await,
        200,
    );
    expect(
        &s.put("Observation/b", &small_observation("b", "amended"))
            .await,
        201,
    );
    let resp = s
        .put("Observation/a", &small_observation("a", "final"))
        .await;
    let issues = resp.json()["issue"].as_array().cloned().unwrap_or_default();
    expect(&resp, 422);
    has_error(&issues, "Observation.status", "amended");
}
