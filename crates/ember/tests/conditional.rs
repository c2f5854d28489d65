//! Conditional interactions over HTTP, on both stores: create with `If-None-Exist`,
//! update, patch and delete of `[type]?criteria`, and their counterparts in batch and
//! transaction Bundles (`ifNoneExist`, conditional URLs, conditional references).

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use common::{Backend, Resp, TestServer, TestSettings, expect, expect_outcome};
use serde_json::{Value, json};

both_stores!(
    // create
    conditional_create_without_match_creates,
    conditional_create_with_one_match_returns_it,
    conditional_create_honours_prefer,
    conditional_create_with_several_matches_is_412,
    conditional_create_rejects_bad_criteria,
    conditional_create_concurrent_makes_one,
    // update
    conditional_update_without_match_creates,
    conditional_update_with_one_match_updates_it,
    conditional_update_with_several_matches_is_412,
    conditional_update_id_of_unmatched_resource_is_409,
    conditional_update_if_match,
    // patch
    conditional_patch_patches_the_one_match,
    conditional_patch_without_or_with_several_matches_fails,
    // delete
    conditional_delete_one_match,
    conditional_delete_without_match_is_204,
    conditional_delete_several_matches_within_limit,
    // criteria
    conditional_interactions_need_criteria,
    conditional_criteria_are_strict,
    // bundles
    transaction_if_none_exist_creates_once_and_links_references,
    transaction_if_none_exist_with_several_matches_stores_nothing,
    transaction_conditional_urls,
    transaction_conditional_update_creates_without_match,
    transaction_conditional_references,
    transaction_conditional_failures_store_nothing,
    transaction_conditional_delete_overlapping_write_is_400,
    batch_conditional_entries,
    metadata_advertises_conditional_interactions,
);

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

// ---------------------------------------------------------------------------------------
// conditional create
// ---------------------------------------------------------------------------------------

async fn conditional_create_without_match_creates(s: &TestServer) {
    let resp = create_if_none_exist(s, &patient("c1"), &criteria("c1")).await;
    expect(&resp, 201);
    let id = resp.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let location = resp.header("location").unwrap();
    assert!(
        location.ends_with(&format!("/Patient/{id}/_history/1")),
        "{location}"
    );
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("c1"))).await,
        [id].into()
    );
    // The criteria may also be written as `Patient?…` or `?…`, and unencoded.
    let resp = create_if_none_exist(
        s,
        &patient("c2"),
        &format!("Patient?identifier={SYSTEM}|c2"),
    )
    .await;
    expect(&resp, 201);
    let resp = create_if_none_exist(s, &patient("c2"), &format!("?identifier={SYSTEM}|c2")).await;
    expect(&resp, 200);
}

async fn conditional_create_with_one_match_returns_it(s: &TestServer) {
    let id = create(s, &patient("m1")).await;
    let mut changed = patient("m1");
    changed["active"] = json!(true);
    let resp = create_if_none_exist(s, &changed, &criteria("m1")).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body["meta"]["versionId"], "1");
    assert!(
        body.get("active").is_none(),
        "the match was changed: {body}"
    );
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    assert!(resp.header("location").is_none());
    assert!(
        resp.header("content-location")
            .unwrap()
            .ends_with(&format!("/Patient/{id}/_history/1"))
    );
    // Nothing was created or changed.
    assert_eq!(versions_stored(s).await, 1);
    // Other criteria that match the same resource.
    let resp = create_if_none_exist(s, &changed, &format!("_id={id}")).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], id.as_str());
    assert_eq!(versions_stored(s).await, 1);
    // A deleted match does not count.
    expect(&s.delete(&format!("Patient/{id}")).await, 204);
    let resp = create_if_none_exist(s, &patient("m1"), &criteria("m1")).await;
    expect(&resp, 201);
    assert_ne!(resp.json()["id"], id.as_str());
}

async fn conditional_create_honours_prefer(s: &TestServer) {
    let id = create(s, &patient("p1")).await;
    let cond = criteria("p1");
    let body = patient("p1").to_string();
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("if-none-exist", &cond), ("prefer", "return=minimal")],
            Some(&body),
        )
        .await;
    expect(&resp, 200);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let resp = s
        .send(
            "POST",
            "Patient",
            &[
                ("if-none-exist", &cond),
                ("prefer", "return=OperationOutcome"),
            ],
            Some(&body),
        )
        .await;
    expect(&resp, 200);
    let outcome = resp.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let text = outcome["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(
        text.contains(&id) && text.contains("already exists"),
        "{text}"
    );
    // A created resource with return=minimal: 201 without a body.
    let resp = s
        .send(
            "POST",
            "Patient",
            &[
                ("if-none-exist", &criteria("p2")),
                ("prefer", "return=minimal"),
            ],
            Some(&patient("p2").to_string()),
        )
        .await;
    expect(&resp, 201);
    assert!(resp.body.is_empty());
    assert!(resp.header("location").is_some());
    assert_eq!(versions_stored(s).await, 2);
}

async fn conditional_create_with_several_matches_is_412(s: &TestServer) {
    create(s, &patient("dup")).await;
    create(s, &patient("dup")).await;
    let resp = create_if_none_exist(s, &patient("dup"), &criteria("dup")).await;
    let text = expect_outcome(&resp, 412);
    assert!(text.contains("more than one"), "{text}");
    assert_eq!(resp.json()["issue"][0]["code"], "duplicate");
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("dup"))).await.len(),
        2
    );
    assert_eq!(versions_stored(s).await, 2);
}

async fn conditional_create_rejects_bad_criteria(s: &TestServer) {
    for cond in [
        "",
        "nonsense=1",
        "identifier=a|b&nonsense=1",
        "identifier=a|b&_count=1",
        "identifier=a|b&_sort=name",
        "_include=Patient:organization",
        "birthdate=not-a-date",
        "name:bogus=x",
        "_format=json",
    ] {
        let resp = create_if_none_exist(s, &patient("bad"), cond).await;
        let text = expect_outcome(&resp, 400);
        assert!(!text.is_empty(), "{cond}");
    }
    // The body is still checked when nothing matches.
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("if-none-exist", &criteria("bad"))],
            Some(r#"{"resourceType": "Patient", "bogus": 1}"#),
        )
        .await;
    expect_outcome(&resp, 422);
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("if-none-exist", &criteria("bad"))],
            Some(r#"{"resourceType": "Observation"}"#),
        )
        .await;
    expect_outcome(&resp, 400);
    assert_eq!(versions_stored(s).await, 0);
}

async fn conditional_create_concurrent_makes_one(s: &TestServer) {
    const CLIENTS: usize = 16;
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let http = s.http.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let body = patient("race").to_string();
            let cond = criteria("race");
            barrier.wait().await;
            http.send("POST", "Patient", &[("if-none-exist", &cond)], Some(&body))
                .await
        }));
    }
    let mut created = 0;
    let mut seen = BTreeSet::new();
    for t in tasks {
        let resp = t.await.unwrap();
        match resp.status.as_u16() {
            201 => created += 1,
            200 => {}
            other => panic!("status {other}: {}", String::from_utf8_lossy(&resp.body)),
        }
        seen.insert(resp.json()["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1, "more than one conditional create created");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(ids(s, &format!("Patient?{}", criteria("race"))).await, seen);
}

// ---------------------------------------------------------------------------------------
// conditional update
// ---------------------------------------------------------------------------------------

async fn conditional_update_without_match_creates(s: &TestServer) {
    // No id in the body: a new id.
    let resp = s
        .put(&format!("Patient?{}", criteria("u1")), &patient("u1"))
        .await;
    expect(&resp, 201);
    let id = resp.json()["id"].as_str().unwrap().to_owned();
    assert!(resp.header("location").unwrap().contains(&id));
    assert_eq!(resp.json()["meta"]["versionId"], "1");
    // An id in the body: that id.
    let mut body = patient("u2");
    body["id"] = json!("client-chosen");
    let resp = s.put(&format!("Patient?{}", criteria("u2")), &body).await;
    expect(&resp, 201);
    assert_eq!(resp.json()["id"], "client-chosen");
    expect(&s.get("Patient/client-chosen").await, 200);
    // A deleted resource with that id is brought back.
    expect(&s.delete("Patient/client-chosen").await, 204);
    let resp = s.put(&format!("Patient?{}", criteria("u2")), &body).await;
    expect(&resp, 201);
    assert_eq!(resp.json()["meta"]["versionId"], "3");
    // An invalid id is a 400.
    body["id"] = json!("not valid!");
    let resp = s.put(&format!("Patient?{}", criteria("u3")), &body).await;
    expect_outcome(&resp, 400);
    assert_eq!(versions_stored(s).await, 4);
}

async fn conditional_update_with_one_match_updates_it(s: &TestServer) {
    let id = create(s, &patient("u")).await;
    let path = format!("Patient?{}", criteria("u"));
    // Without an id in the body.
    let mut body = patient("u");
    body["active"] = json!(true);
    let resp = s.put(&path, &body).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], id.as_str());
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    assert!(
        resp.header("content-location")
            .unwrap()
            .ends_with(&format!("Patient/{id}/_history/2"))
    );
    // With the match's id.
    body["id"] = json!(id);
    body["active"] = json!(false);
    let resp = s.put(&path, &body).await;
    expect(&resp, 200);
    assert_eq!(resp.header("etag"), Some("W/\"3\""));
    // With another id: 400, nothing changes.
    body["id"] = json!("someone-else");
    let text = expect_outcome(&s.put(&path, &body).await, 400);
    assert!(text.contains("someone-else"), "{text}");
    let current = s.get(&format!("Patient/{id}")).await.json();
    assert_eq!(current["meta"]["versionId"], "3");
    assert_eq!(current["active"], false);
    // The body is validated.
    let bad = json!({"resourceType": "Patient", "bogus": true});
    expect_outcome(&s.put(&path, &bad).await, 422);
    // Prefer: return=minimal.
    let resp = s
        .send(
            "PUT",
            &path,
            &[("prefer", "return=minimal")],
            Some(&patient("u").to_string()),
        )
        .await;
    expect(&resp, 200);
    assert!(resp.body.is_empty());
    assert_eq!(versions_stored(s).await, 4);
}

async fn conditional_update_with_several_matches_is_412(s: &TestServer) {
    create(s, &patient("two")).await;
    create(s, &patient("two")).await;
    let resp = s
        .put(&format!("Patient?{}", criteria("two")), &patient("two"))
        .await;
    expect_outcome(&resp, 412);
    assert_eq!(versions_stored(s).await, 2);
}

async fn conditional_update_id_of_unmatched_resource_is_409(s: &TestServer) {
    let other = create(s, &patient("other")).await;
    let mut body = patient("nobody");
    body["id"] = json!(other);
    let resp = s
        .put(&format!("Patient?{}", criteria("nobody")), &body)
        .await;
    expect_outcome(&resp, 409);
    let current = s.get(&format!("Patient/{other}")).await.json();
    assert_eq!(current["identifier"][0]["value"], "other");
    assert_eq!(versions_stored(s).await, 1);
}

async fn conditional_update_if_match(s: &TestServer) {
    create(s, &patient("im")).await;
    let path = format!("Patient?{}", criteria("im"));
    let body = patient("im").to_string();
    let resp = s
        .send("PUT", &path, &[("if-match", "W/\"2\"")], Some(&body))
        .await;
    expect_outcome(&resp, 412);
    let resp = s
        .send("PUT", &path, &[("if-match", "W/\"1\"")], Some(&body))
        .await;
    expect(&resp, 200);
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    // If-Match when nothing matches: nothing to compare with.
    let resp = s
        .send(
            "PUT",
            &format!("Patient?{}", criteria("none")),
            &[("if-match", "W/\"1\"")],
            Some(&patient("none").to_string()),
        )
        .await;
    expect_outcome(&resp, 412);
    assert_eq!(versions_stored(s).await, 2);
}

// ---------------------------------------------------------------------------------------
// conditional patch
// ---------------------------------------------------------------------------------------

async fn conditional_patch_patches_the_one_match(s: &TestServer) {
    let id = create(s, &patient("pa")).await;
    let path = format!("Patient?{}", criteria("pa"));
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    let resp = patch(s, &path, &ops, &[]).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], id.as_str());
    assert_eq!(resp.json()["active"], true);
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    // If-Match.
    expect_outcome(
        &patch(s, &path, &ops, &[("if-match", "W/\"1\"")]).await,
        412,
    );
    expect(
        &patch(s, &path, &ops, &[("if-match", "W/\"2\"")]).await,
        200,
    );
    // FHIRPath Patch.
    let parameters = json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.active"},
        {"name": "value", "valueBoolean": false}]}]});
    let resp = s
        .send("PATCH", &path, &[], Some(&parameters.to_string()))
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["active"], false);
    // A patch that fails stores nothing.
    let bad = json_patch(json!([{"op": "test", "path": "/active", "value": true}]));
    expect_outcome(&patch(s, &path, &bad, &[]).await, 422);
    assert_eq!(versions_stored(s).await, 4);
}

async fn conditional_patch_without_or_with_several_matches_fails(s: &TestServer) {
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    let resp = patch(s, &format!("Patient?{}", criteria("none")), &ops, &[]).await;
    expect_outcome(&resp, 404);
    create(s, &patient("two")).await;
    create(s, &patient("two")).await;
    let resp = patch(s, &format!("Patient?{}", criteria("two")), &ops, &[]).await;
    expect_outcome(&resp, 412);
    assert_eq!(versions_stored(s).await, 2);
}

// ---------------------------------------------------------------------------------------
// conditional delete
// ---------------------------------------------------------------------------------------

async fn conditional_delete_one_match(s: &TestServer) {
    let id = create(s, &patient("d1")).await;
    let keep = create(s, &patient("keep")).await;
    let resp = s.delete(&format!("Patient?{}", criteria("d1"))).await;
    expect(&resp, 204);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    expect_outcome(&s.get(&format!("Patient/{id}")).await, 410);
    expect(&s.get(&format!("Patient/{keep}")).await, 200);
    // With Prefer: return=OperationOutcome.
    let id = create(s, &patient("d2")).await;
    let resp = s
        .send(
            "DELETE",
            &format!("Patient?{}", criteria("d2")),
            &[("prefer", "return=OperationOutcome")],
            None,
        )
        .await;
    expect(&resp, 200);
    let outcome = resp.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert!(
        outcome["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains(&id)
    );
}

async fn conditional_delete_without_match_is_204(s: &TestServer) {
    let resp = s.delete(&format!("Patient?{}", criteria("none"))).await;
    expect(&resp, 204);
    assert!(resp.header("etag").is_none());
    let resp = s
        .send(
            "DELETE",
            &format!("Patient?{}", criteria("none")),
            &[("prefer", "return=OperationOutcome")],
            None,
        )
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["resourceType"], "OperationOutcome");
    assert_eq!(versions_stored(s).await, 0);
}

async fn conditional_delete_several_matches_within_limit(s: &TestServer) {
    let mut all = BTreeSet::new();
    for _ in 0..5 {
        all.insert(create(s, &patient("many")).await);
    }
    let keep = create(s, &patient("keep")).await;
    let resp = s.delete(&format!("Patient?{}", criteria("many"))).await;
    expect(&resp, 204);
    for id in &all {
        expect_outcome(&s.get(&format!("Patient/{id}")).await, 410);
    }
    expect(&s.get(&format!("Patient/{keep}")).await, 200);
    assert!(
        ids(s, &format!("Patient?{}", criteria("many")))
            .await
            .is_empty()
    );
}

/// Servers that delete at most `max` resources per conditional delete.
async fn server_with_delete_limit(backend: Backend, max: u32) -> TestServer {
    let mut settings = TestSettings::default();
    settings.limits.max_conditional_delete = max;
    TestServer::start_with(backend, settings).await
}

async fn conditional_delete_over_limit(backend: Backend) {
    let s = server_with_delete_limit(backend, 3).await;
    for _ in 0..4 {
        create(&s, &patient("lots")).await;
    }
    let resp = s.delete(&format!("Patient?{}", criteria("lots"))).await;
    let text = expect_outcome(&resp, 412);
    assert!(
        text.contains("more than 3") && text.contains("nothing was deleted"),
        "{text}"
    );
    assert_eq!(
        ids(&s, &format!("Patient?{}", criteria("lots")))
            .await
            .len(),
        4
    );
    // In a transaction too, with the other entries rolled back.
    let resp = bundle(
        &s,
        "transaction",
        json!([
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("lots"))}},
            {"request": {"method": "POST", "url": "Patient"}, "resource": patient("other")},
        ]),
    )
    .await;
    expect_outcome(&resp, 412);
    assert_eq!(versions_stored(&s).await, 4);
    // Exactly at the limit: all are deleted.
    for _ in 0..3 {
        create(&s, &patient("three")).await;
    }
    expect(
        &s.delete(&format!("Patient?{}", criteria("three"))).await,
        204,
    );
    assert!(
        ids(&s, &format!("Patient?{}", criteria("three")))
            .await
            .is_empty()
    );
}

async fn conditional_delete_single_mode(backend: Backend) {
    let s = server_with_delete_limit(backend, 1).await;
    let cs = s.get("metadata").await.json();
    let patient_cs = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    assert_eq!(patient_cs["conditionalDelete"], "single");
    create(&s, &patient("pair")).await;
    create(&s, &patient("pair")).await;
    let resp = s.delete(&format!("Patient?{}", criteria("pair"))).await;
    let text = expect_outcome(&resp, 412);
    assert!(text.contains("only one"), "{text}");
    assert_eq!(
        ids(&s, &format!("Patient?{}", criteria("pair")))
            .await
            .len(),
        2
    );
    let id = create(&s, &patient("single")).await;
    expect(
        &s.delete(&format!("Patient?{}", criteria("single"))).await,
        204,
    );
    expect_outcome(&s.get(&format!("Patient/{id}")).await, 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_over_limit_is_412_and_deletes_nothing_sqlite() {
    conditional_delete_over_limit(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_over_limit_is_412_and_deletes_nothing_postgres() {
    conditional_delete_over_limit(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_single_mode_sqlite() {
    conditional_delete_single_mode(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_delete_single_mode_postgres() {
    conditional_delete_single_mode(Backend::Postgres).await;
}

// ---------------------------------------------------------------------------------------
// criteria
// ---------------------------------------------------------------------------------------

async fn conditional_interactions_need_criteria(s: &TestServer) {
    let body = patient("x").to_string();
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    for (method, path, body, content_type) in [
        (
            "PUT",
            "Patient",
            Some(body.as_str()),
            "application/fhir+json",
        ),
        (
            "PUT",
            "Patient?_format=json",
            Some(body.as_str()),
            "application/fhir+json",
        ),
        ("DELETE", "Patient", None, "application/fhir+json"),
        (
            "PATCH",
            "Patient",
            Some(ops.as_str()),
            "application/json-patch+json",
        ),
    ] {
        let resp = s
            .send(method, path, &[("content-type", content_type)], body)
            .await;
        let text = expect_outcome(&resp, 400);
        assert!(text.contains("criteria"), "{method} {path}: {text}");
    }
    assert_eq!(versions_stored(s).await, 0);
}

async fn conditional_criteria_are_strict(s: &TestServer) {
    let id = create(s, &patient("strict")).await;
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    let good = criteria("strict");
    for bad in [
        format!("{good}&nonsense=1"),
        format!("{good}&_count=1"),
        format!("{good}&_sort=name"),
        format!("{good}&_summary=count"),
        format!("{good}&_include=Patient:organization"),
        format!("{good}&_elements=id"),
        "name:nonsense=x".to_owned(),
    ] {
        let path = format!("Patient?{bad}");
        expect_outcome(&s.delete(&path).await, 400);
        expect_outcome(&s.put(&path, &patient("strict")).await, 400);
        expect_outcome(&patch(s, &path, &ops, &[]).await, 400);
        expect_outcome(
            &create_if_none_exist(s, &patient("strict"), &bad).await,
            400,
        );
    }
    // Nothing was deleted or changed.
    let current = s.get(&format!("Patient/{id}")).await;
    expect(&current, 200);
    assert_eq!(current.json()["meta"]["versionId"], "1");
    assert_eq!(versions_stored(s).await, 1);
    // Unknown type.
    expect_outcome(&s.delete(&format!("Nope?{good}")).await, 404);
    // `_format` and `_pretty` are not criteria, and do not widen the match.
    let resp = s
        .delete(&format!(
            "Patient?{}&_format=json&_pretty=true",
            criteria("other")
        ))
        .await;
    expect(&resp, 204);
    expect(&s.get(&format!("Patient/{id}")).await, 200);
}

// ---------------------------------------------------------------------------------------
// bundles
// ---------------------------------------------------------------------------------------

fn observation_of(subject: &str) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "weight"},
        "subject": {"reference": subject},
    })
}

async fn transaction_if_none_exist_creates_once_and_links_references(s: &TestServer) {
    let entries = json!([
        {"fullUrl": "urn:uuid:3f0b8a4e-0000-4000-8000-000000000001", "resource": patient("tx"),
         "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("identifier={SYSTEM}|tx")}},
        {"resource": observation_of("urn:uuid:3f0b8a4e-0000-4000-8000-000000000001"),
         "request": {"method": "POST", "url": "Observation"}},
    ]);
    let resp = bundle(s, "transaction", entries.clone()).await;
    expect(&resp, 200);
    let first = resp.json();
    assert_eq!(first["entry"][0]["response"]["status"], "201 Created");
    let id = first["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        first["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    // Again: the patient exists, so it is not created, and the reference points at it.
    let resp = bundle(s, "transaction", entries).await;
    expect(&resp, 200);
    let second = resp.json();
    assert_eq!(second["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(second["entry"][0]["resource"]["id"], id.as_str());
    assert_eq!(second["entry"][0]["resource"]["meta"]["versionId"], "1");
    assert_eq!(second["entry"][1]["response"]["status"], "201 Created");
    assert_eq!(
        second["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("tx"))).await,
        [id].into()
    );
    assert_eq!(ids(s, "Observation").await.len(), 2);
}

async fn transaction_if_none_exist_with_several_matches_stores_nothing(s: &TestServer) {
    create(s, &patient("dup")).await;
    create(s, &patient("dup")).await;
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": patient("new"), "request": {"method": "POST", "url": "Patient"}},
            {"resource": patient("dup"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("dup")}},
        ]),
    )
    .await;
    let text = expect_outcome(&resp, 412);
    assert!(text.contains("Bundle.entry[1]"), "{text}");
    assert_eq!(versions_stored(s).await, 2);
    // Two entries that conditionally create with the same criteria: 400.
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": patient("same"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("same")}},
            {"resource": patient("same"),
             "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("same")}},
        ]),
    )
    .await;
    let text = expect_outcome(&resp, 400);
    assert!(text.contains("Bundle.entry[1]"), "{text}");
    assert_eq!(versions_stored(s).await, 2);
    // ifNoneExist on another method is a 400.
    let resp = bundle(
        s,
        "transaction",
        json!([{"resource": {"resourceType": "Patient", "id": "x"},
                "request": {"method": "PUT", "url": "Patient/x", "ifNoneExist": criteria("x")}}]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(versions_stored(s).await, 2);
}

async fn transaction_conditional_urls(s: &TestServer) {
    let up = create(s, &patient("up")).await;
    let pa = create(s, &patient("pa")).await;
    let del = create(s, &patient("del")).await;
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    let binary = json!({"resourceType": "Binary", "contentType": "application/json-patch+json",
        "data": common::base64(ops.as_bytes())});
    let mut updated = patient("up");
    updated["gender"] = json!("female");
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": updated, "request": {"method": "PUT", "url": format!("Patient?{}", criteria("up"))}},
            {"resource": binary, "request": {"method": "PATCH", "url": format!("Patient?{}", criteria("pa"))}},
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("del"))}},
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("none"))}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["entry"][0]["response"]["status"], "200 OK");
    assert_eq!(body["entry"][0]["resource"]["id"], up.as_str());
    assert_eq!(body["entry"][1]["response"]["status"], "200 OK");
    assert_eq!(body["entry"][1]["resource"]["id"], pa.as_str());
    assert_eq!(body["entry"][2]["response"]["status"], "204 No Content");
    assert_eq!(body["entry"][2]["response"]["etag"], "W/\"2\"");
    assert_eq!(body["entry"][3]["response"]["status"], "204 No Content");
    assert_eq!(
        s.get(&format!("Patient/{up}")).await.json()["gender"],
        "female"
    );
    assert_eq!(s.get(&format!("Patient/{pa}")).await.json()["active"], true);
    expect_outcome(&s.get(&format!("Patient/{del}")).await, 410);
    assert_eq!(versions_stored(s).await, 6);
}

async fn transaction_conditional_update_creates_without_match(s: &TestServer) {
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"fullUrl": "urn:uuid:3f0b8a4e-0000-4000-8000-000000000002", "resource": patient("cu"),
             "request": {"method": "PUT", "url": format!("Patient?{}", criteria("cu"))}},
            {"resource": observation_of("urn:uuid:3f0b8a4e-0000-4000-8000-000000000002"),
             "request": {"method": "POST", "url": "Observation"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["entry"][0]["response"]["status"], "201 Created");
    let id = body["entry"][0]["resource"]["id"].as_str().unwrap();
    assert_eq!(
        body["entry"][1]["resource"]["subject"]["reference"],
        format!("Patient/{id}")
    );
    // Several matches: 412, nothing stored.
    create(s, &patient("cu")).await;
    let before = versions_stored(s).await;
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"resource": patient("cu"), "request": {"method": "PUT", "url": format!("Patient?{}", criteria("cu"))}},
            {"resource": patient("more"), "request": {"method": "POST", "url": "Patient"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 412);
    assert_eq!(versions_stored(s).await, before);
    // A body id that is not the match's: 400.
    let mut other = patient("one");
    let one = create(s, &patient("one")).await;
    other["id"] = json!(format!("{one}x"));
    let resp = bundle(
        s,
        "transaction",
        json!([{"resource": other, "request": {"method": "PUT", "url": format!("Patient?{}", criteria("one"))}}]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(versions_stored(s).await, before + 1);
}

async fn transaction_conditional_references(s: &TestServer) {
    let id = create(s, &patient("ref")).await;
    let reference = format!("Patient?identifier={SYSTEM}|ref");
    let resp = bundle(
        s,
        "transaction",
        json!([{"resource": observation_of(&reference), "request": {"method": "POST", "url": "Observation"}}]),
    )
    .await;
    expect(&resp, 200);
    let obs = &resp.json()["entry"][0]["resource"];
    assert_eq!(obs["subject"]["reference"], format!("Patient/{id}"));
    let stored = s
        .get(&format!("Observation/{}", obs["id"].as_str().unwrap()))
        .await
        .json();
    assert_eq!(stored["subject"]["reference"], format!("Patient/{id}"));
    // The reference is searchable as the resolved one.
    assert_eq!(
        ids(s, &format!("Observation?subject=Patient/{id}"))
            .await
            .len(),
        1
    );
    let before = versions_stored(s).await;
    // No match: 400; several: 412; nothing stored either way.
    for (mrn, status) in [("nobody", 400), ("twice", 412)] {
        if mrn == "twice" {
            create(s, &patient("twice")).await;
            create(s, &patient("twice")).await;
        }
        let stored_before = versions_stored(s).await;
        let resp = bundle(
            s,
            "transaction",
            json!([
                {"resource": patient("side"), "request": {"method": "POST", "url": "Patient"}},
                {"resource": observation_of(&format!("Patient?identifier={SYSTEM}|{mrn}")),
                 "request": {"method": "POST", "url": "Observation"}},
            ]),
        )
        .await;
        let text = expect_outcome(&resp, status);
        assert!(text.contains("Bundle.entry[1]"), "{text}");
        assert_eq!(versions_stored(s).await, stored_before);
    }
    assert_eq!(versions_stored(s).await, before + 2);
}

async fn transaction_conditional_failures_store_nothing(s: &TestServer) {
    create(s, &patient("exists")).await;
    let ops = json_patch(json!([{"op": "add", "path": "/active", "value": true}]));
    let binary = json!({"resourceType": "Binary", "contentType": "application/json-patch+json",
        "data": common::base64(ops.as_bytes())});
    let failing = [
        // Conditional patch without a match: 404.
        (
            json!({"resource": binary, "request": {"method": "PATCH", "url": format!("Patient?{}", criteria("none"))}}),
            404,
        ),
        // Unknown criteria: 400.
        (
            json!({"request": {"method": "DELETE", "url": "Patient?nonsense=1"}}),
            400,
        ),
        (
            json!({"resource": patient("x"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": "nonsense=1"}}),
            400,
        ),
        // Empty criteria: 400.
        (
            json!({"request": {"method": "DELETE", "url": "Patient?"}}),
            400,
        ),
    ];
    for (entry, status) in failing {
        let resp = bundle(
            s,
            "transaction",
            json!([
                {"resource": patient("side"), "request": {"method": "POST", "url": "Patient"}},
                {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("exists"))}},
                entry,
            ]),
        )
        .await;
        expect_outcome(&resp, status);
        assert_eq!(versions_stored(s).await, 1, "{resp:?}");
    }
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("exists")))
            .await
            .len(),
        1
    );
}

async fn transaction_conditional_delete_overlapping_write_is_400(s: &TestServer) {
    let id = create(s, &patient("both")).await;
    let mut body = patient("both");
    body["id"] = json!(id);
    let resp = bundle(
        s,
        "transaction",
        json!([
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("both"))}},
            {"resource": body, "request": {"method": "PUT", "url": format!("Patient/{id}")}},
        ]),
    )
    .await;
    let text = expect_outcome(&resp, 400);
    assert!(text.contains("more than one entry"), "{text}");
    assert_eq!(versions_stored(s).await, 1);
}

async fn batch_conditional_entries(s: &TestServer) {
    let existing = create(s, &patient("b-exists")).await;
    create(s, &patient("b-two")).await;
    create(s, &patient("b-two")).await;
    let resp = bundle(
        s,
        "batch",
        json!([
            {"resource": patient("b-exists"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("b-exists")}},
            {"resource": patient("b-new"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("b-new")}},
            {"resource": patient("b-two"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria("b-two")}},
            {"resource": patient("b-put"), "request": {"method": "PUT", "url": format!("Patient?{}", criteria("b-put"))}},
            {"request": {"method": "DELETE", "url": format!("Patient?{}", criteria("b-two"))}},
            {"request": {"method": "DELETE", "url": "Patient?nonsense=1"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    let status = |i: usize| {
        body["entry"][i]["response"]["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(status(0), "200 OK");
    assert_eq!(body["entry"][0]["resource"]["id"], existing.as_str());
    assert_eq!(status(1), "201 Created");
    // The DELETE runs first (batch order), so b-two has no match by then.
    assert_eq!(status(2), "201 Created");
    assert_eq!(status(3), "201 Created");
    assert_eq!(status(4), "204 No Content");
    assert_eq!(status(5), "400 Bad Request");
    assert_eq!(
        body["entry"][5]["response"]["outcome"]["resourceType"],
        "OperationOutcome"
    );
    assert_eq!(
        ids(s, &format!("Patient?{}", criteria("b-two")))
            .await
            .len(),
        1
    );
}

async fn metadata_advertises_conditional_interactions(s: &TestServer) {
    let cs = s.get("metadata").await.json();
    for r in cs["rest"][0]["resource"].as_array().unwrap() {
        assert_eq!(r["conditionalCreate"], true, "{}", r["type"]);
        assert_eq!(r["conditionalUpdate"], true, "{}", r["type"]);
        assert_eq!(r["conditionalDelete"], "multiple", "{}", r["type"]);
        // R4 has no conditionalPatch element.
        assert!(r.get("conditionalPatch").is_none());
    }
}
