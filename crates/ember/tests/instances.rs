//! Several Ember instances on one PostgreSQL database: the real `ember serve` binary,
//! started as separate processes, racing on the same resources.
//!
//! Every test has a schema of its own and at least two processes on it, so versioning,
//! transactions and migrations are checked across instances, not just across tasks.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, Http, Process, Resp, TestDb};
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// Pooled connections per process: enough for real concurrency, small enough that
/// parallel tests stay well under PostgreSQL's connection limit.
const POOL_SIZE: &str = "6";

/// Starts `ember serve` on `url` without blocking the runtime.
async fn spawn(url: &str) -> Process {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || Process::spawn(&url, &[("EMBER_DB_POOL_SIZE", POOL_SIZE)]))
        .await
        .expect("spawn ember")
}

/// Sends SIGTERM and waits for the exit status without blocking the runtime.
async fn terminate(p: Process) -> std::process::ExitStatus {
    tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || p.terminate()),
    )
    .await
    .expect("ember did not exit within 20 s of SIGTERM")
    .expect("terminate")
}

/// How many `applied migration` lines a process logged (before it became ready).
fn migrations_logged(p: &Process) -> usize {
    p.logs
        .lock()
        .expect("logs")
        .iter()
        .filter(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| {
                v["body"]
                    .as_str()
                    .is_some_and(|b| b.starts_with("applied migration"))
            })
        })
        .count()
}

/// A fresh schema and two instances on it, started one after the other: the second
/// start finds the schema up to date and must apply nothing.
async fn two_instances() -> (TestDb, Process, Process) {
    let db = TestDb::new(Backend::Postgres).await;
    let a = spawn(&db.url).await;
    let b = spawn(&db.url).await;
    assert!(
        migrations_logged(&a) >= 1,
        "the first instance applied no migration"
    );
    assert_eq!(
        migrations_logged(&b),
        0,
        "the second instance re-applied migrations"
    );
    (db, a, b)
}

fn text(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// The version number of a `W/"n"` ETag.
fn etag_version(etag: &str) -> i64 {
    etag.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap_or_else(|_| panic!("not a version ETag: {etag:?}"))
}

/// Every entry of a history endpoint (`Type/id/_history`, `Type/_history`, `_history`),
/// following `next` links.
async fn history(http: &Http, path: &str) -> Vec<Value> {
    let mut url = format!("{path}?_count=1000");
    let mut entries = Vec::new();
    for _ in 0..100 {
        let r = http.get(&url).await;
        assert_eq!(r.status, 200, "GET {url}: {}", text(&r));
        let bundle = r.json();
        assert_eq!(bundle["type"], "history", "{bundle}");
        entries.extend(bundle["entry"].as_array().cloned().unwrap_or_default());
        let next = bundle["link"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
            .and_then(|l| l["url"].as_str())
            .map(str::to_owned);
        match next {
            Some(next) => url = next,
            None => return entries,
        }
    }
    panic!("the history of {path} did not end within 100 pages");
}

/// The version numbers in history entries, ascending.
fn versions(entries: &[Value]) -> Vec<i64> {
    let mut v: Vec<i64> = entries
        .iter()
        .map(|e| {
            etag_version(
                e["response"]["etag"]
                    .as_str()
                    .unwrap_or_else(|| panic!("history entry without etag: {e}")),
            )
        })
        .collect();
    v.sort_unstable();
    v
}

/// How often each identifier value (our write markers) occurs across history entries.
fn marker_counts(entries: &[Value]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for e in entries {
        for ident in e["resource"]["identifier"].as_array().into_iter().flatten() {
            if let Some(v) = ident["value"].as_str() {
                *counts.entry(v.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn patient(id: &str, marker: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{"system": "urn:ember-test:marker", "value": marker}],
    })
}

fn observation(marker: &str, subject: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "marker"},
        "identifier": [{"system": "urn:ember-test:marker", "value": marker}],
        "subject": {"reference": subject},
    })
}

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

/// POSTs a Bundle to the FHIR base URL itself.
async fn post_bundle(http: &Http, bundle: &str) -> Resp {
    http.send("POST", &http.base, &[], Some(bundle)).await
}

fn transaction(entries: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

fn post_entry(resource: Value) -> Value {
    let res_type = resource["resourceType"].as_str().unwrap().to_owned();
    json!({
        "fullUrl": format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        "resource": resource,
        "request": {"method": "POST", "url": res_type},
    })
}

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

/// Three instances started at the same moment on an empty schema migrate it exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_starts_migrate_exactly_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let barrier = Arc::new(std::sync::Barrier::new(3));
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let url = db.url.clone();
            let barrier = Arc::clone(&barrier);
            tokio::task::spawn_blocking(move || {
                barrier.wait();
                Process::spawn(&url, &[("EMBER_DB_POOL_SIZE", POOL_SIZE)])
            })
        })
        .collect();
    let mut processes = Vec::new();
    for s in starts {
        processes.push(s.await.expect("an instance failed to start"));
    }

    let client = db.pg_client().await;
    let rows = client
        .query(
            "SELECT version, count(*) FROM ember_schema GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .expect("ember_schema");
    let applied: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(!applied.is_empty(), "no migration recorded");
    for (i, (version, count)) in applied.iter().enumerate() {
        assert_eq!(
            *version,
            i as i64 + 1,
            "migrations must be 1..=n: {applied:?}"
        );
        assert_eq!(*count, 1, "migration {version} recorded {count} times");
    }
    let logged: usize = processes.iter().map(migrations_logged).sum();
    assert_eq!(
        logged,
        applied.len(),
        "each migration must be applied by exactly one instance"
    );

    // A later start applies nothing.
    let late = spawn(&db.url).await;
    assert_eq!(migrations_logged(&late), 0);
    processes.push(late);

    // All instances serve the same data.
    let created = processes[0]
        .http
        .put("Patient/m", &patient("m", "migrated"))
        .await;
    assert_eq!(created.status, 201, "{}", text(&created));
    for p in &processes {
        let r = p.http.get("Patient/m").await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["identifier"][0]["value"], "migrated");
    }
}

/// SIGTERM stops an instance cleanly (exit status 0) while the other keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully() {
    let (_db, a, b) = two_instances().await;
    let created = a.http.put("Patient/stop", &patient("stop", "before")).await;
    assert_eq!(created.status, 201, "{}", text(&created));
    let b_http = b.http.clone();

    let started = Instant::now();
    let status = terminate(a).await;
    assert!(status.success(), "ember exited with {status}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopping took {:?}",
        started.elapsed()
    );

    let r = b_http.put("Patient/stop", &patient("stop", "after")).await;
    assert_eq!(r.status, 200, "{}", text(&r));
    assert_eq!(r.header("etag"), Some("W/\"2\""));

    let status = terminate(b).await;
    assert!(status.success(), "ember exited with {status}");
}

/// `ember migrate` from several pods at once: all succeed and each migration is
/// applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrate_commands_apply_each_migration_once() {
    let db = TestDb::new(Backend::Postgres).await;
    let children: Vec<std::process::Child> = (0..3)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
                .args(["migrate", "--database-url", &db.url])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn ember migrate")
        })
        .collect();
    for mut child in children {
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}");
    }
    let client = db.pg_client().await;
    let rows = client
        .query(
            "SELECT version, count(*) FROM ember_schema GROUP BY version",
            &[],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty());
    for row in rows {
        let (version, count): (i64, i64) = (row.get(0), row.get(1));
        assert_eq!(count, 1, "migration {version} recorded {count} times");
    }
}

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

/// Writes on two instances while both fold the token-count deltas (every 5 s): the
/// counts kept on write end up equal to the documents actually indexed, per value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_counts_stay_exact_under_concurrent_writes_and_folding() {
    let (db, a, b) = two_instances().await;
    let codes = ["1-1", "2-2", "3-3"];
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (w, http) in [&a.http, &b.http, &a.http, &b.http].into_iter().enumerate() {
        let http = http.clone();
        tasks.spawn(async move {
            let mut i = 0usize;
            // Past two folding rounds of each instance.
            while started.elapsed() < Duration::from_secs(11) {
                let id = format!("tc{}", (w * 7 + i) % 12);
                let code = codes[(w + i) % codes.len()];
                let path = format!("Observation/{id}");
                let r = if i % 5 == 4 {
                    http.delete(&path).await
                } else {
                    let body = json!({
                        "resourceType": "Observation",
                        "id": id,
                        "status": "final",
                        "code": {"coding": [
                            {"system": "http://loinc.org", "code": code},
                            {"system": "http://loinc.org", "code": code, "display": "again"}
                        ]},
                    });
                    http.put(&path, &body).await
                };
                // Deleting what was never created is a 404.
                let ok = r.status.is_success() || (i % 5 == 4 && r.status == 404);
                assert!(ok, "{path}: {} {}", r.status, text(&r));
                i += 1;
            }
            i
        });
    }
    let mut writes = 0;
    while let Some(n) = tasks.join_next().await {
        writes += n.expect("writer");
    }
    assert!(writes > 100, "only {writes} writes");
    // Sums that differ from the indexed documents, per value (zero sums included).
    let drift = "SELECT count(*) FROM (
            SELECT p, system, code, sum(n) AS n FROM idx_token_counts GROUP BY 1, 2, 3
        ) kept FULL JOIN (
            SELECT p, system, code, count(DISTINCT rid) AS n FROM idx_token
            WHERE system IS NOT NULL AND code IS NOT NULL GROUP BY 1, 2, 3
        ) indexed USING (p, system, code)
        WHERE COALESCE(kept.n, 0) <> COALESCE(indexed.n, 0)";
    assert_eq!(db.sql_i64(drift).await, 0, "kept counts drifted");
    let deltas = "SELECT count(*) FROM idx_token_counts WHERE delta";
    let folded_rows = "SELECT count(*) FROM idx_token_counts WHERE NOT delta";
    assert!(
        db.sql_i64(folded_rows).await > 0,
        "no instance folded any deltas (pending: {})",
        db.sql_i64(deltas).await
    );
    terminate(a).await;
    terminate(b).await;
}
