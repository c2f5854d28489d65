//! The systems, codes and URLs of the telemonitoring model (the Danish eHealth
//! infrastructure's, where it defines one; Ember's own otherwise).

/// The threshold extension on a ServiceRequest: sub-extensions `low`, `high`
/// (valueQuantity) and `type` (valueCodeableConcept).
pub const THRESHOLD_URL: &str =
    "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-referenceRange";
/// The systems of the zone types `RAL` (red) and `GAL` (yellow).
pub const ZONE_TYPE_SYSTEMS: [&str; 2] = [
    "urn:oid:1.2.208.184.100.1",
    "http://ehealth.sundhed.dk/cs/reference-range-type",
];
pub const RED_ZONE: &str = "RAL";
pub const YELLOW_ZONE: &str = "GAL";

/// The overall finding of a triage: `green`, `yellow` or `red`.
pub const FINDING_SYSTEM: &str = "http://ehealth.sundhed.dk/cs/clinicalimpression-finding-codes";
/// The code of a triage's ClinicalImpression.
pub const IMPRESSION_SYSTEM: &str = "http://ehealth.sundhed.dk/cs/clinicalimpression-code";
pub const TRIAGING_RESULT: &str = "TriagingResult";
pub const SNOMED: &str = "http://snomed.info/sct";
/// SNOMED CT: inside and outside the reference interval.
pub const INSIDE: (&str, &str) = ("442082004", "Within reference range");
pub const OUTSIDE: (&str, &str) = ("442096005", "Outside reference range");

/// The category of a follow-up Task, carried in `Task.code`.
pub const TASK_CATEGORY_SYSTEM: &str = "http://ehealth.sundhed.dk/cs/task-category";
/// A triaged measurement, or one without zones, for a clinician to assess.
pub const FOR_ASSESSMENT: &str = "MeasurementForAssessment";
/// A measurement that triage could not judge; the reason is in `Task.description`.
pub const FAILED_AUTO_PROCESSING: &str = "MeasurementForAssessmentFailureInAutoProcessing";
/// A scheduled measurement that did not come.
pub const MISSING: &str = "MissingMeasurementResolving";

/// The significance of a questionnaire answer.
pub const SIGNIFICANCE_URL: &str =
    "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-answer-significance";
pub const SIGNIFICANCE_SYSTEM: &str =
    "http://ehealth.sundhed.dk/cs/questionnaire-item-significance-indicator";

/// The tag `$submit-measurement` puts on what it stores, which the immutability rule
/// and triage recognise. Only that operation may write it.
pub const SUBMITTED_SYSTEM: &str = "http://ember.dev/fhir/CodeSystem/telemonitoring";
pub const SUBMITTED_CODE: &str = "submitted";

/// The Device that sends Ember's notifications.
pub const DEVICE_ID: &str = "ember-triage";

pub const COMMUNICATION_CATEGORY: &str =
    "http://terminology.hl7.org/CodeSystem/communication-category";
