//! Transaction (`POST [base]` with a `transaction` Bundle): reference rewriting, processing
//! order, all-or-nothing.

use serde_json::{Value, json};

use super::{current_version, entries, history, history_len, id_of_location, put, statuses};
use crate::common::{self, Resp, TestServer, expect, expect_outcome};

both_stores!(
    transaction_rewrites_urn_uuid_references,
    transaction_rewrites_absolute_full_urls,
    transaction_processing_order,
    transaction_stale_if_match_rolls_back,
    transaction_invalid_entry_rolls_back,
    transaction_duplicate_writes_are_400,
    transaction_patch_entry_with_binary,
    transaction_absolute_request_urls_and_versioned_reads,
    transaction_prefer_minimal,
);

async fn transaction(s: &TestServer, entries: Value) -> Resp {
    s.post(
        &s.base,
        &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
    )
    .await
}

async fn transaction_rewrites_urn_uuid_references(s: &TestServer) {
    let patient_urn = "urn:uuid:2b0e2c1e-5b8a-4d5e-9a57-1f1b8c7e0001";
    let put_urn = "urn:uuid:2b0e2c1e-5b8a-4d5e-9a57-1f1b8c7e0002";
    let resp = transaction(
        s,
        json!([
            {"fullUrl": "urn:uuid:2b0e2c1e-5b8a-4d5e-9a57-1f1b8c7e0003",
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": patient_urn},
                          "performer": [{"reference": put_urn}]},
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": patient_urn,
             "resource": {"resourceType": "Patient", "active": true},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": put_urn,
             "resource": {"resourceType": "Patient", "id": "tx-b",
                          "link": [{"other": {"reference": patient_urn}, "type": "seealso"}]},
             "request": {"method": "PUT", "url": "Patient/tx-b"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    assert_eq!(
        statuses(&body),
        ["201 Created", "201 Created", "201 Created"]
    );
    let e = entries(&body);
    let obs_location = e[0]["response"]["location"].as_str().unwrap();
    assert!(obs_location.starts_with("Observation/"), "{obs_location}");
    let patient_location = e[1]["response"]["location"].as_str().unwrap();
    assert!(
        patient_location.starts_with("Patient/"),
        "{patient_location}"
    );
    assert!(
        e[2]["response"]["location"]
            .as_str()
            .unwrap()
            .starts_with("Patient/tx-b/_history/1")
    );
    let patient_id = id_of_location(patient_location);
    assert!(!patient_urn.contains(&patient_id));
    assert_eq!(e[1]["fullUrl"], format!("{}/Patient/{patient_id}", s.base));

    let obs = s
        .get(&format!("Observation/{}", id_of_location(obs_location)))
        .await;
    expect(&obs, 200);
    let obs = obs.json();
    assert_eq!(obs["subject"]["reference"], format!("Patient/{patient_id}"));
    assert_eq!(obs["performer"][0]["reference"], "Patient/tx-b");
    let b = s.get("Patient/tx-b").await.json();
    assert_eq!(
        b["link"][0]["other"]["reference"],
        format!("Patient/{patient_id}")
    );
    expect(&s.get(&format!("Patient/{patient_id}")).await, 200);
    assert_eq!(history_len(s, "_history").await, 3);
}

async fn transaction_rewrites_absolute_full_urls(s: &TestServer) {
    let resp = transaction(
        s,
        json!([
            {"fullUrl": "http://example.org/fhir/Patient/old",
             "resource": {"resourceType": "Patient", "id": "old", "active": true},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "Patient/old"},
                          "performer": [{"reference": "http://example.org/fhir/Patient/old"}],
                          "focus": [{"reference": "Patient/unrelated"}]},
             "request": {"method": "POST", "url": "Observation"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    let e = entries(&body);
    let patient_id = id_of_location(e[0]["response"]["location"].as_str().unwrap());
    assert_ne!(patient_id, "old");
    let obs_id = id_of_location(e[1]["response"]["location"].as_str().unwrap());
    let obs = s.get(&format!("Observation/{obs_id}")).await.json();
    assert_eq!(obs["subject"]["reference"], format!("Patient/{patient_id}"));
    assert_eq!(
        obs["performer"][0]["reference"],
        format!("Patient/{patient_id}")
    );
    assert_eq!(obs["focus"][0]["reference"], "Patient/unrelated");
    expect_outcome(&s.get("Patient/old").await, 404);
}

async fn transaction_processing_order(s: &TestServer) {
    expect(&put(s, "Patient", "a", json!({})).await, 201);
    expect(
        &put(s, "Patient", "b", json!({"gender": "male"})).await,
        201,
    );
    // Reads come first in the request but run after the writes.
    let resp = transaction(
        s,
        json!([
            {"request": {"method": "GET", "url": "Patient/a"}},
            {"request": {"method": "GET", "url": "Patient/b"}},
            {"resource": {"resourceType": "Patient", "id": "b", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient/b"}},
            {"request": {"method": "DELETE", "url": "Patient/a"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    let st = statuses(&body);
    assert!(st[0].starts_with("410"), "{st:?}");
    assert_eq!(st[1], "200 OK");
    assert_eq!(st[2], "200 OK");
    assert!(st[3].starts_with("20"), "{st:?}");
    let e = entries(&body);
    assert_eq!(e[1]["resource"]["gender"], "female");
    assert_eq!(e[1]["resource"]["meta"]["versionId"], "2");
    assert_eq!(e[2]["response"]["etag"], "W/\"2\"");
    expect_outcome(&s.get("Patient/a").await, 410);

    // DELETE runs before POST and PUT: deleting and re-creating in one go is an overlap…
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "b"},
             "request": {"method": "PUT", "url": "Patient/b"}},
            {"request": {"method": "DELETE", "url": "Patient/b"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/b").await, "W/\"2\"");
}

async fn transaction_stale_if_match_rolls_back(s: &TestServer) {
    expect(
        &put(s, "Patient", "x", json!({"gender": "male"})).await,
        201,
    );
    expect(&put(s, "Patient", "y", json!({})).await, 201);
    let before = history_len(s, "_history").await;
    let resp = transaction(
        s,
        json!([
            {"fullUrl": "urn:uuid:0b8a7f4e-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Patient", "active": true},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "tx-new"},
             "request": {"method": "PUT", "url": "Patient/tx-new"}},
            {"request": {"method": "DELETE", "url": "Patient/y"}},
            {"resource": {"resourceType": "Patient", "id": "x", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient/x", "ifMatch": "W/\"5\""}},
        ]),
    )
    .await;
    expect_outcome(&resp, 412);
    assert_eq!(history_len(s, "_history").await, before);
    assert_eq!(history_len(s, "Patient/_history").await, before);
    expect_outcome(&s.get("Patient/tx-new").await, 404);
    expect(&s.get("Patient/y").await, 200);
    let x = s.get("Patient/x").await;
    assert_eq!(x.header("etag"), Some("W/\"1\""));
    assert_eq!(x.json()["gender"], "male");
}

async fn transaction_invalid_entry_rolls_back(s: &TestServer) {
    expect(&put(s, "Patient", "y", json!({})).await, 201);
    for bad in [
        // A POST of the wrong type.
        json!({"resource": {"resourceType": "Observation", "status": "final"},
               "request": {"method": "POST", "url": "Patient"}}),
        // A POST without a resourceType.
        json!({"resource": {"active": true}, "request": {"method": "POST", "url": "Patient"}}),
        // A PUT whose id does not match its URL.
        json!({"resource": {"resourceType": "Patient", "id": "zz"},
               "request": {"method": "PUT", "url": "Patient/tx-zz"}}),
    ] {
        let resp = transaction(
            s,
            json!([
                {"resource": {"resourceType": "Patient", "active": true},
                 "request": {"method": "POST", "url": "Patient"}},
                {"resource": {"resourceType": "Patient", "id": "tx-new2"},
                 "request": {"method": "PUT", "url": "Patient/tx-new2"}},
                {"request": {"method": "DELETE", "url": "Patient/y"}},
                bad,
            ]),
        )
        .await;
        expect_outcome(&resp, 400);
        assert_eq!(history_len(s, "_history").await, 1, "after {bad}");
        expect_outcome(&s.get("Patient/tx-new2").await, 404);
        expect(&s.get("Patient/y").await, 200);
    }
}

async fn transaction_duplicate_writes_are_400(s: &TestServer) {
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "dup", "gender": "male"},
             "request": {"method": "PUT", "url": "Patient/dup"}},
            {"resource": {"resourceType": "Patient", "id": "dup", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient/dup"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    expect_outcome(&s.get("Patient/dup").await, 404);
    expect(&put(s, "Patient", "dup", json!({})).await, 201);
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "dup", "gender": "male"},
             "request": {"method": "PUT", "url": "Patient/dup"}},
            {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                          "data": common::base64(br#"[{"op":"add","path":"/active","value":true}]"#)},
             "request": {"method": "PATCH", "url": "Patient/dup"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/dup").await, "W/\"1\"");
    assert_eq!(history_len(s, "_history").await, 1);
}

async fn transaction_patch_entry_with_binary(s: &TestServer) {
    expect(
        &put(
            s,
            "Patient",
            "pp",
            json!({"active": true, "gender": "male"}),
        )
        .await,
        201,
    );
    let doc = br#"[{"op": "replace", "path": "/active", "value": false}, {"op": "remove", "path": "/gender"}]"#;
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                          "data": common::base64(doc)},
             "request": {"method": "PATCH", "url": "Patient/pp"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    assert_eq!(statuses(&body), ["200 OK"]);
    assert_eq!(entries(&body)[0]["response"]["etag"], "W/\"2\"");
    let read = s.get("Patient/pp").await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    let read = read.json();
    assert_eq!(read["active"], false);
    assert!(read.get("gender").is_none());
    let h = entries(&history(s, "Patient/pp/_history").await);
    assert_eq!(h[0]["request"]["method"], "PATCH");

    // A failing patch (a failed test) fails the transaction with 422.
    let failing = br#"[{"op": "test", "path": "/active", "value": true}]"#;
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "tx-other"},
             "request": {"method": "PUT", "url": "Patient/tx-other"}},
            {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                          "data": common::base64(failing)},
             "request": {"method": "PATCH", "url": "Patient/pp"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 422);
    expect_outcome(&s.get("Patient/tx-other").await, 404);
    assert_eq!(current_version(s, "Patient/pp").await, "W/\"2\"");
}

async fn transaction_absolute_request_urls_and_versioned_reads(s: &TestServer) {
    expect(
        &put(s, "Patient", "ab", json!({"gender": "male"})).await,
        201,
    );
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "ab", "gender": "female"},
             "request": {"method": "PUT", "url": format!("{}/Patient/ab", s.base)}},
            {"request": {"method": "GET", "url": "Patient/ab/_history/1"}},
            {"request": {"method": "GET", "url": format!("{}/Patient/ab", s.base)}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(statuses(&body), ["200 OK", "200 OK", "200 OK"]);
    let e = entries(&body);
    assert_eq!(e[1]["resource"]["gender"], "male");
    assert_eq!(e[1]["resource"]["meta"]["versionId"], "1");
    assert_eq!(e[2]["resource"]["gender"], "female");
    assert_eq!(e[2]["resource"]["meta"]["versionId"], "2");
    // A URL on another server is refused, and nothing is written.
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "ab", "gender": "other"},
             "request": {"method": "PUT", "url": "http://elsewhere.example/fhir/Patient/ab"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/ab").await, "W/\"2\"");
}

async fn transaction_prefer_minimal(s: &TestServer) {
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "active": true},
         "request": {"method": "POST", "url": "Patient"}},
    ]});
    let resp = s
        .send(
            "POST",
            &s.base,
            &[("prefer", "return=minimal")],
            Some(&bundle.to_string()),
        )
        .await;
    expect(&resp, 200);
    let body = resp.json();
    let e = entries(&body);
    assert_eq!(e.len(), 1);
    assert!(e[0].get("resource").is_none(), "{}", e[0]);
    assert_eq!(e[0]["response"]["status"], "201 Created");
    let id = id_of_location(e[0]["response"]["location"].as_str().unwrap());
    expect(&s.get(&format!("Patient/{id}")).await, 200);
}
