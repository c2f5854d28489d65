//! The FHIR REST interactions and their errors, over HTTP, on both stores.

mod common;

use common::TestServer;
use serde_json::json;

both_stores!(create_then_read);

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
