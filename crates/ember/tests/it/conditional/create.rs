//! Conditional create (`POST [type]` with `If-None-Exist`).

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;

use super::{SYSTEM, create, create_if_none_exist, criteria, ids, patient, versions_stored};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    conditional_create_without_match_creates,
    conditional_create_with_one_match_returns_it,
    conditional_create_honours_prefer,
    conditional_create_with_several_matches_is_412,
    conditional_create_rejects_bad_criteria,
    conditional_create_concurrent_makes_one,
);

async fn conditional_create_without_match_creates(s: &TestServer) {
    let resp = create_if_none_exist(s, &patient("c1"), &criteria("c1")).await;
    expect(&resp, 201);
    let id = resp.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let location = resp.header("location").unwrap();
    assert!(
        location.ends_with(&format!("/Patient/{id}/_history/1")),
        "{location}"
    );
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("c1"))).await,
        [id].into()
    );
    // The criteria may also be written as `Patient?…` or `?…`, and unencoded.
    let resp = create_if_none_exist(
        s,
        &patient("c2"),
        &format!("Patient?identifier={SYSTEM}|c2"),
    )
    .await;
    expect(&resp, 201);
    let resp = create_if_none_exist(s, &patient("c2"), &format!("?identifier={SYSTEM}|c2")).await;
    expect(&resp, 200);
}

async fn conditional_create_with_one_match_returns_it(s: &TestServer) {
    let id = create(s, &patient("m1")).await;
    let mut changed = patient("m1");
    changed["active"] = json!(true);
    let resp = create_if_none_exist(s, &changed, &criteria("m1")).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["meta"]["versionId"], "1");
    assert!(
        body.get("active").is_none(),
        "the match was changed: {body}"
    );
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    assert!(resp.header("location").is_none());
    assert!(
        resp.header("content-location")
            .unwrap()
            .ends_with(&format!("/Patient/{id}/_history/1"))
    );
    // Nothing was created or changed.
    assert_eq!(versions_stored(s).await, 1);
    // Other criteria that match the same resource.
    let resp = create_if_none_exist(s, &changed, &format!("_id={id}")).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], id.as_str());
    assert_eq!(versions_stored(s).await, 1);
    // A deleted match does not count.
    expect(&s.delete(&format!("Patient/{id}")).await, 204);
    let resp = create_if_none_exist(s, &patient("m1"), &criteria("m1")).await;
    expect(&resp, 201);
    assert_ne!(resp.json()["id"], id.as_str());
}

async fn conditional_create_honours_prefer(s: &TestServer) {
    let id = create(s, &patient("p1")).await;
    let cond = criteria("p1");
    let body = patient("p1").to_string();
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("if-none-exist", &cond), ("prefer", "return=minimal")],
            Some(&body),
        )
        .await;
    expect(&resp, 200);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let resp = s
        .send(
            "POST",
            "Patient",
            &[
                ("if-none-exist", &cond),
                ("prefer", "return=OperationOutcome"),
            ],
            Some(&body),
        )
        .await;
    expect(&resp, 200);
    let outcome = resp.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let text = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        text.contains(&id) && text.contains("already exists"),
        "{text}"
    );
    // A created resource with return=minimal: 201 without a body.
    let resp = s
        .send(
            "POST",
            "Patient",
            &[
                ("if-none-exist", &criteria("p2")),
                ("prefer", "return=minimal"),
            ],
            Some(&patient("p2").to_string()),
        )
        .await;
    expect(&resp, 201);
    assert!(resp.body.is_empty());
    assert!(resp.header("location").is_some());
    assert_eq!(versions_stored(s).await, 2);
}

async fn conditional_create_with_several_matches_is_412(s: &TestServer) {
    create(s, &patient("dup")).await;
    create(s, &patient("dup")).await;
    let resp = create_if_none_exist(s, &patient("dup"), &criteria("dup")).await;
    let text = expect_outcome(&resp, 412);
    assert!(text.contains("more than one"), "{text}");
    assert_eq!(resp.json()["issue"][0]["code"], "duplicate");
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("dup"))).await.len(),
        2
    );
    assert_eq!(versions_stored(s).await, 2);
}

async fn conditional_create_rejects_bad_criteria(s: &TestServer) {
    for cond in [
        "",
        "nonsense=1",
        "identifier=a|b&nonsense=1",
        "identifier=a|b&_count=1",
        "identifier=a|b&_sort=name",
        "_include=Patient:organization",
        "birthdate=not-a-date",
        "name:bogus=x",
        "_format=json",
    ] {
        let resp = create_if_none_exist(s, &patient("bad"), cond).await;
        let text = expect_outcome(&resp, 400);
        assert!(!text.is_empty(), "{cond}");
    }
    // The body is still checked when nothing matches.
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("if-none-exist", &criteria("bad"))],
            Some(r#"{"resourceType": "Patient", "bogus": 1}"#),
        )
        .await;
    expect_outcome(&resp, 422);
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("if-none-exist", &criteria("bad"))],
            Some(r#"{"resourceType": "Observation"}"#),
        )
        .await;
    expect_outcome(&resp, 400);
    assert_eq!(versions_stored(s).await, 0);
}

async fn conditional_create_concurrent_makes_one(s: &TestServer) {
    const CLIENTS: usize = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let http = s.http.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let body = patient("race").to_string();
            let cond = criteria("race");
            barrier.wait().await;
            http.send("POST", "Patient", &[("if-none-exist", &cond)], Some(&body))
                .await
        }));
    }
    let mut created = 0;
    let mut seen = BTreeSet::new();
    for t in tasks {
        let resp = t.await.unwrap();
        match resp.status.as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("status {other}: {}", String::from_utf8_lossy(&resp.body)),
        }
        seen.insert(resp.json()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1, "more than one conditional create created");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(ids(s, &format!("Patient?{}", criteria("race"))).await, seen);
}
