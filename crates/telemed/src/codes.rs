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

/// A home measurement whose unit Ember knows: the LOINC code of the order and the
/// Observation, its name, and the UCUM unit its values and thresholds are in (or
/// commensurable with).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub loinc: &'static str,
    pub name: &'static str,
    pub ucum: &'static str,
}

pub const LOINC: &str = "http://loinc.org";

/// The home measurements of telemonitoring (LOINC codes and names from the R4
/// vital-signs profiles and the eHealth measurement catalogue).
pub const MEASURES: [Measure; 11] = [
    Measure {
        loinc: "85354-9",
        name: "Blood pressure",
        ucum: "mm[Hg]",
    },
    Measure {
        loinc: "8480-6",
        name: "Systolic blood pressure",
        ucum: "mm[Hg]",
    },
    Measure {
        loinc: "8462-4",
        name: "Diastolic blood pressure",
        ucum: "mm[Hg]",
    },
    Measure {
        loinc: "59408-5",
        name: "Oxygen saturation",
        ucum: "%",
    },
    Measure {
        loinc: "2708-6",
        name: "Oxygen saturation",
        ucum: "%",
    },
    Measure {
        loinc: "8867-4",
        name: "Pulse",
        ucum: "/min",
    },
    Measure {
        loinc: "9279-1",
        name: "Respiratory rate",
        ucum: "/min",
    },
    Measure {
        loinc: "29463-7",
        name: "Body weight",
        ucum: "kg",
    },
    Measure {
        loinc: "8310-5",
        name: "Body temperature",
        ucum: "Cel",
    },
    Measure {
        loinc: "15074-8",
        name: "Blood glucose",
        ucum: "mmol/L",
    },
    Measure {
        loinc: "2339-0",
        name: "Blood glucose",
        ucum: "mg/dL",
    },
];

/// The measurement a LOINC code stands for.
pub fn measure(loinc: &str) -> Option<&'static Measure> {
    MEASURES.iter().find(|m| m.loinc == loinc)
}
