//! Conditional delete (`DELETE [type]?criteria`): one, none or several matches, the limit on
//! several, and single mode.

use std::collections::BTreeSet;

use serde_json::json;

use super::{bundle, create, criteria, ids, patient, versions_stored};
use crate::common::{Backend, TestServer, TestSettings, expect, expect_outcome};

both_stores!(
    conditional_delete_one_match,
    conditional_delete_without_match_is_204,
    conditional_delete_several_matches_within_limit,
);

async fn conditional_delete_one_match(s: &TestServer) {
    let id = create(s, &patient("d1")).await;
    let keep = create(s, &patient("keep")).await;
    let resp = s.delete(&format!("Patient?{}", criteria("d1"))).await;
    expect(&resp, 204);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    expect_outcome(&s.get(&format!("Patient/{id}")).await, 410);
    expect(&s.get(&format!("Patient/{keep}")).await, 200);
    // With Prefer: return=OperationOutcome.
    let id = create(s, &patient("d2")).await;
    let resp = s
        .send(
            "DELETE",
            &format!("Patient?{}", criteria("d2")),
            &[("prefer", "return=OperationOutcome")],
            None,
        )
        .await;
    expect(&resp, 200);
    let outcome = resp.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains(&id)
    );
}

async fn conditional_delete_without_match_is_204(s: &TestServer) {
    let resp = s.delete(&format!("Patient?{}", criteria("none"))).await;
    expect(&resp, 204);
    assert!(resp.header("etag").is_none());
    let resp = s
        .send(
            "DELETE",
            &format!("Patient?{}", criteria("none")),
            &[("prefer", "return=OperationOutcome")],
            None,
        )
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["resourceType"], "OperationOutcome");
    assert_eq!(versions_stored(s).await, 0);
}

async fn conditional_delete_several_matches_within_limit(s: &TestServer) {
    let mut all = BTreeSet::new();
    for _ in 0..5 {
        all.insert(create(s, &patient("many")).await);
    }
    let keep = create(s, &patient("keep")).await;
    let resp = s.delete(&format!("Patient?{}", criteria("many"))).await;
    expect(&resp, 204);
    for id in &all {
        expect_outcome(&s.get(&format!("Patient/{id}")).await, 410);
    }
    expect(&s.get(&format!("Patient/{keep}")).await, 200);
    assert!(
        ids(s, &format!("Patient?{}", criteria("many")))
            .await
            .is_empty()
    );
}

/// Servers that delete at most `max` resources per conditional delete.
async fn server_with_delete_limit(backend: Backend, max: u32) -> TestServer {
    let mut settings = TestSettings::default();
    settings.limits.max_conditional_delete = max;
    TestServer::start_with(backend, settings).await
}

async fn conditional_delete_over_limit(backend: Backend) {
    let s = server_with_delete_limit(backend, 3).await;
    for _ in 0..4 {
        create(&s, &patient("lots")).await;
    }
    let resp = s.delete(&format!("Patient?{}", criteria("lots"))).await;
    let text = expect_outcome(&resp, 412);
    assert!(
        text.contains("more than 3") && text.contains("nothing was deleted"),
        "{text}"
    );
    assert_eq!(
        ids(&s, &format!("Patient?{}", criteria("lots")))
            .await
            .len(),
        4
    );
    // In a transaction too, with the other entries rolled back.
    let resp = bundle(
        &s,
        "transaction",
        json!([
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("lots"))}},
            {"request": {"method": "POST", "url": "Patient"}, "resource": patient("other")},
        ]),
    )
    .await;
    expect_outcome(&resp, 412);
    assert_eq!(versions_stored(&s).await, 4);
    // Exactly at the limit: all are deleted.
    for _ in 0..3 {
        create(&s, &patient("three")).await;
    }
    expect(
        &s.delete(&format!("Patient?{}", criteria("three"))).await,
        204,
    );
    assert!(
        ids(&s, &format!("Patient?{}", criteria("three")))
            .await
            .is_empty()
    );
}

async fn conditional_delete_single_mode(backend: Backend) {
    let s = server_with_delete_limit(backend, 1).await;
    let cs = s.get("metadata").await.json();
    let patient_cs = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    assert_eq!(patient_cs["conditionalDelete"], "single");
    create(&s, &patient("pair")).await;
    create(&s, &patient("pair")).await;
    let resp = s.delete(&format!("Patient?{}", criteria("pair"))).await;
    let text = expect_outcome(&resp, 412);
    assert!(text.contains("only one"), "{text}");
    assert_eq!(
        ids(&s, &format!("Patient?{}", criteria("pair")))
            .await
            .len(),
        2
    );
    let id = create(&s, &patient("single")).await;
    expect(
        &s.delete(&format!("Patient?{}", criteria("single"))).await,
        204,
    );
    expect_outcome(&s.get(&format!("Patient/{id}")).await, 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_over_limit_is_412_and_deletes_nothing_sqlite() {
    conditional_delete_over_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_over_limit_is_412_and_deletes_nothing_postgres() {
    conditional_delete_over_limit(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_single_mode_sqlite() {
    conditional_delete_single_mode(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_single_mode_postgres() {
    conditional_delete_single_mode(Backend::Postgres).await;
}
