//! Update (`PUT [type]/[id]`): versions, create on update, `If-Match`, concurrent updates.

use std::collections::BTreeSet;

use serde_json::json;

use super::{assert_nothing_stored, create, current_version, history_len, put};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    update_makes_new_version,
    update_creates_with_client_id,
    update_after_delete_recreates,
    update_if_match,
    update_rejects_body_that_does_not_match_url,
    concurrent_updates_all_land,
    concurrent_if_match_only_one_wins,
    concurrent_creates_on_update_make_one_resource,
);

async fn update_makes_new_version(s: &TestServer) {
    let (id, _) = create(
        s,
        "Patient",
        json!({"resourceType": "Patient", "active": true}),
    )
    .await;
    let resp = put(s, "Patient", &id, json!({"active": false})).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["meta"]["versionId"], "2");
    assert_eq!(body["active"], false);
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    assert!(resp.header("location").is_none());
    assert_eq!(
        resp.header("content-location"),
        Some(format!("{}/Patient/{id}/_history/2", s.base).as_str())
    );
    assert_eq!(s.get(&format!("Patient/{id}")).await.json(), body);
}

async fn update_creates_with_client_id(s: &TestServer) {
    let resp = put(s, "Patient", "client-id-1", json!({"active": true})).await;
    expect(&resp, 201);
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    assert_eq!(
        resp.header("location"),
        Some(format!("{}/Patient/client-id-1/_history/1", s.base).as_str())
    );
    let body = resp.json();
    assert_eq!(body["id"], "client-id-1");
    assert_eq!(body["meta"]["versionId"], "1");
    // A 64-character id is the longest valid one.
    let long = "a".repeat(64);
    expect(&put(s, "Patient", &long, json!({})).await, 201);
    expect(&s.get(&format!("Patient/{long}")).await, 200);
}

async fn update_after_delete_recreates(s: &TestServer) {
    expect(
        &put(s, "Patient", "p", json!({"gender": "male"})).await,
        201,
    );
    expect(&s.delete("Patient/p").await, 204);
    let resp = put(s, "Patient", "p", json!({"gender": "female"})).await;
    expect(&resp, 201);
    assert_eq!(resp.header("etag"), Some("W/\"3\""));
    assert_eq!(
        resp.header("location"),
        Some(format!("{}/Patient/p/_history/3", s.base).as_str())
    );
    assert_eq!(resp.json()["meta"]["versionId"], "3");
    let read = s.get("Patient/p").await;
    expect(&read, 200);
    assert_eq!(read.json()["gender"], "female");
    assert_eq!(history_len(s, "Patient/p/_history").await, 3);
}

async fn update_if_match(s: &TestServer) {
    expect(
        &put(s, "Patient", "m", json!({"gender": "male"})).await,
        201,
    );
    let body = json!({"resourceType": "Patient", "id": "m", "gender": "female"}).to_string();
    let ok = s
        .send("PUT", "Patient/m", &[("if-match", "W/\"1\"")], Some(&body))
        .await;
    expect(&ok, 200);
    assert_eq!(ok.header("etag"), Some("W/\"2\""));

    let stale_body = json!({"resourceType": "Patient", "id": "m", "gender": "other"}).to_string();
    let stale = s
        .send(
            "PUT",
            "Patient/m",
            &[("if-match", "W/\"1\"")],
            Some(&stale_body),
        )
        .await;
    expect_outcome(&stale, 412);
    let read = s.get("Patient/m").await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json()["gender"], "female");

    for bad in ["banana", "W/\"0\"", "W/\"x\""] {
        let resp = s
            .send("PUT", "Patient/m", &[("if-match", bad)], Some(&stale_body))
            .await;
        expect_outcome(&resp, 400);
    }
    assert_eq!(current_version(s, "Patient/m").await, "W/\"2\"");
    assert_eq!(history_len(s, "Patient/m/_history").await, 2);

    // If-Match on a resource that does not exist cannot match.
    let absent = json!({"resourceType": "Patient", "id": "absent"}).to_string();
    let resp = s
        .send(
            "PUT",
            "Patient/absent",
            &[("if-match", "W/\"1\"")],
            Some(&absent),
        )
        .await;
    expect_outcome(&resp, 412);
    expect_outcome(&s.get("Patient/absent").await, 404);
}

async fn update_rejects_body_that_does_not_match_url(s: &TestServer) {
    // No id in the body.
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Patient", "active": true}),
        )
        .await;
    expect_outcome(&resp, 400);
    // Another id in the body.
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Patient", "id": "u2"}),
        )
        .await;
    expect_outcome(&resp, 400);
    // Another type in the body.
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Observation", "id": "u1"}),
        )
        .await;
    expect_outcome(&resp, 400);
    expect_outcome(&s.get("Patient/u1").await, 404);
    expect_outcome(&s.get("Patient/u2").await, 404);
    expect_outcome(&s.get("Observation/u1").await, 404);
    assert_nothing_stored(s).await;

    // And on an existing resource, nothing changes.
    expect(&put(s, "Patient", "u1", json!({"active": true})).await, 201);
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Patient", "id": "zz", "active": false}),
        )
        .await;
    expect_outcome(&resp, 400);
    let read = s.get("Patient/u1").await;
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_eq!(read.json()["active"], true);
}

/// Sends `n` PUTs of `Patient/id` at once; returns their statuses and ETags.
async fn concurrent_puts(
    s: &TestServer,
    id: &str,
    n: usize,
    if_match: Option<&'static str>,
) -> Vec<(u16, Option<String>)> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = s.http.clone();
        let id = id.to_owned();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "id": id,
                              "birthDate": format!("{}-01-01", 1950 + i)})
            .to_string();
            let headers: Vec<(&str, &str)> =
                if_match.map(|m| ("if-match", m)).into_iter().collect();
            let resp = http
                .send("PUT", &format!("Patient/{id}"), &headers, Some(&body))
                .await;
            (resp.status.as_u16(), resp.header("etag").map(str::to_owned))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn concurrent_updates_all_land(s: &TestServer) {
    expect(&put(s, "Patient", "cc", json!({})).await, 201);
    let results = concurrent_puts(s, "cc", 8, None).await;
    assert!(results.iter().all(|(st, _)| *st == 200), "{results:?}");
    let etags: BTreeSet<String> = results.iter().map(|(_, e)| e.clone().unwrap()).collect();
    let expected: BTreeSet<String> = (2..=9).map(|v| format!("W/\"{v}\"")).collect();
    assert_eq!(etags, expected);
    assert_eq!(history_len(s, "Patient/cc/_history").await, 9);
    assert_eq!(current_version(s, "Patient/cc").await, "W/\"9\"");
}

async fn concurrent_if_match_only_one_wins(s: &TestServer) {
    expect(&put(s, "Patient", "cm", json!({})).await, 201);
    let results = concurrent_puts(s, "cm", 8, Some("W/\"1\"")).await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    let stale = results.iter().filter(|(st, _)| *st == 412).count();
    assert_eq!((ok, stale), (1, 7), "{results:?}");
    assert_eq!(current_version(s, "Patient/cm").await, "W/\"2\"");
    assert_eq!(history_len(s, "Patient/cm/_history").await, 2);
}

async fn concurrent_creates_on_update_make_one_resource(s: &TestServer) {
    let results = concurrent_puts(s, "fresh", 6, None).await;
    let created = results.iter().filter(|(st, _)| *st == 201).count();
    let updated = results.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!((created, updated), (1, 5), "{results:?}");
    let created_etag = results
        .iter()
        .find(|(st, _)| *st == 201)
        .and_then(|(_, e)| e.clone());
    assert_eq!(created_etag.as_deref(), Some("W/\"1\""));
    assert_eq!(history_len(s, "Patient/fresh/_history").await, 6);
    assert_eq!(history_len(s, "_history").await, 6);
}
