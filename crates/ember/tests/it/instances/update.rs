//! Updates racing on two instances: with the same `If-Match` exactly one wins; without
//! `If-Match` none is lost.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::Barrier;

use super::{etag_version, history, marker_counts, patient, text, two_instances, versions};

/// The same `If-Match` sent to two instances at once: exactly one update wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_if_match_on_two_instances_has_exactly_one_winner() {
    let (db, a, b) = two_instances().await;
    let created = a.http.put("Patient/race", &patient("race", "v1")).await;
    assert_eq!(created.status, 201, "{}", text(&created));
    assert_eq!(created.header("etag"), Some("W/\"1\""));

    const WRITERS: usize = 20;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let mut tasks = Vec::new();
    for i in 0..WRITERS {
        let http = if i % 2 == 0 { &a.http } else { &b.http }.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let body = patient("race", &format!("writer-{i}")).to_string();
            barrier.wait().await;
            let r = http
                .send(
                    "PUT",
                    "Patient/race",
                    &[("if-match", "W/\"1\"")],
                    Some(&body),
                )
                .await;
            (i, r)
        }));
    }
    let mut winners = Vec::new();
    let mut unexpected = Vec::new();
    for t in tasks {
        let (i, r) = t.await.expect("writer task");
        match r.status.as_u16() {
            200 => {
                assert_eq!(r.header("etag"), Some("W/\"2\""), "{}", text(&r));
                winners.push(i);
            }
            412 => {
                r.outcome();
            }
            _ => unexpected.push(format!("writer {i}: {} {}", r.status, text(&r))),
        }
    }
    assert!(
        unexpected.is_empty(),
        "neither 200 nor 412: {unexpected:#?}"
    );
    assert_eq!(
        winners.len(),
        1,
        "exactly one PUT with If-Match: W/\"1\" may win; winners: {winners:?}"
    );
    let winner = format!("writer-{}", winners[0]);

    for p in [&a, &b] {
        let read = p.http.get("Patient/race").await;
        assert_eq!(read.status, 200);
        assert_eq!(read.header("etag"), Some("W/\"2\""));
        let body = read.json();
        assert_eq!(body["meta"]["versionId"], "2");
        assert_eq!(body["identifier"][0]["value"], winner.as_str());
        let entries = history(&p.http, "Patient/race/_history").await;
        assert_eq!(versions(&entries), [1, 2]);
    }
    assert_eq!(
        db.sql_i64(
            "SELECT count(*) FROM resource_versions WHERE res_type = 'Patient' AND res_id = 'race'"
        )
        .await,
        2
    );
}

/// Updates without `If-Match` from many clients on two instances: every one is kept,
/// as its own version, with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconditional_updates_on_two_instances_lose_nothing() {
    let (db, a, b) = two_instances().await;
    let created = a.http.put("Patient/hot", &patient("hot", "initial")).await;
    assert_eq!(created.status, 201, "{}", text(&created));

    const CLIENTS: usize = 10;
    const UPDATES: usize = 5;
    let mut tasks = Vec::new();
    for (p, http) in [&a.http, &b.http].into_iter().enumerate() {
        for c in 0..CLIENTS {
            let http = http.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                for u in 0..UPDATES {
                    let marker = format!("p{p}-c{c}-u{u}");
                    let r = http.put("Patient/hot", &patient("hot", &marker)).await;
                    let version = r.header("etag").map(etag_version);
                    done.push((marker, r.status.as_u16(), version, text(&r)));
                }
                done
            }));
        }
    }
    let mut failures = Vec::new();
    let mut returned_versions = BTreeSet::new();
    let mut markers = vec!["initial".to_owned()];
    for t in tasks {
        for (marker, status, version, body) in t.await.expect("client task") {
            if status != 200 {
                failures.push(format!("{marker}: {status} {body}"));
            }
            if let Some(v) = version {
                assert!(
                    returned_versions.insert(v),
                    "version {v} was returned to two writers"
                );
            }
            markers.push(marker);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} updates failed: {:#?}",
        failures.len(),
        2 * CLIENTS * UPDATES,
        &failures[..failures.len().min(10)]
    );
    let total = 1 + 2 * CLIENTS * UPDATES;
    assert_eq!(
        returned_versions,
        (2..=total as i64).collect::<BTreeSet<_>>(),
        "the updates must have been given versions 2..={total}"
    );

    for p in [&a, &b] {
        let read = p.http.get("Patient/hot").await;
        assert_eq!(read.status, 200);
        assert_eq!(read.json()["meta"]["versionId"], total.to_string());
        let entries = history(&p.http, "Patient/hot/_history").await;
        assert_eq!(entries.len(), total, "history entries");
        assert_eq!(
            versions(&entries),
            (1..=total as i64).collect::<Vec<_>>(),
            "versions must be 1..={total}, without gaps or duplicates"
        );
        let counts = marker_counts(&entries);
        for m in &markers {
            assert_eq!(
                counts.get(m),
                Some(&1),
                "marker {m} must be in exactly one version"
            );
        }
        assert_eq!(
            counts.len(),
            markers.len(),
            "unexpected markers: {counts:?}"
        );
    }
    assert_eq!(
        db.sql_i64(
            "SELECT count(*) FROM resource_versions WHERE res_type = 'Patient' AND res_id = 'hot'"
        )
        .await,
        total as i64
    );
    assert_eq!(
        db.sql_i64("SELECT version FROM resources WHERE res_type = 'Patient' AND res_id = 'hot'")
            .await,
        total as i64
    );
}
