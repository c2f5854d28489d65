//! Bad requests: malformed bodies, invalid ids, unknown paths, wrong methods, and odd
//! requests that must never be a 500.

use serde_json::{Value, json};

use super::{assert_nothing_stored, current_version, history_len, patch, put};
use crate::common::{self, TestServer, expect, expect_outcome};

both_stores!(
    malformed_bodies_are_400,
    invalid_ids_are_400,
    unknown_paths_are_404,
    wrong_methods_are_405,
    odd_requests_never_500,
    unknown_operations_are_404_naming_the_operation,
);

async fn unknown_operations_are_404_naming_the_operation(s: &TestServer) {
    for path in [
        "$foo",
        "Patient/$foo",
        "Patient/x/$foo",
        "Foo/$foo",
        "Patient/x/_history/$foo",
    ] {
        for method in ["GET", "POST"] {
            let body = (method == "POST").then_some(r#"{"resourceType": "Parameters"}"#);
            let resp = s.send(method, path, &[], body).await;
            let diagnostics = expect_outcome(&resp, 404);
            assert!(
                diagnostics.contains("operation $foo"),
                "{method} {path}: {diagnostics}"
            );
        }
    }
    // The operations Ember has still answer.
    expect(&put(s, "Patient", "op", json!({})).await, 201);
    let validate = s
        .post("Patient/$validate", &json!({"resourceType": "Patient"}))
        .await;
    expect(&validate, 200);
}

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
    // criteria a 400; see `conditional`).
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
            Some(bundle(
                json!([{"request": {"method": "DELETE", "url": ""}}]),
            )),
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
                json!([{"request": {"method": "GET", "url": "Nope/p1/Observation?name=x"}}]),
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
