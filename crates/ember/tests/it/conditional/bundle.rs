//! Conditional entries of transaction and batch Bundles: `ifNoneExist`, conditional URLs and
//! conditional references.

use serde_json::{Value, json};

use super::{SYSTEM, bundle, create, criteria, ids, json_patch, patient, versions_stored};
use crate::common::{self, TestServer, expect, expect_outcome};

both_stores!(
    transaction_if_none_exist_creates_once_and_links_references,
    transaction_if_none_exist_with_several_matches_stores_nothing,
    transaction_conditional_urls,
    transaction_conditional_update_creates_without_match,
    transaction_conditional_references,
    transaction_conditional_failures_store_nothing,
    transaction_conditional_delete_overlapping_write_is_400,
    batch_conditional_entries,
);

fn observation_of(subject: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": subject},
    })
}

async fn transaction_if_none_exist_creates_once_and_links_references(s: &TestServer) {
    let entries = json!([
        {"fullUrl": "urn:uuid:3f0b8a4e-0000-4000-8000-000000000001", "resource": patient("tx"),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={SYSTEM}|tx")}},
        {"resource": observation_of("urn:uuid:3f0b8a4e-0000-4000-8000-000000000001"),
         "request": {"method": "POST", "url": "Observation"}},
    ]);
    let resp = bundle(s, "transaction", entries.clone()).await;
    expect(&resp, 200);
    let first = resp.json();
    assert_eq!(first["entry"][0]["response"]["status"], "201 Created");
    let id = first["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        first["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    // Again: the patient exists, so it is not created, and the reference points at it.
    let resp = bundle(s, "transaction", entries).await;
    expect(&resp, 200);
    let second = resp.json();
    assert_eq!(second["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(second["entry"][0]["resource"]["id"], id.as_str());
    assert_eq!(second["entry"][0]["resource"]["meta"]["versionId"], "1");
    assert_eq!(second["entry"][1]["response"]["status"], "201 Created");
    assert_eq!(
        second["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("tx"))).await,
        [id].into()
    );
    assert_eq!(ids(s, "Observation").await.len(), 2);
}

async fn transaction_if_none_exist_with_several_matches_stores_nothing(s: &TestServer) {
    create(s, &patient("dup")).await;
    create(s, &patient("dup")).await;
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": patient("new"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient("dup"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("dup")}},
        ]),
    )
    .await;
    let text = expect_outcome(&resp, 412);
    assert!(text.contains("Bundle.entry[1]"), "{text}");
    assert_eq!(versions_stored(s).await, 2);
    // Two entries that conditionally create with the same criteria: 400.
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": patient("same"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("same")}},
            {"resource": patient("same"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("same")}},
        ]),
    )
    .await;
    let text = expect_outcome(&resp, 400);
    assert!(text.contains("Bundle.entry[1]"), "{text}");
    assert_eq!(versions_stored(s).await, 2);
    // ifNoneExist on another method is a 400.
    let resp = bundle(
        s,
        "transaction",
        json!([{"resource": {"resourceType": "Patient", "id": "x"},
                "request": {"method": "PUT", "url": "Patient/x", "ifNoneExist": criteria("x")}}]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(versions_stored(s).await, 2);
}

async fn transaction_conditional_urls(s: &TestServer) {
    let up = create(s, &patient("up")).await;
    let pa = create(s, &patient("pa")).await;
    let del = create(s, &patient("del")).await;
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    let binary = json!({"resourceType": "Binary", "contentType": "application/json-patch+json",
        "data": common::base64(ops.as_bytes())});
    let mut updated = patient("up");
    updated["gender"] = json!("female");
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": updated, "request": {"method": "PUT", "url": format!("Patient?{}", criteria("up"))}},
            {"resource": binary, "request": {"method": "PATCH", "url": format!("Patient?{}", criteria("pa"))}},
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("del"))}},
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("none"))}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(body["entry"][0]["resource"]["id"], up.as_str());
    assert_eq!(body["entry"][1]["response"]["status"], "200 OK");
    assert_eq!(body["entry"][1]["resource"]["id"], pa.as_str());
    assert_eq!(body["entry"][2]["response"]["status"], "204 No Content");
    assert_eq!(body["entry"][2]["response"]["etag"], "W/\"2\"");
    assert_eq!(body["entry"][3]["response"]["status"], "204 No Content");
    assert_eq!(
        s.get(&format!("Patient/{up}")).await.json()["gender"],
        "female"
    );
    assert_eq!(s.get(&format!("Patient/{pa}")).await.json()["active"], true);
    expect_outcome(&s.get(&format!("Patient/{del}")).await, 410);
    assert_eq!(versions_stored(s).await, 6);
}

async fn transaction_conditional_update_creates_without_match(s: &TestServer) {
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"fullUrl": "urn:uuid:3f0b8a4e-0000-4000-8000-000000000002", "resource": patient("cu"),
             "request": {"method": "PUT", "url": format!("Patient?{}", criteria("cu"))}},
            {"resource": observation_of("urn:uuid:3f0b8a4e-0000-4000-8000-000000000002"),
             "request": {"method": "POST", "url": "Observation"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["entry"][0]["response"]["status"], "201 Created");
    let id = body["entry"][0]["resource"]["id"].as_str().unwrap();
    assert_eq!(
        body["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    // Several matches: 412, nothing stored.
    create(s, &patient("cu")).await;
    let before = versions_stored(s).await;
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": patient("cu"), "request": {"method": "PUT", "url": format!("Patient?{}", criteria("cu"))}},
            {"resource": patient("more"), "request": {"method": "POST", "url": "Patient"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 412);
    assert_eq!(versions_stored(s).await, before);
    // A body id that is not the match's: 400.
    let mut other = patient("one");
    let one = create(s, &patient("one")).await;
    other["id"] = json!(format!("{one}x"));
    let resp = bundle(
        s,
        "transaction",
        json!([{"resource": other, "request": {"method": "PUT", "url": format!("Patient?{}", criteria("one"))}}]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(versions_stored(s).await, before + 1);
}

async fn transaction_conditional_references(s: &TestServer) {
    let id = create(s, &patient("ref")).await;
    let reference = format!("Patient?identifier={SYSTEM}|ref");
    let resp = bundle(
        s,
        "transaction",
        json!([{"resource": observation_of(&reference), "request": {"method": "POST", "url": "Observation"}}]),
    )
    .await;
    expect(&resp, 200);
    let obs = &resp.json()["entry"][0]["resource"];
    assert_eq!(obs["subject"]["reference"], format!("Patient/{id}"));
    let stored = s
        .get(&format!("Observation/{}", obs["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(stored["subject"]["reference"], format!("Patient/{id}"));
    // The reference is searchable as the resolved one.
    assert_eq!(
        ids(s, &format!("Observation?subject=Patient/{id}"))
            .await
            .len(),
        1
    );
    let before = versions_stored(s).await;
    // No match: 400; several: 412; nothing stored either way.
    for (mrn, status) in [("nobody", 400), ("twice", 412)] {
        if mrn == "twice" {
            create(s, &patient("twice")).await;
            create(s, &patient("twice")).await;
        }
        let stored_before = versions_stored(s).await;
        let resp = bundle(
            s,
            "transaction",
            json!([
                {"resource": patient("side"), "request": {"method": "POST", "url": "Patient"}},
                {"resource": observation_of(&format!("Patient?identifier={SYSTEM}|{mrn}")),
                 "request": {"method": "POST", "url": "Observation"}},
            ]),
        )
        .await;
        let text = expect_outcome(&resp, status);
        assert!(text.contains("Bundle.entry[1]"), "{text}");
        assert_eq!(versions_stored(s).await, stored_before);
    }
    assert_eq!(versions_stored(s).await, before + 2);
    // A resource created earlier in the same transaction is found too.
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": observation_of(&format!("Patient?identifier={SYSTEM}|fresh")),
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": "urn:uuid:5a1b8d1e-0000-4000-8000-000000000001",
             "resource": patient("fresh"), "request": {"method": "POST", "url": "Patient"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let entries = resp.json()["entry"].as_array().cloned().unwrap();
    let new_patient = entries[1]["resource"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        entries[0]["resource"]["subject"]["reference"],
        format!("Patient/{new_patient}")
    );
    // One stored and one new match: several, 412.
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": patient("ref"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": observation_of(&reference), "request": {"method": "POST", "url": "Observation"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 412);
}

async fn transaction_conditional_failures_store_nothing(s: &TestServer) {
    create(s, &patient("exists")).await;
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    let binary = json!({"resourceType": "Binary", "contentType": "application/json-patch+json",
        "data": common::base64(ops.as_bytes())});
    let failing = [
        // Conditional patch without a match: 404.
        (
            json!({"resource": binary, "request": {"method": "PATCH", "url": format!("Patient?{}", criteria("none"))}}),
            404,
        ),
        // Unknown criteria: 400.
        (
            json!({"request": {"method": "DELETE", "url": "Patient?nonsense=1"}}),
            400,
        ),
        (
            json!({"resource": patient("x"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": "nonsense=1"}}),
            400,
        ),
        // Empty criteria: 400.
        (
            json!({"request": {"method": "DELETE", "url": "Patient?"}}),
            400,
        ),
    ];
    for (entry, status) in failing {
        let resp = bundle(
            s,
            "transaction",
            json!([
                {"resource": patient("side"), "request": {"method": "POST", "url": "Patient"}},
                {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("exists"))}},
                entry,
            ]),
        )
        .await;
        expect_outcome(&resp, status);
        assert_eq!(versions_stored(s).await, 1, "{resp:?}");
    }
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("exists")))
            .await
            .len(),
        1
    );
}

async fn transaction_conditional_delete_overlapping_write_is_400(s: &TestServer) {
    let id = create(s, &patient("both")).await;
    let mut body = patient("both");
    body["id"] = json!(id);
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("both"))}},
            {"resource": body, "request": {"method": "PUT", "url": format!("Patient/{id}")}},
        ]),
    )
    .await;
    let text = expect_outcome(&resp, 400);
    assert!(text.contains("more than one entry"), "{text}");
    assert_eq!(versions_stored(s).await, 1);
}

async fn batch_conditional_entries(s: &TestServer) {
    let existing = create(s, &patient("b-exists")).await;
    create(s, &patient("b-two")).await;
    create(s, &patient("b-two")).await;
    let resp = bundle(
        s,
        "batch",
        json!([
            {"resource": patient("b-exists"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("b-exists")}},
            {"resource": patient("b-new"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("b-new")}},
            {"resource": patient("b-two"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("b-two")}},
            {"resource": patient("b-put"), "request": {"method": "PUT", "url": format!("Patient?{}", criteria("b-put"))}},
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("b-two"))}},
            {"request": {"method": "DELETE", "url": "Patient?nonsense=1"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    let status = |i: usize| {
        body["entry"][i]["response"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(0), "200 OK");
    assert_eq!(body["entry"][0]["resource"]["id"], existing.as_str());
    assert_eq!(status(1), "201 Created");
    // The DELETE runs first (batch order), so b-two has no match by then.
    assert_eq!(status(2), "201 Created");
    assert_eq!(status(3), "201 Created");
    assert_eq!(status(4), "204 No Content");
    assert_eq!(status(5), "400 Bad Request");
    assert_eq!(
        body["entry"][5]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("b-two")))
            .await
            .len(),
        1
    );
}
