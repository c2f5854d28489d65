//! `ember dataset`: a deterministic telemonitoring population loaded into any FHIR
//! server through transaction Bundles.
//!
//! Each patient has a CareTeam, a CarePlan and one ServiceRequest per home measure (with
//! its alarm limits), a few Conditions, a few Encounters a month, and an Observation
//! history over the whole period (`--years`, or `--days`):
//! - home telemonitoring, about 4.3 readings a day: blood pressure morning and evening,
//!   SpO2 and pulse every morning, body weight and blood glucose once a week each;
//! - a lab panel of 2 to 7 results every 4 weeks, drawn from 343 real LOINC codes with a
//!   Zipf-like skew (a handful common, most rare), all from the official FHIR R4 package;
//!   the 89 its examples give values for keep their units, value ranges and answers (the
//!   Conditions' SNOMED CT codes come from the same examples; see `codes.rs`).
//!
//! `--deep` adds one patient per entry whose history holds exactly that many
//! Observations: blood pressure, SpO2 and pulse in S sessions a day (one every 24 h / S,
//! see [`deep_sessions`]), weight and glucose weekly and the same labs, from day 0 until
//! exactly that many. Deep patients do not depend on `--patients` or the period, so the
//! same ones exist at every scale; the largest is the heavy patient. No two Observations
//! of one patient share an `effectiveDateTime`, and the per-patient counter `k` of the
//! ids follows it.
//!
//! Every resource has a deterministic id (`dataset-<seed>-pat-<n>`,
//! `dataset-<seed>-obs-<n>-<k>`, `dataset-<seed>-pat-deep-<count>`, ...) and is written
//! with PUT, so re-running the command rewrites the same resources. A shorter period is
//! a prefix of a longer one. Loading runs in three phases so that no Bundle references a
//! resource of a Bundle that may not have been committed yet: the Practitioners, then
//! one group per patient (Patient, CareTeam, CarePlan, ServiceRequests; never split, and
//! cross-referenced through `urn:uuid:` fullUrls), then each patient's Conditions,
//! Encounters and Observations, which reference the earlier resources by id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::codes::{CONDITION_CODES, LAB_CODES, LabValue};
use crate::http::{Conn, REQUEST_TIMEOUT, Target};
use crate::rng::{Rng, mix64};

/// The default `--deep`: four deep patients, the heavy one with 50,000 Observations.
pub const DEFAULT_DEEP: &str = "1000,4000,16000,50000";
/// The largest Observation count of a deep patient.
pub const MAX_DEEP: u64 = 1_000_000;

/// Arguments of `ember dataset`.
#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    /// FHIR base URL of the server to load, e.g. `http://127.0.0.1:8080/fhir`.
    #[arg(long, env = "EMBER_DATASET_URL", required_unless_present_any = ["dry_run", "out"])]
    pub url: Option<String>,
    /// Number of (ordinary) patients.
    #[arg(long, env = "EMBER_DATASET_PATIENTS", default_value_t = 100)]
    pub patients: u64,
    /// Years of history per patient (365 days each; see --days).
    #[arg(long, env = "EMBER_DATASET_YEARS", default_value_t = 1)]
    pub years: u64,
    /// Days of history per patient; overrides --years when given.
    #[arg(long, env = "EMBER_DATASET_DAYS")]
    pub days: Option<u64>,
    /// Deep patients: one extra patient per comma-separated Observation count, with
    /// exactly that many Observations, the same at every --patients and period; the
    /// largest is the heavy patient. Empty or `none`: no deep patients.
    #[arg(long, env = "EMBER_DATASET_DEEP", default_value = DEFAULT_DEEP, value_parser = parse_deep)]
    pub deep: Deep,
    /// Seed of the generator (also part of every id).
    #[arg(long, env = "EMBER_DATASET_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Entries per transaction Bundle.
    #[arg(long, env = "EMBER_DATASET_BUNDLE_SIZE", default_value_t = 500)]
    pub bundle_size: usize,
    /// Concurrent HTTP/1.1 connections.
    #[arg(long, env = "EMBER_DATASET_CONNECTIONS", default_value_t = 4)]
    pub connections: usize,
    /// Print the counts per resource type that would be written, without contacting a server.
    #[arg(long, env = "EMBER_DATASET_DRY_RUN")]
    pub dry_run: bool,
    /// Write the resources to NDJSON files in this folder (`<Type>.ndjson`, one resource
    /// a line, references between them as `Type/id`) instead of loading them into a
    /// server; `ember import` loads the folder.
    #[arg(
        long,
        env = "EMBER_DATASET_OUT",
        value_name = "DIR",
        conflicts_with = "url"
    )]
    pub out: Option<std::path::PathBuf>,
}

/// The deep patients of `--deep`: their Observation counts, ascending and distinct.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deep(pub Vec<u64>);

/// Parses `--deep`: comma-separated counts from 1 to [`MAX_DEEP`], each at most once;
/// an empty string or `none` is no deep patients.
pub fn parse_deep(s: &str) -> Result<Deep, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("none") {
        return Ok(Deep::default());
    }
    let mut counts = Vec::new();
    for part in s.split(',') {
        let n: u64 = part
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not an Observation count"))?;
        if !(1..=MAX_DEEP).contains(&n) {
            return Err(format!(
                "a deep patient has 1 to {MAX_DEEP} Observations, not {n}"
            ));
        }
        if counts.contains(&n) {
            return Err(format!("{n} is given twice"));
        }
        counts.push(n);
    }
    counts.sort_unstable();
    Ok(Deep(counts))
}

const LOINC: &str = "http://loinc.org";
const SNOMED: &str = "http://snomed.info/sct";
const UCUM: &str = "http://unitsofmeasure.org";
const CPR_SYSTEM: &str = "urn:oid:1.2.208.176.1.2";
const THRESHOLD_URL: &str =
    "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-referenceRange";
const THRESHOLD_TYPE_SYSTEM: &str = "urn:oid:1.2.208.184.100.1";
const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// Patients per Practitioner of the pool.
const PATIENTS_PER_PRACTITIONER: u64 = 20;
/// Day 0 of the history: 2024-01-01 (days since 1970-01-01).
const START_DAY: i64 = 19_723;
/// Days of one cycle of clinical care: one lab panel and its visit, two virtual follow-ups.
const CYCLE_DAYS: u64 = 28;
/// Start minutes (first, spread) of an ordinary patient's morning and evening sessions
/// and of a lab panel. A session takes one minute per reading, so they never overlap.
const MORNING: (u64, u64) = (7 * 60, 180);
const EVENING: (u64, u64) = (19 * 60, 180);
const LAB_WINDOW: (u64, u64) = (10 * 60 + 30, 360);
/// Most sessions a day of a deep patient (one every 30 minutes).
const MAX_SESSIONS: u64 = 48;

// Salts of the generator's random streams.
const SALT_PRACTITIONER: u64 = 1;
const SALT_DEMOGRAPHICS: u64 = 2;
const SALT_WALK: u64 = 10;
const SALT_TIME: u64 = 30;
const SALT_PANEL: u64 = 31;
const SALT_LAB_VALUE: u64 = 32;
const SALT_ENCOUNTER: u64 = 33;
const SALT_CONDITION: u64 = 34;

/// When a home measure is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    /// Every session: morning and evening for an ordinary patient.
    Twice,
    /// Every session of a deep patient; the morning one of an ordinary patient.
    Daily,
    /// In the first session of the days with `day % 7 == offset`.
    Weekly(u64),
}

/// One home measurement type.
struct Measure {
    key: &'static str,
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    ucum: &'static str,
    schedule: Schedule,
    /// Decimal places of the values.
    decimals: u32,
    /// Normal baseline range of a patient, and the random walk's step and bounds.
    baseline: (f64, f64),
    step: f64,
    bounds: (f64, f64),
    /// Yellow (GAL) and red (RAL) alarm limits, (low, high): a value at or beyond a red
    /// limit is red, between a red and a yellow limit yellow (see `alarm_zones`).
    gal: (f64, f64),
    ral: (f64, f64),
}

const MEASURES: [Measure; 5] = [
    Measure {
        key: "bp",
        loinc: "85354-9",
        display: "Blood pressure panel with all children optional",
        unit: "mmHg",
        ucum: "mm[Hg]",
        schedule: Schedule::Twice,
        decimals: 0,
        baseline: (118.0, 145.0),
        step: 6.0,
        bounds: (80.0, 200.0),
        gal: (100.0, 150.0),
        ral: (90.0, 170.0),
    },
    Measure {
        key: "spo2",
        loinc: "59408-5",
        display: "Oxygen saturation in Arterial blood by Pulse oximetry",
        unit: "%",
        ucum: "%",
        schedule: Schedule::Daily,
        decimals: 0,
        baseline: (92.0, 98.0),
        step: 1.2,
        bounds: (75.0, 100.0),
        gal: (92.0, 100.0),
        ral: (88.0, 100.0),
    },
    Measure {
        key: "pulse",
        loinc: "8867-4",
        display: "Heart rate",
        unit: "/min",
        ucum: "/min",
        schedule: Schedule::Daily,
        decimals: 0,
        baseline: (58.0, 88.0),
        step: 4.0,
        bounds: (35.0, 180.0),
        gal: (50.0, 100.0),
        ral: (40.0, 120.0),
    },
    Measure {
        key: "weight",
        loinc: "29463-7",
        display: "Body weight",
        unit: "kg",
        ucum: "kg",
        schedule: Schedule::Weekly(0),
        decimals: 1,
        baseline: (58.0, 105.0),
        step: 0.8,
        bounds: (35.0, 180.0),
        gal: (50.0, 110.0),
        ral: (45.0, 120.0),
    },
    Measure {
        key: "glucose",
        loinc: "15074-8",
        display: "Glucose [Moles/volume] in Blood",
        unit: "mmol/L",
        ucum: "mmol/L",
        schedule: Schedule::Weekly(3),
        decimals: 1,
        baseline: (5.0, 9.0),
        step: 0.9,
        bounds: (2.0, 25.0),
        gal: (4.0, 10.0),
        ral: (3.0, 15.0),
    },
];

impl Measure {
    /// Whether session `j` of `day` of `key` takes this measure.
    fn in_session(&self, key: PatientKey, j: u64, day: u64) -> bool {
        match (self.schedule, key) {
            (Schedule::Twice, _) | (Schedule::Daily, PatientKey::Deep(_)) => true,
            (Schedule::Daily, PatientKey::Ordinary(_)) => j == 0,
            (Schedule::Weekly(offset), _) => j == 0 && day % 7 == offset,
        }
    }

    /// (every this many days, from this day, readings on such a day) for an ordinary patient.
    fn ordinary_rhythm(&self) -> (u64, u64, u64) {
        match self.schedule {
            Schedule::Twice => (1, 0, 2),
            Schedule::Daily => (1, 0, 1),
            Schedule::Weekly(offset) => (7, offset, 1),
        }
    }
}

/// Diastolic from systolic: roughly 0.62 × systolic plus noise.
fn diastolic(systolic: f64, rng: &mut Rng) -> f64 {
    (systolic * 0.62 + rng.below(9) as f64 - 4.0).round()
}

/// The kinds of Encounter: v3 ActCode class and SNOMED CT type, as in the R4 examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EncounterKind {
    /// The clinic visit of a cycle, around its lab panel.
    Visit,
    /// A scheduled video consultation on the telemonitoring readings.
    FollowUp,
    /// A contact the patient asked for.
    PatientInitiated,
}

impl EncounterKind {
    fn class(self) -> (&'static str, &'static str) {
        match self {
            EncounterKind::Visit => ("AMB", "ambulatory"),
            EncounterKind::FollowUp | EncounterKind::PatientInitiated => ("VR", "virtual"),
        }
    }

    fn kind(self) -> (&'static str, &'static str) {
        match self {
            EncounterKind::Visit | EncounterKind::FollowUp => ("11429006", "Consultation"),
            EncounterKind::PatientInitiated => ("270427003", "Patient-initiated encounter"),
        }
    }
}

/// One Encounter of a patient's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EncounterSpec {
    day: u64,
    /// Start, seconds into the day.
    second: u64,
    minutes: u64,
    kind: EncounterKind,
}

/// The lab panel of one cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Panel {
    day: u64,
    minute: u64,
    /// Indexes into [`LAB_CODES`], distinct.
    codes: Vec<u16>,
}

const GIVEN_F: &[&str] = &[
    "Anna", "Kirsten", "Hanne", "Mette", "Inge", "Lene", "Karen", "Birgit", "Susanne", "Lone",
];
const GIVEN_M: &[&str] = &[
    "Peter", "Jens", "Lars", "Michael", "Henrik", "Søren", "Niels", "Poul", "Jørgen", "Hans",
];
const FAMILY: &[&str] = &[
    "Nielsen",
    "Jensen",
    "Hansen",
    "Pedersen",
    "Andersen",
    "Christensen",
    "Larsen",
    "Sørensen",
    "Rasmussen",
    "Jørgensen",
    "Petersen",
    "Madsen",
];

/// A resource with its deterministic id and fullUrl.
#[derive(Debug, Clone)]
pub struct Item {
    pub res_type: &'static str,
    pub id: String,
    pub full_url: String,
    pub resource: Value,
}

/// Days of history of `--days`, or else of `--years` (365 days each).
pub fn period_days(years: u64, days: Option<u64>) -> u64 {
    days.unwrap_or(years.saturating_mul(365))
}

/// The period as the reports print it: `N year(s)` when given as years, `N day(s)` when
/// given as days.
pub fn describe_period(years: u64, days: Option<u64>) -> String {
    match days {
        Some(d) => format!("{d} day(s)"),
        None => format!("{years} year(s)"),
    }
}

/// Sessions a day of a deep patient with `count` Observations: one per 1,100 (about a
/// year of three readings a session), at most 48 (one every 30 minutes), so that a
/// history of up to 50,000 Observations spans about a year and larger ones longer.
pub fn deep_sessions(count: u64) -> u64 {
    count.div_ceil(1_100).clamp(1, MAX_SESSIONS)
}

/// A patient of the data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatientKey {
    /// Patient `n` of `--patients`.
    Ordinary(u64),
    /// The deep patient with this many Observations.
    Deep(u64),
}

impl PatientKey {
    /// The part of its resources' ids after the kind: `7`, `deep-50000`.
    pub fn label(self) -> String {
        match self {
            PatientKey::Ordinary(n) => n.to_string(),
            PatientKey::Deep(count) => format!("deep-{count}"),
        }
    }

    /// A number of its own for the random streams.
    fn index(self) -> u64 {
        match self {
            PatientKey::Ordinary(n) => n,
            PatientKey::Deep(count) => (1 << 63) | count,
        }
    }
}

/// One Observation of a patient's history: when, and which code. A patient's
/// Observations in time order are its timeline, `k` counting them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    /// Day of the history (day 0 is [`Generator::day`]`(0)`).
    pub day: u32,
    /// Seconds into the day (UTC).
    pub second: u32,
    /// A home measure (`< MEASURES.len()`), else a lab code after them.
    code: u16,
}

impl Reading {
    /// Index of its home measure in [`Generator::measures`], or `None` for a lab result.
    pub fn measure(&self) -> Option<usize> {
        let i = usize::from(self.code);
        (i < MEASURES.len()).then_some(i)
    }

    /// Its LOINC code.
    pub fn loinc(&self) -> &'static str {
        match self.measure() {
            Some(i) => MEASURES[i].loinc,
            None => LAB_CODES[usize::from(self.code) - MEASURES.len()].loinc,
        }
    }

    /// Its `effectiveDateTime`, `YYYY-MM-DDThh:mm:ssZ`.
    pub fn effective(&self) -> String {
        date_time(u64::from(self.day), u64::from(self.second))
    }
}

/// The generator: pure functions of `(seed, patients, days, deep)`.
#[derive(Debug, Clone)]
pub struct Generator {
    pub seed: u64,
    /// Ordinary patients (`--patients`).
    pub patients: u64,
    /// Days of history per ordinary patient (`--years` is 365 days each).
    pub days: u64,
    /// Observation counts of the deep patients, ascending and distinct (see [`parse_deep`]).
    pub deep: Vec<u64>,
}

impl Generator {
    fn id(&self, kind: &str, rest: &str) -> String {
        format!("dataset-{}-{kind}-{rest}", self.seed)
    }

    fn rng(&self, salt: u64, index: u64) -> Rng {
        Rng::for_worker(self.seed, salt, index as usize)
    }

    /// The random stream `salt` of `key`'s `sub`-th day, cycle, ...
    fn sub_rng(&self, salt: u64, key: PatientKey, sub: u64) -> Rng {
        let k = mix64(key.index() ^ mix64(sub ^ mix64(salt.wrapping_add(0x5EED))));
        Rng::new(mix64(self.seed ^ k))
    }

    fn practitioner_count(&self) -> u64 {
        self.patients.div_ceil(PATIENTS_PER_PRACTITIONER) + u64::from(!self.deep.is_empty())
    }

    /// Every patient: the ordinary ones, then the deep ones, smallest first.
    pub fn patient_keys(&self) -> impl Iterator<Item = PatientKey> + '_ {
        (0..self.patients)
            .map(PatientKey::Ordinary)
            .chain(self.deep.iter().map(|&c| PatientKey::Deep(c)))
    }

    /// Counts per resource type.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let all = self.patients + self.deep.len() as u64;
        let (mut conditions, mut encounters, mut observations) = (0, 0, 0);
        for key in self.patient_keys() {
            conditions += self.condition_count(key);
            encounters += self.encounter_specs(key).len() as u64;
            observations += self.observation_count(key);
        }
        BTreeMap::from([
            ("Practitioner", self.practitioner_count()),
            ("Patient", all),
            ("CareTeam", all),
            ("CarePlan", all),
            ("ServiceRequest", all * MEASURES.len() as u64),
            ("Condition", conditions),
            ("Encounter", encounters),
            ("Observation", observations),
        ])
    }

    fn item(&self, res_type: &'static str, id: String, mut resource: Value) -> Item {
        let h = mix64(self.seed ^ mix64(fnv(&id)));
        let l = mix64(h ^ 0x5EED);
        let uuid = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            h >> 32,
            (h >> 16) & 0xffff,
            h & 0xfff,
            0x8000 | ((l >> 48) & 0x3fff),
            l & 0xffff_ffff_ffff
        );
        resource["id"] = Value::String(id.clone());
        Item {
            res_type,
            id,
            full_url: format!("urn:uuid:{uuid}"),
            resource,
        }
    }

    fn practitioner_item(&self, id: String, index: u64) -> Item {
        let mut rng = self.rng(SALT_PRACTITIONER, index);
        let female = rng.chance(50);
        let given = rng.pick(if female { GIVEN_F } else { GIVEN_M });
        let family = rng.pick(FAMILY);
        self.item(
            "Practitioner",
            id,
            json!({
                "resourceType": "Practitioner",
                "active": true,
                "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
                "gender": if female { "female" } else { "male" },
            }),
        )
    }

    /// The Practitioners: the pool (one per 20 ordinary patients), then the deep
    /// patients' own when there are any.
    pub fn practitioner_items(&self) -> impl Iterator<Item = Item> + '_ {
        let pool = self.patients.div_ceil(PATIENTS_PER_PRACTITIONER);
        (0..pool).map(|k| self.practitioner(k)).chain(
            (!self.deep.is_empty())
                .then(|| self.practitioner_item(self.deep_practitioner_id(), u64::MAX)),
        )
    }

    /// Practitioner `k` of the pool.
    pub fn practitioner(&self, k: u64) -> Item {
        self.practitioner_item(self.practitioner_id(k), k)
    }

    fn careteam_practitioner(&self, key: PatientKey) -> String {
        match key {
            PatientKey::Ordinary(n) => self.practitioner_id(n / PATIENTS_PER_PRACTITIONER),
            PatientKey::Deep(_) => self.deep_practitioner_id(),
        }
    }

    /// The Patient, CareTeam, ServiceRequests and CarePlan of `key`, referencing each
    /// other through their `urn:uuid:` fullUrls.
    pub fn patient_group(&self, key: PatientKey) -> Vec<Item> {
        let (mut rng, female, given, family) = self.demographics(key);
        // Born 1935..1975.
        let birth = date(-12_784 + rng.below(14_600) as i64);
        let patient = self.item(
            "Patient",
            self.patient_id_of(key),
            json!({
                "resourceType": "Patient",
                "identifier": [{"system": CPR_SYSTEM, "value": self.identifier_of(key)}],
                "active": true,
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": if female { "female" } else { "male" },
                "birthDate": birth,
            }),
        );
        let prac = format!("Practitioner/{}", self.careteam_practitioner(key));
        let start = date(START_DAY);
        let careteam = self.item(
            "CareTeam",
            self.careteam_id(key),
            json!({
                "resourceType": "CareTeam",
                "status": "active",
                "name": "Telemonitoring team",
                "subject": {"reference": patient.full_url},
                "period": {"start": start},
                "participant": [{"member": {"reference": prac}}],
            }),
        );
        let sr_items: Vec<Item> = MEASURES
            .iter()
            .map(|m| {
                self.item(
                    "ServiceRequest",
                    self.service_request_id(key, m),
                    Value::Null,
                )
            })
            .collect();
        let careplan = self.item(
            "CarePlan",
            self.careplan_id(key),
            json!({
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "title": "Telemonitoring",
                "subject": {"reference": patient.full_url},
                "period": {"start": start},
                "careTeam": [{"reference": careteam.full_url}],
                "activity": sr_items.iter().map(|s| json!({"reference": {"reference": s.full_url}})).collect::<Vec<_>>(),
            }),
        );
        let mut items = vec![patient, careteam];
        let end = date(START_DAY + self.days_of(key) as i64);
        for (m, mut sr) in MEASURES.iter().zip(sr_items) {
            let (frequency, unit) = match m.schedule {
                Schedule::Twice => (2, "d"),
                Schedule::Daily => (1, "d"),
                Schedule::Weekly(_) => (1, "wk"),
            };
            sr.resource = json!({
                "resourceType": "ServiceRequest",
                "id": sr.id,
                "extension": alarm_zones(m),
                "basedOn": [{"reference": careplan.full_url}],
                "status": "active",
                "intent": "order",
                "code": {"coding": [{"system": LOINC, "code": m.loinc, "display": m.display}]},
                "subject": {"reference": items[0].full_url},
                "occurrenceTiming": {"repeat": {
                    "boundsPeriod": {"start": start, "end": end},
                    "frequency": frequency, "period": 1, "periodUnit": unit,
                }},
                "authoredOn": start,
                "requester": {"reference": prac},
            });
            items.push(sr);
        }
        items.push(careplan);
        items
    }

    fn service_request_id(&self, key: PatientKey, m: &Measure) -> String {
        self.order_id(key, m.key)
    }

    /// Id of `key`'s ServiceRequest for the home measure `measure` (`bp`, `spo2`,
    /// `pulse`, `weight` or `glucose`).
    pub fn order_id(&self, key: PatientKey, measure: &str) -> String {
        self.id("sr", &format!("{}-{measure}", key.label()))
    }

    /// Id of `key`'s CareTeam.
    pub fn careteam_id(&self, key: PatientKey) -> String {
        self.id("ct", &key.label())
    }

    /// Id of `key`'s CarePlan.
    pub fn careplan_id(&self, key: PatientKey) -> String {
        self.id("cp", &key.label())
    }

    /// Conditions of `key`: 1 to 4, distinct, drawn with a Zipf-like skew.
    fn condition_codes(&self, key: PatientKey) -> (Rng, Vec<u16>) {
        let mut rng = self.sub_rng(SALT_CONDITION, key, 0);
        let n = 1 + rng.below(4);
        let codes = zipf_distinct(&mut rng, CONDITION_CODES.len(), n);
        (rng, codes)
    }

    fn condition_count(&self, key: PatientKey) -> u64 {
        self.condition_codes(key).1.len() as u64
    }

    /// The Conditions of `key` (its problem list, diagnosed before day 0).
    pub fn conditions(&self, key: PatientKey) -> Vec<Item> {
        let (mut rng, codes) = self.condition_codes(key);
        let subject = format!("Patient/{}", self.patient_id_of(key));
        let asserter = format!("Practitioner/{}", self.careteam_practitioner(key));
        codes
            .iter()
            .enumerate()
            .map(|(i, &c)| {
                let (code, display) = CONDITION_CODES[usize::from(c)];
                let onset = date(START_DAY - 30 - rng.below(15 * 365) as i64);
                self.item(
                    "Condition",
                    self.id("cond", &format!("{}-{i}", key.label())),
                    json!({
                        "resourceType": "Condition",
                        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                        "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
                        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item", "display": "Problem List Item"}]}],
                        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}]},
                        "subject": {"reference": subject},
                        "onsetDateTime": onset,
                        "recordedDate": onset,
                        "asserter": {"reference": asserter},
                    }),
                )
            })
            .collect()
    }

    /// The lab panel of cycle `c` of `key`: a day of the cycle, 2 to 7 distinct codes.
    fn panel(&self, key: PatientKey, c: u64) -> Panel {
        let mut rng = self.sub_rng(SALT_PANEL, key, c);
        let day = c * CYCLE_DAYS + rng.below(CYCLE_DAYS);
        let minute = LAB_WINDOW.0 + rng.below(LAB_WINDOW.1);
        let size = 2 + rng.below(6);
        let codes = zipf_distinct(&mut rng, LAB_CODES.len(), size);
        Panel { day, minute, codes }
    }

    /// Sessions a day of `key`.
    fn sessions(&self, key: PatientKey) -> u64 {
        match key {
            PatientKey::Ordinary(_) => 2,
            PatientKey::Deep(count) => deep_sessions(count),
        }
    }

    /// Home readings of `key` on `day`.
    fn home_readings_on(&self, key: PatientKey, day: u64) -> u64 {
        (0..self.sessions(key))
            .map(|j| {
                MEASURES
                    .iter()
                    .filter(|m| m.in_session(key, j, day))
                    .count() as u64
            })
            .sum()
    }

    /// Appends the readings of `key` on `day` to `out`, in time order; `panel` is the
    /// panel of the day's cycle.
    fn day_readings(&self, key: PatientKey, day: u64, panel: &Panel, out: &mut Vec<Reading>) {
        let start = out.len();
        let mut rng = self.sub_rng(SALT_TIME, key, day);
        let sessions = self.sessions(key);
        for j in 0..sessions {
            let minute = match key {
                PatientKey::Ordinary(_) => {
                    let (first, spread) = if j == 0 { MORNING } else { EVENING };
                    first + rng.below(spread)
                }
                PatientKey::Deep(_) => {
                    let slot = 24 * 60 / sessions;
                    j * slot + rng.below(slot - 10)
                }
            };
            // One minute per reading, on the full minute.
            let mut second = minute * 60;
            for (i, m) in MEASURES.iter().enumerate() {
                if m.in_session(key, j, day) {
                    out.push(reading(day, second, i));
                    second += 60;
                }
            }
        }
        if panel.day == day {
            // The results of a panel half a minute apart from any session reading.
            for (i, &c) in panel.codes.iter().enumerate() {
                let second = panel.minute * 60 + 30 + i as u64;
                out.push(reading(day, second, MEASURES.len() + usize::from(c)));
            }
        }
        out[start..].sort_unstable_by_key(|r| r.second);
    }

    /// The timeline of `key`: all its Observations in time order (`k` is the index).
    /// An ordinary patient's covers the period; a deep patient's is cut after exactly
    /// its count.
    pub fn timeline(&self, key: PatientKey) -> Vec<Reading> {
        let mut out = Vec::new();
        let limit = match key {
            PatientKey::Ordinary(_) => None,
            PatientKey::Deep(count) => Some(count as usize),
        };
        let end = self.days_of(key);
        for c in 0..end.div_ceil(CYCLE_DAYS) {
            let panel = self.panel(key, c);
            for day in c * CYCLE_DAYS..((c + 1) * CYCLE_DAYS).min(end) {
                self.day_readings(key, day, &panel, &mut out);
                if let Some(limit) = limit.filter(|l| out.len() >= *l) {
                    out.truncate(limit);
                    return out;
                }
            }
        }
        out
    }

    /// Days of history of `key`: the period for an ordinary patient, up to its last
    /// Observation's day for a deep one.
    pub fn days_of(&self, key: PatientKey) -> u64 {
        match key {
            PatientKey::Ordinary(_) => self.days,
            PatientKey::Deep(count) => {
                let mut total = 0;
                for c in 0.. {
                    let panel = self.panel(key, c);
                    for day in c * CYCLE_DAYS..(c + 1) * CYCLE_DAYS {
                        total += self.home_readings_on(key, day);
                        if panel.day == day {
                            total += panel.codes.len() as u64;
                        }
                        if total >= count {
                            return day + 1;
                        }
                    }
                }
                unreachable!("every day has readings")
            }
        }
    }

    /// Observations of `key` (the length of its timeline).
    pub fn observation_count(&self, key: PatientKey) -> u64 {
        match key {
            PatientKey::Deep(count) => count,
            PatientKey::Ordinary(_) => {
                let home: u64 = MEASURES.iter().map(|m| self.ordinary_from(m, 0)).sum();
                let labs: u64 = (0..self.days.div_ceil(CYCLE_DAYS))
                    .map(|c| self.panel(key, c))
                    .filter(|p| p.day < self.days)
                    .map(|p| p.codes.len() as u64)
                    .sum();
                home + labs
            }
        }
    }

    /// Readings of `m` of an ordinary patient on day `from_day` or later.
    fn ordinary_from(&self, m: &Measure, from_day: u64) -> u64 {
        let (every, offset, per_day) = m.ordinary_rhythm();
        let before = |x: u64| x.saturating_sub(offset).div_ceil(every);
        (before(self.days) - before(from_day.min(self.days))) * per_day
    }

    /// The Encounters of `key` in time order: per cycle the clinic visit around the lab
    /// panel, two video follow-ups, and now and then a contact the patient asked for.
    fn encounter_specs(&self, key: PatientKey) -> Vec<EncounterSpec> {
        let end = self.days_of(key);
        let mut out = Vec::new();
        for c in 0..end.div_ceil(CYCLE_DAYS) {
            let panel = self.panel(key, c);
            let mut rng = self.sub_rng(SALT_ENCOUNTER, key, c);
            let first = c * CYCLE_DAYS;
            let mut cycle = vec![
                EncounterSpec {
                    day: panel.day,
                    second: (panel.minute - 15) * 60,
                    minutes: 40,
                    kind: EncounterKind::Visit,
                },
                EncounterSpec {
                    day: first + 7 + rng.below(7),
                    second: (13 * 60 + rng.below(120)) * 60,
                    minutes: 20,
                    kind: EncounterKind::FollowUp,
                },
                EncounterSpec {
                    day: first + 18 + rng.below(7),
                    second: (13 * 60 + rng.below(120)) * 60,
                    minutes: 20,
                    kind: EncounterKind::FollowUp,
                },
            ];
            if rng.chance(30) {
                cycle.push(EncounterSpec {
                    day: first + rng.below(CYCLE_DAYS),
                    second: (8 * 60 + rng.below(600)) * 60,
                    minutes: 15,
                    kind: EncounterKind::PatientInitiated,
                });
            }
            cycle.sort_by_key(|e| (e.day, e.second));
            out.extend(cycle.into_iter().filter(|e| e.day < end));
        }
        out
    }

    /// The Encounters of `key`, in time order.
    pub fn encounters(&self, key: PatientKey) -> Vec<Item> {
        let subject = format!("Patient/{}", self.patient_id_of(key));
        let prac = format!("Practitioner/{}", self.careteam_practitioner(key));
        self.encounter_specs(key)
            .into_iter()
            .enumerate()
            .map(|(j, e)| {
                let (class, class_display) = e.kind.class();
                let (code, display) = e.kind.kind();
                self.item(
                    "Encounter",
                    self.id("enc", &format!("{}-{j}", key.label())),
                    json!({
                        "resourceType": "Encounter",
                        "status": "finished",
                        "class": {"system": ACT_CODE, "code": class, "display": class_display},
                        "type": [{"coding": [{"system": SNOMED, "code": code, "display": display}]}],
                        "subject": {"reference": subject},
                        "participant": [{"individual": {"reference": prac}}],
                        "period": {
                            "start": date_time(e.day, e.second),
                            "end": date_time(e.day, e.second + e.minutes * 60),
                        },
                    }),
                )
            })
            .collect()
    }

    /// The Observations of `key`, in timeline order (`k` counts them), generated one by
    /// one.
    pub fn observation_items(&self, key: PatientKey) -> impl Iterator<Item = Item> + '_ {
        let mut walks: Vec<(Rng, f64, f64)> = MEASURES
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut rng = self.rng(SALT_WALK + i as u64, key.index());
                let base = m.baseline.0 + unit(&mut rng) * (m.baseline.1 - m.baseline.0);
                (rng, base, base)
            })
            .collect();
        let subject = format!("Patient/{}", self.patient_id_of(key));
        let based_on: Vec<String> = MEASURES
            .iter()
            .map(|m| format!("ServiceRequest/{}", self.service_request_id(key, m)))
            .collect();
        // The values of the current cycle's lab panel, drawn in the panel's order.
        let mut lab: Option<(u64, Rng)> = None;
        self.timeline(key)
            .into_iter()
            .enumerate()
            .map(move |(k, r)| {
                // Fields in the usual order: resourceType, status, basedOn, category, code,
                // subject, effectiveDateTime, value or component.
                let mut obs = serde_json::Map::new();
                obs.insert("resourceType".into(), json!("Observation"));
                obs.insert("status".into(), json!("final"));
                let value: (&str, Value) = match r.measure() {
                    Some(i) => {
                        let m = &MEASURES[i];
                        let (rng, base, value) = &mut walks[i];
                        // A mean-reverting random walk: mostly near the baseline, now and
                        // then across the alarm limits.
                        let noise = (unit(rng) + unit(rng) + unit(rng) - 1.5) * 2.0 * m.step;
                        *value = (*value + 0.15 * (*base - *value) + noise)
                            .clamp(m.bounds.0, m.bounds.1);
                        obs.insert("basedOn".into(), json!([{"reference": based_on[i]}]));
                        obs.insert("category".into(), category("vital-signs", "Vital Signs"));
                        obs.insert("code".into(), coding(LOINC, m.loinc, m.display));
                        if m.key == "bp" {
                            let dia = diastolic(*value, rng);
                            let component = json!([
                                {"code": coding(LOINC, "8480-6", "Systolic blood pressure"),
                                 "valueQuantity": quantity(m, *value)},
                                {"code": coding(LOINC, "8462-4", "Diastolic blood pressure"),
                                 "valueQuantity": quantity(m, dia)},
                            ]);
                            ("component", component)
                        } else {
                            ("valueQuantity", quantity(m, *value))
                        }
                    }
                    None => {
                        let lab_code = &LAB_CODES[usize::from(r.code) - MEASURES.len()];
                        let cycle = u64::from(r.day) / CYCLE_DAYS;
                        if lab.as_ref().is_none_or(|(c, _)| *c != cycle) {
                            lab = Some((cycle, self.sub_rng(SALT_LAB_VALUE, key, cycle)));
                        }
                        let rng = &mut lab.as_mut().expect("set above").1;
                        obs.insert("category".into(), category("laboratory", "Laboratory"));
                        obs.insert(
                            "code".into(),
                            coding(LOINC, lab_code.loinc, lab_code.display),
                        );
                        match lab_code.value {
                            LabValue::Quantity {
                                unit: u,
                                ucum,
                                low,
                                high,
                                decimals,
                            } => {
                                let v = round_to(low + unit(rng) * (high - low), decimals);
                                let mut q = json!({"value": v, "unit": u});
                                if let Some(code) = ucum {
                                    q["system"] = json!(UCUM);
                                    q["code"] = json!(code);
                                }
                                ("valueQuantity", q)
                            }
                            LabValue::Concept(answers) => {
                                let (system, code, display) = *rng.pick(answers);
                                ("valueCodeableConcept", coding(system, code, display))
                            }
                        }
                    }
                };
                obs.insert("subject".into(), json!({"reference": subject}));
                obs.insert("effectiveDateTime".into(), json!(r.effective()));
                obs.insert(value.0.into(), value.1);
                let obs = Value::Object(obs);
                self.item("Observation", self.observation_id_of(key, k as u64), obs)
            })
    }

    /// The Observations of `key` (see [`Generator::observation_items`]).
    pub fn observations(&self, key: PatientKey) -> Vec<Item> {
        self.observation_items(key).collect()
    }

    /// What phase 3 writes for `key`: its Conditions, Encounters and Observations.
    pub fn history(&self, key: PatientKey) -> impl Iterator<Item = Item> + '_ {
        self.conditions(key)
            .into_iter()
            .chain(self.encounters(key))
            .chain(self.observation_items(key))
    }
}

fn reading(day: u64, second: u64, code: usize) -> Reading {
    Reading {
        day: day as u32,
        second: second as u32,
        code: code as u16,
    }
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": display}]})
}

fn category(code: &str, display: &str) -> Value {
    json!([{"coding": [{"system": CATEGORY_SYSTEM, "code": code, "display": display}]}])
}

/// `count` distinct indexes below `len`, index `r` drawn with weight `1 / (r + 1)`.
fn zipf_distinct(rng: &mut Rng, len: usize, count: u64) -> Vec<u16> {
    let total: f64 = (1..=len).map(|r| 1.0 / r as f64).sum();
    let mut out: Vec<u16> = Vec::new();
    while (out.len() as u64) < count.min(len as u64) {
        let mut u = unit(rng) * total;
        let mut pick = len - 1;
        for r in 0..len {
            u -= 1.0 / (r + 1) as f64;
            if u < 0.0 {
                pick = r;
                break;
            }
        }
        let pick = pick as u16;
        if !out.contains(&pick) {
            out.push(pick);
        }
    }
    out
}

/// What a reader of the data set (`ember bench-search`) needs to know about patient `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientFacts {
    pub id: String,
    pub identifier_system: &'static str,
    pub identifier_value: String,
    pub family: &'static str,
    pub given: &'static str,
    /// Index of the Practitioner in the patient's CareTeam.
    pub practitioner: u64,
}

/// One home measure as a reader of the data set sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureFacts {
    pub loinc: &'static str,
    /// For an ordinary patient: on the days `d` with `d % every_days == day_offset`...
    pub every_days: u64,
    pub day_offset: u64,
    /// ...this many readings.
    pub per_day: u64,
}

/// The code system of every Observation and ServiceRequest code.
pub const LOINC_SYSTEM: &str = LOINC;

/// The facts of the data set that queries against it depend on. The generator uses the
/// same functions, so a reader and the data set cannot drift apart.
impl Generator {
    /// `key`'s draws: the generator's rng (to continue from), female, given, family.
    fn demographics(&self, key: PatientKey) -> (Rng, bool, &'static str, &'static str) {
        let mut rng = self.rng(SALT_DEMOGRAPHICS, key.index());
        let female = rng.chance(50);
        let given = rng.pick(if female { GIVEN_F } else { GIVEN_M });
        let family = rng.pick(FAMILY);
        (rng, female, given, family)
    }

    /// Id of ordinary patient `n`.
    pub fn patient_id(&self, n: u64) -> String {
        self.patient_id_of(PatientKey::Ordinary(n))
    }

    /// Id of any patient.
    pub fn patient_id_of(&self, key: PatientKey) -> String {
        self.id("pat", &key.label())
    }

    /// Id of Practitioner `k` of the pool.
    pub fn practitioner_id(&self, k: u64) -> String {
        self.id("prac", &k.to_string())
    }

    /// Id of the deep patients' Practitioner.
    pub fn deep_practitioner_id(&self) -> String {
        self.id("prac", "deep")
    }

    fn identifier_of(&self, key: PatientKey) -> String {
        let seed = self.seed % 10_000;
        match key {
            PatientKey::Ordinary(n) => format!("DS{seed:04}{n:08}"),
            PatientKey::Deep(count) => format!("DS{seed:04}D{count:07}"),
        }
    }

    /// Id, identifier, name and Practitioner of ordinary patient `n`, as `patient_group`
    /// writes them.
    pub fn patient_facts(&self, n: u64) -> PatientFacts {
        let (_, _, given, family) = self.demographics(PatientKey::Ordinary(n));
        PatientFacts {
            id: self.patient_id(n),
            identifier_system: CPR_SYSTEM,
            identifier_value: self.identifier_of(PatientKey::Ordinary(n)),
            family,
            given,
            practitioner: n / PATIENTS_PER_PRACTITIONER,
        }
    }

    /// Id of the `k`-th Observation of ordinary patient `n`.
    pub fn observation_id(&self, n: u64, k: u64) -> String {
        self.observation_id_of(PatientKey::Ordinary(n), k)
    }

    /// Id of the `k`-th Observation of `key`'s timeline.
    pub fn observation_id_of(&self, key: PatientKey, k: u64) -> String {
        self.id("obs", &format!("{}-{k}", key.label()))
    }

    /// Number of Practitioners: the pool, and the deep patients' own if there are any.
    pub fn practitioners(&self) -> u64 {
        self.practitioner_count()
    }

    /// The ordinary patients whose CareTeam has Practitioner `k` of the pool.
    pub fn patients_of_practitioner(&self, k: u64) -> std::ops::Range<u64> {
        let start = (k * PATIENTS_PER_PRACTITIONER).min(self.patients);
        start..((k + 1) * PATIENTS_PER_PRACTITIONER).min(self.patients)
    }

    /// The home measures, in the order a session takes them ([`Reading::measure`]
    /// indexes this list).
    pub fn measures() -> Vec<MeasureFacts> {
        MEASURES
            .iter()
            .map(|m| {
                let (every_days, day_offset, per_day) = m.ordinary_rhythm();
                MeasureFacts {
                    loinc: m.loinc,
                    every_days,
                    day_offset,
                    per_day,
                }
            })
            .collect()
    }

    /// Days of history of an ordinary patient (day 0 is [`Generator::day`]`(0)`).
    pub fn measurement_days(&self) -> u64 {
        self.days
    }

    /// `YYYY-MM-DD` of day `d` of the history.
    pub fn day(d: u64) -> String {
        date(START_DAY + d as i64)
    }

    /// Observations of one ordinary patient with `measure`'s code on day `from_day` or later.
    pub fn observations_from(&self, measure: &MeasureFacts, from_day: u64) -> u64 {
        MEASURES
            .iter()
            .find(|m| m.loinc == measure.loinc)
            .map_or(0, |m| self.ordinary_from(m, from_day))
    }
}

/// Uniform in [0, 1).
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn round_to(value: f64, decimals: u32) -> Value {
    if decimals == 0 {
        json!(value.round() as i64)
    } else {
        let f = 10f64.powi(decimals as i32);
        json!((value * f).round() / f)
    }
}

/// A measure's alarm zones as threshold extensions: red at or beyond its red limits,
/// yellow from a red limit to the yellow one on the same side. A side whose limit is
/// the largest value the measure can take has no zone. Blood pressure zones are for
/// the systolic component.
fn alarm_zones(m: &Measure) -> Vec<Value> {
    let component = (m.key == "bp").then(|| json!({"system": LOINC, "code": "8480-6"}));
    let zone = |kind: &str, low: Option<f64>, high: Option<f64>| {
        let mut codings = vec![json!({"system": THRESHOLD_TYPE_SYSTEM, "code": kind})];
        codings.extend(component.clone());
        let mut parts = Vec::new();
        if let Some(low) = low {
            parts.push(json!({"url": "low", "valueQuantity": quantity(m, low)}));
        }
        if let Some(high) = high {
            parts.push(json!({"url": "high", "valueQuantity": quantity(m, high)}));
        }
        parts.push(json!({"url": "type", "valueCodeableConcept": {"coding": codings}}));
        json!({"url": THRESHOLD_URL, "extension": parts})
    };
    let top = m.bounds.1;
    let mut zones = vec![
        zone("RAL", None, Some(m.ral.0)),
        zone("GAL", Some(m.ral.0), Some(m.gal.0)),
    ];
    if m.gal.1 < top {
        zones.push(zone("GAL", Some(m.gal.1), Some(m.ral.1)));
    }
    if m.ral.1 < top {
        zones.push(zone("RAL", Some(m.ral.1), None));
    }
    zones
}

fn quantity(m: &Measure, value: f64) -> Value {
    json!({"value": round_to(value, m.decimals), "unit": m.unit, "system": UCUM, "code": m.ucum})
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `YYYY-MM-DDThh:mm:ssZ` of `second` into day `day` of the history.
fn date_time(day: u64, second: u64) -> String {
    let (day, second) = (day + second / 86_400, second % 86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date(START_DAY + day as i64),
        second / 3600,
        second / 60 % 60,
        second % 60
    )
}

/// `YYYY-MM-DD` of a day count since 1970-01-01 (Howard Hinnant's civil_from_days).
fn date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// A transaction Bundle of PUT entries.
pub fn bundle(items: &[Item]) -> Value {
    let entries: Vec<Value> = items
        .iter()
        .map(|i| {
            json!({
                "fullUrl": i.full_url,
                "resource": i.resource,
                "request": {"method": "PUT", "url": format!("{}/{}", i.res_type, i.id)},
            })
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

/// What the workers report.
#[derive(Debug, Default)]
struct Totals {
    resources: u64,
    bundles: u64,
    errors: u64,
    samples: Vec<String>,
}

/// The generator of `ember dataset`'s arguments.
pub fn generator(args: &DatasetArgs) -> Generator {
    Generator {
        seed: args.seed,
        patients: args.patients,
        days: period_days(args.years, args.days),
        deep: args.deep.0.clone(),
    }
}

/// `1000, 4000 Observations` or `none`.
pub fn describe_deep(deep: &[u64]) -> String {
    if deep.is_empty() {
        "none".into()
    } else {
        let list: Vec<String> = deep.iter().map(u64::to_string).collect();
        format!("{} Observations", list.join(", "))
    }
}

/// Runs `ember dataset`: prints the report, fails when any Bundle failed.
pub async fn run(args: DatasetArgs) -> Result<()> {
    if args.bundle_size == 0 || args.connections == 0 {
        bail!("--bundle-size and --connections must be at least 1");
    }
    let g = generator(&args);
    let counts = g.counts();
    let total: u64 = counts.values().sum();
    if args.dry_run {
        print!("{}", render_counts(&counts));
        println!("total {total}");
        return Ok(());
    }
    if let Some(dir) = &args.out {
        return write_files(&g, dir, &counts);
    }
    let url = args
        .url
        .clone()
        .ok_or_else(|| anyhow!("--url is required"))?;
    let target = Arc::new(Target::parse(&url)?);
    eprintln!(
        "dataset: {} patients x {}, deep patients: {}, seed {}, {total} resources to {url}",
        args.patients,
        describe_period(args.years, args.days),
        describe_deep(&g.deep),
        args.seed
    );

    let started = Instant::now();
    let totals = Arc::new(Mutex::new(Totals::default()));
    let bundle_size = args.bundle_size;
    // Phase 1: the Practitioners.
    let practitioners = g.practitioner_items().map(|p| [p]);
    load(&target, &args, &totals, practitioners, bundle_size, false).await?;
    // Phase 2: one group per patient, never split.
    let groups = g.patient_keys().map(|k| g.patient_group(k));
    load(&target, &args, &totals, groups, bundle_size, true).await?;
    // Phase 3: each patient's Conditions, Encounters and Observations, streamed.
    let history = g.patient_keys().map(|k| g.history(k));
    load(&target, &args, &totals, history, bundle_size, false).await?;
    let elapsed = started.elapsed().as_secs_f64();

    let t = totals.lock().await;
    println!("Ember dataset  {url}  seed {}", args.seed);
    print!("{}", render_counts(&counts));
    println!("resources written  {}", t.resources);
    println!("bundles            {}", t.bundles);
    println!("elapsed            {elapsed:.2} s");
    println!(
        "resources/s        {:.1}",
        t.resources as f64 / elapsed.max(1e-9)
    );
    println!("errors             {}", t.errors);
    for s in &t.samples {
        println!("  {s}");
    }
    if t.errors > 0 {
        bail!("{} of {} Bundles failed", t.errors, t.bundles);
    }
    Ok(())
}

/// Writes the data set as NDJSON files in `dir` (which must be new or empty), one per
/// resource type, and prints the counts.
fn write_files(
    g: &Generator,
    dir: &std::path::Path,
    counts: &BTreeMap<&'static str, u64>,
) -> Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    if std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} is not empty", dir.display());
    }
    let started = Instant::now();
    let mut files: BTreeMap<&'static str, std::io::BufWriter<std::fs::File>> = BTreeMap::new();
    let mut written = 0u64;
    let groups = g
        .practitioner_items()
        .map(|p| vec![p])
        .chain(g.patient_keys().map(|k| g.patient_group(k)))
        .chain(g.patient_keys().map(|k| g.history(k).collect()));
    for group in groups {
        for resource in resolved(group) {
            let (res_type, line) = resource;
            let file = match files.entry(res_type) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let path = dir.join(format!("{res_type}.ndjson"));
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    e.insert(std::io::BufWriter::new(file))
                }
            };
            writeln!(file, "{line}")?;
            written += 1;
        }
    }
    for file in files.values_mut() {
        file.flush()?;
    }
    println!("Ember dataset  {}", dir.display());
    print!("{}", render_counts(counts));
    println!("resources written  {written}");
    println!(
        "elapsed            {:.2} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The items of a group as NDJSON lines, each with its type, references to another
/// item's `urn:uuid:` fullUrl replaced by `Type/id`.
fn resolved(items: Vec<Item>) -> Vec<(&'static str, String)> {
    fn rewrite(value: &mut Value, ids: &BTreeMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match v {
                        Value::String(r) if key == "reference" => {
                            if let Some(to) = ids.get(r.as_str()) {
                                *r = to.clone();
                            }
                        }
                        _ => rewrite(v, ids),
                    }
                }
            }
            Value::Array(values) => values.iter_mut().for_each(|v| rewrite(v, ids)),
            _ => {}
        }
    }
    let ids: BTreeMap<String, String> = items
        .iter()
        .map(|i| (i.full_url.clone(), format!("{}/{}", i.res_type, i.id)))
        .collect();
    items
        .into_iter()
        .map(|mut i| {
            rewrite(&mut i.resource, &ids);
            (i.res_type, i.resource.to_string())
        })
        .collect()
}

fn render_counts(counts: &BTreeMap<&'static str, u64>) -> String {
    counts
        .iter()
        .map(|(t, n)| format!("{t:<18} {n}\n"))
        .collect()
}

/// Sends the groups as Bundles of at most `size` entries over `connections` workers and
/// waits for all of them. With `keep_groups`, a group is never split across Bundles.
async fn load<G: IntoIterator<Item = Item>>(
    target: &Arc<Target>,
    args: &DatasetArgs,
    totals: &Arc<Mutex<Totals>>,
    groups: impl Iterator<Item = G>,
    size: usize,
    keep_groups: bool,
) -> Result<()> {
    let (tx, rx) = mpsc::channel::<(u64, Bytes)>(args.connections * 2);
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        let rx = Arc::clone(&rx);
        let target = Arc::clone(target);
        let totals = Arc::clone(totals);
        workers.spawn(async move {
            let mut conn = Conn::new(Arc::clone(&target));
            loop {
                let next = rx.lock().await.recv().await;
                let Some((entries, body)) = next else { break };
                let result = post_bundle(&mut conn, &target, body).await;
                let mut t = totals.lock().await;
                t.bundles += 1;
                match result {
                    Ok(()) => t.resources += entries,
                    Err(e) => {
                        t.errors += 1;
                        if t.samples.len() < 3 {
                            t.samples.push(format!("{e:#}"));
                        }
                    }
                }
            }
        });
    }
    let mut pending: Vec<Item> = Vec::new();
    let send = async |pending: &mut Vec<Item>| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let body = Bytes::from(bundle(pending).to_string());
        let n = pending.len() as u64;
        pending.clear();
        tx.send((n, body))
            .await
            .map_err(|_| anyhow!("the workers stopped"))
    };
    for group in groups {
        if keep_groups {
            let group: Vec<Item> = group.into_iter().collect();
            if pending.len() + group.len() > size {
                send(&mut pending).await?;
            }
            pending.extend(group);
        } else {
            for item in group {
                pending.push(item);
                if pending.len() >= size {
                    send(&mut pending).await?;
                }
            }
        }
    }
    send(&mut pending).await?;
    drop(tx);
    while let Some(r) = workers.join_next().await {
        r.context("a dataset worker panicked")?;
    }
    Ok(())
}

/// Posts one transaction Bundle with `Prefer: return=minimal`; anything but 200 is an error.
async fn post_bundle(conn: &mut Conn, target: &Target, body: Bytes) -> Result<()> {
    let path = if target.base_path.is_empty() {
        "/".to_owned()
    } else {
        target.base_path.clone()
    };
    let reply = conn
        .send_with(
            Method::POST,
            &path,
            &[("prefer", "return=minimal")],
            Some(body),
            REQUEST_TIMEOUT * 4,
        )
        .await?;
    if reply.status != 200 {
        let text = String::from_utf8_lossy(&reply.body);
        let sample: String = text.chars().take(400).collect();
        bail!("POST {path} answered {}: {sample}", reply.status);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
