//! Request limits: the body size (413) and the JSON depth (400, and 422 for a patch that
//! would go past it).

use serde_json::json;

use super::{current_version, history_len, patch, put};
use crate::common::{self, TestServer, TestSettings, expect, expect_outcome};

both_stores!(
    oversized_body_is_413,
    too_deep_json_is_400,
    patch_making_resource_too_deep_is_422,
);

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
