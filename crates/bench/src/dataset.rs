//! `ember dataset`: a deterministic telemonitoring population loaded into any FHIR
//! server through transaction Bundles.
//!
//! Every resource has a deterministic id (`dataset-<seed>-pat-<n>`,
//! `dataset-<seed>-obs-<n>-<k>`, ...) and is written with PUT, so re-running the
//! command rewrites the same resources. Loading runs in three phases so that no
//! Bundle references a resource of a Bundle that may not have been committed yet:
//! the Practitioner pool, then one group per patient (Patient, CareTeam, CarePlan,
//! ServiceRequests; never split, and cross-referenced through `urn:uuid:` fullUrls),
//! then the Observations, which reference the earlier resources by id.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::http::{Conn, REQUEST_TIMEOUT, Target};
use crate::rng::{Rng, mix64};

/// Arguments of `ember dataset`.
#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    /// FHIR base URL of the server to load, e.g. `http://127.0.0.1:8080/fhir`.
    #[arg(long, env = "EMBER_DATASET_URL", required_unless_present = "dry_run")]
    pub url: Option<String>,
    /// Number of patients.
    #[arg(long, env = "EMBER_DATASET_PATIENTS", default_value_t = 100)]
    pub patients: u64,
    /// Years of measurements per patient (365 days each; see --days).
    #[arg(long, env = "EMBER_DATASET_YEARS", default_value_t = 1)]
    pub years: u64,
    /// Days of measurements per patient; overrides --years when given.
    #[arg(long, env = "EMBER_DATASET_DAYS")]
    pub days: Option<u64>,
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
}

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const CPR_SYSTEM: &str = "urn:oid:1.2.208.176.1.2";
const THRESHOLD_URL: &str =
    "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-referenceRange";
const THRESHOLD_TYPE_SYSTEM: &str = "urn:oid:1.2.208.184.100.1";
const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// Patients per Practitioner of the pool.
const PATIENTS_PER_PRACTITIONER: u64 = 20;
/// Day 0 of the measurements: 2024-01-01 (days since 1970-01-01).
const START_DAY: i64 = 19_723;

/// One measurement type.
struct Measure {
    key: &'static str,
    loinc: &'static str,
    display: &'static str,
    unit: &'static str,
    ucum: &'static str,
    every_days: u64,
    /// Decimal places of the values.
    decimals: u32,
    /// Normal baseline range of a patient, and the random walk's step and bounds.
    baseline: (f64, f64),
    step: f64,
    bounds: (f64, f64),
    /// Yellow (GAL) and red (RAL) alarm limits, (low, high).
    gal: (f64, f64),
    ral: (f64, f64),
}

const MEASURES: [Measure; 4] = [
    Measure {
        key: "bp",
        loinc: "85354-9",
        display: "Blood pressure panel with all children optional",
        unit: "mmHg",
        ucum: "mm[Hg]",
        every_days: 1,
        decimals: 0,
        baseline: (118.0, 145.0),
        step: 6.0,
        bounds: (80.0, 200.0),
        gal: (100.0, 150.0),
        ral: (90.0, 170.0),
    },
    Measure {
        key: "weight",
        loinc: "29463-7",
        display: "Body weight",
        unit: "kg",
        ucum: "kg",
        every_days: 7,
        decimals: 1,
        baseline: (58.0, 105.0),
        step: 0.8,
        bounds: (35.0, 180.0),
        gal: (50.0, 110.0),
        ral: (45.0, 120.0),
    },
    Measure {
        key: "spo2",
        loinc: "59408-5",
        display: "Oxygen saturation in Arterial blood by Pulse oximetry",
        unit: "%",
        ucum: "%",
        every_days: 1,
        decimals: 0,
        baseline: (92.0, 98.0),
        step: 1.2,
        bounds: (75.0, 100.0),
        gal: (92.0, 100.0),
        ral: (88.0, 100.0),
    },
    Measure {
        key: "glucose",
        loinc: "15074-8",
        display: "Glucose [Moles/volume] in Blood",
        unit: "mmol/L",
        ucum: "mmol/L",
        every_days: 2,
        decimals: 1,
        baseline: (5.0, 9.0),
        step: 0.9,
        bounds: (2.0, 25.0),
        gal: (4.0, 10.0),
        ral: (3.0, 15.0),
    },
];

/// Diastolic from systolic: roughly 0.62 × systolic plus noise.
fn diastolic(systolic: f64, rng: &mut Rng) -> f64 {
    (systolic * 0.62 + rng.below(9) as f64 - 4.0).round()
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

/// Days of measurements of `--days`, or else of `--years` (365 days each).
pub fn period_days(years: u64, days: Option<u64>) -> u64 {
    days.unwrap_or(years.saturating_mul(365))
}

/// The measurement period as the reports print it: `N year(s)` when given as years,
/// `N day(s)` when given as days.
pub fn describe_period(years: u64, days: Option<u64>) -> String {
    match days {
        Some(d) => format!("{d} day(s)"),
        None => format!("{years} year(s)"),
    }
}

/// The generator: pure functions of `(seed, patients, days)`.
#[derive(Debug, Clone, Copy)]
pub struct Generator {
    pub seed: u64,
    pub patients: u64,
    /// Days of measurements per patient (`--years` is 365 days each).
    pub days: u64,
}

impl Generator {
    fn days(&self) -> u64 {
        self.days
    }

    fn id(&self, kind: &str, rest: &str) -> String {
        format!("dataset-{}-{kind}-{rest}", self.seed)
    }

    fn rng(&self, salt: u64, index: u64) -> Rng {
        Rng::for_worker(self.seed, salt, index as usize)
    }

    fn practitioner_count(&self) -> u64 {
        self.patients.div_ceil(PATIENTS_PER_PRACTITIONER)
    }

    fn measurements(&self, m: &Measure) -> u64 {
        self.days().div_ceil(m.every_days)
    }

    /// Counts per resource type, from the formula.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let per_patient = self.observations_per_patient();
        BTreeMap::from([
            ("Practitioner", self.practitioner_count()),
            ("Patient", self.patients),
            ("CareTeam", self.patients),
            ("CarePlan", self.patients),
            ("ServiceRequest", self.patients * MEASURES.len() as u64),
            ("Observation", self.patients * per_patient),
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

    pub fn practitioner(&self, k: u64) -> Item {
        let mut rng = self.rng(1, k);
        let female = rng.chance(50);
        let given = rng.pick(if female { GIVEN_F } else { GIVEN_M });
        let family = rng.pick(FAMILY);
        self.item(
            "Practitioner",
            self.id("prac", &k.to_string()),
            json!({
                "resourceType": "Practitioner",
                "active": true,
                "name": [{"family": family, "given": [given], "prefix": ["Dr."]}],
                "gender": if female { "female" } else { "male" },
            }),
        )
    }

    /// The Patient, CareTeam, CarePlan and ServiceRequests of patient `n`, referencing
    /// each other through their `urn:uuid:` fullUrls.
    pub fn patient_group(&self, n: u64) -> Vec<Item> {
        let (mut rng, female, given, family) = self.demographics(n);
        // Born 1935..1975.
        let birth = date(-12_784 + rng.below(14_600) as i64);
        let pat_id = self.patient_id(n);
        let patient = self.item(
            "Patient",
            pat_id.clone(),
            json!({
                "resourceType": "Patient",
                "identifier": [{"system": CPR_SYSTEM, "value": self.identifier_value(n)}],
                "active": true,
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": if female { "female" } else { "male" },
                "birthDate": birth,
            }),
        );
        let prac = format!(
            "Practitioner/{}",
            self.practitioner_id(n / PATIENTS_PER_PRACTITIONER)
        );
        let start = date(START_DAY);
        let ct_id = self.id("ct", &n.to_string());
        let cp_id = self.id("cp", &n.to_string());
        let careteam = self.item(
            "CareTeam",
            ct_id,
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
                let id = self.id("sr", &format!("{n}-{}", m.key));
                self.item("ServiceRequest", id, Value::Null)
            })
            .collect();
        let careplan = self.item(
            "CarePlan",
            cp_id,
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
        for (m, mut sr) in MEASURES.iter().zip(sr_items) {
            let threshold = |kind: &str, (low, high): (f64, f64)| {
                json!({
                    "url": THRESHOLD_URL,
                    "extension": [
                        {"url": "low", "valueQuantity": quantity(m, low)},
                        {"url": "high", "valueQuantity": quantity(m, high)},
                        {"url": "type", "valueCodeableConcept": {"coding": [{"system": THRESHOLD_TYPE_SYSTEM, "code": kind}]}},
                    ],
                })
            };
            sr.resource = json!({
                "resourceType": "ServiceRequest",
                "id": sr.id,
                "extension": [threshold("RAL", m.ral), threshold("GAL", m.gal)],
                "basedOn": [{"reference": careplan.full_url}],
                "status": "active",
                "intent": "order",
                "code": {"coding": [{"system": LOINC, "code": m.loinc, "display": m.display}]},
                "subject": {"reference": items[0].full_url},
                "authoredOn": start,
                "requester": {"reference": prac},
            });
            items.push(sr);
        }
        items.push(careplan);
        items
    }

    /// The Observations of patient `n`, day by day (`k` counts them in that order).
    pub fn observations(&self, n: u64) -> Vec<Item> {
        let mut out = Vec::new();
        let mut walks: Vec<(Rng, f64, f64)> = MEASURES
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let mut rng = self.rng(10 + i as u64, n);
                let base = m.baseline.0 + unit(&mut rng) * (m.baseline.1 - m.baseline.0);
                (rng, base, base)
            })
            .collect();
        let subject = format!("Patient/{}", self.patient_id(n));
        let mut k = 0u64;
        for day in 0..self.days() {
            for (m, (rng, base, value)) in MEASURES.iter().zip(walks.iter_mut()) {
                if day % m.every_days != 0 {
                    continue;
                }
                // A mean-reverting random walk: mostly near the baseline, now and then
                // across the alarm limits.
                let noise = (unit(rng) + unit(rng) + unit(rng) - 1.5) * 2.0 * m.step;
                *value = (*value + 0.15 * (*base - *value) + noise).clamp(m.bounds.0, m.bounds.1);
                let minute = 7 * 60 + rng.below(180);
                let effective = format!(
                    "{}T{:02}:{:02}:00Z",
                    date(START_DAY + day as i64),
                    minute / 60,
                    minute % 60
                );
                let sr = format!(
                    "ServiceRequest/{}",
                    self.id("sr", &format!("{n}-{}", m.key))
                );
                let mut obs = json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "basedOn": [{"reference": sr}],
                    "category": [{"coding": [{"system": CATEGORY_SYSTEM, "code": "vital-signs", "display": "Vital Signs"}]}],
                    "code": {"coding": [{"system": LOINC, "code": m.loinc, "display": m.display}]},
                    "subject": {"reference": subject},
                    "effectiveDateTime": effective,
                });
                if m.key == "bp" {
                    let dia = diastolic(*value, rng);
                    obs["component"] = json!([
                        {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]},
                         "valueQuantity": quantity(m, *value)},
                        {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]},
                         "valueQuantity": quantity(m, dia)},
                    ]);
                } else {
                    obs["valueQuantity"] = quantity(m, *value);
                }
                let id = self.observation_id(n, k);
                out.push(self.item("Observation", id, obs));
                k += 1;
            }
        }
        out
    }
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

/// One measurement type as a reader of the data set sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MeasureFacts {
    pub loinc: &'static str,
    /// One Observation every this many days, from day 0.
    pub every_days: u64,
}

/// The code system of every Observation and ServiceRequest code.
pub const LOINC_SYSTEM: &str = LOINC;

/// The facts of the data set that queries against it depend on. The generator uses the
/// same functions, so a reader and the data set cannot drift apart.
impl Generator {
    /// Patient `n`'s draws: the generator's rng (to continue from), female, given, family.
    fn demographics(&self, n: u64) -> (Rng, bool, &'static str, &'static str) {
        let mut rng = self.rng(2, n);
        let female = rng.chance(50);
        let given = rng.pick(if female { GIVEN_F } else { GIVEN_M });
        let family = rng.pick(FAMILY);
        (rng, female, given, family)
    }

    pub fn patient_id(&self, n: u64) -> String {
        self.id("pat", &n.to_string())
    }

    pub fn practitioner_id(&self, k: u64) -> String {
        self.id("prac", &k.to_string())
    }

    fn identifier_value(&self, n: u64) -> String {
        format!("DS{:04}{n:08}", self.seed % 10_000)
    }

    /// Id, identifier, name and Practitioner of patient `n`, as `patient_group(n)` writes them.
    pub fn patient_facts(&self, n: u64) -> PatientFacts {
        let (_, _, given, family) = self.demographics(n);
        PatientFacts {
            id: self.patient_id(n),
            identifier_system: CPR_SYSTEM,
            identifier_value: self.identifier_value(n),
            family,
            given,
            practitioner: n / PATIENTS_PER_PRACTITIONER,
        }
    }

    /// Id of the `k`-th Observation of patient `n` (`k` counts as in [`Generator::observations`]).
    pub fn observation_id(&self, n: u64, k: u64) -> String {
        self.id("obs", &format!("{n}-{k}"))
    }

    /// Observations per patient.
    pub fn observations_per_patient(&self) -> u64 {
        MEASURES.iter().map(|m| self.measurements(m)).sum()
    }

    /// Number of Practitioners in the pool.
    pub fn practitioners(&self) -> u64 {
        self.practitioner_count()
    }

    /// The patients whose CareTeam has Practitioner `k`.
    pub fn patients_of_practitioner(&self, k: u64) -> std::ops::Range<u64> {
        let start = (k * PATIENTS_PER_PRACTITIONER).min(self.patients);
        start..((k + 1) * PATIENTS_PER_PRACTITIONER).min(self.patients)
    }

    /// The measurement types, in the order `observations` interleaves them.
    pub fn measures() -> Vec<MeasureFacts> {
        MEASURES
            .iter()
            .map(|m| MeasureFacts {
                loinc: m.loinc,
                every_days: m.every_days,
            })
            .collect()
    }

    /// Days of measurements per patient (day 0 is [`Generator::day`]`(0)`).
    pub fn measurement_days(&self) -> u64 {
        self.days()
    }

    /// `YYYY-MM-DD` of measurement day `d`; every Observation of that day has an
    /// `effectiveDateTime` on it between 07:00 and 10:00 UTC.
    pub fn day(d: u64) -> String {
        date(START_DAY + d as i64)
    }

    /// Observations of one patient with `measure`'s code on day `from_day` or later.
    pub fn observations_from(&self, measure: &MeasureFacts, from_day: u64) -> u64 {
        let days = self.days();
        days.div_ceil(measure.every_days) - from_day.min(days).div_ceil(measure.every_days)
    }
}

/// Uniform in [0, 1).
fn unit(rng: &mut Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn quantity(m: &Measure, value: f64) -> Value {
    let value = if m.decimals == 0 {
        json!(value.round() as i64)
    } else {
        let f = 10f64.powi(m.decimals as i32);
        json!((value * f).round() / f)
    };
    json!({"value": value, "unit": m.unit, "system": UCUM, "code": m.ucum})
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
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

/// Runs `ember dataset`: prints the report, fails when any Bundle failed.
pub async fn run(args: DatasetArgs) -> Result<()> {
    if args.bundle_size == 0 || args.connections == 0 {
        bail!("--bundle-size and --connections must be at least 1");
    }
    let g = Generator {
        seed: args.seed,
        patients: args.patients,
        days: period_days(args.years, args.days),
    };
    let counts = g.counts();
    let total: u64 = counts.values().sum();
    if args.dry_run {
        print!("{}", render_counts(&counts));
        println!("total {total}");
        return Ok(());
    }
    let url = args
        .url
        .clone()
        .ok_or_else(|| anyhow!("--url is required"))?;
    let target = Arc::new(Target::parse(&url)?);
    eprintln!(
        "dataset: {} patients x {}, seed {}, {total} resources to {url}",
        args.patients,
        describe_period(args.years, args.days),
        args.seed
    );

    let started = Instant::now();
    let totals = Arc::new(Mutex::new(Totals::default()));
    let bundle_size = args.bundle_size;
    // Phase 1: the Practitioner pool.
    let practitioners = (0..g.practitioner_count()).map(move |k| vec![g.practitioner(k)]);
    load(&target, &args, &totals, practitioners, bundle_size, false).await?;
    // Phase 2: one group per patient, never split.
    let groups = (0..g.patients).map(move |n| g.patient_group(n));
    load(&target, &args, &totals, groups, bundle_size, true).await?;
    // Phase 3: the Observations.
    let observations = (0..g.patients).map(move |n| g.observations(n));
    load(&target, &args, &totals, observations, bundle_size, false).await?;
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

fn render_counts(counts: &BTreeMap<&'static str, u64>) -> String {
    counts
        .iter()
        .map(|(t, n)| format!("{t:<18} {n}\n"))
        .collect()
}

/// Sends the groups as Bundles of at most `size` entries over `connections` workers and
/// waits for all of them. With `keep_groups`, a group is never split across Bundles.
async fn load(
    target: &Arc<Target>,
    args: &DatasetArgs,
    totals: &Arc<Mutex<Totals>>,
    groups: impl Iterator<Item = Vec<Item>>,
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
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_resources() {
        let a = Generator {
            seed: 42,
            patients: 3,
            days: 365,
        };
        let b = a;
        for n in [0, 2] {
            let (ga, gb) = (a.patient_group(n), b.patient_group(n));
            let (oa, ob) = (a.observations(n), b.observations(n));
            for (x, y) in ga.iter().chain(&oa[..20]).zip(gb.iter().chain(&ob[..20])) {
                assert_eq!(x.resource.to_string(), y.resource.to_string());
                assert_eq!(x.full_url, y.full_url);
            }
        }
        assert_eq!(a.practitioner(0).resource, b.practitioner(0).resource);
        let other = Generator { seed: 7, ..a };
        let values = |g: &Generator| -> Vec<String> {
            g.observations(0)[..50]
                .iter()
                .map(|o| format!("{}{}", o.resource["valueQuantity"], o.resource["component"]))
                .collect()
        };
        assert_ne!(values(&a), values(&other));
        let obs = a.observations(1);
        assert_eq!(obs[0].id, "dataset-42-obs-1-0");
        assert_eq!(obs[0].resource["code"]["coding"][0]["code"], "85354-9");
        assert_eq!(a.patient_group(0)[0].id, "dataset-42-pat-0");
        assert!(
            a.patient_group(0)[0].resource["identifier"][0]["value"]
                .as_str()
                .unwrap()
                .starts_with("DS")
        );
    }

    #[test]
    fn counts_match_the_generated_resources() {
        let g = Generator {
            seed: 42,
            patients: 2,
            days: 365,
        };
        let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
        let all = (0..g.practitioner_count())
            .map(|k| g.practitioner(k))
            .chain((0..g.patients).flat_map(|n| g.patient_group(n)))
            .chain((0..g.patients).flat_map(|n| g.observations(n)));
        for item in all {
            assert_eq!(item.resource["resourceType"], item.res_type);
            *seen.entry(item.res_type).or_default() += 1;
        }
        assert_eq!(seen, g.counts());
        assert_eq!(g.counts()["Observation"], 2 * (365 + 53 + 365 + 183));
    }

    #[test]
    fn some_values_cross_the_alarm_limits() {
        let g = Generator {
            seed: 42,
            patients: 5,
            days: 365,
        };
        let outside = (0..5)
            .flat_map(|n| g.observations(n))
            .filter(|o| o.resource["code"]["coding"][0]["code"] == "59408-5")
            .filter(|o| {
                let v: f64 = o.resource["valueQuantity"]["value"]
                    .to_string()
                    .parse()
                    .unwrap();
                v < 92.0
            })
            .count();
        assert!(outside > 0);
    }

    #[test]
    fn facts_match_the_generated_resources() {
        let g = Generator {
            seed: 42,
            patients: 45,
            days: 365,
        };
        for n in [0, 19, 20, 44] {
            let facts = g.patient_facts(n);
            let group = g.patient_group(n);
            let p = &group[0].resource;
            assert_eq!(group[0].id, facts.id);
            assert_eq!(p["identifier"][0]["system"], facts.identifier_system);
            assert_eq!(p["identifier"][0]["value"], facts.identifier_value.as_str());
            assert_eq!(p["name"][0]["family"], facts.family);
            assert_eq!(p["name"][0]["given"][0], facts.given);
            let member = format!("Practitioner/{}", g.practitioner_id(facts.practitioner));
            assert_eq!(
                group[1].resource["participant"][0]["member"]["reference"],
                member.as_str()
            );
            assert!(g.patients_of_practitioner(facts.practitioner).contains(&n));
            let obs = g.observations(n);
            for m in Generator::measures() {
                for from in [0, 1, 100, 364, 365] {
                    let day = Generator::day(from);
                    let expected = obs
                        .iter()
                        .filter(|o| o.resource["code"]["coding"][0]["code"] == m.loinc)
                        .filter(|o| {
                            o.resource["effectiveDateTime"].as_str().unwrap() >= day.as_str()
                        })
                        .count() as u64;
                    assert_eq!(
                        g.observations_from(&m, from),
                        expected,
                        "{} from {from}",
                        m.loinc
                    );
                }
            }
        }
        assert_eq!(g.practitioners(), 3);
        let last = g.observations(44).last().map(|o| o.id.clone());
        assert_eq!(
            last,
            Some(g.observation_id(44, g.observations_per_patient() - 1))
        );
        assert_eq!(g.patients_of_practitioner(2), 40..45);
        assert_eq!(Generator::day(0), "2024-01-01");
    }

    /// `ember dataset`'s arguments as the command line parses them.
    fn parse(args: &[&str]) -> DatasetArgs {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DatasetArgs,
        }
        let argv = ["dataset", "--dry-run"].iter().chain(args);
        <Cli as clap::Parser>::try_parse_from(argv).unwrap().args
    }

    fn generator(args: &DatasetArgs) -> Generator {
        Generator {
            seed: args.seed,
            patients: args.patients,
            days: period_days(args.years, args.days),
        }
    }

    #[test]
    fn days_set_the_period_and_override_years() {
        let years = parse(&["--patients", "45", "--years", "1"]);
        assert_eq!(years.days, None);
        let g = generator(&years);
        // The counts `ember dataset --patients 45 --years 1 --dry-run` always printed.
        assert_eq!(
            g.counts(),
            BTreeMap::from([
                ("CarePlan", 45),
                ("CareTeam", 45),
                ("Observation", 43_470),
                ("Patient", 45),
                ("Practitioner", 3),
                ("ServiceRequest", 180),
            ])
        );
        assert_eq!(describe_period(years.years, years.days), "1 year(s)");

        // --days 365 is --years 1, resource for resource; --days wins over --years.
        for argv in [
            &["--patients", "45", "--days", "365"][..],
            &["--patients", "45", "--years", "3", "--days", "365"][..],
        ] {
            let days = parse(argv);
            let d = generator(&days);
            assert_eq!(d.measurement_days(), 365);
            assert_eq!(d.counts(), g.counts());
            for n in [0, 44] {
                let (a, b) = (g.observations(n), d.observations(n));
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b).step_by(97).chain(a.last().zip(b.last())) {
                    assert_eq!(x.id, y.id);
                    assert_eq!(x.resource, y.resource);
                }
            }
        }
        assert_eq!(
            describe_period(3, parse(&["--years", "3", "--days", "100"]).days),
            "100 day(s)"
        );

        // The counts scale with the days: 2.65 Observations per patient and day, so
        // 10,000 patients x 100 days is 2,650,000 Observations and x 38 days 1,010,000.
        let short = generator(&parse(&["--patients", "10000", "--days", "100"]));
        let per_patient = 100 + 15 + 100 + 50;
        assert_eq!(short.observations_per_patient(), per_patient);
        assert_eq!(short.counts()["Observation"], 10_000 * per_patient);
        assert_eq!(short.observations(0).len() as u64, per_patient);
        assert_eq!(
            Generator { days: 38, ..short }.counts()["Observation"],
            1_010_000
        );
        let one = Generator { days: 1, ..short };
        assert_eq!(one.observations_per_patient(), 4);
        let none = Generator { days: 0, ..short };
        assert_eq!(none.counts()["Observation"], 0);
        // A shorter period is a prefix of a longer one: same ids, same resources.
        let (a, b) = (
            short.observations(7),
            generator(&parse(&["--patients", "10000", "--days", "200"])).observations(7),
        );
        assert_eq!(b.len(), 200 + 29 + 200 + 100);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.id, y.id);
            assert_eq!(x.resource, y.resource);
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(START_DAY), "2024-01-01");
        assert_eq!(date(START_DAY + 59), "2024-02-29");
    }
}
