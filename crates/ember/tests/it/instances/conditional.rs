//! Conditional creates on two instances at once create exactly one resource.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::json;
use tokio::sync::Barrier;

use super::{observation, post_bundle, post_entry, text, transaction, two_instances};
use crate::common::Http;

/// `identifier=urn:ember-test:marker|{marker}`, as criteria of a conditional interaction.
fn marker_criteria(marker: &str) -> String {
    format!("identifier=urn:ember-test:marker|{marker}")
}

/// The ids of the live Patients with an identifier `marker`, as `instance` finds them.
async fn patients_with_marker(instance: &Http, marker: &str) -> (u64, BTreeSet<String>) {
    let r = instance
        .get(&format!(
            "Patient?{}&_total=accurate&_count=1000",
            marker_criteria(marker).replace('|', "%7C")
        ))
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));
    let bundle = r.json();
    let ids = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    (bundle["total"].as_u64().expect("total"), ids)
}

/// Many clients on two instances POST the same Patient with the same `If-None-Exist`
/// at once: exactly one is created (201), every other answer is 200 with that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_creates_on_two_instances_create_exactly_one() {
    let (db, a, b) = two_instances().await;
    const PER_INSTANCE: usize = 10;
    for round in 0..3 {
        let marker = format!("cc-{round}");
        let barrier = Arc::new(Barrier::new(2 * PER_INSTANCE));
        let mut tasks = Vec::new();
        for i in 0..2 * PER_INSTANCE {
            let http = if i % 2 == 0 { &a.http } else { &b.http }.clone();
            let barrier = Arc::clone(&barrier);
            let body = json!({
                "resourceType": "Patient",
                "identifier": [{"system": "urn:ember-test:marker", "value": marker}],
            })
            .to_string();
            let criteria = marker_criteria(&marker);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                http.send(
                    "POST",
                    "Patient",
                    &[("if-none-exist", &criteria)],
                    Some(&body),
                )
                .await
            }));
        }
        let mut created = 0;
        let mut ids = BTreeSet::new();
        for t in tasks {
            let r = t.await.expect("client task");
            match r.status.as_u16() {
                201 => created += 1,
                200 => {}
                other => panic!("conditional create answered {other}: {}", text(&r)),
            }
            let body = r.json();
            assert_eq!(body["meta"]["versionId"], "1", "{body}");
            ids.insert(body["id"].as_str().expect("id").to_owned());
        }
        assert_eq!(
            created, 1,
            "round {round}: {created} conditional creates created"
        );
        assert_eq!(
            ids.len(),
            1,
            "round {round}: answers name several ids: {ids:?}"
        );
        for p in [&a, &b] {
            let (total, found) = patients_with_marker(&p.http, &marker).await;
            assert_eq!(total, 1, "round {round}");
            assert_eq!(found, ids, "round {round}");
        }
    }
    assert_eq!(
        db.sql_i64("SELECT count(*) FROM resource_versions").await,
        3
    );
}

/// Many transactions on two instances, each a conditional create of the same Patient
/// (`ifNoneExist`) and an Observation that refers to it by `urn:uuid`: one Patient is
/// created, and every Observation refers to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_create_transactions_on_two_instances_share_one_resource() {
    let (db, a, b) = two_instances().await;
    const PER_INSTANCE: usize = 10;
    let marker = "tx-cc";
    let barrier = Arc::new(Barrier::new(2 * PER_INSTANCE));
    let mut tasks = Vec::new();
    for t in 0..2 * PER_INSTANCE {
        let http = if t % 2 == 0 { &a.http } else { &b.http }.clone();
        let barrier = Arc::clone(&barrier);
        let patient_url = format!("urn:uuid:{}", uuid::Uuid::new_v4());
        let bundle = transaction(vec![
            json!({
                "fullUrl": patient_url,
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "urn:ember-test:marker", "value": marker}],
                },
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": marker_criteria(marker)},
            }),
            post_entry(observation(&format!("obs-{t}"), &patient_url)),
        ])
        .to_string();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            (t, post_bundle(&http, &bundle).await)
        }));
    }
    let mut created = 0;
    let mut patient_ids = BTreeSet::new();
    let mut subjects = BTreeSet::new();
    for task in tasks {
        let (t, r) = task.await.expect("transaction task");
        assert_eq!(r.status, 200, "transaction {t}: {}", text(&r));
        let body = r.json();
        let entries = body["entry"].as_array().expect("entries");
        match entries[0]["response"]["status"].as_str() {
            Some("201 Created") => created += 1,
            Some("200 OK") => {}
            other => panic!("transaction {t}: the Patient entry answered {other:?}: {body}"),
        }
        patient_ids.insert(entries[0]["resource"]["id"].as_str().unwrap().to_owned());
        assert_eq!(entries[1]["response"]["status"], "201 Created", "{body}");
        subjects.insert(
            entries[1]["resource"]["subject"]["reference"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(created, 1, "{created} transactions created the Patient");
    assert_eq!(patient_ids.len(), 1, "{patient_ids:?}");
    let id = patient_ids.iter().next().unwrap().clone();
    assert_eq!(subjects, [format!("Patient/{id}")].into());
    for p in [&a, &b] {
        let (total, found) = patients_with_marker(&p.http, marker).await;
        assert_eq!(total, 1);
        assert_eq!(found, patient_ids);
        let r = p
            .http
            .get(&format!("Observation?subject=Patient/{id}&_total=accurate"))
            .await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["total"], (2 * PER_INSTANCE) as u64);
    }
    assert_eq!(
        db.sql_i64("SELECT count(*) FROM resource_versions").await,
        1 + 2 * PER_INSTANCE as i64
    );
}
