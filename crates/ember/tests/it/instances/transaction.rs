//! Transactions on two instances: all-or-nothing, and racing on one resource.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;

use super::{
    etag_version, history, marker_counts, observation, patient, post_bundle, post_entry, text,
    transaction, two_instances, versions,
};
use crate::common::{Process, TestDb};

fn put_entry(resource: Value, if_match: Option<&str>) -> Value {
    let url = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let mut request = json!({"method": "PUT", "url": url});
    if let Some(m) = if_match {
        request["ifMatch"] = json!(m);
    }
    json!({"resource": resource, "request": request})
}

/// A snapshot of what the database holds, as both instances and SQL see it.
async fn totals(db: &TestDb, a: &Process, b: &Process) -> (usize, usize, i64) {
    (
        history(&a.http, "_history").await.len(),
        history(&b.http, "_history").await.len(),
        db.sql_i64("SELECT count(*) FROM resource_versions").await,
    )
}

/// A transaction whose last entry fails (a stale `ifMatch`) stores none of its entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_transaction_leaves_nothing_behind() {
    let (db, a, b) = two_instances().await;
    assert_eq!(
        a.http.put("Patient/tx", &patient("tx", "v1")).await.status,
        201
    );
    assert_eq!(
        b.http.put("Patient/tx", &patient("tx", "v2")).await.status,
        200
    );
    let before = totals(&db, &a, &b).await;
    assert_eq!(before, (2, 2, 2));

    let mut entries: Vec<Value> = (0..5)
        .map(|i| post_entry(observation(&format!("doomed-{i}"), "Patient/tx")))
        .collect();
    entries.push(post_entry(
        json!({"resourceType": "Patient", "active": true}),
    ));
    entries.push(put_entry(patient("tx", "stale"), Some("W/\"1\"")));
    let r = post_bundle(&a.http, &transaction(entries).to_string()).await;
    assert_eq!(r.status, 412, "{}", text(&r));
    let diagnostics = r.outcome();
    assert!(diagnostics.contains("Patient/tx"), "{diagnostics}");

    assert_eq!(
        totals(&db, &a, &b).await,
        before,
        "a failed transaction must store nothing"
    );
    for p in [&a, &b] {
        assert!(history(&p.http, "Observation/_history").await.is_empty());
        let read = p.http.get("Patient/tx").await.json();
        assert_eq!(read["meta"]["versionId"], "2");
        assert_eq!(read["identifier"][0]["value"], "v2");
    }
}

/// Transactions with the same `ifMatch` racing on two instances: one commits, the
/// others fail with 412 after (or before) writing their POSTs, which must be rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_transactions_with_the_same_if_match_roll_back_the_losers() {
    let (db, a, b) = two_instances().await;
    assert_eq!(
        a.http.put("Patient/tx", &patient("tx", "v1")).await.status,
        201
    );
    let before = totals(&db, &a, &b).await;
    assert_eq!(before, (1, 1, 1));

    const TRANSACTIONS: usize = 10;
    const POSTS: usize = 3;
    let barrier = Arc::new(Barrier::new(TRANSACTIONS));
    let mut tasks = Vec::new();
    for t in 0..TRANSACTIONS {
        let http = if t % 2 == 0 { &a.http } else { &b.http }.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let mut entries: Vec<Value> = (0..POSTS)
                .map(|i| post_entry(observation(&format!("tx{t}-obs{i}"), "Patient/tx")))
                .collect();
            entries.push(put_entry(patient("tx", &format!("tx{t}")), Some("W/\"1\"")));
            let bundle = transaction(entries).to_string();
            barrier.wait().await;
            (t, post_bundle(&http, &bundle).await)
        }));
    }
    let mut winners = Vec::new();
    let mut unexpected = Vec::new();
    for task in tasks {
        let (t, r) = task.await.expect("transaction task");
        match r.status.as_u16() {
            200 => winners.push(t),
            412 => {
                r.outcome();
            }
            _ => unexpected.push(format!("transaction {t}: {} {}", r.status, text(&r))),
        }
    }
    assert!(
        unexpected.is_empty(),
        "neither 200 nor 412: {unexpected:#?}"
    );
    assert_eq!(winners.len(), 1, "exactly one transaction may commit");
    let w = winners[0];

    let after = totals(&db, &a, &b).await;
    let expected = before.2 + POSTS as i64 + 1;
    assert_eq!(
        after,
        (expected as usize, expected as usize, expected),
        "only the winning transaction's {} writes may be stored",
        POSTS + 1
    );
    for p in [&a, &b] {
        let observations = history(&p.http, "Observation/_history").await;
        let counts = marker_counts(&observations);
        let want: BTreeMap<String, usize> =
            (0..POSTS).map(|i| (format!("tx{w}-obs{i}"), 1)).collect();
        assert_eq!(counts, want);
        let read = p.http.get("Patient/tx").await.json();
        assert_eq!(read["meta"]["versionId"], "2");
        assert_eq!(read["identifier"][0]["value"], format!("tx{w}"));
    }
}

/// Transactions on two instances that all update the same resource: every one commits,
/// and the resource gets one gapless version per transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transactions_on_one_resource_all_commit() {
    let (db, a, b) = two_instances().await;
    const TRANSACTIONS: usize = 10;
    let barrier = Arc::new(Barrier::new(TRANSACTIONS));
    let mut tasks = Vec::new();
    for t in 0..TRANSACTIONS {
        let http = if t % 2 == 0 { &a.http } else { &b.http }.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let marker = format!("tx{t}");
            let bundle = transaction(vec![
                put_entry(patient("shared", &marker), None),
                post_entry(observation(&marker, "Patient/shared")),
            ])
            .to_string();
            barrier.wait().await;
            (t, post_bundle(&http, &bundle).await)
        }));
    }
    let mut failures = Vec::new();
    let mut patient_versions = BTreeSet::new();
    let mut observations = Vec::new();
    for task in tasks {
        let (t, r) = task.await.expect("transaction task");
        if r.status != 200 {
            failures.push(format!("transaction {t}: {} {}", r.status, text(&r)));
            continue;
        }
        let body = r.json();
        assert_eq!(body["type"], "transaction-response", "{body}");
        let entries = body["entry"].as_array().expect("entries");
        assert_eq!(entries.len(), 2, "{body}");
        let put = &entries[0]["response"];
        assert!(
            matches!(put["status"].as_str(), Some("200 OK" | "201 Created")),
            "{body}"
        );
        assert!(
            patient_versions.insert(etag_version(put["etag"].as_str().unwrap())),
            "a Patient/shared version was returned twice: {body}"
        );
        let post = &entries[1]["response"];
        assert_eq!(post["status"], "201 Created", "{body}");
        let location = post["location"].as_str().expect("location").to_owned();
        observations.push((format!("tx{t}"), location));
    }
    assert!(failures.is_empty(), "transactions failed: {failures:#?}");
    let n = TRANSACTIONS as i64;
    assert_eq!(patient_versions, (1..=n).collect::<BTreeSet<_>>());

    for p in [&a, &b] {
        let entries = history(&p.http, "Patient/shared/_history").await;
        assert_eq!(versions(&entries), (1..=n).collect::<Vec<_>>());
        let counts = marker_counts(&entries);
        assert_eq!(counts.len(), TRANSACTIONS, "{counts:?}");
        assert!(counts.values().all(|&c| c == 1), "{counts:?}");
        let obs_counts = marker_counts(&history(&p.http, "Observation/_history").await);
        assert_eq!(
            obs_counts, counts,
            "one Observation per committed Patient version"
        );
        for (marker, location) in &observations {
            let r = p.http.get(location).await;
            assert_eq!(r.status, 200, "GET {location}: {}", text(&r));
            assert_eq!(r.json()["identifier"][0]["value"], marker.as_str());
        }
    }
    assert_eq!(
        db.sql_i64("SELECT count(*) FROM resource_versions").await,
        2 * n
    );
}
