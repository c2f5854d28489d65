//! The FHIR REST interactions and their errors, over HTTP, on both stores: one module
//! per interaction, and the ones for what every interaction shares (`Prefer`, formats,
//! validation, limits, errors).
//!
//! This module holds the helpers the interactions share.

mod batch;
mod capabilities;
mod compression;
mod control_chars;
mod create;
mod delete;
mod errors;
mod format;
mod history;
mod limits;
mod patch;
mod prefer;
mod read;
mod transaction;
mod update;
mod validate;
mod xml;

use serde_json::{Value, json};

use crate::common::{Resp, TestServer, expect};

/// Creates a resource with POST and returns its id and body.
async fn create(s: &TestServer, res_type: &str, body: Value) -> (String, Value) {
    let resp = s.post(res_type, &body).await;
    expect(&resp, 201);
    let body = resp.json();
    (body["id"].as_str().unwrap().to_owned(), body)
}

/// Creates or updates `Type/id` with PUT; returns the response.
async fn put(s: &TestServer, res_type: &str, id: &str, mut body: Value) -> Resp {
    body["resourceType"] = json!(res_type);
    body["id"] = json!(id);
    s.put(&format!("{res_type}/{id}"), &body).await
}

async fn patch(s: &TestServer, path: &str, ops: &str, headers: &[(&str, &str)]) -> Resp {
    let mut all = vec![("content-type", "application/json-patch+json")];
    all.extend_from_slice(headers);
    s.send("PATCH", path, &all, Some(ops)).await
}

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().cloned().unwrap_or_default()
}

/// A history Bundle (all of it, in one page).
async fn history(s: &TestServer, path: &str) -> Value {
    let sep = if path.contains('?') { '&' } else { '?' };
    let resp = s.get(&format!("{path}{sep}_count=1000")).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["resourceType"], "Bundle");
    assert_eq!(body["type"], "history");
    body
}

async fn history_len(s: &TestServer, path: &str) -> usize {
    entries(&history(s, path).await).len()
}

/// Asserts that the server holds no versions at all.
async fn assert_nothing_stored(s: &TestServer) {
    let all = history(s, "_history").await;
    assert_eq!(entries(&all).len(), 0, "something was stored: {all}");
}

/// The current version of a resource, by its ETag.
async fn current_version(s: &TestServer, path: &str) -> String {
    let resp = s.get(path).await;
    expect(&resp, 200);
    resp.header("etag").unwrap().to_owned()
}

/// `2026-05-01T10:11:12.123456Z` → `01 May 2026 10:11:12 GMT` (an HTTP date without weekday).
fn http_date_tail(instant: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month: usize = instant[5..7].parse().unwrap();
    format!(
        "{} {} {} {} GMT",
        &instant[8..10],
        MONTHS[month - 1],
        &instant[0..4],
        &instant[11..19]
    )
}

fn statuses(bundle: &Value) -> Vec<String> {
    entries(bundle)
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// `Patient/x/_history/1` → `x`.
fn id_of_location(location: &str) -> String {
    let parts: Vec<&str> = location.split('/').collect();
    let at = parts
        .iter()
        .position(|p| *p == "_history")
        .expect("versioned location");
    parts[at - 1].to_owned()
}
