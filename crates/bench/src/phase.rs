//! Timed HTTP phases: N workers, one connection each, warmup then recording.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use http::Method;
use tokio::task::JoinSet;

use crate::http::{Conn, REQUEST_TIMEOUT, Reply, Target, created_id};

const FHIR_XML: &str = "application/fhir+xml";
use crate::rng::Rng;
use crate::stats::{ErrorSamples, PhaseStats, truncate};
use crate::workload::{Refs, ResourceType, generate_string};

/// A created resource: (type, server id).
pub type Entry = (ResourceType, String);

/// What each request of a phase does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Create,
    Read,
    /// A read asking for FHIR XML.
    ReadXml,
    Update,
    Delete,
    /// GET against the HTTP-ceiling server.
    Ceiling,
}

impl Work {
    fn salt(self) -> u64 {
        match self {
            Work::Create => 1,
            Work::Read => 2,
            Work::Update => 3,
            Work::Delete => 4,
            Work::Ceiling => 5,
            Work::ReadXml => 6,
        }
    }
}

/// When recording starts and when the phase ends.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub record_from: Instant,
    pub end: Instant,
}

impl Timing {
    pub fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let record_from = Instant::now() + warmup;
        Self {
            record_from,
            end: record_from + duration,
        }
    }
}

/// Everything the workers of one phase share.
pub struct PhaseCtx {
    pub target: Arc<Target>,
    pub refs: Arc<Refs>,
    /// Entries read/updated at random.
    pub pool: Arc<Vec<Entry>>,
    /// Entries deleted, each popped once.
    pub delete_queue: Mutex<Vec<Entry>>,
    pub seed: u64,
    pub samples: ErrorSamples,
}

impl PhaseCtx {
    pub fn new(target: Arc<Target>, refs: Arc<Refs>, seed: u64) -> Self {
        Self {
            target,
            refs,
            pool: Arc::new(Vec::new()),
            delete_queue: Mutex::new(Vec::new()),
            seed,
            samples: ErrorSamples::default(),
        }
    }

    fn pop_delete(&self) -> Option<Entry> {
        match self.delete_queue.lock() {
            Ok(mut q) => q.pop(),
            Err(p) => p.into_inner().pop(),
        }
    }
}

/// Output of one worker.
#[derive(Debug)]
pub struct WorkerOut {
    pub latencies_us: Vec<u64>,
    pub errors: u64,
    pub created: Vec<Entry>,
    pub finished_at: Instant,
    pub ended_early: bool,
}

impl WorkerOut {
    pub fn new() -> Self {
        Self {
            latencies_us: Vec::with_capacity(4096),
            errors: 0,
            created: Vec::new(),
            finished_at: Instant::now(),
            ended_early: false,
        }
    }

    /// Records one finished operation if it started after the warmup.
    pub fn record(&mut self, timing: &Timing, started: Instant, ok: bool) {
        if started >= timing.record_from {
            let us = started.elapsed().as_micros();
            self.latencies_us
                .push(u64::try_from(us).unwrap_or(u64::MAX));
            if !ok {
                self.errors += 1;
            }
        }
    }
}

/// Merges worker outputs into phase statistics.
pub fn summarize(
    name: &str,
    timing: &Timing,
    outs: Vec<WorkerOut>,
    samples: Vec<String>,
) -> (PhaseStats, Vec<Entry>) {
    let mut lat = Vec::with_capacity(outs.iter().map(|o| o.latencies_us.len()).sum());
    let mut errors = 0;
    let mut created = Vec::new();
    let mut last = timing.record_from;
    let mut early = false;
    for o in outs {
        lat.extend_from_slice(&o.latencies_us);
        errors += o.errors;
        created.extend(o.created);
        last = last.max(o.finished_at);
        early |= o.ended_early;
    }
    let elapsed = last.saturating_duration_since(timing.record_from);
    let stats = PhaseStats::from_latencies(name, lat, errors, elapsed, early, samples);
    (stats, created)
}

/// Runs one HTTP phase with `connections` workers. Returns its statistics and
/// the resources created (create phase only).
pub async fn run_http_phase(
    name: &str,
    work: Work,
    ctx: Arc<PhaseCtx>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> Result<(PhaseStats, Vec<Entry>)> {
    let timing = Timing::starting_now(warmup, duration);
    let mut set = JoinSet::new();
    for idx in 0..connections {
        let ctx = ctx.clone();
        set.spawn(http_worker(work, ctx, idx, timing));
    }
    let mut outs = Vec::with_capacity(connections);
    while let Some(res) = set.join_next().await {
        outs.push(res.with_context(|| format!("{name} worker crashed"))?);
    }
    Ok(summarize(name, &timing, outs, ctx.samples.take()))
}

fn describe_status(method: &Method, path: &str, reply: &Reply) -> String {
    let body = String::from_utf8_lossy(&reply.body);
    format!(
        "{method} {path} -> {}: {}",
        reply.status,
        truncate(&body, 200)
    )
}

async fn http_worker(work: Work, ctx: Arc<PhaseCtx>, idx: usize, timing: Timing) -> WorkerOut {
    let mut out = WorkerOut::new();
    let mut conn = Conn::new(ctx.target.clone());
    let mut rng = Rng::for_worker(ctx.seed, work.salt(), idx);
    let mut type_cursor = idx;
    loop {
        if Instant::now() >= timing.end {
            break;
        }
        let (method, path, body, rtype) = match work {
            Work::Create => {
                let rt = ResourceType::ALL[type_cursor % ResourceType::ALL.len()];
                type_cursor += 1;
                let body = generate_string(rt, &mut rng, &ctx.refs, None);
                (
                    Method::POST,
                    ctx.target.path(rt.name()),
                    Some(Bytes::from(body)),
                    Some(rt),
                )
            }
            Work::Read | Work::ReadXml | Work::Update => {
                if ctx.pool.is_empty() {
                    out.ended_early = true;
                    break;
                }
                let (rt, id) = &ctx.pool[rng.index(ctx.pool.len())];
                let path = ctx.target.path(&format!("{}/{id}", rt.name()));
                if work != Work::Update {
                    (Method::GET, path, None, None)
                } else {
                    let body = generate_string(*rt, &mut rng, &ctx.refs, Some(id));
                    (Method::PUT, path, Some(Bytes::from(body)), None)
                }
            }
            Work::Delete => {
                let Some((rt, id)) = ctx.pop_delete() else {
                    out.ended_early = true;
                    break;
                };
                (
                    Method::DELETE,
                    ctx.target.path(&format!("{}/{id}", rt.name())),
                    None,
                    None,
                )
            }
            Work::Ceiling => (Method::GET, ctx.target.path("Patient/ceiling"), None, None),
        };
        let started = Instant::now();
        let result = if work == Work::ReadXml {
            let accept = [("accept", FHIR_XML)];
            conn.send_with(method.clone(), &path, &accept, body, REQUEST_TIMEOUT)
                .await
        } else {
            conn.send(method.clone(), &path, body).await
        };
        let mut transport_error = false;
        let ok = match result {
            Ok(reply) if work == Work::ReadXml && !is_xml(&reply) => {
                ctx.samples.push(|| {
                    format!(
                        "{method} {path} (Accept: {FHIR_XML}) -> {} with Content-Type {:?}",
                        reply.status,
                        reply.header("content-type")
                    )
                });
                false
            }
            Ok(reply) if reply.status.is_success() => match rtype {
                Some(rt) => match created_id(&reply) {
                    Some(id) => {
                        out.created.push((rt, id));
                        true
                    }
                    None => {
                        ctx.samples.push(|| {
                            format!(
                                "{method} {path} -> {}: no id in Location header or body",
                                reply.status
                            )
                        });
                        false
                    }
                },
                None => true,
            },
            Ok(reply) => {
                ctx.samples.push(|| describe_status(&method, &path, &reply));
                false
            }
            Err(e) => {
                transport_error = true;
                ctx.samples
                    .push(|| format!("{method} {path} -> transport error: {e:#}"));
                false
            }
        };
        out.record(&timing, started, ok);
        if transport_error {
            // Avoid a hot reconnect loop against a server that went away.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    out.finished_at = Instant::now();
    out
}

/// Whether `reply` is a successful FHIR XML answer.
fn is_xml(reply: &Reply) -> bool {
    reply.status.is_success()
        && reply
            .header("content-type")
            .is_some_and(|t| t.starts_with(FHIR_XML))
}

/// Sequentially creates `count` resources of `rt` (setup step). Fails on the
/// first error, with the server's answer in the message.
pub async fn setup_create(
    conn: &mut Conn,
    target: &Target,
    rt: ResourceType,
    count: usize,
    rng: &mut Rng,
    refs: &Refs,
) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let body = generate_string(rt, rng, refs, None);
        let path = target.path(rt.name());
        let reply = conn
            .send(Method::POST, &path, Some(Bytes::from(body)))
            .await
            .with_context(|| format!("setup: POST {path} failed"))?;
        if !reply.status.is_success() {
            return Err(anyhow!(
                "setup: {}",
                describe_status(&Method::POST, &path, &reply)
            ));
        }
        let id = created_id(&reply).ok_or_else(|| {
            anyhow!(
                "setup: POST {path} -> {} but no id in the Location header or body",
                reply.status
            )
        })?;
        ids.push(id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, content_type: &str) -> Reply {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        Reply {
            status: http::StatusCode::from_u16(status).unwrap(),
            location: None,
            headers,
            body: Bytes::new(),
        }
    }

    #[test]
    fn only_a_successful_fhir_xml_answer_is_an_xml_read() {
        assert!(is_xml(&reply(200, "application/fhir+xml; charset=utf-8")));
        assert!(!is_xml(&reply(200, "application/fhir+json; charset=utf-8")));
        assert!(!is_xml(&reply(404, "application/fhir+xml")));
    }
}
