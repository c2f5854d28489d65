//! The submit phase: home measurements posted to Ember's `$submit-measurement` by
//! every connection, and how fast triage turns them into the care team's Tasks.
//!
//! Setup (not measured) creates, with transaction Bundles of PUTs whose ids carry the
//! run's id (`bsub-<run>-…`), [`SubmitOpts::patients`] patients, each with a CareTeam,
//! a CarePlan (its `careTeam` the team) and one active ServiceRequest per
//! [`MEASURES`] entry, `basedOn` the plan, with the alarm zones as
//! `ehealth-referenceRange` extensions (docs/telemonitoring.md). The orders have no
//! `occurrenceTiming`, so the missing-measurement check leaves them alone.
//!
//! In the measured window each worker posts, on its own connection, one Observation
//! at a time for a random patient and measure, its value drawn so that about 80 % are
//! green, 15 % yellow and 5 % red ([`draw`]); anything but a `200` is an error.
//!
//! Every [`SubmitOpts::sample_every`]th successful submission of a worker in the window
//! is a lag sample: one poller, on a connection of its own with one request in flight,
//! asks every [`SubmitOpts::poll_interval`] for the Tasks of up to [`POLL_IDS`] pending
//! samples at once (`Task?_id=task-obs-<id>,…`, taking turns when more are pending).
//! The triage lag is the time from the submission's answer to the answer that found its
//! Task (an upper bound, by one poll round). One search per tick, rather than a read of
//! `Task/task-obs-<id>` per sample every 5 ms, bounds the probing's load however far
//! triage falls behind: reads per sample polled thousands of times a second once a
//! backlog grew, and took the server's time from triage.
//!
//! After the window the phase waits until the run's patients have one Task per
//! successful submission, warm-up included (`Task?patient=<all of them>&_summary=count`;
//! their only Tasks are triage's, `MeasurementForAssessment` or
//! `MeasurementForAssessmentFailureInAutoProcessing`, as their orders have no timing
//! for the missing-measurement check), reports how long that took after the last
//! submission was answered, then counts the Tasks per priority to compare with the
//! colours drawn. (A `code` filter with both categories made the count ten times
//! slower on SQLite, so there is none.)
//!
//! The resources stay on the server; run it against a scratch database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::http::{Conn, Reply, Target, parse_location};
use crate::phase::{Timing, WorkerOut, summarize};
use crate::queue::Latency;
use crate::rng::{Rng, mix64};
use crate::stats::{ErrorSamples, PhaseStats, round2, truncate};

/// The operation the phase posts to, relative to the base URL.
pub const OPERATION: &str = "$submit-measurement";
pub const THRESHOLD_URL: &str =
    "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-referenceRange";
pub const ZONE_TYPE_SYSTEM: &str = "urn:oid:1.2.208.184.100.1";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

/// The targets, shown next to the numbers.
pub const TARGET_PERCENT_OF_CREATE: f64 = 40.0;
pub const TARGET_LAG_P99_MS: f64 = 1000.0;

/// Seed salt of the phase's generators (the CRUD phases use 1 to 5).
const SALT: u64 = 6;
/// Patients per setup transaction.
const SETUP_CHUNK: usize = 16;
/// The most samples one poll asks for.
pub const POLL_IDS: usize = 100;

/// Settings of the submit phase.
#[derive(Debug, Clone)]
pub struct SubmitOpts {
    pub connections: usize,
    /// Submissions before the measured window (not counted, but triaged and drained).
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    /// Patients set up for the run.
    pub patients: usize,
    /// Every n-th successful submission of a worker in the window is a lag sample.
    pub sample_every: u64,
    /// The pause between two polls for the samples' Tasks.
    pub poll_interval: Duration,
    /// A sample whose Task is not there after this long is given up.
    pub probe_timeout: Duration,
    /// How often the backlog is counted after the window.
    pub drain_poll: Duration,
    /// How long to wait for the backlog to drain.
    pub drain_timeout: Duration,
}

impl SubmitOpts {
    pub fn new(connections: usize, warmup: Duration, duration: Duration, seed: u64) -> Self {
        Self {
            connections,
            warmup,
            duration,
            seed,
            patients: 64,
            sample_every: 10,
            poll_interval: Duration::from_millis(5),
            probe_timeout: Duration::from_secs(30),
            drain_poll: Duration::from_millis(20),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// A triage colour, and the Task priority Ember gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Green,
    Yellow,
    Red,
}

impl Colour {
    pub const ALL: [Colour; 3] = [Colour::Green, Colour::Yellow, Colour::Red];

    pub fn priority(self) -> &'static str {
        match self {
            Colour::Green => "routine",
            Colour::Yellow => "urgent",
            Colour::Red => "asap",
        }
    }

    fn index(self) -> usize {
        match self {
            Colour::Green => 0,
            Colour::Yellow => 1,
            Colour::Red => 2,
        }
    }
}

/// An alarm zone: inclusive bounds, a missing one open.
#[derive(Debug, Clone, Copy)]
pub struct Zone {
    /// `RAL` (red) or `GAL` (yellow).
    pub kind: &'static str,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// A measure the phase submits: its code, unit, alarm zones, and the integer values it
/// draws for each colour (inclusive ranges inside, or outside, the zones).
#[derive(Debug)]
pub struct Measure {
    /// Suffix of the ServiceRequest's id.
    pub key: &'static str,
    pub loinc: &'static str,
    pub display: &'static str,
    /// UCUM code, also the unit shown.
    pub unit: &'static str,
    pub zones: &'static [Zone],
    pub green: &'static [(u32, u32)],
    pub yellow: &'static [(u32, u32)],
    pub red: &'static [(u32, u32)],
}

impl Measure {
    fn ranges(&self, colour: Colour) -> &'static [(u32, u32)] {
        match colour {
            Colour::Green => self.green,
            Colour::Yellow => self.yellow,
            Colour::Red => self.red,
        }
    }
}

/// SpO2 (red at or below 88 %, yellow 88–92 %) and pulse (red at or below 40 and at or
/// above 120 /min, yellow 40–50 and 100–120 /min). Zones are inclusive and red wins, so
/// a yellow value lies strictly above the red limit.
pub const MEASURES: [Measure; 2] = [
    Measure {
        key: "spo2",
        loinc: "59408-5",
        display: "Oxygen saturation in Arterial blood by Pulse oximetry",
        unit: "%",
        zones: &[
            Zone {
                kind: "RAL",
                low: None,
                high: Some(88.0),
            },
            Zone {
                kind: "GAL",
                low: Some(88.0),
                high: Some(92.0),
            },
        ],
        green: &[(93, 100)],
        yellow: &[(89, 92)],
        red: &[(80, 88)],
    },
    Measure {
        key: "pulse",
        loinc: "8867-4",
        display: "Heart rate",
        unit: "/min",
        zones: &[
            Zone {
                kind: "RAL",
                low: None,
                high: Some(40.0),
            },
            Zone {
                kind: "RAL",
                low: Some(120.0),
                high: None,
            },
            Zone {
                kind: "GAL",
                low: Some(40.0),
                high: Some(50.0),
            },
            Zone {
                kind: "GAL",
                low: Some(100.0),
                high: Some(120.0),
            },
        ],
        green: &[(51, 99)],
        yellow: &[(41, 50), (100, 119)],
        red: &[(32, 40), (120, 150)],
    },
];

fn quantity(m: &Measure, value: f64) -> Value {
    json!({"value": value, "unit": m.unit, "system": UCUM, "code": m.unit})
}

/// A measure's zones as threshold extensions on its ServiceRequest.
pub fn zone_extensions(m: &Measure) -> Vec<Value> {
    m.zones
        .iter()
        .map(|z| {
            let mut parts = Vec::new();
            if let Some(low) = z.low {
                parts.push(json!({"url": "low", "valueQuantity": quantity(m, low)}));
            }
            if let Some(high) = z.high {
                parts.push(json!({"url": "high", "valueQuantity": quantity(m, high)}));
            }
            parts.push(json!({"url": "type", "valueCodeableConcept": {"coding": [
                {"system": ZONE_TYPE_SYSTEM, "code": z.kind}
            ]}}));
            json!({"url": THRESHOLD_URL, "extension": parts})
        })
        .collect()
}

/// The resources of one patient of the run, by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientIds {
    pub patient: String,
    pub team: String,
    pub plan: String,
    /// One ServiceRequest per [`MEASURES`] entry, in that order.
    pub orders: Vec<String>,
}

/// What setup creates: the run's patients and their orders.
#[derive(Debug, Clone)]
pub struct Population {
    pub run: String,
    pub nurse: String,
    pub patients: Vec<PatientIds>,
}

impl Population {
    pub fn new(run: &str, patients: usize) -> Self {
        let prefix = format!("bsub-{run}");
        Self {
            run: run.to_owned(),
            nurse: format!("{prefix}-nurse"),
            patients: (0..patients)
                .map(|i| PatientIds {
                    patient: format!("{prefix}-p{i}"),
                    team: format!("{prefix}-p{i}-team"),
                    plan: format!("{prefix}-p{i}-plan"),
                    orders: MEASURES
                        .iter()
                        .map(|m| format!("{prefix}-p{i}-{}", m.key))
                        .collect(),
                })
                .collect(),
        }
    }

    /// The setup transactions: PUTs of [`SETUP_CHUNK`] patients each with their team,
    /// plan and orders; the first one also holds the care teams' nurse.
    pub fn setup_bundles(&self) -> Vec<Value> {
        let put = |resource: Value| {
            let url = format!(
                "{}/{}",
                resource["resourceType"].as_str().unwrap_or_default(),
                resource["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": url, "resource": resource, "request": {"method": "PUT", "url": url}})
        };
        let nurse = format!("Practitioner/{}", self.nurse);
        let mut bundles = Vec::new();
        for (chunk_no, chunk) in self.patients.chunks(SETUP_CHUNK).enumerate() {
            let mut entries = Vec::new();
            if chunk_no == 0 {
                entries.push(put(json!({
                    "resourceType": "Practitioner", "id": self.nurse, "active": true,
                    "name": [{"family": "Bench", "given": ["Nurse"]}],
                })));
            }
            for p in chunk {
                let patient = format!("Patient/{}", p.patient);
                let plan = format!("CarePlan/{}", p.plan);
                entries.push(put(json!({
                    "resourceType": "Patient", "id": p.patient, "active": true,
                    "name": [{"family": "Bench", "given": [p.patient]}],
                })));
                entries.push(put(json!({
                    "resourceType": "CareTeam", "id": p.team, "status": "active",
                    "subject": {"reference": patient},
                    "participant": [{"member": {"reference": nurse}}],
                })));
                entries.push(put(json!({
                    "resourceType": "CarePlan", "id": p.plan, "status": "active",
                    "intent": "plan", "subject": {"reference": patient},
                    "careTeam": [{"reference": format!("CareTeam/{}", p.team)}],
                    "activity": p.orders.iter().map(|o| json!({
                        "reference": {"reference": format!("ServiceRequest/{o}")}
                    })).collect::<Vec<_>>(),
                })));
                for (m, order) in MEASURES.iter().zip(&p.orders) {
                    entries.push(put(json!({
                        "resourceType": "ServiceRequest", "id": order,
                        "extension": zone_extensions(m),
                        "status": "active", "intent": "order",
                        "basedOn": [{"reference": plan}],
                        "code": {"coding": [{"system": LOINC, "code": m.loinc, "display": m.display}]},
                        "subject": {"reference": patient},
                        "requester": {"reference": nurse},
                    })));
                }
            }
            bundles
                .push(json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}));
        }
        bundles
    }

    /// The count of the Tasks of every patient of the run
    /// (`Task?patient=…&_summary=count`), with `extra` parameters.
    pub fn task_count_query(&self, extra: &str) -> String {
        let patients: Vec<String> = self
            .patients
            .iter()
            .map(|p| format!("Patient/{}", p.patient))
            .collect();
        format!("Task?patient={}{extra}&_summary=count", patients.join(","))
    }
}

/// One drawn measurement: whose, which measure, its colour and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Draw {
    pub patient: usize,
    pub measure: usize,
    pub colour: Colour,
    pub value: f64,
}

/// Draws a measurement: a patient and measure uniformly, the colour 80/15/5 %
/// green/yellow/red, then a value of that colour.
pub fn draw(rng: &mut Rng, patients: usize) -> Draw {
    let patient = rng.index(patients);
    let measure = rng.index(MEASURES.len());
    let colour = match rng.below(100) {
        0..80 => Colour::Green,
        80..95 => Colour::Yellow,
        _ => Colour::Red,
    };
    let ranges = MEASURES[measure].ranges(colour);
    let (lo, hi) = *rng.pick(ranges);
    let value = rng.range(u64::from(lo), u64::from(hi)) as f64;
    Draw {
        patient,
        measure,
        colour,
        value,
    }
}

pub(crate) fn uuid(rng: &mut Rng) -> String {
    let (a, b) = (rng.next_u64(), rng.next_u64());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// The `$submit-measurement` body of a drawn measurement: a `Parameters` whose
/// `measurement` is a transaction Bundle of one POST Observation. The fullUrl and the
/// time (in 2026, before the bench's own day) come from `rng`.
pub fn submission(pop: &Population, d: &Draw, rng: &mut Rng) -> Value {
    let m = &MEASURES[d.measure];
    let ids = &pop.patients[d.patient];
    let patient = format!("Patient/{}", ids.patient);
    let full_url = format!("urn:uuid:{}", uuid(rng));
    let effective = format!(
        "2026-{:02}-{:02}T{:02}:{:02}:{:02}+01:00",
        rng.range(1, 11),
        rng.range(1, 28),
        rng.range(6, 22),
        rng.range(0, 59),
        rng.range(0, 59)
    );
    let observation = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "vital-signs",
        }]}],
        "code": {"coding": [{"system": LOINC, "code": m.loinc, "display": m.display}]},
        "subject": {"reference": patient},
        "basedOn": [{"reference": format!("ServiceRequest/{}", ids.orders[d.measure])}],
        "effectiveDateTime": effective,
        "performer": [{"reference": patient}],
        "valueQuantity": quantity(m, d.value),
    });
    json!({"resourceType": "Parameters", "parameter": [{"name": "measurement", "resource": {
        "resourceType": "Bundle", "type": "transaction", "entry": [{
            "fullUrl": full_url,
            "request": {"method": "POST", "url": "Observation"},
            "resource": observation,
        }],
    }}]})
}

/// The stored Observation's id from a `$submit-measurement` answer: the
/// transaction-response's `entry[0].response.location`.
pub fn observation_id(answer: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(answer).ok()?;
    let bundle = v["parameter"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == "bundle")?
        .get("resource")?;
    let location = bundle["entry"][0]["response"]["location"].as_str()?;
    match parse_location(location)? {
        (t, id) if t == "Observation" => Some(id),
        _ => None,
    }
}

/// Submissions per colour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ColourCounts {
    pub green: u64,
    pub yellow: u64,
    pub red: u64,
}

impl ColourCounts {
    pub(crate) fn add(&mut self, c: Colour) {
        match c {
            Colour::Green => self.green += 1,
            Colour::Yellow => self.yellow += 1,
            Colour::Red => self.red += 1,
        }
    }

    pub(crate) fn merge(&mut self, o: &ColourCounts) {
        self.green += o.green;
        self.yellow += o.yellow;
        self.red += o.red;
    }

    pub fn total(&self) -> u64 {
        self.green + self.yellow + self.red
    }
}

/// The run's Tasks per priority.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PriorityCounts {
    pub routine: u64,
    pub urgent: u64,
    pub asap: u64,
}

impl PriorityCounts {
    /// Whether they are the priorities of the colours drawn.
    pub fn matches(&self, drawn: &ColourCounts) -> bool {
        (self.routine, self.urgent, self.asap) == (drawn.green, drawn.yellow, drawn.red)
    }
}

/// What the lag poller measured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probes {
    /// Submission answered to Task found, in microseconds, per sample.
    pub lags_us: Vec<u64>,
    /// Samples given up (their Task was not there in time).
    pub timeouts: u64,
    /// Searches the poller sent.
    pub polls: u64,
}

/// How the backlog drained after the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drained {
    pub drained: bool,
    /// From the last submission's answer to the count that found every Task.
    pub secs: f64,
    /// Tasks found by the last count.
    pub tasks: u64,
    /// The Tasks per priority, counted once drained.
    pub priorities: Option<PriorityCounts>,
}

/// Result of the submit phase.
#[derive(Debug, Clone, Serialize)]
pub struct SubmitResult {
    /// The run's id: its resources are `bsub-<run>-…`.
    pub run: String,
    pub patients: usize,
    /// The `$submit-measurement` requests of the measured window: req/s, latencies,
    /// errors (any answer but 200).
    pub http: PhaseStats,
    /// Successful submissions, warm-up included: each must get its Task.
    pub submitted: u64,
    /// The colours drawn for them.
    pub drawn: ColourCounts,
    /// Every n-th successful submission of a worker in the window was a lag sample.
    pub sample_every: u64,
    pub lag_samples: u64,
    /// Submission answered to its Task found (`Task?_id=task-obs-<id>,…`).
    pub lag: Latency,
    /// Samples given up before their Task was there.
    pub lag_timeouts: u64,
    /// Searches the lag poller sent.
    pub lag_polls: u64,
    /// Whether every submission had its Task before the drain timeout.
    pub drained: bool,
    /// From the last submission's answer until every Task was there.
    pub drain_secs: f64,
    /// The run's triage Tasks found at the end.
    pub tasks: u64,
    /// Those Tasks per priority (after a drain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priorities: Option<PriorityCounts>,
    /// Submissions/s as a percentage of the create phase's requests/s in this run.
    pub percent_of_create: Option<f64>,
}

impl SubmitResult {
    /// Builds the result from the workers', probes' and drain's outputs.
    pub fn new(
        run: &str,
        patients: usize,
        http: PhaseStats,
        drawn: ColourCounts,
        sample_every: u64,
        probes: &Probes,
        drained: Drained,
    ) -> Self {
        Self {
            run: run.to_owned(),
            patients,
            http,
            submitted: drawn.total(),
            drawn,
            sample_every,
            lag_samples: probes.lags_us.len() as u64,
            lag: Latency::from_us(probes.lags_us.clone()),
            lag_timeouts: probes.timeouts,
            lag_polls: probes.polls,
            drained: drained.drained,
            drain_secs: round2(drained.secs),
            tasks: drained.tasks,
            priorities: drained.priorities,
            percent_of_create: None,
        }
    }

    /// Sets [`SubmitResult::percent_of_create`] from the create phase's stats.
    pub fn compare_with_create(&mut self, create: Option<&PhaseStats>) {
        self.percent_of_create = create
            .filter(|c| c.requests_per_sec > 0.0 && self.http.requests > 0)
            .map(|c| round2(self.http.requests_per_sec / c.requests_per_sec * 100.0));
    }

    /// Remarks for the report's notes.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.http.errors > 0 {
            notes.push(format!(
                "submit: {} of {} submissions failed; its numbers are not comparable",
                self.http.errors, self.http.requests
            ));
        }
        if !self.drained {
            notes.push(format!(
                "submit: the backlog did not drain: {} of {} Tasks after {:.2}s",
                self.tasks, self.submitted, self.drain_secs
            ));
        }
        if self.lag_timeouts > 0 {
            notes.push(format!(
                "submit: {} of {} lag samples were given up before their Task was there",
                self.lag_timeouts,
                self.lag_timeouts + self.lag_samples
            ));
        }
        if self.lag_samples > 0 && self.lag.p99_ms >= TARGET_LAG_P99_MS {
            notes.push(format!(
                "submit: triage lag p99 {:.2} ms is not below the {TARGET_LAG_P99_MS} ms target",
                self.lag.p99_ms
            ));
        }
        if let Some(p) = self
            .percent_of_create
            .filter(|p| *p < TARGET_PERCENT_OF_CREATE)
        {
            notes.push(format!(
                "submit: {p:.2} % of the create rate is below the {TARGET_PERCENT_OF_CREATE} % target"
            ));
        }
        if let Some(p) = self.priorities.filter(|p| !p.matches(&self.drawn)) {
            notes.push(format!(
                "submit: Task priorities routine/urgent/asap {}/{}/{} differ from the colours \
                 drawn green/yellow/red {}/{}/{}",
                p.routine, p.urgent, p.asap, self.drawn.green, self.drawn.yellow, self.drawn.red
            ));
        }
        notes
    }
}

/// The run's id, in the ids of everything it creates.
pub(crate) fn run_id() -> String {
    let r = mix64(crate::queue::now_micros() as u64 ^ (u64::from(std::process::id()) << 40));
    format!("{:08x}", r as u32)
}

fn describe(method: &Method, path: &str, reply: &Reply) -> String {
    format!(
        "{method} {path} -> {}: {}",
        reply.status,
        truncate(&String::from_utf8_lossy(&reply.body), 200)
    )
}

/// What the workers share.
struct Shared {
    target: Arc<Target>,
    pop: Population,
    opts: SubmitOpts,
    samples: ErrorSamples,
    /// Lag samples waiting for their Task: the Observation's id, when it was answered.
    pending: Mutex<Vec<(String, Instant)>>,
    /// Set once the workers are done: the poller stops when nothing is pending.
    done: AtomicBool,
}

impl Shared {
    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant)>> {
        match self.pending.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

/// One worker's output besides its latencies.
struct Tally {
    drawn: ColourCounts,
}

/// Runs the submit phase against the server at `target`.
pub async fn run(target: Arc<Target>, opts: &SubmitOpts) -> Result<SubmitResult> {
    if opts.connections == 0 || opts.patients == 0 || opts.sample_every == 0 {
        bail!("the submit phase needs connections, patients and a sample rate above 0");
    }
    let pop = Population::new(&run_id(), opts.patients);
    eprintln!(
        "submit: setup of {} patients bsub-{}-* (care team, care plan, {} orders with \
         alarm zones each)...",
        opts.patients,
        pop.run,
        MEASURES.len()
    );
    let mut conn = Conn::new(target.clone());
    let base = target.path("");
    for bundle in pop.setup_bundles() {
        let reply = conn
            .send(Method::POST, &base, Some(Bytes::from(bundle.to_string())))
            .await
            .with_context(|| format!("submit setup: POST {base} failed"))?;
        if !reply.status.is_success() {
            bail!("submit setup: {}", describe(&Method::POST, &base, &reply));
        }
    }

    eprintln!(
        "submit: {}s warmup + {}s measured, {} connections posting to {OPERATION}, \
         every {}th probed...",
        opts.warmup.as_secs(),
        opts.duration.as_secs(),
        opts.connections,
        opts.sample_every
    );
    let shared = Arc::new(Shared {
        target: target.clone(),
        pop,
        opts: opts.clone(),
        samples: ErrorSamples::default(),
        pending: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    });
    let poller = tokio::spawn(poll_lags(shared.clone()));
    let timing = Timing::starting_now(opts.warmup, opts.duration);
    let mut workers = tokio::task::JoinSet::new();
    for idx in 0..opts.connections {
        workers.spawn(worker(shared.clone(), idx, timing));
    }
    let mut outs = Vec::with_capacity(opts.connections);
    let mut drawn = ColourCounts::default();
    while let Some(res) = workers.join_next().await {
        let (out, tally) = res.context("submit worker crashed")?;
        outs.push(out);
        drawn.merge(&tally.drawn);
    }
    let answered = Instant::now();
    shared.done.store(true, Ordering::Release);
    let (http, _) = summarize("submit", &timing, outs, shared.samples.take());

    eprintln!(
        "submit: {} submitted; waiting for their Tasks...",
        drawn.total()
    );
    let mut drained = drain(&mut conn, &shared, drawn.total(), answered).await?;
    let probes = poller.await.context("the lag poller crashed")??;
    if drained.drained {
        drained.priorities = Some(priorities(&mut conn, &shared).await?);
    }
    Ok(SubmitResult::new(
        &shared.pop.run,
        opts.patients,
        http,
        drawn,
        opts.sample_every,
        &probes,
        drained,
    ))
}

async fn worker(shared: Arc<Shared>, idx: usize, timing: Timing) -> (WorkerOut, Tally) {
    let mut out = WorkerOut::new();
    let mut tally = Tally {
        drawn: ColourCounts::default(),
    };
    let mut conn = Conn::new(shared.target.clone());
    let mut rng = Rng::for_worker(shared.opts.seed, SALT, idx);
    let path = shared.target.path(OPERATION);
    let mut in_window = 0u64;
    while Instant::now() < timing.end {
        let d = draw(&mut rng, shared.pop.patients.len());
        let body = Bytes::from(submission(&shared.pop, &d, &mut rng).to_string());
        let started = Instant::now();
        let result = conn.send(Method::POST, &path, Some(body)).await;
        let mut transport_error = false;
        let ok = match result {
            Ok(reply) if reply.status == StatusCode::OK => match observation_id(&reply.body) {
                Some(id) => {
                    tally.drawn.add(d.colour);
                    if started >= timing.record_from {
                        if in_window % shared.opts.sample_every == 0 {
                            shared.pending().push((id, Instant::now()));
                        }
                        in_window += 1;
                    }
                    true
                }
                None => {
                    shared.samples.push(|| {
                        format!(
                            "{}: no Observation location in entry[0].response",
                            describe(&Method::POST, &path, &reply)
                        )
                    });
                    false
                }
            },
            Ok(reply) => {
                shared
                    .samples
                    .push(|| describe(&Method::POST, &path, &reply));
                false
            }
            Err(e) => {
                transport_error = true;
                shared
                    .samples
                    .push(|| format!("POST {path} -> transport error: {e:#}"));
                false
            }
        };
        out.record(&timing, started, ok);
        if transport_error {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    out.finished_at = Instant::now();
    (out, tally)
}

/// Polls for the pending samples' Tasks until the workers are done and nothing is
/// pending: each poll asks for the [`POLL_IDS`] at the front of the queue, and those
/// not found go to its back, so every sample is asked for in turn however many are
/// pending. A sample whose Task is not there after [`SubmitOpts::probe_timeout`] is
/// given up.
async fn poll_lags(shared: Arc<Shared>) -> Result<Probes> {
    let mut conn = Conn::new(shared.target.clone());
    let mut out = Probes::default();
    let mut errors = 0u32;
    loop {
        let batch: Vec<(String, Instant)> = {
            let mut pending = shared.pending();
            if pending.is_empty() && shared.done.load(Ordering::Acquire) {
                return Ok(out);
            }
            let n = pending.len().min(POLL_IDS);
            pending.drain(..n).collect()
        };
        if !batch.is_empty() {
            let ids: Vec<String> = batch
                .iter()
                .map(|(id, _)| format!("task-obs-{id}"))
                .collect();
            let path = shared.target.path(&format!(
                "Task?_id={}&_elements=id&_count={}",
                ids.join(","),
                ids.len()
            ));
            out.polls += 1;
            let found = match conn.send(Method::GET, &path, None).await {
                Ok(reply) if reply.status == StatusCode::OK => found_ids(&reply.body),
                Ok(reply) => {
                    errors += 1;
                    shared
                        .samples
                        .push(|| format!("lag poll: {}", describe(&Method::GET, &path, &reply)));
                    Vec::new()
                }
                Err(e) => {
                    errors += 1;
                    shared
                        .samples
                        .push(|| format!("lag poll: GET {path} -> transport error: {e:#}"));
                    Vec::new()
                }
            };
            if errors >= 100 {
                bail!("the lag poller's searches failed 100 times (see the first errors)");
            }
            let kept = settle(
                batch,
                &found,
                Instant::now(),
                shared.opts.probe_timeout,
                &mut out,
            );
            shared.pending().extend(kept);
        }
        tokio::time::sleep(shared.opts.poll_interval).await;
    }
}

/// Records the samples of a poll whose Task was `found` (`task-obs-<id>`) and those
/// past `timeout`; the rest, to be asked for again.
pub fn settle(
    batch: Vec<(String, Instant)>,
    found: &[String],
    now: Instant,
    timeout: Duration,
    out: &mut Probes,
) -> Vec<(String, Instant)> {
    let found: std::collections::HashSet<&str> = found
        .iter()
        .filter_map(|f| f.strip_prefix("task-obs-"))
        .collect();
    let mut kept = Vec::new();
    for (id, answered) in batch {
        let waited = now.saturating_duration_since(answered);
        if found.contains(id.as_str()) {
            out.lags_us
                .push(u64::try_from(waited.as_micros()).unwrap_or(u64::MAX));
        } else if waited >= timeout {
            out.timeouts += 1;
        } else {
            kept.push((id, answered));
        }
    }
    kept
}

/// The ids of a searchset's resources.
pub fn found_ids(body: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    v["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned))
        .collect()
}

/// The `total` of a `_summary=count` search.
async fn count(conn: &mut Conn, target: &Target, query: &str) -> Result<u64> {
    let path = target.path(query);
    let reply = conn
        .send(Method::GET, &path, None)
        .await
        .with_context(|| format!("GET {path}"))?;
    if reply.status != StatusCode::OK {
        bail!("{}", describe(&Method::GET, &path, &reply));
    }
    let v: Value = serde_json::from_slice(&reply.body)
        .with_context(|| format!("GET {path}: the answer is not JSON"))?;
    v["total"]
        .as_u64()
        .ok_or_else(|| anyhow!("GET {path}: the searchset has no total"))
}

/// Waits until the run's patients have `expected` triage Tasks.
async fn drain(
    conn: &mut Conn,
    shared: &Shared,
    expected: u64,
    answered: Instant,
) -> Result<Drained> {
    let query = shared.pop.task_count_query("");
    let deadline = answered + shared.opts.drain_timeout;
    loop {
        let tasks = count(conn, &shared.target, &query)
            .await
            .context("counting the run's Tasks")?;
        if tasks >= expected {
            return Ok(Drained {
                drained: true,
                secs: answered.elapsed().as_secs_f64(),
                tasks,
                priorities: None,
            });
        }
        if Instant::now() >= deadline {
            eprintln!(
                "submit: {tasks} of {expected} Tasks after {}s; giving up",
                shared.opts.drain_timeout.as_secs()
            );
            return Ok(Drained {
                drained: false,
                secs: answered.elapsed().as_secs_f64(),
                tasks,
                priorities: None,
            });
        }
        tokio::time::sleep(shared.opts.drain_poll).await;
    }
}

/// The run's triage Tasks per priority.
async fn priorities(conn: &mut Conn, shared: &Shared) -> Result<PriorityCounts> {
    let mut counts = [0u64; 3];
    for c in Colour::ALL {
        let query = shared
            .pop
            .task_count_query(&format!("&priority={}", c.priority()));
        counts[c.index()] = count(conn, &shared.target, &query)
            .await
            .with_context(|| format!("counting the run's {} Tasks", c.priority()))?;
    }
    Ok(PriorityCounts {
        routine: counts[0],
        urgent: counts[1],
        asap: counts[2],
    })
}

#[cfg(test)]
pub(crate) mod tests;
