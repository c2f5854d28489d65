//! Number parameters.

use serde_json::{Value, json};

use super::{Checks, put, try_all_ids};
use crate::common::TestServer;

both_stores!(number_search);

async fn number_search(s: &TestServer) {
    put(s, "Patient", "rp", json!({})).await;
    let risk = |p: Value| json!({"status": "final", "subject": {"reference": "Patient/rp"}, "prediction": p});
    put(
        s,
        "RiskAssessment",
        "r1",
        risk(json!([{"probabilityDecimal": 0.8}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r2",
        risk(json!([{"probabilityDecimal": 0.5}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r3",
        risk(json!([{"probabilityDecimal": 0.25}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r4",
        risk(json!([{"probabilityDecimal": 0.1}, {"probabilityDecimal": 0.95}])),
    )
    .await;
    put(
        s,
        "RiskAssessment",
        "r5",
        risk(json!([{"probabilityRange": {"low": {"value": 0.2}, "high": {"value": 0.4}}}])),
    )
    .await;

    let mut c = Checks::new(s);
    c.ids("RiskAssessment?probability=gt0.5", &["r1", "r4"])
        .await;
    c.ids("RiskAssessment?probability=ge0.5", &["r1", "r2", "r4"])
        .await;
    c.ids("RiskAssessment?probability=lt0.5", &["r3", "r4"])
        .await;
    c.ids("RiskAssessment?probability=le0.25", &["r3", "r4"])
        .await;
    c.ids("RiskAssessment?probability=0.8", &["r1"]).await;
    c.ids("RiskAssessment?probability=eq0.8", &["r1"]).await;
    c.ids("RiskAssessment?probability=0.80", &["r1"]).await; // [0.795, 0.805)
    c.ids("RiskAssessment?probability=0.25", &["r3"]).await;
    c.ids("RiskAssessment?probability=0.6", &[]).await;
    c.ids("RiskAssessment?probability=gt0.90", &["r4"]).await;
    // Each value of r4 satisfies one of the two: 0.95 > 0.20 and 0.1 < 0.6.
    c.ids(
        "RiskAssessment?probability=gt0.20&probability=lt0.6",
        &["r2", "r3", "r4"],
    )
    .await;
    c.ids("RiskAssessment?probability=0.8,0.5", &["r1", "r2"])
        .await;
    c.finish();

    let ne = try_all_ids(s, "RiskAssessment?probability=ne0.5")
        .await
        .unwrap_or_else(|e| panic!("probability=ne0.5: {e}"));
    assert!(
        ne.contains(&"r1".into()) && ne.contains(&"r3".into()) && !ne.contains(&"r2".into()),
        "probability=ne0.5 → {ne:?}"
    );
}
