//! Composite parameters, and Observation's `combo-*` parameters.

use serde_json::json;

use super::{Checks, LOINC, UCUM, coded, obs, put};
use crate::common::TestServer;

both_stores!(composite_search, combo_parameters,);

/// Observation's `combo-*` parameters cover the Observation and its components.
async fn combo_parameters(s: &TestServer) {
    let q = |v: f64| json!({"value": v, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"});
    put(
        s,
        "Observation",
        "bp",
        obs(json!({
        "code": coded("http://loinc.org", "85354-9"),
        "component": [
            {"code": coded("http://loinc.org", "8480-6"), "valueQuantity": q(150.0)},
            {"code": coded("http://loinc.org", "8462-4"), "valueQuantity": q(95.0)}
        ]})),
    )
    .await;
    put(
        s,
        "Observation",
        "sys",
        obs(json!({
        "code": coded("http://loinc.org", "8480-6"), "valueQuantity": q(120.0)})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Observation?combo-code=8480-6", &["bp", "sys"]).await;
    c.ids("Observation?combo-code=85354-9", &["bp"]).await;
    c.ids("Observation?code=8480-6", &["sys"]).await;
    c.ids("Observation?combo-value-quantity=gt140", &["bp"])
        .await;
    c.ids("Observation?combo-value-quantity=gt100", &["bp", "sys"])
        .await;
    c.ids(
        "Observation?combo-value-quantity=lt100|http://unitsofmeasure.org|mm[Hg]",
        &["bp"],
    )
    .await;
    // Code and value pair within the Observation or within one component.
    c.ids(
        "Observation?combo-code-value-quantity=8480-6$gt130",
        &["bp"],
    )
    .await;
    c.ids(
        "Observation?combo-code-value-quantity=8480-6$lt130",
        &["sys"],
    )
    .await;
    c.ids("Observation?combo-code-value-quantity=8462-4$gt130", &[])
        .await;
    c.ids("Observation?combo-code:missing=true", &[]).await;
    c.ordered("Observation?_sort=-combo-value-quantity", &["bp", "sys"])
        .await;
    c.finish();
}

async fn composite_search(s: &TestServer) {
    let mmhg = |v: f64| json!({"value": v, "system": UCUM, "code": "mm[Hg]", "unit": "mmHg"});
    let bp_code = |code: &str| json!({"coding": [{"system": LOINC, "code": code}]});
    put(
        s,
        "Observation",
        "c1",
        json!({"status": "final", "code": bp_code("8480-6"), "valueQuantity": mmhg(120.0)}),
    )
    .await;
    put(
        s,
        "Observation",
        "c2",
        json!({"status": "final", "code": bp_code("8480-6"), "valueQuantity": mmhg(90.0)}),
    )
    .await;
    put(
        s,
        "Observation",
        "c3",
        json!({"status": "final", "code": bp_code("8462-4"), "valueQuantity": mmhg(130.0)}),
    )
    .await;
    put(
        s,
        "Observation",
        "c4",
        json!({"status": "final", "code": bp_code("85354-9"), "component": [
            {"code": bp_code("8480-6"), "valueQuantity": mmhg(150.0)},
            {"code": bp_code("8462-4"), "valueQuantity": mmhg(80.0)}]}),
    )
    .await;
    put(
        s,
        "Observation",
        "c5",
        json!({"status": "final", "code": bp_code("85354-9"), "component": [
            {"code": bp_code("8480-6"), "valueQuantity": mmhg(95.0)},
            {"code": bp_code("8462-4"), "valueQuantity": mmhg(110.0)}]}),
    )
    .await;

    let mut c = Checks::new(s);
    c.ids(
        "Observation?code-value-quantity=http://loinc.org|8480-6$gt100",
        &["c1"],
    )
    .await;
    c.ids(
        "Observation?code-value-quantity=http://loinc.org|8462-4$gt100",
        &["c3"],
    )
    .await;
    // The plain quantity, without units: the value as written (90, 120, 130 mm[Hg]).
    c.ids("Observation?value-quantity=gt100", &["c1", "c3"])
        .await;
    c.ids("Observation?value-quantity=lt100", &["c2"]).await;
    c.ids("Observation?code-value-quantity=8480-6$lt100", &["c2"])
        .await;
    c.ids(
        "Observation?code-value-quantity=http://loinc.org|8480-6$120|http://unitsofmeasure.org|mm[Hg]",
        &["c1"],
    )
    .await;
    // The pair must come from one component: c5's 110 is diastolic, its systolic 95.
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100|http://unitsofmeasure.org|mm[Hg]",
        &["c4"],
    )
    .await;
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt100",
        &["c4"],
    )
    .await;
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8462-4$gt100",
        &["c5"],
    )
    .await;
    c.ids(
        "Observation?component-code-value-quantity=http://loinc.org|8462-4$lt100",
        &["c4"],
    )
    .await;
    // Plain token/quantity parameters are not pairwise: c5 has a 8480-6 component and a
    // component over 100.
    c.ids(
        "Observation?component-code=http://loinc.org|8480-6&component-value-quantity=gt100",
        &["c4", "c5"],
    )
    .await;
    c.finish();
}
