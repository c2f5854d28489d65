//! The CapabilityStatement advertises the conditional interactions.

use crate::common::TestServer;

both_stores!(metadata_advertises_conditional_interactions);

async fn metadata_advertises_conditional_interactions(s: &TestServer) {
    let cs = s.get("metadata").await.json();
    for r in cs["rest"][0]["resource"].as_array().unwrap() {
        assert_eq!(r["conditionalCreate"], true, "{}", r["type"]);
        assert_eq!(r["conditionalUpdate"], true, "{}", r["type"]);
        assert_eq!(r["conditionalDelete"], "multiple", "{}", r["type"]);
        // R4 has no conditionalPatch element.
        assert!(r.get("conditionalPatch").is_none());
    }
}
