//! `ember-bench`: drives a running FHIR R4 server from outside, over plain HTTP/1.1.
//! `ember bench` is the load generator: a deterministic create/read/update/delete
//! workload compared with an HTTP ceiling and a storage ceiling measured in the same
//! run, optionally (`--ops queue`) the throughput of Ember's job queue on
//! PostgreSQL ([`queue`]), and optionally (`--ops submit`) the rate of Ember's
//! `$submit-measurement` with the lag and backlog of its triage ([`submit`]), and
//! optionally (`--ops cds`) the latency of its CDS Hooks `telemonitoring-summary` with
//! the prefetch and reading its own store ([`cds`]).
//! `ember check` is the smoke test of a live deployment
//! ([`check`]). `ember dataset` loads a telemonitoring population ([`dataset`]) and
//! `ember bench-search` measures FHIR search against it ([`search`]). `ember import`
//! loads NDJSON and Bundle files ([`import`]) and `ember export` fetches a Bulk Data
//! export into a folder of NDJSON files ([`export`]). `ember bench-subscriptions`
//! measures how soon Subscription notifications arrive after writes
//! ([`subscriptions`]).

pub mod cds;
pub mod check;
mod codes;
pub mod dataset;
pub mod export;
mod http;
pub mod import;
pub mod issuer;
mod phase;
mod progress;
pub mod queue;
mod report;
mod rng;
mod rss;
pub mod search;
mod stats;
mod storage;
pub mod submit;
pub mod subscriptions;
mod workload;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;

use crate::cds::{CdsOpts, CdsResult};
use crate::http::{CeilingServer, Conn, Target};
use crate::phase::{Entry, PhaseCtx, Work, run_http_phase, setup_create};
use crate::queue::{QueueOpts, QueueResult};
use crate::report::{Report, ReportArgs, RssReport};
use crate::rng::Rng;
use crate::stats::PhaseStats;
use crate::storage::{Db, StorageOpts};
use crate::submit::{SubmitOpts, SubmitResult};
use crate::workload::{Refs, ResourceType};

/// Number of Patients / Practitioners created before the timed phases.
const SETUP_PATIENTS: usize = 10;
const SETUP_PRACTITIONERS: usize = 5;

/// One timed phase against the FHIR server.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Read,
    /// Reads by id asking for FHIR XML (`Accept: application/fhir+xml`); an answer that
    /// is not XML counts as an error
    ReadXml,
    Update,
    Delete,
    /// Ember's job queue (not in the default list): noop jobs inserted into the `jobs`
    /// table of --db, which must be the PostgreSQL database the Ember instances use, and
    /// run by every instance serving it; reports jobs/s and claim-to-done latency
    Queue,
    /// Ember's `$submit-measurement` (not in the default list): patients with alarm
    /// zones are set up, then every connection submits their measurements; reports
    /// submissions/s, the lag until triage's Task is readable, and the backlog's drain
    Submit,
    /// Ember's CDS Hooks `telemonitoring-summary` (not in the default list), on a server
    /// loaded with `ember dataset`: measurements are submitted for --cds-patients of its
    /// patients, then the service is called with the prefetch and, reading Ember's own
    /// store, with `fhirServer` --url; reports calls/s and latencies of both
    Cds,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Read => "read",
            Op::ReadXml => "read-xml",
            Op::Update => "update",
            Op::Delete => "delete",
            Op::Queue => "queue",
            Op::Submit => "submit",
            Op::Cds => "cds",
        }
    }

    /// The phases that drive the FHIR API.
    const CRUD: [Op; 5] = [Op::Create, Op::Read, Op::ReadXml, Op::Update, Op::Delete];
}

/// Arguments of `ember bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// FHIR base URL of the server under test, e.g. http://127.0.0.1:8080/fhir
    #[arg(long, env = "EMBER_BENCH_URL")]
    pub url: String,

    /// Concurrent HTTP/1.1 connections (one worker each)
    #[arg(long, env = "EMBER_BENCH_CONNECTIONS", default_value_t = 32)]
    pub connections: usize,

    /// Recorded seconds per phase
    #[arg(long, env = "EMBER_BENCH_DURATION", default_value_t = 10)]
    pub duration: u64,

    /// Unrecorded warmup seconds before each phase
    #[arg(long, env = "EMBER_BENCH_WARMUP", default_value_t = 2)]
    pub warmup: u64,

    /// Seed of the deterministic workload
    #[arg(long, env = "EMBER_BENCH_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Phases to run (always executed in the order create, read, read-xml, update,
    /// delete, queue, submit, cds). `queue`, `submit` and `cds` are not in the default list:
    /// `queue` needs --db to be the PostgreSQL database the Ember instances use and
    /// measures how fast they run noop jobs enqueued there; `submit` posts measurements
    /// to Ember's $submit-measurement and measures their triage (it leaves its patients
    /// and measurements on the server); `cds` needs a server loaded with `ember dataset`
    /// and its CDS services open to the bench (loopback, no EMBER_CDS_CLIENTS), and
    /// leaves the measurements it submits there. With no CRUD phase the ceilings and
    /// the setup resources are skipped
    #[arg(
        long,
        env = "EMBER_BENCH_OPS",
        value_enum,
        value_delimiter = ',',
        default_value = "create,read,read-xml,update,delete"
    )]
    pub ops: Vec<Op>,

    /// Storage-ceiling baseline database: postgres://... or sqlite://path
    /// (SQLite uses a scratch file <path>.bench-baseline); for --ops queue, the
    /// PostgreSQL database the Ember instances use
    #[arg(long, env = "EMBER_BENCH_DB")]
    pub db: Option<String>,

    /// Skip the HTTP-ceiling baseline
    #[arg(long, env = "EMBER_BENCH_NO_HTTP_BASELINE")]
    pub no_http_baseline: bool,

    /// Server process id: report its peak RSS from /proc/PID/status
    #[arg(long, env = "EMBER_BENCH_PID")]
    pub pid: Option<u32>,

    /// Also write the full report as JSON to this file
    #[arg(long, env = "EMBER_BENCH_JSON")]
    pub json: Option<PathBuf>,

    /// A bearer token sent with every request to the server under test
    #[arg(long, env = "EMBER_BENCH_BEARER")]
    pub bearer: Option<String>,

    /// For --ops cds: the --seed `ember dataset` loaded the server with (its ids carry it)
    #[arg(long, env = "EMBER_BENCH_DATASET_SEED", default_value_t = 42)]
    pub dataset_seed: u64,

    /// For --ops cds: dataset patients called for (the first this many of the dataset)
    #[arg(long, env = "EMBER_BENCH_CDS_PATIENTS", default_value_t = 200)]
    pub cds_patients: usize,

    /// For --ops cds: measurements submitted per patient before measuring, so that it
    /// has open triage Tasks (about 80/15/5 % green/yellow/red)
    #[arg(long, env = "EMBER_BENCH_CDS_SUBMISSIONS", default_value_t = 4)]
    pub cds_submissions: usize,
}

fn kib_to_mib(kib: u64) -> f64 {
    stats::round2(kib as f64 / 1024.0)
}

/// Checks the arguments that need no server; the parsed `--db`.
fn validate(args: &BenchArgs) -> Result<Option<Db>> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    if args.ops.contains(&Op::Cds) && args.cds_patients == 0 {
        bail!("--cds-patients must be at least 1");
    }
    let db = args.db.as_deref().map(Db::parse).transpose()?;
    if args.ops.contains(&Op::Queue) {
        match &db {
            Some(Db::Postgres(_)) => {}
            Some(Db::Sqlite(_)) => bail!(
                "--ops queue measures Ember's job queue on PostgreSQL only: --db must be the \
                 postgres:// database the Ember instances use, not SQLite"
            ),
            None => bail!(
                "--ops queue needs --db postgres://... naming the database the Ember \
                 instances use"
            ),
        }
    }
    Ok(db)
}

/// Runs the benchmark described by `args` and prints the report.
pub async fn run(args: BenchArgs) -> Result<()> {
    let db = validate(&args)?;
    let target = Arc::new(Target::parse(&args.url)?.with_bearer(args.bearer.as_deref())?);
    let queue_db = match &db {
        Some(Db::Postgres(cfg)) if args.ops.contains(&Op::Queue) => Some(cfg.clone()),
        _ => None,
    };
    let crud = Op::CRUD.iter().any(|op| args.ops.contains(op));
    if let Some(pid) = args.pid {
        rss::read_status(pid)?;
    }
    let warmup = Duration::from_secs(args.warmup);
    let duration = Duration::from_secs(args.duration);
    let mut notes = Vec::new();

    // Preflight: is anything listening, and does it look like FHIR?
    let mut conn = Conn::new(target.clone());
    let metadata = target.path("metadata");
    match conn.send(::http::Method::GET, &metadata, None).await {
        Ok(reply) if reply.status.is_success() => {}
        Ok(reply) => notes.push(format!("GET {metadata} returned {}", reply.status)),
        Err(e) => bail!("FHIR server at {} is not reachable: {e:#}", args.url),
    }
    if let Some(cfg) = &queue_db {
        queue::preflight(cfg).await.context("--ops queue")?;
    }

    // Setup: Patients and Practitioners the clinical resources reference.
    let (patients, practitioners) = if crud {
        eprintln!(
            "setup: creating {SETUP_PATIENTS} Patients and {SETUP_PRACTITIONERS} Practitioners at {}",
            args.url
        );
        let mut setup_rng = Rng::for_worker(args.seed, 0, 0);
        let empty = Refs::default();
        let patients = setup_create(
            &mut conn,
            &target,
            ResourceType::Patient,
            SETUP_PATIENTS,
            &mut setup_rng,
            &empty,
        )
        .await?;
        let practitioners = setup_create(
            &mut conn,
            &target,
            ResourceType::Practitioner,
            SETUP_PRACTITIONERS,
            &mut setup_rng,
            &empty,
        )
        .await?;
        (patients, practitioners)
    } else {
        (Vec::new(), Vec::new())
    };
    drop(conn);
    let setup_entries: Vec<Entry> = patients
        .iter()
        .map(|id| (ResourceType::Patient, id.clone()))
        .chain(
            practitioners
                .iter()
                .map(|id| (ResourceType::Practitioner, id.clone())),
        )
        .collect();
    let refs = Arc::new(Refs {
        patients,
        practitioners,
    });

    let sampler = args.pid.map(rss::RssSampler::start).transpose()?;

    // Timed phases, always in CRUD order.
    let mut phases: Vec<PhaseStats> = Vec::new();
    let mut pool: Vec<Entry> = Vec::new();
    for op in Op::CRUD {
        if !args.ops.contains(&op) {
            continue;
        }
        let mut ctx = PhaseCtx::new(target.clone(), refs.clone(), args.seed);
        let work = match op {
            Op::Create => Work::Create,
            Op::Read | Op::ReadXml | Op::Update => {
                if pool.is_empty() {
                    notes.push(format!(
                        "{}: no resources from a create phase, using the {} setup resources",
                        op.name(),
                        setup_entries.len()
                    ));
                    ctx.pool = Arc::new(setup_entries.clone());
                } else {
                    ctx.pool = Arc::new(pool.clone());
                }
                match op {
                    Op::Read => Work::Read,
                    Op::ReadXml => Work::ReadXml,
                    _ => Work::Update,
                }
            }
            Op::Delete => {
                if pool.is_empty() {
                    notes.push("delete: skipped, nothing was created to delete".into());
                    continue;
                }
                let mut queue = std::mem::take(&mut pool);
                Rng::for_worker(args.seed, 4, usize::MAX).shuffle(&mut queue);
                ctx.delete_queue = Mutex::new(queue);
                Work::Delete
            }
            Op::Queue | Op::Submit | Op::Cds => continue,
        };
        eprintln!(
            "{}: {}s warmup + {}s measured, {} connections...",
            op.name(),
            args.warmup,
            args.duration,
            args.connections
        );
        let (stats, created) = run_http_phase(
            op.name(),
            work,
            Arc::new(ctx),
            args.connections,
            warmup,
            duration,
        )
        .await?;
        pool.extend(created);
        if stats.errors > 0 {
            notes.push(format!(
                "{}: {} of {} requests failed; its numbers are not comparable",
                op.name(),
                stats.errors,
                stats.requests
            ));
        }
        phases.push(stats);
    }

    // Queue phase, after the CRUD phases.
    let mut queue_error = None;
    let queue: Option<QueueResult> = match &queue_db {
        None => None,
        Some(cfg) => match queue::run(cfg, &QueueOpts::new(warmup, duration)).await {
            Ok(r) => {
                notes.extend(r.notes());
                Some(r)
            }
            Err(e) => {
                let msg = format!("queue: failed: {e:#}");
                eprintln!("error: {msg}");
                notes.push(msg);
                queue_error = Some(e);
                None
            }
        },
    };

    // Submit phase, last.
    let mut submit_error = None;
    let submit: Option<SubmitResult> = if args.ops.contains(&Op::Submit) {
        let opts = SubmitOpts::new(args.connections, warmup, duration, args.seed);
        match submit::run(target.clone(), &opts).await {
            Ok(r) => Some(r),
            Err(e) => {
                let msg = format!("submit: failed: {e:#}");
                eprintln!("error: {msg}");
                notes.push(msg);
                submit_error = Some(e);
                None
            }
        }
    } else {
        None
    };

    // CDS phase, after submit.
    let mut cds_error = None;
    let cds: Option<CdsResult> = if args.ops.contains(&Op::Cds) {
        let mut opts = CdsOpts::new(args.connections, warmup, duration, args.seed, &args.url);
        opts.dataset_seed = args.dataset_seed;
        opts.patients = args.cds_patients;
        opts.submissions = args.cds_submissions;
        match cds::run(target.clone(), &opts).await {
            Ok(r) => Some(r),
            Err(e) => {
                let msg = format!("cds: failed: {e:#}");
                eprintln!("error: {msg}");
                notes.push(msg);
                cds_error = Some(e);
                None
            }
        }
    } else {
        None
    };

    let rss = match (sampler, args.pid) {
        (Some(s), Some(pid)) => {
            let (peak, hwm) = s.finish();
            let peak_mib = kib_to_mib(peak.max(hwm.unwrap_or(0)));
            Some(RssReport {
                pid,
                peak_sampled_mib: kib_to_mib(peak),
                vm_hwm_mib: hwm.map(kib_to_mib),
                peak_mib,
            })
        }
        _ => None,
    };

    // HTTP ceiling.
    let http_ceiling = if args.no_http_baseline {
        notes.push("http ceiling: skipped (--no-http-baseline)".into());
        None
    } else if !crud {
        notes.push("http ceiling: skipped (no CRUD phase to compare)".into());
        None
    } else {
        eprintln!(
            "http ceiling: {}s warmup + {}s measured...",
            args.warmup, args.duration
        );
        Some(run_http_ceiling(args.connections, warmup, duration, args.seed, &refs).await?)
    };

    // Storage ceiling.
    let storage = match &db {
        Some(_) if !crud => {
            notes.push("storage ceiling: skipped (no CRUD phase to compare)".into());
            None
        }
        None => {
            let msg = "storage ceiling: skipped (no --db postgres://... or sqlite://path given)";
            eprintln!("note: {msg}");
            notes.push(msg.into());
            None
        }
        Some(db) => {
            let opts = StorageOpts {
                connections: args.connections,
                warmup,
                duration,
                seed: args.seed,
                refs: refs.clone(),
            };
            match storage::run(db, &opts).await {
                Ok(r) => Some(r),
                Err(e) => {
                    let msg = format!("storage ceiling ({}) failed: {e:#}", db.backend());
                    eprintln!("error: {msg}");
                    notes.push(msg);
                    None
                }
            }
        }
    };

    let mut report = Report {
        timestamp: report::now_rfc3339(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        args: ReportArgs {
            url: args.url.clone(),
            connections: args.connections,
            duration_secs: args.duration,
            warmup_secs: args.warmup,
            seed: args.seed,
            ops: args.ops.iter().map(|o| o.name().to_owned()).collect(),
            db_backend: db.as_ref().map(|d| d.backend().to_owned()),
            http_baseline: !args.no_http_baseline,
            pid: args.pid,
        },
        phases,
        http_ceiling,
        storage,
        queue,
        submit,
        cds,
        ratios: Vec::new(),
        rss,
        notes,
    };
    report.compute_ratios();
    if let Some(s) = &report.submit {
        report.notes.extend(s.notes());
    }
    if let Some(c) = &report.cds {
        report.notes.extend(c.notes());
    }
    print!("{}", report.render());

    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).context("serializing the JSON report")?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("writing the JSON report to {}", path.display()))?;
        eprintln!("JSON report written to {}", path.display());
    }
    match (queue_error, submit_error, cds_error) {
        (Some(e), _, _) => Err(e.context("the queue phase failed")),
        (None, Some(e), _) => Err(e.context("the submit phase failed")),
        (None, None, Some(e)) => Err(e.context("the cds phase failed")),
        (None, None, None) => Ok(()),
    }
}

/// Starts the ceiling server and drives it with GETs.
async fn run_http_ceiling(
    connections: usize,
    warmup: Duration,
    duration: Duration,
    seed: u64,
    refs: &Arc<Refs>,
) -> Result<PhaseStats> {
    let body = workload::generate_string(
        ResourceType::Patient,
        &mut Rng::for_worker(seed, 5, 0),
        refs,
        Some("ceiling"),
    );
    let server = CeilingServer::start(Bytes::from(body))?;
    let target = Arc::new(Target::parse(&server.url())?);
    let ctx = Arc::new(PhaseCtx::new(target, refs.clone(), seed));
    let (stats, _) = run_http_phase(
        "http ceiling",
        Work::Ceiling,
        ctx,
        connections,
        warmup,
        duration,
    )
    .await?;
    drop(server);
    Ok(stats)
}

#[cfg(test)]
mod tests;
