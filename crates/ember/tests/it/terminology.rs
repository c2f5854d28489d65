//! Terminology on both stores: `ValueSet/$expand`, `CodeSystem/$lookup`,
//! `ValueSet/$validate-code` over a small stored CodeSystem and the R4 tables, and the
//! invalidation of cached expansions when a ValueSet or CodeSystem changes. (The search
//! modifiers `:in`, `:not-in`, `:below` and `:above` are in `search::terminology`.)
//!
//! The fixture's hierarchy, in document order (`*` is inactive):
//!
//! ```text
//! cardio        Cardiovascular finding
//!   hypertension  Hypertension
//!     htn-stage1    Stage 1 hypertension
//!     htn-stage2    Stage 2 hypertension
//!   arrhythmia    Arrhythmia
//!     afib          Atrial fibrillation
//! resp          Respiratory finding
//!   asthma        Asthma
//!   bronchitis*   Bronchitis
//! ```
//!
//! `VS_CARDIO` includes `asthma` (listed, with its own display), `is-a hypertension`
//! and `descendent-of arrhythmia`, and excludes `htn-stage2`: asthma, hypertension,
//! htn-stage1, afib, in that order.

use serde_json::{Value, json};

use crate::common::{Backend, Http, TestServer, TestSettings, expect, expect_outcome};

pub(crate) const FINDINGS: &str = "http://example.org/CodeSystem/findings";
pub(crate) const VS_CARDIO: &str = "http://example.org/ValueSet/cardio";
pub(crate) const VS_ALL: &str = "http://example.org/ValueSet/all-findings";
const GENDER: &str = "http://hl7.org/fhir/ValueSet/administrative-gender";

both_stores!(
    expand_stored_value_sets,
    expand_r4_value_sets,
    expand_errors,
    lookup,
    validate_code,
    expansions_follow_changes,
);

fn concept(code: &str, display: &str, children: Value) -> Value {
    let mut c = json!({"code": code, "display": display});
    if children.as_array().is_some_and(|a| !a.is_empty()) {
        c["concept"] = children;
    }
    c
}

/// The fixture's CodeSystem (see the module documentation).
pub(crate) fn code_system() -> Value {
    let mut bronchitis = concept("bronchitis", "Bronchitis", json!([]));
    bronchitis["property"] = json!([{"code": "inactive", "valueBoolean": true}]);
    json!({
        "resourceType": "CodeSystem", "id": "findings", "url": FINDINGS, "version": "1",
        "name": "Findings", "title": "Example findings", "status": "active",
        "content": "complete", "hierarchyMeaning": "is-a",
        "property": [{"code": "inactive", "type": "boolean"}],
        "concept": [
            concept("cardio", "Cardiovascular finding", json!([
                concept("hypertension", "Hypertension", json!([
                    concept("htn-stage1", "Stage 1 hypertension", json!([])),
                    concept("htn-stage2", "Stage 2 hypertension", json!([])),
                ])),
                concept("arrhythmia", "Arrhythmia", json!([
                    concept("afib", "Atrial fibrillation", json!([])),
                ])),
            ])),
            concept("resp", "Respiratory finding", json!([
                concept("asthma", "Asthma", json!([])),
                bronchitis,
            ])),
        ],
    })
}

/// `VS_CARDIO` (see the module documentation).
pub(crate) fn cardio_value_set() -> Value {
    json!({
        "resourceType": "ValueSet", "id": "cardio", "url": VS_CARDIO, "status": "active",
        "compose": {
            "include": [
                {"system": FINDINGS, "concept": [{"code": "asthma", "display": "Asthma (any)"}]},
                {"system": FINDINGS, "filter": [{"property": "concept", "op": "is-a", "value": "hypertension"}]},
                {"system": FINDINGS, "filter": [{"property": "concept", "op": "descendent-of", "value": "arrhythmia"}]},
            ],
            "exclude": [{"system": FINDINGS, "concept": [{"code": "htn-stage2"}]}],
        },
    })
}

/// Stores the CodeSystem, `VS_CARDIO` and `VS_ALL` (the whole system).
pub(crate) async fn fixture(s: &Http) {
    expect(&s.put("CodeSystem/findings", &code_system()).await, 201);
    expect(&s.put("ValueSet/cardio", &cardio_value_set()).await, 201);
    let all = json!({"resourceType": "ValueSet", "id": "all", "url": VS_ALL, "status": "active",
        "compose": {"include": [{"system": FINDINGS}]}});
    expect(&s.put("ValueSet/all", &all).await, 201);
}

/// The codes of an expansion, in order.
pub(crate) fn codes(vs: &Value) -> Vec<String> {
    vs["expansion"]["contains"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["code"].as_str().unwrap_or("?").to_owned())
        .collect()
}

async fn expanded(s: &TestServer, query: &str) -> Value {
    let resp = s.get(&format!("ValueSet/$expand?{query}")).await;
    expect(&resp, 200);
    let vs = resp.json();
    assert_eq!(vs["resourceType"], "ValueSet");
    vs
}

async fn expand_stored_value_sets(s: &TestServer) {
    fixture(s).await;
    let vs = expanded(s, &format!("url={VS_CARDIO}")).await;
    assert_eq!(vs["url"], VS_CARDIO);
    assert_eq!(codes(&vs), ["asthma", "hypertension", "htn-stage1", "afib"]);
    let e = &vs["expansion"];
    assert_eq!(e["total"], 4);
    assert!(e["identifier"].as_str().unwrap().starts_with("urn:uuid:"));
    assert!(e["timestamp"].is_string());
    let contains = e["contains"].as_array().unwrap();
    // A listed concept keeps its own display; the others take the CodeSystem's.
    assert_eq!(contains[0]["display"], "Asthma (any)");
    assert_eq!(contains[2]["display"], "Stage 1 hypertension");
    assert_eq!(contains[3]["system"], FINDINGS);
    assert_eq!(contains[3]["version"], "1");
    // The text filter matches displays and codes, ignoring case.
    let vs = expanded(s, &format!("url={VS_CARDIO}&filter=HYPER")).await;
    assert_eq!(codes(&vs), ["hypertension", "htn-stage1"]);
    assert_eq!(vs["expansion"]["total"], 2);
    // Paging: total counts every match, contains the page.
    let vs = expanded(s, &format!("url={VS_CARDIO}&count=2&offset=1")).await;
    assert_eq!(codes(&vs), ["hypertension", "htn-stage1"]);
    assert_eq!(vs["expansion"]["total"], 4);
    assert_eq!(vs["expansion"]["offset"], 1);
    let vs = expanded(s, &format!("url={VS_CARDIO}&offset=4")).await;
    assert!(codes(&vs).is_empty());
    // The whole system, with its inactive code marked, or left out with activeOnly.
    let vs = expanded(s, &format!("url={VS_ALL}")).await;
    assert_eq!(
        codes(&vs),
        [
            "cardio",
            "hypertension",
            "htn-stage1",
            "htn-stage2",
            "arrhythmia",
            "afib",
            "resp",
            "asthma",
            "bronchitis"
        ]
    );
    assert_eq!(vs["expansion"]["contains"][8]["inactive"], true);
    let vs = expanded(s, &format!("url={VS_ALL}&activeOnly=true")).await;
    assert_eq!(vs["expansion"]["total"], 8);
    assert!(!codes(&vs).contains(&"bronchitis".to_owned()));
    // The instance level, GET and POST.
    let resp = s.get("ValueSet/cardio/$expand?count=1").await;
    expect(&resp, 200);
    assert_eq!(codes(&resp.json()), ["asthma"]);
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "filter", "valueString": "fib"}]});
    let resp = s.post("ValueSet/cardio/$expand", &params).await;
    expect(&resp, 200);
    assert_eq!(codes(&resp.json()), ["afib"]);
    // A ValueSet given in the request, importing a stored one and intersecting it
    // with a filter: the respiratory codes of VS_ALL.
    let inline = json!({"resourceType": "ValueSet", "status": "draft", "compose": {"include": [{
        "valueSet": [VS_ALL], "system": FINDINGS,
        "filter": [{"property": "concept", "op": "is-a", "value": "resp"}]}]}});
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "valueSet", "resource": inline}, {"name": "count", "valueInteger": 10}]});
    let resp = s.post("ValueSet/$expand", &params).await;
    expect(&resp, 200);
    assert_eq!(codes(&resp.json()), ["resp", "asthma", "bronchitis"]);
    // Nothing is stored by expanding.
    let count = s.get("ValueSet?_summary=count").await.json();
    assert_eq!(count["total"], 2, "{count}");
}

async fn expand_r4_value_sets(s: &TestServer) {
    let vs = expanded(s, &format!("url={GENDER}")).await;
    assert_eq!(codes(&vs), ["female", "male", "other", "unknown"]);
    assert_eq!(
        vs["expansion"]["contains"][1]["system"],
        "http://hl7.org/fhir/administrative-gender"
    );
    let vs = expanded(
        s,
        "url=http://hl7.org/fhir/ValueSet/observation-status&filter=amend",
    )
    .await;
    assert_eq!(codes(&vs), ["amended"]);
    // A stored ValueSet may import an R4 one.
    let mine = json!({"resourceType": "ValueSet", "status": "active", "compose": {
        "include": [{"valueSet": [GENDER]}],
        "exclude": [{"system": "http://hl7.org/fhir/administrative-gender", "concept": [{"code": "unknown"}]}]}});
    let params = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": mine}]});
    let resp = s.post("ValueSet/$expand", &params).await;
    expect(&resp, 200);
    assert_eq!(codes(&resp.json()), ["female", "male", "other"]);
}

async fn expand_errors(s: &TestServer) {
    fixture(s).await;
    let text = expect_outcome(
        &s.get("ValueSet/$expand?url=http://example.org/nope").await,
        404,
    );
    assert!(text.contains("http://example.org/nope"), "{text}");
    expect_outcome(&s.get("ValueSet/nope/$expand").await, 404);
    let text = expect_outcome(&s.get("ValueSet/$expand").await, 400);
    assert!(text.contains("url"), "{text}");
    expect_outcome(&s.get("Patient/$expand?url=x").await, 404);
    // A system Ember holds no content of cannot be expanded, by name.
    let sct = json!({"resourceType": "ValueSet", "id": "sct", "url": "http://example.org/ValueSet/sct",
        "status": "active", "compose": {"include": [
            {"system": FINDINGS, "concept": [{"code": "afib"}]},
            {"system": "http://snomed.info/sct", "filter": [{"property": "concept", "op": "is-a", "value": "404684003"}]}]}});
    expect(&s.put("ValueSet/sct", &sct).await, 201);
    let text = expect_outcome(&s.get("ValueSet/sct/$expand").await, 422);
    assert!(
        text.contains("cannot expand") && text.contains("http://snomed.info/sct"),
        "{text}"
    );
    // A filter Ember does not evaluate, a code the CodeSystem lacks.
    for (filter, says) in [
        (
            json!({"property": "concept", "op": "regex", "value": "a.*"}),
            "regex",
        ),
        (
            json!({"property": "concept", "op": "is-a", "value": "nope"}),
            "\"nope\"",
        ),
    ] {
        let vs = json!({"resourceType": "ValueSet", "status": "draft", "compose": {"include": [
            {"system": FINDINGS, "filter": [filter]}]}});
        let params = json!({"resourceType": "Parameters", "parameter": [{"name": "valueSet", "resource": vs}]});
        let text = expect_outcome(&s.post("ValueSet/$expand", &params).await, 422);
        assert!(text.contains(says), "{text}");
    }
    let text = expect_outcome(
        &s.get(&format!("ValueSet/$expand?url={VS_CARDIO}&count=x"))
            .await,
        400,
    );
    assert!(text.contains("count"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expansions_over_the_limit_are_refused_sqlite() {
    expansion_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expansions_over_the_limit_are_refused_postgres() {
    expansion_limit(Backend::Postgres).await;
}

async fn expansion_limit(backend: Backend) {
    let mut settings = TestSettings::default();
    settings.limits.max_expansion = 5;
    let s = TestServer::start_with(backend, settings).await;
    fixture(&s).await;
    // VS_CARDIO has 4 codes; the whole system 9.
    let vs = expanded(&s, &format!("url={VS_CARDIO}")).await;
    assert_eq!(vs["expansion"]["total"], 4);
    let text = expect_outcome(&s.get(&format!("ValueSet/$expand?url={VS_ALL}")).await, 422);
    assert!(text.contains("more than 5"), "{text}");
}

/// The `part`s of the `property` parameters with this code, as `valueCode`s.
fn property_codes(p: &Value, code: &str) -> Vec<String> {
    p["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["name"] == "property" && x["part"][0]["valueCode"] == code)
        .map(|x| x["part"][1]["valueCode"].as_str().unwrap().to_owned())
        .collect()
}

fn param<'a>(p: &'a Value, name: &str) -> &'a Value {
    p["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {p}"))
}

async fn lookup(s: &TestServer) {
    fixture(s).await;
    let resp = s
        .get(&format!(
            "CodeSystem/$lookup?system={FINDINGS}&code=hypertension"
        ))
        .await;
    expect(&resp, 200);
    let p = resp.json();
    assert_eq!(p["resourceType"], "Parameters");
    assert_eq!(param(&p, "name")["valueString"], "Example findings");
    assert_eq!(param(&p, "version")["valueString"], "1");
    assert_eq!(param(&p, "display")["valueString"], "Hypertension");
    assert_eq!(property_codes(&p, "parent"), ["cardio"]);
    assert_eq!(property_codes(&p, "child"), ["htn-stage1", "htn-stage2"]);
    // POST with a coding, asking for one property only.
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "coding", "valueCoding": {"system": FINDINGS, "code": "afib"}},
        {"name": "property", "valueCode": "parent"}]});
    let resp = s.post("CodeSystem/$lookup", &params).await;
    expect(&resp, 200);
    let p = resp.json();
    assert_eq!(param(&p, "display")["valueString"], "Atrial fibrillation");
    assert_eq!(property_codes(&p, "parent"), ["arrhythmia"]);
    assert!(property_codes(&p, "child").is_empty());
    let resp = s
        .get(&format!(
            "CodeSystem/$lookup?system={FINDINGS}&code=bronchitis"
        ))
        .await;
    expect(&resp, 200);
    let inactive = resp.json()["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["part"][0]["valueCode"] == "inactive" && x["part"][1]["valueBoolean"] == true);
    assert!(inactive, "{}", resp.json());
    let text = expect_outcome(
        &s.get(&format!("CodeSystem/$lookup?system={FINDINGS}&code=nope"))
            .await,
        404,
    );
    assert!(text.contains("nope"), "{text}");
    expect_outcome(
        &s.get("CodeSystem/$lookup?system=http://example.org/none&code=a")
            .await,
        404,
    );
    expect_outcome(
        &s.get(&format!("CodeSystem/$lookup?system={FINDINGS}"))
            .await,
        400,
    );
}

/// `result`, `message` and `display` of a `$validate-code` answer.
fn verdict(p: &Value) -> (bool, Option<String>, Option<String>) {
    let get = |name: &str, key: &str| {
        p["parameter"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .and_then(|x| x[key].as_str())
            .map(str::to_owned)
    };
    (
        param(p, "result")["valueBoolean"].as_bool().unwrap(),
        get("message", "valueString"),
        get("display", "valueString"),
    )
}

async fn validated(s: &TestServer, query: &str) -> (bool, Option<String>, Option<String>) {
    let resp = s.get(&format!("ValueSet/$validate-code?{query}")).await;
    expect(&resp, 200);
    verdict(&resp.json())
}

async fn validate_code(s: &TestServer) {
    fixture(s).await;
    let (ok, _, display) =
        validated(s, &format!("url={VS_CARDIO}&system={FINDINGS}&code=afib")).await;
    assert!(ok);
    assert_eq!(display.as_deref(), Some("Atrial fibrillation"));
    // Excluded, and not included.
    for code in ["htn-stage2", "cardio"] {
        let (ok, message, _) =
            validated(s, &format!("url={VS_CARDIO}&system={FINDINGS}&code={code}")).await;
        assert!(!ok, "{code}");
        assert!(message.unwrap().contains(code));
    }
    // The right code under another system is not in it.
    let (ok, _, _) = validated(s, &format!("url={VS_CARDIO}&system=http://x&code=afib")).await;
    assert!(!ok);
    // A wrong display fails, naming the right one.
    let (ok, message, _) = validated(
        s,
        &format!("url={VS_CARDIO}&system={FINDINGS}&code=afib&display=Flutter"),
    )
    .await;
    assert!(!ok);
    assert!(message.unwrap().contains("Atrial fibrillation"));
    // The instance level; a CodeableConcept passes when one of its codings does.
    let cc = json!({"coding": [{"system": "http://x", "code": "y"}, {"system": FINDINGS, "code": "asthma"}]});
    let params = json!({"resourceType": "Parameters", "parameter": [
        {"name": "codeableConcept", "valueCodeableConcept": cc}]});
    let resp = s.post("ValueSet/cardio/$validate-code", &params).await;
    expect(&resp, 200);
    let (ok, _, display) = verdict(&resp.json());
    assert!(ok);
    assert_eq!(display.as_deref(), Some("Asthma (any)"));
    // An R4 value set of the tables.
    let (ok, _, _) = validated(
        s,
        &format!("url={GENDER}&system=http://hl7.org/fhir/administrative-gender&code=male"),
    )
    .await;
    assert!(ok);
    let (ok, _, _) = validated(s, &format!("url={GENDER}&code=Male")).await;
    assert!(!ok, "codes are case-sensitive");
    expect_outcome(
        &s.get("ValueSet/$validate-code?url=http://example.org/nope&code=a")
            .await,
        404,
    );
    expect_outcome(
        &s.get(&format!("ValueSet/$validate-code?url={VS_CARDIO}"))
            .await,
        400,
    );
}

async fn expansions_follow_changes(s: &TestServer) {
    fixture(s).await;
    let before = codes(&expanded(s, &format!("url={VS_CARDIO}")).await);
    assert_eq!(before, ["asthma", "hypertension", "htn-stage1", "afib"]);
    // The same expansion again comes from the cache (same identifier).
    let a = expanded(s, &format!("url={VS_CARDIO}")).await;
    let b = expanded(s, &format!("url={VS_CARDIO}")).await;
    assert_eq!(a["expansion"]["identifier"], b["expansion"]["identifier"]);
    // The ValueSet changes: no exclude.
    let mut vs = cardio_value_set();
    vs["compose"].as_object_mut().unwrap().remove("exclude");
    expect(&s.put("ValueSet/cardio", &vs).await, 200);
    let after = expanded(s, &format!("url={VS_CARDIO}")).await;
    assert_ne!(
        after["expansion"]["identifier"],
        b["expansion"]["identifier"]
    );
    assert_eq!(
        codes(&after),
        ["asthma", "hypertension", "htn-stage1", "htn-stage2", "afib"]
    );
    // The CodeSystem changes: a third stage under hypertension.
    let mut cs = code_system();
    cs["concept"][0]["concept"][0]["concept"]
        .as_array_mut()
        .unwrap()
        .push(json!({"code": "htn-stage3", "display": "Stage 3 hypertension"}));
    expect(&s.put("CodeSystem/findings", &cs).await, 200);
    assert_eq!(
        codes(&expanded(s, &format!("url={VS_CARDIO}")).await),
        [
            "asthma",
            "hypertension",
            "htn-stage1",
            "htn-stage2",
            "htn-stage3",
            "afib"
        ]
    );
    let (ok, _, _) = validated(
        s,
        &format!("url={VS_CARDIO}&system={FINDINGS}&code=htn-stage3"),
    )
    .await;
    assert!(ok);
    // Deleted: unknown again.
    expect(&s.delete("ValueSet/cardio").await, 204);
    expect_outcome(
        &s.get(&format!("ValueSet/$expand?url={VS_CARDIO}")).await,
        404,
    );
}
