//! FHIR R4 search over HTTP, on both stores: one module per parameter type and per search
//! feature.
//!
//! Every test starts from an empty server and writes its own small fixture with
//! `PUT /Type/id`, so ids are known in advance; every expected result below was worked
//! out by hand from the fixture in the same test. Lists compared without `_sort` are
//! compared as sets (sorted); with `_sort` they are compared in order.
//!
//! This module holds the helpers the search modules share.

mod bundle;
mod chain;
mod compartment;
mod composite;
mod corpus;
mod count;
mod cross_store;
mod date;
mod depth;
mod errors;
mod everything;
mod has;
mod include;
mod index;
mod number;
mod or_and;
mod paging;
mod post;
mod quantity;
mod reference;
mod resource_params;
mod sort;
mod string;
mod summary;
mod system;
mod terminology;
mod text;
mod token;
mod uri;

use serde_json::{Value, json};

use crate::common::{Resp, TestServer};

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

/// Creates or replaces `ty/id` with `body` (resourceType and id are filled in).
async fn put(s: &TestServer, ty: &str, id: &str, mut body: Value) -> Value {
    let obj = body.as_object_mut().expect("a fixture is a JSON object");
    obj.insert("resourceType".into(), json!(ty));
    obj.insert("id".into(), json!(id));
    let r = s.put(&format!("{ty}/{id}"), &body).await;
    assert!(
        r.status.as_u16() == 200 || r.status.as_u16() == 201,
        "PUT {ty}/{id} → {}: {}",
        r.status,
        String::from_utf8_lossy(&r.body)
    );
    r.json()
}

/// `base` with the members of `extra` added (a shallow merge).
fn with(mut base: Value, extra: Value) -> Value {
    let b = base.as_object_mut().expect("object");
    for (k, v) in extra.as_object().expect("object") {
        b.insert(k.clone(), v.clone());
    }
    base
}

/// A minimal valid Observation plus `extra`.
fn obs(extra: Value) -> Value {
    with(json!({"status": "final", "code": {"text": "x"}}), extra)
}

fn coded(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code}]})
}

fn reference(r: &str) -> Value {
    json!({"reference": r})
}

/// Percent-encodes what a query must not carry raw (`|`, `$`, `[`, `]`, `+`, `#`,
/// spaces, non-ASCII); keeps the URL structure characters.
fn enc(path: &str) -> String {
    let mut out = String::new();
    for ch in path.chars() {
        if ch.is_ascii_alphanumeric() || "-._~/?=&:,*!'();@%".contains(ch) {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for b in ch.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn body_text(r: &Resp) -> String {
    let t = String::from_utf8_lossy(&r.body);
    t.chars().take(400).collect()
}

/// GET a search (relative, encoded here; or an absolute link from the server) and
/// return the searchset Bundle, or why not.
async fn try_search(s: &TestServer, path: &str) -> Result<Value, String> {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        enc(path)
    };
    let r = s.get(&url).await;
    if r.status.as_u16() != 200 {
        return Err(format!("status {}: {}", r.status.as_u16(), body_text(&r)));
    }
    let b: Value = serde_json::from_slice(&r.body).map_err(|e| format!("not JSON: {e}"))?;
    check_searchset(&b)?;
    Ok(b)
}

fn check_searchset(b: &Value) -> Result<(), String> {
    if b["resourceType"] != "Bundle" || b["type"] != "searchset" {
        return Err(format!(
            "not a searchset Bundle: {}",
            b.to_string().chars().take(300).collect::<String>()
        ));
    }
    for e in b["entry"].as_array().into_iter().flatten() {
        let mode = e["search"]["mode"].as_str().unwrap_or("");
        if !["match", "include", "outcome"].contains(&mode) {
            return Err(format!("entry with search.mode {mode:?}: {e}"));
        }
    }
    Ok(())
}

async fn search(s: &TestServer, path: &str) -> Value {
    try_search(s, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {:?}: {e}", s.backend))
}

/// The ids of the `match` entries, in Bundle order.
fn match_ids(b: &Value) -> Vec<String> {
    entries_with_mode(b, "match")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// `Type/id` of the `include` entries, sorted.
fn include_refs(b: &Value) -> Vec<String> {
    let mut v: Vec<String> = entries_with_mode(b, "include")
        .iter()
        .map(type_id)
        .collect();
    v.sort();
    v
}

fn entries_with_mode(b: &Value, mode: &str) -> Vec<Value> {
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["search"]["mode"] == mode)
        .map(|e| e["resource"].clone())
        .collect()
}

fn type_id(r: &Value) -> String {
    format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap_or("?"),
        r["id"].as_str().unwrap_or("?")
    )
}

fn link(b: &Value, rel: &str) -> Option<String> {
    b["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == rel)
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}

/// Every page of a search, following `next` links.
async fn try_pages(s: &TestServer, path: &str) -> Result<Vec<Value>, String> {
    let mut pages = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(p) = next {
        if pages.len() >= 300 {
            return Err("more than 300 pages".into());
        }
        let b = try_search(s, &p).await?;
        next = link(&b, "next");
        pages.push(b);
    }
    Ok(pages)
}

async fn pages(s: &TestServer, path: &str) -> Vec<Value> {
    try_pages(s, path)
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {:?}: {e}", s.backend))
}

/// The match ids of every page, in order.
async fn try_all_ids(s: &TestServer, path: &str) -> Result<Vec<String>, String> {
    Ok(try_pages(s, path)
        .await?
        .iter()
        .flat_map(match_ids)
        .collect())
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Collects mismatches so one run reports all of them; `finish` fails the test.
struct Checks<'a> {
    s: &'a TestServer,
    run: usize,
    failures: Vec<String>,
}

impl<'a> Checks<'a> {
    fn new(s: &'a TestServer) -> Self {
        Self {
            s,
            run: 0,
            failures: Vec::new(),
        }
    }

    fn fail(&mut self, msg: String) {
        self.failures.push(msg);
    }

    /// The match ids over all pages, as a set.
    async fn ids(&mut self, q: &str, expected: &[&str]) {
        self.run += 1;
        let exp = sorted(expected);
        match try_all_ids(self.s, q).await {
            Ok(mut got) => {
                got.sort();
                if got != exp {
                    self.fail(format!(
                        "{q}\n      expected {exp:?}\n      actual   {got:?}"
                    ));
                }
            }
            Err(e) => self.fail(format!("{q}\n      expected {exp:?}\n      error    {e}")),
        }
    }

    /// The match ids over all pages, in order.
    async fn ordered(&mut self, q: &str, expected: &[&str]) {
        self.run += 1;
        let exp: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        match try_all_ids(self.s, q).await {
            Ok(got) => {
                if got != exp {
                    self.fail(format!(
                        "{q}\n      expected (in order) {exp:?}\n      actual              {got:?}"
                    ));
                }
            }
            Err(e) => self.fail(format!("{q}\n      expected {exp:?}\n      error    {e}")),
        }
    }

    /// One page: its match ids (as a set) and its included `Type/id`s (as a set).
    async fn includes(&mut self, q: &str, matches: &[&str], included: &[&str]) {
        self.run += 1;
        let (em, ei) = (sorted(matches), sorted(included));
        match try_search(self.s, q).await {
            Ok(b) => {
                let mut gm = match_ids(&b);
                gm.sort();
                let gi = include_refs(&b);
                if gm != em || gi != ei {
                    self.fail(format!(
                        "{q}\n      expected match {em:?} include {ei:?}\n      actual   match {gm:?} include {gi:?}"
                    ));
                }
            }
            Err(e) => self.fail(format!(
                "{q}\n      expected match {em:?} include {ei:?}\n      error {e}"
            )),
        }
    }

    /// The request is refused with 400 and an OperationOutcome.
    async fn bad(&mut self, q: &str) {
        self.run += 1;
        let r = self.s.get(&enc(q)).await;
        let is_outcome = serde_json::from_slice::<Value>(&r.body)
            .map(|b| b["resourceType"] == "OperationOutcome" && b["issue"][0]["code"].is_string())
            .unwrap_or(false);
        if r.status.as_u16() != 400 || !is_outcome {
            self.fail(format!(
                "{q}\n      expected 400 OperationOutcome\n      actual   {} {}",
                r.status.as_u16(),
                body_text(&r)
            ));
        }
    }

    fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} search checks failed on {:?}:\n  {}",
            self.failures.len(),
            self.run,
            self.s.backend,
            self.failures.join("\n  ")
        );
    }
}

async fn clinical_fixture(s: &TestServer) {
    put(s, "Patient", "p1", json!({"name": [{"family": "One"}]})).await;
    put(s, "Patient", "p2", json!({"name": [{"family": "Two"}]})).await;
    let o = |p: &str, code: &str| json!({"status": "final", "code": coded(LOINC, code), "subject": reference(p)});
    put(s, "Observation", "o1", o("Patient/p1", "8480-6")).await;
    put(s, "Observation", "o2", o("Patient/p2", "8480-6")).await;
    put(s, "Observation", "o3", o("Patient/p1", "29463-7")).await;
    put(s, "Organization", "org1", json!({"name": "One Org"})).await;
}
