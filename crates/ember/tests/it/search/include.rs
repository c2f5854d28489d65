//! `_include` and `_revinclude`, with `:iterate` and `*`.

use std::collections::HashSet;

use serde_json::json;

use super::{Checks, include_refs, match_ids, obs, pages, put, reference, search, sorted, type_id};
use crate::common::TestServer;

both_stores!(include_and_revinclude, include_iterate, include_wildcard,);

async fn include_fixture(s: &TestServer) {
    put(s, "Organization", "org1", json!({"name": "Northwind"})).await;
    put(
        s,
        "Practitioner",
        "pr1",
        json!({"name": [{"family": "Holm"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "pa",
        json!({"managingOrganization": reference("Organization/org1")}),
    )
    .await;
    put(s, "Patient", "pb", json!({})).await;
    put(
        s,
        "Patient",
        "pc",
        json!({"link": [{"other": reference("Patient/pa"), "type": "seealso"}]}),
    )
    .await;
    put(
        s,
        "Observation",
        "o1",
        obs(json!({"subject": reference("Patient/pa"), "performer": [reference("Practitioner/pr1")]})),
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
        obs(json!({"subject": reference("Patient/pa")})),
    )
    .await;
    let mr = |p: &str| {
        json!({"status": "active", "intent": "order", "medicationCodeableConcept": {"text": "drug"},
               "subject": reference(p)})
    };
    put(s, "MedicationRequest", "mr1", mr("Patient/pa")).await;
    put(s, "MedicationRequest", "mr2", mr("Patient/pb")).await;
}

async fn include_and_revinclude(s: &TestServer) {
    include_fixture(s).await;
    let mut c = Checks::new(s);
    c.includes(
        "Observation?_id=o1&_include=Observation:subject",
        &["o1"],
        &["Patient/pa"],
    )
    .await;
    // pa is referenced twice but included once.
    c.includes(
        "Observation?_include=Observation:subject",
        &["o1", "o2", "o3"],
        &["Patient/pa", "Patient/pb"],
    )
    .await;
    c.includes(
        "Observation?_id=o1&_include=Observation:performer:Practitioner",
        &["o1"],
        &["Practitioner/pr1"],
    )
    .await;
    c.includes(
        "Observation?_id=o1&_include=Observation:subject&_include=Observation:performer",
        &["o1"],
        &["Patient/pa", "Practitioner/pr1"],
    )
    .await;
    c.includes(
        "Observation?_id=o2&_include=Observation:performer",
        &["o2"],
        &[],
    )
    .await;
    // Without :iterate, Patient:organization applies to the matches only (MedicationRequests).
    c.includes(
        "MedicationRequest?_id=mr1&_include=MedicationRequest:subject&_include=Patient:organization",
        &["mr1"],
        &["Patient/pa"],
    )
    .await;
    c.includes(
        "Patient?_id=pa&_revinclude=Observation:subject",
        &["pa"],
        &["Observation/o1", "Observation/o3"],
    )
    .await;
    c.includes(
        "Patient?_revinclude=Observation:subject",
        &["pa", "pb", "pc"],
        &["Observation/o1", "Observation/o2", "Observation/o3"],
    )
    .await;
    c.includes(
        "Patient?_id=pa&_revinclude=Observation:subject&_revinclude=MedicationRequest:subject",
        &["pa"],
        &["MedicationRequest/mr1", "Observation/o1", "Observation/o3"],
    )
    .await;
    // _count limits the matches, not the included resources.
    c.includes(
        "Patient?_count=1&_sort=_id&_revinclude=Observation:subject",
        &["pa"],
        &["Observation/o1", "Observation/o3"],
    )
    .await;
    // A resource that is a match is not repeated as an include (pc links to pa).
    c.includes("Patient?_include=Patient:link", &["pa", "pb", "pc"], &[])
        .await;
    c.includes(
        "Patient?_id=pc&_include=Patient:link",
        &["pc"],
        &["Patient/pa"],
    )
    .await;
    c.includes(
        "Patient?_id=pb&_include=Patient:organization&_revinclude=MedicationRequest:subject",
        &["pb"],
        &["MedicationRequest/mr2"],
    )
    .await;
    c.finish();

    // The modes, and no resource twice.
    let b = search(
        s,
        "Observation?_include=Observation:subject&_include=Observation:performer",
    )
    .await;
    let mut seen = HashSet::new();
    for e in b["entry"].as_array().unwrap() {
        let r = type_id(&e["resource"]);
        let mode = e["search"]["mode"].as_str().unwrap();
        let expected = if r.starts_with("Observation/") {
            "match"
        } else {
            "include"
        };
        assert_eq!(mode, expected, "{r}: {e}");
        assert!(seen.insert(r.clone()), "{r} appears twice: {b}");
        assert_eq!(e["fullUrl"], format!("{}/{r}", s.base));
    }
    assert_eq!(seen.len(), 6, "o1-o3, pa, pb, pr1: {b}");

    // Bundle.total counts the matches, not the included resources.
    let b = search(s, "Patient?_revinclude=Observation:subject&_total=accurate").await;
    assert_eq!(b["total"], 3, "{b}");
    let b = search(s, "Observation?_include=Observation:subject&_summary=count").await;
    assert_eq!(b["total"], 3, "{b}");

    // Each page carries the includes of its own matches.
    let ps = pages(
        s,
        "Patient?_sort=_id&_count=1&_revinclude=Observation:subject",
    )
    .await;
    let per_page: Vec<(Vec<String>, Vec<String>)> =
        ps.iter().map(|b| (match_ids(b), include_refs(b))).collect();
    let want = |m: &str, i: &[&str]| (vec![m.to_owned()], sorted(i));
    assert_eq!(
        per_page,
        [
            want("pa", &["Observation/o1", "Observation/o3"]),
            want("pb", &["Observation/o2"]),
            want("pc", &[]),
        ]
    );

    // Deleted resources are neither included nor rev-included.
    assert!(s.delete("Observation/o2").await.status.is_success());
    assert!(s.delete("Patient/pa").await.status.is_success());
    let mut c = Checks::new(s);
    c.includes(
        "Patient?_id=pb&_revinclude=Observation:subject",
        &["pb"],
        &[],
    )
    .await;
    c.includes(
        "MedicationRequest?_id=mr1&_include=MedicationRequest:subject",
        &["mr1"],
        &[],
    )
    .await;
    c.includes(
        "Observation?_include=Observation:subject",
        &["o1", "o3"],
        &[],
    )
    .await;
    c.finish();
}

async fn include_iterate(s: &TestServer) {
    include_fixture(s).await;
    let mut c = Checks::new(s);
    c.includes(
        "MedicationRequest?_id=mr1&_include=MedicationRequest:subject&_include:iterate=Patient:organization",
        &["mr1"],
        &["Organization/org1", "Patient/pa"],
    )
    .await;
    c.includes(
        "MedicationRequest?_include=MedicationRequest:subject&_include:iterate=Patient:organization",
        &["mr1", "mr2"],
        &["Organization/org1", "Patient/pa", "Patient/pb"],
    )
    .await;
    // Reverse, iterated: org1 ← pa ← o1, o3.
    c.includes(
        "Organization?_id=org1&_revinclude=Patient:organization&_revinclude:iterate=Observation:subject",
        &["org1"],
        &["Observation/o1", "Observation/o3", "Patient/pa"],
    )
    .await;
    // Forward then reverse: o2 → pb ← mr2.
    c.includes(
        "Observation?_id=o2&_include=Observation:subject&_revinclude:iterate=MedicationRequest:subject",
        &["o2"],
        &["MedicationRequest/mr2", "Patient/pb"],
    )
    .await;
    c.finish();
}

async fn include_wildcard(s: &TestServer) {
    include_fixture(s).await;
    let mut c = Checks::new(s);
    // Every reference parameter of Observation: subject/patient → pa, performer → pr1.
    c.includes(
        "Observation?_id=o1&_include=*",
        &["o1"],
        &["Patient/pa", "Practitioner/pr1"],
    )
    .await;
    c.includes("Patient?_id=pa&_include=*", &["pa"], &["Organization/org1"])
        .await;
    c.finish();
}
