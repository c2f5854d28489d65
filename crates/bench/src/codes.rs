//! Real codes for the generated clinical data, extracted from the official FHIR R4
//! examples package (`hl7.fhir.r4.examples` 4.0.1, CC0).
//!
//! [`LAB_CODES`]: every LOINC code with a display on the `code` or a `component.code` of
//! an example Observation of category `laboratory` (or none) whose value there is a
//! `valueQuantity` or a `valueCodeableConcept` from SNOMED CT, LOINC or an HL7 code system,
//! without the telemonitoring measures; with the unit and the range of the examples'
//! values widened by 25 % each way, or the answers used there.
//! [`CONDITION_CODES`]: every SNOMED CT code with a display in a diagnosis element of the
//! examples (`Condition.code`, `FamilyMemberHistory.condition.code`, `reasonCode`,
//! `DiagnosticReport.conclusionCode`, `Procedure.complication`), less one procedure.
//!
//! After those, every other LOINC code of the package (examples and value sets) whose name
//! states a lab property this module can give a value for (mass, substance, arbitrary,
//! number or catalytic concentration, mass content, titer, susceptibility, presence in a
//! body fluid, not a blood-bank donor or unit test), less the deprecated ones. The
//! examples give no values for them, so [`lab`] takes a plausible value for the property
//! instead (see the constants [`MASS_CONC`] to [`PRESENCE`]); the benchmark needs the
//! spread of codes, not clinically exact values.
//!
//! Both lists are ordered by the number of package resources that use the code, most
//! first (ties by code): the ranks of the generator's Zipf-like draws.

/// The value of a lab result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LabValue {
    /// A `valueQuantity` uniform in `low..=high` with `decimals` places; `ucum` is its
    /// UCUM code when the examples give one.
    Quantity {
        unit: &'static str,
        ucum: Option<&'static str>,
        low: f64,
        high: f64,
        decimals: u32,
    },
    /// A `valueCodeableConcept`, one of these `(system, code, display)`.
    Concept(&'static [(&'static str, &'static str, &'static str)]),
}

/// One LOINC-coded lab result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LabCode {
    pub loinc: &'static str,
    pub display: &'static str,
    pub value: LabValue,
}

/// A lab code whose value follows from its LOINC property.
const fn lab(loinc: &'static str, display: &'static str, value: LabValue) -> LabCode {
    LabCode {
        loinc,
        display,
        value,
    }
}

const fn quantity(unit: &'static str, low: f64, high: f64, decimals: u32) -> LabValue {
    LabValue::Quantity {
        unit,
        ucum: Some(unit),
        low,
        high,
        decimals,
    }
}

/// LOINC property `MCnc` (`[Mass/volume]`).
pub const MASS_CONC: LabValue = quantity("mg/L", 0.5, 50.0, 1);
/// `SCnc` (`[Moles/volume]`).
pub const SUBSTANCE_CONC: LabValue = quantity("mmol/L", 0.1, 10.0, 2);
/// `ACnc` (`[Units/volume]`).
pub const ARBITRARY_CONC: LabValue = quantity("[IU]/L", 1.0, 100.0, 0);
/// `NCnc` (`[#/volume]`).
pub const NUMBER_CONC: LabValue = quantity("10*9/L", 0.1, 15.0, 1);
/// `CCnc` (`[Enzymatic activity/volume]`).
pub const CATALYTIC_CONC: LabValue = quantity("U/L", 5.0, 200.0, 0);
/// `MCnt` (`[Mass/mass]`).
pub const MASS_CONTENT: LabValue = quantity("ug/g", 1.0, 100.0, 0);
/// `Titr` (`[Titer]`).
pub const TITER: LabValue = quantity("{titer}", 1.0, 512.0, 0);
/// `Susc` (`[Susceptibility]`): an interpretation of HL7 v3.
pub const SUSCEPTIBILITY: LabValue = LabValue::Concept(&[
    (INTERPRETATION, "S", "Susceptible"),
    (INTERPRETATION, "I", "Intermediate"),
    (INTERPRETATION, "R", "Resistant"),
]);
/// `PrThr` (`[Presence]`).
pub const PRESENCE: LabValue = LabValue::Concept(&[
    ("http://snomed.info/sct", "260415000", "Not detected"),
    ("http://snomed.info/sct", "260373001", "Detected"),
]);

const INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";

/// The lab codes, most common first.
pub const LAB_CODES: &[LabCode] = &[
    LabCode {
        loinc: "1963-8",
        display: "Bicarbonate [Moles/volume] in Serum",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 19.0,
            high: 38.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "10834-0",
        display: "Globulin [Mass/volume] in Serum by calculation",
        value: LabValue::Quantity {
            unit: "g/L",
            ucum: None,
            low: 19.0,
            high: 44.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "13959-2",
        display: "Calcium.ionized [Moles/volume] in Serum or Plasma by calculation",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 1.74,
            high: 3.15,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "14631-6",
        display: "Bilirubin.total [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "umol/L",
            ucum: None,
            low: 5.0,
            high: 62.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "14682-9",
        display: "Creatinine [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 0.04,
            high: 0.11,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "14749-6",
        display: "Glucose [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 3.2,
            high: 9.2,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "14879-1",
        display: "Phosphate [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 0.7,
            high: 1.9,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "14933-6",
        display: "Urate [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 0.24,
            high: 0.58,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "14937-7",
        display: "Urea nitrogen [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 3.4,
            high: 10.2,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "1742-6",
        display: "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "U/L",
            ucum: None,
            low: 22.0,
            high: 594.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "1751-7",
        display: "Albumin [Mass/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "g/L",
            ucum: None,
            low: 27.0,
            high: 52.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "1863-0",
        display: "Anion gap 4 in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 8.0,
            high: 18.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "1920-8",
        display: "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "U/L",
            ucum: None,
            low: 14.0,
            high: 248.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2000-8",
        display: "Calcium [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 1.71,
            high: 2.97,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "2075-0",
        display: "Chloride [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 77.0,
            high: 135.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2324-2",
        display: "Gamma glutamyl transferase [Enzymatic activity/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "U/L",
            ucum: None,
            low: 26.0,
            high: 1414.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2532-0",
        display: "Lactate dehydrogenase [Enzymatic activity/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "U/L",
            ucum: None,
            low: 98.0,
            high: 405.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2823-3",
        display: "Potassium [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 2.7,
            high: 5.4,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "2885-2",
        display: "Protein [Mass/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "g/L",
            ucum: None,
            low: 50.0,
            high: 89.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2951-2",
        display: "Sodium [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 104.0,
            high: 179.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "6768-6",
        display: "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "U/L",
            ucum: None,
            low: 81.0,
            high: 885.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "14647-2",
        display: "Cholesterol [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 2.8,
            high: 8.8,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "14798-3",
        display: "Iron [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "umol/L",
            ucum: None,
            low: 2.0,
            high: 49.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "14927-8",
        display: "Triglyceride [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 0.7,
            high: 2.8,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "14629-0",
        display: "Bilirubin.direct [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "umol/L",
            ucum: None,
            low: 2.0,
            high: 10.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "624-7",
        display: "Bacteria Spt Resp Cul",
        value: LabValue::Concept(&[
            ("http://snomed.info/sct", "263812008", "Moderate Growth"),
            ("http://snomed.info/sct", "263776006", "Heavy growth"),
            ("http://snomed.info/sct", "23506009", "Normal flora"),
            ("http://snomed.info/sct", "56415008", "Klebsiella pneumonia"),
            ("http://snomed.info/sct", "3092008", "Staphlyococcuc aureus"),
        ]),
    },
    LabCode {
        loinc: "55233-1",
        display: "Genetic analysis master panel-- This is the parent OBR for the panel holding all of the associated observations that can be reported with a molecular genetics analysis result.",
        value: LabValue::Concept(&[("http://snomed.info/sct", "10828004", "Positive")]),
    },
    LabCode {
        loinc: "718-7",
        display: "Hemoglobin [Mass/volume] in Blood",
        value: LabValue::Quantity {
            unit: "g/L",
            ucum: Some("g/L"),
            low: 132.0,
            high: 220.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "789-8",
        display: "Erythrocytes [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*12/L",
            ucum: Some("10*12/L"),
            low: 4.4,
            high: 7.4,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "185-9",
        display: "Ciprofloxacin Islt MIC",
        value: LabValue::Quantity {
            unit: "ug/ml",
            ucum: Some("ug/mL"),
            low: 0.04,
            high: 0.06,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "2085-9",
        display: "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: None,
            low: 0.8,
            high: 1.6,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "267-5",
        display: "Gentamicin Islt MIC",
        value: LabValue::Quantity {
            unit: "ug/ml",
            ucum: Some("ug/mL"),
            low: 0.04,
            high: 0.06,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "28-1",
        display: "Ampicilin Islt MIC",
        value: LabValue::Quantity {
            unit: "ug/ml",
            ucum: Some("ug/mL"),
            low: 0.04,
            high: 0.07,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "4544-3",
        display: "Hematocrit [Volume Fraction] of Blood by Automated count",
        value: LabValue::Quantity {
            unit: "%",
            ucum: None,
            low: 41.0,
            high: 69.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "5905-5",
        display: "Monocytes/100 leukocytes in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "%",
            ucum: Some("%"),
            low: 15.0,
            high: 25.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "6690-2",
        display: "Leukocytes [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*9/L",
            ucum: Some("10*9/L"),
            low: 3.4,
            high: 5.8,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "704-7",
        display: "Basophils [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*9/L",
            ucum: Some("10*9/L"),
            low: 0.69,
            high: 1.15,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "706-2",
        display: "Basophils/100 leukocytes in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "%",
            ucum: Some("%"),
            low: 15.0,
            high: 25.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "711-2",
        display: "Eosinophils [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*9/L",
            ucum: Some("10*9/L"),
            low: 0.69,
            high: 1.15,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "713-8",
        display: "Eosinophils/100 leukocytes in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "%",
            ucum: Some("%"),
            low: 15.0,
            high: 25.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "731-0",
        display: "Lymphocytes [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*9/L",
            ucum: Some("10*9/L"),
            low: 0.7,
            high: 1.1,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "736-9",
        display: "Lymphocytes/100 leukocytes in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "%",
            ucum: Some("%"),
            low: 15.0,
            high: 25.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "742-7",
        display: "Monocytes [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*9/L",
            ucum: Some("10*9/L"),
            low: 0.7,
            high: 1.1,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "751-8",
        display: "Neutrophils [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*9/L",
            ucum: Some("10*9/L"),
            low: 0.7,
            high: 1.1,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "770-8",
        display: "Neutrophils/100 leukocytes in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "%",
            ucum: Some("%"),
            low: 15.0,
            high: 25.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "777-3",
        display: "Platelets [#/volume] in Blood by Automated count",
        value: LabValue::Quantity {
            unit: "x10*9/L",
            ucum: Some("10*9/L"),
            low: 333.0,
            high: 555.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "785-6",
        display: "Erythrocyte mean corpuscular hemoglobin [Entitic mass] by Automated count",
        value: LabValue::Quantity {
            unit: "pg",
            ucum: Some("pg"),
            low: 27.0,
            high: 45.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "787-2",
        display: "Erythrocyte mean corpuscular volume [Entitic volume] by Automated count",
        value: LabValue::Quantity {
            unit: "fL",
            ucum: Some("fL"),
            low: 74.0,
            high: 124.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "883-9",
        display: "ABO group [Type] in Blood",
        value: LabValue::Concept(&[(
            "http://snomed.info/sct",
            "112144000",
            "Blood group A (finding)",
        )]),
    },
    LabCode {
        loinc: "11555-0",
        display: "Base excess in Blood by calculation",
        value: LabValue::Quantity {
            unit: "mmol/l",
            ucum: Some("mmol/L"),
            low: 9.4,
            high: 15.8,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "11557-6",
        display: "Carbon dioxide in blood",
        value: LabValue::Quantity {
            unit: "kPa",
            ucum: Some("kPa"),
            low: 4.7,
            high: 7.8,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "13457-7",
        display: "Cholesterol in LDL [Mass/volume] in Serum or Plasma by calculation",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: Some("mmol/L"),
            low: 3.4,
            high: 5.8,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "13654-9",
        display: "Epithelial cells.squamous [#/volume] in Urine sediment",
        value: LabValue::Quantity {
            unit: "/mL",
            ucum: None,
            low: 1.0,
            high: 2.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "20570-8",
        display: "Hematocrit [Volume Fraction] of Blood",
        value: LabValue::Quantity {
            unit: "%",
            ucum: None,
            low: 20.0,
            high: 34.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2349-9",
        display: "Glucose [Presence] in Urine",
        value: LabValue::Concept(&[("http://snomed.info/sct", "260385009", "Negative")]),
    },
    LabCode {
        loinc: "24701-5",
        display: "Femur DXA Bone density",
        value: LabValue::Quantity {
            unit: "g/cm²",
            ucum: Some("g/cm-2"),
            low: 0.67,
            high: 1.11,
            decimals: 2,
        },
    },
    LabCode {
        loinc: "26464-8",
        display: "Leukocytes [#/volume] in Blood",
        value: LabValue::Quantity {
            unit: "K/ul",
            ucum: None,
            low: 23.9,
            high: 39.9,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "26515-7",
        display: "Platelets [#/volume] in Blood",
        value: LabValue::Quantity {
            unit: "K/ul",
            ucum: None,
            low: 63.0,
            high: 105.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2756-5",
        display: "pH of Urine",
        value: LabValue::Quantity {
            unit: "pH",
            ucum: None,
            low: 4.0,
            high: 6.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "2887-8",
        display: "Protein [Presence] in Urine",
        value: LabValue::Concept(&[("http://snomed.info/sct", "260385009", "Negative")]),
    },
    LabCode {
        loinc: "30391-7",
        display: "Erythocytes [#/volume] in Urine",
        value: LabValue::Quantity {
            unit: "/uL",
            ucum: None,
            low: 1.0,
            high: 2.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "30405-5",
        display: "Leukocytes [#/volume] in Urine",
        value: LabValue::Quantity {
            unit: "/uL",
            ucum: None,
            low: 1.0,
            high: 2.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "30444-4",
        display: "Myeloblasts [#/volume] in Blood",
        value: LabValue::Concept(&[("http://snomed.info/sct", "10828004", "Positive")]),
    },
    LabCode {
        loinc: "30522-7",
        display: "C reactive protein [Mass/volume] in Serum or Plasma by High sensitivity method",
        value: LabValue::Quantity {
            unit: "mg/L",
            ucum: None,
            low: 2.1,
            high: 3.5,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "33051-4",
        display: "Erythrocytes [Presence] in Urine",
        value: LabValue::Concept(&[("http://snomed.info/sct", "260385009", "Negative")]),
    },
    LabCode {
        loinc: "33052-2",
        display: "Leukocytes [Presence] in Urine",
        value: LabValue::Concept(&[("http://snomed.info/sct", "260385009", "Negative")]),
    },
    LabCode {
        loinc: "35200-5",
        display: "Cholesterol [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: Some("mmol/L"),
            low: 4.7,
            high: 7.9,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "35217-9",
        display: "Triglyceride [Moles/volume] in Serum or Plasma",
        value: LabValue::Quantity {
            unit: "mmol/L",
            ucum: Some("mmol/L"),
            low: 1.0,
            high: 1.6,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "41857-4",
        display: "Vibrio parahaemolyticus DNA [Presence] in Unspecified specimen by Probe and target amplification method",
        value: LabValue::Concept(&[(
            "http://snomed.info/sct",
            "10828004",
            "Positive (qualifier value)",
        )]),
    },
    LabCode {
        loinc: "43161-9",
        display: "Microorganism [#/volume] in Unspecified specimen by Viability count",
        value: LabValue::Quantity {
            unit: "CFU/ML",
            ucum: None,
            low: 15000.0,
            high: 25000.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "45708-5",
        display: "Vomiting [Minimum Data Set]",
        value: LabValue::Concept(&[(
            "http://snomed.info/sct",
            "2667000",
            "Absent (qualifier value)",
        )]),
    },
    LabCode {
        loinc: "47016-1",
        display: "CD4 Ag [Presence] in Tissue by Immune stain",
        value: LabValue::Concept(&[("http://snomed.info/sct", "10828004", "Positive")]),
    },
    LabCode {
        loinc: "48642-3",
        display: "Glomerular filtration rate/1.73 sq M predicted among non-blacks [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)",
        value: LabValue::Quantity {
            unit: "mL/min/1.73m2",
            ucum: Some("mL/min/{1.73_m2}"),
            low: 45.0,
            high: 75.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "48643-1",
        display: "Glomerular filtration rate/1.73 sq M predicted among blacks [Volume Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)",
        value: LabValue::Quantity {
            unit: "mL/min/1.73m2",
            ucum: Some("mL/min/{1.73_m2}"),
            low: 45.0,
            high: 75.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "49464-1",
        display: "CD13 Ag [Presence] in Tissue by Immune stain",
        value: LabValue::Concept(&[("http://snomed.info/sct", "10828004", "Positive")]),
    },
    LabCode {
        loinc: "49466-6",
        display: "CD2 Ag [Presence] in Tissue by Immune stain",
        value: LabValue::Concept(&[("http://snomed.info/sct", "260385009", "Negative")]),
    },
    LabCode {
        loinc: "49541-6",
        display: "Fasting status - Reported",
        value: LabValue::Concept(&[("http://terminology.hl7.org/CodeSystem/v2-0136", "Y", "Yes")]),
    },
    LabCode {
        loinc: "51967-8",
        display: "Genetic disease assessed",
        value: LabValue::Concept(&[(
            "http://snomed.info/sct",
            "363358000",
            "Malignant tumor of lung (disorder)",
        )]),
    },
    LabCode {
        loinc: "54447-8",
        display: "FLT3 gene mutation analysis in Bone marrow by Molecular genetics method Narrative",
        value: LabValue::Concept(&[("http://snomed.info/sct", "260385009", "Negative")]),
    },
    LabCode {
        loinc: "55201-8",
        display: "KIT gene mutation analysis in Bone marrow by Molecular genetics method Narrative",
        value: LabValue::Concept(&[("http://snomed.info/sct", "260385009", "Negative")]),
    },
    LabCode {
        loinc: "600-7",
        display: "Bacteria identified in Blood by Culture",
        value: LabValue::Concept(&[("http://snomed.info/sct", "3092008", "Staphylococcus aureus")]),
    },
    LabCode {
        loinc: "75034-9",
        display: "NPM1 gene mutations found [Identifier] in Bone marrow by Molecular genetics method Nominal",
        value: LabValue::Concept(&[("http://snomed.info/sct", "10828004", "Positive")]),
    },
    LabCode {
        loinc: "79716-7",
        display: "CYP2C9 gene product metabolic activity interpretation",
        value: LabValue::Concept(&[("http://loinc.org", "LA25391-6", "Normal metabolizer")]),
    },
    LabCode {
        loinc: "80219-9",
        display: "Mycoplasma hyopneumoniae Ab sample/Positive control in Serum by Immunoassay",
        value: LabValue::Quantity {
            unit: "% (sample/positive control)",
            ucum: Some("%"),
            low: 0.2,
            high: 1.2,
            decimals: 1,
        },
    },
    LabCode {
        loinc: "8478-0",
        display: "Mean blood pressure",
        value: LabValue::Quantity {
            unit: "mm Hg",
            ucum: Some("mm[Hg]"),
            low: 45.0,
            high: 75.0,
            decimals: 0,
        },
    },
    LabCode {
        loinc: "9267-6",
        display: "Glasgow coma score eye opening",
        value: LabValue::Concept(&[("http://loinc.org", "LA6556-0", "Eyes open spontaneously")]),
    },
    LabCode {
        loinc: "9268-4",
        display: "Glasgow coma score motor",
        value: LabValue::Concept(&[("http://loinc.org", "LA6566-9", "Localizing pain")]),
    },
    LabCode {
        loinc: "9270-0",
        display: "Glasgow coma score verbal",
        value: LabValue::Concept(&[("http://loinc.org", "LA6560-2", "Confused")]),
    },
    // Codes the examples carry without a usable value: their value follows the property in
    // the LOINC name (see the constants below).
    lab("1-8", "Acyclovir [Susceptibility]", SUSCEPTIBILITY),
    lab(
        "10-9",
        "Amdinocillin [Susceptibility] by Serum bactericidal titer",
        SUSCEPTIBILITY,
    ),
    lab(
        "100-8",
        "Cefoperazone [Susceptibility] by Minimum inhibitory concentration (MIC)",
        SUSCEPTIBILITY,
    ),
    lab("1002-5", "DBG Ab [Presence] in Serum or Plasma", PRESENCE),
    lab(
        "1003-3",
        "Indirect antiglobulin test.complement specific reagent [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "1004-1",
        "Direct antiglobulin test.complement specific reagent [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab(
        "1005-8",
        "Indirect antiglobulin test.IgG specific reagent [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "1007-4",
        "Direct antiglobulin test.poly specific reagent [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab(
        "1008-2",
        "Indirect antiglobulin test.poly specific reagent [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "101-6",
        "Cefoperazone [Susceptibility] by Disk diffusion (KB)",
        SUSCEPTIBILITY,
    ),
    lab(
        "1012-4",
        "E sup(w) Ab [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "1015-7",
        "E sup(w) Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab("1018-1", "E Ab [Presence] in Serum or Plasma", PRESENCE),
    lab(
        "102-4",
        "Cefoperazone [Susceptibility] by Serum bactericidal titer",
        SUSCEPTIBILITY,
    ),
    lab("1021-5", "E Ag [Presence] on Red Blood Cells", PRESENCE),
    lab(
        "1024-9",
        "Fy sup(a) Ab [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "1027-2",
        "Fy sup(a) Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab(
        "103-2",
        "Ceforanide [Susceptibility] by Minimum lethal concentration (MLC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "1030-6",
        "Fy sup(b) Ab [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "1033-0",
        "Fy sup(b) Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab(
        "10332-5",
        "Cortisol [Mass/volume] in Serum or Plasma --pre 250 ug corticotropin IM",
        MASS_CONC,
    ),
    lab(
        "10334-1",
        "Cancer Ag 125 [Units/volume] in Serum or Plasma",
        ARBITRARY_CONC,
    ),
    lab(
        "10336-6",
        "Gonadotropin peptide [Mass/volume] in Urine",
        MASS_CONC,
    ),
    lab(
        "10337-4",
        "Procollagen type I [Mass/volume] in Serum",
        MASS_CONC,
    ),
    lab(
        "10338-2",
        "Barbiturates [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10339-0",
        "Fluoxetine+Norfluoxetine [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10340-8",
        "Molindone [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10341-6",
        "Norpropoxyphene [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10342-4",
        "Sulfamethoxazole [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10343-2",
        "Temazepam [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10344-0",
        "Tranylcypromine [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10345-7",
        "Trihexyphenidyl [Mass/volume] in Urine",
        MASS_CONC,
    ),
    lab(
        "10346-5",
        "Hemoglobin A [Units/volume] in Blood by Electrophoresis",
        ARBITRARY_CONC,
    ),
    lab(
        "10348-1",
        "Bordetella parapertussis Ab [Presence] in Serum",
        PRESENCE,
    ),
    lab(
        "10349-9",
        "Brucella sp Ab [Units/volume] in Serum",
        ARBITRARY_CONC,
    ),
    lab(
        "10350-7",
        "Herpes simplex virus IgM Ab [Titer] in Serum by Immunoassay",
        TITER,
    ),
    lab(
        "10351-5",
        "HIV 1 RNA [Units/volume] (viral load) in Serum or Plasma by Probe with amplification",
        ARBITRARY_CONC,
    ),
    lab(
        "10358-0",
        "Teichoate Ab [Titer] in Serum by Immune diffusion (ID)",
        TITER,
    ),
    lab(
        "10359-8",
        "Asialoganglioside GM1 IgM Ab [Titer] in Serum",
        TITER,
    ),
    lab(
        "10360-6",
        "DNA single strand IgG Ab [Units/volume] in Serum",
        ARBITRARY_CONC,
    ),
    lab(
        "10361-4",
        "DNA single strand IgM Ab [Units/volume] in Serum",
        ARBITRARY_CONC,
    ),
    lab("10362-2", "Endomysium IgA Ab [Presence] in Serum", PRESENCE),
    lab(
        "10363-0",
        "Barbiturates [Presence] in Unspecified specimen",
        PRESENCE,
    ),
    lab("10364-8", "Cotinine [Mass/mass] in Hair", MASS_CONTENT),
    lab(
        "10365-5",
        "Cotinine [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab("10366-3", "Cotinine [Mass/volume] in Urine", MASS_CONC),
    lab(
        "10367-1",
        "Ethanol [Mass/volume] in Gastric fluid",
        MASS_CONC,
    ),
    lab(
        "10368-9",
        "Lead [Mass/volume] in Capillary blood",
        MASS_CONC,
    ),
    lab("10369-7", "Opiates [Mass/mass] in Hair", MASS_CONTENT),
    lab("10370-5", "Phencyclidine [Mass/mass] in Hair", MASS_CONTENT),
    lab(
        "10371-3",
        "Bite cells [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10372-1",
        "Blister cells [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10373-9",
        "Fragments [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10374-7",
        "Helmet cells [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10375-4",
        "Irregularly contracted cells [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10376-2",
        "Oval macrocytes [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10377-0",
        "Pencil cells [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10378-8",
        "Polychromasia [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10379-6",
        "Erythrocytes.dual population [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab("1038-9", "G Ab [Presence] in Serum or Plasma", PRESENCE),
    lab(
        "10380-4",
        "Stomatocytes [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10381-2",
        "Target cells [Presence] in Blood by Light microscopy",
        PRESENCE,
    ),
    lab(
        "10384-6",
        "A,B variant NOS Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab(
        "104-0",
        "Ceforanide [Susceptibility] by Minimum inhibitory concentration (MIC)",
        SUSCEPTIBILITY,
    ),
    lab("10400-0", "I Ag [Presence] on Red Blood Cells", PRESENCE),
    lab(
        "10408-3",
        "little i Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab("1041-3", "G Ag [Presence] on Red Blood Cells", PRESENCE),
    lab("1044-7", "H Ab [Presence] in Serum", PRESENCE),
    lab(
        "10449-7",
        "Glucose [Mass/volume] in Serum or Plasma --1 hour post meal",
        MASS_CONC,
    ),
    lab(
        "10450-5",
        "Glucose [Mass/volume] in Serum or Plasma --10 hours fasting",
        MASS_CONC,
    ),
    lab(
        "10451-3",
        "Proinsulin [Moles/volume] in Serum or Plasma --12 hours fasting",
        SUBSTANCE_CONC,
    ),
    lab(
        "10452-1",
        "Xylose [Mass/volume] in Serum or Plasma --1 hour post 25 g xylose PO",
        MASS_CONC,
    ),
    lab(
        "10453-9",
        "Xylose [Mass/volume] in Serum or Plasma --1 hour post dose xylose PO",
        MASS_CONC,
    ),
    lab(
        "10454-7",
        "Xylose [Mass/volume] in Serum or Plasma --2 hours post 25 g xylose PO",
        MASS_CONC,
    ),
    lab(
        "10455-4",
        "Xylose [Mass/volume] in Serum or Plasma --30 minutes post 25 g xylose PO",
        MASS_CONC,
    ),
    lab(
        "10456-2",
        "Xylose [Mass/volume] in Serum or Plasma --6 hours fasting",
        MASS_CONC,
    ),
    lab("1047-0", "H NOS Ab [Presence] in Serum or Plasma", PRESENCE),
    lab(
        "105-7",
        "Ceforanide [Susceptibility] by Disk diffusion (KB)",
        SUSCEPTIBILITY,
    ),
    lab("1050-4", "H NOS Ag [Presence] on Red Blood Cells", PRESENCE),
    lab(
        "10501-5",
        "Lutropin [Units/volume] in Serum or Plasma",
        ARBITRARY_CONC,
    ),
    lab(
        "10528-8",
        "Acetophenazine [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10529-6",
        "Amoxapine metabolite [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10530-4",
        "Aprobarbital [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10531-2",
        "Bretylium [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10533-8",
        "Propoxyphene+Acetaminophen [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10534-6",
        "Diazoxide [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10535-3",
        "Digoxin [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10536-1",
        "Dipyridamole [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10539-5",
        "Glipizide [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10540-3",
        "Glyburide [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10541-1",
        "Mepivacaine [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10542-9",
        "Metharbital [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10543-7",
        "Methsuximide+Normethsuximide [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10544-5",
        "Normeperidine [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "10545-2",
        "Normephenytoin [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10546-0",
        "Normethsuximide [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10547-8",
        "Primidone+Phenobarbital [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10549-4",
        "Pirmenol [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10551-0",
        "Triamterene [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10552-8",
        "Tricyclic antidepressants [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10553-6",
        "Prostatic acid phosphatase [Enzymatic activity/volume] in Genital fluid",
        CATALYTIC_CONC,
    ),
    lab(
        "10557-7",
        "Adenosine triphosphate [Moles/volume] in Semen",
        SUBSTANCE_CONC,
    ),
    lab("10558-5", "Albumin [Moles/volume] in Semen", SUBSTANCE_CONC),
    lab(
        "10560-1",
        "Carcinoembryonic Ag [Units/volume] in Semen",
        ARBITRARY_CONC,
    ),
    lab(
        "10561-9",
        "Carnitine [Moles/volume] in Semen",
        SUBSTANCE_CONC,
    ),
    lab("10562-7", "Cells [#/volume] in Cervical mucus", NUMBER_CONC),
    lab(
        "10563-5",
        "Cells other than spermatozoa [#/volume] in Semen",
        NUMBER_CONC,
    ),
    lab(
        "10565-0",
        "Choriogonadotropin [Units/volume] in Semen",
        ARBITRARY_CONC,
    ),
    lab("10567-6", "Citrate [Moles/volume] in Semen", SUBSTANCE_CONC),
    lab(
        "10574-2",
        "Fructose [Moles/volume] in Semen",
        SUBSTANCE_CONC,
    ),
    lab(
        "10576-7",
        "Germ cells.immature [#/volume] in Semen",
        NUMBER_CONC,
    ),
    lab(
        "10577-5",
        "Glucosidase [Enzymatic activity/volume] in Seminal plasma",
        CATALYTIC_CONC,
    ),
    lab(
        "10578-3",
        "Glycerophosphocholine [Moles/volume] in Seminal plasma",
        SUBSTANCE_CONC,
    ),
    lab("10579-1", "Leukocytes [#/volume] in Semen", NUMBER_CONC),
    lab(
        "10583-3",
        "Prostaglandin F1 alpha [Moles/volume] in Semen",
        SUBSTANCE_CONC,
    ),
    lab("10585-8", "Round cells [#/volume] in Semen", NUMBER_CONC),
    lab("10588-2", "Spermatogonia [#/volume] in Semen", NUMBER_CONC),
    lab(
        "10589-0",
        "Spermatids [#/volume] in Semen by Streptoavidin-biotin method (SAB)",
        NUMBER_CONC,
    ),
    lab(
        "10590-8",
        "Spermatids [#/volume] in Semen by Sertoli cell barrier method (SCB)",
        NUMBER_CONC,
    ),
    lab(
        "10591-6",
        "Primary Spermatocytes [#/volume] in Semen",
        NUMBER_CONC,
    ),
    lab(
        "10592-4",
        "Secondary Spermatocytes [#/volume] in Semen",
        NUMBER_CONC,
    ),
    lab(
        "10599-9",
        "Spermatozoa penetration [Presence] in Seminal fluid and Cervical mucosa by Kremer test",
        PRESENCE,
    ),
    lab(
        "106-5",
        "Ceforanide [Susceptibility] by Serum bactericidal titer",
        SUSCEPTIBILITY,
    ),
    lab("1060-3", "I Ab [Presence] in Serum or Plasma", PRESENCE),
    lab(
        "10600-5",
        "Spermatozoa penetration [Presence] in Seminal fluid and Cervical mucosa",
        PRESENCE,
    ),
    lab(
        "10601-3",
        "Spermatozoa penetration [Presence] in Seminal fluid and Cervical mucosa --post coitus",
        PRESENCE,
    ),
    lab("1063-7", "I NOS Ab [Presence] in Serum or Plasma", PRESENCE),
    lab(
        "10631-0",
        "Testosterone [Moles/volume] in Semen",
        SUBSTANCE_CONC,
    ),
    lab("10633-6", "Zinc [Moles/volume] in Semen", SUBSTANCE_CONC),
    lab(
        "10638-5",
        "Thermophilic Actinomycetes colony count [#/volume] in Unspecified specimen by Organism specific culture",
        NUMBER_CONC,
    ),
    lab(
        "10650-0",
        "Candida sp DNA [Presence] in Blood by Probe with amplification",
        PRESENCE,
    ),
    lab(
        "10651-8",
        "Chlamydophila pneumoniae Ag [Presence] in Sputum or Bronchial",
        PRESENCE,
    ),
    lab(
        "10652-6",
        "Chlamydophila pneumoniae DNA [Presence] in Sputum or Bronchial by Probe with amplification",
        PRESENCE,
    ),
    lab(
        "10653-4",
        "Clotrimazole [Susceptibility] by Minimum inhibitory concentration (MIC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "10654-2",
        "Clotrimazole [Susceptibility] by Minimum lethal concentration (MLC)",
        SUSCEPTIBILITY,
    ),
    lab("1066-0", "I NOS Ag [Presence] on Red Blood Cells", PRESENCE),
    lab(
        "10665-8",
        "Fungus colony count [#/volume] in Unspecified specimen by Environmental culture",
        NUMBER_CONC,
    ),
    lab(
        "10670-8",
        "Giardia lamblia [Presence] in Stool by Organism specific culture",
        PRESENCE,
    ),
    lab(
        "10676-5",
        "Hepatitis C virus RNA [Units/volume] (viral load) in Serum or Plasma by Probe with amplification",
        ARBITRARY_CONC,
    ),
    lab(
        "1069-4",
        "Jk sup(a) Ab [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "10697-1",
        "Nystatin [Susceptibility] by Minimum inhibitory concentration (MIC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "10698-9",
        "Nystatin [Susceptibility] by Minimum lethal concentration (MLC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "107-3",
        "Cefotaxime [Susceptibility] by Minimum lethal concentration (MLC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "10709-4",
        "Plasmodium falciparum Ag [Units/volume] in Blood by Immunofluorescence",
        ARBITRARY_CONC,
    ),
    lab(
        "10711-0",
        "Plasmodium vivax Ag [Units/volume] in Blood by Immunofluorescence",
        ARBITRARY_CONC,
    ),
    lab(
        "10717-7",
        "Streptococcus pneumoniae Ab [Units/volume] in Serum by Latex agglutination",
        ARBITRARY_CONC,
    ),
    lab(
        "10718-5",
        "Strongyloides sp Ab [Units/volume] in Serum by Immunoassay",
        ARBITRARY_CONC,
    ),
    lab(
        "10719-3",
        "Taenia solium adult Ab [Units/volume] in Serum by Immunoblot",
        ARBITRARY_CONC,
    ),
    lab(
        "1072-8",
        "Jk sup(a) Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab(
        "10720-1",
        "Terbinafine [Susceptibility] by Minimum inhibitory concentration (MIC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "10721-9",
        "Terbinafine [Susceptibility] by Minimum lethal concentration (MLC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "10723-5",
        "Toxoplasma gondii IgA Ab [Units/volume] in Serum by Immunoassay",
        ARBITRARY_CONC,
    ),
    lab(
        "10724-3",
        "Toxoplasma gondii IgE Ab [Units/volume] in Serum by Immunoassay",
        ARBITRARY_CONC,
    ),
    lab(
        "10725-0",
        "Toxoplasma gondii DNA [Units/volume] in Body fluid by Probe with amplification",
        ARBITRARY_CONC,
    ),
    lab(
        "1075-1",
        "Jk sup(b) Ab [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "1078-5",
        "Jk sup(b) Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab(
        "108-1",
        "Cefotaxime [Susceptibility] by Minimum inhibitory concentration (MIC)",
        SUSCEPTIBILITY,
    ),
    lab(
        "1081-9",
        "Js sup(a) Ab [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "10829-0",
        "Silicon [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10832-4",
        "Glucose [Mass/volume] in Serum or Plasma --15 minutes post 50 g lactose PO",
        MASS_CONC,
    ),
    lab(
        "10833-2",
        "Insulin [Mass/volume] in Serum or Plasma --7 hours post 75 g glucose PO",
        MASS_CONC,
    ),
    lab(
        "10835-7",
        "Lipoprotein a [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab("10836-5", "Niacin [Mass/volume] in Blood", MASS_CONC),
    lab(
        "10837-3",
        "Organic acids [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "10838-1",
        "Phosphoserine [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10839-9",
        "Troponin I.cardiac [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "1084-3",
        "Js sup(a) Ag [Presence] on Red Blood Cells",
        PRESENCE,
    ),
    lab("10840-7", "Atropine [Mass/volume] in Urine", MASS_CONC),
    lab(
        "10841-5",
        "Methazolamide [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10846-4",
        "Borrelia burgdorferi DNA [Presence] in Blood by Probe with amplification",
        PRESENCE,
    ),
    lab(
        "10847-2",
        "Borrelia burgdorferi DNA [Presence] in Body fluid by Probe with amplification",
        PRESENCE,
    ),
    lab(
        "10848-0",
        "Chlamydia sp IgG Ab [Titer] in Serum by Immunofluorescence",
        TITER,
    ),
    lab(
        "10849-8",
        "Chlamydia sp IgM Ab [Titer] in Serum by Immunofluorescence",
        TITER,
    ),
    lab(
        "10850-6",
        "Cyclospora cayetanensis [Presence] in Unspecified specimen",
        PRESENCE,
    ),
    lab(
        "10851-4",
        "Escherichia coli O157:H7 [Presence] in Stool by Organism specific culture",
        PRESENCE,
    ),
    lab(
        "10853-0",
        "Isospora belli [Presence] in Unspecified specimen by Acid fast stain.Kinyoun modified",
        PRESENCE,
    ),
    lab("10858-9", "Teichoate Ab [Presence] in Serum", PRESENCE),
    lab(
        "10860-5",
        "Varicella zoster virus [Presence] in Unspecified specimen by Organism specific culture",
        PRESENCE,
    ),
    lab(
        "10861-3",
        "Progesterone receptor [Mass/mass] in Tissue",
        MASS_CONTENT,
    ),
    lab("10862-1", "Basement membrane Ab [Titer] in Serum", TITER),
    lab("10863-9", "Endomysium IgA Ab [Titer] in Serum", TITER),
    lab(
        "10864-7",
        "Immune complex [Units/volume] in Serum or Plasma by Raji cell assay",
        ARBITRARY_CONC,
    ),
    lab(
        "10865-4",
        "Intercellular substance Ab [Presence] in Serum",
        PRESENCE,
    ),
    lab("10866-2", "Sulfatide IgG Ab [Titer] in Serum", TITER),
    lab("10867-0", "Sulfatide IgM Ab [Titer] in Serum", TITER),
    lab(
        "10868-8",
        "Bacitracin [Susceptibility] by Disk diffusion (KB)",
        SUSCEPTIBILITY,
    ),
    lab(
        "10869-6",
        "Xylose [Mass/volume] in Blood --3 hours post 25 g xylose PO",
        MASS_CONC,
    ),
    lab(
        "1087-6",
        "Js sup(b) Ab [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "10870-4",
        "Xylose [Mass/volume] in Blood --4 hours post 25 g xylose PO",
        MASS_CONC,
    ),
    lab(
        "10871-2",
        "Xylose [Mass/volume] in Blood --5 hours post 25 g xylose PO",
        MASS_CONC,
    ),
    lab(
        "10872-0",
        "Xylose [Mass/volume] in Blood --baseline",
        MASS_CONC,
    ),
    lab("10874-6", "Bombesin [Mass/volume] in Plasma", MASS_CONC),
    lab(
        "10875-3",
        "Carnitine esters [Mass/volume] in Urine",
        MASS_CONC,
    ),
    lab(
        "10876-1",
        "Carnitine esters [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10877-9",
        "Carnitine free (C0) [Mass/volume] in Urine",
        MASS_CONC,
    ),
    lab(
        "10878-7",
        "Iodine.protein bound [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10879-5",
        "Isovalerylglycine [Mass/volume] in Urine",
        MASS_CONC,
    ),
    lab("10880-3", "Magnesium [Mass/mass] in Stool", MASS_CONTENT),
    lab(
        "10881-1",
        "Pentacarboxylporphyrins [Mass/volume] in Red Blood Cells",
        MASS_CONC,
    ),
    lab(
        "10882-9",
        "Pentacarboxylporphyrins [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10883-7",
        "Phenolphthalein [Mass/mass] in Stool",
        MASS_CONTENT,
    ),
    lab("10884-5", "Phosphate [Mass/mass] in Stool", MASS_CONTENT),
    lab(
        "10886-0",
        "Prostate Specific Ag Free [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "10888-6",
        "Lipase [Enzymatic activity/volume] in Urine",
        CATALYTIC_CONC,
    ),
    lab("10889-4", "Bisacodyl [Mass/mass] in Stool", MASS_CONTENT),
    lab(
        "10891-0",
        "Oxyphenisatin [Mass/mass] in Stool",
        MASS_CONTENT,
    ),
    lab(
        "10892-8",
        "Pentoxifylline [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab("10893-6", "Trenbolone [Mass/volume] in Urine", MASS_CONC),
    lab(
        "10894-4",
        "Aspergillus niger Ab [Presence] in Serum by Immune diffusion (ID)",
        PRESENCE,
    ),
    lab(
        "10895-1",
        "Clostridium difficile toxin B [Presence] in Stool",
        PRESENCE,
    ),
    lab(
        "10896-9",
        "Eastern equine encephalitis virus IgG Ab [Titer] in Serum by Immunofluorescence",
        TITER,
    ),
    lab(
        "10897-7",
        "Eastern equine encephalitis virus IgG Ab [Titer] in Cerebral spinal fluid by Immunofluorescence",
        TITER,
    ),
    lab(
        "10898-5",
        "Eastern equine encephalitis virus IgM Ab [Titer] in Serum by Immunofluorescence",
        TITER,
    ),
    lab(
        "11206-0",
        "18-Hydroxydeoxycorticosterone [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "16294-1",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "1656-8",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma",
        MASS_CONC,
    ),
    lab(
        "25561-2",
        "11-Deoxycorticosterone [Moles/volume] in Serum or Plasma",
        SUBSTANCE_CONC,
    ),
    lab(
        "40811-2",
        "11-Deoxycorticosterone [Presence] in Serum or Plasma",
        PRESENCE,
    ),
    lab(
        "40816-1",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --1 hour post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "40818-7",
        "11-Deoxycorticosterone [Moles/volume] in 24 hour Urine",
        SUBSTANCE_CONC,
    ),
    lab(
        "42855-7",
        "11-Deoxycorticosterone [Mass/volume] in Urine",
        MASS_CONC,
    ),
    lab(
        "50081-9",
        "18-Hydroxydeoxycorticosterone [Moles/volume] in Serum or Plasma",
        SUBSTANCE_CONC,
    ),
    lab(
        "53347-1",
        "11-Deoxycorticosterone [Mass/volume] in Dried blood spot",
        MASS_CONC,
    ),
    lab(
        "53348-9",
        "11-Deoxycorticosterone [Moles/volume] in Dried blood spot",
        SUBSTANCE_CONC,
    ),
    lab(
        "56555-6",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --baseline",
        MASS_CONC,
    ),
    lab(
        "56556-4",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --30 minutes post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56602-6",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --1st specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56603-4",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --2nd specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56604-2",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --3rd specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56605-9",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --4th specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56606-7",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --pre XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56608-3",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --15 minutes post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56609-1",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --20 minutes post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56610-9",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --40 minutes post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56611-7",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --1.5 hours post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56612-5",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --2 hours post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "56613-3",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --2.5 hours post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "57491-3",
        "11-Deoxycorticosterone [Moles/volume] in Serum or Plasma --pre 250 ug corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57492-1",
        "11-Deoxycorticosterone [Moles/volume] in Serum or Plasma --30 minutes post 250 ug corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57493-9",
        "11-Deoxycorticosterone [Moles/volume] in Serum or Plasma --1 hour post 250 ug corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57551-4",
        "18-Hydroxydeoxycorticosterone [Moles/volume] in Serum or Plasma --pre dose corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57552-2",
        "18-Hydroxydeoxycorticosterone [Moles/volume] in Serum or Plasma --30 minutes post dose corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57553-0",
        "18-Hydroxydeoxycorticosterone [Moles/volume] in Serum or Plasma --1 hour post dose corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57560-5",
        "21-Deoxycorticosterone [Moles/volume] in Serum or Plasma --pre dose corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57561-3",
        "21-Deoxycorticosterone [Moles/volume] in Serum or Plasma --30 minutes post dose corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "57562-1",
        "21-Deoxycorticosterone [Moles/volume] in Serum or Plasma --1 hour post dose corticotropin",
        SUBSTANCE_CONC,
    ),
    lab(
        "59984-5",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --8th specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "59985-2",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --7th specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "59986-0",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --6th specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "59987-8",
        "11-Deoxycorticosterone [Mass/volume] in Serum or Plasma --5th specimen post XXX challenge",
        MASS_CONC,
    ),
    lab(
        "69799-5",
        "21-Deoxycorticosterone [Moles/volume] in Serum or Plasma",
        SUBSTANCE_CONC,
    ),
    lab(
        "48620-9",
        "Cholesterol [Mass/volume] in Serum or Plasma ultracentrifugate",
        MASS_CONC,
    ),
    lab(
        "5932-9",
        "Cholesterol [Presence] in Blood by Test strip",
        PRESENCE,
    ),
    lab("20507-0", "Reagin Ab [Presence] in Serum by RPR", PRESENCE),
];

/// SNOMED CT condition codes `(code, display)`, most common first.
pub const CONDITION_CODES: &[(&str, &str)] = &[
    ("11840006", "Traveller's Diarrhea (disorder)"),
    ("18099001", "Retropharyngeal abscess"),
    ("297217002", "Rib Pain (finding)"),
    ("312824007", "Family history of cancer of colon"),
    ("39065001", "Burn of ear"),
    ("422504002", "Ischemic stroke (disorder)"),
    ("10001005", "Bacterial sepsis"),
    ("115665000", "Atopy"),
    (
        "1481000119100",
        "Diabetes mellitus type 2 without retinopathy",
    ),
    ("188340000", "Malignant tumor of craniopharyngeal duct"),
    ("230456007", "Status epilepticus (disorder)"),
    ("237840007", "Disorder of Electrolytes (disorder)"),
    ("254637007", "NSCLC - Non-small cell lung cancer"),
    ("266599000", "Dysmenorrhea"),
    ("30242009", "Scarlet Fever (disorder)"),
    ("315619001", "Myocardial Infarction"),
    ("32914008", "Restless Legs"),
    ("357009", "Closed fracture of trapezoidal bone of wrist"),
    (
        "36225005",
        "Acute renal insufficiency specified as due to procedure",
    ),
    ("363346000", "Malignant neoplastic disease"),
    ("368009", "Heart valve disorder"),
    ("371041009", "Embolic Stroke"),
    ("385093006", "Community acquired pneumonia (disorder)"),
    ("386661006", "Fever"),
    ("391040000", "At risk of osteoporotic fracture"),
    ("39839004", "Diaphragmatic hernia"),
    ("40930008", "Hypothyroidism (disorder)"),
    ("428763004", "Bacteremia due to staphylococcus"),
    ("44054006", "Diabetes mellitus type 2 (disorder)"),
    (
        "473189005",
        "On subcutaneous insulin for diabetes mellitus (finding)",
    ),
    ("59621000", "Essential hypertension (disorder)"),
    ("65363002", "Otitis Media"),
    ("67750007", "Ineffective airway clearance (finding)"),
    ("73211009", "Diabetes mellitus"),
    ("84757009", "Epilepsy (disorder)"),
    ("87628006", "Bacterial infectious disease"),
    ("92814006", "Chronic Lymphoid Leukemia (disorder)"),
    ("92818009", "Chronic myeloid Leukemia (disorder)"),
];
