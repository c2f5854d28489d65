//! `ember export --url URL --out DIR`: the client side of Bulk Data `$export` (the
//! asynchronous request pattern of Bulk Data Access 2.0).
//!
//! The kick-off (`GET [base]/$export`, `Patient/$export` or `Group/[id]/$export` with
//! `Prefer: respond-async`) answers 202 and names a status URL in `Content-Location`;
//! the status is polled, honouring `Retry-After` within a floor and a ceiling, until it
//! answers 200 with the manifest. Every file of the manifest is then streamed to disk
//! as `DIR/<Type>-<n>.ndjson` (error files as `DIR/error/<Type>-<n>.ndjson`), its
//! resources counted against the manifest's `count`, and the manifest itself kept as
//! `DIR/manifest.json`. `ember import DIR` loads the folder back.
//!
//! An error answer at kick-off or while polling ends the run with the server's
//! OperationOutcome; an interrupt (Ctrl-C) while the export runs on the server cancels
//! it with `DELETE` on the status URL.

mod manifest;
mod pacing;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use crate::http::{Conn, REQUEST_TIMEOUT, Reply, Target};
use crate::import::{ERROR_FOLDER, is_fhir_id};
use crate::progress::{Reporter, format_duration, format_mib};
use crate::stats::truncate;
use manifest::{Download, LineCounter, Manifest};
use pacing::{Pacing, retry_after};

/// Tries of one status poll or file download that could not be sent or met a busy
/// server (429, 502-504).
const ATTEMPTS: u32 = 5;
/// The longest a file download may stay silent.
const IDLE: Duration = REQUEST_TIMEOUT;
/// The most of an error answer's body read while downloading.
const ERROR_BODY: usize = 64 * 1024;
/// Diagnostics of the error files shown on stderr.
const SHOWN_ERRORS: usize = 5;

/// Arguments of `ember export`.
#[derive(clap::Args, Debug, Clone)]
pub struct ExportArgs {
    /// FHIR base URL of the server to export from, e.g. `http://127.0.0.1:8080/fhir`.
    #[arg(long, env = "EMBER_EXPORT_URL")]
    pub url: String,
    /// The folder for the NDJSON files and `manifest.json`: created when missing, and
    /// it must be empty.
    #[arg(long, env = "EMBER_EXPORT_OUT", value_name = "DIR")]
    pub out: PathBuf,
    /// Export the Patient compartments of all patients (`Patient/$export`) instead of
    /// every resource (`$export`).
    #[arg(long, conflicts_with = "group")]
    pub patient: bool,
    /// Export the Patient compartments of a Group's members (`Group/ID/$export`).
    #[arg(long, value_name = "ID")]
    pub group: Option<String>,
    /// The resource types to export (`_type`), comma-separated or repeated.
    #[arg(long = "type", value_name = "TYPES", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only resources last updated at or after this instant (`_since`), such as the
    /// `transactionTime` of the previous export's manifest.
    #[arg(long, value_name = "INSTANT")]
    pub since: Option<String>,
    /// A `Type?search` filter (`_typeFilter`); repeatable.
    #[arg(long = "type-filter", value_name = "FILTER")]
    pub type_filters: Vec<String>,
    /// A bearer token, sent with every request to the host of --url (and no other).
    #[arg(long, env = "EMBER_EXPORT_BEARER", hide_env_values = true)]
    pub bearer: Option<String>,
    /// The shortest wait between two status polls, in seconds; the server's
    /// `Retry-After` is honoured above it, up to 60 s.
    #[arg(long, value_name = "SECONDS", default_value = "1", value_parser = parse_seconds)]
    pub poll_interval: Duration,
    /// Files downloaded at once.
    #[arg(long, env = "EMBER_EXPORT_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && (0.0..=3600.0).contains(v))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("{s:?} is not a number of seconds from 0 to 3600"))
}

/// Files, resources and bytes of one type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub files: u64,
    pub resources: u64,
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, fetched: Fetched) {
        self.files += 1;
        self.resources += fetched.lines;
        self.bytes += fetched.bytes;
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// The kick-off request.
    pub request: String,
    pub out: PathBuf,
    pub transaction_time: Option<String>,
    /// The output files per type.
    pub types: BTreeMap<String, Totals>,
    /// The error files (their resources are OperationOutcomes).
    pub errors: Totals,
    /// From the kick-off to the manifest.
    pub waited: Duration,
    pub elapsed: Duration,
}

impl Summary {
    pub fn total(&self) -> Totals {
        let mut all = Totals::default();
        for t in self.types.values() {
            all.files += t.files;
            all.resources += t.resources;
            all.bytes += t.bytes;
        }
        all
    }

    pub fn render(&self) -> String {
        let mut out = format!(
            "Ember export  {}  to {}\n",
            self.request,
            self.out.display()
        );
        let row = |label: &str, t: &Totals| {
            format!(
                "{label:<26}{:>6}{:>12}{:>14}\n",
                t.files, t.resources, t.bytes
            )
        };
        out.push_str(&format!(
            "{:<26}{:>6}{:>12}{:>14}\n",
            "type", "files", "resources", "bytes"
        ));
        for (t, totals) in &self.types {
            out.push_str(&row(t, totals));
        }
        out.push_str(&row("total", &self.total()));
        out.push_str(&row("errors (OperationOutcome)", &self.errors));
        if let Some(t) = &self.transaction_time {
            out.push_str(&format!("{:<26}{t:>32}\n", "transactionTime"));
        }
        let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        out.push_str(&format!(
            "{:<26}{:>32}\n",
            "export on the server",
            secs(self.waited)
        ));
        out.push_str(&format!("{:<26}{:>32}\n", "elapsed", secs(self.elapsed)));
        out
    }
}

/// Runs `ember export` until it is done or Ctrl-C: prints the progress on stderr and
/// the summary on stdout. The summary of a complete export whose manifest lists error
/// files is `Ok`; an export that did not complete, or whose files do not match the
/// manifest, is an error.
pub async fn run(args: ExportArgs) -> Result<Summary> {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    run_until(args, interrupt).await
}

/// [`run`], with `interrupt` in place of Ctrl-C.
pub async fn run_until(args: ExportArgs, interrupt: impl Future<Output = ()>) -> Result<Summary> {
    if args.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let target = Arc::new(Target::parse(&args.url)?.with_bearer(args.bearer.as_deref())?);
    let kick_off = kick_off_path(&target, &args)?;
    prepare_out(&args.out)?;
    let phase = Mutex::new(Phase::KickOff);
    {
        let work = export(&args, &target, &kick_off, &phase);
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => return result,
            () = interrupt => {}
        }
    }
    let phase = phase
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match phase {
        Phase::KickOff => bail!("interrupted before the server accepted the export"),
        Phase::Running(status) => {
            let said = cancel(&status).await;
            bail!("interrupted; {said}")
        }
        Phase::Download => bail!(
            "interrupted while downloading; {} holds part of the files (the export stays on the server until it expires)",
            args.out.display()
        ),
    }
}

/// Where a run stands, for what an interrupt does.
#[derive(Debug)]
enum Phase {
    KickOff,
    /// The export runs on the server, at this status URL.
    Running(Located),
    Download,
}

/// `[base]/$export`, `[base]/Patient/$export` or `[base]/Group/[id]/$export` with the
/// query of the arguments.
fn kick_off_path(target: &Target, args: &ExportArgs) -> Result<String> {
    let operation = match (&args.group, args.patient) {
        (Some(id), _) if !is_fhir_id(id) => bail!("--group {id:?} is not a FHIR id"),
        (Some(id), _) => format!("Group/{id}/$export"),
        (None, true) => "Patient/$export".to_owned(),
        (None, false) => "$export".to_owned(),
    };
    let mut query = form_urlencoded::Serializer::new(String::new());
    let types: Vec<&str> = args
        .types
        .iter()
        .map(|t| t.trim())
        .filter(|t| !t.is_empty())
        .collect();
    if !types.is_empty() {
        query.append_pair("_type", &types.join(","));
    }
    if let Some(since) = &args.since {
        query.append_pair("_since", since.trim());
    }
    for filter in &args.type_filters {
        query.append_pair("_typeFilter", filter.trim());
    }
    let query = query.finish();
    let path = target.path(&operation);
    Ok(match query.is_empty() {
        true => path,
        false => format!("{path}?{query}"),
    })
}

/// Makes `dir` an empty folder.
fn prepare_out(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "--out {}: the folder is not empty; name a new or empty one",
                    dir.display()
                );
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?
        }
        Err(e) => return Err(e).with_context(|| format!("--out {}", dir.display())),
    }
    Ok(())
}

/// A URL the server named, as a target and a path on it.
#[derive(Debug, Clone)]
struct Located {
    target: Arc<Target>,
    path: String,
    /// On the host of --url (the connection of --url serves it).
    home: bool,
}

fn locate(target: &Arc<Target>, url: &str) -> Result<Located> {
    let (other, path) = target.locate(url)?;
    Ok(match other {
        None => Located {
            target: Arc::clone(target),
            path,
            home: true,
        },
        Some(other) => Located {
            target: Arc::new(other),
            path,
            home: false,
        },
    })
}

/// What a server's error answer says: its status and the diagnostics of an
/// OperationOutcome (else the start of the body).
fn server_says(status: StatusCode, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let issues: Vec<String> = parsed
        .as_ref()
        .filter(|v| v["resourceType"] == "OperationOutcome")
        .and_then(|v| v["issue"].as_array())
        .map(|issues| {
            issues
                .iter()
                .filter_map(|i| {
                    i["diagnostics"]
                        .as_str()
                        .or_else(|| i["details"]["text"].as_str())
                        .or_else(|| i["code"].as_str())
                })
                .map(|d| truncate(d, 300))
                .collect()
        })
        .unwrap_or_default();
    let mut said = status.to_string();
    if !issues.is_empty() {
        said.push_str(": ");
        said.push_str(&issues.join("; "));
    } else if !body.is_empty() {
        said.push_str(": ");
        said.push_str(&truncate(&String::from_utf8_lossy(body), 300));
    }
    if status == StatusCode::UNAUTHORIZED {
        said.push_str(" (the server wants a (valid) --bearer token)");
    }
    said
}

fn busy(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502..=504)
}

/// Kick-off, polling and downloads, moving `phase` on.
async fn export(
    args: &ExportArgs,
    target: &Arc<Target>,
    kick_off: &str,
    phase: &Mutex<Phase>,
) -> Result<Summary> {
    let started = Instant::now();
    let terminal = std::io::stderr().is_terminal();
    let mut conn = Conn::new(Arc::clone(target));
    let reply = conn
        .send_with(
            Method::GET,
            kick_off,
            &[("prefer", "respond-async")],
            None,
            REQUEST_TIMEOUT,
        )
        .await
        .with_context(|| format!("the FHIR server at {} is not reachable", args.url))?;
    if reply.status != StatusCode::ACCEPTED {
        bail!(
            "the kick-off GET {kick_off} answered {}",
            server_says(reply.status, &reply.body)
        );
    }
    let status_url = reply
        .header("content-location")
        .ok_or_else(|| anyhow!("the kick-off answered 202 without a Content-Location"))?
        .to_owned();
    let status = locate(target, &status_url)?;
    let set = |to: Phase| {
        if let Ok(mut p) = phase.lock() {
            *p = to;
        }
    };
    set(Phase::Running(status.clone()));
    eprintln!("export: {kick_off} accepted; status at {status_url}");
    let polled = poll(&status, args.poll_interval, terminal).await;
    set(Phase::Download);
    let body = polled?;
    let waited = started.elapsed();
    let manifest = Manifest::parse(&body)?;
    let manifest_path = args.out.join(manifest::manifest_path());
    std::fs::write(&manifest_path, &body)
        .with_context(|| format!("writing {}", manifest_path.display()))?;
    if !manifest.deleted.is_empty() {
        eprintln!(
            "export: note: the manifest lists {} file(s) of deleted resources, which are not downloaded",
            manifest.deleted.len()
        );
    }
    let downloads = manifest::plan(&manifest);
    if downloads.iter().any(|d| d.error) {
        let errors = args.out.join(ERROR_FOLDER);
        std::fs::create_dir_all(&errors)
            .with_context(|| format!("creating {}", errors.display()))?;
    }
    eprintln!(
        "export: done on the server after {}; downloading {} file(s)",
        format_duration(waited),
        downloads.len()
    );
    let results = download_all(target, &args.out, downloads, args.concurrency, terminal).await;

    let mut summary = Summary {
        request: kick_off.to_owned(),
        out: args.out.clone(),
        transaction_time: manifest.transaction_time.clone(),
        waited,
        ..Default::default()
    };
    let mut failures = Vec::new();
    for (d, result) in &results {
        match result {
            Ok(fetched) if d.error => summary.errors.add(*fetched),
            Ok(fetched) => summary
                .types
                .entry(d.item.res_type.clone())
                .or_default()
                .add(*fetched),
            Err(e) => failures.push(format!("{}: {e:#}", d.name.display())),
        }
    }
    summary.elapsed = started.elapsed();
    print!("{}", summary.render());
    if !failures.is_empty() {
        bail!(
            "{} of {} file(s) failed:\n  {}",
            failures.len(),
            results.len(),
            failures.join("\n  ")
        );
    }
    show_errors(&args.out, &results);
    Ok(summary)
}

/// Polls the status until the manifest: its body.
async fn poll(status: &Located, floor: Duration, terminal: bool) -> Result<Bytes> {
    let mut conn = Conn::new(Arc::clone(&status.target));
    let mut pacing = Pacing::new(floor);
    let text = Arc::new(Mutex::new("kicked off".to_owned()));
    let shown = Arc::clone(&text);
    let reporter = Reporter::start("export", None, terminal, move |elapsed| {
        let text = shown.lock().map(|t| t.clone()).unwrap_or_default();
        (0, format!("{text} ({})", format_duration(elapsed)))
    });
    let mut failures = 0;
    loop {
        let reply = conn
            .send_with(Method::GET, &status.path, &[], None, REQUEST_TIMEOUT)
            .await;
        let asked = match reply {
            Err(e) => {
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(e.context(format!(
                        "GET {} failed {ATTEMPTS} times in a row",
                        status.path
                    )));
                }
                None
            }
            Ok(r) if r.status == StatusCode::OK => {
                reporter.finish().await;
                return Ok(r.body);
            }
            Ok(r) if r.status == StatusCode::ACCEPTED => {
                failures = 0;
                let progress = r.header("x-progress").unwrap_or("in progress");
                if let Ok(mut t) = text.lock() {
                    *t = truncate(progress, 100);
                }
                asked(&r)
            }
            Ok(r) if busy(r.status) && failures + 1 < ATTEMPTS => {
                failures += 1;
                asked(&r)
            }
            Ok(r) => bail!(
                "the export's status {} answered {}",
                status.path,
                server_says(r.status, &r.body)
            ),
        };
        tokio::time::sleep(pacing.next(asked)).await;
    }
}

fn asked(reply: &Reply) -> Option<Duration> {
    retry_after(reply.header("retry-after"), SystemTime::now())
}

/// `DELETE` on the status URL; what came of it.
async fn cancel(status: &Located) -> String {
    let mut conn = Conn::new(Arc::clone(&status.target));
    let reply = conn
        .send_with(
            Method::DELETE,
            &status.path,
            &[],
            None,
            Duration::from_secs(10),
        )
        .await;
    match reply {
        Ok(r) if r.status.is_success() => {
            format!("the export was cancelled (DELETE answered {})", r.status)
        }
        Ok(r) => format!(
            "cancelling the export failed: DELETE {} answered {}",
            status.path,
            server_says(r.status, &r.body)
        ),
        Err(e) => format!(
            "cancelling the export failed: DELETE {}: {e:#}",
            status.path
        ),
    }
}

/// What one download brought.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Fetched {
    bytes: u64,
    lines: u64,
}

/// Downloads so far, for the progress.
#[derive(Debug, Default)]
struct Counters {
    files: AtomicU64,
    bytes: AtomicU64,
}

/// Downloads every file, `concurrency` at once; the result of each, in manifest order.
async fn download_all(
    target: &Arc<Target>,
    out: &Path,
    downloads: Vec<Download>,
    concurrency: usize,
    terminal: bool,
) -> Vec<(Download, Result<Fetched>)> {
    let total = downloads.len() as u64;
    let counters = Arc::new(Counters::default());
    let shown = Arc::clone(&counters);
    let reporter = Reporter::start("export", Some(total), terminal, move |elapsed| {
        let files = shown.files.load(Ordering::Relaxed);
        let bytes = shown.bytes.load(Ordering::Relaxed);
        let rate = bytes as f64 / elapsed.as_secs_f64().max(1e-3);
        let line = format!(
            "{files}/{total} files, {}, {}/s",
            format_mib(bytes),
            format_mib(rate as u64)
        );
        (files, line)
    });
    let downloads = Arc::new(downloads);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(downloads.len()) {
        let (target, out, downloads, next, counters) = (
            Arc::clone(target),
            out.to_owned(),
            Arc::clone(&downloads),
            Arc::clone(&next),
            Arc::clone(&counters),
        );
        workers.spawn(async move {
            let mut home = Conn::new(Arc::clone(&target));
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = downloads.get(i) else { break };
                let result = download(&mut home, &target, &out, d, &counters).await;
                counters.files.fetch_add(1, Ordering::Relaxed);
                done.push((i, result));
            }
            done
        });
    }
    let mut results: Vec<Option<Result<Fetched>>> = downloads.iter().map(|_| None).collect();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(done) => {
                for (i, r) in done {
                    results[i] = Some(r);
                }
            }
            Err(e) => eprintln!("export: a download worker failed: {e}"),
        }
    }
    reporter.finish().await;
    downloads
        .iter()
        .cloned()
        .zip(results)
        .map(|(d, r)| {
            let r = r.unwrap_or_else(|| Err(anyhow!("not downloaded")));
            (d, r)
        })
        .collect()
}

/// Why a try failed: worth another try, or not.
enum Failed {
    Again(anyhow::Error),
    Final(anyhow::Error),
}

impl From<std::io::Error> for Failed {
    fn from(e: std::io::Error) -> Self {
        Failed::Final(e.into())
    }
}

/// Downloads one file to `out/<name>` (through a hidden `.part` file) and checks its
/// resources against the manifest's count.
async fn download(
    home: &mut Conn,
    target: &Arc<Target>,
    out: &Path,
    d: &Download,
    counters: &Counters,
) -> Result<Fetched> {
    let at = locate(target, &d.item.url)?;
    let mut other = (!at.home).then(|| Conn::new(Arc::clone(&at.target)));
    let path = out.join(&d.name);
    let part = part_path(&path);
    let mut attempt = 0;
    let fetched = loop {
        attempt += 1;
        let conn = other.as_mut().unwrap_or(&mut *home);
        let mut counted = 0;
        match fetch(conn, &at.path, &part, counters, &mut counted).await {
            Ok(f) => break f,
            Err(Failed::Again(e)) if attempt < ATTEMPTS => {
                counters.bytes.fetch_sub(counted, Ordering::Relaxed);
                eprintln!(
                    "export: {} (try {attempt} of {ATTEMPTS}): {e:#}",
                    d.name.display()
                );
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 1).min(3))).await;
            }
            Err(Failed::Again(e) | Failed::Final(e)) => {
                let _ = std::fs::remove_file(&part);
                return Err(e.context(format!("GET {}", d.item.url)));
            }
        }
    };
    std::fs::rename(&part, &path).with_context(|| format!("writing {}", path.display()))?;
    if let Some(count) = d.item.count {
        if count != fetched.lines {
            bail!(
                "{} resource(s) in the file, the manifest says {count}",
                fetched.lines
            );
        }
    }
    Ok(fetched)
}

/// `dir/.name.part`: hidden, so `ember import` never reads a file half written.
fn part_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.part"))
}

/// One try of a download: streams the body into `part`, counting its lines.
async fn fetch(
    conn: &mut Conn,
    path: &str,
    part: &Path,
    counters: &Counters,
    counted: &mut u64,
) -> Result<Fetched, Failed> {
    let resp = conn
        .open(
            Method::GET,
            path,
            &[("accept", "application/fhir+ndjson")],
            REQUEST_TIMEOUT,
        )
        .await
        .map_err(Failed::Again)?;
    let status = resp.status();
    if !status.is_success() {
        let body = tokio::time::timeout(IDLE, Limited::new(resp.into_body(), ERROR_BODY).collect())
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let e = anyhow!("answered {}", server_says(status, &body));
        return Err(if busy(status) {
            Failed::Again(e)
        } else {
            Failed::Final(e)
        });
    }
    let file = std::fs::File::create(part)
        .map_err(|e| Failed::Final(anyhow!("creating {}: {e}", part.display())))?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut body = resp.into_body();
    let mut lines = LineCounter::default();
    loop {
        let frame = match tokio::time::timeout(IDLE, body.frame()).await {
            Err(_) => {
                return Err(Failed::Again(anyhow!("no data for {}s", IDLE.as_secs())));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => return Err(Failed::Again(anyhow!("reading the file: {e}"))),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            lines.feed(&data);
            file.write_all(&data)?;
            *counted += data.len() as u64;
            counters
                .bytes
                .fetch_add(data.len() as u64, Ordering::Relaxed);
        }
    }
    file.flush()?;
    Ok(Fetched {
        bytes: *counted,
        lines: lines.lines(),
    })
}

/// Prints the diagnostics of the first OperationOutcomes of the error files.
fn show_errors(out: &Path, results: &[(Download, Result<Fetched>)]) {
    let files: Vec<&Download> = results
        .iter()
        .filter(|(d, r)| d.error && r.is_ok())
        .map(|(d, _)| d)
        .collect();
    if files.is_empty() {
        return;
    }
    let mut shown = 0;
    for d in &files {
        let text = std::fs::read_to_string(out.join(&d.name)).unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if shown == SHOWN_ERRORS {
                break;
            }
            let said = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|v| v["issue"][0]["diagnostics"].as_str().map(str::to_owned))
                .unwrap_or_else(|| truncate(line, 200));
            eprintln!("export: error: {said}");
            shown += 1;
        }
    }
    eprintln!(
        "export: the server reported errors; the OperationOutcomes are in {}",
        out.join(ERROR_FOLDER).display()
    );
}

#[cfg(test)]
mod tests;
