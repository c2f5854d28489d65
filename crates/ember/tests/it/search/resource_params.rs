//! The parameters of every resource: `_id`, `_tag`, `_profile`, `_security`, `_source`,
//! `_lastUpdated`.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Checks, obs, put};
use crate::common::TestServer;

both_stores!(resource_level_params, last_updated_search,);

async fn resource_level_params(s: &TestServer) {
    let conf = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    put(
        s,
        "Patient",
        "a",
        json!({"meta": {"tag": [{"system": "http://ex.org/tags", "code": "vip"}],
                        "profile": ["http://ex.org/StructureDefinition/p1"],
                        "security": [{"system": conf, "code": "R"}],
                        "source": "http://source.ex/a"}}),
    )
    .await;
    put(
        s,
        "Patient",
        "b",
        json!({"meta": {"tag": [{"system": "http://ex.org/tags", "code": "test"}],
                        "profile": ["http://ex.org/StructureDefinition/p2"],
                        "source": "http://source.ex/b#x"}}),
    )
    .await;
    put(
        s,
        "Patient",
        "c",
        json!({"meta": {"tag": [{"system": "http://other/tags", "code": "vip"}],
                        "security": [{"system": conf, "code": "N"}]}}),
    )
    .await;
    put(s, "Observation", "a", obs(json!({}))).await; // same id, another type

    let mut c = Checks::new(s);
    c.ids("Patient?_id=a", &["a"]).await;
    c.ids("Patient?_id=a,c", &["a", "c"]).await;
    c.ids("Patient?_id=zz", &[]).await;
    c.ids("Observation?_id=a", &["a"]).await;
    c.ids("Patient?_tag=vip", &["a", "c"]).await;
    c.ids("Patient?_tag=http://ex.org/tags|vip", &["a"]).await;
    c.ids("Patient?_tag=http://ex.org/tags|", &["a", "b"]).await;
    c.ids("Patient?_tag:not=http://ex.org/tags|vip", &["b", "c"])
        .await;
    c.ids("Patient?_tag=vip&_tag=http://ex.org/tags|", &["a"])
        .await;
    c.ids(
        "Patient?_profile=http://ex.org/StructureDefinition/p1",
        &["a"],
    )
    .await;
    c.ids(
        "Patient?_profile=http://ex.org/StructureDefinition/p1,http://ex.org/StructureDefinition/p2",
        &["a", "b"],
    )
    .await;
    c.ids(
        "Patient?_security=http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R",
        &["a"],
    )
    .await;
    c.ids("Patient?_security=N", &["c"]).await;
    c.ids("Patient?_source=http://source.ex/a", &["a"]).await;
    c.ids("Patient?_source=http://source.ex/b#x", &["b"]).await;
    c.ids("Patient?_id=a&_tag=test", &[]).await;
    // Several ids drive the search through the primary key: pages, sorts, other
    // filters and counts see the same documents, and a deleted one is not among them.
    put(s, "Patient", "d", json!({})).await;
    assert_eq!(s.delete("Patient/d").await.status, 204);
    c.ordered("Patient?_id=c,zz,a,b,d&_count=1", &["a", "b", "c"])
        .await;
    c.ordered("Patient?_id=a,b,c&_sort=-_id&_count=2", &["c", "b", "a"])
        .await;
    c.ids("Patient?_id=a,b,c&_tag=vip", &["a", "c"]).await;
    c.ids("Patient?_id=a,b&_tag:not=http://ex.org/tags|vip", &["b"])
        .await;
    c.ids("Patient?_id=a,d", &["a"]).await;
    let count = s.get("Patient?_id=a,b,d,zz&_summary=count").await.json();
    assert_eq!(count["total"], 2, "{count}");
    c.finish();
}

async fn last_updated_search(s: &TestServer) {
    let stamp = |v: &Value| v["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let ta = stamp(&put(s, "Patient", "a", json!({})).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let tb = stamp(&put(s, "Patient", "b", json!({})).await);
    tokio::time::sleep(Duration::from_millis(30)).await;
    let tc = stamp(&put(s, "Patient", "c", json!({})).await);
    assert!(ta < tb && tb < tc, "{ta} {tb} {tc}");

    let mut c = Checks::new(s);
    c.ids(&format!("Patient?_lastUpdated=gt{ta}"), &["b", "c"])
        .await;
    c.ids(&format!("Patient?_lastUpdated=ge{tb}"), &["b", "c"])
        .await;
    c.ids(&format!("Patient?_lastUpdated=lt{tb}"), &["a"]).await;
    c.ids(&format!("Patient?_lastUpdated=le{tb}"), &["a", "b"])
        .await;
    c.ids(&format!("Patient?_lastUpdated={tb}"), &["b"]).await;
    c.ids(
        &format!("Patient?_lastUpdated=ge{ta}&_lastUpdated=lt{tc}"),
        &["a", "b"],
    )
    .await;
    c.ids(&format!("Patient?_lastUpdated=gt{tc}"), &[]).await;
    c.ids("Patient?_lastUpdated=gt2000-01-01", &["a", "b", "c"])
        .await;
    c.ids("Patient?_lastUpdated=lt2000", &[]).await;
    c.finish();

    // An update moves the resource's lastUpdated.
    let ta2 = stamp(&put(s, "Patient", "a", json!({"active": true})).await);
    let mut c = Checks::new(s);
    c.ids(&format!("Patient?_lastUpdated=gt{tc}"), &["a"]).await;
    c.ids(&format!("Patient?_lastUpdated=lt{ta2}"), &["b", "c"])
        .await;
    c.finish();
}
