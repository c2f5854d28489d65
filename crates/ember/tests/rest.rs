//! The FHIR REST interactions and their errors, over HTTP, on both stores.

mod common;

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use common::{Resp, TestServer, TestSettings, expect, expect_outcome};
use serde_json::{Value, json};

both_stores!(
    create_then_read,
    // create
    create_assigns_server_id_and_version_headers,
    create_overwrites_client_meta_but_keeps_tags,
    // read and vread
    read_returns_current_version_with_headers,
    vread_returns_old_version_content,
    vread_unknown_version_is_404,
    read_unknown_id_is_404,
    read_unknown_type_is_404,
    // update
    update_makes_new_version,
    update_creates_with_client_id,
    update_after_delete_recreates,
    update_if_match,
    update_rejects_body_that_does_not_match_url,
    concurrent_updates_all_land,
    concurrent_if_match_only_one_wins,
    concurrent_creates_on_update_make_one_resource,
    // patch
    patch_replace_add_remove,
    patch_failed_test_is_422_and_stores_nothing,
    patch_invalid_document_is_400,
    patch_cannot_change_id_or_type,
    patch_if_match,
    patch_unknown_is_404_and_deleted_is_410,
    patch_requires_json_patch_content_type,
    fhirpath_patch_over_rest,
    invalid_resources_are_422_with_locations,
    validate_operation,
    lenient_validation_accepts_unknown_elements,
    transaction_fhirpath_patch_entry,
    // delete
    delete_then_read_is_gone,
    delete_is_idempotent,
    delete_unknown_is_404,
    delete_if_match_stale_is_412,
    // conditional read
    conditional_read_if_none_match,
    conditional_read_if_modified_since,
    // history
    history_instance_newest_first,
    history_status_of_recreate_is_201,
    history_type_and_system_scopes,
    history_paging_follows_next_links,
    history_paging_is_stable_under_writes,
    history_since,
    history_at,
    history_invalid_parameters_are_400,
    history_unknown_is_404,
    // Prefer
    prefer_return_minimal,
    prefer_return_operation_outcome,
    prefer_return_representation_is_default,
    // formats and content negotiation
    pretty_and_format_json,
    xml_is_not_acceptable,
    accept_plain_json,
    unsupported_content_types_are_415,
    // bad input
    malformed_bodies_are_400,
    invalid_ids_are_400,
    oversized_body_is_413,
    too_deep_json_is_400,
    patch_making_resource_too_deep_is_422,
    unknown_paths_are_404,
    wrong_methods_are_405,
    odd_requests_never_500,
    // metadata
    metadata_advertises_exactly_what_is_supported,
    metadata_interactions_all_answer,
    metadata_conditional_read_matches_behaviour,
    search_is_advertised_and_answers,
    // batch
    batch_mixed_entries,
    batch_entries_fail_independently,
    // transaction
    transaction_rewrites_urn_uuid_references,
    transaction_rewrites_absolute_full_urls,
    transaction_processing_order,
    transaction_stale_if_match_rolls_back,
    transaction_invalid_entry_rolls_back,
    transaction_duplicate_writes_are_400,
    bundle_of_other_type_is_400,
    transaction_patch_entry_with_binary,
    transaction_absolute_request_urls_and_versioned_reads,
    transaction_prefer_minimal,
);

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

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

/// The version numbers of a history page, from each entry's ETag.
fn versions(bundle: &Value) -> Vec<u32> {
    entries(bundle)
        .iter()
        .map(|e| {
            let etag = e["response"]["etag"].as_str().expect("entry etag");
            etag.trim_start_matches("W/\"")
                .trim_end_matches('"')
                .parse()
                .expect("numeric etag")
        })
        .collect()
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

/// The current time as a FHIR instant, after a pause on both sides so it falls strictly
/// between the writes before and after it.
async fn instant_between_writes() -> String {
    tokio::time::sleep(Duration::from_millis(30)).await;
    let t = ember_fhir::instant::format_instant(ember_fhir::instant::now());
    tokio::time::sleep(Duration::from_millis(30)).await;
    t
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

// ---------------------------------------------------------------------------------------
// create
// ---------------------------------------------------------------------------------------

async fn create_then_read(s: &TestServer) {
    let created = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "active": true}),
        )
        .await;
    assert_eq!(created.status, 201);
    let body = created.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["meta"]["versionId"], "1");
    let location = created.header("location").unwrap();
    assert!(
        location.ends_with(&format!("/fhir/Patient/{id}/_history/1")),
        "{location}"
    );
    let read = s.get(&format!("Patient/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_eq!(read.json(), body);
}

async fn create_assigns_server_id_and_version_headers(s: &TestServer) {
    let resp = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "id": "client-chosen", "active": true}),
        )
        .await;
    expect(&resp, 201);
    let body = resp.json();
    let id = body["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen");
    assert!(!id.is_empty() && id.len() <= 64, "{id}");
    assert_eq!(body["active"], true);
    assert_eq!(
        resp.header("location"),
        Some(format!("{}/Patient/{id}/_history/1", s.base).as_str())
    );
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let last_updated = body["meta"]["lastUpdated"].as_str().unwrap();
    let last_modified = resp.header("last-modified").expect("Last-Modified");
    assert!(
        last_modified.ends_with(&http_date_tail(last_updated)),
        "{last_modified} vs {last_updated}"
    );
    // The client's id did not become a resource.
    expect_outcome(&s.get("Patient/client-chosen").await, 404);
    // Two creates get two ids.
    let (other, _) = create(s, "Patient", json!({"resourceType": "Patient"})).await;
    assert_ne!(other, id);
}

async fn create_overwrites_client_meta_but_keeps_tags(s: &TestServer) {
    let before = ember_fhir::instant::now();
    let (id, body) = create(
        s,
        "Patient",
        json!({
            "resourceType": "Patient",
            "meta": {
                "versionId": "7",
                "lastUpdated": "2001-01-01T00:00:00Z",
                "tag": [{"system": "http://example.org/tags", "code": "keep-me"}]
            },
            "active": true
        }),
    )
    .await;
    assert_eq!(body["meta"]["versionId"], "1");
    let last_updated = body["meta"]["lastUpdated"].as_str().unwrap();
    assert_ne!(last_updated, "2001-01-01T00:00:00Z");
    let (stamped, _) = ember_fhir::instant::parse_range(last_updated).expect("an instant");
    assert!(
        stamped >= before - 1_000_000,
        "lastUpdated {last_updated} is not the server's time"
    );
    assert_eq!(
        body["meta"]["tag"],
        json!([{"system": "http://example.org/tags", "code": "keep-me"}])
    );
    let read = s.get(&format!("Patient/{id}")).await.json();
    assert_eq!(read["meta"], body["meta"]);
}

// ---------------------------------------------------------------------------------------
// read and vread
// ---------------------------------------------------------------------------------------

async fn read_returns_current_version_with_headers(s: &TestServer) {
    expect(
        &put(s, "Patient", "r1", json!({"gender": "male"})).await,
        201,
    );
    expect(
        &put(s, "Patient", "r1", json!({"gender": "female"})).await,
        200,
    );
    let read = s.get("Patient/r1").await;
    expect(&read, 200);
    assert!(
        read.header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(
        read.header("content-location"),
        Some(format!("{}/Patient/r1/_history/2", s.base).as_str())
    );
    let body = read.json();
    assert_eq!(body["gender"], "female");
    assert_eq!(body["meta"]["versionId"], "2");
    let last_modified = read.header("last-modified").unwrap();
    assert!(last_modified.ends_with(&http_date_tail(
        body["meta"]["lastUpdated"].as_str().unwrap()
    )));
}

async fn vread_returns_old_version_content(s: &TestServer) {
    expect(
        &put(s, "Patient", "v", json!({"gender": "male"})).await,
        201,
    );
    expect(
        &put(s, "Patient", "v", json!({"gender": "female"})).await,
        200,
    );
    expect(
        &put(s, "Patient", "v", json!({"gender": "other"})).await,
        200,
    );
    for (version, gender) in [(1, "male"), (2, "female"), (3, "other")] {
        let resp = s.get(&format!("Patient/v/_history/{version}")).await;
        expect(&resp, 200);
        let body = resp.json();
        assert_eq!(body["gender"], gender, "version {version}");
        assert_eq!(body["meta"]["versionId"], version.to_string());
        assert_eq!(
            resp.header("etag"),
            Some(format!("W/\"{version}\"").as_str())
        );
        assert_eq!(
            resp.header("content-location"),
            Some(format!("{}/Patient/v/_history/{version}", s.base).as_str())
        );
    }
}

async fn vread_unknown_version_is_404(s: &TestServer) {
    expect(&put(s, "Patient", "v", json!({})).await, 201);
    for vid in ["2", "0", "-1", "abc", "99999999999999999999"] {
        expect_outcome(&s.get(&format!("Patient/v/_history/{vid}")).await, 404);
    }
    expect_outcome(&s.get("Patient/nobody/_history/1").await, 404);
}

async fn read_unknown_id_is_404(s: &TestServer) {
    let resp = s.get("Patient/does-not-exist").await;
    expect_outcome(&resp, 404);
    assert_eq!(resp.json()["issue"][0]["code"], "not-found");
    // Same id, other type.
    expect(&put(s, "Patient", "x1", json!({})).await, 201);
    expect_outcome(&s.get("Observation/x1").await, 404);
}

async fn read_unknown_type_is_404(s: &TestServer) {
    expect_outcome(&s.get("Foo/1").await, 404);
    expect_outcome(&s.get("patient/1").await, 404);
    expect_outcome(&s.get("Foo/1/_history/1").await, 404);
    expect_outcome(&s.get("DomainResource/1").await, 404);
}

// ---------------------------------------------------------------------------------------
// update
// ---------------------------------------------------------------------------------------

async fn update_makes_new_version(s: &TestServer) {
    let (id, _) = create(
        s,
        "Patient",
        json!({"resourceType": "Patient", "active": true}),
    )
    .await;
    let resp = put(s, "Patient", &id, json!({"active": false})).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["meta"]["versionId"], "2");
    assert_eq!(body["active"], false);
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    assert!(resp.header("location").is_none());
    assert_eq!(
        resp.header("content-location"),
        Some(format!("{}/Patient/{id}/_history/2", s.base).as_str())
    );
    assert_eq!(s.get(&format!("Patient/{id}")).await.json(), body);
}

async fn update_creates_with_client_id(s: &TestServer) {
    let resp = put(s, "Patient", "client-id-1", json!({"active": true})).await;
    expect(&resp, 201);
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    assert_eq!(
        resp.header("location"),
        Some(format!("{}/Patient/client-id-1/_history/1", s.base).as_str())
    );
    let body = resp.json();
    assert_eq!(body["id"], "client-id-1");
    assert_eq!(body["meta"]["versionId"], "1");
    // A 64-character id is the longest valid one.
    let long = "a".repeat(64);
    expect(&put(s, "Patient", &long, json!({})).await, 201);
    expect(&s.get(&format!("Patient/{long}")).await, 200);
}

async fn update_after_delete_recreates(s: &TestServer) {
    expect(
        &put(s, "Patient", "p", json!({"gender": "male"})).await,
        201,
    );
    expect(&s.delete("Patient/p").await, 204);
    let resp = put(s, "Patient", "p", json!({"gender": "female"})).await;
    expect(&resp, 201);
    assert_eq!(resp.header("etag"), Some("W/\"3\""));
    assert_eq!(
        resp.header("location"),
        Some(format!("{}/Patient/p/_history/3", s.base).as_str())
    );
    assert_eq!(resp.json()["meta"]["versionId"], "3");
    let read = s.get("Patient/p").await;
    expect(&read, 200);
    assert_eq!(read.json()["gender"], "female");
    assert_eq!(history_len(s, "Patient/p/_history").await, 3);
}

async fn update_if_match(s: &TestServer) {
    expect(
        &put(s, "Patient", "m", json!({"gender": "male"})).await,
        201,
    );
    let body = json!({"resourceType": "Patient", "id": "m", "gender": "female"}).to_string();
    let ok = s
        .send("PUT", "Patient/m", &[("if-match", "W/\"1\"")], Some(&body))
        .await;
    expect(&ok, 200);
    assert_eq!(ok.header("etag"), Some("W/\"2\""));

    let stale_body = json!({"resourceType": "Patient", "id": "m", "gender": "other"}).to_string();
    let stale = s
        .send(
            "PUT",
            "Patient/m",
            &[("if-match", "W/\"1\"")],
            Some(&stale_body),
        )
        .await;
    expect_outcome(&stale, 412);
    let read = s.get("Patient/m").await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json()["gender"], "female");

    for bad in ["banana", "W/\"0\"", "W/\"x\""] {
        let resp = s
            .send("PUT", "Patient/m", &[("if-match", bad)], Some(&stale_body))
            .await;
        expect_outcome(&resp, 400);
    }
    assert_eq!(current_version(s, "Patient/m").await, "W/\"2\"");
    assert_eq!(history_len(s, "Patient/m/_history").await, 2);

    // If-Match on a resource that does not exist cannot match.
    let absent = json!({"resourceType": "Patient", "id": "absent"}).to_string();
    let resp = s
        .send(
            "PUT",
            "Patient/absent",
            &[("if-match", "W/\"1\"")],
            Some(&absent),
        )
        .await;
    expect_outcome(&resp, 412);
    expect_outcome(&s.get("Patient/absent").await, 404);
}

async fn update_rejects_body_that_does_not_match_url(s: &TestServer) {
    // No id in the body.
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Patient", "active": true}),
        )
        .await;
    expect_outcome(&resp, 400);
    // Another id in the body.
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Patient", "id": "u2"}),
        )
        .await;
    expect_outcome(&resp, 400);
    // Another type in the body.
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Observation", "id": "u1"}),
        )
        .await;
    expect_outcome(&resp, 400);
    expect_outcome(&s.get("Patient/u1").await, 404);
    expect_outcome(&s.get("Patient/u2").await, 404);
    expect_outcome(&s.get("Observation/u1").await, 404);
    assert_nothing_stored(s).await;

    // And on an existing resource, nothing changes.
    expect(&put(s, "Patient", "u1", json!({"active": true})).await, 201);
    let resp = s
        .put(
            "Patient/u1",
            &json!({"resourceType": "Patient", "id": "zz", "active": false}),
        )
        .await;
    expect_outcome(&resp, 400);
    let read = s.get("Patient/u1").await;
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_eq!(read.json()["active"], true);
}

// ---------------------------------------------------------------------------------------
// patch
// ---------------------------------------------------------------------------------------

async fn patch_replace_add_remove(s: &TestServer) {
    expect(
        &put(
            s,
            "Patient",
            "pt",
            json!({"active": true, "gender": "male", "name": [{"family": "Old"}]}),
        )
        .await,
        201,
    );
    let resp = patch(
        s,
        "Patient/pt",
        r#"[{"op": "replace", "path": "/active", "value": false},
            {"op": "add", "path": "/birthDate", "value": "2000-01-02"},
            {"op": "add", "path": "/name/-", "value": {"family": "New"}},
            {"op": "remove", "path": "/gender"}]"#,
        &[],
    )
    .await;
    expect(&resp, 200);
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    let body = resp.json();
    assert_eq!(body["meta"]["versionId"], "2");
    assert_eq!(body["id"], "pt");
    assert_eq!(body["active"], false);
    assert_eq!(body["birthDate"], "2000-01-02");
    assert_eq!(body["name"], json!([{"family": "Old"}, {"family": "New"}]));
    assert!(body.get("gender").is_none(), "{body}");
    let read = s.get("Patient/pt").await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json(), body);
    // The old version is unchanged.
    let v1 = s.get("Patient/pt/_history/1").await.json();
    assert_eq!(v1["gender"], "male");
    assert_eq!(v1["active"], true);
}

async fn patch_failed_test_is_422_and_stores_nothing(s: &TestServer) {
    expect(
        &put(
            s,
            "Patient",
            "pt",
            json!({"active": true, "gender": "male"}),
        )
        .await,
        201,
    );
    let resp = patch(
        s,
        "Patient/pt",
        r#"[{"op": "replace", "path": "/gender", "value": "female"},
            {"op": "test", "path": "/active", "value": false}]"#,
        &[],
    )
    .await;
    expect_outcome(&resp, 422);
    // Removing something that is not there does not apply either.
    let resp = patch(
        s,
        "Patient/pt",
        r#"[{"op": "remove", "path": "/birthDate"}]"#,
        &[],
    )
    .await;
    expect_outcome(&resp, 422);
    let read = s.get("Patient/pt").await;
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_eq!(read.json()["gender"], "male");
    assert_eq!(history_len(s, "Patient/pt/_history").await, 1);
}

async fn patch_invalid_document_is_400(s: &TestServer) {
    expect(&put(s, "Patient", "pt", json!({"active": true})).await, 201);
    for doc in [
        r#"{"op": "replace", "path": "/active", "value": false}"#,
        r#"[{"op": "jump", "path": "/active"}]"#,
        r#"[{"op": "replace", "value": false}]"#,
        r#"[{"op": "replace", "path": "/active""#,
        "",
    ] {
        let resp = patch(s, "Patient/pt", doc, &[]).await;
        expect_outcome(&resp, 400);
    }
    assert_eq!(current_version(s, "Patient/pt").await, "W/\"1\"");
    assert_eq!(history_len(s, "Patient/pt/_history").await, 1);
}

async fn patch_cannot_change_id_or_type(s: &TestServer) {
    expect(&put(s, "Patient", "pt", json!({"active": true})).await, 201);
    for doc in [
        r#"[{"op": "replace", "path": "/id", "value": "other"}]"#,
        r#"[{"op": "remove", "path": "/id"}]"#,
        r#"[{"op": "replace", "path": "/resourceType", "value": "Observation"}]"#,
        r#"[{"op": "remove", "path": "/resourceType"}]"#,
    ] {
        let resp = patch(s, "Patient/pt", doc, &[]).await;
        expect_outcome(&resp, 422);
    }
    assert_eq!(current_version(s, "Patient/pt").await, "W/\"1\"");
    expect_outcome(&s.get("Patient/other").await, 404);
    expect_outcome(&s.get("Observation/pt").await, 404);
    assert_eq!(history_len(s, "_history").await, 1);
}

async fn patch_if_match(s: &TestServer) {
    expect(&put(s, "Patient", "pt", json!({"active": true})).await, 201);
    let doc = r#"[{"op": "replace", "path": "/active", "value": false}]"#;
    let stale = patch(s, "Patient/pt", doc, &[("if-match", "W/\"9\"")]).await;
    expect_outcome(&stale, 412);
    let read = s.get("Patient/pt").await;
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_eq!(read.json()["active"], true);
    let ok = patch(s, "Patient/pt", doc, &[("if-match", "W/\"1\"")]).await;
    expect(&ok, 200);
    assert_eq!(ok.header("etag"), Some("W/\"2\""));
    let again = patch(s, "Patient/pt", doc, &[("if-match", "W/\"1\"")]).await;
    expect_outcome(&again, 412);
    assert_eq!(current_version(s, "Patient/pt").await, "W/\"2\"");
}

async fn patch_unknown_is_404_and_deleted_is_410(s: &TestServer) {
    let doc = r#"[{"op": "replace", "path": "/active", "value": false}]"#;
    expect_outcome(&patch(s, "Patient/nobody", doc, &[]).await, 404);
    expect(
        &put(s, "Patient", "gone", json!({"active": true})).await,
        201,
    );
    expect(&s.delete("Patient/gone").await, 204);
    expect_outcome(&patch(s, "Patient/gone", doc, &[]).await, 410);
    expect_outcome(&s.get("Patient/gone").await, 410);
    assert_eq!(history_len(s, "_history").await, 2);
}

async fn patch_requires_json_patch_content_type(s: &TestServer) {
    expect(&put(s, "Patient", "pt", json!({"active": true})).await, 201);
    let doc = r#"[{"op": "replace", "path": "/active", "value": false}]"#;
    // A JSON Patch sent as FHIR JSON is not a Parameters resource (FHIRPath Patch).
    for content_type in ["application/fhir+json", "application/json"] {
        let resp = s
            .send(
                "PATCH",
                "Patient/pt",
                &[("content-type", content_type)],
                Some(doc),
            )
            .await;
        expect_outcome(&resp, 400);
    }
    let resp = s
        .send(
            "PATCH",
            "Patient/pt",
            &[("content-type", "text/plain")],
            Some(doc),
        )
        .await;
    expect_outcome(&resp, 415);
    let not_parameters = json!({"resourceType": "Patient", "active": false}).to_string();
    let resp = s
        .send(
            "PATCH",
            "Patient/pt",
            &[("content-type", "application/fhir+json")],
            Some(&not_parameters),
        )
        .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/pt").await, "W/\"1\"");
}

fn fhirpath_patch(operations: Value) -> String {
    json!({"resourceType": "Parameters", "parameter": operations}).to_string()
}

async fn fhirpath_patch_over_rest(s: &TestServer) {
    expect(
        &put(
            s,
            "Patient",
            "fp",
            json!({"active": true, "name": [{"family": "Hansen"}]}),
        )
        .await,
        201,
    );
    let replace = fhirpath_patch(json!([{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.active"},
        {"name": "value", "valueBoolean": false}]}, {"name": "operation", "part": [
        {"name": "type", "valueCode": "add"},
        {"name": "path", "valueString": "Patient"},
        {"name": "name", "valueString": "gender"},
        {"name": "value", "valueCode": "female"}]}]));
    let resp = s
        .send(
            "PATCH",
            "Patient/fp",
            &[("content-type", "application/fhir+json")],
            Some(&replace),
        )
        .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["active"], false);
    assert_eq!(body["gender"], "female");
    assert_eq!(body["name"][0]["family"], "Hansen");
    assert_eq!(body["meta"]["versionId"], "2");
    // Well-formed but not applicable (nothing to replace): 422, nothing stored.
    let missing = fhirpath_patch(json!([{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.birthDate"},
        {"name": "value", "valueDate": "1970-01-01"}]}]));
    let resp = s
        .send(
            "PATCH",
            "Patient/fp",
            &[("content-type", "application/fhir+json")],
            Some(&missing),
        )
        .await;
    expect_outcome(&resp, 422);
    // Malformed (unknown operation type): 400.
    let bad = fhirpath_patch(json!([{"name": "operation", "part": [
        {"name": "type", "valueCode": "frobnicate"},
        {"name": "path", "valueString": "Patient.active"}]}]));
    let resp = s
        .send(
            "PATCH",
            "Patient/fp",
            &[("content-type", "application/fhir+json")],
            Some(&bad),
        )
        .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/fp").await, "W/\"2\"");
}

async fn transaction_fhirpath_patch_entry(s: &TestServer) {
    expect(
        &put(s, "Patient", "tfp", json!({"active": true})).await,
        201,
    );
    let parameters: Value =
        serde_json::from_str(&fhirpath_patch(json!([{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"},
        {"name": "path", "valueString": "Patient.active"},
        {"name": "value", "valueBoolean": false}]}])))
        .unwrap();
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PATCH", "url": "Patient/tfp"}, "resource": parameters}]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["entry"][0]["response"]["status"], "200 OK");
    let read = s.get("Patient/tfp").await.json();
    assert_eq!(read["active"], false);
    assert_eq!(read["meta"]["versionId"], "2");
}

// ---------------------------------------------------------------------------------------
// delete
// ---------------------------------------------------------------------------------------

async fn delete_then_read_is_gone(s: &TestServer) {
    expect(
        &put(s, "Patient", "d", json!({"gender": "male"})).await,
        201,
    );
    let resp = s.delete("Patient/d").await;
    expect(&resp, 204);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    let read = s.get("Patient/d").await;
    let outcome = expect_outcome(&read, 410);
    assert!(!outcome.is_empty());
    // The version before the deletion can still be read.
    let v1 = s.get("Patient/d/_history/1").await;
    expect(&v1, 200);
    assert_eq!(v1.json()["gender"], "male");
    // The deletion version itself has no content.
    expect_outcome(&s.get("Patient/d/_history/2").await, 410);
    // History shows the deletion, newest first.
    let h = history(s, "Patient/d/_history").await;
    let e = entries(&h);
    assert_eq!(e.len(), 2);
    assert_eq!(e[0]["request"]["method"], "DELETE");
    assert_eq!(e[0]["request"]["url"], "Patient/d");
    assert_eq!(e[0]["response"]["etag"], "W/\"2\"");
    assert!(e[0].get("resource").is_none(), "{}", e[0]);
    assert_eq!(e[1]["request"]["method"], "PUT");
}

async fn delete_is_idempotent(s: &TestServer) {
    expect(&put(s, "Patient", "d", json!({})).await, 201);
    expect(&s.delete("Patient/d").await, 204);
    let again = s.delete("Patient/d").await;
    expect(&again, 204);
    assert_eq!(history_len(s, "Patient/d/_history").await, 2);
    assert_eq!(history_len(s, "_history").await, 2);
    expect_outcome(&s.get("Patient/d").await, 410);
}

async fn delete_unknown_is_404(s: &TestServer) {
    expect_outcome(&s.delete("Patient/nobody").await, 404);
    expect_outcome(&s.delete("Foo/nobody").await, 404);
    assert_nothing_stored(s).await;
}

async fn delete_if_match_stale_is_412(s: &TestServer) {
    expect(&put(s, "Patient", "d", json!({})).await, 201);
    expect(&put(s, "Patient", "d", json!({"active": true})).await, 200);
    let stale = s
        .send("DELETE", "Patient/d", &[("if-match", "W/\"1\"")], None)
        .await;
    expect_outcome(&stale, 412);
    assert_eq!(current_version(s, "Patient/d").await, "W/\"2\"");
    let ok = s
        .send("DELETE", "Patient/d", &[("if-match", "W/\"2\"")], None)
        .await;
    expect(&ok, 204);
    assert_eq!(ok.header("etag"), Some("W/\"3\""));
    expect_outcome(&s.get("Patient/d").await, 410);
}

// ---------------------------------------------------------------------------------------
// conditional read
// ---------------------------------------------------------------------------------------

async fn conditional_read_if_none_match(s: &TestServer) {
    expect(&put(s, "Patient", "c", json!({})).await, 201);
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "W/\"1\"")], None)
        .await;
    expect(&resp, 304);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "W/\"2\"")], None)
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], "c");
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "*")], None)
        .await;
    expect(&resp, 304);
    // After an update the old ETag no longer matches.
    expect(&put(s, "Patient", "c", json!({"active": true})).await, 200);
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "W/\"1\"")], None)
        .await;
    expect(&resp, 200);
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
}

async fn conditional_read_if_modified_since(s: &TestServer) {
    expect(&put(s, "Patient", "c", json!({})).await, 201);
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let resp = s
        .send("GET", "Patient/c", &[("if-modified-since", future)], None)
        .await;
    expect(&resp, 304);
    assert!(resp.body.is_empty());
    let past = "Mon, 01 Jan 1990 00:00:00 GMT";
    let resp = s
        .send("GET", "Patient/c", &[("if-modified-since", past)], None)
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], "c");
    // Its own Last-Modified is "not modified since".
    let last_modified = resp.header("last-modified").unwrap().to_owned();
    let resp = s
        .send(
            "GET",
            "Patient/c",
            &[("if-modified-since", &last_modified)],
            None,
        )
        .await;
    expect(&resp, 304);
}

// ---------------------------------------------------------------------------------------
// history
// ---------------------------------------------------------------------------------------

async fn history_instance_newest_first(s: &TestServer) {
    let (id, _) = create(
        s,
        "Patient",
        json!({"resourceType": "Patient", "gender": "male"}),
    )
    .await;
    expect(
        &put(s, "Patient", &id, json!({"gender": "female"})).await,
        200,
    );
    expect(
        &patch(
            s,
            &format!("Patient/{id}"),
            r#"[{"op": "add", "path": "/active", "value": true}]"#,
            &[],
        )
        .await,
        200,
    );
    expect(&s.delete(&format!("Patient/{id}")).await, 204);
    let h = history(s, &format!("Patient/{id}/_history")).await;
    assert_eq!(versions(&h), [4, 3, 2, 1]);
    let e = entries(&h);
    let methods: Vec<&str> = e
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PATCH", "PUT", "POST"]);
    assert!(
        e[0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("20"),
        "{}",
        e[0]
    );
    assert_eq!(e[1]["response"]["status"], "200 OK");
    assert_eq!(e[2]["response"]["status"], "200 OK");
    assert_eq!(e[3]["response"]["status"], "201 Created");
    assert_eq!(e[3]["request"]["url"], "Patient");
    assert_eq!(e[2]["request"]["url"], format!("Patient/{id}"));
    for (entry, version) in e.iter().skip(1).zip([3, 2, 1]) {
        assert_eq!(entry["fullUrl"], format!("{}/Patient/{id}", s.base));
        assert_eq!(entry["resource"]["meta"]["versionId"], version.to_string());
    }
    assert_eq!(e[1]["resource"]["active"], true);
    assert_eq!(e[2]["resource"]["gender"], "female");
    assert_eq!(e[3]["resource"]["gender"], "male");
}

/// A PUT that re-creates a deleted resource answered 201; its history entry should say so.
async fn history_status_of_recreate_is_201(s: &TestServer) {
    expect(&put(s, "Patient", "re", json!({})).await, 201);
    expect(&s.delete("Patient/re").await, 204);
    expect(&put(s, "Patient", "re", json!({"active": true})).await, 201);
    let e = entries(&history(s, "Patient/re/_history").await);
    assert_eq!(e.len(), 3);
    assert_eq!(e[0]["request"]["method"], "PUT");
    assert_eq!(e[0]["response"]["status"], "201 Created", "{}", e[0]);
    assert_eq!(e[2]["response"]["status"], "201 Created", "{}", e[2]);
}

async fn history_type_and_system_scopes(s: &TestServer) {
    // Nothing yet: an empty history, not an error.
    let empty = history(s, "Encounter/_history").await;
    assert_eq!(entries(&empty).len(), 0);

    let (p1, _) = create(s, "Patient", json!({"resourceType": "Patient"})).await;
    let (p2, _) = create(s, "Patient", json!({"resourceType": "Patient"})).await;
    expect(&put(s, "Patient", &p1, json!({"active": true})).await, 200);
    let (o1, _) = create(
        s,
        "Observation",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    )
    .await;

    let patients = history(s, "Patient/_history").await;
    let e = entries(&patients);
    assert_eq!(e.len(), 3);
    assert!(e.iter().all(|e| e["resource"]["resourceType"] == "Patient"));
    let ids: Vec<&str> = e
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [p1.as_str(), p2.as_str(), p1.as_str()]);

    let observations = history(s, "Observation/_history").await;
    let e = entries(&observations);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["resource"]["id"], o1.as_str());
    assert_eq!(e[0]["resource"]["resourceType"], "Observation");

    let all = history(s, "_history").await;
    let e = entries(&all);
    let refs: Vec<String> = e
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        refs,
        [
            format!("Observation/{o1}"),
            format!("Patient/{p1}"),
            format!("Patient/{p2}"),
            format!("Patient/{p1}"),
        ]
    );
    assert_eq!(history_len(s, "Encounter/_history").await, 0);
}

/// Follows `next` links from `first`; returns the pages' sizes and (type/id, version) in order.
async fn follow_pages(s: &TestServer, first: &str) -> (Vec<usize>, Vec<(String, u32)>) {
    let mut url = first.to_owned();
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..50 {
        let resp = s.get(&url).await;
        expect(&resp, 200);
        let page = resp.json();
        assert_eq!(page["type"], "history");
        let e = entries(&page);
        sizes.push(e.len());
        for (entry, version) in e.iter().zip(versions(&page)) {
            let full_url = entry["fullUrl"].as_str().unwrap();
            let reference = full_url.trim_start_matches(&format!("{}/", s.base));
            seen.push((reference.to_owned(), version));
        }
        let links = page["link"].as_array().cloned().unwrap_or_default();
        assert!(links.iter().any(|l| l["relation"] == "self"), "{page}");
        match links.iter().find(|l| l["relation"] == "next") {
            None => return (sizes, seen),
            Some(next) => {
                let next = next["url"].as_str().unwrap();
                assert!(
                    next.starts_with(&format!("{}/", s.base)),
                    "next link is not absolute: {next}"
                );
                url = next.to_owned();
            }
        }
    }
    panic!("history paging did not end after 50 pages");
}

async fn history_paging_follows_next_links(s: &TestServer) {
    expect(
        &put(s, "Patient", "pg", json!({"birthDate": "2000-01-01"})).await,
        201,
    );
    for year in 2001..=2004 {
        let body = json!({"birthDate": format!("{year}-01-01")});
        expect(&put(s, "Patient", "pg", body).await, 200);
    }
    let (sizes, seen) = follow_pages(s, "Patient/pg/_history?_count=2").await;
    assert_eq!(sizes, [2, 2, 1]);
    let expected: Vec<(String, u32)> = (1..=5).rev().map(|v| ("Patient/pg".into(), v)).collect();
    assert_eq!(seen, expected);

    // A page size that divides the total evenly ends without an empty page.
    let (sizes, seen) = follow_pages(s, "Patient/pg/_history?_count=5").await;
    assert_eq!(sizes, [5]);
    assert_eq!(seen, expected);

    // System level, across types, every version exactly once, newest first.
    let (o, _) = create(
        s,
        "Observation",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    )
    .await;
    expect(&put(s, "Patient", "pg2", json!({})).await, 201);
    let (sizes, seen) = follow_pages(s, "_history?_count=3").await;
    assert_eq!(sizes, [3, 3, 1]);
    let mut expected_all: Vec<(String, u32)> =
        vec![("Patient/pg2".into(), 1), (format!("Observation/{o}"), 1)];
    expected_all.extend(expected.iter().cloned());
    assert_eq!(seen, expected_all);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // Type level.
    let (sizes, seen) = follow_pages(s, "Patient/_history?_count=4").await;
    assert_eq!(sizes, [4, 2]);
    let mut expected_patients: Vec<(String, u32)> = vec![("Patient/pg2".into(), 1)];
    expected_patients.extend(expected.iter().cloned());
    assert_eq!(seen, expected_patients);
}

async fn history_since(s: &TestServer) {
    expect(
        &put(s, "Patient", "hs", json!({"birthDate": "2001-01-01"})).await,
        201,
    );
    let between = instant_between_writes().await;
    let v2 = put(s, "Patient", "hs", json!({"birthDate": "2002-01-01"})).await;
    expect(&v2, 200);
    let v2_updated = v2.json()["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_owned();
    let v3 = put(s, "Patient", "hs", json!({"birthDate": "2003-01-01"})).await;
    expect(&v3, 200);
    let v3_updated = v3.json()["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_owned();

    for path in ["Patient/hs/_history", "Patient/_history", "_history"] {
        let h = history(s, &format!("{path}?_since={between}")).await;
        assert_eq!(versions(&h), [3, 2], "{path} _since={between}");
        // _since is inclusive.
        let h = history(s, &format!("{path}?_since={v2_updated}")).await;
        assert_eq!(versions(&h), [3, 2], "{path} _since={v2_updated}");
        let h = history(s, &format!("{path}?_since={v3_updated}")).await;
        assert_eq!(versions(&h), [3], "{path} _since={v3_updated}");
        let h = history(s, &format!("{path}?_since=2000-01-01")).await;
        assert_eq!(versions(&h), [3, 2, 1], "{path}");
        let h = history(s, &format!("{path}?_since=2999-01-01T00:00:00Z")).await;
        assert_eq!(versions(&h), Vec::<u32>::new(), "{path}");
    }
    // _since is kept in the next link.
    let (sizes, seen) =
        follow_pages(s, &format!("Patient/hs/_history?_since={between}&_count=1")).await;
    assert_eq!(sizes, [1, 1]);
    assert_eq!(
        seen,
        [("Patient/hs".to_owned(), 3), ("Patient/hs".to_owned(), 2)]
    );
}

async fn history_at(s: &TestServer) {
    expect(
        &put(s, "Patient", "ha", json!({"birthDate": "2001-01-01"})).await,
        201,
    );
    let t1 = instant_between_writes().await;
    expect(
        &put(s, "Patient", "ha", json!({"birthDate": "2002-01-01"})).await,
        200,
    );
    let t2 = instant_between_writes().await;
    expect(
        &put(s, "Patient", "ha", json!({"birthDate": "2003-01-01"})).await,
        200,
    );
    let t3 = instant_between_writes().await;

    let h = history(s, &format!("Patient/ha/_history?_at={t1}")).await;
    assert_eq!(versions(&h), [1], "_at={t1}");
    assert_eq!(entries(&h)[0]["resource"]["birthDate"], "2001-01-01");
    let h = history(s, &format!("Patient/ha/_history?_at={t2}")).await;
    assert_eq!(versions(&h), [2], "_at={t2}");
    let h = history(s, &format!("Patient/ha/_history?_at={t3}")).await;
    assert_eq!(versions(&h), [3], "_at={t3}");
    let h = history(s, &format!("_history?_at={t2}")).await;
    assert_eq!(versions(&h), [2], "system _at={t2}");
    let h = history(s, "Patient/ha/_history?_at=1999").await;
    assert_eq!(versions(&h), Vec::<u32>::new());
}

async fn history_invalid_parameters_are_400(s: &TestServer) {
    expect(&put(s, "Patient", "hi", json!({})).await, 201);
    for query in [
        "_since=yesterday",
        "_since=2024-13-01",
        "_since=",
        "_at=2024-02-30",
        "_at=soon",
        "_count=abc",
        "_count=-1",
    ] {
        for path in ["Patient/hi/_history", "Patient/_history", "_history"] {
            expect_outcome(&s.get(&format!("{path}?{query}")).await, 400);
        }
    }
}

async fn history_unknown_is_404(s: &TestServer) {
    expect_outcome(&s.get("Patient/nobody/_history").await, 404);
    expect_outcome(&s.get("Foo/_history").await, 404);
    expect_outcome(&s.get("Foo/x/_history").await, 404);
    // A deleted resource still has a history.
    expect(&put(s, "Patient", "del", json!({})).await, 201);
    expect(&s.delete("Patient/del").await, 204);
    assert_eq!(history_len(s, "Patient/del/_history").await, 2);
}

// ---------------------------------------------------------------------------------------
// Prefer
// ---------------------------------------------------------------------------------------

async fn prefer_return_minimal(s: &TestServer) {
    let minimal = [("prefer", "return=minimal")];
    let body = json!({"resourceType": "Patient", "active": true}).to_string();
    let resp = s.send("POST", "Patient", &minimal, Some(&body)).await;
    expect(&resp, 201);
    assert!(resp.body.is_empty(), "{:?}", resp.body);
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    assert!(resp.header("last-modified").is_some());
    let location = resp.header("location").unwrap();
    let id = id_of_location(location);
    assert_eq!(location, format!("{}/Patient/{id}/_history/1", s.base));
    // It was stored all the same.
    assert_eq!(s.get(&format!("Patient/{id}")).await.json()["active"], true);

    let update = json!({"resourceType": "Patient", "id": id, "active": false}).to_string();
    let resp = s
        .send("PUT", &format!("Patient/{id}"), &minimal, Some(&update))
        .await;
    expect(&resp, 200);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
    assert_eq!(
        resp.header("content-location"),
        Some(format!("{}/Patient/{id}/_history/2", s.base).as_str())
    );
    assert_eq!(
        s.get(&format!("Patient/{id}")).await.json()["active"],
        false
    );
}

async fn prefer_return_operation_outcome(s: &TestServer) {
    let prefer = [("prefer", "return=OperationOutcome")];
    let body = json!({"resourceType": "Patient", "active": true}).to_string();
    let resp = s.send("POST", "Patient", &prefer, Some(&body)).await;
    expect(&resp, 201);
    let outcome = resp.json();
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    assert_eq!(outcome["issue"][0]["severity"], "information");
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let id = id_of_location(resp.header("location").unwrap());
    expect(&s.get(&format!("Patient/{id}")).await, 200);

    let update = json!({"resourceType": "Patient", "id": id, "active": false}).to_string();
    let resp = s
        .send("PUT", &format!("Patient/{id}"), &prefer, Some(&update))
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["resourceType"], "OperationOutcome");
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
}

async fn prefer_return_representation_is_default(s: &TestServer) {
    let body = json!({"resourceType": "Patient", "active": true}).to_string();
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("prefer", "return=representation")],
            Some(&body),
        )
        .await;
    expect(&resp, 201);
    let with_prefer = resp.json();
    assert_eq!(with_prefer["resourceType"], "Patient");
    assert_eq!(with_prefer["active"], true);
    assert_eq!(with_prefer["meta"]["versionId"], "1");
    let resp = s.send("POST", "Patient", &[], Some(&body)).await;
    expect(&resp, 201);
    let default = resp.json();
    assert_eq!(default["resourceType"], "Patient");
    assert_eq!(default["active"], true);
}

// ---------------------------------------------------------------------------------------
// formats and content negotiation
// ---------------------------------------------------------------------------------------

async fn pretty_and_format_json(s: &TestServer) {
    expect(&put(s, "Patient", "f", json!({"active": true})).await, 201);
    let plain = s.get("Patient/f").await;
    expect(&plain, 200);
    assert!(!plain.body.contains(&b'\n'));
    let pretty = s.get("Patient/f?_pretty=true").await;
    expect(&pretty, 200);
    let text = String::from_utf8(pretty.body.to_vec()).unwrap();
    assert!(
        text.contains("\n  \"resourceType\": \"Patient\""),
        "not indented: {text}"
    );
    assert_eq!(pretty.json(), plain.json());
    let pretty_meta = s.get("metadata?_pretty=true").await;
    expect(&pretty_meta, 200);
    assert!(pretty_meta.body.contains(&b'\n'));

    for format in ["json", "application/fhir%2Bjson", "application/fhir+json"] {
        let resp = s.get(&format!("Patient/f?_format={format}")).await;
        expect(&resp, 200);
        assert!(
            resp.header("content-type")
                .unwrap()
                .starts_with("application/fhir+json"),
            "{format}: {:?}",
            resp.header("content-type")
        );
        assert_eq!(resp.json()["id"], "f");
    }
    // _format wins over Accept.
    let resp = s
        .send(
            "GET",
            "Patient/f?_format=json",
            &[("accept", "application/fhir+xml")],
            None,
        )
        .await;
    expect(&resp, 200);
}

async fn xml_is_not_acceptable(s: &TestServer) {
    expect(&put(s, "Patient", "f", json!({})).await, 201);
    for path in [
        "Patient/f?_format=xml",
        "Patient/f?_format=application/fhir%2Bxml",
        "metadata?_format=xml",
    ] {
        expect_outcome(&s.get(path).await, 406);
    }
    for accept in ["application/fhir+xml", "application/xml", "text/plain"] {
        let resp = s
            .send("GET", "Patient/f", &[("accept", accept)], None)
            .await;
        expect_outcome(&resp, 406);
    }
}

async fn accept_plain_json(s: &TestServer) {
    expect(&put(s, "Patient", "f", json!({})).await, 201);
    let resp = s
        .send("GET", "Patient/f", &[("accept", "application/json")], None)
        .await;
    expect(&resp, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        resp.header("content-type")
    );
    assert_eq!(resp.json()["id"], "f");
    let resp = s
        .send(
            "GET",
            "Patient/f",
            &[("accept", "application/fhir+json")],
            None,
        )
        .await;
    expect(&resp, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let resp = s.send("GET", "Patient/f", &[("accept", "*/*")], None).await;
    expect(&resp, 200);
}

async fn unsupported_content_types_are_415(s: &TestServer) {
    let body = json!({"resourceType": "Patient"}).to_string();
    for content_type in ["application/fhir+xml", "application/xml", "text/plain"] {
        let resp = s
            .send(
                "POST",
                "Patient",
                &[("content-type", content_type)],
                Some(&body),
            )
            .await;
        expect_outcome(&resp, 415);
        let put_body = json!({"resourceType": "Patient", "id": "ct"}).to_string();
        let resp = s
            .send(
                "PUT",
                "Patient/ct",
                &[("content-type", content_type)],
                Some(&put_body),
            )
            .await;
        expect_outcome(&resp, 415);
    }
    // application/json and a charset parameter are fine.
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("content-type", "application/json; charset=utf-8")],
            Some(&body),
        )
        .await;
    expect(&resp, 201);
    assert_eq!(history_len(s, "_history").await, 1);
}

// ---------------------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------------------

async fn malformed_bodies_are_400(s: &TestServer) {
    for body in [
        "{not json",
        "",
        "[]",
        r#"[{"resourceType": "Patient"}]"#,
        "\"Patient\"",
        "{}",
        r#"{"active": true}"#,
        r#"{"resourceType": 5}"#,
        r#"{"resourceType": "Foo"}"#,
        r#"{"resourceType": "DomainResource"}"#,
        r#"{"resourceType": "Observation", "status": "final"}"#,
    ] {
        let resp = s.send("POST", "Patient", &[], Some(body)).await;
        let diagnostics = expect_outcome(&resp, 400);
        assert!(!diagnostics.is_empty(), "{body}");
        let resp = s.send("PUT", "Patient/mb", &[], Some(body)).await;
        expect_outcome(&resp, 400);
    }
    assert_nothing_stored(s).await;
}

async fn invalid_ids_are_400(s: &TestServer) {
    let long = "x".repeat(65);
    for id in ["a_b", long.as_str(), "a%20b", "%C3%A9", "a:b"] {
        expect_outcome(&s.get(&format!("Patient/{id}")).await, 400);
        let body = json!({"resourceType": "Patient", "id": id}).to_string();
        let resp = s
            .send("PUT", &format!("Patient/{id}"), &[], Some(&body))
            .await;
        expect_outcome(&resp, 400);
        expect_outcome(&s.delete(&format!("Patient/{id}")).await, 400);
        let resp = patch(s, &format!("Patient/{id}"), "[]", &[]).await;
        expect_outcome(&resp, 400);
    }
    assert_nothing_stored(s).await;
}

async fn oversized_body_is_413(s: &TestServer) {
    let small = TestServer::start_with(
        s.backend,
        TestSettings {
            max_body_bytes: 1024,
            ..Default::default()
        },
    )
    .await;
    let big_text = "x".repeat(4096);
    let big = json!({"resourceType": "Patient", "id": "big", "name": [{"text": big_text}]});
    expect_outcome(&small.post("Patient", &big).await, 413);
    expect_outcome(&small.put("Patient/big", &big).await, 413);
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": big, "request": {"method": "PUT", "url": "Patient/big"}}
    ]});
    expect_outcome(&small.post(&small.base, &bundle).await, 413);
    let big_patch =
        format!(r#"[{{"op": "add", "path": "/name", "value": [{{"text": "{big_text}"}}]}}]"#);
    expect(&put(&small, "Patient", "small", json!({})).await, 201);
    expect_outcome(&patch(&small, "Patient/small", &big_patch, &[]).await, 413);
    assert_eq!(history_len(&small, "_history").await, 1);
    expect_outcome(&small.get("Patient/big").await, 404);
}

/// A Patient whose nesting depth is `3 + levels`.
fn nested_patient(levels: usize) -> String {
    format!(
        r#"{{"resourceType":"Patient","extension":[{{"url":"http://example.org/deep","valueString":{}{}}}]}}"#,
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

async fn invalid_resources_are_422_with_locations(s: &TestServer) {
    let resp = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "gender": "yes", "foo": 1}),
        )
        .await;
    expect_outcome(&resp, 422);
    let outcome = resp.json();
    let locations: Vec<&str> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| {
            i["expression"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e.as_str().unwrap())
        })
        .collect();
    assert!(locations.contains(&"Patient.gender"), "{outcome}");
    assert!(locations.contains(&"Patient.foo"), "{outcome}");
    let resp = s
        .put(
            "Observation/o1",
            &json!({"resourceType": "Observation", "id": "o1", "code": {"text": "x"}}),
        )
        .await;
    expect_outcome(&resp, 422);
    assert!(
        resp.json().to_string().contains("Observation.status"),
        "status is required"
    );
    assert_eq!(
        history_len(s, "_history").await,
        0,
        "nothing is stored from a rejected request"
    );
    // A patch that would make the resource invalid is rejected too.
    expect(&put(s, "Patient", "pv", json!({"active": true})).await, 201);
    let doc = r#"[{"op": "add", "path": "/birthDate", "value": "1974-13-01"}]"#;
    expect_outcome(&patch(s, "Patient/pv", doc, &[]).await, 422);
    assert_eq!(current_version(s, "Patient/pv").await, "W/\"1\"");
}

async fn validate_operation(s: &TestServer) {
    let good = json!({"resourceType": "Patient", "gender": "female"});
    let resp = s.post("Patient/$validate", &good).await;
    expect(&resp, 200);
    assert_eq!(
        resp.json()["issue"][0]["severity"],
        "information",
        "{}",
        resp.json()
    );
    let bad = json!({"resourceType": "Patient", "birthDate": "yesterday"});
    let resp = s.post("Patient/$validate", &bad).await;
    expect(&resp, 200);
    assert_eq!(resp.json()["issue"][0]["severity"], "error");
    assert_eq!(
        resp.json()["issue"][0]["expression"][0],
        "Patient.birthDate"
    );
    let wrapped =
        json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": bad}]});
    assert_eq!(
        s.post("Patient/$validate", &wrapped).await.json()["issue"][0]["severity"],
        "error"
    );
    let resp = s
        .post(
            "Patient/p9/$validate",
            &json!({"resourceType": "Patient", "id": "p9"}),
        )
        .await;
    expect(&resp, 200);
    expect_outcome(&s.post("Observation/$validate", &good).await, 400);
    assert_eq!(
        history_len(s, "_history").await,
        0,
        "$validate stores nothing"
    );
}

async fn lenient_validation_accepts_unknown_elements(s: &TestServer) {
    let mut settings = common::TestSettings::default();
    settings.limits.validation = ember_fhir::validate::Mode::Lenient;
    let lenient = TestServer::start_with(s.backend, settings).await;
    expect(
        &lenient
            .post("Patient", &json!({"resourceType": "Patient", "foo": 1}))
            .await,
        201,
    );
    expect_outcome(
        &lenient
            .post(
                "Patient",
                &json!({"resourceType": "Patient", "active": "yes"}),
            )
            .await,
        422,
    );
}

/// A server like the default test server, with structural validation off.
async fn without_validation(backend: common::Backend) -> TestServer {
    let mut settings = common::TestSettings::default();
    settings.limits.validation = ember_fhir::validate::Mode::Off;
    TestServer::start_with(backend, settings).await
}

async fn too_deep_json_is_400(s: &TestServer) {
    // The fixtures nest arrays where R4 has none: this is about the depth limit, so
    // structural validation is off here.
    let unvalidated = without_validation(s.backend).await;
    let s = &unvalidated;
    // 32 levels is the limit and is fine.
    let resp = s
        .send("POST", "Patient", &[], Some(&nested_patient(29)))
        .await;
    expect(&resp, 201);
    for levels in [30, 40, 5000] {
        let resp = s
            .send("POST", "Patient", &[], Some(&nested_patient(levels)))
            .await;
        expect_outcome(&resp, 400);
        let resp = s
            .send(
                "PUT",
                "Patient/deep",
                &[],
                Some(&nested_patient(levels).replacen('{', r#"{"id":"deep","#, 1)),
            )
            .await;
        expect_outcome(&resp, 400);
    }
    assert_eq!(history_len(s, "_history").await, 1);
}

async fn unknown_paths_are_404(s: &TestServer) {
    for path in [
        "Patient/1/_history/1/extra",
        "Patient/1/whatever",
        "Patient/1/_history/1/a/b",
    ] {
        expect_outcome(&s.get(path).await, 404);
    }
    let outside = format!("http://{}/nothing-here", s.addr);
    expect_outcome(&s.get(&outside).await, 404);
    let outside = format!("http://{}/fhirx/Patient", s.addr);
    expect_outcome(&s.get(&outside).await, 404);
}

async fn wrong_methods_are_405(s: &TestServer) {
    let body = json!({"resourceType": "Patient", "id": "x"}).to_string();
    // `PUT`, `PATCH` and `DELETE` on a type are conditional interactions (without
    // criteria a 400; see tests/conditional.rs).
    let cases = [
        ("DELETE", "metadata", None),
        ("POST", "metadata", Some(body.as_str())),
        ("POST", "Patient/x", Some(body.as_str())),
        ("DELETE", "Patient/_history", None),
        ("POST", "_history", Some(body.as_str())),
        ("PUT", "Patient/x/_history/1", Some(body.as_str())),
    ];
    for (method, path, body) in cases {
        let resp = s.send(method, path, &[], body).await;
        expect_outcome(&resp, 405);
    }
    assert_nothing_stored(s).await;
    // RFC 9110 §15.5.6: a 405 response MUST carry an Allow header.
    let resp = s.send("DELETE", "metadata", &[], None).await;
    let allow = resp.header("allow").unwrap_or_default();
    assert!(allow.contains("GET"), "Allow header of a 405: {allow:?}");
}

// ---------------------------------------------------------------------------------------
// metadata
// ---------------------------------------------------------------------------------------

fn codes(interactions: &Value) -> BTreeSet<String> {
    interactions
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn capability(s: &TestServer) -> Value {
    let resp = s.get("metadata").await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["resourceType"], "CapabilityStatement");
    body
}

async fn metadata_advertises_exactly_what_is_supported(s: &TestServer) {
    let cs = capability(s).await;
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    assert_eq!(cs["implementation"]["url"], s.base.as_str());
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    let expected_type: BTreeSet<String> = [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let resources = rest["resource"].as_array().unwrap();
    assert!(resources.len() > 140, "{}", resources.len());
    let mut types = HashSet::new();
    for r in resources {
        let t = r["type"].as_str().unwrap();
        assert!(types.insert(t.to_owned()), "{t} listed twice");
        assert!(t != "Resource" && t != "DomainResource", "{t}");
        assert_eq!(codes(&r["interaction"]), expected_type, "{t}");
        // Conditional interactions (tests/conditional.rs); R4 has no conditionalPatch.
        assert_eq!(r["conditionalCreate"], true, "{t}");
        assert_eq!(r["conditionalUpdate"], true, "{t}");
        assert_eq!(r["conditionalDelete"], "multiple", "{t}");
        let params = r["searchParam"].as_array().unwrap();
        assert!(
            params.iter().any(|p| p["name"] == "_lastUpdated"),
            "{t} does not advertise _lastUpdated"
        );
        assert!(
            params.iter().all(|p| p["type"] != "special"
                || ["_list", "_text", "_content"].contains(&p["name"].as_str().unwrap())),
            "{t} advertises a special parameter it cannot search"
        );
    }
    for t in [
        "Patient",
        "Observation",
        "Bundle",
        "Binary",
        "OperationOutcome",
    ] {
        assert!(types.contains(t), "{t} missing");
    }
    let expected_system: BTreeSet<String> =
        ["transaction", "batch", "history-system", "search-system"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(codes(&rest["interaction"]), expected_system);
    // A fresh server has stored nothing by answering metadata.
    assert_nothing_stored(s).await;
}

/// Exercises one advertised interaction on `res_type`; answers the response.
async fn exercise(s: &TestServer, res_type: &str, code: &str, body: &Value) -> Resp {
    let mut resource = body.clone();
    resource["resourceType"] = json!(res_type);
    let id = format!("probe-{}", code.replace('-', ""));
    if code != "create" {
        expect(&put(s, res_type, &id, resource.clone()).await, 201);
    }
    match code {
        "create" => s.post(res_type, &resource).await,
        "read" => s.get(&format!("{res_type}/{id}")).await,
        "vread" => s.get(&format!("{res_type}/{id}/_history/1")).await,
        "update" => put(s, res_type, &id, resource).await,
        "patch" => {
            let doc = r#"[{"op": "add", "path": "/language", "value": "en"}]"#;
            patch(s, &format!("{res_type}/{id}"), doc, &[]).await
        }
        "delete" => s.delete(&format!("{res_type}/{id}")).await,
        "history-instance" => s.get(&format!("{res_type}/{id}/_history")).await,
        "history-type" => s.get(&format!("{res_type}/_history")).await,
        "search-type" => s.get(&format!("{res_type}?_id={id}")).await,
        other => panic!("{res_type}: no probe for the advertised interaction {other:?}"),
    }
}

async fn metadata_interactions_all_answer(s: &TestServer) {
    let cs = capability(s).await;
    let rest = &cs["rest"][0];
    let bodies = [
        ("Patient", json!({"active": true})),
        (
            "Observation",
            json!({"status": "final", "code": {"text": "probe"}}),
        ),
    ];
    for (res_type, body) in bodies {
        let r = rest["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == res_type)
            .unwrap_or_else(|| panic!("{res_type} is not in the CapabilityStatement"));
        let advertised = codes(&r["interaction"]);
        assert!(!advertised.is_empty());
        for code in &advertised {
            let resp = exercise(s, res_type, code, &body).await;
            let status = resp.status.as_u16();
            assert!(
                status != 405 && status != 501 && resp.status.is_success(),
                "{res_type} advertises {code} but it answered {status}: {}",
                String::from_utf8_lossy(&resp.body)
            );
        }
    }
    for code in codes(&rest["interaction"]) {
        let resp = match code.as_str() {
            "transaction" | "batch" => {
                let bundle = json!({"resourceType": "Bundle", "type": code, "entry": [
                    {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
                ]});
                s.post(&s.base, &bundle).await
            }
            "history-system" => s.get("_history").await,
            "search-system" => s.get("?_id=x").await,
            other => panic!("no probe for the advertised system interaction {other:?}"),
        };
        let status = resp.status.as_u16();
        assert!(
            status != 405 && status != 501 && resp.status.is_success(),
            "the server advertises {code} but it answered {status}: {}",
            String::from_utf8_lossy(&resp.body)
        );
    }
}

/// The server honours If-None-Match and If-Modified-Since (see the conditional read
/// tests), so the CapabilityStatement should not say it does not.
async fn metadata_conditional_read_matches_behaviour(s: &TestServer) {
    let cs = capability(s).await;
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    // Both conditional reads really work…
    expect(&put(s, "Patient", "cr", json!({})).await, 201);
    let resp = s
        .send("GET", "Patient/cr", &[("if-none-match", "W/\"1\"")], None)
        .await;
    expect(&resp, 304);
    let resp = s
        .send(
            "GET",
            "Patient/cr",
            &[("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")],
            None,
        )
        .await;
    expect(&resp, 304);
    // …so the statement should say so.
    assert_eq!(
        patient["conditionalRead"], "full-support",
        "conditionalRead does not describe the server's behaviour"
    );
}

async fn search_is_advertised_and_answers(s: &TestServer) {
    let cs = capability(s).await;
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    let names: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "name",
        "identifier",
        "birthdate",
        "general-practitioner",
        "_id",
    ] {
        assert!(names.contains(&name), "Patient does not advertise {name}");
    }
    expect(
        &put(s, "Patient", "x1", json!({"name": [{"family": "Xu"}]})).await,
        201,
    );
    let resp = s.get("Patient?name=x").await;
    expect(&resp, 200);
    assert_eq!(resp.json()["type"], "searchset");
    assert_eq!(resp.json()["entry"][0]["resource"]["id"], "x1");
    let resp = s
        .send(
            "POST",
            "Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("name=x"),
        )
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["entry"][0]["resource"]["id"], "x1");
    // A _search body must be a form.
    let resp = s
        .send(
            "POST",
            "Patient/_search",
            &[("content-type", "application/fhir+json")],
            Some("{}"),
        )
        .await;
    expect_outcome(&resp, 415);
}

// ---------------------------------------------------------------------------------------
// batch
// ---------------------------------------------------------------------------------------

async fn batch_mixed_entries(s: &TestServer) {
    expect(
        &put(s, "Patient", "keep", json!({"gender": "male"})).await,
        201,
    );
    expect(&put(s, "Patient", "gone", json!({})).await, 201);
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Patient", "active": true},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "id": "keep", "gender": "female"},
         "request": {"method": "PUT", "url": "Patient/keep"}},
        {"request": {"method": "GET", "url": "Patient/keep"}},
        {"request": {"method": "DELETE", "url": "Patient/gone"}},
        {"resource": {"resourceType": "Patient", "id": "other"},
         "request": {"method": "PUT", "url": "Patient/bad"}},
        {"request": {"method": "GET", "url": "Patient/nobody"}},
        {"resource": {"resourceType": "Patient", "id": "new-put"},
         "request": {"method": "PUT", "url": "Patient/new-put"}},
    ]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["resourceType"], "Bundle");
    assert_eq!(body["type"], "batch-response");
    let st = statuses(&body);
    assert_eq!(st.len(), 7, "{body}");
    assert_eq!(st[0], "201 Created");
    assert_eq!(st[1], "200 OK");
    assert_eq!(st[2], "200 OK");
    assert!(st[3].starts_with("20"), "{}", st[3]);
    assert!(st[4].starts_with("400"), "{}", st[4]);
    assert!(st[5].starts_with("404"), "{}", st[5]);
    assert_eq!(st[6], "201 Created");
    let e = entries(&body);
    for failed in [&e[4], &e[5]] {
        assert_eq!(
            failed["response"]["outcome"]["resourceType"], "OperationOutcome",
            "{failed}"
        );
    }
    assert_eq!(e[2]["resource"]["id"], "keep");

    // The others were applied.
    let location = e[0]["response"]["location"].as_str().unwrap();
    let created = s
        .get(&format!("Patient/{}", id_of_location(location)))
        .await;
    expect(&created, 200);
    assert_eq!(created.json()["active"], true);
    let keep = s.get("Patient/keep").await;
    assert_eq!(keep.header("etag"), Some("W/\"2\""));
    assert_eq!(keep.json()["gender"], "female");
    expect_outcome(&s.get("Patient/gone").await, 410);
    expect(&s.get("Patient/new-put").await, 200);
    expect_outcome(&s.get("Patient/bad").await, 404);
    expect_outcome(&s.get("Patient/other").await, 404);
}

// ---------------------------------------------------------------------------------------
// transaction
// ---------------------------------------------------------------------------------------

async fn transaction(s: &TestServer, entries: Value) -> Resp {
    s.post(
        &s.base,
        &json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
    )
    .await
}

async fn transaction_rewrites_urn_uuid_references(s: &TestServer) {
    let patient_urn = "urn:uuid:2b0e2c1e-5b8a-4d5e-9a57-1f1b8c7e0001";
    let put_urn = "urn:uuid:2b0e2c1e-5b8a-4d5e-9a57-1f1b8c7e0002";
    let resp = transaction(
        s,
        json!([
            {"fullUrl": "urn:uuid:2b0e2c1e-5b8a-4d5e-9a57-1f1b8c7e0003",
             "resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": patient_urn},
                          "performer": [{"reference": put_urn}]},
             "request": {"method": "POST", "url": "Observation"}},
            {"fullUrl": patient_urn,
             "resource": {"resourceType": "Patient", "active": true},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": put_urn,
             "resource": {"resourceType": "Patient", "id": "tx-b",
                          "link": [{"other": {"reference": patient_urn}, "type": "seealso"}]},
             "request": {"method": "PUT", "url": "Patient/tx-b"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    assert_eq!(
        statuses(&body),
        ["201 Created", "201 Created", "201 Created"]
    );
    let e = entries(&body);
    let obs_location = e[0]["response"]["location"].as_str().unwrap();
    assert!(obs_location.starts_with("Observation/"), "{obs_location}");
    let patient_location = e[1]["response"]["location"].as_str().unwrap();
    assert!(
        patient_location.starts_with("Patient/"),
        "{patient_location}"
    );
    assert!(
        e[2]["response"]["location"]
            .as_str()
            .unwrap()
            .starts_with("Patient/tx-b/_history/1")
    );
    let patient_id = id_of_location(patient_location);
    assert!(!patient_urn.contains(&patient_id));
    assert_eq!(e[1]["fullUrl"], format!("{}/Patient/{patient_id}", s.base));

    let obs = s
        .get(&format!("Observation/{}", id_of_location(obs_location)))
        .await;
    expect(&obs, 200);
    let obs = obs.json();
    assert_eq!(obs["subject"]["reference"], format!("Patient/{patient_id}"));
    assert_eq!(obs["performer"][0]["reference"], "Patient/tx-b");
    let b = s.get("Patient/tx-b").await.json();
    assert_eq!(
        b["link"][0]["other"]["reference"],
        format!("Patient/{patient_id}")
    );
    expect(&s.get(&format!("Patient/{patient_id}")).await, 200);
    assert_eq!(history_len(s, "_history").await, 3);
}

async fn transaction_rewrites_absolute_full_urls(s: &TestServer) {
    let resp = transaction(
        s,
        json!([
            {"fullUrl": "http://example.org/fhir/Patient/old",
             "resource": {"resourceType": "Patient", "id": "old", "active": true},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                          "subject": {"reference": "Patient/old"},
                          "performer": [{"reference": "http://example.org/fhir/Patient/old"}],
                          "focus": [{"reference": "Patient/unrelated"}]},
             "request": {"method": "POST", "url": "Observation"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    let e = entries(&body);
    let patient_id = id_of_location(e[0]["response"]["location"].as_str().unwrap());
    assert_ne!(patient_id, "old");
    let obs_id = id_of_location(e[1]["response"]["location"].as_str().unwrap());
    let obs = s.get(&format!("Observation/{obs_id}")).await.json();
    assert_eq!(obs["subject"]["reference"], format!("Patient/{patient_id}"));
    assert_eq!(
        obs["performer"][0]["reference"],
        format!("Patient/{patient_id}")
    );
    assert_eq!(obs["focus"][0]["reference"], "Patient/unrelated");
    expect_outcome(&s.get("Patient/old").await, 404);
}

async fn transaction_processing_order(s: &TestServer) {
    expect(&put(s, "Patient", "a", json!({})).await, 201);
    expect(
        &put(s, "Patient", "b", json!({"gender": "male"})).await,
        201,
    );
    // Reads come first in the request but run after the writes.
    let resp = transaction(
        s,
        json!([
            {"request": {"method": "GET", "url": "Patient/a"}},
            {"request": {"method": "GET", "url": "Patient/b"}},
            {"resource": {"resourceType": "Patient", "id": "b", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient/b"}},
            {"request": {"method": "DELETE", "url": "Patient/a"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    let st = statuses(&body);
    assert!(st[0].starts_with("410"), "{st:?}");
    assert_eq!(st[1], "200 OK");
    assert_eq!(st[2], "200 OK");
    assert!(st[3].starts_with("20"), "{st:?}");
    let e = entries(&body);
    assert_eq!(e[1]["resource"]["gender"], "female");
    assert_eq!(e[1]["resource"]["meta"]["versionId"], "2");
    assert_eq!(e[2]["response"]["etag"], "W/\"2\"");
    expect_outcome(&s.get("Patient/a").await, 410);

    // DELETE runs before POST and PUT: deleting and re-creating in one go is an overlap…
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "b"},
             "request": {"method": "PUT", "url": "Patient/b"}},
            {"request": {"method": "DELETE", "url": "Patient/b"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/b").await, "W/\"2\"");
}

async fn transaction_stale_if_match_rolls_back(s: &TestServer) {
    expect(
        &put(s, "Patient", "x", json!({"gender": "male"})).await,
        201,
    );
    expect(&put(s, "Patient", "y", json!({})).await, 201);
    let before = history_len(s, "_history").await;
    let resp = transaction(
        s,
        json!([
            {"fullUrl": "urn:uuid:0b8a7f4e-0000-4000-8000-000000000001",
             "resource": {"resourceType": "Patient", "active": true},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Patient", "id": "tx-new"},
             "request": {"method": "PUT", "url": "Patient/tx-new"}},
            {"request": {"method": "DELETE", "url": "Patient/y"}},
            {"resource": {"resourceType": "Patient", "id": "x", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient/x", "ifMatch": "W/\"5\""}},
        ]),
    )
    .await;
    expect_outcome(&resp, 412);
    assert_eq!(history_len(s, "_history").await, before);
    assert_eq!(history_len(s, "Patient/_history").await, before);
    expect_outcome(&s.get("Patient/tx-new").await, 404);
    expect(&s.get("Patient/y").await, 200);
    let x = s.get("Patient/x").await;
    assert_eq!(x.header("etag"), Some("W/\"1\""));
    assert_eq!(x.json()["gender"], "male");
}

async fn transaction_invalid_entry_rolls_back(s: &TestServer) {
    expect(&put(s, "Patient", "y", json!({})).await, 201);
    for bad in [
        // A POST of the wrong type.
        json!({"resource": {"resourceType": "Observation", "status": "final"},
               "request": {"method": "POST", "url": "Patient"}}),
        // A POST without a resourceType.
        json!({"resource": {"active": true}, "request": {"method": "POST", "url": "Patient"}}),
        // A PUT whose id does not match its URL.
        json!({"resource": {"resourceType": "Patient", "id": "zz"},
               "request": {"method": "PUT", "url": "Patient/tx-zz"}}),
    ] {
        let resp = transaction(
            s,
            json!([
                {"resource": {"resourceType": "Patient", "active": true},
                 "request": {"method": "POST", "url": "Patient"}},
                {"resource": {"resourceType": "Patient", "id": "tx-new2"},
                 "request": {"method": "PUT", "url": "Patient/tx-new2"}},
                {"request": {"method": "DELETE", "url": "Patient/y"}},
                bad,
            ]),
        )
        .await;
        expect_outcome(&resp, 400);
        assert_eq!(history_len(s, "_history").await, 1, "after {bad}");
        expect_outcome(&s.get("Patient/tx-new2").await, 404);
        expect(&s.get("Patient/y").await, 200);
    }
}

async fn transaction_duplicate_writes_are_400(s: &TestServer) {
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "dup", "gender": "male"},
             "request": {"method": "PUT", "url": "Patient/dup"}},
            {"resource": {"resourceType": "Patient", "id": "dup", "gender": "female"},
             "request": {"method": "PUT", "url": "Patient/dup"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    expect_outcome(&s.get("Patient/dup").await, 404);
    expect(&put(s, "Patient", "dup", json!({})).await, 201);
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "dup", "gender": "male"},
             "request": {"method": "PUT", "url": "Patient/dup"}},
            {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                          "data": common::base64(br#"[{"op":"add","path":"/active","value":true}]"#)},
             "request": {"method": "PATCH", "url": "Patient/dup"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/dup").await, "W/\"1\"");
    assert_eq!(history_len(s, "_history").await, 1);
}

async fn bundle_of_other_type_is_400(s: &TestServer) {
    for kind in ["collection", "document", "searchset", "history", "message"] {
        let bundle = json!({"resourceType": "Bundle", "type": kind, "entry": [
            {"fullUrl": "urn:uuid:0b8a7f4e-0000-4000-8000-000000000009",
             "resource": {"resourceType": "Patient"}}
        ]});
        expect_outcome(&s.post(&s.base, &bundle).await, 400);
    }
    expect_outcome(
        &s.post(&s.base, &json!({"resourceType": "Bundle"})).await,
        400,
    );
    // Not a Bundle at all.
    expect_outcome(
        &s.post(&s.base, &json!({"resourceType": "Patient"})).await,
        400,
    );
    assert_nothing_stored(s).await;
}

async fn transaction_patch_entry_with_binary(s: &TestServer) {
    expect(
        &put(
            s,
            "Patient",
            "pp",
            json!({"active": true, "gender": "male"}),
        )
        .await,
        201,
    );
    let doc = br#"[{"op": "replace", "path": "/active", "value": false}, {"op": "remove", "path": "/gender"}]"#;
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                          "data": common::base64(doc)},
             "request": {"method": "PATCH", "url": "Patient/pp"}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "transaction-response");
    assert_eq!(statuses(&body), ["200 OK"]);
    assert_eq!(entries(&body)[0]["response"]["etag"], "W/\"2\"");
    let read = s.get("Patient/pp").await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    let read = read.json();
    assert_eq!(read["active"], false);
    assert!(read.get("gender").is_none());
    let h = entries(&history(s, "Patient/pp/_history").await);
    assert_eq!(h[0]["request"]["method"], "PATCH");

    // A failing patch (a failed test) fails the transaction with 422.
    let failing = br#"[{"op": "test", "path": "/active", "value": true}]"#;
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "tx-other"},
             "request": {"method": "PUT", "url": "Patient/tx-other"}},
            {"resource": {"resourceType": "Binary", "contentType": "application/json-patch+json",
                          "data": common::base64(failing)},
             "request": {"method": "PATCH", "url": "Patient/pp"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 422);
    expect_outcome(&s.get("Patient/tx-other").await, 404);
    assert_eq!(current_version(s, "Patient/pp").await, "W/\"2\"");
}

// ---------------------------------------------------------------------------------------
// more: concurrency, paging stability, bundle edge cases, no 500s
// ---------------------------------------------------------------------------------------

/// Sends `n` PUTs of `Patient/id` at once; returns their statuses and ETags.
async fn concurrent_puts(
    s: &TestServer,
    id: &str,
    n: usize,
    if_match: Option<&'static str>,
) -> Vec<(u16, Option<String>)> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let http = s.http.clone();
        let id = id.to_owned();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient", "id": id,
                              "birthDate": format!("{}-01-01", 1950 + i)})
            .to_string();
            let headers: Vec<(&str, &str)> =
                if_match.map(|m| ("if-match", m)).into_iter().collect();
            let resp = http
                .send("PUT", &format!("Patient/{id}"), &headers, Some(&body))
                .await;
            (resp.status.as_u16(), resp.header("etag").map(str::to_owned))
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn concurrent_updates_all_land(s: &TestServer) {
    expect(&put(s, "Patient", "cc", json!({})).await, 201);
    let results = concurrent_puts(s, "cc", 8, None).await;
    assert!(results.iter().all(|(st, _)| *st == 200), "{results:?}");
    let etags: BTreeSet<String> = results.iter().map(|(_, e)| e.clone().unwrap()).collect();
    let expected: BTreeSet<String> = (2..=9).map(|v| format!("W/\"{v}\"")).collect();
    assert_eq!(etags, expected);
    assert_eq!(history_len(s, "Patient/cc/_history").await, 9);
    assert_eq!(current_version(s, "Patient/cc").await, "W/\"9\"");
}

async fn concurrent_if_match_only_one_wins(s: &TestServer) {
    expect(&put(s, "Patient", "cm", json!({})).await, 201);
    let results = concurrent_puts(s, "cm", 8, Some("W/\"1\"")).await;
    let ok = results.iter().filter(|(st, _)| *st == 200).count();
    let stale = results.iter().filter(|(st, _)| *st == 412).count();
    assert_eq!((ok, stale), (1, 7), "{results:?}");
    assert_eq!(current_version(s, "Patient/cm").await, "W/\"2\"");
    assert_eq!(history_len(s, "Patient/cm/_history").await, 2);
}

async fn concurrent_creates_on_update_make_one_resource(s: &TestServer) {
    let results = concurrent_puts(s, "fresh", 6, None).await;
    let created = results.iter().filter(|(st, _)| *st == 201).count();
    let updated = results.iter().filter(|(st, _)| *st == 200).count();
    assert_eq!((created, updated), (1, 5), "{results:?}");
    let created_etag = results
        .iter()
        .find(|(st, _)| *st == 201)
        .and_then(|(_, e)| e.clone());
    assert_eq!(created_etag.as_deref(), Some("W/\"1\""));
    assert_eq!(history_len(s, "Patient/fresh/_history").await, 6);
    assert_eq!(history_len(s, "_history").await, 6);
}

async fn history_paging_is_stable_under_writes(s: &TestServer) {
    expect(&put(s, "Patient", "st", json!({})).await, 201);
    for _ in 0..4 {
        expect(&put(s, "Patient", "st", json!({"active": true})).await, 200);
    }
    let first = s.get("Patient/_history?_count=2").await;
    expect(&first, 200);
    let first = first.json();
    assert_eq!(versions(&first), [5, 4]);
    // New writes after the first page neither shift nor repeat the later pages.
    expect(
        &put(s, "Patient", "st", json!({"active": false})).await,
        200,
    );
    expect(&put(s, "Patient", "other", json!({})).await, 201);
    let next = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next link")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (sizes, seen) = follow_pages(s, &next).await;
    assert_eq!(sizes, [2, 1]);
    let seen: Vec<u32> = seen.into_iter().map(|(_, v)| v).collect();
    assert_eq!(seen, [3, 2, 1]);
}

async fn batch_entries_fail_independently(s: &TestServer) {
    expect(&put(s, "Patient", "bx", json!({})).await, 201);
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "TRACE", "url": "Patient/bx"}},
        {"resource": {"resourceType": "Patient", "id": "bx", "active": true},
         "request": {"method": "PUT", "url": "Patient/bx", "ifMatch": "W/\"7\""}},
        {"request": {"method": "GET", "url": "Foo/1"}},
        {"resource": {"resourceType": "Observation"},
         "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "DELETE", "url": "Patient/nobody"}},
        {"resource": {"resourceType": "Patient", "id": "bx", "gender": "female"},
         "request": {"method": "PUT", "url": "Patient/bx", "ifMatch": "W/\"1\""}},
        {"request": {"method": "GET", "url": "Patient/bx/_history/1"}},
    ]});
    let resp = s.post(&s.base, &bundle).await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["type"], "batch-response");
    let st = statuses(&body);
    assert_eq!(st.len(), 7, "{body}");
    assert!(st[0].starts_with("400"), "{st:?}");
    assert!(st[1].starts_with("412"), "{st:?}");
    assert!(
        st[2].starts_with("400") || st[2].starts_with("404"),
        "{st:?}"
    );
    assert!(st[3].starts_with("400"), "{st:?}");
    assert!(st[4].starts_with("404"), "{st:?}");
    assert_eq!(st[5], "200 OK");
    assert_eq!(st[6], "200 OK");
    let e = entries(&body);
    for (i, failed) in e.iter().take(5).enumerate() {
        assert_eq!(
            failed["response"]["outcome"]["resourceType"], "OperationOutcome",
            "entry {i}: {failed}"
        );
    }
    assert!(e[6]["resource"].get("gender").is_none(), "{}", e[6]);
    let read = s.get("Patient/bx").await;
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(read.json()["gender"], "female");
}

async fn transaction_absolute_request_urls_and_versioned_reads(s: &TestServer) {
    expect(
        &put(s, "Patient", "ab", json!({"gender": "male"})).await,
        201,
    );
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "ab", "gender": "female"},
             "request": {"method": "PUT", "url": format!("{}/Patient/ab", s.base)}},
            {"request": {"method": "GET", "url": "Patient/ab/_history/1"}},
            {"request": {"method": "GET", "url": format!("{}/Patient/ab", s.base)}},
        ]),
    )
    .await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(statuses(&body), ["200 OK", "200 OK", "200 OK"]);
    let e = entries(&body);
    assert_eq!(e[1]["resource"]["gender"], "male");
    assert_eq!(e[1]["resource"]["meta"]["versionId"], "1");
    assert_eq!(e[2]["resource"]["gender"], "female");
    assert_eq!(e[2]["resource"]["meta"]["versionId"], "2");
    // A URL on another server is refused, and nothing is written.
    let resp = transaction(
        s,
        json!([
            {"resource": {"resourceType": "Patient", "id": "ab", "gender": "other"},
             "request": {"method": "PUT", "url": "http://elsewhere.example/fhir/Patient/ab"}},
        ]),
    )
    .await;
    expect_outcome(&resp, 400);
    assert_eq!(current_version(s, "Patient/ab").await, "W/\"2\"");
}

async fn transaction_prefer_minimal(s: &TestServer) {
    let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "active": true},
         "request": {"method": "POST", "url": "Patient"}},
    ]});
    let resp = s
        .send(
            "POST",
            &s.base,
            &[("prefer", "return=minimal")],
            Some(&bundle.to_string()),
        )
        .await;
    expect(&resp, 200);
    let body = resp.json();
    let e = entries(&body);
    assert_eq!(e.len(), 1);
    assert!(e[0].get("resource").is_none(), "{}", e[0]);
    assert_eq!(e[0]["response"]["status"], "201 Created");
    let id = id_of_location(e[0]["response"]["location"].as_str().unwrap());
    expect(&s.get(&format!("Patient/{id}")).await, 200);
}

/// Method, path, headers and body of a request.
type OddRequest = (
    &'static str,
    String,
    Vec<(&'static str, &'static str)>,
    Option<String>,
);

/// Odd but possible requests: each gets a 4xx (or a deliberate 501) with an
/// OperationOutcome, never a 500.
async fn odd_requests_never_500(s: &TestServer) {
    expect(&put(s, "Patient", "odd", json!({})).await, 201);
    let bundle = |entry: Value| {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": entry}).to_string()
    };
    let binary = |content_type: &str, data: &str| {
        json!([{"resource": {"resourceType": "Binary", "contentType": content_type, "data": data},
                "request": {"method": "PATCH", "url": "Patient/odd"}}])
    };
    let cases: Vec<OddRequest> = vec![
        (
            "PUT",
            "Patient/odd".into(),
            vec![("if-match", "W/\"99999999999999999999\"")],
            Some(json!({"resourceType": "Patient", "id": "odd"}).to_string()),
        ),
        (
            "PUT",
            "Patient/odd".into(),
            vec![],
            Some(r#"{"resourceType": "Patient", "id": 5}"#.into()),
        ),
        ("GET", "_history?_cursor=abc".into(), vec![], None),
        (
            "GET",
            "Patient/odd".into(),
            vec![("accept", "application/fhir+json;q=0")],
            None,
        ),
        ("GET", "Patient/odd?_format=turtle".into(), vec![], None),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(r#"{"resourceType": "Bundle", "type": "transaction", "entry": {}}"#.into()),
        ),
        ("POST", s.base.clone(), vec![], Some(bundle(json!(["x"])))),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(json!([{"request": "x"}]))),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(json!([{"request": {"method": "GET", "url": ""}}]))),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(
                json!([{"request": {"method": "PUT", "url": "Patient/odd/_history/1"},
            "resource": {"resourceType": "Patient", "id": "odd"}}]),
            )),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(
                json!([{"request": {"method": "POST", "url": "Patient"}}]),
            )),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(binary(
                "application/json-patch+json",
                "%%%not base64",
            ))),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(binary(
                "application/json-patch+json",
                &common::base64(b"not json"),
            ))),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(binary("text/plain", &common::base64(b"[]")))),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(
                json!([{"request": {"method": "PATCH", "url": "Patient/odd"},
            "resource": {"resourceType": "Patient"}}]),
            )),
        ),
        (
            "POST",
            s.base.clone(),
            vec![],
            Some(bundle(
                json!([{"request": {"method": "GET", "url": "Patient?name=x"}}]),
            )),
        ),
        (
            "PATCH",
            "Patient/odd".into(),
            vec![("content-type", "application/json-patch+json")],
            Some(r#"[{"op": "add", "path": "/a/b/c", "value": 1}]"#.into()),
        ),
        (
            "PATCH",
            "Patient/odd".into(),
            vec![("content-type", "application/json-patch+json")],
            Some(r#"[{"op": "move", "from": "/id", "path": "/x"}]"#.into()),
        ),
    ];
    for (method, path, headers, body) in &cases {
        let resp = s.send(method, path, headers, body.as_deref()).await;
        let status = resp.status.as_u16();
        assert!(
            (400..500).contains(&status) || status == 501,
            "{method} {path} {body:?} answered {status}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        resp.outcome();
    }
    // If-Modified-Since that is not a date is ignored.
    let resp = s
        .send(
            "GET",
            "Patient/odd",
            &[("if-modified-since", "yesterday")],
            None,
        )
        .await;
    expect(&resp, 200);
    assert_eq!(current_version(s, "Patient/odd").await, "W/\"1\"");
    assert_eq!(history_len(s, "_history").await, 1);
}

/// A small patch that would push the resource past the depth limit is refused.
async fn patch_making_resource_too_deep_is_422(s: &TestServer) {
    // The fixtures nest arrays where R4 has none: this is about the depth limit, so
    // structural validation is off here.
    let unvalidated = without_validation(s.backend).await;
    let s = &unvalidated;
    // Depth 32: exactly at the limit.
    let resp = s
        .send(
            "PUT",
            "Patient/deep",
            &[],
            Some(&nested_patient(29).replacen('{', r#"{"id":"deep","#, 1)),
        )
        .await;
    expect(&resp, 201);
    let innermost = format!("/extension/0/valueString{}/-", "/0".repeat(28));
    let doc = json!([{"op": "add", "path": innermost, "value": [[]]}]).to_string();
    expect_outcome(&patch(s, "Patient/deep", &doc, &[]).await, 422);
    assert_eq!(current_version(s, "Patient/deep").await, "W/\"1\"");
    // A scalar at the same place keeps the depth and is fine.
    let doc = json!([{"op": "add", "path": innermost, "value": 1}]).to_string();
    expect(&patch(s, "Patient/deep", &doc, &[]).await, 200);
}

mod trailing_slash {
    use super::*;

    /// Clients often keep the base URL with a trailing slash; POST [base]/ is the same as POST [base].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transaction_at_base_with_trailing_slash() {
        let s = TestServer::start(common::Backend::Sqlite).await;
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": []});
        let r = s.post("", &bundle).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["type"], "batch-response");
    }
}
