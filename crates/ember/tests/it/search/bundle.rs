//! The searchset Bundle: entries, `fullUrl`, links.

use serde_json::json;

use super::{body_text, link, match_ids, put, search};
use crate::common::TestServer;

both_stores!(bundle_is_a_searchset);

async fn bundle_is_a_searchset(s: &TestServer) {
    let stored = put(s, "Patient", "b1", json!({"name": [{"family": "Shape"}]})).await;
    put(s, "Patient", "b2", json!({"name": [{"family": "Other"}]})).await;
    let b = search(s, "Patient?family=shape").await;
    assert_eq!(b["type"], "searchset");
    let entries = b["entry"].as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{b}");
    let e = &entries[0];
    assert_eq!(e["search"]["mode"], "match");
    assert_eq!(e["fullUrl"], format!("{}/Patient/b1", s.base));
    // The entry is the stored resource.
    assert_eq!(e["resource"], stored);
    let me = link(&b, "self").expect("a self link");
    assert!(me.starts_with(&format!("{}/Patient", s.base)), "{me}");
    assert!(me.contains("family=shape"), "{me}");
    assert_eq!(link(&b, "next"), None, "one result fits on one page: {b}");
    if !b["total"].is_null() {
        assert_eq!(b["total"], 1);
    }
    // A type with no resources at all, and a search without parameters.
    let empty = search(s, "Observation").await;
    assert!(match_ids(&empty).is_empty(), "{empty}");
    let mut all = match_ids(&search(s, "Patient").await);
    all.sort();
    assert_eq!(all, ["b1", "b2"]);
    // An unknown resource type is not a search.
    let r = s.get("Nonsense?name=x").await;
    assert_eq!(r.status.as_u16(), 404, "{}", body_text(&r));
    r.outcome();
}
