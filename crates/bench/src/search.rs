//! `ember bench-search`: FHIR search latency against a server loaded by `ember dataset`.
//!
//! One timed phase per query kind (warm-up, then recording), each request a query chosen
//! at random (seeded) over the population, with its ids, names, identifiers and codes
//! taken from the same [`Generator`] that wrote the data set. Every answer is checked
//! (status 200, a `searchset` Bundle, and what the data set says it must contain); a
//! failed check is an error, counted apart from the latencies and printed. Each kind
//! has latency targets; the report says whether each was met.
//!
//! The patient-depth kinds read one patient's history newest first (`latest-code`,
//! `window-code`, `latest-all`) on an ordinary patient and on the heavy patient (the
//! largest `--deep`), expecting exactly the Observation ids the generator's timeline
//! says, in order. `depth` runs `latest-code` on every deep patient in turn and reports
//! how its p50 grows with the patient's history.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::dataset::{
    DEFAULT_DEEP, Deep, Generator, LOINC_SYSTEM, MeasureFacts, PatientKey, Reading, describe_deep,
    describe_period, parse_deep, period_days,
};
use crate::http::{Conn, Target};
use crate::phase::Timing;
use crate::report::now_rfc3339;
use crate::rng::Rng;
use crate::stats::{ErrorSamples, PhaseStats, truncate};

/// Arguments of `ember bench-search`.
#[derive(clap::Args, Debug, Clone)]
pub struct SearchBenchArgs {
    /// FHIR base URL of a server loaded by `ember dataset`, e.g. http://127.0.0.1:8080/fhir
    #[arg(long, env = "EMBER_BENCH_URL")]
    pub url: String,

    /// Patients of the loaded data set (`ember dataset --patients`)
    #[arg(long, env = "EMBER_BENCH_SEARCH_PATIENTS", default_value_t = 100)]
    pub patients: u64,

    /// Years of measurements of the loaded data set (`ember dataset --years`)
    #[arg(long, env = "EMBER_BENCH_SEARCH_YEARS", default_value_t = 1)]
    pub years: u64,

    /// Days of measurements of the loaded data set (`ember dataset --days`); overrides --years
    #[arg(long, env = "EMBER_BENCH_SEARCH_DAYS")]
    pub days: Option<u64>,

    /// Deep patients of the loaded data set (`ember dataset --deep`): comma-separated
    /// Observation counts, or `none`
    #[arg(long, env = "EMBER_BENCH_SEARCH_DEEP", default_value = DEFAULT_DEEP, value_parser = parse_deep)]
    pub deep: Deep,

    /// Seed the data set was generated with (`ember dataset --seed`; part of every id)
    #[arg(long, env = "EMBER_BENCH_SEARCH_DATASET_SEED", default_value_t = 42)]
    pub dataset_seed: u64,

    /// Seed of the random choice of queries
    #[arg(long, env = "EMBER_BENCH_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Concurrent HTTP/1.1 connections (one worker each)
    #[arg(long, env = "EMBER_BENCH_CONNECTIONS", default_value_t = 16)]
    pub connections: usize,

    /// Recorded seconds per query kind
    #[arg(long, env = "EMBER_BENCH_DURATION", default_value_t = 10)]
    pub duration: u64,

    /// Unrecorded warm-up seconds before each query kind
    #[arg(long, env = "EMBER_BENCH_WARMUP", default_value_t = 2)]
    pub warmup: u64,

    /// Query kinds to run (always in the order listed in --help)
    #[arg(
        long,
        env = "EMBER_BENCH_SEARCH_QUERIES",
        value_enum,
        value_delimiter = ',',
        default_value = "subject-code-date,name,identifier,code-count,include,has-observation,has-care-team,latest-code,window-code,latest-all,heavy-latest-code,heavy-window-code,heavy-latest-all,depth,everything,ids"
    )]
    pub queries: Vec<QueryKind>,

    /// Also write the full report as JSON to this file
    #[arg(long, env = "EMBER_BENCH_JSON")]
    pub json: Option<PathBuf>,
}

/// The kinds of search measured.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryKind {
    /// `Observation?subject=Patient/<id>&code=<loinc>&date=ge<day>&_sort=-date&_count=50`
    SubjectCodeDate,
    /// `Patient?name=<family>`
    Name,
    /// `Patient?identifier=<system>|<value>`
    Identifier,
    /// `Observation?code=<loinc>&_summary=count`
    CodeCount,
    /// `Observation?subject=Patient/<id>&code=<loinc>&_include=Observation:subject&_count=20`
    Include,
    /// `Patient?_has:Observation:subject:code=<loinc>&_id=<id>`
    HasObservation,
    /// `Patient?_has:CareTeam:subject:participant=Practitioner/<id>&_count=50`: a
    /// clinician's patient list.
    HasCareTeam,
    /// `Observation?subject=Patient/<id>&code=<loinc>&_sort=-date&_count=50`: the latest
    /// readings of one home measure.
    LatestCode,
    /// `Observation?subject=Patient/<id>&code=<loinc>&date=ge<day>&date=lt<day+7..31>&_sort=-date&_count=50`
    WindowCode,
    /// `Observation?subject=Patient/<id>&_sort=-date&_count=50`: the latest of every code.
    LatestAll,
    /// `latest-code` on the heavy patient.
    HeavyLatestCode,
    /// `window-code` on the heavy patient.
    HeavyWindowCode,
    /// `latest-all` on the heavy patient.
    HeavyLatestAll,
    /// `latest-code` on each deep patient in turn: how latency grows with history depth.
    Depth,
    /// `Patient/<id>/$everything?_count=1000` on the deep patient nearest to
    /// [`EVERYTHING_SIZE`] Observations, every page followed: one request is the whole
    /// walk.
    Everything,
    /// `Observation?_id=<20 Observations of random patients>&_count=20`: references
    /// resolved in bulk. Last, so that the other kinds keep their seeds.
    Ids,
}

/// The shapes of the patient-depth queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    LatestCode,
    WindowCode,
    LatestAll,
}

/// A percentile of the latency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pct {
    P50,
    P99,
}

/// `percentile < below_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyTarget {
    pub percentile: Pct,
    pub below_ms: f64,
}

const fn target(percentile: Pct, below_ms: f64) -> LatencyTarget {
    LatencyTarget {
        percentile,
        below_ms,
    }
}

impl QueryKind {
    pub const ALL: [QueryKind; 16] = [
        QueryKind::SubjectCodeDate,
        QueryKind::Name,
        QueryKind::Identifier,
        QueryKind::CodeCount,
        QueryKind::Include,
        QueryKind::HasObservation,
        QueryKind::HasCareTeam,
        QueryKind::LatestCode,
        QueryKind::WindowCode,
        QueryKind::LatestAll,
        QueryKind::HeavyLatestCode,
        QueryKind::HeavyWindowCode,
        QueryKind::HeavyLatestAll,
        QueryKind::Depth,
        QueryKind::Everything,
        QueryKind::Ids,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QueryKind::SubjectCodeDate => "subject-code-date",
            QueryKind::Name => "name",
            QueryKind::Identifier => "identifier",
            QueryKind::Ids => "ids",
            QueryKind::CodeCount => "code-count",
            QueryKind::Include => "include",
            QueryKind::HasObservation => "has-observation",
            QueryKind::HasCareTeam => "has-care-team",
            QueryKind::LatestCode => "latest-code",
            QueryKind::WindowCode => "window-code",
            QueryKind::LatestAll => "latest-all",
            QueryKind::HeavyLatestCode => "heavy-latest-code",
            QueryKind::HeavyWindowCode => "heavy-window-code",
            QueryKind::HeavyLatestAll => "heavy-latest-all",
            QueryKind::Depth => "depth",
            QueryKind::Everything => "everything",
        }
    }

    /// Whether this kind needs deep patients (`--deep`).
    pub fn needs_deep(self) -> bool {
        matches!(
            self,
            QueryKind::HeavyLatestCode
                | QueryKind::HeavyWindowCode
                | QueryKind::HeavyLatestAll
                | QueryKind::Depth
                | QueryKind::Everything
        )
    }

    /// The shape of a patient-depth kind.
    fn shape(self) -> Option<Shape> {
        match self {
            QueryKind::LatestCode | QueryKind::HeavyLatestCode | QueryKind::Depth => {
                Some(Shape::LatestCode)
            }
            QueryKind::WindowCode | QueryKind::HeavyWindowCode => Some(Shape::WindowCode),
            QueryKind::LatestAll | QueryKind::HeavyLatestAll => Some(Shape::LatestAll),
            _ => None,
        }
    }

    /// The latency targets of this kind.
    pub fn targets(self) -> &'static [LatencyTarget] {
        const SUBJECT: [LatencyTarget; 2] = [target(Pct::P50, 5.0), target(Pct::P99, 25.0)];
        const POINT: [LatencyTarget; 1] = [target(Pct::P50, 3.0)];
        const COUNT: [LatencyTarget; 1] = [target(Pct::P99, 200.0)];
        const JOIN: [LatencyTarget; 1] = [target(Pct::P99, 50.0)];
        const WINDOW: [LatencyTarget; 1] = [target(Pct::P99, 25.0)];
        const HEAVY: [LatencyTarget; 1] = [target(Pct::P99, 50.0)];
        const EVERYTHING: [LatencyTarget; 1] = [target(Pct::P99, 500.0)];
        match self {
            QueryKind::SubjectCodeDate | QueryKind::LatestCode => &SUBJECT,
            QueryKind::Name | QueryKind::Identifier | QueryKind::Ids => &POINT,
            QueryKind::CodeCount => &COUNT,
            QueryKind::Include | QueryKind::HasObservation | QueryKind::HasCareTeam => &JOIN,
            QueryKind::WindowCode | QueryKind::LatestAll => &WINDOW,
            QueryKind::HeavyLatestCode | QueryKind::HeavyWindowCode | QueryKind::HeavyLatestAll => {
                &HEAVY
            }
            // Judged by the growth of its p50 over the depths instead (DEPTH_RATIO).
            QueryKind::Depth => &[],
            QueryKind::Everything => &EVERYTHING,
        }
    }

    fn salt(self) -> u64 {
        100 + QueryKind::ALL.iter().position(|k| *k == self).unwrap_or(0) as u64
    }
}

/// `_count` of the subject-code-date query.
const PAGE: u64 = 50;
/// `_count` of the include query.
const INCLUDE_PAGE: u64 = 20;
/// Ids asked for by the ids query.
const IDS: usize = 20;
/// `_count` of the care-team query (above the 20 patients a Practitioner has).
const CARE_TEAM_PAGE: u64 = 50;
/// Shortest and longest date window of `window-code`, in days.
const WINDOW_DAYS: (u64, u64) = (7, 31);
/// `everything` runs on the deep patient whose Observation count is nearest to this.
pub const EVERYTHING_SIZE: u64 = 5_000;
/// `_count` of the everything query (Ember's largest page by default).
const EVERYTHING_PAGE: u64 = 1_000;
/// `depth`: the p50 on the deepest patient is below this many times the p50 on the
/// shallowest.
pub const DEPTH_RATIO: f64 = 2.0;

/// The loaded data set, as far as the queries need it.
#[derive(Debug)]
pub struct Population {
    pub g: Generator,
    measures: Vec<MeasureFacts>,
    /// The measures an ordinary patient has readings of (all but the weekly glucose in
    /// a period of less than 4 days).
    present: Vec<MeasureFacts>,
    /// Ordinary patients per family name.
    families: HashMap<&'static str, u64>,
    /// Each patient's timeline (ordinary patients, then deep ones), built on first use.
    timelines: Vec<OnceLock<Vec<Reading>>>,
}

impl Population {
    /// The population the generator `g` writes.
    pub fn new(g: Generator) -> Self {
        let mut families = HashMap::new();
        for n in 0..g.patients {
            *families.entry(g.patient_facts(n).family).or_default() += 1;
        }
        let timelines = (0..g.patients as usize + g.deep.len())
            .map(|_| OnceLock::new())
            .collect();
        let measures = Generator::measures();
        let present = measures
            .iter()
            .copied()
            .filter(|m| g.observations_from(m, 0) > 0)
            .collect();
        Self {
            measures,
            present,
            families,
            timelines,
            g,
        }
    }

    /// The Observations of `key` in time order, as [`Generator::timeline`] makes them.
    /// `key` is a patient of the data set.
    pub fn timeline(&self, key: PatientKey) -> &[Reading] {
        let slot = match key {
            PatientKey::Ordinary(n) => n as usize,
            PatientKey::Deep(count) => {
                let i = self.g.deep.iter().position(|&c| c == count);
                self.g.patients as usize + i.expect("a deep patient of the data set")
            }
        };
        self.timelines[slot].get_or_init(|| self.g.timeline(key))
    }

    /// The heavy patient: the deep patient with the most Observations.
    pub fn heavy(&self) -> Option<PatientKey> {
        self.g.deep.last().map(|&c| PatientKey::Deep(c))
    }

    /// The deep patient whose Observation count is nearest to `size`.
    pub fn deep_nearest(&self, size: u64) -> Option<PatientKey> {
        self.g
            .deep
            .iter()
            .min_by_key(|&&c| c.abs_diff(size))
            .map(|&c| PatientKey::Deep(c))
    }

    /// The deep patients, smallest first.
    pub fn deep(&self) -> impl Iterator<Item = PatientKey> + '_ {
        self.g.deep.iter().map(|&c| PatientKey::Deep(c))
    }
}

/// What a correct answer to a query contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Observations of one patient with one code.
    Observations {
        patient: String,
        loinc: &'static str,
        /// Every `effectiveDateTime` is on or after this day, newest first.
        from_day: Option<String>,
        /// Exactly this many matches on the page.
        matches: u64,
        /// `total`, when the server sends one.
        total: u64,
        /// Exactly one included entry, this Patient.
        include_patient: bool,
    },
    /// Patients with a name starting with `prefix`; at least one, `total` at least `at_least`.
    PatientsNamed { prefix: String, at_least: u64 },
    /// Exactly these Patients (in any order).
    Patients { ids: Vec<String> },
    /// Exactly these Observations (in any order).
    ObservationIds { ids: Vec<String> },
    /// `_summary=count`: no entries and a `total` of at least `at_least`.
    Count { at_least: u64 },
    /// Exactly these Observations of one patient, in this order (newest first), with
    /// `loinc` when given; `total`, when the server sends one.
    Ordered {
        patient: String,
        loinc: Option<&'static str>,
        ids: Vec<String>,
        total: u64,
    },
    /// `$everything` of one patient over all its pages: the Patient and each of its
    /// `observations` exactly once, no match twice (included resources may repeat).
    Everything { patient: String, observations: u64 },
}

/// One concrete query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub kind: QueryKind,
    /// Relative to the FHIR base, e.g. `Patient?name=Jensen`.
    pub path: String,
    pub expect: Expect,
}

/// Percent-encodes a query-parameter value (keeps unreserved characters, `:` and `/`).
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The next query of `kind`, drawn with `rng` over `pop`. The heavy and depth kinds
/// fall back to an ordinary patient when the data set has no deep patients.
pub fn generate(kind: QueryKind, rng: &mut Rng, pop: &Population) -> Query {
    if kind == QueryKind::Everything {
        let key = pop
            .deep_nearest(EVERYTHING_SIZE)
            .unwrap_or_else(|| PatientKey::Ordinary(rng.below(pop.g.patients)));
        let patient = pop.g.patient_id_of(key);
        return Query {
            kind,
            path: format!(
                "Patient/{}/$everything?_count={EVERYTHING_PAGE}",
                enc(&patient)
            ),
            expect: Expect::Everything {
                observations: pop.g.observation_count(key),
                patient,
            },
        };
    }
    if let Some(shape) = kind.shape() {
        let key = match (kind, pop.heavy()) {
            (
                QueryKind::HeavyLatestCode | QueryKind::HeavyWindowCode | QueryKind::HeavyLatestAll,
                Some(heavy),
            ) => heavy,
            (QueryKind::Depth, Some(_)) => PatientKey::Deep(*rng.pick(&pop.g.deep)),
            _ => PatientKey::Ordinary(rng.below(pop.g.patients)),
        };
        return patient_query(kind, shape, rng, pop, key);
    }
    let g = &pop.g;
    let n = rng.below(g.patients);
    let m = *rng.pick(&pop.present);
    let code = enc(&format!("{LOINC_SYSTEM}|{}", m.loinc));
    let facts = g.patient_facts(n);
    let (path, expect) = match kind {
        QueryKind::SubjectCodeDate => {
            // From a day up to the measure's last reading: at least one match.
            let last = (0..g.measurement_days())
                .rev()
                .find(|&d| g.observations_from(&m, d) > 0)
                .unwrap_or(0);
            let from = rng.below(last + 1);
            let day = Generator::day(from);
            let total = g.observations_from(&m, from);
            (
                format!(
                    "Observation?subject=Patient/{}&code={code}&date=ge{day}&_sort=-date&_count={PAGE}",
                    enc(&facts.id)
                ),
                Expect::Observations {
                    patient: facts.id,
                    loinc: m.loinc,
                    from_day: Some(day),
                    matches: total.min(PAGE),
                    total,
                    include_patient: false,
                },
            )
        }
        QueryKind::Name => (
            format!("Patient?name={}", enc(facts.family)),
            Expect::PatientsNamed {
                prefix: facts.family.to_owned(),
                at_least: pop.families.get(facts.family).copied().unwrap_or(1),
            },
        ),
        QueryKind::Identifier => (
            format!(
                "Patient?identifier={}",
                enc(&format!(
                    "{}|{}",
                    facts.identifier_system, facts.identifier_value
                ))
            ),
            Expect::Patients {
                ids: vec![facts.id],
            },
        ),
        QueryKind::CodeCount => (
            format!("Observation?code={code}&_summary=count"),
            Expect::Count {
                at_least: g.patients * g.observations_from(&m, 0),
            },
        ),
        QueryKind::Include => {
            let total = g.observations_from(&m, 0);
            (
                format!(
                    "Observation?subject=Patient/{}&code={code}&_include=Observation:subject&_count={INCLUDE_PAGE}",
                    enc(&facts.id)
                ),
                Expect::Observations {
                    patient: facts.id,
                    loinc: m.loinc,
                    from_day: None,
                    matches: total.min(INCLUDE_PAGE),
                    total,
                    include_patient: true,
                },
            )
        }
        QueryKind::HasObservation => (
            format!(
                "Patient?_has:Observation:subject:code={code}&_id={}",
                enc(&facts.id)
            ),
            Expect::Patients {
                ids: vec![facts.id],
            },
        ),
        QueryKind::Ids => {
            let mut ids = std::collections::BTreeSet::new();
            while ids.len() < IDS {
                let n = rng.below(g.patients);
                let k = rng.below(g.observation_count(PatientKey::Ordinary(n)));
                ids.insert(g.observation_id(n, k));
            }
            let ids: Vec<String> = ids.into_iter().collect();
            (
                format!(
                    "Observation?_id={}&_count={IDS}",
                    ids.iter().map(|i| enc(i)).collect::<Vec<_>>().join(",")
                ),
                Expect::ObservationIds { ids },
            )
        }
        QueryKind::HasCareTeam => {
            let k = facts.practitioner;
            (
                format!(
                    "Patient?_has:CareTeam:subject:participant=Practitioner/{}&_count={CARE_TEAM_PAGE}",
                    enc(&g.practitioner_id(k))
                ),
                Expect::Patients {
                    ids: g
                        .patients_of_practitioner(k)
                        .map(|p| g.patient_id(p))
                        .collect(),
                },
            )
        }
        _ => unreachable!("patient-depth kinds are drawn above"),
    };
    Query { kind, path, expect }
}

/// A patient-depth query of `shape` on `key`, expecting the ids of its timeline.
fn patient_query(
    kind: QueryKind,
    shape: Shape,
    rng: &mut Rng,
    pop: &Population,
    key: PatientKey,
) -> Query {
    let id = pop.g.patient_id_of(key);
    let subject = format!("Observation?subject=Patient/{}", enc(&id));
    let measure = rng.index(pop.measures.len());
    let loinc = pop.measures[measure].loinc;
    let code = enc(&format!("{LOINC_SYSTEM}|{loinc}"));
    // The matches: readings of `measure` (or all) on the days `days`, newest first.
    let mut days = 0..u32::MAX;
    let (path, measure) = match shape {
        Shape::LatestCode => (
            format!("{subject}&code={code}&_sort=-date&_count={PAGE}"),
            Some(measure),
        ),
        Shape::WindowCode => {
            // Starting on or before the measure's last reading, a window of a week or
            // more holds at least one.
            let last = pop
                .timeline(key)
                .iter()
                .rev()
                .find(|r| r.measure() == Some(measure))
                .map_or(0, |r| u64::from(r.day));
            let from = rng.below(last + 1);
            let to = from + rng.range(WINDOW_DAYS.0, WINDOW_DAYS.1);
            days = from as u32..to as u32;
            (
                format!(
                    "{subject}&code={code}&date=ge{}&date=lt{}&_sort=-date&_count={PAGE}",
                    Generator::day(from),
                    Generator::day(to)
                ),
                Some(measure),
            )
        }
        Shape::LatestAll => (format!("{subject}&_sort=-date&_count={PAGE}"), None),
    };
    // The timeline is in time order with distinct times, so newest first is reversed k.
    let mut ids = Vec::new();
    let mut total = 0u64;
    for (k, r) in pop.timeline(key).iter().enumerate().rev() {
        if measure.is_none_or(|m| r.measure() == Some(m)) && days.contains(&r.day) {
            total += 1;
            if (ids.len() as u64) < PAGE {
                ids.push(pop.g.observation_id_of(key, k as u64));
            }
        }
    }
    let loinc = measure.map(|_| loinc);
    Query {
        kind,
        path,
        expect: Expect::Ordered {
            patient: id,
            loinc,
            ids,
            total,
        },
    }
}

// The parts of a search answer the checks read; everything else is skipped unparsed.

#[derive(Debug, Deserialize)]
struct BundleDoc {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(rename = "type", default)]
    bundle_type: Option<String>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    entry: Vec<EntryDoc>,
    #[serde(default)]
    link: Vec<LinkDoc>,
}

#[derive(Debug, Deserialize)]
struct LinkDoc {
    relation: String,
    url: String,
}

impl BundleDoc {
    /// The URL of the next page, if there is one.
    fn next(&self) -> Option<&str> {
        self.link
            .iter()
            .find(|l| l.relation == "next")
            .map(|l| l.url.as_str())
    }
}

#[derive(Debug, Deserialize)]
struct EntryDoc {
    #[serde(default)]
    resource: Option<ResourceDoc>,
    #[serde(default)]
    search: Option<SearchDoc>,
}

#[derive(Debug, Deserialize)]
struct SearchDoc {
    #[serde(default)]
    mode: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ResourceDoc {
    #[serde(rename = "resourceType")]
    resource_type: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    subject: Option<ReferenceDoc>,
    #[serde(default, deserialize_with = "lenient")]
    code: Option<CodeableConceptDoc>,
    #[serde(rename = "effectiveDateTime", default)]
    effective: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    name: Vec<HumanNameDoc>,
}

/// An element that other resource types shape differently (a CareTeam's `name` is a
/// string, not a HumanName) reads as absent: `$everything` returns every type.
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    let value = serde_json::Value::deserialize(d)?;
    Ok(serde_json::from_value(value).unwrap_or_default())
}

#[derive(Debug, Deserialize)]
struct ReferenceDoc {
    #[serde(default)]
    reference: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CodeableConceptDoc {
    #[serde(default)]
    coding: Vec<CodingDoc>,
}

#[derive(Debug, Deserialize)]
struct CodingDoc {
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HumanNameDoc {
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    given: Vec<String>,
}

impl ResourceDoc {
    fn label(&self) -> String {
        format!(
            "{}/{}",
            self.resource_type,
            self.id.as_deref().unwrap_or("(no id)")
        )
    }

    fn has_code(&self, system: &str, code: &str) -> bool {
        self.code.as_ref().is_some_and(|c| {
            c.coding
                .iter()
                .any(|x| x.system.as_deref() == Some(system) && x.code.as_deref() == Some(code))
        })
    }

    /// An error unless this is an Observation of `Patient/<patient>`.
    fn check_observation_of(&self, patient: &str) -> Result<(), String> {
        if self.resource_type != "Observation" {
            return Err(format!("matched {}", self.label()));
        }
        if !self.subject_is(patient) {
            return Err(format!(
                "{} has subject {:?}, not Patient/{patient}",
                self.label(),
                self.subject.as_ref().and_then(|s| s.reference.as_deref())
            ));
        }
        Ok(())
    }

    /// Whether `subject` points at `Patient/<id>` (relative or absolute).
    fn subject_is(&self, patient: &str) -> bool {
        let want = format!("Patient/{patient}");
        self.subject
            .as_ref()
            .and_then(|s| s.reference.as_deref())
            .is_some_and(|r| r == want || r.ends_with(&format!("/{want}")))
    }

    /// Whether a family or given name starts with `prefix`, ignoring case (FHIR string search).
    fn name_starts_with(&self, prefix: &str) -> bool {
        let prefix = prefix.to_lowercase();
        self.name.iter().any(|n| {
            n.family
                .iter()
                .chain(&n.given)
                .any(|s| s.to_lowercase().starts_with(&prefix))
        })
    }
}

/// Reads one answer as a `searchset` Bundle.
fn searchset(status: StatusCode, body: &[u8]) -> Result<BundleDoc, String> {
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}: {}",
            truncate(&String::from_utf8_lossy(body), 200)
        ));
    }
    let bundle: BundleDoc = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not a Bundle ({e}): {}",
            truncate(&String::from_utf8_lossy(body), 120)
        )
    })?;
    if bundle.resource_type != "Bundle" {
        return Err(format!(
            "resourceType {} instead of Bundle",
            bundle.resource_type
        ));
    }
    if bundle.bundle_type.as_deref() != Some("searchset") {
        return Err(format!(
            "Bundle.type {:?} instead of searchset",
            bundle.bundle_type
        ));
    }
    Ok(bundle)
}

/// Checks one answer against what the data set says it must contain.
pub fn check(query: &Query, status: StatusCode, body: &[u8]) -> Result<(), String> {
    let bundle = searchset(status, body)?;
    // Entries by search mode; an entry without a mode counts as a match, and
    // `outcome` entries (warnings) are ignored.
    let mut matches = Vec::new();
    let mut includes = Vec::new();
    for e in &bundle.entry {
        let mode = e.search.as_ref().and_then(|s| s.mode.as_deref());
        if mode == Some("outcome") {
            continue;
        }
        let Some(r) = &e.resource else {
            return Err("an entry without a resource".into());
        };
        match mode {
            None | Some("match") => matches.push(r),
            Some("include") => includes.push(r),
            Some(other) => return Err(format!("entry with search.mode {other:?}")),
        }
    }
    match &query.expect {
        Expect::Observations {
            patient,
            loinc,
            from_day,
            matches: want,
            total,
            include_patient,
        } => {
            if matches.len() as u64 != *want {
                return Err(format!(
                    "{} matches, the data set has {want} on this page (total {total}; do --patients/--years/--days/--dataset-seed match the load?)",
                    matches.len()
                ));
            }
            if let Some(t) = bundle.total {
                if t != *total {
                    return Err(format!("total {t}, the data set has {total}"));
                }
            }
            let mut previous: Option<&str> = None;
            for r in &matches {
                r.check_observation_of(patient)?;
                if !r.has_code(LOINC_SYSTEM, loinc) {
                    return Err(format!("{} does not have code {loinc}", r.label()));
                }
                if let Some(day) = from_day {
                    let eff = r.effective.as_deref().unwrap_or("");
                    if eff < day.as_str() {
                        return Err(format!("{} effective {eff:?} before {day}", r.label()));
                    }
                    if previous.is_some_and(|p| p < eff) {
                        return Err(format!(
                            "not sorted by -date: {eff} after {}",
                            previous.unwrap_or_default()
                        ));
                    }
                    previous = Some(eff);
                }
            }
            if *include_patient {
                let ok = includes.len() == 1
                    && includes[0].resource_type == "Patient"
                    && includes[0].id.as_deref() == Some(patient.as_str());
                if !ok {
                    let got: Vec<String> = includes.iter().map(|r| r.label()).collect();
                    return Err(format!("included {got:?}, expected [Patient/{patient}]"));
                }
            } else if !includes.is_empty() {
                return Err(format!("{} unexpected included entries", includes.len()));
            }
        }
        Expect::PatientsNamed { prefix, at_least } => {
            if matches.is_empty() {
                return Err(format!("no Patient named {prefix}"));
            }
            for r in &matches {
                if r.resource_type != "Patient" || !r.name_starts_with(prefix) {
                    return Err(format!("matched {}, not named {prefix}", r.label()));
                }
            }
            if let Some(t) = bundle.total {
                if t < *at_least {
                    return Err(format!(
                        "total {t}, the data set has {at_least} Patients named {prefix}"
                    ));
                }
            }
        }
        Expect::Patients { ids } => exactly(&matches, "Patient", ids, bundle.total)?,
        Expect::ObservationIds { ids } => exactly(&matches, "Observation", ids, bundle.total)?,
        Expect::Count { at_least } => {
            match bundle.total {
                None => return Err("no total".into()),
                Some(0) => return Err("total 0".into()),
                Some(t) if t < *at_least => {
                    return Err(format!("total {t}, the data set has {at_least}"));
                }
                Some(_) => {}
            }
            if !matches.is_empty() || !includes.is_empty() {
                return Err(format!(
                    "_summary=count answered {} entries",
                    matches.len() + includes.len()
                ));
            }
        }
        Expect::Ordered {
            patient,
            loinc,
            ids,
            total,
        } => {
            if matches.len() != ids.len() {
                return Err(format!(
                    "{} matches, the data set has {} on this page (total {total}; do --patients/--years/--days/--deep/--dataset-seed match the load?)",
                    matches.len(),
                    ids.len()
                ));
            }
            if let Some(t) = bundle.total {
                if t != *total {
                    return Err(format!("total {t}, the data set has {total}"));
                }
            }
            for (i, (r, want)) in matches.iter().zip(ids).enumerate() {
                r.check_observation_of(patient)?;
                if let Some(code) = loinc {
                    if !r.has_code(LOINC_SYSTEM, code) {
                        return Err(format!("{} does not have code {code}", r.label()));
                    }
                }
                if r.id.as_deref() != Some(want.as_str()) {
                    return Err(format!(
                        "entry {i} is {} (effective {}), expected Observation/{want}: not the newest {} in -date order",
                        r.label(),
                        r.effective.as_deref().unwrap_or("none"),
                        ids.len()
                    ));
                }
            }
            if !includes.is_empty() {
                return Err(format!("{} unexpected included entries", includes.len()));
            }
        }
        Expect::Everything { .. } => {
            return Err("$everything is checked over all its pages (check_everything)".into());
        }
    }
    Ok(())
}

/// Whether `matches` are exactly the `res_type` resources `ids` (in any order), and
/// `total`, when the server sent one, their number.
fn exactly(
    matches: &[&ResourceDoc],
    res_type: &str,
    ids: &[String],
    total: Option<u64>,
) -> Result<(), String> {
    let mut got: Vec<String> = Vec::with_capacity(matches.len());
    for r in matches {
        if r.resource_type != res_type {
            return Err(format!("matched {}", r.label()));
        }
        got.push(r.id.clone().unwrap_or_default());
    }
    got.sort();
    let mut want = ids.to_vec();
    want.sort();
    if got != want {
        return Err(format!(
            "matched {} {res_type}s {}, expected {} {}",
            got.len(),
            truncate(&got.join(","), 120),
            want.len(),
            truncate(&want.join(","), 120)
        ));
    }
    match total {
        Some(t) if t != want.len() as u64 => Err(format!("total {t}, expected {}", want.len())),
        _ => Ok(()),
    }
}

/// Checks the entries of every page of a `$everything` answer (`pages`, each a status
/// and body) against the data set.
fn check_everything(
    patient: &str,
    observations: u64,
    pages: &[(StatusCode, Vec<u8>)],
) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    let (mut found_patient, mut found_observations) = (false, 0u64);
    for (status, body) in pages {
        for e in searchset(*status, body)?.entry {
            let r = e.resource.ok_or("an entry without a resource")?;
            // What a page's matches reference is included on that page, so an included
            // resource may come again on another page; a match may not.
            let included = e.search.and_then(|s| s.mode).as_deref() == Some("include");
            if !seen.insert(r.label()) && !included {
                return Err(format!("{} is on two pages", r.label()));
            }
            match r.resource_type.as_str() {
                "Patient" if r.id.as_deref() == Some(patient) => found_patient = true,
                "Patient" => return Err(format!("another patient: {}", r.label())),
                "Observation" => {
                    r.check_observation_of(patient)?;
                    found_observations += 1;
                }
                _ => {}
            }
        }
    }
    if !found_patient {
        return Err(format!("Patient/{patient} is not among the entries"));
    }
    if found_observations != observations {
        return Err(format!(
            "{found_observations} Observations over {} pages, the data set has {observations}",
            pages.len()
        ));
    }
    Ok(())
}

/// One query kind's result.
#[derive(Debug, Clone, Serialize)]
pub struct TargetResult {
    pub percentile: Pct,
    pub below_ms: f64,
    pub measured_ms: f64,
    /// `None` when the phase had errors or no requests: its numbers are not valid.
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueryResult {
    pub kind: String,
    /// One query of this kind, as sent before the phase (not recorded).
    pub example: String,
    /// Latency of that query.
    pub first_ms: f64,
    pub stats: PhaseStats,
    pub targets: Vec<TargetResult>,
    /// Why the timed phase did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchReportArgs {
    pub url: String,
    pub patients: u64,
    pub years: u64,
    /// Days of history: `--days`, or else `--years` × 365.
    pub days: u64,
    /// Observation counts of the deep patients (`--deep`).
    pub deep: Vec<u64>,
    pub dataset_seed: u64,
    pub seed: u64,
    pub connections: usize,
    pub duration_secs: u64,
    pub warmup_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchReport {
    pub timestamp: String,
    pub version: String,
    pub args: SearchReportArgs,
    pub queries: Vec<QueryResult>,
    /// The `depth` kind: `latest-code` per deep patient (also rows `depth-<count>` of
    /// `queries`) and how its p50 grows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub depth: Option<DepthReport>,
    pub errors: u64,
    pub targets_met: usize,
    pub targets_missed: usize,
    pub targets_not_judged: usize,
    /// Kinds that ran but had no request finish within the measured window.
    pub empty: Vec<String>,
    pub notes: Vec<String>,
}

/// `latest-code` on one deep patient.
#[derive(Debug, Clone, Serialize)]
pub struct DepthRow {
    /// The patient's Observations.
    pub observations: u64,
    pub patient: String,
    pub requests: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The `depth` kind's result: latency over history depth.
#[derive(Debug, Clone, Serialize)]
pub struct DepthReport {
    /// Smallest history first.
    pub rows: Vec<DepthRow>,
    /// p50 of the deepest patient over p50 of the shallowest.
    pub p50_ratio: Option<f64>,
    /// The target: `p50_ratio` below this.
    pub below_ratio: f64,
    /// `None` when a row had errors or no requests, or there are fewer than two rows.
    pub met: Option<bool>,
}

impl DepthReport {
    fn new(rows: Vec<DepthRow>) -> Self {
        let valid = rows.len() >= 2 && rows.iter().all(|r| r.errors == 0 && r.requests > 0);
        let p50_ratio = match (rows.first(), rows.last()) {
            (Some(a), Some(b)) if rows.len() >= 2 && a.p50_ms > 0.0 => {
                Some(crate::stats::round2(b.p50_ms / a.p50_ms))
            }
            _ => None,
        };
        Self {
            met: p50_ratio.filter(|_| valid).map(|r| r < DEPTH_RATIO),
            rows,
            p50_ratio,
            below_ratio: DEPTH_RATIO,
        }
    }
}

impl QueryResult {
    fn named(
        name: &str,
        targets: &[LatencyTarget],
        example: String,
        first: Duration,
        stats: PhaseStats,
        skipped: Option<String>,
    ) -> Self {
        let valid = stats.errors == 0 && stats.requests > 0;
        let targets = targets
            .iter()
            .map(|t| {
                let measured_ms = match t.percentile {
                    Pct::P50 => stats.p50_ms,
                    Pct::P99 => stats.p99_ms,
                };
                TargetResult {
                    percentile: t.percentile,
                    below_ms: t.below_ms,
                    measured_ms,
                    met: valid.then_some(measured_ms < t.below_ms),
                }
            })
            .collect();
        Self {
            kind: name.to_owned(),
            example,
            first_ms: crate::stats::round2(first.as_secs_f64() * 1000.0),
            stats,
            targets,
            skipped,
        }
    }

    fn target_cell(&self, p: Pct) -> String {
        match self.targets.iter().find(|t| t.percentile == p) {
            None => "-".into(),
            Some(t) => format!(
                "<{} {}",
                t.below_ms,
                match t.met {
                    Some(true) => "met",
                    Some(false) => "MISSED",
                    None => "n/a",
                }
            ),
        }
    }
}

impl SearchReport {
    fn tally(&mut self) {
        let all = || self.queries.iter().flat_map(|q| &q.targets);
        let depth = self.depth.iter().map(|d| d.met);
        let met: Vec<Option<bool>> = all().map(|t| t.met).chain(depth).collect();
        self.targets_met = met.iter().filter(|m| **m == Some(true)).count();
        self.targets_missed = met.iter().filter(|m| **m == Some(false)).count();
        self.targets_not_judged = met.iter().filter(|m| m.is_none()).count();
        self.errors = self.queries.iter().map(|q| q.stats.errors).sum();
        self.empty = self
            .queries
            .iter()
            .filter(|q| q.skipped.is_none() && q.stats.requests == 0)
            .map(|q| q.kind.clone())
            .collect();
    }

    /// Whether the numbers can be trusted: no wrong answers, and every kind measured.
    pub fn valid(&self) -> bool {
        self.errors == 0 && self.empty.is_empty()
    }

    /// Human-readable table, in the layout of `ember bench`'s.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let a = &self.args;
        let _ = writeln!(
            s,
            "\nEmber search bench {}  {}  patients={} {} deep={} dataset-seed={} connections={} duration={}s warmup={}s seed={}",
            self.version,
            a.url,
            a.patients,
            if a.days == period_days(a.years, None) {
                format!("years={}", a.years)
            } else {
                format!("days={}", a.days)
            },
            if a.deep.is_empty() {
                "none".to_owned()
            } else {
                a.deep
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            },
            a.dataset_seed,
            a.connections,
            a.duration_secs,
            a.warmup_secs,
            a.seed
        );
        let _ = writeln!(
            s,
            "{:<18} {:>9} {:>10} {:>8} {:<11} {:>8} {:>8} {:<11} {:>9} {:>7}",
            "query",
            "requests",
            "req/s",
            "p50 ms",
            "target",
            "p90 ms",
            "p99 ms",
            "target",
            "max ms",
            "errors"
        );
        let _ = writeln!(s, "{}", "-".repeat(107));
        for q in &self.queries {
            let p = &q.stats;
            let _ = writeln!(
                s,
                "{:<18} {:>9} {:>10.2} {:>8.2} {:<11} {:>8.2} {:>8.2} {:<11} {:>9.2} {:>7}{}",
                q.kind,
                p.requests,
                p.requests_per_sec,
                p.p50_ms,
                q.target_cell(Pct::P50),
                p.p90_ms,
                p.p99_ms,
                q.target_cell(Pct::P99),
                p.max_ms,
                p.errors,
                if q.skipped.is_some() {
                    "  (skipped)"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            s,
            "\ntargets: {} met, {} missed, {} not judged (errors or no requests)",
            self.targets_met, self.targets_missed, self.targets_not_judged
        );
        if let Some(d) = &self.depth {
            let _ = writeln!(
                s,
                "\ndepth: latest-code on each deep patient (target: p50 grows by less than {}x)",
                d.below_ratio
            );
            let _ = writeln!(
                s,
                "  {:>12} {:>9} {:>8} {:>8} {:>7}",
                "observations", "requests", "p50 ms", "p99 ms", "errors"
            );
            for r in &d.rows {
                let _ = writeln!(
                    s,
                    "  {:>12} {:>9} {:>8.2} {:>8.2} {:>7}",
                    r.observations, r.requests, r.p50_ms, r.p99_ms, r.errors
                );
            }
            let verdict = match d.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "n/a",
            };
            match (d.p50_ratio, d.rows.first(), d.rows.last()) {
                (Some(ratio), Some(a), Some(b)) => {
                    let _ = writeln!(
                        s,
                        "  p50 at {} / p50 at {} Observations: {ratio:.2}x  <{}x {verdict}",
                        b.observations, a.observations, d.below_ratio
                    );
                }
                _ => {
                    let _ = writeln!(
                        s,
                        "  p50 ratio: n/a (needs two deep patients with answers)  <{}x {verdict}",
                        d.below_ratio
                    );
                }
            }
        }
        let _ = writeln!(
            s,
            "\nqueries (one example each, sent before the phase, and its latency):"
        );
        for q in &self.queries {
            let _ = writeln!(s, "  {:<18} {:>9.2} ms  {}", q.kind, q.first_ms, q.example);
        }
        let with_errors: Vec<&QueryResult> = self
            .queries
            .iter()
            .filter(|q| !q.stats.error_samples.is_empty() || q.skipped.is_some())
            .collect();
        if !with_errors.is_empty() {
            let _ = writeln!(s, "\nfirst errors:");
            for q in with_errors {
                if let Some(why) = &q.skipped {
                    let _ = writeln!(s, "  [{}] skipped: {why}", q.kind);
                }
                for e in &q.stats.error_samples {
                    let _ = writeln!(s, "  [{}] {e}", q.kind);
                }
            }
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "\nnotes:");
            for n in &self.notes {
                let _ = writeln!(s, "  - {n}");
            }
        }
        let mut alarms = Vec::new();
        if self.errors > 0 {
            let bad: Vec<&str> = self
                .queries
                .iter()
                .filter(|q| q.stats.errors > 0)
                .map(|q| q.kind.as_str())
                .collect();
            alarms.push(format!(
                "!!! {} ERRORS in {}: the numbers of these queries are NOT valid !!!",
                self.errors,
                bad.join(", ")
            ));
        }
        if !self.empty.is_empty() {
            alarms.push(format!(
                "!!! NO ANSWER within the measured window in {} (see the first query's latency) !!!",
                self.empty.join(", ")
            ));
        }
        if let Some(width) = alarms.iter().map(|l| l.chars().count()).max() {
            let bar = "!".repeat(width);
            let _ = writeln!(s, "\n{bar}\n{}\n{bar}", alarms.join("\n"));
        }
        s
    }
}

/// The outcome of one query.
struct Probe {
    elapsed: Duration,
    /// `None` on a transport error.
    status: Option<StatusCode>,
    error: Option<String>,
}

/// Sends one query and checks the answer.
async fn probe(conn: &mut Conn, target: &Target, q: &Query) -> Probe {
    if let Expect::Everything {
        patient,
        observations,
    } = &q.expect
    {
        return walk_everything(conn, target, &q.path, patient, *observations).await;
    }
    let path = target.path(&q.path);
    let started = Instant::now();
    let reply = conn.send(Method::GET, &path, None).await;
    let elapsed = started.elapsed();
    match reply {
        Ok(r) => Probe {
            elapsed,
            status: Some(r.status),
            error: check(q, r.status, &r.body)
                .err()
                .map(|e| format!("GET {path}: {e}")),
        },
        Err(e) => Probe {
            elapsed,
            status: None,
            error: Some(format!("GET {path}: transport error: {e:#}")),
        },
    }
}

/// Fetches `path` and every next page, then checks them together: the time is the
/// whole walk's.
async fn walk_everything(
    conn: &mut Conn,
    target: &Target,
    path: &str,
    patient: &str,
    observations: u64,
) -> Probe {
    let first = target.path(path);
    let started = Instant::now();
    let mut pages = Vec::new();
    let mut next = Some(first.clone());
    let failed = |status, error: String| Probe {
        elapsed: started.elapsed(),
        status,
        error: Some(format!("GET {first}: {error}")),
    };
    while let Some(path) = next.take() {
        let reply = match conn.send(Method::GET, &path, None).await {
            Ok(reply) => reply,
            Err(e) => return failed(None, format!("transport error: {e:#}")),
        };
        if reply.status != StatusCode::OK || pages.len() > 1_000 {
            return failed(
                Some(reply.status),
                format!("page {} answered {}", pages.len() + 1, reply.status),
            );
        }
        if let Some(url) = searchset(reply.status, &reply.body)
            .ok()
            .and_then(|b| b.next().map(str::to_owned))
        {
            match target.locate(&url) {
                Ok((None, path)) => next = Some(path),
                _ => return failed(Some(reply.status), format!("a next link elsewhere: {url}")),
            }
        }
        pages.push((reply.status, reply.body.to_vec()));
    }
    let elapsed = started.elapsed();
    Probe {
        elapsed,
        status: Some(StatusCode::OK),
        error: check_everything(patient, observations, &pages)
            .err()
            .map(|e| format!("GET {first} and its next pages: {e}")),
    }
}

struct Out {
    latencies_us: Vec<u64>,
    errors: u64,
    finished_at: Instant,
}

/// Draws the next query of a phase.
type Draw = Arc<dyn Fn(&mut Rng) -> Query + Send + Sync>;

async fn worker(
    draw: Draw,
    target: Arc<Target>,
    samples: Arc<ErrorSamples>,
    mut rng: Rng,
    timing: Timing,
) -> Out {
    let mut conn = Conn::new(target.clone());
    let mut out = Out {
        latencies_us: Vec::with_capacity(4096),
        errors: 0,
        finished_at: Instant::now(),
    };
    while Instant::now() < timing.end {
        let q = draw(&mut rng);
        let started = Instant::now();
        let p = probe(&mut conn, &target, &q).await;
        let transport = p.status.is_none();
        if started >= timing.record_from {
            out.latencies_us
                .push(u64::try_from(p.elapsed.as_micros()).unwrap_or(u64::MAX));
            if let Some(e) = p.error {
                out.errors += 1;
                samples.push(|| e);
            }
        }
        if transport {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    out.finished_at = Instant::now();
    out
}

async fn run_phase(
    name: &str,
    draw: &Draw,
    salt: u64,
    target: &Arc<Target>,
    args: &SearchBenchArgs,
) -> Result<PhaseStats> {
    let timing = Timing::starting_now(
        Duration::from_secs(args.warmup),
        Duration::from_secs(args.duration),
    );
    let samples = Arc::new(ErrorSamples::default());
    let mut set = JoinSet::new();
    for idx in 0..args.connections {
        set.spawn(worker(
            draw.clone(),
            target.clone(),
            samples.clone(),
            Rng::for_worker(args.seed, salt, idx),
            timing,
        ));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut last = timing.record_from;
    while let Some(out) = set.join_next().await {
        let out = out.with_context(|| format!("{name} worker crashed"))?;
        lat.extend_from_slice(&out.latencies_us);
        errors += out.errors;
        last = last.max(out.finished_at);
    }
    let elapsed = last.saturating_duration_since(timing.record_from);
    Ok(PhaseStats::from_latencies(
        name,
        lat,
        errors,
        elapsed,
        false,
        samples.take(),
    ))
}

/// Sends one query of the phase first (a phase the server does not serve is reported,
/// not timed), then runs the timed phase.
async fn measure(
    name: &str,
    targets: &[LatencyTarget],
    draw: Draw,
    salt: u64,
    conn: &mut Conn,
    target: &Arc<Target>,
    args: &SearchBenchArgs,
) -> Result<QueryResult> {
    let example = draw(&mut Rng::for_worker(args.seed, salt, usize::MAX));
    let first = probe(conn, target, &example).await;
    let example_path = target.path(&example.path);
    let refused = first.status.is_some_and(|s| s != StatusCode::OK);
    if let Some(e) = first.error.filter(|_| refused) {
        eprintln!(
            "{name}: skipped, the server answered {} to its first query",
            first.status.map(|s| s.as_u16()).unwrap_or_default()
        );
        let stats = PhaseStats::from_latencies(name, Vec::new(), 1, Duration::ZERO, false, vec![]);
        return Ok(QueryResult::named(
            name,
            targets,
            example_path,
            first.elapsed,
            stats,
            Some(e),
        ));
    }
    eprintln!(
        "{name}: first query {:.1} ms; {}s warmup + {}s measured, {} connections...",
        first.elapsed.as_secs_f64() * 1000.0,
        args.warmup,
        args.duration,
        args.connections
    );
    let stats = run_phase(name, &draw, salt, target, args).await?;
    Ok(QueryResult::named(
        name,
        targets,
        example_path,
        first.elapsed,
        stats,
        None,
    ))
}

/// Checks that the data set described by the arguments is the one loaded: its first and
/// last patient and every deep patient exist, and the last Observation of the last
/// patient and of every deep patient is the last there is.
async fn check_dataset(conn: &mut Conn, target: &Target, pop: &Population) -> Result<()> {
    let g = &pop.g;
    let last = PatientKey::Ordinary(g.patients - 1);
    let hint = "load it with `ember dataset` first, or pass its --patients/--years (or --days)/--deep/--dataset-seed";
    let mut probes = vec![(format!("Patient/{}", g.patient_id(0)), StatusCode::OK)];
    for key in std::iter::once(last).chain(pop.deep()) {
        probes.push((format!("Patient/{}", g.patient_id_of(key)), StatusCode::OK));
        let count = g.observation_count(key);
        if count > 0 {
            let id = g.observation_id_of(key, count - 1);
            probes.push((format!("Observation/{id}"), StatusCode::OK));
        }
        let id = g.observation_id_of(key, count);
        probes.push((format!("Observation/{id}"), StatusCode::NOT_FOUND));
    }
    for (path, want) in probes {
        let full = target.path(&path);
        let reply = conn.send(Method::GET, &full, None).await?;
        if reply.status != want {
            bail!(
                "the data set on the server is not {} patients x {} day(s) (deep patients: {}) with seed {}: GET {full} answered {}, expected {want}; {hint}",
                g.patients,
                g.measurement_days(),
                describe_deep(&g.deep),
                g.seed,
                reply.status
            );
        }
    }
    Ok(())
}

/// Runs `ember bench-search`: prints the report, fails when any answer was wrong.
pub async fn run(args: SearchBenchArgs) -> Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    let days = period_days(args.years, args.days);
    if args.patients == 0 || days == 0 {
        bail!(
            "--patients and --years (or --days) must be at least 1, not {} patients x {}",
            args.patients,
            describe_period(args.years, args.days)
        );
    }
    let target = Arc::new(Target::parse(&args.url)?);
    let mut conn = Conn::new(target.clone());
    let metadata = target.path("metadata");
    if let Err(e) = conn.send(Method::GET, &metadata, None).await {
        bail!("FHIR server at {} is not reachable: {e:#}", args.url);
    }
    let pop = Arc::new(Population::new(Generator {
        seed: args.dataset_seed,
        patients: args.patients,
        days,
        deep: args.deep.0.clone(),
    }));
    check_dataset(&mut conn, &target, &pop).await?;

    let mut notes = Vec::new();
    let mut results = Vec::new();
    let mut depth = None;
    for kind in QueryKind::ALL {
        if !args.queries.contains(&kind) {
            continue;
        }
        if kind.needs_deep() && pop.heavy().is_none() {
            notes.push(format!(
                "{}: not run, the data set has no deep patients (--deep none)",
                kind.name()
            ));
            continue;
        }
        if kind == QueryKind::Depth {
            let mut rows = Vec::new();
            for key in pop.deep().collect::<Vec<_>>() {
                let PatientKey::Deep(count) = key else {
                    continue;
                };
                let name = format!("depth-{count}");
                let p = pop.clone();
                let draw: Draw = Arc::new(move |rng: &mut Rng| {
                    patient_query(QueryKind::Depth, Shape::LatestCode, rng, &p, key)
                });
                let salt = kind.salt().wrapping_add(count << 8);
                let r = measure(&name, &[], draw, salt, &mut conn, &target, &args).await?;
                rows.push(DepthRow {
                    observations: count,
                    patient: pop.g.patient_id_of(key),
                    requests: r.stats.requests,
                    errors: r.stats.errors,
                    p50_ms: r.stats.p50_ms,
                    p99_ms: r.stats.p99_ms,
                });
                results.push(r);
            }
            depth = Some(DepthReport::new(rows));
            continue;
        }
        let p = pop.clone();
        let draw: Draw = Arc::new(move |rng: &mut Rng| generate(kind, rng, &p));
        let r = measure(
            kind.name(),
            kind.targets(),
            draw,
            kind.salt(),
            &mut conn,
            &target,
            &args,
        )
        .await?;
        results.push(r);
    }
    if results
        .iter()
        .any(|q| q.kind == QueryKind::CodeCount.name())
    {
        notes.push("code-count: the target (< 200 ms) is applied to p99".into());
    }

    let mut report = SearchReport {
        timestamp: now_rfc3339(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        args: SearchReportArgs {
            url: args.url.clone(),
            patients: args.patients,
            years: args.years,
            days,
            deep: args.deep.0.clone(),
            dataset_seed: args.dataset_seed,
            seed: args.seed,
            connections: args.connections,
            duration_secs: args.duration,
            warmup_secs: args.warmup,
        },
        queries: results,
        depth,
        errors: 0,
        targets_met: 0,
        targets_missed: 0,
        targets_not_judged: 0,
        empty: Vec::new(),
        notes,
    };
    report.tally();
    print!("{}", report.render());
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serializing the JSON report")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the JSON report to {}", path.display()))?;
        eprintln!("JSON report written to {}", path.display());
    }
    if report.errors > 0 {
        bail!(
            "the search bench saw {} wrong or failed answers; its numbers are not valid",
            report.errors
        );
    }
    if !report.valid() {
        bail!(
            "no request of {} finished within the measured window; its numbers are not valid",
            report.empty.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
