//! The same answers on both stores: one fixture, many queries, SQLite and PostgreSQL
//! compared page by page.

use serde_json::json;

use super::{LOINC, UCUM, coded, put, reference, try_all_ids};
use crate::common::{Backend, TestServer};

async fn load_corpus(s: &TestServer) {
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
    let families = [
        "Hansen",
        "Hänsel",
        "Olsen",
        "Ølund",
        "Jensen",
        "Sørensen",
        "Hansen",
        "Nielsen",
        "Olander",
        "Berg",
        "Hansson",
        "Lund",
    ];
    let givens = ["Ola", "Kari", "Per", "Olga", "Anne", "Lars"];
    for (i, family) in families.iter().enumerate() {
        let mut p = json!({
            "name": [{"family": family, "given": [givens[i % givens.len()]]}],
            "gender": if i == 11 { "unknown" } else if i % 2 == 0 { "female" } else { "male" },
            "birthDate": format!("{}-{:02}-{:02}", 1965 + (i * 7) % 30, 1 + i % 12, 1 + (i * 5) % 28),
            "generalPractitioner": [reference(if i % 2 == 0 { "Practitioner/gp1" } else { "Practitioner/gp2" })],
        });
        match i % 3 {
            0 => p["managingOrganization"] = reference("Organization/org1"),
            1 => p["managingOrganization"] = reference("Organization/org2"),
            _ => {}
        }
        if i % 4 == 0 {
            p["meta"] = json!({"tag": [{"system": "http://ex.org/tags", "code": "vip"}]});
        }
        put(s, "Patient", &format!("cp{i:02}"), p).await;
    }
    let statuses = ["final", "amended", "preliminary", "final"];
    for j in 0..24usize {
        let (code, value) = match j % 3 {
            0 => (
                "8480-6",
                json!({"value": 100 + j * 5, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"}),
            ),
            1 => (
                "29463-7",
                json!({"value": 50 + j, "system": UCUM, "code": "kg", "unit": "kg"}),
            ),
            _ => (
                "8462-4",
                json!({"value": 60 + j, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"}),
            ),
        };
        let mut o = json!({
            "status": statuses[j % 4],
            "code": coded(LOINC, code),
            "subject": reference(&format!("Patient/cp{:02}", j % 12)),
            "valueQuantity": value,
        });
        if j % 5 == 0 {
            o["effectivePeriod"] = json!({"start": format!("{}-{:02}-01", 2019 + j % 4, 1 + j % 12),
                                          "end": format!("{}-12-31", 2019 + j % 4)});
        } else {
            o["effectiveDateTime"] = json!(format!(
                "{}-{:02}-10T08:{:02}:00Z",
                2019 + j % 4,
                1 + j % 12,
                j
            ));
        }
        put(s, "Observation", &format!("co{j:02}"), o).await;
    }
    for k in 0..6 {
        put(
            s,
            "Encounter",
            &format!("ce{k}"),
            json!({"status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "subject": reference(&format!("Patient/cp{:02}", k * 2))}),
        )
        .await;
    }
    for (k, p) in [0.1, 0.35, 0.5, 0.75, 0.9].iter().enumerate() {
        put(
            s,
            "RiskAssessment",
            &format!("cr{k}"),
            json!({"status": "final", "subject": reference(&format!("Patient/cp{k:02}")),
                   "prediction": [{"probabilityDecimal": p}]}),
        )
        .await;
    }
    for (k, url) in [
        "http://acme.org/fhir/ValueSet/1",
        "http://acme.org/fhir/ValueSet/2",
        "http://other.org/ValueSet/3",
    ]
    .iter()
    .enumerate()
    {
        put(
            s,
            "ValueSet",
            &format!("cv{k}"),
            json!({"status": "active", "url": url}),
        )
        .await;
    }
}

const CROSS_QUERIES: &[&str] = &[
    "Patient?family=han",
    "Patient?name=ol",
    "Patient?family:exact=Hansen",
    "Patient?family:contains=sen",
    "Patient?gender=female",
    "Patient?gender:not=female",
    "Patient?birthdate=ge1980&birthdate=lt1990",
    "Patient?birthdate=lt1975",
    "Patient?organization=Organization/org1",
    "Patient?general-practitioner:Practitioner.name=holm",
    "Patient?_has:Observation:patient:code=8480-6",
    "Patient?_tag=http://ex.org/tags|vip",
    "Patient?_id=cp01,cp03,cp05,zz",
    "Patient?_sort=family,-birthdate",
    "Patient?_sort=-birthdate",
    "Patient?gender=male&_sort=given",
    "Observation?code=http://loinc.org|8480-6",
    "Observation?code=http://loinc.org|8480-6&value-quantity=gt130",
    "Observation?value-quantity=lt70|http://unitsofmeasure.org|kg",
    "Observation?date=ge2021-01-01T00:00:00Z",
    "Observation?date=2020",
    "Observation?subject:Patient.name=han",
    "Observation?subject:Patient.organization.name=north",
    "Observation?status=final,amended",
    "Observation?status:not=final",
    "Observation?code-value-quantity=http://loinc.org|8480-6$gt140",
    "Observation?patient=Patient/cp02",
    "Observation?_sort=-date",
    "Observation?_sort=status,date",
    "Encounter?subject:Patient.general-practitioner.name=dahl",
    "RiskAssessment?probability=gt0.5",
    "ValueSet?url:below=http://acme.org/fhir/",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_results_on_both_stores() {
    let lite = TestServer::start(Backend::Sqlite).await;
    let pg = TestServer::start(Backend::Postgres).await;
    load_corpus(&lite).await;
    load_corpus(&pg).await;
    let mut diffs = Vec::new();
    let mut nonempty = 0;
    for q in CROSS_QUERIES {
        // A total order: _id breaks every tie.
        let q = if q.contains("_sort=") {
            format!("{q},_id&_count=7")
        } else {
            format!("{q}&_sort=_id&_count=7")
        };
        let a = try_all_ids(&lite, &q).await;
        let b = try_all_ids(&pg, &q).await;
        match (&a, &b) {
            (Ok(a), Ok(b)) if a == b => {
                if !a.is_empty() {
                    nonempty += 1;
                }
            }
            _ => diffs.push(format!("{q}\n      sqlite   {a:?}\n      postgres {b:?}")),
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} queries differ:\n  {}",
        diffs.len(),
        CROSS_QUERIES.len(),
        diffs.join("\n  ")
    );
    assert!(
        nonempty * 5 >= CROSS_QUERIES.len() * 4,
        "only {nonempty} of {} queries returned anything",
        CROSS_QUERIES.len()
    );
}
