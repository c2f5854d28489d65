//! Quantity parameters, and UCUM canonical units.

use serde_json::{Value, json};

use super::{Checks, UCUM, obs, put};
use crate::common::TestServer;

both_stores!(quantity_search, quantity_canonical_units,);

async fn quantity_search(s: &TestServer) {
    let q = |value: Value, code: Option<&str>, unit: &str| {
        let mut v = json!({"value": value, "unit": unit});
        if let Some(code) = code {
            v["system"] = json!(UCUM);
            v["code"] = json!(code);
        }
        obs(json!({"valueQuantity": v}))
    };
    put(s, "Observation", "q1", q(json!(5.4), Some("mg"), "mg")).await;
    put(s, "Observation", "q2", q(json!(6), Some("mg"), "mg")).await;
    put(s, "Observation", "q4", q(json!(8), None, "mg")).await; // unit text only
    put(
        s,
        "Observation",
        "q5",
        q(json!(100), Some("mg/dL"), "mg/dL"),
    )
    .await;
    put(s, "Observation", "q6", obs(json!({"valueString": "n/a"}))).await;

    let mut c = Checks::new(s);
    c.ids(
        "Observation?value-quantity=5.4|http://unitsofmeasure.org|mg",
        &["q1"],
    )
    .await;
    c.ids("Observation?value-quantity=5.4", &["q1"]).await; // any unit
    c.ids(
        "Observation?value-quantity=gt5.4|http://unitsofmeasure.org|mg",
        &["q2"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=ge5.4|http://unitsofmeasure.org|mg",
        &["q1", "q2"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=lt6|http://unitsofmeasure.org|mg",
        &["q1"],
    )
    .await;
    // No system: the code or the unit text.
    c.ids("Observation?value-quantity=le6||mg", &["q1", "q2"])
        .await;
    c.ids("Observation?value-quantity=8||mg", &["q4"]).await;
    c.ids("Observation?value-quantity=gt5.0||mg", &["q1", "q2", "q4"])
        .await;
    c.ids(
        "Observation?value-quantity=gt50|http://unitsofmeasure.org|mg/dL",
        &["q5"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=gt50|http://unitsofmeasure.org|mg",
        &[],
    )
    .await;
    c.ids(
        "Observation?value-quantity=6|http://unitsofmeasure.org|mg,100||mg/dL",
        &["q2", "q5"],
    )
    .await;
    c.finish();
}

async fn quantity_canonical_units(s: &TestServer) {
    let q = |value: f64, code: &str| {
        obs(json!({"valueQuantity": {"value": value, "system": UCUM, "code": code, "unit": code}}))
    };
    put(s, "Observation", "u1", q(5.4, "mg")).await;
    put(s, "Observation", "u2", q(6.0, "mg")).await;
    put(s, "Observation", "u3", q(0.01, "g")).await; // = 10 mg
    put(s, "Observation", "u4", q(2.0, "kg")).await; // = 2,000,000 mg
    let mut c = Checks::new(s);
    c.ids(
        "Observation?value-quantity=gt5.4|http://unitsofmeasure.org|mg",
        &["u2", "u3", "u4"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=10|http://unitsofmeasure.org|mg",
        &["u3"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=0.006|http://unitsofmeasure.org|g",
        &["u2"],
    )
    .await; // [5.5, 6.5) mg
    c.ids(
        "Observation?value-quantity=lt1|http://unitsofmeasure.org|g",
        &["u1", "u2", "u3"],
    )
    .await;
    c.ids(
        "Observation?value-quantity=2000|http://unitsofmeasure.org|g",
        &["u4"],
    )
    .await;
    c.finish();
}
