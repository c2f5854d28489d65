//! Token parameters, and `:of-type`.

use serde_json::json;

use super::{Checks, LOINC, body_text, enc, put};
use crate::common::TestServer;

both_stores!(token_search, token_of_type, concept_text_as_display,);

async fn token_search(s: &TestServer) {
    let vital = json!([{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}]);
    put(
        s,
        "Observation",
        "o1",
        json!({"status": "final", "category": vital,
               "code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic pressure"}]}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o2",
        json!({"status": "preliminary", "category": vital,
               "code": {"coding": [{"system": "http://snomed.info/sct", "code": "8480-6"}]}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o3",
        json!({"status": "final", "code": {"coding": [{"code": "8480-6"}]}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o4",
        json!({"status": "amended",
               "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}], "text": "Weight"}}),
    )
    .await;
    put(
        s,
        "Observation",
        "o5",
        json!({"status": "final", "code": {"text": "Blood glucose"}}),
    )
    .await;
    put(
        s,
        "Patient",
        "t1",
        json!({"gender": "female", "active": true,
               "identifier": [{"system": "urn:mrn", "value": "A1"}],
               "telecom": [{"system": "email", "value": "t1@example.org"}, {"system": "phone", "value": "555-0101"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "t2",
        json!({"gender": "male", "active": false, "identifier": [{"system": "urn:ssn", "value": "A1"}]}),
    )
    .await;
    put(s, "Patient", "t3", json!({"gender": "female"})).await;

    let mut c = Checks::new(s);
    c.ids("Observation?code=8480-6", &["o1", "o2", "o3"]).await;
    c.ids("Observation?code=http://loinc.org|8480-6", &["o1"])
        .await;
    c.ids("Observation?code=|8480-6", &["o3"]).await; // no system
    c.ids("Observation?code=http://loinc.org|", &["o1", "o4"])
        .await;
    c.ids(
        "Observation?code=http://loinc.org|8480-6,http://loinc.org|29463-7",
        &["o1", "o4"],
    )
    .await;
    // :text is a string search on CodeableConcept.text and Coding.display.
    c.ids("Observation?code:text=weight", &["o4"]).await;
    c.ids("Observation?code:text=body", &["o4"]).await;
    c.ids("Observation?code:text=blood", &["o5"]).await;
    // :not includes resources without any value for the parameter (o5 has only text).
    c.ids("Observation?code:not=8480-6", &["o4", "o5"]).await;
    c.ids("Observation?status:not=final", &["o2", "o4"]).await;
    c.ids(
        "Observation?status=final,amended",
        &["o1", "o3", "o4", "o5"],
    )
    .await;
    c.ids("Observation?status=final&code=8480-6", &["o1", "o3"])
        .await;
    c.ids("Observation?category=vital-signs", &["o1", "o2"])
        .await;
    c.ids("Observation?category:missing=true", &["o3", "o4", "o5"])
        .await;
    c.ids("Observation?category:missing=false", &["o1", "o2"])
        .await;
    // code, boolean, Identifier and ContactPoint tokens.
    c.ids("Patient?gender=female", &["t1", "t3"]).await;
    c.ids("Patient?gender:not=female", &["t2"]).await;
    c.ids("Patient?active=true", &["t1"]).await;
    c.ids("Patient?active=false", &["t2"]).await;
    c.ids("Patient?active:missing=true", &["t3"]).await;
    c.ids("Patient?identifier=A1", &["t1", "t2"]).await;
    c.ids("Patient?identifier=urn:mrn|A1", &["t1"]).await;
    c.ids("Patient?identifier=urn:ssn|", &["t2"]).await;
    c.ids("Patient?identifier=|A1", &[]).await; // both identifiers have a system
    c.ids("Patient?identifier:missing=true", &["t3"]).await;
    c.ids("Patient?identifier:missing=false", &["t1", "t2"])
        .await;
    c.ids("Patient?email=t1@example.org", &["t1"]).await;
    c.ids("Patient?phone=555-0101", &["t1"]).await;
    c.ids("Patient?email=555-0101", &[]).await; // the phone is not an email
    c.finish();
}

async fn token_of_type(s: &TestServer) {
    let v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
    put(
        s,
        "Patient",
        "ot1",
        json!({"identifier": [{"type": {"coding": [{"system": v2, "code": "MR"}], "text": "Medical record"},
                               "system": "urn:mrn", "value": "123"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "ot2",
        json!({"identifier": [{"type": {"coding": [{"system": v2, "code": "SS"}]},
                               "system": "urn:ssn", "value": "123"}]}),
    )
    .await;
    let mut c = Checks::new(s);
    c.ids("Patient?identifier=123", &["ot1", "ot2"]).await;
    // :text on an Identifier searches its type.text.
    c.ids("Patient?identifier:text=medical", &["ot1"]).await;
    c.finish();

    // :of-type selects by the identifier's type and value.
    let q = "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123";
    let strict = s
        .send("GET", &enc(q), &[("prefer", "handling=strict")], None)
        .await;
    assert_eq!(strict.status.as_u16(), 200, "{}", body_text(&strict));
    let bad = s
        .send("GET", &enc("Patient?identifier:of-type=MR|123"), &[], None)
        .await;
    assert_eq!(bad.status.as_u16(), 400, "{}", body_text(&bad));
    assert!(bad.outcome().contains("system|code|value"));
    let mut c = Checks::new(s);
    c.ids(
        "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|123,http://terminology.hl7.org/CodeSystem/v2-0203|SS|123",
        &["ot1", "ot2"],
    )
    .await;
    c.ids(q, &["ot1"]).await;
    c.ids(
        "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|SS|123",
        &["ot2"],
    )
    .await;
    c.ids(
        "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|999",
        &[],
    )
    .await;
    c.finish();
}

/// A concept whose `text` is one of its codings' display (up to case and spaces) is
/// stored without a row of its own for the text; every search finds it as before.
async fn concept_text_as_display(s: &TestServer) {
    let hr = |text: &str, value: u32| {
        json!({"status": "final",
               "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}], "text": text},
               "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
    };
    put(s, "Observation", "h1", hr("heart  RATE", 72)).await;
    put(s, "Observation", "h2", hr("Pulse", 120)).await;
    let mut c = Checks::new(s);
    c.ids("Observation?code:text=heart", &["h1", "h2"]).await;
    c.ids(&enc("Observation?code:text=heart rate"), &["h1", "h2"])
        .await;
    c.ids("Observation?code:text=pulse", &["h2"]).await;
    c.ids("Observation?code:missing=false", &["h1", "h2"]).await;
    c.ids("Observation?code:not=8867-4", &[]).await;
    let composite = "Observation?code-value-quantity=http://loinc.org|8867-4";
    c.ids(&enc(&format!("{composite}$gt100")), &["h2"]).await;
    c.ids(&enc(&format!("{composite}$lt100")), &["h1"]).await;
    c.finish();
}
