//! Conditional interactions over HTTP, on both stores: create with `If-None-Exist`,
//! update, patch and delete of `[type]?criteria`, and their counterparts in batch and
//! transaction Bundles (`ifNoneExist`, conditional URLs, conditional references).
//!
//! This module holds the helpers the conditional interactions share.

mod bundle;
mod capabilities;
mod create;
mod criteria;
mod delete;
mod patch;
mod update;

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::common::{Resp, TestServer, expect};

const SYSTEM: &str = "urn:ember-test:mrn";

fn patient(mrn: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": mrn}],
    })
}

/// `identifier=SYSTEM|mrn`, URL-encoded.
fn criteria(mrn: &str) -> String {
    format!("identifier={}%7C{mrn}", SYSTEM.replace(':', "%3A"))
}

/// POST with `If-None-Exist`.
async fn create_if_none_exist(s: &TestServer, body: &Value, condition: &str) -> Resp {
    s.send(
        "POST",
        "Patient",
        &[("if-none-exist", condition)],
        Some(&body.to_string()),
    )
    .await
}

/// Creates a resource with POST and returns its id.
async fn create(s: &TestServer, body: &Value) -> String {
    let res_type = body["resourceType"].as_str().unwrap();
    let resp = s.post(res_type, body).await;
    expect(&resp, 201);
    resp.json()["id"].as_str().unwrap().to_owned()
}

/// The ids of the live resources a search finds.
async fn ids(s: &TestServer, search: &str) -> BTreeSet<String> {
    let sep = if search.contains('?') { '&' } else { '?' };
    let resp = s.get(&format!("{search}{sep}_count=1000")).await;
    expect(&resp, 200);
    resp.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect()
}

/// How many versions were ever stored, on all resources.
async fn versions_stored(s: &TestServer) -> usize {
    let resp = s.get("_history?_count=1000").await;
    expect(&resp, 200);
    resp.json()["entry"].as_array().map_or(0, Vec::len)
}

async fn bundle(s: &TestServer, kind: &str, entries: Value) -> Resp {
    s.post(
        &s.base,
        &json!({"resourceType": "Bundle", "type": kind, "entry": entries}),
    )
    .await
}

fn json_patch(ops: Value) -> String {
    ops.to_string()
}

async fn patch(s: &TestServer, path: &str, ops: &str, headers: &[(&str, &str)]) -> Resp {
    let mut all = vec![("content-type", "application/json-patch+json")];
    all.extend_from_slice(headers);
    s.send("PATCH", path, &all, Some(ops)).await
}
