//! Telemonitoring: `$submit-measurement`, triage into ClinicalImpression, Task and
//! Communication with hand-worked expected results, immutability, the worklist and the
//! missing-measurement check, on both stores.

mod exactly_once;
mod missing;
mod questionnaire;
mod submit;
mod triage;
mod worklist;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Http, expect};

pub const LOINC: &str = "http://loinc.org";
pub const UCUM: &str = "http://unitsofmeasure.org";
pub const ZONE: &str = "urn:oid:1.2.208.184.100.1";
pub const THRESHOLD: &str =
    "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-referenceRange";

pub fn q(value: f64, code: &str) -> Value {
    json!({"value": value, "unit": code, "system": UCUM, "code": code})
}

/// A threshold extension: a zone of `kind` (RAL, GAL), optionally for a component.
pub fn zone(kind: &str, low: Option<Value>, high: Option<Value>, component: Option<&str>) -> Value {
    let mut coding = vec![json!({"system": ZONE, "code": kind})];
    if let Some(c) = component {
        coding.push(json!({"system": LOINC, "code": c}));
    }
    let mut parts = vec![json!({"url": "type", "valueCodeableConcept": {"coding": coding}})];
    if let Some(l) = low {
        parts.push(json!({"url": "low", "valueQuantity": l}));
    }
    if let Some(h) = high {
        parts.push(json!({"url": "high", "valueQuantity": h}));
    }
    json!({"url": THRESHOLD, "extension": parts})
}

/// A patient with a care team, a care plan and one order per measure:
/// `spo2` (red ≤ 85, yellow 85–88 %), `pulse` (red ≤ 50 and ≥ 130 /min), `bp` (systolic
/// red ≥ 180, yellow ≥ 150; diastolic red ≥ 110, yellow ≥ 95 mm[Hg]), `bp-kpa` (red
/// ≥ 24, yellow ≥ 20 kPa), `weight` (no zones), `pulse-other` (another patient's order)
/// and `stopped` (a completed order).
pub async fn setup(http: &Http) {
    let order = |id: &str, patient: &str, code: &str, status: &str, zones: Vec<Value>| {
        let mut entry = json!({"resource": {
            "resourceType": "ServiceRequest", "id": id, "status": status, "intent": "order",
            "extension": zones,
            "basedOn": [{"reference": "CarePlan/plan"}],
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "authoredOn": "2020-01-01",
            "occurrenceTiming": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
        }, "request": {"method": "PUT", "url": format!("ServiceRequest/{id}")}});
        if entry["resource"]["extension"] == json!([]) {
            entry["resource"]
                .as_object_mut()
                .unwrap()
                .remove("extension");
        }
        entry
    };
    let put = |r: Value| {
        let url = format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap(),
            r["id"].as_str().unwrap()
        );
        json!({"resource": r, "request": {"method": "PUT", "url": url}})
    };
    let entries = vec![
        put(json!({"resourceType": "Patient", "id": "pat", "active": true})),
        put(json!({"resourceType": "Patient", "id": "other", "active": true})),
        put(json!({"resourceType": "Practitioner", "id": "nurse", "active": true})),
        put(
            json!({"resourceType": "CareTeam", "id": "team", "status": "active",
            "subject": {"reference": "Patient/pat"},
            "participant": [{"member": {"reference": "Practitioner/nurse"}}]}),
        ),
        put(
            json!({"resourceType": "CarePlan", "id": "plan", "status": "active", "intent": "plan",
            "subject": {"reference": "Patient/pat"}, "careTeam": [{"reference": "CareTeam/team"}]}),
        ),
        order(
            "spo2",
            "pat",
            "59408-5",
            "active",
            vec![
                zone("RAL", None, Some(q(85.0, "%")), None),
                zone("GAL", Some(q(85.0, "%")), Some(q(88.0, "%")), None),
            ],
        ),
        order(
            "pulse",
            "pat",
            "8867-4",
            "active",
            vec![
                zone("RAL", None, Some(q(50.0, "/min")), None),
                zone("RAL", Some(q(130.0, "/min")), None, None),
            ],
        ),
        order(
            "bp",
            "pat",
            "85354-9",
            "active",
            vec![
                zone("RAL", Some(q(180.0, "mm[Hg]")), None, Some("8480-6")),
                zone("GAL", Some(q(150.0, "mm[Hg]")), None, Some("8480-6")),
                zone("RAL", Some(q(110.0, "mm[Hg]")), None, Some("8462-4")),
                zone("GAL", Some(q(95.0, "mm[Hg]")), None, Some("8462-4")),
            ],
        ),
        order(
            "bp-kpa",
            "pat",
            "8480-6",
            "active",
            vec![
                zone("RAL", Some(q(24.0, "kPa")), None, None),
                zone("GAL", Some(q(20.0, "kPa")), None, None),
            ],
        ),
        order("weight", "pat", "29463-7", "active", vec![]),
        order("pulse-other", "other", "8867-4", "active", vec![]),
        order("stopped", "pat", "8867-4", "completed", vec![]),
    ];
    let r = http
        .post(
            "",
            &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
        )
        .await;
    expect(&r, 200);
}

/// An Observation answering `order` with a Quantity value.
pub fn reading(order: &str, code: &str, value: f64, unit: &str) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/pat"},
        "basedOn": [{"reference": format!("ServiceRequest/{order}")}],
        "effectiveDateTime": "2026-12-06T08:00:00Z",
        "performer": [{"reference": "Patient/pat"}],
        "valueQuantity": q(value, unit),
    })
}

/// A blood pressure reading (systolic/diastolic components).
pub fn blood_pressure(order: &str, systolic: f64, diastolic: f64, unit: &str) -> Value {
    let mut obs = reading(order, "85354-9", 0.0, unit);
    obs.as_object_mut().unwrap().remove("valueQuantity");
    obs["component"] = json!([
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": q(systolic, unit)},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": q(diastolic, unit)},
    ]);
    obs
}

/// The `$submit-measurement` body for these resources (POST entries).
pub fn submission(resources: &[Value]) -> Value {
    let entries: Vec<Value> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({"fullUrl": format!("urn:uuid:00000000-0000-0000-0000-{i:012}"), "resource": r,
                "request": {"method": "POST", "url": r["resourceType"]}})
        })
        .collect();
    json!({"resourceType": "Parameters", "parameter": [{"name": "measurement",
        "resource": {"resourceType": "Bundle", "type": "transaction", "entry": entries}}]})
}

/// Submits resources; returns the stored references (`Type/id`) in entry order.
pub async fn submit(http: &Http, resources: &[Value]) -> Vec<String> {
    let r = http
        .post("$submit-measurement", &submission(resources))
        .await;
    expect(&r, 200);
    let body = r.json();
    assert_eq!(body["parameter"][0]["name"], "bundle", "{body}");
    let bundle = &body["parameter"][0]["resource"];
    assert_eq!(bundle["type"], "transaction-response");
    bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let loc = e["response"]["location"].as_str().unwrap();
            loc.split("/_history").next().unwrap().to_owned()
        })
        .collect()
}

/// The matches of a search, waiting up to 20 s until there are at least `n`.
pub async fn wait_for(http: &Http, query: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = http.get(query).await;
        expect(&r, 200);
        let found: Vec<Value> = r.json()["entry"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e["resource"].clone())
            .collect();
        if found.len() >= n || Instant::now() > deadline {
            assert!(
                found.len() >= n,
                "{query}: {} of {n} after 20 s",
                found.len()
            );
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The triage of a submitted resource: its ClinicalImpression, Task and, for red and
/// yellow, Communication.
pub struct Triaged {
    pub impression: Value,
    pub task: Value,
    pub notice: Option<Value>,
}

impl Triaged {
    /// The overall colour finding, if any.
    pub fn colour(&self) -> Option<String> {
        self.impression["finding"].as_array()?.iter().find_map(|f| {
            let c = &f["itemCodeableConcept"]["coding"][0];
            (c["system"] == "http://ehealth.sundhed.dk/cs/clinicalimpression-finding-codes")
                .then(|| c["code"].as_str().unwrap().to_owned())
        })
    }

    pub fn category(&self) -> &str {
        self.task["code"]["coding"][0]["code"].as_str().unwrap()
    }

    pub fn priority(&self) -> &str {
        self.task["priority"].as_str().unwrap()
    }

    /// The SNOMED findings (inside/outside the reference interval), in order.
    pub fn snomed(&self) -> Vec<String> {
        self.impression["finding"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| &f["itemCodeableConcept"]["coding"][0])
            .filter(|c| c["system"] == "http://snomed.info/sct")
            .map(|c| c["code"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Waits for the triage of `reference` (`Observation/…`) and reads its results.
pub async fn triaged(http: &Http, reference: &str) -> Triaged {
    let impression = wait_for(
        http,
        &format!("ClinicalImpression?investigation={reference}"),
        1,
    )
    .await;
    assert_eq!(impression.len(), 1, "{reference}: {impression:?}");
    let impression = impression[0].clone();
    let ci = format!("ClinicalImpression/{}", impression["id"].as_str().unwrap());
    let task = wait_for(http, &format!("Task?focus={ci}"), 1).await;
    assert_eq!(task.len(), 1);
    let task = task[0].clone();
    let t = format!("Task/{}", task["id"].as_str().unwrap());
    let r = http.get(&format!("Communication?about={t}")).await;
    let notices = r.json()["entry"].as_array().cloned().unwrap_or_default();
    assert!(notices.len() <= 1);
    Triaged {
        impression,
        task,
        notice: notices.first().map(|e| e["resource"].clone()),
    }
}
