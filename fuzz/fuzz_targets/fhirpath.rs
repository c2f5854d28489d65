//! FHIRPath: bytes → text → `Expression::parse` → evaluation against a small fixed
//! Patient and Observation (as a collection, as a condition, and with each result as
//! the context of a second evaluation). Nothing may panic or hang.

#![no_main]

use std::sync::OnceLock;

use ember_fhir::fhirpath::{DateTime, Env, Expression, Node};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

struct Fixture {
    patient: Value,
    observation: Value,
    now: DateTime,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        patient: json!({
            "resourceType": "Patient",
            "id": "p1",
            "meta": {"versionId": "2", "lastUpdated": "2024-05-01T10:00:00.123+02:00"},
            "extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": "Aarhus", "country": "DK"}
            }],
            "identifier": [{"system": "urn:oid:1.2.208.176.1.2", "value": "0101701234"}],
            "active": true,
            "name": [
                {"use": "official", "family": "Hansen", "given": ["Anne", "Marie"]},
                {"use": "nickname", "given": ["Annie"]}
            ],
            "telecom": [{"system": "phone", "value": "+45 12 34 56 78", "use": "mobile"}],
            "gender": "female",
            "birthDate": "1970-01-01",
            "_birthDate": {"extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1970-01-01T06:30:00+01:00"
            }]},
            "deceasedBoolean": false,
            "address": [{"line": ["Nørregade 1"], "city": "Aarhus", "postalCode": "8000"}],
            "multipleBirthInteger": 2,
            "contact": [{"relationship": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "N"
            }]}], "name": {"family": "Hansen"}}],
            "managingOrganization": {"reference": "Organization/o1", "display": "Clinic"}
        }),
        observation: json!({
            "resourceType": "Observation",
            "id": "o1",
            "contained": [{"resourceType": "Device", "id": "d1", "status": "active"}],
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs"
            }]}],
            "code": {"coding": [
                {"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}
            ], "text": "Heart rate"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-05-01T09:30:00Z",
            "issued": "2024-05-01T09:31:12.345Z",
            "valueQuantity": {
                "value": 72.50, "unit": "beats/minute",
                "system": "http://unitsofmeasure.org", "code": "/min"
            },
            "device": {"reference": "#d1"},
            "referenceRange": [{
                "low": {"value": 60, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
                "high": {"value": 100, "system": "http://unitsofmeasure.org", "code": "/min"}
            }],
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"text": "note"}, "valueString": "at rest"},
                {"code": {"text": "period"},
                 "valuePeriod": {"start": "2024-05-01", "end": "2024-05-01T10:00:00+02:00"}}
            ]
        }),
        now: DateTime::parse_datetime("2024-06-01T12:00:00Z").expect("a valid instant"),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        // Lossy text still exercises the lexer on replacement characters.
        let _ = Expression::parse(&String::from_utf8_lossy(data));
        return;
    };
    let Ok(expr) = Expression::parse(src) else {
        return;
    };
    assert_eq!(expr.source(), src);
    let f = fixture();
    for resource in [&f.patient, &f.observation] {
        let env = Env::new()
            .with_now(f.now)
            .with_string("code", "8867-4")
            .with_var("resource", vec![Node::resource(resource)]);
        if let Ok(out) = expr.evaluate(resource, &env) {
            // Results print (the index and messages do), and each one can be the
            // context of another evaluation.
            for node in out.iter().take(3) {
                let _ = node.to_string();
                let _ = expr.evaluate_node(node.clone(), &env);
            }
        }
        let _ = expr.evaluate_bool(resource, &env);
    }
});
