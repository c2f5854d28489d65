//! The cds phase: Ember's CDS Hooks service `telemonitoring-summary` (hook
//! `patient-view`) called for the patients of a server loaded with `ember dataset`, in
//! two modes measured one after the other in the same run:
//!
//! - **with prefetch**: the call carries the service's `tasks` prefetch (the patient's
//!   open Tasks with their triage results and measurements), which the phase fetched
//!   itself before measuring, and no `fhirServer`: Ember only evaluates;
//! - **own store**: no prefetch, `fhirServer` the FHIR base URL the phase was given
//!   (`--url`, exactly as Ember sees itself from the `Host` header), so Ember runs the
//!   prefetch query against its own store, then evaluates.
//!
//! Setup (not measured): discovery (`GET /cds-services` at the server's root) gives the
//! prefetch template; the dataset's ordinary patients `dataset-<seed>-pat-0..` are
//! looked up (the first [`CdsOpts::patients`] found are used). The dataset was stored
//! by plain REST, so nothing of it is triaged: the phase posts
//! [`CdsOpts::submissions`] measurements per patient to `$submit-measurement` (SpO2 and
//! pulse against the dataset's own orders, whose alarm zones are the submit phase's;
//! about 80/15/5 % green/yellow/red, as the submit phase draws them), waits until the
//! patients have a Task per successful submission, then fetches each patient's prefetch
//! (`GET {base}/Task?patient=…&status=…&_include=…`, the template from discovery).
//!
//! In each mode every connection posts one call at a time for a random patient, with a
//! fresh `hookInstance`; anything but a `200` whose body has a `cards` array is an
//! error. The cards each patient gets are compared between the two modes.
//!
//! The CDS services must answer the bench: Ember without `EMBER_CDS_CLIENTS` on a
//! loopback address (the bench has no CDS client JWT), and reading its own store needs
//! Ember without `EMBER_AUTH_ISSUERS` (there is no `fhirAuthorization` to send). The
//! submitted measurements and their Tasks stay on the server.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use crate::dataset::{Generator, PatientKey};
use crate::http::{Conn, Reply, Target};
use crate::phase::{Timing, WorkerOut, summarize};
use crate::queue::Latency;
use crate::rng::Rng;
use crate::stats::{ErrorSamples, PhaseStats, round2, truncate};
use crate::submit::{self, ColourCounts, Draw, MEASURES, OPERATION, PatientIds, Population};

/// The service measured, and its hook.
pub const SERVICE: &str = "telemonitoring-summary";
pub const HOOK: &str = "patient-view";
/// The discovery endpoint, at the server's root.
pub const DISCOVERY: &str = "/cds-services";
/// The prefetch key of the service, and the one token its template may hold.
pub const PREFETCH_KEY: &str = "tasks";
pub const PATIENT_TOKEN: &str = "{{context.patientId}}";
/// `context.userId` of the calls.
pub const USER: &str = "Practitioner/ember-bench";

/// The targets, shown next to the numbers.
pub const TARGET_PREFETCH_P99_MS: f64 = 25.0;
pub const TARGET_OWN_STORE_P99_MS: f64 = 50.0;

/// Seed salts of the phase's generators (the CRUD phases use 1 to 5, submit 6).
const SALT_SUBMIT: u64 = 7;
const SALT_PREFETCH: u64 = 8;
const SALT_OWN: u64 = 9;
/// Ids per search when looking up patients or counting their Tasks.
const ID_CHUNK: usize = 50;
/// The `hookInstance` of a body template, replaced in every call.
const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000000";

/// Settings of the cds phase.
#[derive(Debug, Clone)]
pub struct CdsOpts {
    pub connections: usize,
    /// Calls before each mode's measured window (not counted).
    pub warmup: Duration,
    /// The measured window of each mode.
    pub duration: Duration,
    pub seed: u64,
    /// The seed `ember dataset` loaded the server with (its ids carry it).
    pub dataset_seed: u64,
    /// Dataset patients to use: the first this many found.
    pub patients: usize,
    /// Measurements submitted per patient before measuring.
    pub submissions: usize,
    /// The FHIR base URL: `fhirServer` of the own-store calls.
    pub fhir_server: String,
    /// How long to wait for the submissions' Tasks, and how often to count them.
    pub tasks_timeout: Duration,
    pub tasks_poll: Duration,
}

impl CdsOpts {
    pub fn new(
        connections: usize,
        warmup: Duration,
        duration: Duration,
        seed: u64,
        fhir_server: &str,
    ) -> Self {
        Self {
            connections,
            warmup,
            duration,
            seed,
            dataset_seed: 42,
            patients: 200,
            submissions: 4,
            fhir_server: fhir_server.trim().trim_end_matches('/').to_owned(),
            tasks_timeout: Duration::from_secs(120),
            tasks_poll: Duration::from_millis(100),
        }
    }
}

/// The empty `tasks` prefetch: a searchset without entries.
pub fn empty_prefetch() -> Value {
    json!({"resourceType": "Bundle", "type": "searchset", "entry": []})
}

/// A `patient-view` call of [`SERVICE`]: `tasks` as its prefetch when given,
/// `fhir_server` as its `fhirServer` when given.
pub fn patient_view_request(
    hook_instance: &str,
    user: &str,
    patient: &str,
    tasks: Option<&Value>,
    fhir_server: Option<&str>,
) -> Value {
    let mut body = json!({"hook": HOOK, "hookInstance": hook_instance});
    if let Some(server) = fhir_server {
        body["fhirServer"] = json!(server);
    }
    body["context"] = json!({"userId": user, "patientId": patient});
    if let Some(tasks) = tasks {
        body["prefetch"] = json!({ PREFETCH_KEY: tasks });
    }
    body
}

/// A call's body serialized once, with its `hookInstance` left open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyTemplate {
    prefix: String,
    suffix: String,
}

impl BodyTemplate {
    pub fn new(patient: &str, tasks: Option<&Value>, fhir_server: Option<&str>) -> Self {
        let text = patient_view_request(PLACEHOLDER, USER, patient, tasks, fhir_server).to_string();
        // `hookInstance` comes before the context and the prefetch.
        let (prefix, suffix) = text.split_once(PLACEHOLDER).unwrap_or((&text, ""));
        Self {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        }
    }

    /// The body with this `hookInstance`.
    pub fn body(&self, hook_instance: &str) -> Bytes {
        let mut s =
            String::with_capacity(self.prefix.len() + hook_instance.len() + self.suffix.len());
        s.push_str(&self.prefix);
        s.push_str(hook_instance);
        s.push_str(&self.suffix);
        Bytes::from(s)
    }

    /// The size of a body in bytes.
    pub fn size(&self) -> usize {
        self.prefix.len() + PLACEHOLDER.len() + self.suffix.len()
    }
}

/// The service's `tasks` prefetch template from the discovery document. It must be
/// the `patient-view` service and hold no token but [`PATIENT_TOKEN`].
pub fn tasks_template(discovery: &Value) -> Result<String> {
    let service = discovery["services"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["id"] == SERVICE)
        .ok_or_else(|| anyhow!("CDS discovery does not list {SERVICE}"))?;
    ensure!(
        service["hook"] == HOOK,
        "{SERVICE} answers the hook {}, not {HOOK}",
        service["hook"]
    );
    let template = service["prefetch"][PREFETCH_KEY]
        .as_str()
        .ok_or_else(|| anyhow!("{SERVICE} has no {PREFETCH_KEY:?} prefetch template"))?;
    ensure!(
        template.contains(PATIENT_TOKEN) && !template.replace(PATIENT_TOKEN, "").contains("{{"),
        "{SERVICE}'s prefetch template {template:?} has tokens besides {PATIENT_TOKEN}"
    );
    Ok(template.to_owned())
}

/// The template for one patient (a FHIR id, so it needs no escaping).
pub fn render(template: &str, patient: &str) -> String {
    template.replace(PATIENT_TOKEN, patient)
}

/// The dataset's ordinary patients `0..n` with the ids the phase needs: the patient,
/// its care team and plan, and its orders for the submit phase's [`MEASURES`].
pub fn dataset_population(seed: u64, n: usize) -> Population {
    let g = Generator {
        seed,
        patients: n as u64,
        days: 0,
        deep: Vec::new(),
    };
    Population {
        run: format!("dataset-{seed}"),
        nurse: String::new(),
        patients: (0..n as u64)
            .map(|i| {
                let key = PatientKey::Ordinary(i);
                PatientIds {
                    patient: g.patient_id_of(key),
                    team: g.careteam_id(key),
                    plan: g.careplan_id(key),
                    orders: MEASURES.iter().map(|m| g.order_id(key, m.key)).collect(),
                }
            })
            .collect(),
    }
}

/// The measurements submitted before measuring: `per_patient` for every patient, in
/// patient order, their measure and colour drawn as the submit phase draws them.
pub fn plan_submissions(patients: usize, per_patient: usize, rng: &mut Rng) -> Vec<Draw> {
    let mut draws = Vec::with_capacity(patients * per_patient);
    for patient in 0..patients {
        for _ in 0..per_patient {
            let mut d = submit::draw(rng, 1);
            d.patient = patient;
            draws.push(d);
        }
    }
    draws
}

/// Queries over `patients` in chunks of [`ID_CHUNK`]: `make` gets the chunk's
/// comma-separated `Patient/<id>` references.
fn chunked_queries(patients: &[PatientIds], make: impl Fn(&str) -> String) -> Vec<String> {
    patients
        .chunks(ID_CHUNK)
        .map(|chunk| {
            let refs: Vec<String> = chunk
                .iter()
                .map(|p| format!("Patient/{}", p.patient))
                .collect();
            make(&refs.join(","))
        })
        .collect()
}

/// The searches that count the Tasks of `patients`.
pub fn task_count_queries(patients: &[PatientIds]) -> Vec<String> {
    chunked_queries(patients, |refs| {
        format!("Task?patient={refs}&_summary=count")
    })
}

/// The searches that find which of `patients` exist.
pub fn patient_queries(patients: &[PatientIds]) -> Vec<String> {
    patients
        .chunks(ID_CHUNK)
        .map(|chunk| {
            let ids: Vec<&str> = chunk.iter().map(|p| p.patient.as_str()).collect();
            format!(
                "Patient?_id={}&_elements=id&_count={}",
                ids.join(","),
                chunk.len()
            )
        })
        .collect()
}

/// The Tasks (search mode `match`, or any Task when no mode is given) and all the
/// resources of a searchset.
pub fn searchset_counts(bundle: &Value) -> (u64, u64) {
    let entries = bundle["entry"].as_array().map_or(&[][..], Vec::as_slice);
    let tasks = entries
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "Task")
        .filter(|e| e["search"]["mode"].as_str().is_none_or(|m| m == "match"))
        .count();
    (tasks as u64, entries.len() as u64)
}

/// The cards of CDS answers, by indicator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CardCounts {
    /// Answers counted.
    pub answers: u64,
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

impl CardCounts {
    /// The cards of one answer, or `None` when it is not JSON with a `cards` array.
    pub fn of_answer(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let mut counts = Self {
            answers: 1,
            ..Self::default()
        };
        for card in v["cards"].as_array()? {
            match card["indicator"].as_str() {
                Some("critical") => counts.critical += 1,
                Some("warning") => counts.warning += 1,
                _ => counts.info += 1,
            }
        }
        Some(counts)
    }

    pub fn cards(&self) -> u64 {
        self.critical + self.warning + self.info
    }

    /// Cards per answer.
    pub fn per_answer(&self) -> f64 {
        if self.answers == 0 {
            0.0
        } else {
            round2(self.cards() as f64 / self.answers as f64)
        }
    }

    fn merge(&mut self, o: &CardCounts) {
        self.answers += o.answers;
        self.critical += o.critical;
        self.warning += o.warning;
        self.info += o.info;
    }
}

/// `own / prefetch`, when both have a p99.
pub fn p99_ratio(own: &PhaseStats, prefetch: &PhaseStats) -> Option<f64> {
    (prefetch.p99_ms > 0.0 && own.requests > 0).then(|| round2(own.p99_ms / prefetch.p99_ms))
}

/// Result of the cds phase.
#[derive(Debug, Clone, Serialize)]
pub struct CdsResult {
    pub service: String,
    pub dataset_seed: u64,
    /// Patients asked for, and those found and used.
    pub patients_requested: usize,
    pub patients: usize,
    /// `fhirServer` of the own-store calls.
    pub fhir_server: String,
    /// Measurements submitted before measuring (successful), failed, and their colours.
    pub submitted: u64,
    pub submit_errors: u64,
    pub drawn: ColourCounts,
    /// Whether every submission's Task was there before measuring, and how long after
    /// the last submission that took.
    pub tasks_ready: bool,
    pub tasks_wait_secs: f64,
    /// The patients' Tasks at the last count.
    pub tasks: u64,
    /// Over the fetched prefetches: open Tasks, resources, the mean size of a call's
    /// body with its prefetch, and patients with no open Task.
    pub prefetch_tasks: u64,
    pub prefetch_resources: u64,
    pub body_bytes_mean: u64,
    pub patients_without_tasks: u64,
    /// The GETs of the prefetch query in setup (one per patient, over the connections).
    pub prefetch_query: Latency,
    /// The calls with the prefetch, and those that read Ember's own store.
    pub with_prefetch: PhaseStats,
    pub own_store: PhaseStats,
    pub with_prefetch_cards: CardCounts,
    pub own_store_cards: CardCounts,
    /// Own-store answers whose number of cards differs from the prefetch answers' for
    /// the same patient.
    pub card_mismatches: u64,
    /// Own-store p99 / with-prefetch p99.
    pub p99_own_over_prefetch: Option<f64>,
    /// The measured windows, `[from, to]` in microseconds since 1970 (UTC), to find the
    /// modes' calls in the server's access log.
    pub with_prefetch_window_us: [i64; 2],
    pub own_store_window_us: [i64; 2],
}

impl CdsResult {
    /// Remarks for the report's notes.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.patients < self.patients_requested {
            notes.push(format!(
                "cds: only {} of the {} patients dataset-{}-pat-* asked for are on the server",
                self.patients, self.patients_requested, self.dataset_seed
            ));
        }
        if self.submit_errors > 0 {
            notes.push(format!(
                "cds: {} of {} submissions before measuring failed",
                self.submit_errors,
                self.submit_errors + self.submitted
            ));
        }
        if !self.tasks_ready {
            notes.push(format!(
                "cds: measured before every submission had its Task ({} Tasks after {:.2}s)",
                self.tasks, self.tasks_wait_secs
            ));
        }
        if self.patients_without_tasks > 0 {
            notes.push(format!(
                "cds: {} of {} patients had no open Task",
                self.patients_without_tasks, self.patients
            ));
        }
        for p in [&self.with_prefetch, &self.own_store] {
            if p.errors > 0 {
                notes.push(format!(
                    "{}: {} of {} calls failed; its numbers are not comparable",
                    p.name, p.errors, p.requests
                ));
            }
        }
        if self.card_mismatches > 0 {
            notes.push(format!(
                "cds: {} own-store answers had another number of cards than with the prefetch",
                self.card_mismatches
            ));
        }
        for (p, target) in [
            (&self.with_prefetch, TARGET_PREFETCH_P99_MS),
            (&self.own_store, TARGET_OWN_STORE_P99_MS),
        ] {
            if p.requests > 0 && p.p99_ms >= target {
                notes.push(format!(
                    "{}: p99 {:.2} ms misses the {target} ms target by {:.2} ms ({:.2}x)",
                    p.name,
                    p.p99_ms,
                    p.p99_ms - target,
                    p.p99_ms / target
                ));
            }
        }
        notes
    }
}

fn describe(method: &Method, path: &str, reply: &Reply) -> String {
    format!(
        "{method} {path} -> {}: {}",
        reply.status,
        truncate(&String::from_utf8_lossy(&reply.body), 200)
    )
}

/// One request of [`send_all`].
type Request = (Method, String, Option<Bytes>);

/// Sends every request once over `connections` connections of their own; the answers,
/// with how long each took, in the requests' order.
async fn send_all(
    target: &Arc<Target>,
    requests: Vec<Request>,
    connections: usize,
) -> Result<Vec<(Result<Reply>, Duration)>> {
    let requests = Arc::new(requests);
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..connections.clamp(1, requests.len().max(1)) {
        let (requests, next, target) = (requests.clone(), next.clone(), target.clone());
        set.spawn(async move {
            let mut conn = Conn::new(target);
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((method, path, body)) = requests.get(i) else {
                    break;
                };
                let started = Instant::now();
                let reply = conn.send(method.clone(), path, body.clone()).await;
                out.push((i, reply, started.elapsed()));
            }
            out
        });
    }
    let mut all: Vec<(usize, Result<Reply>, Duration)> = Vec::with_capacity(requests.len());
    while let Some(res) = set.join_next().await {
        all.extend(res.context("a cds setup connection crashed")?);
    }
    all.sort_by_key(|(i, _, _)| *i);
    Ok(all.into_iter().map(|(_, r, d)| (r, d)).collect())
}

/// GETs `path` and parses the JSON of a `200`.
async fn get_json(conn: &mut Conn, path: &str) -> Result<Value> {
    let reply = conn
        .send(Method::GET, path, None)
        .await
        .with_context(|| format!("GET {path}"))?;
    if reply.status != StatusCode::OK {
        bail!("{}", describe(&Method::GET, path, &reply));
    }
    serde_json::from_slice(&reply.body).with_context(|| format!("GET {path}: not JSON"))
}

/// The Tasks of `patients`.
async fn count_tasks(conn: &mut Conn, target: &Target, patients: &[PatientIds]) -> Result<u64> {
    let mut total = 0;
    for query in task_count_queries(patients) {
        let path = target.path(&query);
        let v = get_json(conn, &path).await?;
        total += v["total"]
            .as_u64()
            .ok_or_else(|| anyhow!("GET {path}: the searchset has no total"))?;
    }
    Ok(total)
}

/// The patients of `pop` that are on the server, in order.
async fn present(conn: &mut Conn, target: &Target, pop: Population) -> Result<Population> {
    let mut found = std::collections::HashSet::new();
    for query in patient_queries(&pop.patients) {
        let v = get_json(conn, &target.path(&query)).await?;
        found.extend(
            v["entry"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["resource"]["id"].as_str().map(str::to_owned)),
        );
    }
    Ok(Population {
        patients: pop
            .patients
            .into_iter()
            .filter(|p| found.contains(&p.patient))
            .collect(),
        ..pop
    })
}

/// What the submissions before measuring did.
struct Submitted {
    ok: u64,
    errors: u64,
    drawn: ColourCounts,
    samples: Vec<String>,
}

async fn submit_measurements(
    target: &Arc<Target>,
    pop: &Population,
    opts: &CdsOpts,
) -> Result<Submitted> {
    let mut rng = Rng::for_worker(opts.seed, SALT_SUBMIT, 0);
    let draws = plan_submissions(pop.patients.len(), opts.submissions, &mut rng);
    let path = target.path(OPERATION);
    let requests: Vec<Request> = draws
        .iter()
        .map(|d| {
            let body = submit::submission(pop, d, &mut rng).to_string();
            (Method::POST, path.clone(), Some(Bytes::from(body)))
        })
        .collect();
    let replies = send_all(target, requests, opts.connections).await?;
    let mut out = Submitted {
        ok: 0,
        errors: 0,
        drawn: ColourCounts::default(),
        samples: Vec::new(),
    };
    for (d, (reply, _)) in draws.iter().zip(replies) {
        let problem = match reply {
            Ok(r) if r.status == StatusCode::OK && submit::observation_id(&r.body).is_some() => {
                out.ok += 1;
                out.drawn.add(d.colour);
                continue;
            }
            Ok(r) => describe(&Method::POST, &path, &r),
            Err(e) => format!("POST {path} -> transport error: {e:#}"),
        };
        out.errors += 1;
        if out.samples.len() < 3 {
            out.samples.push(problem);
        }
    }
    Ok(out)
}

/// Waits until `patients` have `expected` Tasks: whether they did, the seconds waited
/// and the last count.
async fn wait_for_tasks(
    conn: &mut Conn,
    target: &Target,
    patients: &[PatientIds],
    expected: u64,
    opts: &CdsOpts,
) -> Result<(bool, f64, u64)> {
    let started = Instant::now();
    loop {
        let tasks = count_tasks(conn, target, patients)
            .await
            .context("counting the patients' Tasks")?;
        let secs = started.elapsed().as_secs_f64();
        if tasks >= expected {
            return Ok((true, secs, tasks));
        }
        if started.elapsed() >= opts.tasks_timeout {
            eprintln!(
                "cds: {tasks} of {expected} Tasks after {}s; measuring anyway",
                opts.tasks_timeout.as_secs()
            );
            return Ok((false, secs, tasks));
        }
        tokio::time::sleep(opts.tasks_poll).await;
    }
}

/// One measured mode.
struct Mode {
    name: &'static str,
    salt: u64,
    root: Arc<Target>,
    path: String,
    bodies: Vec<BodyTemplate>,
    seed: u64,
    /// Cards per patient from the prefetch mode (-1: none seen yet).
    seen: Arc<Vec<AtomicI64>>,
    /// Whether this mode compares its cards with `seen` (else it fills it).
    compare: bool,
    samples: ErrorSamples,
}

/// One worker's output besides its latencies.
#[derive(Default)]
struct Tally {
    cards: CardCounts,
    mismatches: u64,
}

async fn call_worker(mode: Arc<Mode>, idx: usize, timing: Timing) -> (WorkerOut, Tally) {
    let mut out = WorkerOut::new();
    let mut tally = Tally::default();
    let mut conn = Conn::new(mode.root.clone());
    let mut rng = Rng::for_worker(mode.seed, mode.salt, idx);
    while Instant::now() < timing.end {
        let p = rng.index(mode.bodies.len());
        let body = mode.bodies[p].body(&submit::uuid(&mut rng));
        let started = Instant::now();
        let result = conn.send(Method::POST, &mode.path, Some(body)).await;
        let took = started.elapsed();
        let recorded = started >= timing.record_from;
        let mut transport_error = false;
        let ok = match result {
            Ok(reply) if reply.status == StatusCode::OK => {
                match CardCounts::of_answer(&reply.body) {
                    Some(c) => {
                        let cards = c.cards() as i64;
                        if mode.compare {
                            let expected = mode.seen[p].load(Ordering::Relaxed);
                            if recorded && expected >= 0 && expected != cards {
                                tally.mismatches += 1;
                            }
                        } else {
                            mode.seen[p].store(cards, Ordering::Relaxed);
                        }
                        if recorded {
                            tally.cards.merge(&c);
                        }
                        true
                    }
                    None => {
                        mode.samples.push(|| {
                            format!(
                                "{}: no cards array",
                                describe(&Method::POST, &mode.path, &reply)
                            )
                        });
                        false
                    }
                }
            }
            Ok(reply) => {
                mode.samples
                    .push(|| describe(&Method::POST, &mode.path, &reply));
                false
            }
            Err(e) => {
                transport_error = true;
                mode.samples
                    .push(|| format!("POST {} -> transport error: {e:#}", mode.path));
                false
            }
        };
        if recorded {
            out.latencies_us
                .push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
            if !ok {
                out.errors += 1;
            }
        }
        if transport_error {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    out.finished_at = Instant::now();
    (out, tally)
}

/// What one mode measured.
struct Measured {
    stats: PhaseStats,
    cards: CardCounts,
    mismatches: u64,
    window_us: [i64; 2],
}

/// Runs one mode.
async fn measure(mode: Arc<Mode>, opts: &CdsOpts) -> Result<Measured> {
    eprintln!(
        "{}: {}s warmup + {}s measured, {} connections...",
        mode.name,
        opts.warmup.as_secs(),
        opts.duration.as_secs(),
        opts.connections
    );
    let now = crate::queue::now_micros();
    let timing = Timing::starting_now(opts.warmup, opts.duration);
    let micros = |d: Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    let from = now.saturating_add(micros(opts.warmup));
    let window_us = [from, from.saturating_add(micros(opts.duration))];
    let mut set = tokio::task::JoinSet::new();
    for idx in 0..opts.connections {
        set.spawn(call_worker(mode.clone(), idx, timing));
    }
    let mut outs = Vec::with_capacity(opts.connections);
    let mut tally = Tally::default();
    while let Some(res) = set.join_next().await {
        let (out, t) = res.with_context(|| format!("{} worker crashed", mode.name))?;
        outs.push(out);
        tally.cards.merge(&t.cards);
        tally.mismatches += t.mismatches;
    }
    let (stats, _) = summarize(mode.name, &timing, outs, mode.samples.take());
    Ok(Measured {
        stats,
        cards: tally.cards,
        mismatches: tally.mismatches,
        window_us,
    })
}

/// One call before measuring: it must answer `200` with cards.
async fn try_call(conn: &mut Conn, path: &str, body: Bytes, what: &str) -> Result<()> {
    let reply = conn
        .send(Method::POST, path, Some(body))
        .await
        .with_context(|| format!("cds: the first call {what}"))?;
    if reply.status != StatusCode::OK || CardCounts::of_answer(&reply.body).is_none() {
        bail!(
            "cds: the first call {what} failed: {}",
            describe(&Method::POST, path, &reply)
        );
    }
    Ok(())
}

/// Runs the cds phase against the server at `target`.
pub async fn run(target: Arc<Target>, opts: &CdsOpts) -> Result<CdsResult> {
    if opts.connections == 0 || opts.patients == 0 {
        bail!("the cds phase needs connections and patients above 0");
    }
    let root = Arc::new(Target {
        base_path: String::new(),
        ..(*target).clone()
    });
    let mut conn = Conn::new(target.clone());
    let mut root_conn = Conn::new(root.clone());
    let discovery = get_json(&mut root_conn, DISCOVERY)
        .await
        .context("cds: CDS Hooks discovery")?;
    let template = tasks_template(&discovery)?;

    let asked = dataset_population(opts.dataset_seed, opts.patients);
    let pop = present(&mut conn, &target, asked)
        .await
        .context("cds: looking up the dataset's patients")?;
    if pop.patients.is_empty() {
        bail!(
            "cds: none of the patients dataset-{}-pat-0..{} is on the server; load it with \
             `ember dataset --seed {}` first",
            opts.dataset_seed,
            opts.patients - 1,
            opts.dataset_seed
        );
    }
    let before = count_tasks(&mut conn, &target, &pop.patients)
        .await
        .context("cds: counting the patients' Tasks")?;
    eprintln!(
        "cds: submitting {} measurements to each of {} patients dataset-{}-pat-* ({} Tasks \
         before)...",
        opts.submissions,
        pop.patients.len(),
        opts.dataset_seed,
        before
    );
    let submitted = submit_measurements(&target, &pop, opts).await?;
    if submitted.ok == 0 && submitted.errors > 0 {
        bail!(
            "cds: every submission failed, e.g. {}",
            submitted.samples.join("; ")
        );
    }
    for s in &submitted.samples {
        eprintln!("cds: a submission failed: {s}");
    }
    eprintln!(
        "cds: {} submitted (green {} yellow {} red {}); waiting for their Tasks...",
        submitted.ok, submitted.drawn.green, submitted.drawn.yellow, submitted.drawn.red
    );
    let (tasks_ready, tasks_wait_secs, tasks) = wait_for_tasks(
        &mut conn,
        &target,
        &pop.patients,
        before + submitted.ok,
        opts,
    )
    .await?;

    eprintln!(
        "cds: fetching the prefetch of {} patients...",
        pop.patients.len()
    );
    let requests: Vec<Request> = pop
        .patients
        .iter()
        .map(|p| {
            (
                Method::GET,
                target.path(&render(&template, &p.patient)),
                None,
            )
        })
        .collect();
    let replies = send_all(&target, requests, opts.connections).await?;
    let mut prefetches = Vec::with_capacity(replies.len());
    let mut query_us = Vec::with_capacity(replies.len());
    let (mut prefetch_tasks, mut prefetch_resources, mut without) = (0, 0, 0);
    for (p, (reply, took)) in pop.patients.iter().zip(replies) {
        let path = target.path(&render(&template, &p.patient));
        let reply = reply.with_context(|| format!("cds: GET {path}"))?;
        if reply.status != StatusCode::OK {
            bail!("cds: {}", describe(&Method::GET, &path, &reply));
        }
        let bundle: Value = serde_json::from_slice(&reply.body)
            .with_context(|| format!("cds: GET {path}: not JSON"))?;
        let (t, r) = searchset_counts(&bundle);
        prefetch_tasks += t;
        prefetch_resources += r;
        without += u64::from(t == 0);
        query_us.push(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
        prefetches.push(bundle);
    }

    let with_bodies: Vec<BodyTemplate> = pop
        .patients
        .iter()
        .zip(&prefetches)
        .map(|(p, tasks)| BodyTemplate::new(&p.patient, Some(tasks), None))
        .collect();
    let body_bytes_mean =
        with_bodies.iter().map(BodyTemplate::size).sum::<usize>() as u64 / with_bodies.len() as u64;
    drop(prefetches);
    let own_bodies: Vec<BodyTemplate> = pop
        .patients
        .iter()
        .map(|p| BodyTemplate::new(&p.patient, None, Some(&opts.fhir_server)))
        .collect();
    let path = format!("{DISCOVERY}/{SERVICE}");
    let mut rng = Rng::for_worker(opts.seed, SALT_PREFETCH, usize::MAX);
    try_call(
        &mut root_conn,
        &path,
        with_bodies[0].body(&submit::uuid(&mut rng)),
        "with the prefetch",
    )
    .await?;
    try_call(
        &mut root_conn,
        &path,
        own_bodies[0].body(&submit::uuid(&mut rng)),
        &format!(
            "reading Ember's own store (fhirServer {})",
            opts.fhir_server
        ),
    )
    .await?;
    drop(root_conn);

    let seen: Arc<Vec<AtomicI64>> = Arc::new(
        (0..pop.patients.len())
            .map(|_| AtomicI64::new(-1))
            .collect(),
    );
    let mode = |name, salt, bodies, compare| {
        Arc::new(Mode {
            name,
            salt,
            root: root.clone(),
            path: path.clone(),
            bodies,
            seed: opts.seed,
            seen: seen.clone(),
            compare,
            samples: ErrorSamples::default(),
        })
    };
    let with = measure(
        mode("cds prefetch", SALT_PREFETCH, with_bodies, false),
        opts,
    )
    .await?;
    let own = measure(mode("cds own store", SALT_OWN, own_bodies, true), opts).await?;
    let p99_own_over_prefetch = p99_ratio(&own.stats, &with.stats);
    Ok(CdsResult {
        service: SERVICE.to_owned(),
        dataset_seed: opts.dataset_seed,
        patients_requested: opts.patients,
        patients: pop.patients.len(),
        fhir_server: opts.fhir_server.clone(),
        submitted: submitted.ok,
        submit_errors: submitted.errors,
        drawn: submitted.drawn,
        tasks_ready,
        tasks_wait_secs: round2(tasks_wait_secs),
        tasks,
        prefetch_tasks,
        prefetch_resources,
        body_bytes_mean,
        patients_without_tasks: without,
        prefetch_query: Latency::from_us(query_us),
        with_prefetch: with.stats,
        own_store: own.stats,
        with_prefetch_cards: with.cards,
        own_store_cards: own.cards,
        card_mismatches: own.mismatches,
        p99_own_over_prefetch,
        with_prefetch_window_us: with.window_us,
        own_store_window_us: own.window_us,
    })
}

#[cfg(test)]
pub(crate) mod tests;
