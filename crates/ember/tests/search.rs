//! FHIR R4 search over HTTP, on both stores.
//!
//! Every test starts from an empty server and writes its own small fixture with
//! `PUT /Type/id`, so ids are known in advance; every expected result below was worked
//! out by hand from the fixture in the same test. Lists compared without `_sort` are
//! compared as sets (sorted); with `_sort` they are compared in order.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Backend, Resp, TestServer};
use serde_json::{Value, json};

both_stores!(
    bundle_is_a_searchset,
    // parameter types
    string_search,
    full_text_search,
    token_search,
    token_of_type,
    reference_search,
    date_search_on_dates,
    date_search_on_datetimes_and_periods,
    number_search,
    quantity_search,
    quantity_canonical_units,
    uri_search,
    composite_search,
    combo_parameters,
    resource_level_params,
    last_updated_search,
    // combinations, chains, _has
    or_and_combinations,
    chaining,
    chaining_without_type_modifier,
    reverse_chaining,
    reverse_chaining_from_one_reference,
    // _include, _revinclude
    include_and_revinclude,
    include_iterate,
    include_wildcard,
    // result shaping
    sorting,
    count_and_total,
    token_counts_follow_writes,
    summary_and_elements,
    paging_follows_links,
    // other entry points
    system_search,
    compartment_search,
    post_search,
    // the index follows writes
    index_follows_writes,
    // handling and errors
    lenient_and_strict_handling,
    bad_input_is_400,
    // concurrency
    paging_under_concurrent_inserts,
    sorted_paging_under_concurrent_inserts,
);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

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

/// `Type/id` of the `match` entries, in Bundle order.
fn match_refs(b: &Value) -> Vec<String> {
    entries_with_mode(b, "match").iter().map(type_id).collect()
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

// ---------------------------------------------------------------------------------------
// The Bundle
// ---------------------------------------------------------------------------------------

async fn bundle_is_a_searchset(s: &TestServer) {
    let stored = put(s, "Patient", "b1", json!({"name": [{"family": "Shape"}]})).await;
    put(s, "Patient", "b2", json!({"name": [{"family": "Other"}]})).await;
    let b = search(s, "Patient?family=shape").await;
    assert_eq!(b["type"], "searchset");
    let entries = b["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{b}");
    let e = &entries[0];
    assert_eq!(e["search"]["mode"], "match");
    assert_eq!(e["fullUrl"], format!("{}/Patient/b1", s.base));
    // The entry is the stored resource.
    assert_eq!(e["resource"], stored);
    let me = link(&b, "self").expect("a self link");
    assert!(me.starts_with(&format!("{}/Patient", s.base)), "{me}");
    assert!(me.contains("family=shape"), "{me}");
    assert_eq!(link(&b, "next"), None, "one result fits on one page: {b}");
    if !b["total"].is_null() {
        assert_eq!(b["total"], 1);
    }
    // A type with no resources at all, and a search without parameters.
    let empty = search(s, "Observation").await;
    assert!(match_ids(&empty).is_empty(), "{empty}");
    let mut all = match_ids(&search(s, "Patient").await);
    all.sort();
    assert_eq!(all, ["b1", "b2"]);
    // An unknown resource type is not a search.
    let r = s.get("Nonsense?name=x").await;
    assert_eq!(r.status.as_u16(), 404, "{}", body_text(&r));
    r.outcome();
}

// ---------------------------------------------------------------------------------------
// Parameter types
// ---------------------------------------------------------------------------------------

async fn string_search(s: &TestServer) {
    put(
        s,
        "Patient",
        "p1",
        json!({"name": [{"family": "Ångström", "given": ["Eva"]}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p2",
        json!({"name": [{"family": "Angstrom", "given": ["Erik"]}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p3",
        json!({"name": [{"family": "Anders", "given": ["Lena"]}], "address": [{"city": "Århus"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p4",
        json!({"name": [{"family": "Berg", "given": ["Angelica"]}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p5",
        json!({"name": [{"family": "Lindang", "given": ["Ola"]}]}),
    )
    .await;

    let mut c = Checks::new(s);
    // Default: starts-with, case- and accent-insensitive. Lindang only contains "ang".
    c.ids("Patient?family=ang", &["p1", "p2"]).await;
    c.ids("Patient?family=ANGSTR", &["p1", "p2"]).await;
    c.ids("Patient?family=angstrom", &["p1", "p2"]).await;
    c.ids("Patient?family=Ångström", &["p1", "p2"]).await; // accents ignored in the query too
    c.ids("Patient?family=berg", &["p4"]).await;
    c.ids("Patient?family=zzz", &[]).await;
    // :exact is the whole string, case- and accent-sensitive.
    c.ids("Patient?family:exact=Angstrom", &["p2"]).await;
    c.ids("Patient?family:exact=Ångström", &["p1"]).await;
    c.ids("Patient?family:exact=angstrom", &[]).await;
    c.ids("Patient?family:exact=Angs", &[]).await;
    // :contains anywhere, case-insensitive.
    c.ids("Patient?family:contains=ang", &["p1", "p2", "p5"])
        .await;
    c.ids("Patient?family:contains=DANG", &["p5"]).await;
    // name covers given too: Angelica.
    c.ids("Patient?name=ang", &["p1", "p2", "p4"]).await;
    c.ids("Patient?name:contains=ang", &["p1", "p2", "p4", "p5"])
        .await;
    c.ids("Patient?given=er", &["p2"]).await;
    c.ids("Patient?address-city=arhus", &["p3"]).await;
    c.ids("Patient?address=århus", &["p3"]).await;
    // OR and AND.
    c.ids("Patient?name=eva,lena", &["p1", "p3"]).await;
    c.ids("Patient?name=ang&name=erik", &["p2"]).await; // p2 is the only Ang* with Erik
    c.ids("Patient?family=an&given=le", &["p3"]).await;
    c.ids("Patient?family:exact=Angstrom,Berg", &["p2", "p4"])
        .await;
    c.finish();
}

async fn full_text_search(s: &TestServer) {
    let div = |t: &str| {
        json!({"status": "generated",
        "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{t}</div>")})
    };
    put(
        s,
        "Patient",
        "t1",
        json!({"text": div("Lives in Århus &amp; <b>bikes</b> daily"),
        "name": [{"family": "Holm"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "t2",
        json!({"text": div("Retired teacher"),
        "name": [{"family": "Bikes"}], "address": [{"city": "Odense"}]}),
    )
    .await;
    put(s, "Patient", "t3", json!({"name": [{"family": "Vang"}]})).await;
    let mut c = Checks::new(s);
    // _text: the narrative only, word by word, case- and accent-insensitive.
    c.ids("Patient?_text=bikes", &["t1"]).await;
    c.ids("Patient?_text=ARHUS", &["t1"]).await;
    c.ids("Patient?_text=daily bikes", &["t1"]).await;
    c.ids("Patient?_text=teacher,arhus", &["t1", "t2"]).await;
    c.ids("Patient?_text=holm", &[]).await;
    // _content: every string, the narrative included.
    c.ids("Patient?_content=bikes", &["t1", "t2"]).await;
    c.ids("Patient?_content=odense", &["t2"]).await;
    c.ids("Patient?_content=vang", &["t3"]).await;
    c.ids("Patient?_content=vang&_text=bikes", &[]).await;
    // An update replaces the words.
    put(s, "Patient", "t3", json!({"name": [{"family": "Dahl"}]})).await;
    c.ids("Patient?_content=vang", &[]).await;
    c.ids("Patient?_content=dahl", &["t3"]).await;
    c.finish();
    // Input that is not words is a 400, not an error of the text engine.
    let r = s.get("Patient?_content=%22%2A%22").await;
    assert_eq!(r.status.as_u16(), 400, "{}", body_text(&r));
}

/// Observation's `combo-*` parameters cover the Observation and its components.
async fn combo_parameters(s: &TestServer) {
    let q = |v: f64| json!({"value": v, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"});
    put(
        s,
        "Observation",
        "bp",
        obs(json!({
        "code": coded("http://loinc.org", "85354-9"),
        "component": [
            {"code": coded("http://loinc.org", "8480-6"), "valueQuantity": q(150.0)},
            {"code": coded("http://loinc.org", "8462-4"), "valueQuantity": q(95.0)}
        ]})),
    )
    .await;
    put(
        s,
        "Observation",
        "sys",
        obs(json!({
        "code": coded("http://loinc.org", "8480-6"), "valueQuantity": q(120.0)})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Observation?combo-code=8480-6", &["bp", "sys"]).await;
    c.ids("Observation?combo-code=85354-9", &["bp"]).await;
    c.ids("Observation?code=8480-6", &["sys"]).await;
    c.ids("Observation?combo-value-quantity=gt140", &["bp"])
        .await;
    c.ids("Observation?combo-value-quantity=gt100", &["bp", "sys"])
        .await;
    c.ids(
        "Observation?combo-value-quantity=lt100|http://unitsofmeasure.org|mm[Hg]",
        &["bp"],
    )
    .await;
    // Code and value pair within the Observation or within one component.
    c.ids(
        "Observation?combo-code-value-quantity=8480-6$gt130",
        &["bp"],
    )
    .await;
    c.ids(
        "Observation?combo-code-value-quantity=8480-6$lt130",
        &["sys"],
    )
    .await;
    c.ids("Observation?combo-code-value-quantity=8462-4$gt130", &[])
        .await;
    c.ids("Observation?combo-code:missing=true", &[]).await;
    c.ordered("Observation?_sort=-combo-value-quantity", &["bp", "sys"])
        .await;
    c.finish();
}

async fn token_search(s: &TestServer) {
    let vital = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]);
    put(
        s,
        "Observation",
        "o1",
        json!({"status": "final", "category": vital,
               "code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic pressure"}]}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o2",
        json!({"status": "preliminary", "category": vital,
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "8480-6"}]}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o3",
        json!({"status": "final", "code": {"coding": [{"code": "8480-6"}]}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o4",
        json!({"status": "amended",
               "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}], "text": "Weight"}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o5",
        json!({"status": "final", "code": {"text": "Blood glucose"}}),
    )
    .await;
    put(
        s,
        "Patient",
        "t1",
        json!({"gender": "female", "active": true,
               "identifier": [{"system": "urn:mrn", "value": "A1"}],
               "telecom": [{"system": "email", "value": "t1@example.org"}, {"system": "phone", "value": "555-0101"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "t2",
        json!({"gender": "male", "active": false, "identifier": [{"system": "urn:ssn", "value": "A1"}]}),
    )
    .await;
    put(s, "Patient", "t3", json!({"gender": "female"})).await;

    let mut c = Checks::new(s);
    c.ids("Observation?code=8480-6", &["o1", "o2", "o3"]).await;
    c.ids("Observation?code=http://loinc.org|8480-6", &["o1"])
        .await;
    c.ids("Observation?code=|8480-6", &["o3"]).await; // no system
    c.ids("Observation?code=http://loinc.org|", &["o1", "o4"])
        .await;
    c.ids(
        "Observation?code=http://loinc.org|8480-6,http://loinc.org|29463-7",
        &["o1", "o4"],
    )
    .await;
    // :text is a string search on CodeableConcept.text and Coding.display.
    c.ids("Observation?code:text=weight", &["o4"]).await;
    c.ids("Observation?code:text=body", &["o4"]).await;
    c.ids("Observation?code:text=blood", &["o5"]).await;
    // :not includes resources without any value for the parameter (o5 has only text).
    c.ids("Observation?code:not=8480-6", &["o4", "o5"]).await;
    c.ids("Observation?status:not=final", &["o2", "o4"]).await;
    c.ids(
        "Observation?status=final,amended",
        &["o1", "o3", "o4", "o5"],
    )
    .await;
    c.ids("Observation?status=final&code=8480-6", &["o1", "o3"])
        .await;
    c.ids("Observation?category=vital-signs", &["o1", "o2"])
        .await;
    c.ids("Observation?category:missing=true", &["o3", "o4", "o5"])
        .await;
    c.ids("Observation?category:missing=false", &["o1", "o2"])
        .await;
    // code, boolean, Identifier and ContactPoint tokens.
    c.ids("Patient?gender=female", &["t1", "t3"]).await;
    c.ids("Patient?gender:not=female", &["t2"]).await;
    c.ids("Patient?active=true", &["t1"]).await;
    c.ids("Patient?active=false", &["t2"]).await;
    c.ids("Patient?active:missing=true", &["t3"]).await;
    c.ids("Patient?identifier=A1", &["t1", "t2"]).await;
    c.ids("Patient?identifier=urn:mrn|A1", &["t1"]).await;
    c.ids("Patient?identifier=urn:ssn|", &["t2"]).await;
    c.ids("Patient?identifier=|A1", &[]).await; // both identifiers have a system
    c.ids("Patient?identifier:missing=true", &["t3"]).await;
    c.ids("Patient?identifier:missing=false", &["t1", "t2"])
        .await;
    c.ids("Patient?email=t1@example.org", &["t1"]).await;
    c.ids("Patient?phone=555-0101", &["t1"]).await;
    c.ids("Patient?email=555-0101", &[]).await; // the phone is not an email
    c.finish();
}

async fn token_of_type(s: &TestServer) {
    let v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
    put(
        s,
        "Patient",
        "ot1",
        json!({"identifier": [{"type": {"coding": [{"system": v2, "code": "MR"}], "text": "Medical record"},
                               "system": "urn:mrn", "value": "123"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "ot2",
        json!({"identifier": [{"type": {"coding": [{"system": v2, "code": "SS"}]},
                               "system": "urn:ssn", "value": "123"}]}),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Patient?identifier=123", &["ot1", "ot2"]).await;
    // :text on an Identifier searches its type.text.
    c.ids("Patient?identifier:text=medical", &["ot1"]).await;
    c.finish();

    // :of-type is optional. Supported: it must select by type and value. Unsupported:
    // strict handling refuses it, lenient handling ignores it and says so.
    let q = "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123";
    let strict = s
        .send("GET", &enc(q), &[("prefer", "handling=strict")], None)
        .await;
    if strict.status.as_u16() == 400 {
        assert!(
            strict.outcome().contains("of-type"),
            "{}",
            body_text(&strict)
        );
        let b = search(s, q).await;
        let mut ids = match_ids(&b);
        ids.sort();
        assert_eq!(ids, ["ot1", "ot2"], "an ignored parameter does not filter");
        assert_eq!(entries_with_mode(&b, "outcome").len(), 1, "{b}");
        assert!(!link(&b, "self").unwrap().contains("of-type"));
        return;
    }
    assert_eq!(strict.status.as_u16(), 200, "{}", body_text(&strict));
    let mut c = Checks::new(s);
    c.ids(q, &["ot1"]).await;
    c.ids(
        "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|SS|123",
        &["ot2"],
    )
    .await;
    c.ids(
        "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|999",
        &[],
    )
    .await;
    c.finish();
}

async fn reference_search(s: &TestServer) {
    put(s, "Patient", "pa", json!({})).await;
    put(s, "Patient", "pb", json!({})).await;
    put(s, "Group", "g1", json!({"type": "person", "actual": true})).await;
    put(
        s,
        "Observation",
        "o1",
        obs(json!({"subject": reference("Patient/pa")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o2",
        obs(json!({"subject": reference("Patient/pb")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o3",
        obs(json!({"subject": reference("Group/g1")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o4",
        obs(json!({"subject": reference("http://other.example/fhir/Patient/pa")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o5",
        obs(json!({"subject": {"identifier": {"system": "urn:mrn", "value": "M5"}}})),
    )
    .await;
    put(s, "Observation", "o6", obs(json!({}))).await;

    let mut c = Checks::new(s);
    // A relative reference means this server: o4 points at another server's Patient/pa.
    c.ids("Observation?subject=Patient/pa", &["o1"]).await;
    c.ids("Observation?subject=Patient/pb", &["o2"]).await;
    // An id alone: any target type with that id.
    c.ids("Observation?subject=pa", &["o1"]).await;
    c.ids("Observation?subject=g1", &["o3"]).await;
    // :Type.
    c.ids("Observation?subject:Patient=pa", &["o1"]).await;
    c.ids("Observation?subject:Group=g1", &["o3"]).await;
    c.ids("Observation?subject:Group=pa", &[]).await;
    // Absolute URL.
    c.ids(
        "Observation?subject=http://other.example/fhir/Patient/pa",
        &["o4"],
    )
    .await;
    // :identifier.
    c.ids("Observation?subject:identifier=urn:mrn|M5", &["o5"])
        .await;
    c.ids("Observation?subject:identifier=urn:mrn|M6", &[])
        .await;
    // :missing.
    c.ids("Observation?subject:missing=true", &["o6"]).await;
    c.ids(
        "Observation?subject:missing=false",
        &["o1", "o2", "o3", "o4", "o5"],
    )
    .await;
    // OR.
    c.ids("Observation?subject=Patient/pa,Group/g1", &["o1", "o3"])
        .await;
    // patient = subject.where(resolve() is Patient).
    c.ids("Observation?patient=Patient/pb", &["o2"]).await;
    c.ids("Observation?patient=pb", &["o2"]).await;
    c.finish();
}

async fn date_search_on_dates(s: &TestServer) {
    // Ranges: d1 = 1980-05-01 (a day), d2 = all of 1980, d3 = 1981-01-01, d4 = 1979-12-31,
    // d5 = December 1980; d6 has no birthDate.
    for (id, d) in [
        ("d1", "1980-05-01"),
        ("d2", "1980"),
        ("d3", "1981-01-01"),
        ("d4", "1979-12-31"),
        ("d5", "1980-12"),
    ] {
        put(s, "Patient", id, json!({"birthDate": d})).await;
    }
    put(s, "Patient", "d6", json!({"gender": "other"})).await;

    let mut c = Checks::new(s);
    // eq: the search range contains the target range.
    c.ids("Patient?birthdate=1980", &["d1", "d2", "d5"]).await;
    c.ids("Patient?birthdate=eq1980", &["d1", "d2", "d5"]).await;
    c.ids("Patient?birthdate=1980-05", &["d1"]).await; // all of 1980 is not inside May
    c.ids("Patient?birthdate=1980-05-01", &["d1"]).await;
    c.ids("Patient?birthdate=1980-12", &["d5"]).await;
    // ne: the search range does not contain the target range.
    c.ids("Patient?birthdate=ne1980", &["d3", "d4"]).await;
    // gt/lt: the range above/below the search value overlaps the target.
    c.ids("Patient?birthdate=gt1980", &["d3"]).await;
    c.ids("Patient?birthdate=gt1980-06", &["d2", "d3", "d5"])
        .await; // 1980 reaches past June
    c.ids("Patient?birthdate=lt1980", &["d4"]).await;
    c.ids("Patient?birthdate=lt1980-06", &["d1", "d2", "d4"])
        .await;
    // ge/le: as gt/lt, or contained in the search range.
    c.ids("Patient?birthdate=ge1980-05-01", &["d1", "d2", "d3", "d5"])
        .await;
    c.ids("Patient?birthdate=le1980-05-01", &["d1", "d2", "d4"])
        .await;
    c.ids("Patient?birthdate=ge1981", &["d3"]).await;
    // sa/eb: entirely after/before the search range, no overlap.
    c.ids("Patient?birthdate=sa1980-05", &["d3", "d5"]).await;
    c.ids("Patient?birthdate=eb1980-05", &["d4"]).await;
    c.ids("Patient?birthdate=eb1980", &["d4"]).await;
    // AND makes a range.
    c.ids(
        "Patient?birthdate=ge1980&birthdate=lt1981",
        &["d1", "d2", "d5"],
    )
    .await;
    // OR.
    c.ids("Patient?birthdate=1979,1981", &["d3", "d4"]).await;
    c.ids("Patient?birthdate:missing=true", &["d6"]).await;
    c.ids(
        "Patient?birthdate:missing=false",
        &["d1", "d2", "d3", "d4", "d5"],
    )
    .await;
    c.finish();

    // ap is implementation-defined, but must include the exact day and not a far date.
    let got = try_all_ids(s, "Patient?birthdate=ap1980-05-01").await;
    let got = got.unwrap_or_else(|e| panic!("birthdate=ap1980-05-01: {e}"));
    assert!(got.contains(&"d1".to_owned()), "ap1980-05-01 → {got:?}");
    assert!(!got.contains(&"d6".to_owned()), "ap1980-05-01 → {got:?}");
}

async fn date_search_on_datetimes_and_periods(s: &TestServer) {
    put(
        s,
        "Observation",
        "e1",
        obs(json!({"effectiveDateTime": "2020-01-01T00:00:00Z"})),
    )
    .await;
    put(
        s,
        "Observation",
        "e2",
        obs(json!({"effectiveDateTime": "2019-12-31T23:59:59Z"})),
    )
    .await;
    put(
        s,
        "Observation",
        "e3",
        obs(json!({"effectivePeriod": {"start": "2019-12-01", "end": "2020-02-01"}})),
    )
    .await;
    put(
        s,
        "Observation",
        "e4",
        obs(json!({"effectivePeriod": {"start": "2019-06-01", "end": "2019-07-01"}})),
    )
    .await;
    put(
        s,
        "Observation",
        "e5",
        obs(json!({"effectiveDateTime": "2020-06-15"})),
    )
    .await;
    put(
        s,
        "Observation",
        "e6",
        obs(json!({"effectivePeriod": {"start": "2021-01-01T10:00:00Z"}})), // open-ended
    )
    .await;
    put(s, "Observation", "e7", obs(json!({}))).await;

    let mut c = Checks::new(s);
    c.ids(
        "Observation?date=ge2020-01-01T00:00:00Z",
        &["e1", "e3", "e5", "e6"],
    )
    .await;
    c.ids(
        "Observation?date=gt2020-01-01T00:00:00Z",
        &["e3", "e5", "e6"],
    )
    .await;
    c.ids(
        "Observation?date=lt2020-01-01T00:00:00Z",
        &["e2", "e3", "e4"],
    )
    .await;
    c.ids(
        "Observation?date=le2020-01-01T00:00:00Z",
        &["e1", "e2", "e3", "e4"],
    )
    .await;
    c.ids("Observation?date=2020-01-01T00:00:00Z", &["e1"])
        .await;
    c.ids("Observation?date=2020-01", &["e1"]).await; // e3 runs past January
    c.ids("Observation?date=2020", &["e1", "e5"]).await;
    c.ids("Observation?date=2019-12-31", &["e2"]).await;
    c.ids("Observation?date=sa2019-12-31", &["e1", "e5", "e6"])
        .await;
    c.ids("Observation?date=eb2020", &["e2", "e4"]).await;
    c.ids("Observation?date=gt2020-12-31", &["e6"]).await;
    c.ids("Observation?date=ge2030-01-01", &["e6"]).await; // no end: still going
    // A time zone offset names the same instant as e1.
    c.ids("Observation?date=2020-01-01T01:00:00+01:00", &["e1"])
        .await;
    c.ids("Observation?date=ge2019-06-15&date=le2019-06-20", &["e4"])
        .await;
    c.finish();
}

async fn number_search(s: &TestServer) {
    put(s, "Patient", "rp", json!({})).await;
    let risk = |p: Value| json!({"status": "final", "subject": {"reference": "Patient/rp"}, "prediction": p});
    put(
        s,
        "RiskAssessment",
        "r1",
        risk(json!([{"probabilityDecimal": 0.8}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r2",
        risk(json!([{"probabilityDecimal": 0.5}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r3",
        risk(json!([{"probabilityDecimal": 0.25}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r4",
        risk(json!([{"probabilityDecimal": 0.1}, {"probabilityDecimal": 0.95}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r5",
        risk(json!([{"probabilityRange": {"low": {"value": 0.2}, "high": {"value": 0.4}}}])),
    )
    .await;

    let mut c = Checks::new(s);
    c.ids("RiskAssessment?probability=gt0.5", &["r1", "r4"])
        .await;
    c.ids("RiskAssessment?probability=ge0.5", &["r1", "r2", "r4"])
        .await;
    c.ids("RiskAssessment?probability=lt0.5", &["r3", "r4"])
        .await;
    c.ids("RiskAssessment?probability=le0.25", &["r3", "r4"])
        .await;
    c.ids("RiskAssessment?probability=0.8", &["r1"]).await;
    c.ids("RiskAssessment?probability=eq0.8", &["r1"]).await;
    c.ids("RiskAssessment?probability=0.80", &["r1"]).await; // [0.795, 0.805)
    c.ids("RiskAssessment?probability=0.25", &["r3"]).await;
    c.ids("RiskAssessment?probability=0.6", &[]).await;
    c.ids("RiskAssessment?probability=gt0.90", &["r4"]).await;
    // Each value of r4 satisfies one of the two: 0.95 > 0.20 and 0.1 < 0.6.
    c.ids(
        "RiskAssessment?probability=gt0.20&probability=lt0.6",
        &["r2", "r3", "r4"],
    )
    .await;
    c.ids("RiskAssessment?probability=0.8,0.5", &["r1", "r2"])
        .await;
    c.finish();

    let ne = try_all_ids(s, "RiskAssessment?probability=ne0.5")
        .await
        .unwrap_or_else(|e| panic!("probability=ne0.5: {e}"));
    assert!(
        ne.contains(&"r1".into()) && ne.contains(&"r3".into()) && !ne.contains(&"r2".into()),
        "probability=ne0.5 → {ne:?}"
    );
}

async fn quantity_search(s: &TestServer) {
    let q = |value: Value, code: Option<&str>, unit: &str| {
        let mut v = json!({"value": value, "unit": unit});
        if let Some(code) = code {
            v["system"] = json!(UCUM);
            v["code"] = json!(code);
        }
        obs(json!({"valueQuantity": v}))
    };
    put(s, "Observation", "q1", q(json!(5.4), Some("mg"), "mg")).await;
    put(s, "Observation", "q2", q(json!(6), Some("mg"), "mg")).await;
    put(s, "Observation", "q4", q(json!(8), None, "mg")).await; // unit text only
    put(
        s,
        "Observation",
        "q5",
        q(json!(100), Some("mg/dL"), "mg/dL"),
    )
    .await;
    put(s, "Observation", "q6", obs(json!({"valueString": "n/a"}))).await;

    let mut c = Checks::new(s);
    c.ids(
        "Observation?value-quantity=5.4|http://unitsofmeasure.org|mg",
        &["q1"],
    )
    .await;
    c.ids("Observation?value-quantity=5.4", &["q1"]).await; // any unit
    c.ids(
        "Observation?value-quantity=gt5.4|http://unitsofmeasure.org|mg",
        &["q2"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=ge5.4|http://unitsofmeasure.org|mg",
        &["q1", "q2"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=lt6|http://unitsofmeasure.org|mg",
        &["q1"],
    )
    .await;
    // No system: the code or the unit text.
    c.ids("Observation?value-quantity=le6||mg", &["q1", "q2"])
        .await;
    c.ids("Observation?value-quantity=8||mg", &["q4"]).await;
    c.ids("Observation?value-quantity=gt5.0||mg", &["q1", "q2", "q4"])
        .await;
    c.ids(
        "Observation?value-quantity=gt50|http://unitsofmeasure.org|mg/dL",
        &["q5"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=gt50|http://unitsofmeasure.org|mg",
        &[],
    )
    .await;
    c.ids(
        "Observation?value-quantity=6|http://unitsofmeasure.org|mg,100||mg/dL",
        &["q2", "q5"],
    )
    .await;
    c.finish();
}

async fn quantity_canonical_units(s: &TestServer) {
    let q = |value: f64, code: &str| {
        obs(json!({"valueQuantity": {"value": value, "system": UCUM, "code": code, "unit": code}}))
    };
    put(s, "Observation", "u1", q(5.4, "mg")).await;
    put(s, "Observation", "u2", q(6.0, "mg")).await;
    put(s, "Observation", "u3", q(0.01, "g")).await; // = 10 mg
    put(s, "Observation", "u4", q(2.0, "kg")).await; // = 2,000,000 mg
    let mut c = Checks::new(s);
    c.ids(
        "Observation?value-quantity=gt5.4|http://unitsofmeasure.org|mg",
        &["u2", "u3", "u4"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=10|http://unitsofmeasure.org|mg",
        &["u3"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=0.006|http://unitsofmeasure.org|g",
        &["u2"],
    )
    .await; // [5.5, 6.5) mg
    c.ids(
        "Observation?value-quantity=lt1|http://unitsofmeasure.org|g",
        &["u1", "u2", "u3"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=2000|http://unitsofmeasure.org|g",
        &["u4"],
    )
    .await;
    c.finish();
}

async fn uri_search(s: &TestServer) {
    for (id, url) in [
        ("v1", "http://acme.org/fhir/ValueSet/123"),
        ("v2", "http://acme.org/fhir/ValueSet/123/v2"),
        ("v3", "http://acme.org/fhir/other/ValueSet/9"),
        ("v4", "http://example.com/ValueSet/1"),
        ("v5", "urn:oid:1.2.3.4"),
    ] {
        put(s, "ValueSet", id, json!({"status": "active", "url": url})).await;
    }
    put(s, "ValueSet", "v6", json!({"status": "draft"})).await;

    let mut c = Checks::new(s);
    c.ids("ValueSet?url=http://acme.org/fhir/ValueSet/123", &["v1"])
        .await; // exact, not a prefix
    c.ids("ValueSet?url=http://acme.org/fhir/ValueSet/12", &[])
        .await;
    c.ids("ValueSet?url=urn:oid:1.2.3.4", &["v5"]).await;
    c.ids(
        "ValueSet?url:below=http://acme.org/fhir/",
        &["v1", "v2", "v3"],
    )
    .await;
    c.ids(
        "ValueSet?url:below=http://acme.org/fhir/ValueSet/123",
        &["v1", "v2"],
    )
    .await;
    // :above: the stored url is a prefix of the query.
    c.ids(
        "ValueSet?url:above=http://acme.org/fhir/ValueSet/123/v2/x",
        &["v1", "v2"],
    )
    .await;
    c.ids(
        "ValueSet?url:above=http://acme.org/fhir/ValueSet/123",
        &["v1"],
    )
    .await;
    c.ids("ValueSet?url:missing=true", &["v6"]).await;
    c.ids(
        "ValueSet?url=http://example.com/ValueSet/1,urn:oid:1.2.3.4",
        &["v4", "v5"],
    )
    .await;
    c.finish();
}

async fn composite_search(s: &TestServer) {
    let mmhg = |v: f64| json!({"value": v, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"});
    let bp_code = |code: &str| json!({"coding": [{"system": LOINC, "code": code}]});
    put(
        s,
        "Observation",
        "c1",
        json!({"status": "final", "code": bp_code("8480-6"), "valueQuantity": mmhg(120.0)}),
    )
    .await;
    put(
        s,
        "Observation",
        "c2",
        json!({"status": "final", "code": bp_code("8480-6"), "valueQuantity": mmhg(90.0)}),
    )
    .await;
    put(
        s,
        "Observation",
        "c3",
        json!({"status": "final", "code": bp_code("8462-4"), "valueQuantity": mmhg(130.0)}),
    )
    .await;
    put(
        s,
        "Observation",
        "c4",
        json!({"status": "final", "code": bp_code("85354-9"), "component": [
            {"code": bp_code("8480-6"), "valueQuantity": mmhg(150.0)},
            {"code": bp_code("8462-4"), "valueQuantity": mmhg(80.0)}]}),
    )
    .await;
    put(
        s,
        "Observation",
        "c5",
        json!({"status": "final", "code": bp_code("85354-9"), "component": [
            {"code": bp_code("8480-6"), "valueQuantity": mmhg(95.0)},
            {"code": bp_code("8462-4"), "valueQuantity": mmhg(110.0)}]}),
    )
    .await;

    let mut c = Checks::new(s);
    c.ids(
        "Observation?code-value-quantity=http://loinc.org|8480-6$gt100",
        &["c1"],
    )
    .await;
    c.ids(
        "Observation?code-value-quantity=http://loinc.org|8462-4$gt100",
        &["c3"],
    )
    .await;
    // The plain quantity, without units: the value as written (90, 120, 130 mm[Hg]).
    c.ids("Observation?value-quantity=gt100", &["c1", "c3"])
        .await;
    c.ids("Observation?value-quantity=lt100", &["c2"]).await;
    c.ids("Observation?code-value-quantity=8480-6$lt100", &["c2"])
        .await;
    c.ids(
        "Observation?code-value-quantity=http://loinc.org|8480-6$120|http://unitsofmeasure.org|mm[Hg]",
        &["c1"],
    )
    .await;
    // The pair must come from one component: c5's 110 is diastolic, its systolic 95.
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100|http://unitsofmeasure.org|mm[Hg]",
        &["c4"],
    )
    .await;
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100",
        &["c4"],
    )
    .await;
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8462-4$gt100",
        &["c5"],
    )
    .await;
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8462-4$lt100",
        &["c4"],
    )
    .await;
    // Plain token/quantity parameters are not pairwise: c5 has a 8480-6 component and a
    // component over 100.
    c.ids(
        "Observation?component-code=http://loinc.org|8480-6&component-value-quantity=gt100",
        &["c4", "c5"],
    )
    .await;
    c.finish();
}

async fn resource_level_params(s: &TestServer) {
    let conf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    put(
        s,
        "Patient",
        "a",
        json!({"meta": {"tag": [{"system": "http://ex.org/tags", "code": "vip"}],
                        "profile": ["http://ex.org/StructureDefinition/p1"],
                        "security": [{"system": conf, "code": "R"}],
                        "source": "http://source.ex/a"}}),
    )
    .await;
    put(
        s,
        "Patient",
        "b",
        json!({"meta": {"tag": [{"system": "http://ex.org/tags", "code": "test"}],
                        "profile": ["http://ex.org/StructureDefinition/p2"],
                        "source": "http://source.ex/b#x"}}),
    )
    .await;
    put(
        s,
        "Patient",
        "c",
        json!({"meta": {"tag": [{"system": "http://other/tags", "code": "vip"}],
                        "security": [{"system": conf, "code": "N"}]}}),
    )
    .await;
    put(s, "Observation", "a", obs(json!({}))).await; // same id, another type

    let mut c = Checks::new(s);
    c.ids("Patient?_id=a", &["a"]).await;
    c.ids("Patient?_id=a,c", &["a", "c"]).await;
    c.ids("Patient?_id=zz", &[]).await;
    c.ids("Observation?_id=a", &["a"]).await;
    c.ids("Patient?_tag=vip", &["a", "c"]).await;
    c.ids("Patient?_tag=http://ex.org/tags|vip", &["a"]).await;
    c.ids("Patient?_tag=http://ex.org/tags|", &["a", "b"]).await;
    c.ids("Patient?_tag:not=http://ex.org/tags|vip", &["b", "c"])
        .await;
    c.ids("Patient?_tag=vip&_tag=http://ex.org/tags|", &["a"])
        .await;
    c.ids(
        "Patient?_profile=http://ex.org/StructureDefinition/p1",
        &["a"],
    )
    .await;
    c.ids(
        "Patient?_profile=http://ex.org/StructureDefinition/p1,http://ex.org/StructureDefinition/p2",
        &["a", "b"],
    )
    .await;
    c.ids(
        "Patient?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
        &["a"],
    )
    .await;
    c.ids("Patient?_security=N", &["c"]).await;
    c.ids("Patient?_source=http://source.ex/a", &["a"]).await;
    c.ids("Patient?_source=http://source.ex/b#x", &["b"]).await;
    c.ids("Patient?_id=a&_tag=test", &[]).await;
    c.finish();
}

async fn last_updated_search(s: &TestServer) {
    let stamp = |v: &Value| v["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let ta = stamp(&put(s, "Patient", "a", json!({})).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let tb = stamp(&put(s, "Patient", "b", json!({})).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let tc = stamp(&put(s, "Patient", "c", json!({})).await);
    assert!(ta < tb && tb < tc, "{ta} {tb} {tc}");

    let mut c = Checks::new(s);
    c.ids(&format!("Patient?_lastUpdated=gt{ta}"), &["b", "c"])
        .await;
    c.ids(&format!("Patient?_lastUpdated=ge{tb}"), &["b", "c"])
        .await;
    c.ids(&format!("Patient?_lastUpdated=lt{tb}"), &["a"]).await;
    c.ids(&format!("Patient?_lastUpdated=le{tb}"), &["a", "b"])
        .await;
    c.ids(&format!("Patient?_lastUpdated={tb}"), &["b"]).await;
    c.ids(
        &format!("Patient?_lastUpdated=ge{ta}&_lastUpdated=lt{tc}"),
        &["a", "b"],
    )
    .await;
    c.ids(&format!("Patient?_lastUpdated=gt{tc}"), &[]).await;
    c.ids("Patient?_lastUpdated=gt2000-01-01", &["a", "b", "c"])
        .await;
    c.ids("Patient?_lastUpdated=lt2000", &[]).await;
    c.finish();

    // An update moves the resource's lastUpdated.
    let ta2 = stamp(&put(s, "Patient", "a", json!({"active": true})).await);
    let mut c = Checks::new(s);
    c.ids(&format!("Patient?_lastUpdated=gt{tc}"), &["a"]).await;
    c.ids(&format!("Patient?_lastUpdated=lt{ta2}"), &["b", "c"])
        .await;
    c.finish();
}

// ---------------------------------------------------------------------------------------
// OR, AND, chains and _has
// ---------------------------------------------------------------------------------------

async fn or_and_combinations(s: &TestServer) {
    for (id, family, gender, birth) in [
        ("x1", "Nord", "female", "1990-01-01"),
        ("x2", "Nord", "male", "1985-01-01"),
        ("x3", "Syd", "female", "1985-06-01"),
        ("x4", "Vest", "male", "1990-06-01"),
        ("x5", "Östen", "other", "2000-01-01"),
    ] {
        put(
            s,
            "Patient",
            id,
            json!({"name": [{"family": family}], "gender": gender, "birthDate": birth}),
        )
        .await;
    }
    let mut c = Checks::new(s);
    c.ids("Patient?gender=female,other", &["x1", "x3", "x5"])
        .await;
    c.ids("Patient?family=nord,syd&gender=female", &["x1", "x3"])
        .await;
    c.ids("Patient?family=nord&gender=male", &["x2"]).await;
    c.ids("Patient?family=nord&family=syd", &[]).await; // no one has both
    c.ids(
        "Patient?birthdate=1985,2000&gender=male,other",
        &["x2", "x5"],
    )
    .await;
    c.ids(
        "Patient?birthdate=ge1985-03&birthdate=le1990",
        &["x1", "x3", "x4"],
    )
    .await;
    c.ids("Patient?family=ost", &["x5"]).await;
    c.ids("Patient?_id=x1,x2,x3&gender=male", &["x2"]).await;
    c.ids("Patient?gender=male&gender=female", &[]).await;
    c.finish();
}

/// Shared by chaining tests: organizations, practitioners, patients, observations,
/// encounters.
async fn chain_fixture(s: &TestServer) {
    put(
        s,
        "Organization",
        "org1",
        json!({"name": "Northwind Clinic"}),
    )
    .await;
    put(s, "Organization", "org2", json!({"name": "Southgate Care"})).await;
    put(
        s,
        "Practitioner",
        "gp1",
        json!({"name": [{"family": "Holm"}]}),
    )
    .await;
    put(
        s,
        "Practitioner",
        "gp2",
        json!({"name": [{"family": "Dahl"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "pa",
        json!({"name": [{"family": "Rasmussen"}], "managingOrganization": reference("Organization/org1"),
               "generalPractitioner": [reference("Practitioner/gp1")]}),
    )
    .await;
    put(
        s,
        "Patient",
        "pb",
        json!({"name": [{"family": "Madsen"}], "managingOrganization": reference("Organization/org2"),
               "generalPractitioner": [reference("Practitioner/gp2")]}),
    )
    .await;
    put(s, "Patient", "pc", json!({"name": [{"family": "Rask"}]})).await;
    put(
        s,
        "Group",
        "g1",
        json!({"type": "person", "actual": true, "name": "Rasmussen group"}),
    )
    .await;
    put(
        s,
        "Observation",
        "o1",
        obs(json!({"subject": reference("Patient/pa")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o2",
        obs(json!({"subject": reference("Patient/pb")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o3",
        obs(json!({"subject": reference("Patient/pc")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o4",
        obs(json!({"subject": reference("Group/g1")})),
    )
    .await;
    let enc_body = |p: &str| {
        json!({"status": "finished",
               "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
               "subject": reference(p)})
    };
    put(s, "Encounter", "e1", enc_body("Patient/pa")).await;
    put(s, "Encounter", "e2", enc_body("Patient/pb")).await;
    put(s, "Encounter", "e3", enc_body("Patient/pc")).await;
}

async fn chaining(s: &TestServer) {
    chain_fixture(s).await;
    let mut c = Checks::new(s);
    c.ids("Observation?subject:Patient.name=ras", &["o1", "o3"])
        .await; // Rasmussen, Rask
    c.ids("Observation?subject:Patient.name=mad,rask", &["o2", "o3"])
        .await;
    c.ids("Observation?patient.name=mad", &["o2"]).await;
    c.ids("Observation?subject:Patient.family:exact=Rask", &["o3"])
        .await;
    c.ids(
        "Observation?subject:Patient.organization=Organization/org2",
        &["o2"],
    )
    .await;
    c.ids("Observation?subject:Patient._id=pa", &["o1"]).await;
    // Two levels.
    c.ids(
        "Observation?subject:Patient.organization.name=north",
        &["o1"],
    )
    .await;
    c.ids(
        "Observation?subject:Patient.organization.name=south",
        &["o2"],
    )
    .await;
    c.ids("Observation?subject:Patient.organization.name=nowhere", &[])
        .await;
    c.ids(
        "Encounter?subject:Patient.general-practitioner:Practitioner.name=dahl",
        &["e2"],
    )
    .await;
    c.ids(
        "Encounter?subject:Patient.general-practitioner.name=holm",
        &["e1"],
    )
    .await;
    // A chain ANDed with a plain parameter.
    c.ids("Observation?subject:Patient.name=ras&_id=o3", &["o3"])
        .await;
    c.finish();
}

async fn chaining_without_type_modifier(s: &TestServer) {
    chain_fixture(s).await;
    let mut c = Checks::new(s);
    // Encounter.subject is Patient or Group; general-practitioner exists on Patient only,
    // and its name on Practitioner (and Organization).
    c.ids("Encounter?subject.general-practitioner.name=dahl", &["e2"])
        .await;
    c.ids("Encounter?subject.organization.name=north", &["e1"])
        .await;
    c.finish();
}

async fn reverse_chaining(s: &TestServer) {
    for id in ["pa", "pb", "pc"] {
        put(s, "Patient", id, json!({})).await;
    }
    let o = |p: &str, code: &str| json!({"status": "final", "code": coded(LOINC, code), "subject": reference(p)});
    put(s, "Observation", "o1", o("Patient/pa", "8480-6")).await;
    put(s, "Observation", "o2", o("Patient/pb", "29463-7")).await;
    put(s, "Observation", "o3", o("Patient/pa", "29463-7")).await;
    let dr = |status: &str, result: &str| json!({"status": status, "code": {"text": "panel"}, "result": [reference(result)]});
    put(s, "DiagnosticReport", "dr1", dr("final", "Observation/o1")).await;
    put(
        s,
        "DiagnosticReport",
        "dr2",
        dr("preliminary", "Observation/o2"),
    )
    .await;

    let mut c = Checks::new(s);
    c.ids("Patient?_has:Observation:patient:code=8480-6", &["pa"])
        .await;
    c.ids(
        "Patient?_has:Observation:patient:code=29463-7",
        &["pa", "pb"],
    )
    .await;
    c.ids(
        "Patient?_has:Observation:subject:code=http://loinc.org|29463-7",
        &["pa", "pb"],
    )
    .await;
    c.ids("Patient?_has:Observation:patient:code=1234-5", &[])
        .await;
    // AND of two _has: pa has both codes (on different Observations).
    c.ids(
        "Patient?_has:Observation:patient:code=8480-6&_has:Observation:patient:code=29463-7",
        &["pa"],
    )
    .await;
    // OR inside one _has.
    c.ids(
        "Patient?_has:Observation:patient:code=8480-6,29463-7",
        &["pa", "pb"],
    )
    .await;
    // Nested: patients with an Observation that a final DiagnosticReport has as result.
    c.ids(
        "Patient?_has:Observation:patient:_has:DiagnosticReport:result:status=final",
        &["pa"],
    )
    .await;
    c.ids(
        "Patient?_has:Observation:patient:_has:DiagnosticReport:result:status=preliminary",
        &["pb"],
    )
    .await;
    c.ids(
        "Observation?_has:DiagnosticReport:result:status=final",
        &["o1"],
    )
    .await;
    // _has with another parameter.
    c.ids(
        "Patient?_has:Observation:patient:code=29463-7&_id=pb,pc",
        &["pb"],
    )
    .await;
    c.finish();
}

// ---------------------------------------------------------------------------------------
// _include and _revinclude
// ---------------------------------------------------------------------------------------

/// `_has` whose own criterion references one document (a clinician's patient list):
/// the search starts from the referencing documents.
async fn reverse_chaining_from_one_reference(s: &TestServer) {
    for id in ["pa", "pb", "pc", "pd"] {
        put(s, "Patient", id, json!({"active": id != "pc"})).await;
    }
    put(s, "Group", "ga", json!({"type": "person", "actual": true})).await;
    put(s, "Practitioner", "dr1", json!({})).await;
    put(s, "Practitioner", "dr2", json!({})).await;
    let team = |subject: &str, members: &[&str]| {
        let participant: Vec<Value> = members
            .iter()
            .map(|m| json!({"member": reference(m)}))
            .collect();
        json!({"subject": reference(subject), "participant": participant})
    };
    put(
        s,
        "CareTeam",
        "t1",
        team("Patient/pa", &["Practitioner/dr1"]),
    )
    .await;
    put(
        s,
        "CareTeam",
        "t2",
        team("Patient/pb", &["Practitioner/dr1", "Practitioner/dr2"]),
    )
    .await;
    put(
        s,
        "CareTeam",
        "t3",
        team("Patient/pc", &["Practitioner/dr1"]),
    )
    .await;
    // Two teams of dr1 for pa: pa is listed once.
    put(
        s,
        "CareTeam",
        "t4",
        team("Patient/pa", &["Practitioner/dr1"]),
    )
    .await;
    // A team of dr1 for a Group: not a Patient.
    put(s, "CareTeam", "t5", team("Group/ga", &["Practitioner/dr1"])).await;
    // A deleted team no longer counts.
    put(
        s,
        "CareTeam",
        "t6",
        team("Patient/pd", &["Practitioner/dr2"]),
    )
    .await;
    let r = s.http.delete("CareTeam/t6").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);

    let mut c = Checks::new(s);
    let q = "Patient?_has:CareTeam:subject:participant=Practitioner/dr1";
    c.ids(q, &["pa", "pb", "pc"]).await;
    c.ids(
        "Patient?_has:CareTeam:subject:participant=Practitioner/dr2",
        &["pb"],
    )
    .await;
    c.ids(
        "Group?_has:CareTeam:subject:participant=Practitioner/dr1",
        &["ga"],
    )
    .await;
    c.ids(
        "Patient?_has:CareTeam:subject:participant=Practitioner/nobody",
        &[],
    )
    .await;
    // With a filter on the patient, an AND of two lists, and a nested _has.
    c.ids(&format!("{q}&active=true"), &["pa", "pb"]).await;
    c.ids(
        &format!("{q}&_has:CareTeam:subject:participant=Practitioner/dr2"),
        &["pb"],
    )
    .await;
    c.ids(
        "Practitioner?_has:CareTeam:participant:subject=Patient/pb",
        &["dr1", "dr2"],
    )
    .await;
    c.ordered(&format!("{q}&_sort=-_id"), &["pc", "pb", "pa"])
        .await;
    c.finish();
    let b = search(s, &format!("{q}&_summary=count")).await;
    assert_eq!(b["total"], 3, "{b}");
    // Paged one at a time: every patient once.
    let all = try_all_ids(s, &format!("{q}&_count=1"))
        .await
        .expect("pages");
    assert_eq!(
        sorted(&all.iter().map(String::as_str).collect::<Vec<_>>()),
        sorted(&["pa", "pb", "pc"])
    );
}

async fn include_fixture(s: &TestServer) {
    put(s, "Organization", "org1", json!({"name": "Northwind"})).await;
    put(
        s,
        "Practitioner",
        "pr1",
        json!({"name": [{"family": "Holm"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "pa",
        json!({"managingOrganization": reference("Organization/org1")}),
    )
    .await;
    put(s, "Patient", "pb", json!({})).await;
    put(
        s,
        "Patient",
        "pc",
        json!({"link": [{"other": reference("Patient/pa"), "type": "seealso"}]}),
    )
    .await;
    put(
        s,
        "Observation",
        "o1",
        obs(json!({"subject": reference("Patient/pa"), "performer": [reference("Practitioner/pr1")]})),
    )
    .await;
    put(
        s,
        "Observation",
        "o2",
        obs(json!({"subject": reference("Patient/pb")})),
    )
    .await;
    put(
        s,
        "Observation",
        "o3",
        obs(json!({"subject": reference("Patient/pa")})),
    )
    .await;
    let mr = |p: &str| {
        json!({"status": "active", "intent": "order", "medicationCodeableConcept": {"text": "drug"},
               "subject": reference(p)})
    };
    put(s, "MedicationRequest", "mr1", mr("Patient/pa")).await;
    put(s, "MedicationRequest", "mr2", mr("Patient/pb")).await;
}

async fn include_and_revinclude(s: &TestServer) {
    include_fixture(s).await;
    let mut c = Checks::new(s);
    c.includes(
        "Observation?_id=o1&_include=Observation:subject",
        &["o1"],
        &["Patient/pa"],
    )
    .await;
    // pa is referenced twice but included once.
    c.includes(
        "Observation?_include=Observation:subject",
        &["o1", "o2", "o3"],
        &["Patient/pa", "Patient/pb"],
    )
    .await;
    c.includes(
        "Observation?_id=o1&_include=Observation:performer:Practitioner",
        &["o1"],
        &["Practitioner/pr1"],
    )
    .await;
    c.includes(
        "Observation?_id=o1&_include=Observation:subject&_include=Observation:performer",
        &["o1"],
        &["Patient/pa", "Practitioner/pr1"],
    )
    .await;
    c.includes(
        "Observation?_id=o2&_include=Observation:performer",
        &["o2"],
        &[],
    )
    .await;
    // Without :iterate, Patient:organization applies to the matches only (MedicationRequests).
    c.includes(
        "MedicationRequest?_id=mr1&_include=MedicationRequest:subject&_include=Patient:organization",
        &["mr1"],
        &["Patient/pa"],
    )
    .await;
    c.includes(
        "Patient?_id=pa&_revinclude=Observation:subject",
        &["pa"],
        &["Observation/o1", "Observation/o3"],
    )
    .await;
    c.includes(
        "Patient?_revinclude=Observation:subject",
        &["pa", "pb", "pc"],
        &["Observation/o1", "Observation/o2", "Observation/o3"],
    )
    .await;
    c.includes(
        "Patient?_id=pa&_revinclude=Observation:subject&_revinclude=MedicationRequest:subject",
        &["pa"],
        &["MedicationRequest/mr1", "Observation/o1", "Observation/o3"],
    )
    .await;
    // _count limits the matches, not the included resources.
    c.includes(
        "Patient?_count=1&_sort=_id&_revinclude=Observation:subject",
        &["pa"],
        &["Observation/o1", "Observation/o3"],
    )
    .await;
    // A resource that is a match is not repeated as an include (pc links to pa).
    c.includes("Patient?_include=Patient:link", &["pa", "pb", "pc"], &[])
        .await;
    c.includes(
        "Patient?_id=pc&_include=Patient:link",
        &["pc"],
        &["Patient/pa"],
    )
    .await;
    c.includes(
        "Patient?_id=pb&_include=Patient:organization&_revinclude=MedicationRequest:subject",
        &["pb"],
        &["MedicationRequest/mr2"],
    )
    .await;
    c.finish();

    // The modes, and no resource twice.
    let b = search(
        s,
        "Observation?_include=Observation:subject&_include=Observation:performer",
    )
    .await;
    let mut seen = HashSet::new();
    for e in b["entry"].as_array().unwrap() {
        let r = type_id(&e["resource"]);
        let mode = e["search"]["mode"].as_str().unwrap();
        let expected = if r.starts_with("Observation/") {
            "match"
        } else {
            "include"
        };
        assert_eq!(mode, expected, "{r}: {e}");
        assert!(seen.insert(r.clone()), "{r} appears twice: {b}");
        assert_eq!(e["fullUrl"], format!("{}/{r}", s.base));
    }
    assert_eq!(seen.len(), 6, "o1-o3, pa, pb, pr1: {b}");

    // Bundle.total counts the matches, not the included resources.
    let b = search(s, "Patient?_revinclude=Observation:subject&_total=accurate").await;
    assert_eq!(b["total"], 3, "{b}");
    let b = search(s, "Observation?_include=Observation:subject&_summary=count").await;
    assert_eq!(b["total"], 3, "{b}");

    // Each page carries the includes of its own matches.
    let ps = pages(
        s,
        "Patient?_sort=_id&_count=1&_revinclude=Observation:subject",
    )
    .await;
    let per_page: Vec<(Vec<String>, Vec<String>)> =
        ps.iter().map(|b| (match_ids(b), include_refs(b))).collect();
    let want = |m: &str, i: &[&str]| (vec![m.to_owned()], sorted(i));
    assert_eq!(
        per_page,
        [
            want("pa", &["Observation/o1", "Observation/o3"]),
            want("pb", &["Observation/o2"]),
            want("pc", &[]),
        ]
    );

    // Deleted resources are neither included nor rev-included.
    assert!(s.delete("Observation/o2").await.status.is_success());
    assert!(s.delete("Patient/pa").await.status.is_success());
    let mut c = Checks::new(s);
    c.includes(
        "Patient?_id=pb&_revinclude=Observation:subject",
        &["pb"],
        &[],
    )
    .await;
    c.includes(
        "MedicationRequest?_id=mr1&_include=MedicationRequest:subject",
        &["mr1"],
        &[],
    )
    .await;
    c.includes(
        "Observation?_include=Observation:subject",
        &["o1", "o3"],
        &[],
    )
    .await;
    c.finish();
}

async fn include_iterate(s: &TestServer) {
    include_fixture(s).await;
    let mut c = Checks::new(s);
    c.includes(
        "MedicationRequest?_id=mr1&_include=MedicationRequest:subject&_include:iterate=Patient:organization",
        &["mr1"],
        &["Organization/org1", "Patient/pa"],
    )
    .await;
    c.includes(
        "MedicationRequest?_include=MedicationRequest:subject&_include:iterate=Patient:organization",
        &["mr1", "mr2"],
        &["Organization/org1", "Patient/pa", "Patient/pb"],
    )
    .await;
    // Reverse, iterated: org1 ← pa ← o1, o3.
    c.includes(
        "Organization?_id=org1&_revinclude=Patient:organization&_revinclude:iterate=Observation:subject",
        &["org1"],
        &["Observation/o1", "Observation/o3", "Patient/pa"],
    )
    .await;
    // Forward then reverse: o2 → pb ← mr2.
    c.includes(
        "Observation?_id=o2&_include=Observation:subject&_revinclude:iterate=MedicationRequest:subject",
        &["o2"],
        &["MedicationRequest/mr2", "Patient/pb"],
    )
    .await;
    c.finish();
}

async fn include_wildcard(s: &TestServer) {
    include_fixture(s).await;
    let mut c = Checks::new(s);
    // Every reference parameter of Observation: subject/patient → pa, performer → pr1.
    c.includes(
        "Observation?_id=o1&_include=*",
        &["o1"],
        &["Patient/pa", "Practitioner/pr1"],
    )
    .await;
    c.includes("Patient?_id=pa&_include=*", &["pa"], &["Organization/org1"])
        .await;
    c.finish();
}

// ---------------------------------------------------------------------------------------
// Sorting, counting, summaries, paging
// ---------------------------------------------------------------------------------------

async fn sorting(s: &TestServer) {
    // Created in the order s3, s1, s5, s2, s4 so _lastUpdated order differs from _id order.
    let rows = [
        ("s3", "Berg", "Carl", "1970-01-01", "male"),
        ("s1", "Berg", "Anna", "1990-03-01", "female"),
        ("s5", "Alm", "Eva", "1999-01-01", "female"),
        ("s2", "Alm", "Bo", "1985-07-15", "male"),
        ("s4", "Cedergren", "Dan", "2001-11-30", "other"),
    ];
    for (id, family, given, birth, gender) in rows {
        put(
            s,
            "Patient",
            id,
            json!({"name": [{"family": family, "given": [given]}], "birthDate": birth, "gender": gender}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut c = Checks::new(s);
    c.ordered("Patient?_sort=birthdate", &["s3", "s2", "s1", "s5", "s4"])
        .await;
    c.ordered("Patient?_sort=-birthdate", &["s4", "s5", "s1", "s2", "s3"])
        .await;
    c.ordered("Patient?_sort=given", &["s1", "s2", "s3", "s4", "s5"])
        .await;
    c.ordered("Patient?_sort=-given", &["s5", "s4", "s3", "s2", "s1"])
        .await;
    // Ties on family broken by the second key.
    c.ordered(
        "Patient?_sort=family,birthdate",
        &["s2", "s5", "s3", "s1", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=family,-birthdate",
        &["s5", "s2", "s1", "s3", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=-family,given",
        &["s4", "s1", "s3", "s2", "s5"],
    )
    .await;
    // A token: female < male < other.
    c.ordered(
        "Patient?_sort=gender,birthdate",
        &["s1", "s5", "s3", "s2", "s4"],
    )
    .await;
    c.ordered("Patient?_sort=_id", &["s1", "s2", "s3", "s4", "s5"])
        .await;
    c.ordered("Patient?_sort=-_id", &["s5", "s4", "s3", "s2", "s1"])
        .await;
    c.ordered(
        "Patient?_sort=_lastUpdated",
        &["s3", "s1", "s5", "s2", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=-_lastUpdated",
        &["s4", "s2", "s5", "s1", "s3"],
    )
    .await;
    // Sort with a filter, and across pages.
    c.ordered(
        "Patient?gender=male,female&_sort=-birthdate",
        &["s5", "s1", "s2", "s3"],
    )
    .await;
    c.ordered(
        "Patient?_sort=birthdate&_count=2",
        &["s3", "s2", "s1", "s5", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=family,given&_count=1",
        &["s2", "s5", "s1", "s3", "s4"],
    )
    .await;
    c.finish();

    // Sorting on a date across Observations, with a Period (sorted by its start).
    put(
        s,
        "Observation",
        "w1",
        obs(json!({"effectiveDateTime": "2021-03-01T10:00:00Z"})),
    )
    .await;
    put(
        s,
        "Observation",
        "w2",
        obs(json!({"effectiveDateTime": "2020-01-01"})),
    )
    .await;
    put(
        s,
        "Observation",
        "w3",
        obs(json!({"effectivePeriod": {"start": "2020-06-01", "end": "2020-07-01"}})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ordered("Observation?_sort=date", &["w2", "w3", "w1"])
        .await;
    c.ordered("Observation?_sort=-date", &["w1", "w3", "w2"])
        .await;
    c.finish();
}

async fn count_and_total(s: &TestServer) {
    for i in 0..25 {
        put(
            s,
            "Patient",
            &format!("n{i:02}"),
            json!({"name": [{"family": "Count"}]}),
        )
        .await;
    }
    for i in 0..3 {
        put(
            s,
            "Patient",
            &format!("x{i}"),
            json!({"name": [{"family": "Other"}]}),
        )
        .await;
    }
    // Default page size 20, with a next link to the rest.
    let first = search(s, "Patient?family=count").await;
    assert_eq!(match_ids(&first).len(), 20, "default _count is 20");
    let next = link(&first, "next").expect("a next link when more results exist");
    assert!(next.starts_with(&s.base), "{next}");
    let second = search(s, &next).await;
    assert_eq!(match_ids(&second).len(), 5);
    assert_eq!(link(&second, "next"), None);
    let mut all: Vec<String> = match_ids(&first);
    all.extend(match_ids(&second));
    all.sort();
    let expected: Vec<String> = (0..25).map(|i| format!("n{i:02}")).collect();
    assert_eq!(all, expected);

    // _count larger than the result: one page.
    let one = search(s, "Patient?family=count&_count=30").await;
    assert_eq!(match_ids(&one).len(), 25);
    assert_eq!(link(&one, "next"), None);
    let small = search(s, "Patient?family=count&_count=5").await;
    assert_eq!(match_ids(&small).len(), 5);
    assert!(link(&small, "next").is_some());
    if !small["total"].is_null() {
        assert_eq!(small["total"], 25, "a total, when given, is the full count");
    }

    // _total=accurate.
    let acc = search(s, "Patient?family=count&_count=5&_total=accurate").await;
    assert_eq!(acc["total"], 25, "{acc}");
    assert_eq!(match_ids(&acc).len(), 5);
    let acc_all = search(s, "Patient?_total=accurate&_count=1").await;
    assert_eq!(acc_all["total"], 28);

    // _summary=count: the total, no entries.
    let cnt = search(s, "Patient?family=count&_summary=count").await;
    assert_eq!(cnt["total"], 25, "{cnt}");
    assert!(
        cnt["entry"].as_array().is_none_or(|e| e.is_empty()),
        "no entries with _summary=count: {cnt}"
    );
    let cnt_none = search(s, "Patient?family=nobody&_summary=count").await;
    assert_eq!(cnt_none["total"], 0);
    let cnt_all = search(s, "Patient?_summary=count").await;
    assert_eq!(cnt_all["total"], 28);
}

/// `code=system|code&_summary=count` reads the counts kept on write; the same count
/// with a second (always true) parameter scans the index. Both must agree with the
/// expected number through creates, updates, deletes and compaction.
async fn token_counts_follow_writes(s: &TestServer) {
    const OTHER: &str = "http://example.org/codes";
    let coded_twice = json!({"coding": [
        {"system": LOINC, "code": "1-1", "display": "one"},
        {"system": LOINC, "code": "1-1", "display": "uno"}
    ]});
    let total = |path: String| async move {
        let b = search(s, &path).await;
        b["total"]
            .as_u64()
            .unwrap_or_else(|| panic!("no total in {b}"))
    };
    let check = |system: &'static str, code: &'static str, expected: u64, when: &'static str| async move {
        let value = enc(&format!("{system}|{code}"));
        let kept = total(format!("Observation?code={value}&_summary=count")).await;
        let scanned = total(format!(
            "Observation?code={value}&status=final&_summary=count"
        ))
        .await;
        assert_eq!(
            (kept, scanned),
            (expected, expected),
            "{system}|{code} {when} on {:?}: (kept, scanned)",
            s.backend
        );
    };
    put(
        s,
        "Observation",
        "a1",
        obs(json!({"code": coded(LOINC, "1-1")})),
    )
    .await;
    put(s, "Observation", "a2", obs(json!({"code": coded_twice}))).await;
    put(
        s,
        "Observation",
        "b1",
        obs(json!({"code": coded(LOINC, "2-2")})),
    )
    .await;
    put(
        s,
        "Observation",
        "x1",
        obs(json!({"code": coded(OTHER, "1-1")})),
    )
    .await;
    check(LOINC, "1-1", 2, "after creates (one coded twice)").await;
    check(LOINC, "2-2", 1, "after creates").await;
    check(OTHER, "1-1", 1, "after creates").await;
    check(LOINC, "9-9", 0, "never used").await;

    put(
        s,
        "Observation",
        "a1",
        obs(json!({"code": coded(LOINC, "2-2")})),
    )
    .await;
    put(
        s,
        "Observation",
        "a2",
        obs(json!({"code": coded(LOINC, "1-1"), "issued": "2024-01-01T00:00:00Z"})),
    )
    .await;
    check(LOINC, "1-1", 1, "after a1 moved to 2-2").await;
    check(LOINC, "2-2", 2, "after a1 moved to 2-2").await;

    let r = s.http.delete("Observation/b1").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);
    check(LOINC, "2-2", 1, "after deleting b1").await;

    // Folding the deltas keeps every count.
    s.repo.compact_counts().await.expect("compaction");
    check(LOINC, "1-1", 1, "after compaction").await;
    check(LOINC, "2-2", 1, "after compaction").await;
    check(OTHER, "1-1", 1, "after compaction").await;
    assert_eq!(
        s.repo.compact_counts().await.expect("compaction"),
        0,
        "nothing left to fold"
    );

    put(
        s,
        "Observation",
        "a3",
        obs(json!({"code": coded(LOINC, "1-1")})),
    )
    .await;
    check(LOINC, "1-1", 2, "after a create following compaction").await;
    let r = s.http.delete("Observation/a2").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);
    let r = s.http.delete("Observation/a3").await;
    assert!(r.status == 200 || r.status == 204, "delete: {}", r.status);
    s.repo.compact_counts().await.expect("compaction");
    check(LOINC, "1-1", 0, "after deleting all").await;
}

fn has_subsetted(r: &Value) -> bool {
    r["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["code"] == "SUBSETTED" && t["system"] == SUBSETTED_SYSTEM)
}

async fn summary_and_elements(s: &TestServer) {
    put(
        s,
        "Patient",
        "sm1",
        json!({
            "meta": {"tag": [{"system": "http://ex.org/tags", "code": "keep"}]},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Summary</div>"},
            "name": [{"family": "Summary"}],
            "gender": "female",
            "birthDate": "1990-01-01",
            "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
            "contact": [{"name": {"family": "Kin"}}]
        }),
    )
    .await;

    // (query, elements that must be there, elements that must not); every result is
    // marked SUBSETTED. Summary elements of Patient: name, gender, birthDate (not photo,
    // contact, text).
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "_summary=true",
            &["resourceType", "id", "meta", "name", "gender", "birthDate"],
            &["photo", "contact"],
        ),
        (
            "_summary=data",
            &["id", "meta", "name", "gender", "photo", "contact"],
            &["text"],
        ),
        (
            "_summary=text",
            &["id", "meta", "text"],
            &["name", "gender", "photo"],
        ),
        (
            "_elements=id,name",
            &["resourceType", "id", "meta", "name"],
            &["gender", "birthDate", "photo", "contact", "text"],
        ),
        ("_elements=gender", &["id", "gender"], &["name", "photo"]),
        (
            "_elements=name,birthDate",
            &["name", "birthDate"],
            &["gender", "photo"],
        ),
    ];
    let mut problems = Vec::new();
    for (params, present, absent) in cases {
        let b = search(s, &format!("Patient?_id=sm1&{params}")).await;
        let ms = entries_with_mode(&b, "match");
        let Some(r) = ms.first().filter(|_| ms.len() == 1) else {
            problems.push(format!("{params}: not one match: {b}"));
            continue;
        };
        let missing: Vec<&&str> = present.iter().filter(|k| r.get(**k).is_none()).collect();
        let extra: Vec<&&str> = absent.iter().filter(|k| r.get(**k).is_some()).collect();
        if !missing.is_empty() || !extra.is_empty() || !has_subsetted(r) {
            problems.push(format!(
                "{params}: missing {missing:?}, should be absent {extra:?}, SUBSETTED {}: {r}",
                has_subsetted(r)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The stored resource is untouched.
    let stored = s.get("Patient/sm1").await.json();
    assert!(stored.get("photo").is_some());
    assert!(!has_subsetted(&stored), "{stored}");
    assert_eq!(stored["meta"]["tag"].as_array().unwrap().len(), 1);
}

async fn paging_follows_links(s: &TestServer) {
    for i in 0..23 {
        put(
            s,
            "Patient",
            &format!("pg{i:02}"),
            json!({"name": [{"family": "Page"}]}),
        )
        .await;
    }
    put(
        s,
        "Patient",
        "other1",
        json!({"name": [{"family": "Other"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "other2",
        json!({"name": [{"family": "Other"}]}),
    )
    .await;
    let expected: Vec<String> = (0..23).map(|i| format!("pg{i:02}")).collect();

    // Sorted: every match exactly once, in order, in pages of 5.
    let ps = pages(s, "Patient?family=page&_count=5&_sort=_id").await;
    let sizes: Vec<usize> = ps.iter().map(|b| match_ids(b).len()).collect();
    assert_eq!(sizes, [5, 5, 5, 5, 3]);
    let ids: Vec<String> = ps.iter().flat_map(match_ids).collect();
    assert_eq!(ids, expected);
    assert_eq!(link(ps.last().unwrap(), "next"), None);
    // Links are absolute, on the server's base URL.
    for b in &ps {
        for l in b["link"].as_array().expect("links") {
            let url = l["url"].as_str().expect("link url");
            assert!(
                url.starts_with(&format!("{}/", s.base))
                    || url.starts_with(&format!("{}?", s.base)),
                "{url}"
            );
        }
        assert!(link(b, "self").is_some(), "every page has a self link");
    }
    // previous goes back to the same contents.
    for i in 1..ps.len() {
        let prev = link(&ps[i], "previous")
            .or_else(|| link(&ps[i], "prev"))
            .unwrap_or_else(|| panic!("page {i} has no previous link: {}", ps[i]["link"]));
        assert!(prev.starts_with(&s.base), "{prev}");
        let back = search(s, &prev).await;
        assert_eq!(
            match_ids(&back),
            match_ids(&ps[i - 1]),
            "previous of page {i}"
        );
    }
    assert!(
        link(&ps[0], "previous").is_none() && link(&ps[0], "prev").is_none(),
        "the first page has no previous link"
    );
    // The self link of a page reproduces it.
    let again = search(s, &link(&ps[2], "self").unwrap()).await;
    assert_eq!(match_ids(&again), match_ids(&ps[2]));

    // Unsorted: every match exactly once.
    let ids: Vec<String> = pages(s, "Patient?family=page&_count=4")
        .await
        .iter()
        .flat_map(match_ids)
        .collect();
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    assert_eq!(sorted_ids, expected, "pages of 4: {ids:?}");
    // Descending.
    let ids: Vec<String> = pages(s, "Patient?family=page&_count=6&_sort=-_id")
        .await
        .iter()
        .flat_map(match_ids)
        .collect();
    let mut rev = expected.clone();
    rev.reverse();
    assert_eq!(ids, rev);
}

// ---------------------------------------------------------------------------------------
// System, compartment and POST search
// ---------------------------------------------------------------------------------------

async fn clinical_fixture(s: &TestServer) {
    put(s, "Patient", "p1", json!({"name": [{"family": "One"}]})).await;
    put(s, "Patient", "p2", json!({"name": [{"family": "Two"}]})).await;
    let o = |p: &str, code: &str| json!({"status": "final", "code": coded(LOINC, code), "subject": reference(p)});
    put(s, "Observation", "o1", o("Patient/p1", "8480-6")).await;
    put(s, "Observation", "o2", o("Patient/p2", "8480-6")).await;
    put(s, "Observation", "o3", o("Patient/p1", "29463-7")).await;
    put(s, "Organization", "org1", json!({"name": "One Org"})).await;
}

async fn system_search(s: &TestServer) {
    clinical_fixture(s).await;
    let refs = |b: &Value| {
        let mut v = match_refs(b);
        v.sort();
        v
    };
    let b = search(s, "?_type=Patient,Observation&_id=p1,o1,org1").await;
    assert_eq!(refs(&b), ["Observation/o1", "Patient/p1"]);
    let b = search(s, "?_id=o2").await;
    assert_eq!(refs(&b), ["Observation/o2"]);
    let b = search(s, "?_type=Patient").await;
    assert_eq!(refs(&b), ["Patient/p1", "Patient/p2"]);
    let b = search(s, "?_type=Organization,Patient&_sort=_id").await;
    assert_eq!(
        match_refs(&b),
        ["Organization/org1", "Patient/p1", "Patient/p2"]
    );
    let b = search(s, "?_type=Observation&_total=accurate").await;
    assert_eq!(b["total"], 3);
    let b = search(s, "?_id=nothing").await;
    assert!(match_refs(&b).is_empty());
    // fullUrls name each resource's type.
    let b = search(s, "?_id=p1,o1").await;
    for e in b["entry"].as_array().unwrap() {
        assert_eq!(
            e["fullUrl"],
            format!("{}/{}", s.base, type_id(&e["resource"]))
        );
    }
    assert!(link(&b, "self").unwrap().starts_with(&s.base));
}

async fn compartment_search(s: &TestServer) {
    clinical_fixture(s).await;
    let mut c = Checks::new(s);
    c.ids("Patient/p1/Observation", &["o1", "o3"]).await;
    c.ids("Patient/p1/Observation?code=8480-6", &["o1"]).await;
    c.ids("Patient/p2/Observation?code=29463-7", &[]).await;
    c.ids("Patient/p2/Observation", &["o2"]).await;
    c.ids("Patient/nobody/Observation", &[]).await;
    c.ordered("Patient/p1/Observation?_sort=-_id", &["o3", "o1"])
        .await;
    // Linked by another parameter of the compartment (performer), once even when two
    // parameters link it.
    put(
        s,
        "Observation",
        "o9",
        obs(json!({"subject": reference("Patient/p2"), "performer": [reference("Patient/p1")]})),
    )
    .await;
    put(
        s,
        "Observation",
        "o10",
        obs(json!({"subject": reference("Patient/p1"), "performer": [reference("Patient/p1")]})),
    )
    .await;
    c.ids("Patient/p1/Observation", &["o1", "o3", "o9", "o10"])
        .await;
    c.ids("Patient/p2/Observation", &["o2", "o9"]).await;
    c.finish();
}

async fn post_search(s: &TestServer) {
    clinical_fixture(s).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let post = |path: &'static str, body: &'static str| async move {
        let r = s.send("POST", path, &form, Some(body)).await;
        assert_eq!(
            r.status.as_u16(),
            200,
            "POST {path} {body}: {}",
            body_text(&r)
        );
        let b = r.json();
        check_searchset(&b).unwrap();
        let mut ids = match_ids(&b);
        ids.sort();
        ids
    };
    assert_eq!(
        post("Observation/_search", "code=8480-6").await,
        ["o1", "o2"]
    );
    assert_eq!(
        post(
            "Observation/_search",
            "code=http%3A%2F%2Floinc.org%7C8480-6&subject=Patient%2Fp1"
        )
        .await,
        ["o1"]
    );
    // Parameters in the URL and the body together.
    assert_eq!(
        post("Observation/_search?subject=Patient/p1", "code=29463-7").await,
        ["o3"]
    );
    assert_eq!(post("Patient/_search", "family=tw").await, ["p2"]);
    assert_eq!(post("Patient/_search", "").await, ["p1", "p2"]);
    // A POST search's next link is a GET that continues it.
    let r = s
        .send(
            "POST",
            "Observation/_search",
            &form,
            Some("_count=1&_sort=_id"),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    let b = r.json();
    assert_eq!(match_ids(&b), ["o1"]);
    let next = link(&b, "next").expect("next link");
    assert_eq!(match_ids(&search(s, &next).await), ["o2"]);
}

// ---------------------------------------------------------------------------------------
// The index follows writes
// ---------------------------------------------------------------------------------------

async fn index_follows_writes(s: &TestServer) {
    put(
        s,
        "Patient",
        "u1",
        json!({"name": [{"family": "Oldname"}], "birthDate": "1970-01-01"}),
    )
    .await;
    put(s, "Patient", "u2", json!({"name": [{"family": "Steady"}]})).await;
    put(
        s,
        "Observation",
        "uo",
        obs(json!({"subject": reference("Patient/u1")})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Patient?family=oldname", &["u1"]).await;
    c.finish();

    // Update: the old values no longer match, the new ones do.
    put(
        s,
        "Patient",
        "u1",
        json!({"name": [{"family": "Newname"}], "birthDate": "1990-01-01"}),
    )
    .await;
    put(
        s,
        "Observation",
        "uo",
        obs(json!({"subject": reference("Patient/u2")})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Patient?family=oldname", &[]).await;
    c.ids("Patient?family=newname", &["u1"]).await;
    c.ids("Patient?birthdate=1970", &[]).await;
    c.ids("Patient?birthdate=1990", &["u1"]).await;
    c.ids("Observation?subject=Patient/u1", &[]).await;
    c.ids("Observation?subject=Patient/u2", &["uo"]).await;
    c.ids("Observation?subject:Patient.family=steady", &["uo"])
        .await;
    c.ids("Patient?_has:Observation:subject:_id=uo", &["u2"])
        .await;
    c.finish();

    // PATCH too.
    let patch = json!([{"op": "replace", "path": "/name/0/family", "value": "Patched"}]);
    let r = s
        .send(
            "PATCH",
            "Patient/u1",
            &[("content-type", "application/json-patch+json")],
            Some(&patch.to_string()),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    let mut c = Checks::new(s);
    c.ids("Patient?family=newname", &[]).await;
    c.ids("Patient?family=patched", &["u1"]).await;
    c.finish();

    // Delete: gone from every parameter.
    let r = s.delete("Patient/u1").await;
    assert!(r.status.is_success(), "{}", body_text(&r));
    let mut c = Checks::new(s);
    c.ids("Patient?family=patched", &[]).await;
    c.ids("Patient?_id=u1", &[]).await;
    c.ids("Patient", &["u2"]).await;
    c.ids("Patient?birthdate=1990", &[]).await;
    c.finish();

    // Re-created after the delete: found again.
    put(s, "Patient", "u1", json!({"name": [{"family": "Reborn"}]})).await;
    let mut c = Checks::new(s);
    c.ids("Patient?family=reborn", &["u1"]).await;
    c.ids("Patient?family=patched", &[]).await;
    c.finish();

    // Writes through a transaction are indexed too.
    let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
         "resource": {"resourceType": "Patient", "name": [{"family": "Transacted"}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "tx"},
                      "subject": {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}},
         "request": {"method": "POST", "url": "Observation"}},
        {"request": {"method": "DELETE", "url": "Patient/u2"}}
    ]});
    let r = s.post("", &tx).await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    let b = search(s, "Patient?family=transacted").await;
    let ids = match_ids(&b);
    assert_eq!(ids.len(), 1, "{b}");
    let obs_b = search(s, &format!("Observation?subject=Patient/{}", ids[0])).await;
    assert_eq!(
        match_ids(&obs_b).len(),
        1,
        "the transaction's Observation: {obs_b}"
    );
    assert!(match_ids(&search(s, "Patient?family=steady").await).is_empty());
    // A chain does not go through a deleted resource (uo still points at Patient/u2).
    let mut c = Checks::new(s);
    c.ids("Observation?subject=Patient/u2", &["uo"]).await;
    c.ids("Observation?subject:Patient.family=steady", &[])
        .await;
    c.ids("Patient?_has:Observation:subject:_id=uo", &[]).await;
    c.finish();
}

// ---------------------------------------------------------------------------------------
// Handling and errors
// ---------------------------------------------------------------------------------------

async fn lenient_and_strict_handling(s: &TestServer) {
    put(s, "Patient", "h1", json!({"name": [{"family": "Lenient"}]})).await;
    put(s, "Patient", "h2", json!({"name": [{"family": "Other"}]})).await;

    let strict = [("prefer", "handling=strict")];
    let r = s
        .send("GET", "Patient?family=lenient&foo=bar", &strict, None)
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", body_text(&r));
    assert!(
        r.outcome().contains("foo"),
        "the outcome names the parameter"
    );
    // Strict with only known parameters is fine.
    let r = s.send("GET", "Patient?family=lenient", &strict, None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    assert_eq!(match_ids(&r.json()), ["h1"]);

    for headers in [&[][..], &[("prefer", "handling=lenient")][..]] {
        let r = s
            .send("GET", "Patient?family=lenient&foo=bar", headers, None)
            .await;
        assert_eq!(r.status.as_u16(), 200, "{headers:?}: {}", body_text(&r));
        let b = r.json();
        check_searchset(&b).unwrap();
        // The unknown parameter is ignored: it does not filter, and is not in self.
        assert_eq!(match_ids(&b), ["h1"], "{b}");
        let me = link(&b, "self").expect("self link");
        assert!(
            !me.contains("foo"),
            "the ignored parameter is in the self link: {me}"
        );
        assert!(me.contains("family=lenient"), "{me}");
        let outcomes = entries_with_mode(&b, "outcome");
        assert_eq!(outcomes.len(), 1, "{b}");
        assert_eq!(outcomes[0]["resourceType"], "OperationOutcome");
        assert!(
            outcomes[0].to_string().contains("foo"),
            "the outcome names the ignored parameter: {}",
            outcomes[0]
        );
    }

    // An unsupported modifier makes the parameter unsupported (R4: SHOULD be ignored
    // when lenient, rejected when strict): an unknown modifier, and :exact on a token.
    for q in ["Patient?family:nonsense=x", "Patient?gender:exact=male"] {
        let r = s.send("GET", &enc(q), &strict, None).await;
        assert_eq!(r.status.as_u16(), 400, "strict {q}: {}", body_text(&r));
        r.outcome();
        let r = s.get(&enc(q)).await;
        assert_eq!(r.status.as_u16(), 200, "lenient {q}: {}", body_text(&r));
        let b = r.json();
        let mut ids = match_ids(&b);
        ids.sort();
        assert_eq!(
            ids,
            ["h1", "h2"],
            "{q}: the parameter is ignored, not applied: {b}"
        );
        assert_eq!(entries_with_mode(&b, "outcome").len(), 1, "{q}: {b}");
        let me = link(&b, "self").expect("self link");
        assert!(
            !me.contains("family") && !me.contains("gender"),
            "{q}: self {me}"
        );
    }
}

async fn bad_input_is_400(s: &TestServer) {
    put(s, "Patient", "z1", json!({"birthDate": "1980-01-01"})).await;
    let mut c = Checks::new(s);
    c.bad("Patient?birthdate=1980-13-45").await;
    c.bad("Patient?birthdate=not-a-date").await;
    c.bad("Patient?birthdate=xx1980").await; // unknown prefix
    c.bad("Patient?birthdate=gt").await;
    c.bad("Patient?birthdate=1980-01-01T25:00:00Z").await;
    c.bad("Patient?_lastUpdated=yesterday").await;
    c.bad("RiskAssessment?probability=zz0.5").await;
    c.bad("RiskAssessment?probability=abc").await;
    c.bad("Observation?value-quantity=abc|http://unitsofmeasure.org|mg")
        .await;
    c.bad("Patient?_count=abc").await;
    c.bad("Patient?_count=-1").await;
    c.bad("Patient?_sort=nonexistent").await;
    c.bad("Patient?_sort=family,nonexistent").await;
    c.bad("Patient?_summary=sometimes").await;
    c.bad("Observation?code-value-quantity=http://loinc.org|8480-6$notanumber")
        .await;
    c.finish();
    // And nothing above broke the server.
    assert_eq!(
        match_ids(&search(s, "Patient?birthdate=1980").await),
        ["z1"]
    );
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

/// Pages through 60 matching resources with `_count=7` (plus `extra`) while another task
/// inserts 40 more matching resources.
async fn page_while_inserting(s: &TestServer, extra: &str) {
    for i in 0..60 {
        put(
            s,
            "Patient",
            &format!("st{i:02}"),
            json!({"name": [{"family": "Stream"}]}),
        )
        .await;
    }
    let inserted = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicBool::new(false));
    let writer = {
        let http = s.http.clone();
        let inserted = Arc::clone(&inserted);
        let started = Arc::clone(&started);
        tokio::spawn(async move {
            for _ in 0..40 {
                started.store(true, Ordering::SeqCst);
                let r = http
                    .post(
                        "Patient",
                        &json!({"resourceType": "Patient", "name": [{"family": "Stream"}]}),
                    )
                    .await;
                assert_eq!(r.status.as_u16(), 201);
                inserted.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
        })
    };
    while !started.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut ids: Vec<String> = Vec::new();
    let mut next = Some(format!("Patient?family=stream&_count=7{extra}"));
    let mut n_pages = 0;
    while let Some(p) = next {
        n_pages += 1;
        assert!(n_pages < 100, "too many pages");
        let b = search(s, &p).await;
        let page = match_ids(&b);
        assert!(page.len() <= 7, "{page:?}");
        ids.extend(page);
        next = link(&b, "next");
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    writer.await.expect("writer");
    assert!(inserted.load(Ordering::SeqCst) == 40);
    let mut seen = HashSet::new();
    let dups: Vec<&String> = ids.iter().filter(|id| !seen.insert(*id)).collect();
    assert!(
        dups.is_empty(),
        "ids seen twice while paging{extra}: {dups:?}"
    );
    let missing: Vec<String> = (0..60)
        .map(|i| format!("st{i:02}"))
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "original ids missed while paging{extra}: {missing:?}"
    );
}

async fn paging_under_concurrent_inserts(s: &TestServer) {
    page_while_inserting(s, "").await;
}

async fn sorted_paging_under_concurrent_inserts(s: &TestServer) {
    // Server-assigned ids are UUIDv7 (hex digits), so new resources sort before "st..".
    page_while_inserting(s, "&_sort=_id").await;
}

// ---------------------------------------------------------------------------------------
// The same answers on both stores
// ---------------------------------------------------------------------------------------

async fn load_corpus(s: &TestServer) {
    put(
        s,
        "Organization",
        "org1",
        json!({"name": "Northwind Clinic"}),
    )
    .await;
    put(s, "Organization", "org2", json!({"name": "Southgate Care"})).await;
    put(
        s,
        "Practitioner",
        "gp1",
        json!({"name": [{"family": "Holm"}]}),
    )
    .await;
    put(
        s,
        "Practitioner",
        "gp2",
        json!({"name": [{"family": "Dahl"}]}),
    )
    .await;
    let families = [
        "Hansen",
        "Hänsel",
        "Olsen",
        "Ølund",
        "Jensen",
        "Sørensen",
        "Hansen",
        "Nielsen",
        "Olander",
        "Berg",
        "Hansson",
        "Lund",
    ];
    let givens = ["Ola", "Kari", "Per", "Olga", "Anne", "Lars"];
    for (i, family) in families.iter().enumerate() {
        let mut p = json!({
            "name": [{"family": family, "given": [givens[i % givens.len()]]}],
            "gender": if i == 11 { "unknown" } else if i % 2 == 0 { "female" } else { "male" },
            "birthDate": format!("{}-{:02}-{:02}", 1965 + (i * 7) % 30, 1 + i % 12, 1 + (i * 5) % 28),
            "generalPractitioner": [reference(if i % 2 == 0 { "Practitioner/gp1" } else { "Practitioner/gp2" })],
        });
        match i % 3 {
            0 => p["managingOrganization"] = reference("Organization/org1"),
            1 => p["managingOrganization"] = reference("Organization/org2"),
            _ => {}
        }
        if i % 4 == 0 {
            p["meta"] = json!({"tag": [{"system": "http://ex.org/tags", "code": "vip"}]});
        }
        put(s, "Patient", &format!("cp{i:02}"), p).await;
    }
    let statuses = ["final", "amended", "preliminary", "final"];
    for j in 0..24usize {
        let (code, value) = match j % 3 {
            0 => (
                "8480-6",
                json!({"value": 100 + j * 5, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"}),
            ),
            1 => (
                "29463-7",
                json!({"value": 50 + j, "system": UCUM, "code": "kg", "unit": "kg"}),
            ),
            _ => (
                "8462-4",
                json!({"value": 60 + j, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"}),
            ),
        };
        let mut o = json!({
            "status": statuses[j % 4],
            "code": coded(LOINC, code),
            "subject": reference(&format!("Patient/cp{:02}", j % 12)),
            "valueQuantity": value,
        });
        if j % 5 == 0 {
            o["effectivePeriod"] = json!({"start": format!("{}-{:02}-01", 2019 + j % 4, 1 + j % 12),
                                          "end": format!("{}-12-31", 2019 + j % 4)});
        } else {
            o["effectiveDateTime"] = json!(format!(
                "{}-{:02}-10T08:{:02}:00Z",
                2019 + j % 4,
                1 + j % 12,
                j
            ));
        }
        put(s, "Observation", &format!("co{j:02}"), o).await;
    }
    for k in 0..6 {
        put(
            s,
            "Encounter",
            &format!("ce{k}"),
            json!({"status": "finished",
                   "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                   "subject": reference(&format!("Patient/cp{:02}", k * 2))}),
        )
        .await;
    }
    for (k, p) in [0.1, 0.35, 0.5, 0.75, 0.9].iter().enumerate() {
        put(
            s,
            "RiskAssessment",
            &format!("cr{k}"),
            json!({"status": "final", "subject": reference(&format!("Patient/cp{k:02}")),
                   "prediction": [{"probabilityDecimal": p}]}),
        )
        .await;
    }
    for (k, url) in [
        "http://acme.org/fhir/ValueSet/1",
        "http://acme.org/fhir/ValueSet/2",
        "http://other.org/ValueSet/3",
    ]
    .iter()
    .enumerate()
    {
        put(
            s,
            "ValueSet",
            &format!("cv{k}"),
            json!({"status": "active", "url": url}),
        )
        .await;
    }
}

const CROSS_QUERIES: &[&str] = &[
    "Patient?family=han",
    "Patient?name=ol",
    "Patient?family:exact=Hansen",
    "Patient?family:contains=sen",
    "Patient?gender=female",
    "Patient?gender:not=female",
    "Patient?birthdate=ge1980&birthdate=lt1990",
    "Patient?birthdate=lt1975",
    "Patient?organization=Organization/org1",
    "Patient?general-practitioner:Practitioner.name=holm",
    "Patient?_has:Observation:patient:code=8480-6",
    "Patient?_tag=http://ex.org/tags|vip",
    "Patient?_id=cp01,cp03,cp05,zz",
    "Patient?_sort=family,-birthdate",
    "Patient?_sort=-birthdate",
    "Patient?gender=male&_sort=given",
    "Observation?code=http://loinc.org|8480-6",
    "Observation?code=http://loinc.org|8480-6&value-quantity=gt130",
    "Observation?value-quantity=lt70|http://unitsofmeasure.org|kg",
    "Observation?date=ge2021-01-01T00:00:00Z",
    "Observation?date=2020",
    "Observation?subject:Patient.name=han",
    "Observation?subject:Patient.organization.name=north",
    "Observation?status=final,amended",
    "Observation?status:not=final",
    "Observation?code-value-quantity=http://loinc.org|8480-6$gt140",
    "Observation?patient=Patient/cp02",
    "Observation?_sort=-date",
    "Observation?_sort=status,date",
    "Encounter?subject:Patient.general-practitioner.name=dahl",
    "RiskAssessment?probability=gt0.5",
    "ValueSet?url:below=http://acme.org/fhir/",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_results_on_both_stores() {
    let lite = TestServer::start(Backend::Sqlite).await;
    let pg = TestServer::start(Backend::Postgres).await;
    load_corpus(&lite).await;
    load_corpus(&pg).await;
    let mut diffs = Vec::new();
    let mut nonempty = 0;
    for q in CROSS_QUERIES {
        // A total order: _id breaks every tie.
        let q = if q.contains("_sort=") {
            format!("{q},_id&_count=7")
        } else {
            format!("{q}&_sort=_id&_count=7")
        };
        let a = try_all_ids(&lite, &q).await;
        let b = try_all_ids(&pg, &q).await;
        match (&a, &b) {
            (Ok(a), Ok(b)) if a == b => {
                if !a.is_empty() {
                    nonempty += 1;
                }
            }
            _ => diffs.push(format!("{q}\n      sqlite   {a:?}\n      postgres {b:?}")),
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} queries differ:\n  {}",
        diffs.len(),
        CROSS_QUERIES.len(),
        diffs.join("\n  ")
    );
    assert!(
        nonempty * 5 >= CROSS_QUERIES.len() * 4,
        "only {nonempty} of {} queries returned anything",
        CROSS_QUERIES.len()
    );
}
