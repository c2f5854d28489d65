//! Reverse chaining (`_has`).

use serde_json::{Value, json};

use super::{Checks, LOINC, coded, put, reference, search, sorted, try_all_ids};
use crate::common::TestServer;

both_stores!(reverse_chaining, reverse_chaining_from_one_reference,);

async fn reverse_chaining(s: &TestServer) {
    for id in ["pa", "pb", "pc"] {
        put(s, "Patient", id, json!({})).await;
    }
    let o = |p: &str, code: &str| json!({"status": "final", "code": coded(LOINC, code), "subject": reference(p)});
    put(s, "Observation", "o1", o("Patient/pa", "8480-6")).await;
    put(s, "Observation", "o2", o("Patient/pb", "29463-7")).await;
    put(s, "Observation", "o3", o("Patient/pa", "29463-7")).await;
    let dr = |status: &str, result: &str| json!({"status": status, "code": {"text": "panel"}, "result": [reference(result)]});
    put(s, "DiagnosticReport", "dr1", dr("final", "Observation/o1")).await;
    put(
        s,
        "DiagnosticReport",
        "dr2",
        dr("preliminary", "Observation/o2"),
    )
    .await;

    let mut c = Checks::new(s);
    c.ids("Patient?_has:Observation:patient:code=8480-6", &["pa"])
        .await;
    c.ids(
        "Patient?_has:Observation:patient:code=29463-7",
        &["pa", "pb"],
    )
    .await;
    c.ids(
        "Patient?_has:Observation:subject:code=http://loinc.org|29463-7",
        &["pa", "pb"],
    )
    .await;
    c.ids("Patient?_has:Observation:patient:code=1234-5", &[])
        .await;
    // AND of two _has: pa has both codes (on different Observations).
    c.ids(
        "Patient?_has:Observation:patient:code=8480-6&_has:Observation:patient:code=29463-7",
        &["pa"],
    )
    .await;
    // OR inside one _has.
    c.ids(
        "Patient?_has:Observation:patient:code=8480-6,29463-7",
        &["pa", "pb"],
    )
    .await;
    // Nested: patients with an Observation that a final DiagnosticReport has as result.
    c.ids(
        "Patient?_has:Observation:patient:_has:DiagnosticReport:result:status=final",
        &["pa"],
    )
    .await;
    c.ids(
        "Patient?_has:Observation:patient:_has:DiagnosticReport:result:status=preliminary",
        &["pb"],
    )
    .await;
    c.ids(
        "Observation?_has:DiagnosticReport:result:status=final",
        &["o1"],
    )
    .await;
    // _has with another parameter.
    c.ids(
        "Patient?_has:Observation:patient:code=29463-7&_id=pb,pc",
        &["pb"],
    )
    .await;
    c.finish();
}

/// `_has` whose own criterion references one document (a clinician's patient list):
/// the search starts from the referencing documents.
async fn reverse_chaining_from_one_reference(s: &TestServer) {
    for id in ["pa", "pb", "pc", "pd"] {
        put(s, "Patient", id, json!({"active": id != "pc"})).await;
    }
    put(s, "Group", "ga", json!({"type": "person", "actual": true})).await;
    put(s, "Practitioner", "dr1", json!({})).await;
    put(s, "Practitioner", "dr2", json!({})).await;
    let team = |subject: &str, members: &[&str]| {
        let participant: Vec<Value> = members
            .iter()
            .map(|m| json!({"member": reference(m)}))
            .collect();
        json!({"subject": reference(subject), "participant": participant})
    };
    put(
        s,
        "CareTeam",
        "t1",
        team("Patient/pa", &["Practitioner/dr1"]),
    )
    .await;
    put(
        s,
        "CareTeam",
        "t2",
        team("Patient/pb", &["Practitioner/dr1", "Practitioner/dr2"]),
    )
    .await;
    put(
        s,
        "CareTeam",
        "t3",
        team("Patient/pc", &["Practitioner/dr1"]),
    )
    .await;
    // Two teams of dr1 for pa: pa is listed once.
    put(
        s,
        "CareTeam",
        "t4",
        team("Patient/pa", &["Practitioner/dr1"]),
    )
    .await;
    // A team of dr1 for a Group: not a Patient.
    put(s, "CareTeam", "t5", team("Group/ga", &["Practitioner/dr1"])).await;
    // A deleted team no longer counts.
    put(
        s,
        "CareTeam",
        "t6",
        team("Patient/pd", &["Practitioner/dr2"]),
    )
    .await;
    let r = s.http.delete("CareTeam/t6").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);

    let mut c = Checks::new(s);
    let q = "Patient?_has:CareTeam:subject:participant=Practitioner/dr1";
    c.ids(q, &["pa", "pb", "pc"]).await;
    c.ids(
        "Patient?_has:CareTeam:subject:participant=Practitioner/dr2",
        &["pb"],
    )
    .await;
    c.ids(
        "Group?_has:CareTeam:subject:participant=Practitioner/dr1",
        &["ga"],
    )
    .await;
    c.ids(
        "Patient?_has:CareTeam:subject:participant=Practitioner/nobody",
        &[],
    )
    .await;
    // With a filter on the patient, an AND of two lists, and a nested _has.
    c.ids(&format!("{q}&active=true"), &["pa", "pb"]).await;
    c.ids(
        &format!("{q}&_has:CareTeam:subject:participant=Practitioner/dr2"),
        &["pb"],
    )
    .await;
    c.ids(
        "Practitioner?_has:CareTeam:participant:subject=Patient/pb",
        &["dr1", "dr2"],
    )
    .await;
    c.ordered(&format!("{q}&_sort=-_id"), &["pc", "pb", "pa"])
        .await;
    c.finish();
    let b = search(s, &format!("{q}&_summary=count")).await;
    assert_eq!(b["total"], 3, "{b}");
    // Paged one at a time: every patient once.
    let all = try_all_ids(s, &format!("{q}&_count=1"))
        .await
        .expect("pages");
    assert_eq!(
        sorted(&all.iter().map(String::as_str).collect::<Vec<_>>()),
        sorted(&["pa", "pb", "pc"])
    );
}
