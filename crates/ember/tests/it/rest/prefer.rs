//! `Prefer: return=minimal | OperationOutcome | representation` on create and update.

use serde_json::json;

use super::id_of_location;
use crate::common::{TestServer, expect};

both_stores!(
    prefer_return_minimal,
    prefer_return_operation_outcome,
    prefer_return_representation_is_default,
);

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
