//! Structural validation (`ember_fhir::validate`).
//!
//! Every JSON resource of the R4 examples package (`$EMBER_FHIR_PACKAGE` or
//! `../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz` next to the workspace) must validate
//! without errors in strict mode, except the files listed in
//! `validation-expected-failures.txt`, which must fail (they are known defects of the
//! official examples). `EMBER_VALIDATION_BLESS=1` rewrites that file from the current
//! results (then restore the reasons).
//!
//! Then hand-made invalid resources, one or more per rule, with the exact issue expected.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::examples;
use std::time::Instant;

use ember_fhir::validate::{Mode, has_errors, validate};
use ember_fhir::{IssueType, OperationOutcome, Severity};
use serde_json::{Value, json};

const EXPECTED: &str = "validation-expected-failures.txt";

fn expected_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(EXPECTED)
}

/// `name  # reason` lines.
fn expected_failures() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(expected_path()).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once('#').unwrap_or((l, ""));
            (name.trim().to_owned(), reason.trim().to_owned())
        })
        .collect()
}

fn describe(outcome: &OperationOutcome) -> String {
    outcome
        .issues
        .iter()
        .map(|i| {
            format!(
                "    {} {} {:?}: {}",
                i.severity.code(),
                i.code.code(),
                i.expression,
                i.diagnostics
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_package_example_validates_in_strict_mode() {
    let examples = examples();
    assert!(examples.len() > 5000, "{} examples", examples.len());
    let expected = expected_failures();

    let start = Instant::now();
    let outcomes: Vec<(&str, OperationOutcome)> = examples
        .iter()
        .map(|(name, value)| (name.as_str(), validate(value, Mode::Strict)))
        .collect();
    let elapsed = start.elapsed();

    let failing: BTreeMap<&str, &OperationOutcome> = outcomes
        .iter()
        .filter(|(_, o)| has_errors(o))
        .map(|(n, o)| (*n, o))
        .collect();

    if std::env::var_os("EMBER_VALIDATION_BLESS").is_some() {
        // Keep the header comments of the file.
        let mut text: String = std::fs::read_to_string(expected_path())
            .unwrap_or_default()
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        for name in failing.keys() {
            let reason = expected.get(*name).map(String::as_str).unwrap_or("TODO");
            text.push_str(&format!("{name}  # {reason}\n"));
        }
        std::fs::write(expected_path(), text).expect("write expectations");
    }

    let mut problems = Vec::new();
    for (name, outcome) in &failing {
        if !expected.contains_key(*name) {
            problems.push(format!("{name} fails unexpectedly:\n{}", describe(outcome)));
        }
    }
    for name in expected.keys() {
        if !failing.contains_key(name.as_str()) {
            let known = examples.iter().any(|(n, _)| n == name);
            problems.push(if known {
                format!("{name} is listed in {EXPECTED} but validates clean: remove it")
            } else {
                format!("{name} is listed in {EXPECTED} but is not in the package")
            });
        }
    }
    for (name, outcome) in &failing {
        if expected.contains_key(*name) {
            println!("expected failure {name}:\n{}", describe(outcome));
        }
    }

    let warnings = outcomes
        .iter()
        .filter(|(_, o)| !o.issues.is_empty())
        .count();
    let total = examples.len();
    let clean = total - failing.len();
    println!(
        "validated {total} examples: {clean} clean, {} expected failures, {} with issues; \
         {:.0} resources/s ({:?} in this build profile)",
        failing.len(),
        warnings,
        total as f64 / elapsed.as_secs_f64(),
        elapsed
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The issues of `resource` as `(severity, code, expression)`.
fn issues(resource: &Value, mode: Mode) -> Vec<(Severity, IssueType, Vec<String>)> {
    validate(resource, mode)
        .issues
        .into_iter()
        .map(|i| {
            assert!(!i.diagnostics.is_empty());
            (i.severity, i.code, i.expression)
        })
        .collect()
}

/// Asserts that strict validation reports exactly one issue: an error of `code` at `path`.
#[track_caller]
fn assert_error(resource: Value, code: IssueType, path: &str) {
    let outcome = validate(&resource, Mode::Strict);
    assert_eq!(
        issues(&resource, Mode::Strict),
        [(Severity::Error, code, vec![path.to_owned()])],
        "{resource}\n{}",
        describe(&outcome)
    );
    assert!(has_errors(&outcome));
}

#[track_caller]
fn assert_clean(resource: Value) {
    let outcome = validate(&resource, Mode::Strict);
    assert!(
        outcome.issues.is_empty(),
        "{resource}\n{}",
        describe(&outcome)
    );
}

fn observation(extra: Value) -> Value {
    let mut obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    for (k, v) in extra.as_object().unwrap() {
        obs[k] = v.clone();
    }
    obs
}

#[test]
fn valid_resources_are_clean() {
    assert_clean(json!({
        "resourceType": "Patient",
        "id": "a-1.B",
        "meta": {"lastUpdated": "2024-02-28T10:00:00.123+01:00"},
        "fhir_comments": ["ignored"],
        "active": true,
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
            "valueDateTime": "1974-12-25T14:35:45-05:00"
        }]},
        "deceasedBoolean": false,
        "multipleBirthInteger": 2,
        "photo": [{"contentType": "image/png", "data": "aGVsbG8=", "size": 5}],
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
        "managingOrganization": {"reference": "#org"}
    }));
    assert_clean(observation(json!({
        "valueQuantity": {"value": 1.5e2, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
        "referenceRange": [{"low": {"value": 1}}]
    })));
    // A null in a primitive array, with its extension at the same index.
    assert_clean(json!({"resourceType": "Patient", "name": [{
        "given": ["Peter", null],
        "_given": [null, {"extension": [{"url": "http://x", "valueCode": "masked"}]}]
    }]}));
    // Text-only and in-value-set concepts under a required binding.
    assert_clean(
        json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"},
        "clinicalStatus": {"text": "better"},
        "verificationStatus": {"coding": [
            {"system": "http://snomed.info/sct", "code": "410605003"},
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
        ]}}),
    );
}

#[test]
fn rule_1_unknown_elements() {
    assert_error(
        json!({"resourceType": "Patient", "foo": 1}),
        IssueType::Structure,
        "Patient.foo",
    );
    // A choice name with a type the element does not allow, or without a type.
    assert_error(
        observation(json!({"valueAge": {"value": 1}})),
        IssueType::Structure,
        "Observation.valueAge",
    );
    assert_error(
        observation(json!({"value": 1})),
        IssueType::Structure,
        "Observation.value",
    );
    // Deep, in a backbone element and a data type.
    assert_error(
        json!({"resourceType": "Patient", "contact": [{"name": {"family": "x", "nick": "y"}}]}),
        IssueType::Structure,
        "Patient.contact[0].name.nick",
    );
    // resourceType is only known at resource roots; `_` only for primitives.
    assert_error(
        json!({"resourceType": "Patient", "maritalStatus": {"resourceType": "x", "text": "y"}}),
        IssueType::Structure,
        "Patient.maritalStatus.resourceType",
    );
    assert_error(
        json!({"resourceType": "Patient", "_maritalStatus": {"id": "x"}}),
        IssueType::Structure,
        "Patient._maritalStatus",
    );
    // Primitive extensions have id and extension, not value.
    assert_error(
        json!({"resourceType": "Patient", "_birthDate": {"value": "1970"}}),
        IssueType::Structure,
        "Patient.birthDate.value",
    );
    assert_error(
        json!({"resourceType": "Patient", "_foo": {"id": "x"}}),
        IssueType::Structure,
        "Patient._foo",
    );
    // Lenient: a warning, which does not reject the resource.
    let patient = json!({"resourceType": "Patient", "foo": 1});
    assert_eq!(
        issues(&patient, Mode::Lenient),
        [(
            Severity::Warning,
            IssueType::Structure,
            vec!["Patient.foo".to_owned()]
        )]
    );
    assert!(!has_errors(&validate(&patient, Mode::Lenient)));
}

#[test]
fn rule_2_json_types_and_formats() {
    let patient = |k: &str, v: Value| {
        let mut p = json!({"resourceType": "Patient"});
        p[k] = v;
        p
    };
    assert_error(
        patient("active", json!("true")),
        IssueType::Structure,
        "Patient.active",
    );
    assert_error(
        patient("active", json!([true])),
        IssueType::Structure,
        "Patient.active",
    );
    assert_error(
        patient("name", json!({"family": "x"})),
        IssueType::Structure,
        "Patient.name",
    );
    assert_error(
        patient("birthDate", json!("1974-13-01")),
        IssueType::Value,
        "Patient.birthDate",
    );
    assert_error(
        patient("birthDate", json!("1974-02-29")),
        IssueType::Value,
        "Patient.birthDate",
    );
    assert_error(
        patient("birthDate", json!(1974)),
        IssueType::Structure,
        "Patient.birthDate",
    );
    assert_error(patient("id", json!("a b")), IssueType::Value, "Patient.id");
    assert_error(
        patient("id", json!("x".repeat(65))),
        IssueType::Value,
        "Patient.id",
    );
    assert_error(
        patient("meta", json!({"lastUpdated": "2024-02-28T10:00:00"})),
        IssueType::Value,
        "Patient.meta.lastUpdated",
    );
    assert_error(
        patient("meta", json!({"lastUpdated": "2024-02-28"})),
        IssueType::Value,
        "Patient.meta.lastUpdated",
    );
    assert_error(
        patient("deceasedDateTime", json!("2024-02-28T10:00")),
        IssueType::Value,
        "Patient.deceasedDateTime",
    );
    assert_error(
        patient("implicitRules", json!("http://x/ y")),
        IssueType::Value,
        "Patient.implicitRules",
    );
    assert_error(
        patient("language", json!(" en")),
        IssueType::Value,
        "Patient.language",
    );
    assert_error(
        patient("language", json!("en  US")),
        IssueType::Value,
        "Patient.language",
    );
    assert_error(
        patient(
            "extension",
            json!([{"url": "http://x", "valueOid": "1.2.3"}]),
        ),
        IssueType::Value,
        "Patient.extension[0].valueOid",
    );
    assert_error(
        patient(
            "extension",
            json!([{"url": "http://x", "valueUuid": "urn:uuid:ABC"}]),
        ),
        IssueType::Value,
        "Patient.extension[0].valueUuid",
    );
    assert_error(
        patient(
            "extension",
            json!([{"url": "http://x", "valueTime": "10:00"}]),
        ),
        IssueType::Value,
        "Patient.extension[0].valueTime",
    );
    assert_error(
        patient("extension", json!([{"url": "a b", "valueString": "x"}])),
        IssueType::Value,
        "Patient.extension[0].url",
    );
    assert_error(
        patient("photo", json!([{"data": "not base64!"}])),
        IssueType::Value,
        "Patient.photo[0].data",
    );
    // Numbers: integers in range, decimals as JSON numbers.
    assert_error(
        patient("multipleBirthInteger", json!(1.5)),
        IssueType::Value,
        "Patient.multipleBirthInteger",
    );
    assert_error(
        patient("multipleBirthInteger", json!(2_147_483_648_i64)),
        IssueType::Value,
        "Patient.multipleBirthInteger",
    );
    assert_error(
        patient("multipleBirthInteger", json!("2")),
        IssueType::Structure,
        "Patient.multipleBirthInteger",
    );
    assert_error(
        patient("photo", json!([{"size": -1}])),
        IssueType::Value,
        "Patient.photo[0].size",
    );
    assert_error(
        observation(
            json!({"valueSampledData": {"origin": {"value": 0}, "period": 1, "dimensions": 0}}),
        ),
        IssueType::Value,
        "Observation.valueSampledData.dimensions",
    );
    assert_error(
        observation(json!({"valueQuantity": {"value": "1.0"}})),
        IssueType::Structure,
        "Observation.valueQuantity.value",
    );
    // Complex values are objects.
    assert_error(
        patient("maritalStatus", json!("M")),
        IssueType::Structure,
        "Patient.maritalStatus",
    );
    // Empty strings, objects and arrays.
    assert_error(
        patient("name", json!([{"family": ""}])),
        IssueType::Value,
        "Patient.name[0].family",
    );
    assert_error(
        patient("maritalStatus", json!({})),
        IssueType::Structure,
        "Patient.maritalStatus",
    );
    assert_error(
        patient("name", json!([])),
        IssueType::Structure,
        "Patient.name",
    );
    // null: never a single value; in arrays only with an extension at the same index.
    assert_error(
        patient("gender", json!(null)),
        IssueType::Structure,
        "Patient.gender",
    );
    assert_error(
        patient("name", json!([{"given": ["a", null]}])),
        IssueType::Structure,
        "Patient.name[0].given[1]",
    );
    assert_error(
        patient("name", json!([null])),
        IssueType::Structure,
        "Patient.name[0]",
    );
    assert_error(
        patient("name", json!([{"given": ["a", "b"], "_given": [null]}])),
        IssueType::Structure,
        "Patient.name[0].given",
    );
    assert_error(
        patient(
            "name",
            json!([{"given": ["a"], "_given": [null, {"id": "x"}]}]),
        ),
        IssueType::Structure,
        "Patient.name[0].given",
    );
    assert_error(
        patient(
            "name",
            json!([{"given": ["a", null], "_given": [{"id": "x"}, null]}]),
        ),
        IssueType::Structure,
        "Patient.name[0].given[1]",
    );
    // `_name` shapes.
    assert_error(
        patient("_birthDate", json!("x")),
        IssueType::Structure,
        "Patient.birthDate",
    );
    assert_error(
        patient("_birthDate", json!({"extension": [{"valueString": "x"}]})),
        IssueType::Required,
        "Patient.birthDate.extension[0].url",
    );
}

#[test]
fn rule_3_cardinality() {
    assert_error(
        json!({"resourceType": "Observation", "code": {"text": "x"}}),
        IssueType::Required,
        "Observation.status",
    );
    assert_eq!(
        issues(&json!({"resourceType": "Observation"}), Mode::Strict),
        [
            (
                Severity::Error,
                IssueType::Required,
                vec!["Observation.status".to_owned()]
            ),
            (
                Severity::Error,
                IssueType::Required,
                vec!["Observation.code".to_owned()]
            ),
        ]
    );
    // In a backbone element and in a data type.
    assert_error(
        json!({"resourceType": "Patient", "link": [{"type": "seealso"}]}),
        IssueType::Required,
        "Patient.link[0].other",
    );
    assert_error(
        json!({"resourceType": "Patient", "extension": [{"valueString": "x"}]}),
        IssueType::Required,
        "Patient.extension[0].url",
    );
    // A primitive given only by its extensions is present.
    assert_clean(json!({"resourceType": "Observation", "code": {"text": "x"},
        "_status": {"extension": [{"url": "http://x", "valueString": "y"}]}}));
    // max 0: xhtml has no extensions. (SimpleQuantity's comparator is max 0 too, but the
    // definitions type Observation.referenceRange.low as Quantity, without the profile.)
    assert_error(
        json!({"resourceType": "Patient", "text": {
            "status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>",
            "_div": {"extension": [{"url": "http://x", "valueString": "y"}]}
        }}),
        IssueType::Structure,
        "Patient.text.div.extension",
    );
    // Narrative.div is required.
    assert_error(
        json!({"resourceType": "Patient", "text": {"status": "generated"}}),
        IssueType::Required,
        "Patient.text.div",
    );
}

#[test]
fn rule_4_one_value_per_choice() {
    assert_error(
        observation(json!({"valueQuantity": {"value": 1}, "valueString": "x"})),
        IssueType::Structure,
        "Observation.valueString",
    );
    // A value and the extensions of another type.
    assert_error(
        observation(json!({"valueString": "x", "_valueBoolean": {"id": "b"}})),
        IssueType::Structure,
        "Observation.valueBoolean",
    );
    // A value with its own extensions is one value.
    assert_clean(observation(
        json!({"valueString": "x", "_valueString": {"id": "b"}}),
    ));
}

#[test]
fn rule_5_required_bindings() {
    let patient = json!({"resourceType": "Patient", "gender": "yes"});
    assert_error(patient.clone(), IssueType::Value, "Patient.gender");
    assert_eq!(
        issues(&patient, Mode::Lenient),
        [(
            Severity::Warning,
            IssueType::Value,
            vec!["Patient.gender".to_owned()]
        )]
    );
    // Codes are case-sensitive.
    assert_error(
        json!({"resourceType": "Patient", "gender": "Male"}),
        IssueType::Value,
        "Patient.gender",
    );
    // Bound codes in data types (Quantity.comparator, ContactPoint.system).
    assert_error(
        observation(json!({"valueQuantity": {"value": 1, "comparator": "=="}})),
        IssueType::Value,
        "Observation.valueQuantity.comparator",
    );
    assert_error(
        json!({"resourceType": "Patient", "telecom": [{"system": "beeper", "value": "1"}, {"system": "fax", "value": "2"}]}),
        IssueType::Value,
        "Patient.telecom[0].system",
    );
    // CodeableConcept: a wrong code in the value set's system, or no coding from it.
    let condition = |status: Value| json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"}, "clinicalStatus": status});
    assert_error(
        condition(
            json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "nope"}]}),
        ),
        IssueType::Value,
        "Condition.clinicalStatus.coding[0]",
    );
    assert_error(
        condition(json!({"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]})),
        IssueType::Value,
        "Condition.clinicalStatus",
    );
    assert_clean(condition(json!({"coding": [
        {"system": "http://snomed.info/sct", "code": "55561003"},
        {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
    ]})));
    // Value sets that do not expand from the package (mime types) are not checked.
    assert_clean(json!({"resourceType": "Patient", "photo": [{"contentType": "made/up"}]}));
}

#[test]
fn nested_resources_are_validated_as_their_type() {
    assert_error(
        json!({"resourceType": "Patient", "contained": [
            {"resourceType": "Organization", "id": "ok"},
            {"resourceType": "Observation", "id": "o", "code": {"text": "x"}}
        ]}),
        IssueType::Required,
        "Patient.contained[1].status",
    );
    assert_error(
        json!({"resourceType": "Patient", "contained": [{"resourceType": "Patient", "birthDate": "1974-13-01"}]}),
        IssueType::Value,
        "Patient.contained[0].birthDate",
    );
    assert_error(
        json!({"resourceType": "Patient", "contained": [{"id": "x"}]}),
        IssueType::Required,
        "Patient.contained[0]",
    );
    assert_error(
        json!({"resourceType": "Patient", "contained": [{"resourceType": "Nope"}]}),
        IssueType::Structure,
        "Patient.contained[0].resourceType",
    );
    assert_error(
        json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient"}},
            {"resource": {"resourceType": "Patient", "name": [{"given": [""]}]}}
        ]}),
        IssueType::Value,
        "Bundle.entry[1].resource.name[0].given[0]",
    );
    assert_error(
        json!({"resourceType": "Parameters", "parameter": [{"name": "p", "part": [
            {"name": "q", "resource": {"resourceType": "Patient", "active": 1}}
        ]}]}),
        IssueType::Structure,
        "Parameters.parameter[0].part[0].resource.active",
    );
}

#[test]
fn not_resources() {
    assert_eq!(
        issues(&json!([]), Mode::Strict),
        [(Severity::Error, IssueType::Structure, vec![])]
    );
    assert_eq!(
        issues(&json!({"id": "x"}), Mode::Strict),
        [(Severity::Error, IssueType::Required, vec![])]
    );
    assert_eq!(
        issues(&json!({"resourceType": "HumanName"}), Mode::Strict),
        [(
            Severity::Error,
            IssueType::Structure,
            vec!["resourceType".to_owned()]
        )]
    );
}

#[test]
fn lenient_keeps_shape_errors_and_off_checks_nothing() {
    let bad = json!({"resourceType": "Patient", "foo": 1, "gender": "yes", "active": "true"});
    assert_eq!(
        issues(&bad, Mode::Lenient),
        [
            (
                Severity::Warning,
                IssueType::Structure,
                vec!["Patient.foo".to_owned()]
            ),
            (
                Severity::Warning,
                IssueType::Value,
                vec!["Patient.gender".to_owned()]
            ),
            (
                Severity::Error,
                IssueType::Structure,
                vec!["Patient.active".to_owned()]
            ),
        ]
    );
    assert!(has_errors(&validate(&bad, Mode::Lenient)));
    assert_eq!(validate(&bad, Mode::Off), OperationOutcome::default());
    assert_eq!(
        validate(&json!("garbage"), Mode::Off),
        OperationOutcome::default()
    );
    assert_eq!("off".parse::<Mode>(), Ok(Mode::Off));
    assert_eq!("strict".parse::<Mode>(), Ok(Mode::Strict));
    assert_eq!("lenient".parse::<Mode>(), Ok(Mode::Lenient));
    assert!("loose".parse::<Mode>().is_err());
}

#[test]
fn outcome_renders_locations() {
    let outcome = validate(&json!({"resourceType": "Patient", "foo": 1}), Mode::Strict);
    let rendered = outcome.to_json();
    assert_eq!(rendered["issue"][0]["severity"], "error");
    assert_eq!(rendered["issue"][0]["code"], "structure");
    assert_eq!(rendered["issue"][0]["expression"], json!(["Patient.foo"]));
    assert!(
        rendered["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("unknown element")
    );
}

/// Every object of the examples is walked: an unknown member added anywhere is reported,
/// at its location, as the only new issue. (A sample of the objects, to stay quick.)
#[test]
fn unknown_members_are_found_anywhere_in_the_examples() {
    fn objects(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
        match v {
            Value::Object(members) => {
                out.push(at.clone());
                for (k, child) in members {
                    at.push(json!(k));
                    objects(child, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    at.push(json!(i));
                    objects(child, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    let mut tried = 0;
    for (name, example) in examples().iter().step_by(5) {
        let before = validate(example, Mode::Strict).issues.len();
        let mut found = Vec::new();
        objects(example, &mut Vec::new(), &mut found);
        if found.len() > 5000 {
            continue; // cloning the big bundles and code systems is slow in debug builds
        }
        for at in found.iter().step_by(11).take(10) {
            let mut mutated = example.clone();
            let mut target = &mut mutated;
            for step in at {
                target = match step {
                    Value::String(k) => &mut target[k.as_str()],
                    n => &mut target[n.as_u64().unwrap() as usize],
                };
            }
            target["zzUnknown"] = json!(1);
            let outcome = validate(&mutated, Mode::Strict);
            let reported = outcome.issues.iter().any(|i| {
                i.code == IssueType::Structure
                    && i.expression.len() == 1
                    && i.expression[0].ends_with("zzUnknown")
            });
            assert!(
                reported && outcome.issues.len() == before + 1,
                "{name} at {at:?}:\n{}",
                describe(&outcome)
            );
            tried += 1;
        }
    }
    println!("{tried} unknown members planted and found");
}

/// Validation runs on every write, so no input may make it panic: every top-level and
/// first nested element of a spread of package examples is replaced with every JSON
/// shape, and each variant is validated strictly. Also FHIRPath Patch on the same
/// variants with a malformed and a well-formed patch.
#[test]
fn no_input_shape_makes_validation_or_patch_panic() {
    let shapes = [
        json!(null),
        json!(true),
        json!(7),
        json!(-1.5),
        json!(""),
        json!("x y"),
        json!([]),
        json!([null]),
        json!([1, "a", {}]),
        json!({}),
        json!({"extension": [{"url": 5}]}),
        json!({"resourceType": "Patient"}),
    ];
    let patches = [
        json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Resource.id"},
            {"name": "value", "valueId": "x"}]}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
            {"name": "type", "valueCode": "delete"}, {"name": "path", "valueString": "(("}]}]}),
        json!({"resourceType": "Parameters", "parameter": [{"name": "operation"}]}),
    ];
    let mut variants = 0;
    for (_, example) in examples().into_iter().step_by(120) {
        let Some(obj) = example.as_object() else {
            continue;
        };
        for key in obj.keys().filter(|k| *k != "resourceType") {
            let nested: Vec<Option<String>> = std::iter::once(None)
                .chain(
                    obj[key]
                        .as_object()
                        .into_iter()
                        .flat_map(|o| o.keys().map(|k| Some(k.clone()))),
                )
                .collect();
            for inner in &nested {
                for shape in &shapes {
                    let mut variant = example.clone();
                    match inner {
                        None => variant[key] = shape.clone(),
                        Some(k) => variant[key][k] = shape.clone(),
                    }
                    let _ = validate(&variant, Mode::Strict);
                    let _ = validate(&variant, Mode::Lenient);
                    for patch in &patches {
                        let mut target = variant.clone();
                        let _ =
                            ember_fhir::fhirpath_patch::apply_fhirpath_patch(&mut target, patch);
                    }
                    variants += 1;
                }
            }
        }
    }
    println!("validated and patched {variants} variants without a panic");
    assert!(variants > 5000, "{variants}");
}
