//! `ember import --url URL PATH…`: loads NDJSON files (one resource per line, as Bulk
//! Data writes them), transaction and batch Bundle files (such as a synthetic-patient
//! generator's per-patient Bundles) and folders of them into a running FHIR server.
//!
//! NDJSON resources go in `batch` Bundles of `PUT Type/id` entries, `--concurrency` of
//! them in flight; a resource without an id gets a UUIDv5 of its line, so every run
//! writes the same ids. A Bundle file is posted as it is (a transaction is all or
//! nothing). The PATH arguments are loaded one after the other, the files of one in
//! parallel. An entry the server refuses, a line that is not a resource, or a request
//! that failed is a line of the rejects file and never stops the run; a server that
//! cannot be reached (after retries) does, as does a refused token.
//!
//! The checkpoint records per file how many lines (or entries) are done and which of
//! them were rejected, after each completed request. A run with the same checkpoint
//! skips what is done and sends the rejected ones again, so its rejects file lists
//! exactly what is still not imported; `--restart` ignores the checkpoint.

mod checkpoint;
mod progress;
pub(crate) mod source;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::io::{BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use http::Method;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::http::{Conn, REQUEST_TIMEOUT, Target};
use crate::stats::truncate;
use checkpoint::{Checkpoint, FileProgress};
use progress::Counters;
use source::{At, BatchLimits, EntryMeta, Failure, InputFile, Kind, Unit};
pub(crate) use source::{ERROR_FOLDER, MANIFEST, is_fhir_id, is_type_name};

/// Most bytes of resources in one NDJSON batch (the server's default body limit is 16 MiB).
const BATCH_BYTES: usize = 4 << 20;
/// Tries of one request that could not be sent or met a busy server (429, 502-504).
const ATTEMPTS: u32 = 5;
/// Upper bound for one request: a large Bundle can take a while.
const TIMEOUT: Duration = Duration::from_secs(REQUEST_TIMEOUT.as_secs() * 10);
/// The resource type counted for a line or file that could not be read.
const UNPARSED: &str = "(unparsed)";

/// Arguments of `ember import`.
#[derive(clap::Args, Debug, Clone)]
pub struct ImportArgs {
    /// FHIR base URL of the server to load, e.g. `http://127.0.0.1:8080/fhir`.
    #[arg(long, env = "EMBER_IMPORT_URL")]
    pub url: String,
    /// NDJSON files (`.ndjson`, `.jsonl`: one resource per line), JSON files holding a
    /// transaction or batch Bundle (`.json`), and folders of them (recursively, in
    /// name order). Loaded one PATH after the other.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Entries per `batch` Bundle of NDJSON resources.
    #[arg(long, env = "EMBER_IMPORT_BATCH", default_value_t = 500)]
    pub batch: usize,
    /// Requests in flight at once. Eight keep a two-core server and its database busy
    /// while each batch waits for its commit: on such a machine they loaded 9 % more a
    /// second than four, and sixteen no more than eight (docs/performance.md, "Ingest").
    #[arg(long, env = "EMBER_IMPORT_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,
    /// A bearer token sent with every request.
    #[arg(long, env = "EMBER_IMPORT_BEARER", hide_env_values = true)]
    pub bearer: Option<String>,
    /// The rejected entries of this run, one JSON line each (source file, line or
    /// entry, id, OperationOutcome).
    #[arg(
        long,
        env = "EMBER_IMPORT_REJECTS",
        default_value = "import-rejects.ndjson"
    )]
    pub rejects: PathBuf,
    /// What is done, per file: a run with the same checkpoint skips it and retries the
    /// rejected entries.
    #[arg(
        long,
        env = "EMBER_IMPORT_CHECKPOINT",
        default_value = "import-checkpoint.json"
    )]
    pub checkpoint: PathBuf,
    /// Ignore an existing checkpoint and send everything again.
    #[arg(long)]
    pub restart: bool,
}

/// Imported and failed resources of one type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TypeCounts {
    pub imported: u64,
    pub failed: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub url: String,
    pub files: usize,
    pub types: BTreeMap<String, TypeCounts>,
    /// Resources skipped as done by an earlier run.
    pub skipped: u64,
    pub elapsed: Duration,
    /// Lines written to the rejects file.
    pub reject_lines: u64,
    pub rejects_path: PathBuf,
}

impl Summary {
    pub fn imported(&self) -> u64 {
        self.types.values().map(|c| c.imported).sum()
    }

    pub fn failed(&self) -> u64 {
        self.types.values().map(|c| c.failed).sum()
    }

    /// Imported resources per second.
    pub fn rate(&self) -> f64 {
        self.imported() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn render(&self) -> String {
        let mut out = format!("Ember import  {}  {} file(s)\n", self.url, self.files);
        out.push_str(&format!(
            "{:<24}{:>12}{:>10}\n",
            "type", "imported", "failed"
        ));
        for (t, c) in &self.types {
            out.push_str(&format!("{t:<24}{:>12}{:>10}\n", c.imported, c.failed));
        }
        out.push_str(&format!(
            "{:<24}{:>12}{:>10}\n",
            "total",
            self.imported(),
            self.failed()
        ));
        out.push_str(&format!(
            "{:<24}{:>12}\n",
            "skipped (done before)", self.skipped
        ));
        out.push_str(&format!(
            "{:<24}{:>12.2} s\n",
            "elapsed",
            self.elapsed.as_secs_f64()
        ));
        out.push_str(&format!("{:<24}{:>12.1}\n", "resources/s", self.rate()));
        if self.reject_lines > 0 {
            out.push_str(&format!(
                "{:<24}{:>12}  {}\n",
                "rejects",
                self.reject_lines,
                self.rejects_path.display()
            ));
        } else {
            out.push_str(&format!("{:<24}{:>12}\n", "rejects", 0));
        }
        out
    }
}

/// Runs `ember import`: prints the progress on stderr and the summary on stdout. An
/// error is a usage error or a server that cannot be reached; rejected resources are
/// in the summary.
pub async fn run(args: ImportArgs) -> Result<Summary> {
    if args.batch == 0 || args.concurrency == 0 {
        bail!("--batch and --concurrency must be at least 1");
    }
    let target = Arc::new(Target::parse(&args.url)?.with_bearer(args.bearer.as_deref())?);
    let own_files = [
        args.rejects.clone(),
        args.checkpoint.clone(),
        checkpoint::temp_path(&args.checkpoint),
    ];
    let groups = source::expand(&args.paths, &own_files)?;
    let files: Vec<InputFile> = groups.iter().flatten().cloned().collect();
    if files.is_empty() {
        bail!("no .ndjson, .jsonl or .json file in the given paths");
    }
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let checkpoint = if args.restart {
        Checkpoint::default()
    } else {
        Checkpoint::load(&args.checkpoint)?.unwrap_or_default()
    };
    let resumed = files
        .iter()
        .filter(|f| checkpoint.files.contains_key(&f.key))
        .count();

    let mut conn = Conn::new(Arc::clone(&target));
    let metadata = target.path("metadata");
    match conn.send(Method::GET, &metadata, None).await {
        Err(e) => bail!("the FHIR server at {} is not reachable: {e:#}", args.url),
        Ok(r) if r.status == 401 => {
            bail!("GET {metadata} answered 401: the server wants a (valid) --bearer token")
        }
        Ok(r) if !r.status.is_success() => {
            eprintln!("note: GET {metadata} answered {}", r.status)
        }
        Ok(_) => {}
    }
    drop(conn);
    checkpoint
        .save(&args.checkpoint)
        .context("the checkpoint must be writable")?;
    match std::fs::remove_file(&args.rejects) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("removing the old {}", args.rejects.display()));
        }
    }
    eprintln!(
        "import: {} file(s), {:.1} MiB, to {}{}",
        files.len(),
        total_bytes as f64 / (1024.0 * 1024.0),
        args.url,
        if resumed > 0 {
            format!(
                "; {resumed} of them in the checkpoint {}",
                args.checkpoint.display()
            )
        } else {
            String::new()
        }
    );

    let started = Instant::now();
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let reporter = progress::start(
        Arc::clone(&counters),
        total_bytes,
        std::io::stderr().is_terminal(),
    );
    let start_progress = Arc::new(checkpoint.files.clone());
    let files = Arc::new(files);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(Unit, Sent)>();
    let mut collector = Collector::new(
        Arc::clone(&files),
        checkpoint,
        args.checkpoint.clone(),
        args.rejects.clone(),
        Arc::clone(&counters),
    );
    let collector_stop = Arc::clone(&stop);
    let collecting = tokio::task::spawn_blocking(move || {
        while let Some((unit, sent)) = done_rx.blocking_recv() {
            collector.record(unit, sent);
            if collector.error.is_some() {
                collector_stop.store(true, Ordering::Relaxed);
            }
        }
        collector
    });

    let limits = BatchLimits {
        entries: args.batch,
        bytes: BATCH_BYTES,
    };
    let mut first = 0;
    for group in &groups {
        let range = first..first + group.len();
        first += group.len();
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let (tx, rx) = mpsc::channel::<Unit>(args.concurrency * 2);
        let reading = {
            let (files, progress, stop) = (
                Arc::clone(&files),
                Arc::clone(&start_progress),
                Arc::clone(&stop),
            );
            tokio::task::spawn_blocking(move || {
                read_files(&files, range, &progress, limits, &stop, &tx)
            })
        };
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..args.concurrency {
            let (rx, target, stop, done_tx) = (
                Arc::clone(&rx),
                Arc::clone(&target),
                Arc::clone(&stop),
                done_tx.clone(),
            );
            workers.spawn(async move {
                let mut conn = Conn::new(Arc::clone(&target));
                while !stop.load(Ordering::Relaxed) {
                    let next = rx.lock().await.recv().await;
                    let Some(mut unit) = next else { break };
                    let sent = send_unit(&mut conn, &target, &mut unit).await;
                    if matches!(sent, Sent::Fatal(_)) {
                        stop.store(true, Ordering::Relaxed);
                    }
                    if done_tx.send((unit, sent)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(rx);
        while let Some(r) = workers.join_next().await {
            r.context("an import worker panicked")?;
        }
        reading.await.context("the import reader panicked")?;
    }
    drop(done_tx);
    let collector = collecting.await.context("the import collector panicked")?;
    reporter.finish().await;

    let summary = Summary {
        url: args.url.clone(),
        files: files.len(),
        types: collector.types,
        skipped: collector.skipped,
        elapsed: started.elapsed(),
        reject_lines: collector.reject_lines,
        rejects_path: args.rejects.clone(),
    };
    print!("{}", summary.render());
    if let Some(e) = collector.error {
        eprintln!(
            "import: stopped; the checkpoint {} holds what is done, and the same command goes on from there",
            args.checkpoint.display()
        );
        return Err(e);
    }
    Ok(summary)
}

/// Reads the files `range` of `files` into units for the workers, until `stop`.
fn read_files(
    files: &[InputFile],
    range: std::ops::Range<usize>,
    start: &BTreeMap<String, FileProgress>,
    limits: BatchLimits,
    stop: &AtomicBool,
    tx: &mpsc::Sender<Unit>,
) {
    for idx in range {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let f = &files[idx];
        let progress = start.get(&f.key).cloned().unwrap_or_default();
        let emitted = Cell::new(0u64);
        let mut emit = |unit: Unit| {
            emitted.set(emitted.get() + 1);
            !stop.load(Ordering::Relaxed) && tx.blocking_send(unit).is_ok()
        };
        let failed = |what: &str, e: std::io::Error| {
            source::file_failure("exception", format!("{what}: {e}"))
        };
        let go_on = match f.kind {
            Kind::Ndjson => match std::fs::File::open(&f.path) {
                Err(e) => emit(source::file_unit(
                    idx,
                    f.size,
                    &progress,
                    Some(failed("cannot open", e)),
                )),
                Ok(file) => {
                    let reader = BufReader::with_capacity(1 << 20, file);
                    match source::ndjson_units(idx, reader, &progress, limits, &mut emit) {
                        Ok(()) => true,
                        Err(e) => {
                            let mut unit =
                                source::file_unit(idx, 0, &progress, Some(failed("read error", e)));
                            unit.seq = emitted.get();
                            emit(unit)
                        }
                    }
                }
            },
            Kind::Bundle if progress.bundle_complete() => {
                emit(source::file_unit(idx, f.size, &progress, None))
            }
            Kind::Bundle => match std::fs::read(&f.path) {
                Ok(text) => emit(source::bundle_unit(idx, text, &progress)),
                Err(e) => emit(source::file_unit(
                    idx,
                    f.size,
                    &progress,
                    Some(failed("cannot read", e)),
                )),
            },
        };
        if !go_on {
            return;
        }
    }
}

/// Why the server did not take an entry (or a transaction).
#[derive(Debug, Clone, PartialEq)]
struct Refusal {
    status: Option<u16>,
    outcome: Value,
}

/// What became of a unit's request.
#[derive(Debug)]
enum Sent {
    /// There was nothing to send.
    Nothing,
    /// Per entry: `None` when it was imported.
    Entries(Vec<Option<Refusal>>),
    /// The transaction failed as a whole.
    Transaction(Refusal),
    /// The server could not be reached, or refused the token: the run stops.
    Fatal(anyhow::Error),
}

/// `POST [base]` with a unit's Bundle, retried while the server cannot be reached
/// or is busy.
async fn send_unit(conn: &mut Conn, target: &Target, unit: &mut Unit) -> Sent {
    let Some(body) = unit.body.take() else {
        return Sent::Nothing;
    };
    let path = if target.base_path.is_empty() {
        "/".to_owned()
    } else {
        target.base_path.clone()
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt >= ATTEMPTS;
        let result = conn
            .send_with(
                Method::POST,
                &path,
                &[("prefer", "return=minimal")],
                Some(body.clone()),
                TIMEOUT,
            )
            .await;
        match result {
            Ok(reply) => {
                let status = reply.status.as_u16();
                if matches!(status, 429 | 502..=504) && !last {
                    backoff(attempt).await;
                    continue;
                }
                if status == 401 {
                    let text = String::from_utf8_lossy(&reply.body);
                    return Sent::Fatal(anyhow!(
                        "POST {path} answered 401: the server wants a (valid) --bearer token: {}",
                        truncate(&text, 300)
                    ));
                }
                return judge(unit, status, &reply.body);
            }
            Err(e) => {
                let retry = unit.idempotent || not_sent(&e);
                if retry && !last {
                    backoff(attempt).await;
                    continue;
                }
                if retry {
                    return Sent::Fatal(e.context(format!("POST {path} failed {ATTEMPTS} times")));
                }
                let refusal = Refusal {
                    status: None,
                    outcome: source::outcome(
                        "exception",
                        &format!(
                            "the request failed and may or may not have been applied (not retried, as its entries are not idempotent): {e:#}"
                        ),
                    ),
                };
                return refuse_all(unit, refusal);
            }
        }
    }
}

/// 1, 2, 4, 8 s.
async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(3))).await;
}

/// Whether a transport error happened before the request reached the server.
fn not_sent(e: &anyhow::Error) -> bool {
    let text = format!("{e:#}");
    text.contains("cannot connect to")
        || text.contains("handshake failed")
        || (text.starts_with("connect to ") && text.contains("timed out"))
}

/// Every entry (or the transaction) refused for the same reason.
fn refuse_all(unit: &Unit, refusal: Refusal) -> Sent {
    if unit.transaction {
        Sent::Transaction(refusal)
    } else {
        Sent::Entries(vec![Some(refusal); unit.entries.len()])
    }
}

/// The leading status code of a `response.status` such as `"201 Created"`.
fn entry_status(status: &Value) -> Option<u16> {
    let s = status.as_str()?.trim();
    s.split(' ').next()?.parse().ok()
}

/// Reads the server's answer to a unit's Bundle.
fn judge(unit: &Unit, status: u16, body: &[u8]) -> Sent {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let outcome = match parsed {
            Some(v) if v["resourceType"] == "OperationOutcome" => v,
            _ => source::outcome(
                "exception",
                &format!(
                    "the server answered {status}: {}",
                    truncate(&String::from_utf8_lossy(body), 300)
                ),
            ),
        };
        return refuse_all(
            unit,
            Refusal {
                status: Some(status),
                outcome,
            },
        );
    }
    let responses = parsed
        .as_ref()
        .and_then(|b| b["entry"].as_array())
        .map_or(&[][..], Vec::as_slice);
    let results = (0..unit.entries.len())
        .map(|i| {
            let Some(response) = responses.get(i).map(|e| &e["response"]) else {
                return Some(Refusal {
                    status: None,
                    outcome: source::outcome(
                        "exception",
                        &format!(
                            "the response Bundle has no entry {i} (answered {status} with {} entries)",
                            responses.len()
                        ),
                    ),
                });
            };
            let code = entry_status(&response["status"]);
            if code.is_some_and(|c| (200..300).contains(&c)) {
                return None;
            }
            let outcome = if response["outcome"].is_object() {
                response["outcome"].clone()
            } else {
                source::outcome(
                    "processing",
                    &format!("the entry's response status is {}", response["status"]),
                )
            };
            Some(Refusal {
                status: code,
                outcome,
            })
        })
        .collect();
    Sent::Entries(results)
}

/// One line of the rejects file.
fn reject_line(file: &str, f: &Failure) -> Value {
    let mut o = Map::new();
    o.insert("file".into(), json!(file));
    match f.at {
        At::Line(n) => {
            o.insert("line".into(), json!(n));
        }
        At::Entry(i) => {
            o.insert("entry".into(), json!(i));
        }
        At::Transaction(n) => {
            o.insert("bundle".into(), json!("transaction"));
            o.insert("entries".into(), json!(n));
        }
        At::File => {}
    }
    if let Some(t) = &f.resource_type {
        o.insert("resourceType".into(), json!(t));
    }
    if let Some(id) = &f.id {
        o.insert("id".into(), json!(id));
    }
    if let Some(s) = f.status {
        o.insert("status".into(), json!(s));
    }
    o.insert("outcome".into(), f.outcome.clone());
    Value::Object(o)
}

/// Where a unit's file stands: its units complete up to `next`, later ones waiting.
#[derive(Debug, Default)]
struct Commit {
    next: u64,
    waiting: BTreeMap<u64, u64>,
}

/// Takes the workers' results in completion order: counts them, writes the rejects and
/// moves the checkpoint on over the units complete in file order.
struct Collector {
    files: Arc<Vec<InputFile>>,
    checkpoint: Checkpoint,
    checkpoint_path: PathBuf,
    rejects_path: PathBuf,
    rejects: Option<std::io::BufWriter<std::fs::File>>,
    reject_lines: u64,
    commits: HashMap<usize, Commit>,
    types: BTreeMap<String, TypeCounts>,
    skipped: u64,
    counters: Arc<Counters>,
    /// The error that stops the run (the first one).
    error: Option<anyhow::Error>,
}

impl Collector {
    fn new(
        files: Arc<Vec<InputFile>>,
        checkpoint: Checkpoint,
        checkpoint_path: PathBuf,
        rejects_path: PathBuf,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            files,
            checkpoint,
            checkpoint_path,
            rejects_path,
            rejects: None,
            reject_lines: 0,
            commits: HashMap::new(),
            types: BTreeMap::new(),
            skipped: 0,
            counters,
            error: None,
        }
    }

    fn record(&mut self, unit: Unit, sent: Sent) {
        if let Err(e) = self.try_record(unit, sent) {
            self.error.get_or_insert(e);
        }
    }

    fn try_record(&mut self, unit: Unit, sent: Sent) -> Result<()> {
        let refusals = match sent {
            Sent::Fatal(e) => {
                self.error.get_or_insert(e);
                return Ok(());
            }
            Sent::Nothing => Vec::new(),
            Sent::Entries(r) => r,
            Sent::Transaction(r) => {
                let failure = Failure {
                    at: At::Transaction(unit.entries.len() as u64),
                    resource_type: None,
                    id: None,
                    status: r.status,
                    outcome: r.outcome.clone(),
                };
                self.write_reject(unit.file, &failure)?;
                vec![Some(r); unit.entries.len()]
            }
        };
        let bundle = self.files[unit.file].kind == Kind::Bundle;
        // (position, rejected) for the checkpoint.
        let mut changes: Vec<(u64, bool)> = Vec::with_capacity(unit.entries.len());
        let (mut imported, mut failed) = (0, 0);
        for f in &unit.invalid {
            self.count(f.resource_type.as_deref().unwrap_or(UNPARSED), false);
            failed += 1;
            self.write_reject(unit.file, f)?;
            if let At::Line(n) = f.at {
                changes.push((n, true));
            }
        }
        for (meta, refusal) in unit.entries.iter().zip(refusals) {
            self.count(&meta.resource_type, refusal.is_none());
            changes.push((meta.pos, refusal.is_some()));
            match refusal {
                None => imported += 1,
                Some(r) => {
                    failed += 1;
                    if !unit.transaction {
                        self.write_reject(unit.file, &entry_failure(meta, bundle, r))?;
                    }
                }
            }
        }
        if let Some(w) = self.rejects.as_mut() {
            w.flush()
                .with_context(|| format!("writing {}", self.rejects_path.display()))?;
        }

        let key = self.files[unit.file].key.clone();
        let progress = self.checkpoint.files.entry(key).or_default();
        for (pos, rejected) in changes {
            if rejected {
                progress.rejected.insert(pos);
            } else {
                progress.rejected.remove(&pos);
            }
        }
        if bundle && unit.end > 0 {
            progress.rejected.retain(|&i| i < unit.end);
        }
        let commit = self.commits.entry(unit.file).or_default();
        commit.waiting.insert(unit.seq, unit.end);
        while let Some(end) = commit.waiting.remove(&commit.next) {
            progress.done = progress.done.max(end);
            commit.next += 1;
        }

        self.skipped += unit.skipped;
        let c = &self.counters;
        c.imported.fetch_add(imported, Ordering::Relaxed);
        c.failed.fetch_add(failed, Ordering::Relaxed);
        c.skipped.fetch_add(unit.skipped, Ordering::Relaxed);
        c.bytes.fetch_add(unit.bytes, Ordering::Relaxed);
        c.skipped_bytes
            .fetch_add(unit.skipped_bytes, Ordering::Relaxed);
        self.checkpoint.save(&self.checkpoint_path)
    }

    fn count(&mut self, resource_type: &str, imported: bool) {
        let c = self.types.entry(resource_type.to_owned()).or_default();
        if imported {
            c.imported += 1;
        } else {
            c.failed += 1;
        }
    }

    fn write_reject(&mut self, file: usize, f: &Failure) -> Result<()> {
        if self.rejects.is_none() {
            let out = std::fs::File::create(&self.rejects_path)
                .with_context(|| format!("creating {}", self.rejects_path.display()))?;
            self.rejects = Some(std::io::BufWriter::new(out));
        }
        let line = reject_line(&self.files[file].path.display().to_string(), f);
        if let Some(w) = self.rejects.as_mut() {
            writeln!(w, "{line}")
                .with_context(|| format!("writing {}", self.rejects_path.display()))?;
        }
        self.reject_lines += 1;
        Ok(())
    }
}

/// The reject of a refused entry.
fn entry_failure(meta: &EntryMeta, bundle: bool, r: Refusal) -> Failure {
    Failure {
        at: if bundle {
            At::Entry(meta.pos)
        } else {
            At::Line(meta.pos)
        },
        resource_type: Some(meta.resource_type.clone()),
        id: meta.id.clone(),
        status: r.status,
        outcome: r.outcome,
    }
}

#[cfg(test)]
mod tests;
