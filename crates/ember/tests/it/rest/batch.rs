//! Batch (`POST [base]` with a `batch` Bundle): entries succeed or fail independently; Bundles
//! of other types are refused.

use serde_json::json;

use super::{assert_nothing_stored, entries, id_of_location, put, statuses};
use crate::common::{self, TestServer, expect, expect_outcome};

both_stores!(
    batch_mixed_entries,
    batch_entries_fail_independently,
    bundle_of_other_type_is_400,
);

async fn batch_mixed_entries(s: &TestServer) {
    expect(
        &put(s, "Patient", "keep", json!({"gender": "male"})).await,
        201,
    );
    expect(&put(s, "Patient", "gone", json!({})).await, 201);
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "active": true},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "id": "keep", "gender": "female"},
         "request": {"method": "PUT", "url": "Patient/keep"}},
        {"request": {"method": "GET", "url": "Patient/keep"}},
        {"request": {"method": "DELETE", "url": "Patient/gone"}},
        {"resource": {"resourceType": "Patient", "id": "other"},
         "request": {"method": "PUT", "url": "Patient/bad"}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},
        {"resource": {"resourceType": "Patient", "id": "new-put"},
         "request": {"method": "PUT", "url": "Patient/new-put"}},
    ]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["resourceType"], "Bundle");
    assert_eq!(body["type"], "batch-response");
    let st = statuses(&body);
    assert_eq!(st.len(), 7, "{body}");
    assert_eq!(st[0], "201 Created");
    assert_eq!(st[1], "200 OK");
    assert_eq!(st[2], "200 OK");
    assert!(st[3].starts_with("20"), "{}", st[3]);
    assert!(st[4].starts_with("400"), "{}", st[4]);
    assert!(st[5].starts_with("404"), "{}", st[5]);
    assert_eq!(st[6], "201 Created");
    let e = entries(&body);
    for failed in [&e[4], &e[5]] {
        assert_eq!(
            failed["response"]["outcome"]["resourceType"], "OperationOutcome",
            "{failed}"
        );
    }
    assert_eq!(e[2]["resource"]["id"], "keep");

    // The others were applied.
    let location = e[0]["response"]["location"].as_str().unwrap();
    let created = s
        .get(&format!("Patient/{}", id_of_location(location)))
        .await;
    expect(&created, 200);
    assert_eq!(created.json()["active"], true);
    let keep = s.get("Patient/keep").await;
    assert_eq!(keep.header("etag"), Some("W/\"2\""));
    assert_eq!(keep.json()["gender"], "female");
    expect_outcome(&s.get("Patient/gone").await, 410);
    expect(&s.get("Patient/new-put").await, 200);
    expect_outcome(&s.get("Patient/bad").await, 404);
    expect_outcome(&s.get("Patient/other").await, 404);
}

async fn bundle_of_other_type_is_400(s: &TestServer) {
    for kind in ["collection", "document", "searchset", "history", "message"] {
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"fullUrl": "urn:uuid:0b8a7f4e-0000-4000-8000-000000000009",
             "resource": {"resourceType": "Patient"}}
        ]});
        expect_outcome(&s.post(&s.base, &bundle).await, 400);
    }
    expect_outcome(
        &s.post(&s.base, &json!({"resourceType": "Bundle"})).await,
        400,
    );
    // Not a Bundle at all.
    expect_outcome(
        &s.post(&s.base, &json!({"resourceType": "Patient"})).await,
        400,
    );
    assert_nothing_stored(s).await;
}

async fn batch_entries_fail_independently(s: &TestServer) {
    expect(&put(s, "Patient", "bx", json!({})).await, 201);
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "TRACE", "url": "Patient/bx"}},
        {"resource": {"resourceType": "Patient", "id": "bx", "active": true},
         "request": {"method": "PUT", "url": "Patient/bx", "ifMatch": "W/\"7\""}},
        {"request": {"method": "GET", "url": "Foo/1"}},
        {"resource": {"resourceType": "Observation"},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": "Patient/nobody"}},
        {"resource": {"resourceType": "Patient", "id": "bx", "gender": "female"},
         "request": {"method": "PUT", "url": "Patient/bx", "ifMatch": "W/\"1\""}},
        {"request": {"method": "GET", "url": "Patient/bx/_history/1"}},
    ]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "batch-response");
    let st = statuses(&body);
    assert_eq!(st.len(), 7, "{body}");
    assert!(st[0].starts_with("400"), "{st:?}");
    assert!(st[1].starts_with("412"), "{st:?}");
    assert!(
        st[2].starts_with("400") || st[2].starts_with("404"),
        "{st:?}"
    );
    assert!(st[3].starts_with("400"), "{st:?}");
    assert!(st[4].starts_with("404"), "{st:?}");
    assert_eq!(st[5], "200 OK");
    assert_eq!(st[6], "200 OK");
    let e = entries(&body);
    for (i, failed) in e.iter().take(5).enumerate() {
        assert_eq!(
            failed["response"]["outcome"]["resourceType"], "OperationOutcome",
            "entry {i}: {failed}"
        );
    }
    assert!(e[6]["resource"].get("gender").is_none(), "{}", e[6]);
    let read = s.get("Patient/bx").await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json()["gender"], "female");
}

mod trailing_slash {
    use super::*;

    /// Clients often keep the base URL with a trailing slash; POST [base]/ is the same as POST [base].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transaction_at_base_with_trailing_slash() {
        let s = TestServer::start(common::Backend::Sqlite).await;
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": []});
        let r = s.post("", &bundle).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["type"], "batch-response");
    }
}
