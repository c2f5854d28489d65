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
//! Both lists are ordered by the number of example resources that use the code, most
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
