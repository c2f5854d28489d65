//! Batch (`POST [base]` with a `batch` Bundle): entries succeed or fail independently, and a
//! search entry answers with the searchset of the search itself; Bundles
//! of other types are refused.

use serde_json::json;

use super::{assert_nothing_stored, entries, id_of_location, put, statuses};
use crate::common::{self, TestServer, expect, expect_outcome};

both_stores!(
    batch_mixed_entries,
    batch_entries_fail_independently,
    batch_writes_together_answer_as_alone,
    bundle_of_other_type_is_400,
    searches_in_a_batch_answer_as_the_search_itself,
    searches_in_a_transaction_see_its_writes,
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

/// A batch's plain creates and updates share one commit; what they store and answer is
/// what each would alone, and when one of them is refused at commit the others still
/// succeed on their own.
async fn batch_writes_together_answer_as_alone(s: &TestServer) {
    expect(
        &put(s, "Patient", "bq", json!({"gender": "male"})).await,
        201,
    );
    let obs = |code: &str| {
        json!({"resource": {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": "Patient/bp"}},
         "request": {"method": "POST", "url": "Observation"}})
    };
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        obs("1-1"), obs("1-1"), obs("2-2"),
        {"resource": {"resourceType": "Patient", "id": "bp"},
         "request": {"method": "PUT", "url": "Patient/bp"}},
        {"resource": {"resourceType": "Patient", "id": "bq", "gender": "female"},
         "request": {"method": "PUT", "url": "Patient/bq"}},
    ]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let st = statuses(&resp.json());
    assert_eq!(
        st,
        [
            "201 Created",
            "201 Created",
            "201 Created",
            "201 Created",
            "200 OK"
        ]
    );
    let found = s
        .get("Observation?subject=Patient/bp&code=http://loinc.org|1-1")
        .await;
    expect(&found, 200);
    assert_eq!(found.json()["entry"].as_array().map(Vec::len), Some(2));
    let counted = s
        .get("Observation?code=http://loinc.org|1-1&_summary=count")
        .await;
    assert_eq!(counted.json()["total"], 2);
    let bq = s.get("Patient/bq").await;
    assert_eq!(bq.header("etag"), Some("W/\"2\""));
    assert_eq!(bq.json()["gender"], "female");
    expect(&s.get("Patient/bp").await, 200);

    // Only $submit-measurement may set this tag: the rule refuses it at commit, which
    // fails the shared commit; the other entries then run, and succeed, on their own.
    let tagged = json!({"resource": {"resourceType": "Observation", "status": "final",
            "meta": {"tag": [{"system": "http://ember.dev/fhir/CodeSystem/telemonitoring",
                              "code": "submitted"}]},
            "code": {"coding": [{"system": "http://loinc.org", "code": "3-3"}]}},
         "request": {"method": "POST", "url": "Observation"}});
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        obs("4-4"),
        tagged,
        {"resource": {"resourceType": "Patient", "id": "bz"},
         "request": {"method": "PUT", "url": "Patient/bz"}},
    ]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let st = statuses(&resp.json());
    assert_eq!(st[0], "201 Created");
    assert!(st[1].starts_with("422"), "{st:?}");
    assert_eq!(st[2], "201 Created");
    let refused = s.get("Observation?code=http://loinc.org|3-3").await;
    assert_eq!(refused.json()["entry"].as_array().map(Vec::len), None);
    let kept = s.get("Observation?code=http://loinc.org|4-4").await;
    assert_eq!(kept.json()["entry"].as_array().map(Vec::len), Some(1));
    expect(&s.get("Patient/bz").await, 200);
}

/// The ids of a searchset's `match` entries, and its `total`.
fn matches(searchset: &serde_json::Value) -> (Vec<String>, serde_json::Value) {
    assert_eq!(searchset["type"], "searchset", "{searchset}");
    let ids = entries(searchset)
        .iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| {
            let r = &e["resource"];
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    (ids, searchset["total"].clone())
}

async fn searches_in_a_batch_answer_as_the_search_itself(s: &TestServer) {
    expect(
        &put(s, "Patient", "bs1", json!({"name": [{"family": "Holm"}]})).await,
        201,
    );
    expect(
        &put(s, "Patient", "bs2", json!({"name": [{"family": "Berg"}]})).await,
        201,
    );
    for (id, patient, code) in [
        ("bo1", "bs1", "8867-4"),
        ("bo2", "bs2", "8867-4"),
        ("bo3", "bs1", "59408-5"),
    ] {
        let obs = json!({"status": "final", "subject": {"reference": format!("Patient/{patient}")},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}});
        expect(&put(s, "Observation", id, obs).await, 201);
    }
    let urls = [
        "Patient?family=Holm",
        "Patient?_total=accurate",
        "?_type=Patient,Observation&_id=bs2,bo3",
        "Patient/bs1/Observation?code=http://loinc.org%7C8867-4",
        "Observation?subject=Patient/bs1&_sort=-_id&_count=1",
    ];
    let mut requests: Vec<_> = urls
        .iter()
        .map(|u| json!({"request": {"method": "GET", "url": u}}))
        .collect();
    requests.push(json!({"request": {"method": "GET", "url": "Observation?date=not-a-date"}}));
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": requests});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let body = resp.json();
    let st = statuses(&body);
    let e = entries(&body);
    let expected: [&[&str]; 5] = [
        &["Patient/bs1"],
        &["Patient/bs1", "Patient/bs2"],
        &["Patient/bs2", "Observation/bo3"],
        &["Observation/bo1"],
        &["Observation/bo3"],
    ];
    for (i, url) in urls.iter().enumerate() {
        assert_eq!(st[i], "200 OK", "{url}: {}", e[i]);
        let (mut ids, total) = matches(&e[i]["resource"]);
        let direct = s.get(url).await;
        expect(&direct, 200);
        let (mut direct_ids, direct_total) = matches(&direct.json());
        assert_eq!(ids, direct_ids, "{url}");
        assert_eq!(total, direct_total, "{url}");
        ids.sort();
        direct_ids.sort();
        let mut want: Vec<String> = expected[i].iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(ids, want, "{url}");
        // The links are those of the search at its own endpoint.
        let link = &e[i]["resource"]["link"][0];
        assert_eq!(link["relation"], "self", "{url}");
        assert!(
            link["url"].as_str().unwrap().starts_with(&s.base),
            "{url}: {link}"
        );
    }
    assert_eq!(e[1]["resource"]["total"], 2);
    // A search the server refuses fails its entry alone, as it would on its own.
    let direct = s.get("Observation?date=not-a-date").await;
    assert!(
        st[5].starts_with(&direct.status.as_u16().to_string()),
        "{} vs {}",
        st[5],
        direct.status
    );
    assert!(st[5].starts_with('4'), "{}", st[5]);
    assert_eq!(
        e[5]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
}

async fn searches_in_a_transaction_see_its_writes(s: &TestServer) {
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "GET", "url": "Patient?family=Nygaard"}},
        {"fullUrl": "urn:uuid:6d1f7a52-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "name": [{"family": "Nygaard"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient"}},
    ]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    let st = statuses(&body);
    assert_eq!(st, ["200 OK", "201 Created", "200 OK"], "{body}");
    let e = entries(&body);
    let created = id_of_location(e[1]["response"]["location"].as_str().unwrap());
    // GETs run after the writes, wherever they stand in the Bundle.
    let (ids, _) = matches(&e[0]["resource"]);
    assert_eq!(ids, [format!("Patient/{created}")]);
    let (ids, _) = matches(&e[2]["resource"]);
    assert_eq!(ids, [format!("Patient/{created}")]);
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
