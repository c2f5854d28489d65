//! Deterministic generators of small, valid FHIR R4 resources.

use serde_json::{Value, json};

use crate::rng::Rng;

/// The resource types the workload uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Patient,
    Practitioner,
    Observation,
    Encounter,
    Condition,
    MedicationRequest,
}

impl ResourceType {
    pub const ALL: [ResourceType; 6] = [
        ResourceType::Patient,
        ResourceType::Observation,
        ResourceType::Encounter,
        ResourceType::Condition,
        ResourceType::MedicationRequest,
        ResourceType::Practitioner,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Patient => "Patient",
            ResourceType::Practitioner => "Practitioner",
            ResourceType::Observation => "Observation",
            ResourceType::Encounter => "Encounter",
            ResourceType::Condition => "Condition",
            ResourceType::MedicationRequest => "MedicationRequest",
        }
    }
}

/// Ids of resources that already exist on the server and may be referenced.
#[derive(Debug, Clone, Default)]
pub struct Refs {
    pub patients: Vec<String>,
    pub practitioners: Vec<String>,
}

impl Refs {
    fn patient(&self, rng: &mut Rng) -> String {
        if self.patients.is_empty() {
            return "Patient/example".to_owned();
        }
        format!("Patient/{}", rng.pick(&self.patients))
    }

    fn practitioner(&self, rng: &mut Rng) -> String {
        if self.practitioners.is_empty() {
            return "Practitioner/example".to_owned();
        }
        format!("Practitioner/{}", rng.pick(&self.practitioners))
    }
}

const UCUM: &str = "http://unitsofmeasure.org";
const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

const GIVEN_F: &[&str] = &[
    "Emma", "Olivia", "Ava", "Sophia", "Mia", "Amelia", "Harper", "Evelyn", "Nora", "Lucia",
    "Hanna", "Ingrid", "Maria", "Yuki", "Aisha",
];
const GIVEN_M: &[&str] = &[
    "Liam", "Noah", "Oliver", "Elijah", "James", "William", "Lucas", "Henry", "Mateo", "Jonas",
    "Erik", "Kenji", "Omar", "Pavel", "Diego",
];
const FAMILY: &[&str] = &[
    "Smith",
    "Johnson",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Nguyen",
    "Schmidt",
    "Novak",
    "Larsen",
    "Tanaka",
    "Okafor",
];
const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Pine Rd",
    "Lake View Blvd",
    "Hillcrest Way",
    "Park Pl",
    "River Rd",
];
/// (city, state, zip prefix)
const CITIES: &[(&str, &str, &str)] = &[
    ("Boston", "MA", "021"),
    ("Springfield", "IL", "627"),
    ("Austin", "TX", "787"),
    ("Portland", "OR", "972"),
    ("Madison", "WI", "537"),
    ("Denver", "CO", "802"),
    ("Raleigh", "NC", "276"),
    ("Columbus", "OH", "432"),
];

/// (SNOMED code, display)
const CONDITIONS: &[(&str, &str)] = &[
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder, systemic arterial"),
    ("195967001", "Asthma"),
    ("55822004", "Hyperlipidemia"),
    ("35489007", "Depressive disorder"),
    ("40055000", "Chronic sinusitis"),
    ("239873007", "Osteoarthritis of knee"),
];

/// (RxNorm code, display, dose text)
const MEDICATIONS: &[(&str, &str, &str)] = &[
    (
        "197361",
        "Amlodipine 5 MG Oral Tablet",
        "Take 1 tablet by mouth once daily",
    ),
    (
        "314076",
        "lisinopril 10 MG Oral Tablet",
        "Take 1 tablet by mouth once daily",
    ),
    (
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
        "Take 1 tablet by mouth once daily with the evening meal",
    ),
    (
        "313782",
        "Acetaminophen 325 MG Oral Tablet",
        "Take 1 tablet by mouth every 6 hours as needed for pain",
    ),
];

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)], "text": display })
}

fn quantity(value: f64, unit: &str, code: &str) -> Value {
    json!({ "value": value, "unit": unit, "system": UCUM, "code": code })
}

fn date(rng: &mut Rng, from_year: u64, to_year: u64) -> String {
    let y = rng.range(from_year, to_year);
    let m = rng.range(1, 12);
    let d = rng.range(1, 28);
    format!("{y:04}-{m:02}-{d:02}")
}

fn date_time(rng: &mut Rng) -> String {
    let day = date(rng, 2019, 2024);
    let h = rng.range(0, 23);
    let min = rng.range(0, 59);
    let s = rng.range(0, 59);
    format!("{day}T{h:02}:{min:02}:{s:02}Z")
}

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

/// One decimal place, e.g. 72.4.
fn tenths(rng: &mut Rng, lo: u64, hi: u64) -> f64 {
    rng.range(lo * 10, hi * 10) as f64 / 10.0
}

fn person_name(rng: &mut Rng, female: bool) -> (String, String, String) {
    let pool = if female { GIVEN_F } else { GIVEN_M };
    let given = (*rng.pick(pool)).to_owned();
    let middle = (*rng.pick(pool)).to_owned();
    let family = (*rng.pick(FAMILY)).to_owned();
    (given, middle, family)
}

fn telecom(rng: &mut Rng, given: &str, family: &str, domain: &str) -> Value {
    let phone = format!("555-{}-{}", digits(rng, 3), digits(rng, 4));
    let email = format!(
        "{}.{}{}@{domain}",
        given.to_lowercase(),
        family.to_lowercase(),
        rng.below(100)
    );
    json!([
        { "system": "phone", "value": phone, "use": "home" },
        { "system": "email", "value": email }
    ])
}

/// Generates one resource of type `rt`. With `id`, the resource carries it
/// (for updates); otherwise it has no id (for creates).
pub fn generate(rt: ResourceType, rng: &mut Rng, refs: &Refs, id: Option<&str>) -> Value {
    let mut v = match rt {
        ResourceType::Patient => patient(rng),
        ResourceType::Practitioner => practitioner(rng),
        ResourceType::Observation => observation(rng, refs),
        ResourceType::Encounter => encounter(rng, refs),
        ResourceType::Condition => condition(rng, refs),
        ResourceType::MedicationRequest => medication_request(rng, refs),
    };
    if let (Some(id), Value::Object(map)) = (id, &mut v) {
        // Keep `id` right after `resourceType`, as FHIR examples do.
        let mut out = serde_json::Map::with_capacity(map.len() + 1);
        for (k, val) in std::mem::take(map) {
            out.insert(k.clone(), val);
            if k == "resourceType" {
                out.insert("id".to_owned(), Value::String(id.to_owned()));
            }
        }
        *map = out;
    }
    v
}

/// Serialized form of [`generate`].
pub fn generate_string(rt: ResourceType, rng: &mut Rng, refs: &Refs, id: Option<&str>) -> String {
    generate(rt, rng, refs, id).to_string()
}

fn patient(rng: &mut Rng) -> Value {
    let female = rng.chance(50);
    let (given, middle, family) = person_name(rng, female);
    let (city, state, zip) = *rng.pick(CITIES);
    let line = format!("{} {}", rng.range(1, 9999), rng.pick(STREETS));
    let mut address = json!({
        "use": "home",
        "type": "physical",
        "line": [line],
        "city": city,
        "state": state,
        "postalCode": format!("{zip}{}", digits(rng, 2)),
        "country": "US"
    });
    if rng.chance(30) {
        if let Some(lines) = address.get_mut("line").and_then(Value::as_array_mut) {
            lines.push(Value::String(format!("Apt {}", rng.range(1, 40))));
        }
    }
    json!({
        "resourceType": "Patient",
        "identifier": [{
            "use": "usual",
            "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"),
            "system": "http://hospital.example.org/mrn",
            "value": format!("MRN-{}", digits(rng, 8))
        }],
        "active": true,
        "name": [{ "use": "official", "family": family, "given": [given, middle] }],
        "telecom": telecom(rng, &given, &family, "example.com"),
        "gender": if female { "female" } else { "male" },
        "birthDate": date(rng, 1935, 2020),
        "address": [address]
    })
}

fn practitioner(rng: &mut Rng) -> Value {
    let female = rng.chance(50);
    let (given, _, family) = person_name(rng, female);
    let (code, display) = *rng.pick(&[
        ("MD", "Doctor of Medicine"),
        ("DO", "Doctor of Osteopathy"),
        ("NP", "Nurse practitioner"),
        ("PA", "Physician Assistant"),
    ]);
    json!({
        "resourceType": "Practitioner",
        "identifier": [{
            "system": "http://hl7.org/fhir/sid/us-npi",
            "value": format!("1{}", digits(rng, 9))
        }],
        "active": true,
        "name": [{ "use": "official", "family": family, "given": [given], "prefix": ["Dr."] }],
        "telecom": telecom(rng, &given, &family, "clinic.example.org"),
        "gender": if female { "female" } else { "male" },
        "qualification": [{
            "code": concept("http://terminology.hl7.org/CodeSystem/v2-0360", code, display),
            "period": { "start": date(rng, 1990, 2018) }
        }]
    })
}

fn observation(rng: &mut Rng, refs: &Refs) -> Value {
    let subject = refs.patient(rng);
    let effective = date_time(rng);
    let mut obs = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{
            "coding": [coding(
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "vital-signs",
                "Vital Signs"
            )],
            "text": "Vital Signs"
        }],
        "subject": { "reference": subject },
        "effectiveDateTime": effective
    });
    let kind = rng.below(4);
    let Value::Object(map) = &mut obs else {
        return obs;
    };
    match kind {
        0 => {
            let systolic = rng.range(95, 165) as f64;
            let diastolic = rng.range(55, 100) as f64;
            map.insert(
                "code".into(),
                concept(
                    LOINC,
                    "85354-9",
                    "Blood pressure panel with all children optional",
                ),
            );
            map.insert(
                "component".into(),
                json!([
                    {
                        "code": concept(LOINC, "8480-6", "Systolic blood pressure"),
                        "valueQuantity": quantity(systolic, "mmHg", "mm[Hg]")
                    },
                    {
                        "code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                        "valueQuantity": quantity(diastolic, "mmHg", "mm[Hg]")
                    }
                ]),
            );
        }
        1 => {
            map.insert("code".into(), concept(LOINC, "29463-7", "Body weight"));
            map.insert(
                "valueQuantity".into(),
                quantity(tenths(rng, 45, 130), "kg", "kg"),
            );
        }
        2 => {
            map.insert(
                "code".into(),
                concept(
                    LOINC,
                    "59408-5",
                    "Oxygen saturation in Arterial blood by Pulse oximetry",
                ),
            );
            map.insert(
                "valueQuantity".into(),
                quantity(rng.range(90, 100) as f64, "%", "%"),
            );
        }
        _ => {
            map.insert("code".into(), concept(LOINC, "8867-4", "Heart rate"));
            map.insert(
                "valueQuantity".into(),
                quantity(rng.range(50, 120) as f64, "beats/minute", "/min"),
            );
        }
    }
    obs
}

fn encounter(rng: &mut Rng, refs: &Refs) -> Value {
    let subject = refs.patient(rng);
    let practitioner = refs.practitioner(rng);
    let (class_code, class_display) = *rng.pick(&[
        ("AMB", "ambulatory"),
        ("AMB", "ambulatory"),
        ("EMER", "emergency"),
        ("IMP", "inpatient encounter"),
    ]);
    let day = date(rng, 2019, 2024);
    let start_h = rng.range(7, 16);
    let end_h = start_h + rng.range(1, 3);
    let (type_code, type_display) = *rng.pick(&[
        ("185349003", "Encounter for check up"),
        ("185345009", "Encounter for symptom"),
        ("390906007", "Follow-up encounter"),
    ]);
    json!({
        "resourceType": "Encounter",
        "status": "finished",
        "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": class_code,
            "display": class_display
        },
        "type": [concept(SNOMED, type_code, type_display)],
        "subject": { "reference": subject },
        "participant": [{
            "type": [concept(
                "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "PPRF",
                "primary performer"
            )],
            "individual": { "reference": practitioner }
        }],
        "period": {
            "start": format!("{day}T{start_h:02}:00:00Z"),
            "end": format!("{day}T{end_h:02}:30:00Z")
        }
    })
}

fn condition(rng: &mut Rng, refs: &Refs) -> Value {
    let subject = refs.patient(rng);
    let (code, display) = *rng.pick(CONDITIONS);
    let onset = date_time(rng);
    json!({
        "resourceType": "Condition",
        "clinicalStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "active",
            "Active"
        ),
        "verificationStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "confirmed",
            "Confirmed"
        ),
        "category": [concept(
            "http://terminology.hl7.org/CodeSystem/condition-category",
            "problem-list-item",
            "Problem List Item"
        )],
        "code": concept(SNOMED, code, display),
        "subject": { "reference": subject },
        "onsetDateTime": onset,
        "recordedDate": date(rng, 2019, 2024)
    })
}

fn medication_request(rng: &mut Rng, refs: &Refs) -> Value {
    let subject = refs.patient(rng);
    let requester = refs.practitioner(rng);
    let (code, display, text) = *rng.pick(MEDICATIONS);
    json!({
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": concept(RXNORM, code, display),
        "subject": { "reference": subject },
        "authoredOn": date(rng, 2019, 2024),
        "requester": { "reference": requester },
        "dosageInstruction": [{
            "sequence": 1,
            "text": text,
            "timing": { "repeat": { "frequency": 1, "period": 1, "periodUnit": "d" } },
            "route": concept(SNOMED, "26643006", "Oral route"),
            "doseAndRate": [{
                "doseQuantity": {
                    "value": 1,
                    "unit": "tablet",
                    "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm",
                    "code": "TAB"
                }
            }]
        }],
        "dispenseRequest": {
            "numberOfRepeatsAllowed": rng.range(0, 5),
            "quantity": { "value": 30, "unit": "tablet", "system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm", "code": "TAB" },
            "expectedSupplyDuration": { "value": 30, "unit": "days", "system": UCUM, "code": "d" }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> Refs {
        Refs {
            patients: vec!["p1".into(), "p2".into()],
            practitioners: vec!["d1".into()],
        }
    }

    #[test]
    fn same_seed_same_json_different_seed_differs() {
        for rt in ResourceType::ALL {
            let a = generate_string(rt, &mut Rng::new(42), &refs(), None);
            let b = generate_string(rt, &mut Rng::new(42), &refs(), None);
            assert_eq!(a, b, "{rt:?} not deterministic");
            // Some seed among a few must differ (a single pair could collide by chance).
            let differs =
                (43..48).any(|s| generate_string(rt, &mut Rng::new(s), &refs(), None) != a);
            assert!(differs, "{rt:?} ignores the seed");
        }
    }

    fn check_codings(v: &Value, path: &str) {
        match v {
            Value::Object(map) => {
                if let Some(codings) = map.get("coding") {
                    let arr = codings.as_array().expect("coding is an array");
                    assert!(!arr.is_empty(), "{path}: empty coding");
                    for c in arr {
                        assert!(c["system"].is_string(), "{path}: coding without system");
                        assert!(c["code"].is_string(), "{path}: coding without code");
                    }
                }
                for (k, q) in map {
                    if k.ends_with("Quantity") || k == "quantity" {
                        assert!(q["value"].is_number(), "{path}.{k}: no value");
                        assert!(q["unit"].is_string(), "{path}.{k}: no unit");
                        assert!(q["system"].is_string(), "{path}.{k}: no system");
                        assert!(q["code"].is_string(), "{path}.{k}: no code");
                    }
                    check_codings(q, &format!("{path}.{k}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|i| check_codings(i, path)),
            _ => {}
        }
    }

    fn required(rt: ResourceType) -> &'static [&'static str] {
        match rt {
            ResourceType::Patient => &[
                "identifier",
                "name",
                "gender",
                "birthDate",
                "address",
                "telecom",
            ],
            ResourceType::Practitioner => &["identifier", "name", "qualification"],
            ResourceType::Observation => {
                &["status", "category", "code", "subject", "effectiveDateTime"]
            }
            ResourceType::Encounter => &["status", "class", "subject", "period"],
            ResourceType::Condition => &[
                "clinicalStatus",
                "verificationStatus",
                "code",
                "subject",
                "onsetDateTime",
            ],
            ResourceType::MedicationRequest => &[
                "status",
                "intent",
                "medicationCodeableConcept",
                "subject",
                "requester",
                "dosageInstruction",
            ],
        }
    }

    #[test]
    fn resources_are_well_formed() {
        let mut rng = Rng::new(1);
        let mut obs_codes = std::collections::HashSet::new();
        for i in 0..600 {
            let rt = ResourceType::ALL[i % 6];
            let v = generate(rt, &mut rng, &refs(), None);
            assert_eq!(v["resourceType"], rt.name());
            assert!(v.get("id").is_none());
            for field in required(rt) {
                assert!(v.get(*field).is_some(), "{rt:?} misses {field}");
            }
            check_codings(&v, rt.name());
            let len = v.to_string().len();
            assert!((400..=2500).contains(&len), "{rt:?} is {len} bytes");
            match rt {
                ResourceType::Observation => {
                    assert_eq!(v["status"], "final");
                    assert_eq!(v["category"][0]["coding"][0]["code"], "vital-signs");
                    let code = v["code"]["coding"][0]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    if code == "85354-9" {
                        let comps = v["component"].as_array().expect("components");
                        assert_eq!(comps.len(), 2);
                        for c in comps {
                            assert_eq!(c["valueQuantity"]["code"], "mm[Hg]");
                            assert_eq!(c["valueQuantity"]["system"], UCUM);
                        }
                    } else {
                        assert_eq!(v["valueQuantity"]["system"], UCUM);
                    }
                    assert!(
                        v["subject"]["reference"]
                            .as_str()
                            .is_some_and(|r| r.starts_with("Patient/"))
                    );
                    obs_codes.insert(code);
                }
                ResourceType::MedicationRequest => {
                    assert_eq!(v["status"], "active");
                    assert_eq!(v["intent"], "order");
                    assert_eq!(v["requester"]["reference"], "Practitioner/d1");
                }
                ResourceType::Encounter => {
                    assert!(v["class"]["system"].is_string() && v["class"]["code"].is_string());
                }
                _ => {}
            }
        }
        for code in ["85354-9", "29463-7", "59408-5"] {
            assert!(obs_codes.contains(code), "never generated {code}");
        }
    }

    #[test]
    fn update_body_carries_id() {
        let v = generate(
            ResourceType::Condition,
            &mut Rng::new(3),
            &refs(),
            Some("abc"),
        );
        assert_eq!(v["id"], "abc");
        let keys: Vec<&String> = v
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys[0], "resourceType");
        assert_eq!(keys[1], "id");
    }
}
