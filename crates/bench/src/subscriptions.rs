//! `ember bench-subscriptions`: how soon after a write its Subscription notification
//! arrives. It runs a receiver on a loopback port, stores `--subscriptions` rest-hook
//! Subscriptions with a full JSON payload (`Observation?subject=Patient/…&code=…`, one
//! patient each), waits until Ember has activated them, then creates Observations at
//! `--rate` per second for `--seconds`, spread over the patients, so every write
//! matches exactly one subscription. Writes are paced by a schedule (open loop): a
//! slow server makes them late, and the report shows the rate reached.
//!
//! The latency of a write is the time from sending its request to the arrival of its
//! notification, so it includes the write itself and is an upper bound of the time
//! after commit; the time from the write's answer (just after its commit) is reported
//! beside it. Writes still without a notification `--drain` seconds after the last
//! one are missing; a notification that arrives twice is counted as a repeat.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;

use crate::http::{CeilingServer, Conn, Target, created_id};
use crate::stats::{percentile, round2};

/// The delivery latency target (p99, from the write's request).
pub const TARGET_P99_MS: f64 = 1000.0;

/// The path under which the receiver gets notifications (`[endpoint]/Observation/[id]`).
const HOOK: &str = "/hook";

#[derive(clap::Args, Debug, Clone)]
pub struct SubscriptionBenchArgs {
    /// FHIR base URL of the server, e.g. http://127.0.0.1:8080/fhir
    #[arg(long, env = "EMBER_BENCH_URL")]
    pub url: String,

    /// Active rest-hook Subscriptions, one patient each
    #[arg(long, default_value_t = 100)]
    pub subscriptions: usize,

    /// Matching writes per second
    #[arg(long, default_value_t = 500)]
    pub rate: u32,

    /// Seconds of writes
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,

    /// Concurrent HTTP/1.1 connections that write
    #[arg(long, default_value_t = 32)]
    pub connections: usize,

    /// Seconds to wait for late notifications after the last write
    #[arg(long, default_value_t = 30)]
    pub drain: u64,

    /// Write the report as JSON to this file
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Latencies in milliseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(mut us: Vec<u64>) -> Self {
        us.sort_unstable();
        let ms = |p: f64| round2(percentile(&us, p) as f64 / 1000.0);
        Self {
            p50_ms: ms(50.0),
            p95_ms: ms(95.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionReport {
    pub subscriptions: usize,
    pub rate_asked: u32,
    pub seconds: u64,
    pub connections: usize,
    /// Writes answered 201.
    pub writes: usize,
    pub write_errors: usize,
    /// Writes per second reached (answered writes over the time from the first send to
    /// the last answer).
    pub rate_reached: f64,
    pub delivered: usize,
    pub missing: usize,
    /// Notifications that arrived more than once (allowed: delivery is at least once).
    pub repeats: usize,
    /// From sending the write to the arrival of its notification.
    pub from_request: Latency,
    /// From the write's answer (after its commit) to the arrival of its notification;
    /// 0 when the notification came first.
    pub from_answer: Latency,
    pub target_p99_ms: f64,
    pub target_met: bool,
}

/// One answered write: the Observation's id, when its request went out and when its
/// answer came.
#[derive(Debug, Clone)]
struct Write {
    id: String,
    sent: Instant,
    answered: Instant,
}

/// The first arrival and the number of arrivals of each Observation's notification.
type Arrivals = Arc<Mutex<HashMap<String, (Instant, usize)>>>;

pub async fn run(args: SubscriptionBenchArgs) -> Result<()> {
    if args.subscriptions == 0 || args.rate == 0 || args.connections == 0 {
        bail!("--subscriptions, --rate and --connections must be positive");
    }
    let target = Arc::new(Target::parse(&args.url)?);
    let arrivals: Arrivals = Arc::default();
    let receiver = {
        let arrivals = Arc::clone(&arrivals);
        let prefix = format!("{HOOK}/Observation/");
        CeilingServer::observing(
            Bytes::from_static(b"{}"),
            Arc::new(move |head: &http::request::Parts| {
                let now = Instant::now();
                if let Some(id) = head.uri.path().strip_prefix(prefix.as_str()) {
                    if let Ok(mut seen) = arrivals.lock() {
                        seen.entry(id.to_owned()).or_insert((now, 0)).1 += 1;
                    }
                }
            }),
        )?
    };
    let endpoint = format!("http://{}{HOOK}", receiver.addr);
    let run = crate::submit::run_id();
    let mut conn = Conn::new(Arc::clone(&target));
    eprintln!(
        "storing {} subscriptions (receiver {endpoint})",
        args.subscriptions
    );
    let patients: Vec<String> = (0..args.subscriptions)
        .map(|i| format!("bsub-{run}-{i}"))
        .collect();
    let mut subscriptions = Vec::new();
    for patient in &patients {
        let body = json!({"resourceType": "Patient", "id": patient, "active": true});
        expect(&mut conn, Method::PUT, &format!("Patient/{patient}"), body).await?;
        let body = subscription(patient, &endpoint);
        let reply = expect(&mut conn, Method::POST, "Subscription", body).await?;
        subscriptions.push(created_id(&reply).context("a created Subscription without an id")?);
    }
    wait_active(&mut conn, &subscriptions).await?;
    eprintln!(
        "writing {} Observations a second for {} s on {} connections",
        args.rate, args.seconds, args.connections
    );
    let total = usize::try_from(u64::from(args.rate) * args.seconds).unwrap_or(usize::MAX);
    let (writes, errors, started) = load(&target, &args, &patients, total).await;
    let last_answer = writes.iter().map(|w| w.answered).max().unwrap_or(started);
    let deadline = Instant::now() + Duration::from_secs(args.drain);
    while Instant::now() < deadline && delivered(&arrivals, &writes) < writes.len() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(receiver);
    let arrivals = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let report = report(&args, &writes, errors, started, last_answer, &arrivals);
    for id in &subscriptions {
        let _ = conn
            .send(
                Method::DELETE,
                &target.path(&format!("Subscription/{id}")),
                None,
            )
            .await;
    }
    println!("{}", render(&report));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).context("serializing the report")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the JSON report to {}", path.display()))?;
    }
    if report.writes == 0 {
        bail!("no write succeeded; the numbers are not valid");
    }
    Ok(())
}

/// A rest-hook Subscription on the Observations of `patient`, with a full JSON payload.
fn subscription(patient: &str, endpoint: &str) -> serde_json::Value {
    json!({
        "resourceType": "Subscription",
        "status": "requested",
        "reason": "ember bench-subscriptions",
        "criteria": format!("Observation?subject=Patient/{patient}&code=http://loinc.org|8867-4"),
        "channel": {
            "type": "rest-hook",
            "endpoint": endpoint,
            "payload": "application/fhir+json"
        }
    })
}

fn observation(patient: &str, i: usize) -> serde_json::Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": "2026-12-01T08:00:00Z",
        "valueQuantity": {
            "value": 60 + i % 40,
            "unit": "/min",
            "system": "http://unitsofmeasure.org",
            "code": "/min"
        }
    })
}

/// Sends `body` and fails unless the answer is 2xx.
async fn expect(
    conn: &mut Conn,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> Result<crate::http::Reply> {
    let path = conn.target().path(path);
    let reply = conn
        .send(method.clone(), &path, Some(Bytes::from(body.to_string())))
        .await?;
    if !reply.status.is_success() {
        bail!(
            "{method} {path} answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        );
    }
    Ok(reply)
}

/// Waits until Ember has set every one of `ids` active (at most a minute).
async fn wait_active(conn: &mut Conn, ids: &[String]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut waiting: Vec<&String> = ids.iter().collect();
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for id in waiting {
            let path = conn.target().path(&format!("Subscription/{id}"));
            let reply = conn.send(Method::GET, &path, None).await?;
            let status = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|s| s["status"].as_str().map(str::to_owned));
            match (reply.status, status.as_deref()) {
                (StatusCode::OK, Some("active")) => {}
                (StatusCode::OK, Some("requested")) => still.push(id),
                (code, status) => bail!("Subscription/{id}: {code}, status {status:?}"),
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            if Instant::now() > deadline {
                bail!(
                    "{} subscriptions were not activated within a minute",
                    waiting.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Creates `total` Observations on the schedule of `args.rate` per second: the answered
/// writes, the failed ones, and when the schedule started.
async fn load(
    target: &Arc<Target>,
    args: &SubscriptionBenchArgs,
    patients: &[String],
    total: usize,
) -> (Vec<Write>, usize, Instant) {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let patients: Arc<[String]> = patients.into();
    let interval = Duration::from_secs(1) / args.rate;
    let mut workers = JoinSet::new();
    for _ in 0..args.connections {
        let (next, patients) = (Arc::clone(&next), Arc::clone(&patients));
        let mut conn = Conn::new(Arc::clone(target));
        workers.spawn(async move {
            let mut writes = Vec::new();
            let mut errors = 0;
            let path = conn.target().path("Observation");
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return (writes, errors);
                }
                let due = started + interval * u32::try_from(i).unwrap_or(u32::MAX);
                tokio::time::sleep_until(due.into()).await;
                let body = observation(&patients[i % patients.len()], i);
                let sent = Instant::now();
                let reply = conn
                    .send(Method::POST, &path, Some(Bytes::from(body.to_string())))
                    .await;
                match reply {
                    Ok(r) if r.status == StatusCode::CREATED => match created_id(&r) {
                        Some(id) => writes.push(Write {
                            id,
                            sent,
                            answered: Instant::now(),
                        }),
                        None => errors += 1,
                    },
                    _ => errors += 1,
                }
            }
        });
    }
    let (mut writes, mut errors) = (Vec::new(), 0);
    while let Some(done) = workers.join_next().await {
        if let Ok((w, e)) = done {
            writes.extend(w);
            errors += e;
        }
    }
    (writes, errors, started)
}

fn delivered(arrivals: &Arrivals, writes: &[Write]) -> usize {
    let Ok(seen) = arrivals.lock() else { return 0 };
    writes.iter().filter(|w| seen.contains_key(&w.id)).count()
}

fn report(
    args: &SubscriptionBenchArgs,
    writes: &[Write],
    write_errors: usize,
    started: Instant,
    last_answer: Instant,
    arrivals: &HashMap<String, (Instant, usize)>,
) -> SubscriptionReport {
    let (mut from_request, mut from_answer) = (Vec::new(), Vec::new());
    let mut repeats = 0;
    for w in writes {
        if let Some((at, times)) = arrivals.get(&w.id) {
            let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            from_request.push(us(at.saturating_duration_since(w.sent)));
            from_answer.push(us(at.saturating_duration_since(w.answered)));
            repeats += times - 1;
        }
    }
    let delivered = from_request.len();
    let span = last_answer.saturating_duration_since(started).as_secs_f64();
    let from_request = Latency::of(from_request);
    let missing = writes.len() - delivered;
    SubscriptionReport {
        subscriptions: args.subscriptions,
        rate_asked: args.rate,
        seconds: args.seconds,
        connections: args.connections,
        writes: writes.len(),
        write_errors,
        rate_reached: if span > 0.0 {
            round2(writes.len() as f64 / span)
        } else {
            0.0
        },
        delivered,
        missing,
        repeats,
        target_met: missing == 0 && delivered > 0 && from_request.p99_ms < TARGET_P99_MS,
        from_request,
        from_answer: Latency::of(from_answer),
        target_p99_ms: TARGET_P99_MS,
    }
}

fn render(r: &SubscriptionReport) -> String {
    let l = |x: &Latency| {
        format!(
            "p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            x.p50_ms, x.p95_ms, x.p99_ms, x.max_ms
        )
    };
    format!(
        "subscriptions {}  writes {} ({} failed) at {:.1}/s (asked {}/s) for {} s on {} connections\n\
         delivered {}  missing {}  repeats {}\n\
         latency from the write's request: {}\n\
         latency from the write's answer:  {}\n\
         target p99 < {} ms with nothing missing: {}",
        r.subscriptions,
        r.writes,
        r.write_errors,
        r.rate_reached,
        r.rate_asked,
        r.seconds,
        r.connections,
        r.delivered,
        r.missing,
        r.repeats,
        l(&r.from_request),
        l(&r.from_answer),
        r.target_p99_ms,
        if r.target_met { "MET" } else { "NOT MET" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SubscriptionBenchArgs {
        SubscriptionBenchArgs {
            url: "http://127.0.0.1:1/fhir".into(),
            subscriptions: 2,
            rate: 10,
            seconds: 1,
            connections: 1,
            drain: 1,
            json: None,
        }
    }

    #[test]
    fn the_report_joins_writes_with_their_first_notification() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let write = |id: &str, sent: u64, answered: u64| Write {
            id: id.into(),
            sent: ms(sent),
            answered: ms(answered),
        };
        let writes = vec![
            write("a", 0, 10),
            write("b", 100, 110),
            write("c", 200, 220),
        ];
        let arrivals = HashMap::from([
            ("a".to_owned(), (ms(30), 1)),
            // Notified before the answer came: 0 after the answer.
            ("b".to_owned(), (ms(105), 2)),
            ("stray".to_owned(), (ms(5), 1)),
        ]);
        let r = report(&args(), &writes, 1, t0, ms(220), &arrivals);
        assert_eq!((r.writes, r.write_errors), (3, 1));
        assert_eq!((r.delivered, r.missing, r.repeats), (2, 1, 1));
        assert_eq!(r.from_request.max_ms, 30.0);
        assert_eq!(r.from_request.p50_ms, 5.0);
        assert_eq!(r.from_answer.max_ms, 20.0);
        assert_eq!(r.from_answer.p50_ms, 0.0);
        assert!((r.rate_reached - 3.0 / 0.22).abs() < 0.01);
        // Something missing fails the target, however fast the rest was.
        assert!(!r.target_met);
        let all = HashMap::from([("a".to_owned(), (ms(30), 1))]);
        let r = report(&args(), &writes[..1], 0, t0, ms(10), &all);
        assert!(r.target_met);
        assert!(render(&r).contains("MET"));
    }

    #[test]
    fn each_subscription_watches_its_own_patient() {
        let s = subscription("p7", "http://127.0.0.1:9/hook");
        assert_eq!(
            s["criteria"],
            "Observation?subject=Patient/p7&code=http://loinc.org|8867-4"
        );
        assert_eq!(s["channel"]["payload"], "application/fhir+json");
        let o = observation("p7", 3);
        assert_eq!(o["subject"]["reference"], "Patient/p7");
        assert_eq!(o["code"]["coding"][0]["code"], "8867-4");
    }
}
