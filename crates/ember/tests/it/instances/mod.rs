//! Several Ember instances on one PostgreSQL database: the real `ember serve` binary,
//! started as separate processes, racing on the same resources.
//!
//! Every test has a schema of its own and at least two processes on it, so versioning,
//! transactions and migrations are checked across instances, not just across tasks.
//!
//! This module holds the helpers the instance tests share.

mod conditional;
mod lifecycle;
mod profiles;
mod subscriptions;
mod terminology;
mod token_counts;
mod transaction;
mod update;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Backend, Http, Process, Resp, TestDb};

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
