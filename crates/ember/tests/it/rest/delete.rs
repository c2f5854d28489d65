//! Delete (`DELETE [type]/[id]`).

use serde_json::json;

use super::{assert_nothing_stored, current_version, entries, history, history_len, put};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    delete_then_read_is_gone,
    delete_is_idempotent,
    delete_unknown_is_404,
    delete_if_match_stale_is_412,
);

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
