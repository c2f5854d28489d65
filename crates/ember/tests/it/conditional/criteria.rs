//! The criteria of conditional interactions: required, and searched strictly.

use serde_json::json;

use super::{create, create_if_none_exist, criteria, json_patch, patch, patient, versions_stored};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    conditional_interactions_need_criteria,
    conditional_criteria_are_strict,
);

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
