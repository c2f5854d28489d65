//! Conditional update (`PUT [type]?criteria`).

use serde_json::json;

use super::{create, criteria, patient, versions_stored};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    conditional_update_without_match_creates,
    conditional_update_with_one_match_updates_it,
    conditional_update_with_several_matches_is_412,
    conditional_update_id_of_unmatched_resource_is_409,
    conditional_update_if_match,
);

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
