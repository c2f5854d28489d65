//! `$submit-measurement`: a patient's transaction Bundle of measurements
//! (Observations), questionnaire answers (QuestionnaireResponses), Media and
//! Provenances, checked, completed with the thresholds in force, and stored at once
//! with the triage jobs (see [`crate::rules::Submitted`]).
//!
//! Every problem is reported at once, each with its location, in a 422
//! `OperationOutcome`, and nothing is stored.

use std::collections::HashMap;

use ember_fhir::outcome::Issue;
use ember_fhir::{IssueType, OperationOutcome, Severity};
use ember_repo::{Prefer, Repo, RepoError};
use serde_json::{Value, json};

use crate::SUBMIT;
use crate::codes::{THRESHOLD_URL, ZONE_TYPE_SYSTEMS};
use crate::rules::{TRIAGED, has_submitted_tag, submitted_tag};
use crate::triage::read_reference;
use crate::zones::array;

/// The resource types a submission may hold.
pub const ALLOWED: [&str; 4] = [
    "Observation",
    "QuestionnaireResponse",
    "Media",
    "Provenance",
];

/// Checks and stores a submission (`Parameters` with a `measurement` transaction
/// Bundle); answers with a `Parameters` whose `bundle` is the transaction-response.
pub async fn submit(
    repo: &Repo,
    parameters: Value,
    base: &str,
    prefer: Prefer,
) -> Result<Value, RepoError> {
    let (index, mut bundle) = measurement(parameters)?;
    let at = format!("Parameters.parameter[{index}].resource");
    let mut problems = Problems::default();
    let mut requests: HashMap<String, Option<Value>> = HashMap::new();
    let entries = bundle.get_mut("entry").and_then(Value::as_array_mut);
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        let loc = format!("{at}.entry[{i}]");
        let method = entry["request"]["method"].as_str().unwrap_or_default();
        if method != "POST" {
            problems.add(
                IssueType::NotSupported,
                format!("{loc}.request.method"),
                "a submission only creates: every entry is a POST",
            );
        }
        let Some(resource) = entry.get_mut("resource") else {
            problems.add(
                IssueType::Required,
                format!("{loc}.resource"),
                "an entry without a resource",
            );
            continue;
        };
        let loc = format!("{loc}.resource");
        let res_type = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !ALLOWED.contains(&res_type.as_str()) {
            problems.add(
                IssueType::NotSupported,
                format!("{loc}.resourceType"),
                format!(
                    "a submission holds {} only, not {res_type:?}",
                    ALLOWED.join(", ")
                ),
            );
            continue;
        }
        check_codes(resource, &loc, &mut problems);
        if !TRIAGED.contains(&res_type.as_str()) {
            continue;
        }
        let patient = resource["subject"]["reference"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !patient.starts_with("Patient/") {
            problems.add(
                IssueType::Required,
                format!("{loc}.subject"),
                "the subject must be a Patient (`Patient/id`)",
            );
        }
        let service_request =
            service_request(repo, resource, &loc, &patient, &mut requests, &mut problems).await?;
        if res_type == "Observation" {
            check_observation(resource, &loc, &mut problems);
            // The zones in force replace any the client sent; other ranges stay.
            let mut ranges: Vec<Value> = array(resource, "referenceRange")
                .iter()
                .filter(|r| !is_zone(r))
                .cloned()
                .collect();
            ranges.extend(service_request.as_ref().map_or_else(Vec::new, thresholds));
            match resource.as_object_mut() {
                Some(o) if ranges.is_empty() => {
                    o.remove("referenceRange");
                }
                Some(o) => {
                    o.insert("referenceRange".into(), Value::Array(ranges));
                }
                None => {}
            }
        } else if resource["questionnaire"].as_str().is_none_or(str::is_empty) {
            problems.add(
                IssueType::Required,
                format!("{loc}.questionnaire"),
                "the answers must name their Questionnaire",
            );
        }
        tag(resource);
    }
    if !problems.0.issues.is_empty() {
        return Err(RepoError::Invalidated(problems.0));
    }
    let response = repo
        .for_operation(SUBMIT)
        .process_bundle(bundle, base, prefer)
        .await?;
    Ok(
        json!({"resourceType": "Parameters", "parameter": [{"name": "bundle", "resource": response}]}),
    )
}

/// The `measurement` parameter's Bundle and its index; a 400 when there is none or it
/// is not a transaction.
fn measurement(mut parameters: Value) -> Result<(usize, Value), RepoError> {
    if parameters["resourceType"] != "Parameters" {
        return Err(RepoError::Invalid(
            "$submit-measurement takes a Parameters resource".into(),
        ));
    }
    let params = parameters
        .get_mut("parameter")
        .and_then(Value::as_array_mut);
    let found = params
        .into_iter()
        .flatten()
        .enumerate()
        .find(|(_, p)| p["name"] == "measurement");
    let Some((index, param)) = found else {
        return Err(RepoError::Invalid(
            "the Parameters have no `measurement` parameter".into(),
        ));
    };
    let bundle = param
        .get_mut("resource")
        .map(Value::take)
        .unwrap_or_default();
    if bundle["resourceType"] != "Bundle" || bundle["type"] != "transaction" {
        return Err(RepoError::Invalid(
            "the `measurement` parameter must hold a transaction Bundle".into(),
        ));
    }
    Ok((index, bundle))
}

/// The ServiceRequest a measurement or answer is based on: it must exist, be active
/// and be for the same patient. Looked up once per submission.
async fn service_request(
    repo: &Repo,
    resource: &Value,
    loc: &str,
    patient: &str,
    cache: &mut HashMap<String, Option<Value>>,
    problems: &mut Problems,
) -> Result<Option<Value>, RepoError> {
    let reference = array(resource, "basedOn")
        .iter()
        .enumerate()
        .find_map(|(i, r)| {
            r["reference"]
                .as_str()
                .filter(|r| r.starts_with("ServiceRequest/"))
                .map(|r| (i, r))
        });
    let Some((i, reference)) = reference else {
        problems.add(
            IssueType::Required,
            format!("{loc}.basedOn"),
            "basedOn must name the ServiceRequest the submission answers",
        );
        return Ok(None);
    };
    let sr = match cache.get(reference) {
        Some(found) => found.clone(),
        None => {
            let found = read_reference(repo, reference).await?;
            cache.insert(reference.to_owned(), found.clone());
            found
        }
    };
    let loc = format!("{loc}.basedOn[{i}]");
    let Some(sr) = sr else {
        problems.add(
            IssueType::NotFound,
            loc,
            format!("{reference} is not known"),
        );
        return Ok(None);
    };
    if sr["status"] != "active" {
        problems.add(
            IssueType::BusinessRule,
            loc,
            format!(
                "{reference} is not active (status {})",
                sr["status"].as_str().unwrap_or("missing")
            ),
        );
        return Ok(None);
    }
    if sr["subject"]["reference"].as_str() != Some(patient) {
        problems.add(
            IssueType::BusinessRule,
            loc,
            format!("{reference} is for another patient than the subject"),
        );
        return Ok(None);
    }
    Ok(Some(sr))
}

/// What a measurement must carry besides its ServiceRequest: a time, a performer, and a
/// value (Quantity, CodeableConcept or components) or a `dataAbsentReason`.
fn check_observation(obs: &Value, loc: &str, problems: &mut Problems) {
    let has = |prefix: &str| {
        obs.as_object()
            .is_some_and(|o| o.keys().any(|k| k.starts_with(prefix)))
    };
    if !has("effective") {
        problems.add(
            IssueType::Required,
            format!("{loc}.effective"),
            "a measurement needs its time (effective[x])",
        );
    }
    if array(obs, "performer").is_empty() {
        problems.add(
            IssueType::Required,
            format!("{loc}.performer"),
            "a measurement needs its performer",
        );
    }
    let component_values = array(obs, "component")
        .iter()
        .any(|c| c.get("valueQuantity").is_some() || c.get("valueCodeableConcept").is_some());
    let valued = obs.get("valueQuantity").is_some()
        || obs.get("valueCodeableConcept").is_some()
        || component_values;
    if !valued && obs.get("dataAbsentReason").is_none() {
        problems.add(
            IssueType::Required,
            format!("{loc}.value"),
            "a measurement needs a value (Quantity, CodeableConcept or components) or a dataAbsentReason",
        );
    }
}

/// Every Coding needs a system and a code; every Quantity a unit, system and code.
fn check_codes(v: &Value, loc: &str, problems: &mut Problems) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let here = format!("{loc}.{k}");
                match (k.as_str(), child) {
                    ("coding", Value::Array(codings)) => {
                        for (i, c) in codings.iter().enumerate() {
                            coding(c, &format!("{here}[{i}]"), problems);
                        }
                    }
                    ("valueCoding", c) => coding(c, &here, problems),
                    ("valueQuantity", q) => {
                        let missing: Vec<&str> = ["unit", "system", "code"]
                            .into_iter()
                            .filter(|f| q[*f].as_str().is_none_or(str::is_empty))
                            .collect();
                        if !missing.is_empty() {
                            problems.add(
                                IssueType::Required,
                                here.clone(),
                                format!("a Quantity needs its {}", missing.join(", ")),
                            );
                        }
                    }
                    _ => {}
                }
                check_codes(child, &here, problems);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_codes(item, &format!("{loc}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn coding(c: &Value, loc: &str, problems: &mut Problems) {
    if c["system"].as_str().is_none_or(str::is_empty)
        || c["code"].as_str().is_none_or(str::is_empty)
    {
        problems.add(
            IssueType::Required,
            loc.to_owned(),
            "a Coding needs both a system and a code",
        );
    }
}

/// The ServiceRequest's threshold extensions as `Observation.referenceRange`s.
fn thresholds(sr: &Value) -> Vec<Value> {
    array(sr, "extension")
        .iter()
        .filter(|e| e["url"] == THRESHOLD_URL)
        .map(|e| {
            let mut range = json!({});
            for part in array(e, "extension") {
                match (
                    part["url"].as_str(),
                    part.get("valueQuantity"),
                    part.get("valueCodeableConcept"),
                ) {
                    (Some(b @ ("low" | "high")), Some(q), _) => range[b] = q.clone(),
                    (Some("type"), _, Some(t)) => range["type"] = t.clone(),
                    _ => {}
                }
            }
            range
        })
        .collect()
}

/// Whether a reference range is an alarm zone (its type is RAL or GAL).
fn is_zone(range: &Value) -> bool {
    range
        .get("type")
        .map(|t| array(t, "coding"))
        .unwrap_or_default()
        .iter()
        .any(|c| {
            c["system"]
                .as_str()
                .is_some_and(|s| ZONE_TYPE_SYSTEMS.contains(&s))
        })
}

/// Tags a resource as submitted (see [`crate::rules`]).
fn tag(resource: &mut Value) {
    if has_submitted_tag(resource) {
        return;
    }
    let meta = resource
        .as_object_mut()
        .map(|o| o.entry("meta").or_insert_with(|| json!({})));
    if let Some(Value::Object(meta)) = meta {
        let tags = meta.entry("tag").or_insert_with(|| json!([]));
        if let Value::Array(tags) = tags {
            tags.push(submitted_tag());
        }
    }
}

#[derive(Default)]
struct Problems(OperationOutcome);

impl Problems {
    fn add(&mut self, code: IssueType, location: String, text: impl Into<String>) {
        self.0.issues.push(Issue {
            severity: Severity::Error,
            code,
            diagnostics: text.into(),
            expression: vec![location],
        });
    }
}
