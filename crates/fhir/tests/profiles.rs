//! Profile validation with the R4 package's own profiles (the vital signs) and their
//! examples: the examples that claim a profile conform to it, and broken variants fail
//! at the right location. Required bindings are checked here against the package's
//! value sets that list their concepts.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use ember_fhir::profile::{self, Profile, Report};
use ember_fhir::{IssueType, Severity};
use serde_json::{Value, json};

const VITAL: &[&str] = &[
    "vitalsigns",
    "bp",
    "bodyweight",
    "bodyheight",
    "bodytemp",
    "heartrate",
    "oxygensat",
    "resprate",
    "headcircum",
    "bmi",
    "vitalspanel",
];

struct Package {
    profiles: HashMap<String, Arc<Profile>>,
    /// `(url, codes)` of value sets whose compose lists concepts.
    value_sets: HashMap<String, Vec<(String, String)>>,
    examples: HashMap<String, Value>,
}

fn package() -> Package {
    let files = common::package_files(|n| {
        VITAL
            .iter()
            .any(|v| n == format!("StructureDefinition-{v}.json"))
            || (n.starts_with("ValueSet-") && n.ends_with(".json"))
            || n.starts_with("Observation-")
    });
    let mut p = Package {
        profiles: HashMap::new(),
        value_sets: HashMap::new(),
        examples: HashMap::new(),
    };
    for (name, v) in files {
        match v["resourceType"].as_str() {
            Some("StructureDefinition") => {
                let url = v["url"].as_str().unwrap().to_owned();
                p.profiles
                    .insert(url, Arc::new(Profile::compile(&v).expect("compile")));
            }
            Some("ValueSet") => {
                let mut codes = Vec::new();
                for inc in v["compose"]["include"].as_array().into_iter().flatten() {
                    for c in inc["concept"].as_array().into_iter().flatten() {
                        codes.push((
                            inc["system"].as_str().unwrap_or_default().to_owned(),
                            c["code"].as_str().unwrap_or_default().to_owned(),
                        ));
                    }
                }
                if !codes.is_empty() {
                    p.value_sets
                        .insert(v["url"].as_str().unwrap().to_owned(), codes);
                }
            }
            _ => {
                p.examples.insert(name, v);
            }
        }
    }
    assert_eq!(p.profiles.len(), VITAL.len());
    p
}

fn sd(p: &Package, name: &str) -> Arc<Profile> {
    p.profiles[&format!("http://hl7.org/fhir/StructureDefinition/{name}")].clone()
}

/// Validates and resolves the bindings to value sets the package lists concepts of.
fn check(p: &Package, resource: &Value, profile: &Profile) -> Vec<ember_fhir::outcome::Issue> {
    let Report {
        mut outcome,
        bindings,
    } = profile::validate(resource, profile, &p.profiles);
    for b in &bindings {
        let url = b.value_set.split('|').next().unwrap();
        if let Some(codes) = p.value_sets.get(url) {
            let found = b.codes.iter().any(|(s, c)| {
                codes
                    .iter()
                    .any(|(vs, vc)| vc == c && s.as_ref().is_none_or(|s| s == vs))
            });
            outcome.issues.extend(profile::binding_issue(b, Ok(found)));
        }
    }
    outcome.issues
}

fn errors(issues: &[ember_fhir::outcome::Issue]) -> Vec<(String, String)> {
    issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| (i.expression.join(","), i.diagnostics.clone()))
        .collect()
}

#[test]
fn examples_conform_to_the_profiles_they_claim() {
    let p = package();
    let mut checked = 0;
    for (name, ex) in &p.examples {
        for url in ex["meta"]["profile"].as_array().into_iter().flatten() {
            let Some(profile) = p.profiles.get(url.as_str().unwrap()) else {
                continue;
            };
            let errs = errors(&check(&p, ex, profile));
            assert!(errs.is_empty(), "{name} against {url}: {errs:#?}");
            checked += 1;
        }
    }
    assert_eq!(checked, 12);
}

#[test]
fn examples_conform_to_their_specific_vital_sign_profiles() {
    let p = package();
    for (example, name) in [
        ("Observation-blood-pressure.json", "bp"),
        ("Observation-heart-rate.json", "heartrate"),
        ("Observation-satO2.json", "oxygensat"),
        ("Observation-respiratory-rate.json", "resprate"),
        ("Observation-body-temperature.json", "bodytemp"),
        ("Observation-body-height.json", "bodyheight"),
        ("Observation-head-circumference.json", "headcircum"),
        ("Observation-bmi.json", "bmi"),
    ] {
        let errs = errors(&check(&p, &p.examples[example], &sd(&p, name)));
        assert!(errs.is_empty(), "{example} against {name}: {errs:#?}");
    }
}

/// The errors of `resource` against the profile `name`: one at `loc` says `needle`.
#[track_caller]
fn fails_at(p: &Package, resource: &Value, name: &str, loc: &str, needle: &str) {
    let errs = errors(&check(p, resource, &sd(p, name)));
    assert!(
        errs.iter().any(|(l, m)| l == loc && m.contains(needle)),
        "{needle} at {loc}: {errs:#?}"
    );
}

#[test]
fn a_blood_pressure_without_a_systolic_component_fails() {
    let p = package();
    let mut bp = p.examples["Observation-blood-pressure.json"].clone();
    bp["component"].as_array_mut().unwrap().remove(0);
    fails_at(&p, &bp, "bp", "Observation.component", "SystolicBP");
}

#[test]
fn a_missing_required_element_fails() {
    let p = package();
    let mut hr = p.examples["Observation-heart-rate.json"].clone();
    hr.as_object_mut().unwrap().remove("subject");
    fails_at(&p, &hr, "heartrate", "Observation.subject", "at least 1");
}

#[test]
fn a_wrong_fixed_code_fails() {
    let p = package();
    let mut hr = p.examples["Observation-heart-rate.json"].clone();
    hr["valueQuantity"]["code"] = json!("/h");
    fails_at(
        &p,
        &hr,
        "heartrate",
        "Observation.valueQuantity.code",
        "/min",
    );
    // A wrong LOINC code leaves the required coding slice empty.
    let mut hr = p.examples["Observation-heart-rate.json"].clone();
    hr["code"]["coding"][0]["code"] = json!("8868-4");
    fails_at(
        &p,
        &hr,
        "heartrate",
        "Observation.code.coding",
        "HeartRateCode",
    );
}

#[test]
fn a_value_outside_a_required_binding_fails() {
    let p = package();
    let mut bp = p.examples["Observation-blood-pressure.json"].clone();
    bp["component"][1]["valueQuantity"]["code"] = json!("mmHg");
    let issues = check(&p, &bp, &sd(&p, "vitalsigns"));
    let binding: Vec<_> = issues
        .iter()
        .filter(|i| i.code == IssueType::CodeInvalid)
        .collect();
    assert_eq!(binding.len(), 1, "{issues:#?}");
    assert_eq!(binding[0].severity, Severity::Error);
    assert_eq!(
        binding[0].expression,
        vec!["Observation.component[1].valueQuantity".to_owned()]
    );
    assert!(binding[0].diagnostics.contains("ucum-vitals-common"));
}

#[test]
fn a_violated_invariant_fails() {
    let p = package();
    let mut hr = p.examples["Observation-heart-rate.json"].clone();
    hr.as_object_mut().unwrap().remove("valueQuantity");
    fails_at(&p, &hr, "vitalsigns", "Observation", "vs-2");
}

#[test]
fn a_wrong_type_fails() {
    let p = package();
    let mut hr = p.examples["Observation-heart-rate.json"].clone();
    hr.as_object_mut().unwrap().remove("valueQuantity");
    hr["valueString"] = json!("fast");
    fails_at(
        &p,
        &hr,
        "heartrate",
        "Observation.valueString",
        "string is not allowed",
    );
}

#[test]
fn a_blood_pressure_with_a_value_fails_the_closed_type_slicing() {
    let p = package();
    let mut bp = p.examples["Observation-blood-pressure.json"].clone();
    bp["valueQuantity"] = json!({"value": 1, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"});
    let errs = errors(&check(&p, &bp, &sd(&p, "bp")));
    assert!(
        errs.iter()
            .any(|(l, m)| l == "Observation.value" && m.contains("at most 0")),
        "{errs:#?}"
    );
}

#[test]
fn the_vital_sign_invariants_are_all_evaluated() {
    let p = package();
    let issues = check(
        &p,
        &p.examples["Observation-blood-pressure.json"],
        &sd(&p, "bp"),
    );
    let info: Vec<&str> = issues
        .iter()
        .filter(|i| i.severity == Severity::Information)
        .map(|i| i.diagnostics.as_str())
        .collect();
    assert!(info.iter().all(|d| !d.contains("vs-")), "{info:?}");
}
