//! Small hand-made profiles, one rule each. (The R4 package's own profiles and their
//! examples are in `tests/profiles.rs`.)

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::*;

fn el(id: &str, min: u64, max: &str, extra: Value) -> Value {
    let (path, slice) = match id.rsplit_once(':') {
        Some((p, s)) if !s.contains('.') => (p.to_owned(), Some(s.to_owned())),
        _ => (strip_slices(id), None),
    };
    let mut e = json!({"id": id, "path": strip_slices(&path), "min": min, "max": max});
    if let Some(s) = slice {
        e["sliceName"] = json!(s);
    }
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        e[k] = v;
    }
    e
}

fn strip_slices(id: &str) -> String {
    id.split('.')
        .map(|s| s.split(':').next().unwrap_or(s))
        .collect::<Vec<_>>()
        .join(".")
}

fn sd(url: &str, ty: &str, elements: Vec<Value>) -> Value {
    json!({"resourceType": "StructureDefinition", "url": url, "type": ty,
        "snapshot": {"element": elements}})
}

fn patient_profile() -> Profile {
    Profile::compile(&sd(
        "http://example.org/sd/patient",
        "Patient",
        vec![
            el("Patient", 0, "*", json!({"constraint": [
                {"key": "tst-1", "severity": "error", "human": "a name or an identifier",
                 "expression": "name.exists() or identifier.exists()"},
                {"key": "tst-2", "severity": "warning", "human": "a birth date",
                 "expression": "birthDate.exists()"},
                {"key": "tst-3", "severity": "error", "human": "no engine support",
                 "expression": "noSuchFunction()"}]})),
            el("Patient.identifier", 1, "*", json!({"type": [{"code": "Identifier"}],
                "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}})),
            el("Patient.identifier:mrn", 1, "1", json!({"type": [{"code": "Identifier"}]})),
            el("Patient.identifier:mrn.system", 1, "1", json!({"type": [{"code": "uri"}], "fixedUri": "urn:mrn"})),
            el("Patient.identifier:mrn.value", 1, "1", json!({"type": [{"code": "string"}]})),
            el("Patient.gender", 0, "1", json!({"type": [{"code": "code"}], "fixedCode": "female"})),
            el("Patient.maritalStatus", 0, "1", json!({"type": [{"code": "CodeableConcept"}],
                "patternCodeableConcept": {"coding": [{"system": "http://example.org/ms", "code": "M"}]},
                "binding": {"strength": "required", "valueSet": "http://example.org/vs/ms"}})),
            el("Patient.deceased[x]", 0, "1", json!({"type": [{"code": "boolean"}]})),
            el("Patient.generalPractitioner", 0, "*", json!({"type": [{"code": "Reference",
                "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"]}]})),
            el("Patient.contact", 0, "0", json!({"type": [{"code": "BackboneElement"}]})),
        ],
    ))
    .unwrap()
}

fn good_patient() -> Value {
    json!({"resourceType": "Patient", "birthDate": "1970-01-01",
        "identifier": [{"system": "urn:other", "value": "1"}, {"system": "urn:mrn", "value": "2"}],
        "gender": "female",
        "maritalStatus": {"coding": [{"system": "http://example.org/ms", "code": "M", "display": "Married"}]},
        "deceasedBoolean": false,
        "generalPractitioner": [{"reference": "Practitioner/1"}]})
}

fn errors(report: &Report) -> Vec<(String, String)> {
    report
        .outcome
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| (i.expression.join(","), i.diagnostics.clone()))
        .collect()
}

/// The only error's location, with its message containing `needle`.
#[track_caller]
fn one_error(resource: &Value, profile: &Profile, loc: &str, needle: &str) {
    let report = validate(resource, profile, &());
    let errs = errors(&report);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, loc, "{errs:?}");
    assert!(errs[0].1.contains(needle), "{errs:?}");
}

#[test]
fn a_conforming_patient_has_no_errors_and_returns_its_binding() {
    let report = validate(&good_patient(), &patient_profile(), &());
    assert!(errors(&report).is_empty(), "{:?}", report.outcome);
    assert_eq!(report.bindings.len(), 1);
    let b = &report.bindings[0];
    assert_eq!(b.value_set, "http://example.org/vs/ms");
    assert_eq!(b.expression, "Patient.maritalStatus");
    assert_eq!(
        b.codes,
        vec![(Some("http://example.org/ms".to_owned()), "M".to_owned())]
    );
    // The constraint the engine cannot parse is reported once, as information.
    let info: Vec<_> = report
        .outcome
        .issues
        .iter()
        .filter(|i| i.severity == Severity::Information)
        .collect();
    assert_eq!(info.len(), 1);
    assert!(info[0].diagnostics.contains("tst-3"));
}

#[test]
fn cardinality_and_slices() {
    let p = patient_profile();
    let mut r = good_patient();
    r["identifier"] = json!([{"system": "urn:other", "value": "1"}]);
    one_error(&r, &p, "Patient.identifier", "slice mrn");
    r.as_object_mut().unwrap().remove("identifier");
    let report = validate(&r, &p, &());
    let errs = errors(&report);
    assert!(
        errs.iter()
            .any(|(l, m)| l == "Patient.identifier" && m.contains("at least 1")),
        "{errs:?}"
    );
    let mut r = good_patient();
    r["contact"] = json!([{"gender": "male"}]);
    one_error(&r, &p, "Patient.contact", "at most 0");
    // An element inside a slice.
    let mut r = good_patient();
    r["identifier"][1].as_object_mut().unwrap().remove("value");
    one_error(&r, &p, "Patient.identifier[1].value", "at least 1");
}

#[test]
fn fixed_and_pattern_values() {
    let p = patient_profile();
    let mut r = good_patient();
    r["gender"] = json!("male");
    one_error(&r, &p, "Patient.gender", "exactly");
    let mut r = good_patient();
    r["maritalStatus"] = json!({"coding": [{"system": "http://example.org/ms", "code": "S"}]});
    one_error(&r, &p, "Patient.maritalStatus", "pattern");
}

#[test]
fn types_and_reference_targets() {
    let p = patient_profile();
    let mut r = good_patient();
    r.as_object_mut().unwrap().remove("deceasedBoolean");
    r["deceasedDateTime"] = json!("2020-01-01");
    one_error(
        &r,
        &p,
        "Patient.deceasedDateTime",
        "dateTime is not allowed",
    );
    let mut r = good_patient();
    r["generalPractitioner"] =
        json!([{"reference": "Practitioner/1"}, {"reference": "Organization/2"}]);
    one_error(&r, &p, "Patient.generalPractitioner[1]", "Practitioner");
}

#[test]
fn invariants_by_severity() {
    let p = patient_profile();
    let mut r = good_patient();
    r.as_object_mut().unwrap().remove("birthDate");
    let report = validate(&r, &p, &());
    assert!(errors(&report).is_empty());
    assert!(
        report
            .outcome
            .issues
            .iter()
            .any(|i| i.severity == Severity::Warning
                && i.code == IssueType::Invariant
                && i.diagnostics.starts_with("tst-2")
                && i.expression == vec!["Patient".to_owned()])
    );
    // tst-1 fails only when both are missing; the identifier minimum fails too.
    let r = json!({"resourceType": "Patient"});
    let errs = errors(&validate(&r, &p, &()));
    assert!(
        errs.iter()
            .any(|(l, m)| l == "Patient" && m.starts_with("tst-1")),
        "{errs:?}"
    );
}

#[test]
fn the_profile_is_for_one_type() {
    let errs = errors(&validate(
        &json!({"resourceType": "Observation"}),
        &patient_profile(),
        &(),
    ));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].1.contains("is for Patient"));
}

#[test]
fn no_snapshot_is_refused() {
    let sd = json!({"resourceType": "StructureDefinition", "url": "http://x/sd",
        "differential": {"element": [{"path": "Patient"}]}});
    let err = Profile::compile(&sd).unwrap_err();
    assert!(matches!(err, ProfileError::NoSnapshot(_)));
    assert!(err.to_string().contains("snapshot"));
}

/// An Observation profile: a closed type slicing on `value[x]`, components sliced by
/// pattern, a Quantity profile on the component value, and `profile` discriminators.
fn observation_profile() -> Profile {
    let quantity = "http://example.org/sd/ucum-quantity";
    Profile::compile(&sd(
        "http://example.org/sd/obs",
        "Observation",
        vec![
            el("Observation", 0, "*", json!({})),
            el("Observation.status", 1, "1", json!({"type": [{"code": "code"}]})),
            el("Observation.value[x]", 0, "1", json!({"type": [{"code": "Quantity"}, {"code": "string"}],
                "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"}})),
            el("Observation.value[x]:valueQuantity", 0, "1", json!({"type": [{"code": "Quantity"}]})),
            el("Observation.component", 0, "*", json!({"type": [{"code": "BackboneElement"}],
                "slicing": {"discriminator": [{"type": "pattern", "path": "code"}], "rules": "closed"}})),
            el("Observation.component:sys", 1, "1", json!({"type": [{"code": "BackboneElement"}]})),
            el("Observation.component:sys.code", 1, "1", json!({"type": [{"code": "CodeableConcept"}],
                "patternCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}})),
            el("Observation.component:sys.value[x]", 1, "1", json!({"type": [{"code": "Quantity",
                "profile": [quantity]}]})),
            el("Observation.component:dia", 0, "1", json!({"type": [{"code": "BackboneElement"}]})),
            el("Observation.component:dia.code", 1, "1", json!({"type": [{"code": "CodeableConcept"}],
                "patternCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}})),
        ],
    ))
    .unwrap()
}

fn quantity_profile() -> Arc<Profile> {
    Arc::new(
        Profile::compile(&sd(
            "http://example.org/sd/ucum-quantity",
            "Quantity",
            vec![
                el("Quantity", 0, "*", json!({})),
                el(
                    "Quantity.system",
                    1,
                    "1",
                    json!({"type": [{"code": "uri"}], "fixedUri": "http://unitsofmeasure.org"}),
                ),
                el("Quantity.code", 1, "1", json!({"type": [{"code": "code"}]})),
            ],
        ))
        .unwrap(),
    )
}

fn component(code: &str, value: Value) -> Value {
    json!({"code": {"coding": [{"system": "http://loinc.org", "code": code}]}, "valueQuantity": value})
}

fn mmhg() -> Value {
    json!({"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"})
}

#[test]
fn slices_by_pattern_with_closed_rules_and_type_profiles() {
    let p = observation_profile();
    let mut known = HashMap::new();
    known.insert(
        "http://example.org/sd/ucum-quantity".to_owned(),
        quantity_profile(),
    );
    let good = json!({"resourceType": "Observation", "status": "final",
        "component": [component("8480-6", mmhg()), component("8462-4", mmhg())]});
    assert!(errors(&validate(&good, &p, &known)).is_empty());
    // The required slice is missing.
    let mut r = good.clone();
    r["component"] = json!([component("8462-4", mmhg())]);
    let errs = errors(&validate(&r, &p, &known));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "Observation.component");
    assert!(errs[0].1.contains("slice sys"));
    // A component of no slice, under closed slicing.
    let mut r = good.clone();
    r["component"]
        .as_array_mut()
        .unwrap()
        .push(component("9999-9", mmhg()));
    let errs = errors(&validate(&r, &p, &known));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "Observation.component[2]");
    assert!(errs[0].1.contains("closed"));
    // The type profile of the slice's value: the known profile is checked...
    let mut r = good.clone();
    r["component"][0]["valueQuantity"]["system"] = json!("http://example.org/units");
    let errs = errors(&validate(&r, &p, &known));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "Observation.component[0].valueQuantity.system");
    // ...and an unknown one is not.
    assert!(errors(&validate(&r, &p, &())).is_empty());
}

#[test]
fn type_slices_on_a_choice() {
    let p = observation_profile();
    let components = json!([component("8480-6", mmhg())]);
    let r = json!({"resourceType": "Observation", "status": "final", "valueString": "high",
        "component": components});
    one_error(&r, &p, "Observation.valueString", "closed");
    let r = json!({"resourceType": "Observation", "status": "final", "valueQuantity": mmhg(),
        "component": components});
    assert!(errors(&validate(&r, &p, &())).is_empty());
}

#[test]
fn profile_and_exists_discriminators() {
    let quantity = "http://example.org/sd/ucum-quantity";
    let p = Profile::compile(&sd(
        "http://example.org/sd/obs2",
        "Observation",
        vec![
            el("Observation", 0, "*", json!({})),
            el("Observation.component", 0, "*", json!({"type": [{"code": "BackboneElement"}],
                "slicing": {"discriminator": [{"type": "profile", "path": "value"}], "rules": "open"}})),
            el("Observation.component:ucum", 1, "*", json!({"type": [{"code": "BackboneElement"}]})),
            el("Observation.component:ucum.value[x]", 1, "1", json!({"type": [{"code": "Quantity", "profile": [quantity]}]})),
            el("Observation.note", 0, "*", json!({"type": [{"code": "Annotation"}],
                "slicing": {"discriminator": [{"type": "exists", "path": "author"}], "rules": "closed"}})),
            el("Observation.note:signed", 0, "1", json!({"type": [{"code": "Annotation"}]})),
            el("Observation.note:signed.author[x]", 1, "1", json!({"type": [{"code": "string"}]})),
        ],
    ))
    .unwrap();
    let mut known = HashMap::new();
    known.insert(quantity.to_owned(), quantity_profile());
    let good = json!({"resourceType": "Observation",
        "component": [component("x", mmhg())],
        "note": [{"authorString": "Dr. A", "text": "ok"}]});
    assert!(
        errors(&validate(&good, &p, &known)).is_empty(),
        "{:?}",
        validate(&good, &p, &known).outcome
    );
    let mut r = good.clone();
    r["component"][0]["valueQuantity"]["system"] = json!("http://other");
    one_error(&r, &p, "Observation.component", "slice ucum");
    let mut r = good.clone();
    r["note"]
        .as_array_mut()
        .unwrap()
        .push(json!({"text": "unsigned"}));
    let errs = errors(&validate(&r, &p, &known));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, "Observation.note[1]");
}

#[test]
fn binding_issues_by_strength() {
    let mut check = BindingCheck {
        value_set: "http://example.org/vs".into(),
        strength: Strength::Required,
        codes: vec![(Some("http://s".into()), "c".into())],
        expression: "Observation.code".into(),
        element: "Observation.code".into(),
    };
    assert!(binding_issue(&check, Ok(true)).is_none());
    let issue = binding_issue(&check, Ok(false)).unwrap();
    assert_eq!(issue.severity, Severity::Error);
    assert_eq!(issue.expression, vec!["Observation.code".to_owned()]);
    assert!(issue.diagnostics.contains("http://s|c"));
    check.strength = Strength::Extensible;
    assert_eq!(
        binding_issue(&check, Ok(false)).unwrap().severity,
        Severity::Warning
    );
    let unknown = binding_issue(&check, Err("unknown value set".into())).unwrap();
    assert_eq!(unknown.severity, Severity::Warning);
}
