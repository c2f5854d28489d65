//! The index follows writes: updates, deletes and re-creates change what a search finds.

use serde_json::json;

use super::{Checks, body_text, match_ids, obs, put, reference, search};
use crate::common::TestServer;

both_stores!(index_follows_writes);

async fn index_follows_writes(s: &TestServer) {
    put(
        s,
        "Patient",
        "u1",
        json!({"name": [{"family": "Oldname"}], "birthDate": "1970-01-01"}),
    )
    .await;
    put(s, "Patient", "u2", json!({"name": [{"family": "Steady"}]})).await;
    put(
        s,
        "Observation",
        "uo",
        obs(json!({"subject": reference("Patient/u1")})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Patient?family=oldname", &["u1"]).await;
    c.finish();

    // Update: the old values no longer match, the new ones do.
    put(
        s,
        "Patient",
        "u1",
        json!({"name": [{"family": "Newname"}], "birthDate": "1990-01-01"}),
    )
    .await;
    put(
        s,
        "Observation",
        "uo",
        obs(json!({"subject": reference("Patient/u2")})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Patient?family=oldname", &[]).await;
    c.ids("Patient?family=newname", &["u1"]).await;
    c.ids("Patient?birthdate=1970", &[]).await;
    c.ids("Patient?birthdate=1990", &["u1"]).await;
    c.ids("Observation?subject=Patient/u1", &[]).await;
    c.ids("Observation?subject=Patient/u2", &["uo"]).await;
    c.ids("Observation?subject:Patient.family=steady", &["uo"])
        .await;
    c.ids("Patient?_has:Observation:subject:_id=uo", &["u2"])
        .await;
    c.finish();

    // PATCH too.
    let patch = json!([{"op": "replace", "path": "/name/0/family", "value": "Patched"}]);
    let r = s
        .send(
            "PATCH",
            "Patient/u1",
            &[("content-type", "application/json-patch+json")],
            Some(&patch.to_string()),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    let mut c = Checks::new(s);
    c.ids("Patient?family=newname", &[]).await;
    c.ids("Patient?family=patched", &["u1"]).await;
    c.finish();

    // Delete: gone from every parameter.
    let r = s.delete("Patient/u1").await;
    assert!(r.status.is_success(), "{}", body_text(&r));
    let mut c = Checks::new(s);
    c.ids("Patient?family=patched", &[]).await;
    c.ids("Patient?_id=u1", &[]).await;
    c.ids("Patient", &["u2"]).await;
    c.ids("Patient?birthdate=1990", &[]).await;
    c.finish();

    // Re-created after the delete: found again.
    put(s, "Patient", "u1", json!({"name": [{"family": "Reborn"}]})).await;
    let mut c = Checks::new(s);
    c.ids("Patient?family=reborn", &["u1"]).await;
    c.ids("Patient?family=patched", &[]).await;
    c.finish();

    // Writes through a transaction are indexed too.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
         "resource": {"resourceType": "Patient", "name": [{"family": "Transacted"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "tx"},
                      "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": "Patient/u2"}}
    ]});
    let r = s.post("", &tx).await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    let b = search(s, "Patient?family=transacted").await;
    let ids = match_ids(&b);
    assert_eq!(ids.len(), 1, "{b}");
    let obs_b = search(s, &format!("Observation?subject=Patient/{}", ids[0])).await;
    assert_eq!(
        match_ids(&obs_b).len(),
        1,
        "the transaction's Observation: {obs_b}"
    );
    assert!(match_ids(&search(s, "Patient?family=steady").await).is_empty());
    // A chain does not go through a deleted resource (uo still points at Patient/u2).
    let mut c = Checks::new(s);
    c.ids("Observation?subject=Patient/u2", &["uo"]).await;
    c.ids("Observation?subject:Patient.family=steady", &[])
        .await;
    c.ids("Patient?_has:Observation:subject:_id=uo", &[]).await;
    c.finish();
}
