//! System search (`GET [base]?…`).

use serde_json::Value;

use super::{clinical_fixture, entries_with_mode, link, search, type_id};
use crate::common::TestServer;

both_stores!(system_search);

/// `Type/id` of the `match` entries, in Bundle order.
fn match_refs(b: &Value) -> Vec<String> {
    entries_with_mode(b, "match").iter().map(type_id).collect()
}

async fn system_search(s: &TestServer) {
    clinical_fixture(s).await;
    let refs = |b: &Value| {
        let mut v = match_refs(b);
        v.sort();
        v
    };
    let b = search(s, "?_type=Patient,Observation&_id=p1,o1,org1").await;
    assert_eq!(refs(&b), ["Observation/o1", "Patient/p1"]);
    let b = search(s, "?_id=o2").await;
    assert_eq!(refs(&b), ["Observation/o2"]);
    let b = search(s, "?_type=Patient").await;
    assert_eq!(refs(&b), ["Patient/p1", "Patient/p2"]);
    let b = search(s, "?_type=Organization,Patient&_sort=_id").await;
    assert_eq!(
        match_refs(&b),
        ["Organization/org1", "Patient/p1", "Patient/p2"]
    );
    let b = search(s, "?_type=Observation&_total=accurate").await;
    assert_eq!(b["total"], 3);
    let b = search(s, "?_id=nothing").await;
    assert!(match_refs(&b).is_empty());
    // fullUrls name each resource's type.
    let b = search(s, "?_id=p1,o1").await;
    for e in b["entry"].as_array().unwrap() {
        assert_eq!(
            e["fullUrl"],
            format!("{}/{}", s.base, type_id(&e["resource"]))
        );
    }
    assert!(link(&b, "self").unwrap().starts_with(&s.base));
}
