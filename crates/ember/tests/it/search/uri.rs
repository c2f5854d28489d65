//! URI parameters.

use serde_json::json;

use super::{Checks, put};
use crate::common::TestServer;

both_stores!(uri_search);

async fn uri_search(s: &TestServer) {
    for (id, url) in [
        ("v1", "http://acme.org/fhir/ValueSet/123"),
        ("v2", "http://acme.org/fhir/ValueSet/123/v2"),
        ("v3", "http://acme.org/fhir/other/ValueSet/9"),
        ("v4", "http://example.com/ValueSet/1"),
        ("v5", "urn:oid:1.2.3.4"),
    ] {
        put(s, "ValueSet", id, json!({"status": "active", "url": url})).await;
    }
    put(s, "ValueSet", "v6", json!({"status": "draft"})).await;

    let mut c = Checks::new(s);
    c.ids("ValueSet?url=http://acme.org/fhir/ValueSet/123", &["v1"])
        .await; // exact, not a prefix
    c.ids("ValueSet?url=http://acme.org/fhir/ValueSet/12", &[])
        .await;
    c.ids("ValueSet?url=urn:oid:1.2.3.4", &["v5"]).await;
    c.ids(
        "ValueSet?url:below=http://acme.org/fhir/",
        &["v1", "v2", "v3"],
    )
    .await;
    c.ids(
        "ValueSet?url:below=http://acme.org/fhir/ValueSet/123",
        &["v1", "v2"],
    )
    .await;
    // :above: the stored url is a prefix of the query.
    c.ids(
        "ValueSet?url:above=http://acme.org/fhir/ValueSet/123/v2/x",
        &["v1", "v2"],
    )
    .await;
    c.ids(
        "ValueSet?url:above=http://acme.org/fhir/ValueSet/123",
        &["v1"],
    )
    .await;
    c.ids("ValueSet?url:missing=true", &["v6"]).await;
    c.ids(
        "ValueSet?url=http://example.com/ValueSet/1,urn:oid:1.2.3.4",
        &["v4", "v5"],
    )
    .await;
    c.finish();
}
