//! Conditional patch (`PATCH [type]?criteria`).

use serde_json::json;

use super::{create, criteria, json_patch, patch, patient, versions_stored};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    conditional_patch_patches_the_one_match,
    conditional_patch_without_or_with_several_matches_fails,
);

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
