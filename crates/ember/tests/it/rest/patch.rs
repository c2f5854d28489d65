//! Patch (`PATCH [type]/[id]`): JSON Patch and FHIRPath Patch, `If-Match`, failures that
//! store nothing.

use serde_json::{Value, json};

use super::{current_version, history_len, patch, put};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    patch_replace_add_remove,
    patch_failed_test_is_422_and_stores_nothing,
    patch_invalid_document_is_400,
    patch_cannot_change_id_or_type,
    patch_if_match,
    patch_unknown_is_404_and_deleted_is_410,
    patch_requires_json_patch_content_type,
    fhirpath_patch_over_rest,
    transaction_fhirpath_patch_entry,
);

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
