//! The benchmark report: table on stdout and optional JSON file.

use std::fmt::Write as _;

use serde::Serialize;

use crate::cds::{CdsResult, TARGET_OWN_STORE_P99_MS, TARGET_PREFETCH_P99_MS};
use crate::queue::QueueResult;
use crate::stats::{PhaseStats, round2};
use crate::storage::StorageResult;
use crate::submit::{SubmitResult, TARGET_LAG_P99_MS, TARGET_PERCENT_OF_CREATE};

#[derive(Debug, Clone, Serialize)]
pub struct ReportArgs {
    pub url: String,
    pub connections: usize,
    pub duration_secs: u64,
    pub warmup_secs: u64,
    pub seed: u64,
    pub ops: Vec<String>,
    pub db_backend: Option<String>,
    pub http_baseline: bool,
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub name: String,
    pub percent: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RssReport {
    pub pid: u32,
    /// Highest VmRSS seen while sampling every 200 ms during the phases.
    pub peak_sampled_mib: f64,
    /// VmHWM (kernel-tracked peak) read at the end, if available.
    pub vm_hwm_mib: Option<f64>,
    /// max(peak_sampled, VmHWM).
    pub peak_mib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub timestamp: String,
    pub version: String,
    pub args: ReportArgs,
    pub phases: Vec<PhaseStats>,
    pub http_ceiling: Option<PhaseStats>,
    pub storage: Option<StorageResult>,
    /// The queue phase (`--ops queue`); absent from the JSON when it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueResult>,
    /// The submit phase (`--ops submit`); absent from the JSON when it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submit: Option<SubmitResult>,
    /// The cds phase (`--ops cds`); absent from the JSON when it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cds: Option<CdsResult>,
    pub ratios: Vec<Ratio>,
    pub rss: Option<RssReport>,
    pub notes: Vec<String>,
}

fn find<'a>(phases: &'a [PhaseStats], name: &str) -> Option<&'a PhaseStats> {
    phases.iter().find(|p| p.name == name)
}

/// `a / b` in percent of requests/s, when both sides have throughput.
fn ratio(name: &str, a: Option<&PhaseStats>, b: Option<&PhaseStats>) -> Option<Ratio> {
    let (a, b) = (a?, b?);
    if b.requests_per_sec <= 0.0 || a.requests == 0 {
        return None;
    }
    Some(Ratio {
        name: name.to_owned(),
        percent: round2(a.requests_per_sec / b.requests_per_sec * 100.0),
    })
}

impl Report {
    pub fn compute_ratios(&mut self) {
        let http = self.http_ceiling.as_ref();
        let ins = self.storage.as_ref().map(|s| &s.insert);
        let sel = self.storage.as_ref().map(|s| &s.select);
        let ph = &self.phases;
        let submit = self.submit.as_ref().map(|s| &s.http);
        self.ratios = [
            ratio("read / http ceiling", find(ph, "read"), http),
            ratio("read-xml / read", find(ph, "read-xml"), find(ph, "read")),
            ratio("create / storage insert", find(ph, "create"), ins),
            ratio("read / storage select", find(ph, "read"), sel),
            ratio("update / storage insert", find(ph, "update"), ins),
            ratio("submit / create", submit, find(ph, "create")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let create = find(&self.phases, "create");
        if let Some(s) = self.submit.as_mut() {
            s.compare_with_create(create);
        }
    }

    fn rows(&self) -> Vec<&PhaseStats> {
        let mut rows: Vec<&PhaseStats> = self.phases.iter().collect();
        rows.extend(self.http_ceiling.iter());
        if let Some(s) = &self.storage {
            rows.push(&s.insert);
            rows.push(&s.select);
        }
        rows.extend(self.submit.iter().map(|s| &s.http));
        if let Some(c) = &self.cds {
            rows.push(&c.with_prefetch);
            rows.push(&c.own_store);
        }
        rows
    }

    /// Human-readable table.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let a = &self.args;
        let _ = writeln!(
            s,
            "\nEmber bench {}  {}  connections={} duration={}s warmup={}s seed={}",
            self.version, a.url, a.connections, a.duration_secs, a.warmup_secs, a.seed
        );
        let rows = self.rows();
        if !rows.is_empty() {
            let _ = writeln!(
                s,
                "{:<16} {:>10} {:>11} {:>9} {:>9} {:>9} {:>10} {:>8}",
                "phase", "requests", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors"
            );
            let _ = writeln!(s, "{}", "-".repeat(88));
        }
        for p in rows {
            let _ = writeln!(
                s,
                "{:<16} {:>10} {:>11.2} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>8}{}",
                p.name,
                p.requests,
                p.requests_per_sec,
                p.p50_ms,
                p.p90_ms,
                p.p99_ms,
                p.max_ms,
                p.errors,
                if p.ended_early {
                    format!("  (ended early after {:.2}s)", p.elapsed_secs)
                } else {
                    String::new()
                }
            );
        }
        if let Some(q) = &self.queue {
            render_queue(&mut s, q);
        }
        if let Some(r) = &self.submit {
            render_submit(&mut s, r);
        }
        if let Some(c) = &self.cds {
            render_cds(&mut s, c);
        }
        let with_errors: Vec<&PhaseStats> = self
            .rows()
            .into_iter()
            .filter(|p| !p.error_samples.is_empty())
            .collect();
        if !with_errors.is_empty() {
            let _ = writeln!(s, "\nfirst errors:");
            for p in with_errors {
                for e in &p.error_samples {
                    let _ = writeln!(s, "  [{}] {e}", p.name);
                }
            }
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(s, "\nratios (requests/s):");
            for r in &self.ratios {
                let _ = writeln!(s, "  {:<26} {:>8.2} %", r.name, r.percent);
            }
        }
        if let Some(r) = &self.rss {
            let hwm = r
                .vm_hwm_mib
                .map(|h| format!(", VmHWM {h:.1} MiB"))
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "\nserver peak RSS (pid {}): {:.1} MiB (sampled peak {:.1} MiB{hwm})",
                r.pid, r.peak_mib, r.peak_sampled_mib
            );
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "\nnotes:");
            for n in &self.notes {
                let _ = writeln!(s, "  - {n}");
            }
        }
        s
    }
}

/// The queue section: jobs/s, latencies, workers.
fn render_queue(s: &mut String, q: &QueueResult) {
    let lat = |l: &crate::queue::Latency| {
        format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
            l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        )
    };
    let _ = writeln!(
        s,
        "\nqueue ({} jobs bench-{}-*, created in the {}s measured window):",
        q.kind, q.run, q.window_secs
    );
    let _ = writeln!(
        s,
        "  {:<20} {:.2}  ({} of {} done; finished in the window: {:.2}/s)",
        "jobs/s", q.jobs_per_sec, q.done, q.measured, q.finished_in_window_per_sec
    );
    let _ = writeln!(s, "  {:<20} {}", "claim-to-done ms", lat(&q.claim_to_done));
    let _ = writeln!(
        s,
        "  {:<20} {}",
        "enqueue-to-done ms",
        lat(&q.enqueue_to_done)
    );
    let _ = writeln!(
        s,
        "  {:<20} {} (distinct lease owners)",
        "workers", q.workers
    );
    let _ = writeln!(
        s,
        "  {:<20} min {}  max {}  (limit {})",
        "backlog (queued)", q.backlog_min, q.backlog_max, q.max_backlog
    );
    let _ = writeln!(
        s,
        "  {:<20} {}  (claimed twice {}, not done {}, of {} enqueued)",
        "errors",
        q.errors(),
        q.claimed_more_than_once,
        q.not_done,
        q.enqueued
    );
}

/// The submit section: submissions/s against create, triage lag, backlog drain.
fn render_submit(s: &mut String, r: &SubmitResult) {
    let h = &r.http;
    let _ = writeln!(
        s,
        "\nsubmit ($submit-measurement, patients bsub-{}-p0..p{}, {}s measured window):",
        r.run,
        r.patients.saturating_sub(1),
        h.elapsed_secs
    );
    let _ = writeln!(
        s,
        "  {:<20} {:.2}  p50 {:.2} ms  p99 {:.2} ms  errors {} of {}",
        "submissions/s", h.requests_per_sec, h.p50_ms, h.p99_ms, h.errors, h.requests
    );
    let of_create = match r.percent_of_create {
        Some(p) => format!("{p:.2} %"),
        None => "n/a (no create phase in this run)".into(),
    };
    let _ = writeln!(
        s,
        "  {:<20} {of_create}  (target >= {TARGET_PERCENT_OF_CREATE} %)",
        "of create req/s"
    );
    let _ = writeln!(
        s,
        "  {:<20} p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (target p99 < {TARGET_LAG_P99_MS}; \
         {} samples, every {}th, {} timed out, {} polls)",
        "triage lag ms",
        r.lag.p50_ms,
        r.lag.p90_ms,
        r.lag.p99_ms,
        r.lag.max_ms,
        r.lag_samples,
        r.sample_every,
        r.lag_timeouts,
        r.lag_polls
    );
    let drain = if r.drained {
        format!(
            "{:.2} s after the last answer ({} Tasks for {} submissions)",
            r.drain_secs, r.tasks, r.submitted
        )
    } else {
        format!(
            "not drained: {} Tasks for {} submissions after {:.2} s",
            r.tasks, r.submitted, r.drain_secs
        )
    };
    let _ = writeln!(s, "  {:<20} {drain}", "backlog drain");
    let d = &r.drawn;
    let tasks = match &r.priorities {
        Some(p) => format!(
            "Tasks routine {} urgent {} asap {}",
            p.routine, p.urgent, p.asap
        ),
        None => "Tasks not counted".into(),
    };
    let _ = writeln!(
        s,
        "  {:<20} drawn green {} yellow {} red {}; {tasks}",
        "triage", d.green, d.yellow, d.red
    );
}

/// Whether a p99 meets its target, and by how much it misses it.
fn against(p99_ms: f64, target: f64) -> String {
    if p99_ms < target {
        format!("target p99 < {target} ms: met")
    } else {
        format!(
            "target p99 < {target} ms: MISSED by {:.2} ms",
            p99_ms - target
        )
    }
}

/// The cds section: both modes against their targets, their ratio, what the calls
/// held and answered.
fn render_cds(s: &mut String, c: &CdsResult) {
    let _ = writeln!(
        s,
        "\ncds ({} patient-view, {} patients dataset-{}-pat-*, {}s measured window each):",
        c.service, c.patients, c.dataset_seed, c.with_prefetch.elapsed_secs
    );
    for (label, p, target) in [
        ("with prefetch", &c.with_prefetch, TARGET_PREFETCH_P99_MS),
        ("own store", &c.own_store, TARGET_OWN_STORE_P99_MS),
    ] {
        let _ = writeln!(
            s,
            "  {label:<20} {:.2} calls/s  p50 {:.2} ms  p99 {:.2} ms  ({})  errors {} of {}",
            p.requests_per_sec,
            p.p50_ms,
            p.p99_ms,
            against(p.p99_ms, target),
            p.errors,
            p.requests
        );
    }
    let ratio = c
        .p99_own_over_prefetch
        .map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}x"));
    let _ = writeln!(s, "  {:<20} {ratio}", "own / prefetch p99");
    let cards = |k: &crate::cds::CardCounts| {
        format!(
            "{:.2} (critical {} warning {} info {})",
            k.per_answer(),
            k.critical,
            k.warning,
            k.info
        )
    };
    let _ = writeln!(
        s,
        "  {:<20} with prefetch {}; own store {}; {} differ",
        "cards per call",
        cards(&c.with_prefetch_cards),
        cards(&c.own_store_cards),
        c.card_mismatches
    );
    let per = |n: u64| n as f64 / c.patients.max(1) as f64;
    let q = &c.prefetch_query;
    let _ = writeln!(
        s,
        "  {:<20} {:.2} open Tasks, {:.2} resources per patient ({} without); body {} bytes \
         mean; its search in setup p50 {:.2} p99 {:.2} ms",
        "prefetch",
        per(c.prefetch_tasks),
        per(c.prefetch_resources),
        c.patients_without_tasks,
        c.body_bytes_mean,
        q.p50_ms,
        q.p99_ms
    );
    let ready = if c.tasks_ready {
        format!("their Tasks there {:.2} s later", c.tasks_wait_secs)
    } else {
        format!("NOT all Tasks there after {:.2} s", c.tasks_wait_secs)
    };
    let d = &c.drawn;
    let _ = writeln!(
        s,
        "  {:<20} {} submitted (green {} yellow {} red {}, {} failed); {ready} ({} Tasks)",
        "setup", c.submitted, d.green, d.yellow, d.red, c.submit_errors, c.tasks
    );
    let _ = writeln!(s, "  {:<20} {}", "own store fhirServer", c.fhir_server);
}

/// RFC 3339 UTC timestamp of the current time (second precision).
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339_from_unix(secs)
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
pub fn rfc3339_from_unix(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_unix(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_unix(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn ratios_only_where_both_sides_exist() {
        let p = |name: &str, n: u64| {
            PhaseStats::from_latencies(
                name,
                vec![1000; n as usize],
                0,
                Duration::from_secs(1),
                false,
                vec![],
            )
        };
        let mut r = Report {
            timestamp: String::new(),
            version: String::new(),
            args: ReportArgs {
                url: "u".into(),
                connections: 1,
                duration_secs: 1,
                warmup_secs: 0,
                seed: 1,
                ops: vec![],
                db_backend: None,
                http_baseline: true,
                pid: None,
            },
            phases: vec![p("create", 50), p("read", 200)],
            http_ceiling: Some(p("http ceiling", 400)),
            storage: None,
            queue: None,
            submit: None,
            cds: None,
            ratios: vec![],
            rss: None,
            notes: vec![],
        };
        r.compute_ratios();
        assert_eq!(r.ratios.len(), 1);
        assert_eq!(r.ratios[0].name, "read / http ceiling");
        assert_eq!(r.ratios[0].percent, 50.0);
        assert!(r.render().contains("read / http ceiling"));
    }

    fn bare_report(phases: Vec<PhaseStats>) -> Report {
        Report {
            timestamp: String::new(),
            version: "0".into(),
            args: ReportArgs {
                url: "u".into(),
                connections: 1,
                duration_secs: 2,
                warmup_secs: 0,
                seed: 1,
                ops: vec!["queue".into()],
                db_backend: Some("postgresql".into()),
                http_baseline: false,
                pid: None,
            },
            phases,
            http_ceiling: None,
            storage: None,
            queue: None,
            submit: None,
            cds: None,
            ratios: vec![],
            rss: None,
            notes: vec![],
        }
    }

    #[test]
    fn queue_section_in_text_and_json() {
        use crate::queue::{JobRow, Produced, Window, summarize};
        // 4000 jobs over 2 s, claim-to-done 1..=4000 µs, run by two instances.
        let rows: Vec<JobRow> = (1..=4000i64)
            .map(|i| JobRow {
                state: "done".into(),
                attempts: 1,
                lease_owner: Some(format!("owner{}", i % 2)),
                created_at: i * 400,
                started_at: Some(i * 400 + 1000),
                finished_at: Some(i * 400 + 1000 + i),
            })
            .collect();
        let window = Window {
            from: 0,
            to: 2_000_000,
        };
        let produced = Produced {
            backlog_min: 5,
            backlog_max: 1800,
            drained: true,
        };
        let mut r = bare_report(vec![]);
        r.queue = Some(summarize("abc", &rows, window, produced, 2000));
        let text = r.render();
        assert!(!text.contains("req/s"), "no empty CRUD table:\n{text}");
        assert!(text.contains("queue (noop jobs bench-abc-*"), "{text}");
        assert!(
            text.contains("jobs/s               2000.00  (4000 of 4000 done"),
            "{text}"
        );
        assert!(
            text.contains("claim-to-done ms     p50 2.00  p90 3.60  p99 3.96  max 4.00"),
            "{text}"
        );
        assert!(text.contains("workers              2 (distinct"), "{text}");
        assert!(text.contains("errors               0"), "{text}");

        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&r).expect("json")).expect("parse");
        assert_eq!(json["queue"]["workers"], 2);
        assert_eq!(json["queue"]["done"], 4000);
        assert_eq!(
            json["queue"]["claim_to_done"]["p99_ms"].as_f64(),
            Some(3.96)
        );

        // Without the queue phase, neither the text nor the JSON mention it.
        let mut plain = bare_report(vec![PhaseStats::from_latencies(
            "read",
            vec![1000; 10],
            0,
            Duration::from_secs(1),
            false,
            vec![],
        )]);
        plain.queue = None;
        let text = plain.render();
        assert!(
            text.contains("req/s") && !text.contains("queue ("),
            "{text}"
        );
        let json = serde_json::to_value(&plain).expect("json");
        assert!(json.get("queue").is_none(), "{json}");
        assert!(json.get("storage").is_some(), "{json}");
    }

    #[test]
    fn submit_section_in_text_json_and_ratios() {
        use crate::submit::{ColourCounts, Drained, PriorityCounts, Probes, SubmitResult};
        let phase = |name: &str, n: usize, secs: u64| {
            PhaseStats::from_latencies(
                name,
                (1..=n as u64).map(|i| i * 50).collect(),
                0,
                Duration::from_secs(secs),
                false,
                vec![],
            )
        };
        // 1200 submissions in 2 s (600/s) against 1000 creates/s: 60 %.
        let mut http = phase("submit", 1200, 2);
        http.errors = 3;
        http.error_samples = vec!["POST /fhir/$submit-measurement -> 422: bad".into()];
        let probes = Probes {
            lags_us: (1..=120).map(|i| i * 1000).collect(),
            timeouts: 0,
            polls: 240,
        };
        let drawn = ColourCounts {
            green: 960,
            yellow: 180,
            red: 60,
        };
        let prio = PriorityCounts {
            routine: 960,
            urgent: 180,
            asap: 60,
        };
        let drained = Drained {
            drained: true,
            secs: 0.256,
            tasks: 1200,
            priorities: Some(prio),
        };
        let mut r = bare_report(vec![phase("create", 1000, 1)]);
        r.submit = Some(SubmitResult::new(
            "feed", 64, http, drawn, 10, &probes, drained,
        ));
        r.compute_ratios();
        assert_eq!(r.ratios.len(), 1);
        assert_eq!(r.ratios[0].name, "submit / create");
        assert_eq!(r.ratios[0].percent, 60.0);
        let text = r.render();
        for expected in [
            "submit ($submit-measurement, patients bsub-feed-p0..p63, 2s measured window):",
            "submissions/s        600.00  p50 30.00 ms  p99 59.40 ms  errors 3 of 1200",
            "of create req/s      60.00 %  (target >= 40 %)",
            "triage lag ms        p50 60.00  p90 108.00  p99 119.00  max 120.00  (target p99 < 1000; 120 samples, every 10th, 0 timed out, 240 polls)",
            "backlog drain        0.26 s after the last answer (1200 Tasks for 1200 submissions)",
            "triage               drawn green 960 yellow 180 red 60; Tasks routine 960 urgent 180 asap 60",
            "  [submit] POST /fhir/$submit-measurement -> 422: bad",
            "submit / create",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        // The table has the submit row.
        assert!(
            text.lines()
                .any(|l| l.starts_with("submit ") && l.contains("600.00")),
            "{text}"
        );

        let json = serde_json::to_value(&r).expect("json");
        let s = &json["submit"];
        assert_eq!(s["http"]["requests_per_sec"].as_f64(), Some(600.0));
        assert_eq!(s["http"]["p99_ms"].as_f64(), Some(59.4));
        assert_eq!(s["http"]["errors"], 3);
        assert_eq!(s["lag"]["p50_ms"].as_f64(), Some(60.0));
        assert_eq!(s["lag"]["p99_ms"].as_f64(), Some(119.0));
        assert_eq!(s["drain_secs"].as_f64(), Some(0.26));
        assert_eq!(s["drained"], true);
        assert_eq!(s["percent_of_create"].as_f64(), Some(60.0));
        assert_eq!(s["priorities"]["urgent"], 180);
        assert_eq!(s["drawn"]["red"], 60);

        // Without a create phase: no ratio, and the text says so.
        let mut alone = bare_report(vec![]);
        alone.submit = r.submit.clone();
        alone.compute_ratios();
        assert!(alone.ratios.is_empty());
        assert_eq!(
            alone.submit.as_ref().and_then(|s| s.percent_of_create),
            None
        );
        let text = alone.render();
        assert!(text.contains("n/a (no create phase in this run)"), "{text}");
        let json = serde_json::to_value(&alone).expect("json");
        assert!(json["submit"]["percent_of_create"].is_null(), "{json}");
        // And a report without the phase has no submit key.
        assert!(
            serde_json::to_value(bare_report(vec![]))
                .expect("json")
                .get("submit")
                .is_none()
        );
    }

    #[test]
    fn cds_section_in_text_and_json() {
        let mut r = bare_report(vec![]);
        r.cds = Some(crate::cds::tests::result(20_000, 61_000));
        r.compute_ratios();
        assert!(r.ratios.is_empty());
        let text = r.render();
        for expected in [
            "cds (telemonitoring-summary patient-view, 200 patients dataset-42-pat-*, 2s measured window each):",
            "with prefetch        50.00 calls/s  p50 20.00 ms  p99 20.00 ms  (target p99 < 25 ms: met)  errors 0 of 100",
            "own store            50.00 calls/s  p50 61.00 ms  p99 61.00 ms  (target p99 < 50 ms: MISSED by 11.00 ms)  errors 0 of 100",
            "own / prefetch p99   3.05x",
            "cards per call       with prefetch 1.30 (critical 20 warning 50 info 60); own store 1.30 (critical 20 warning 50 info 60); 0 differ",
            "prefetch             4.00 open Tasks, 12.00 resources per patient (0 without); body 12345 bytes mean; its search in setup p50 4.00 p99 6.00 ms",
            "setup                800 submitted (green 640 yellow 120 red 40, 0 failed); their Tasks there 0.50 s later (800 Tasks)",
            "own store fhirServer http://127.0.0.1:18097/fhir",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        // Both modes are rows of the table.
        for name in ["cds prefetch ", "cds own store "] {
            assert!(
                text.lines().any(|l| l.starts_with(name)),
                "{name} in\n{text}"
            );
        }
        let json = serde_json::to_value(&r).expect("json");
        let c = &json["cds"];
        assert_eq!(c["with_prefetch"]["p99_ms"].as_f64(), Some(20.0));
        assert_eq!(c["own_store"]["p99_ms"].as_f64(), Some(61.0));
        assert_eq!(c["p99_own_over_prefetch"].as_f64(), Some(3.05));
        assert_eq!(c["drawn"]["red"], 40);
        assert_eq!(c["own_store_cards"]["critical"], 20);
        assert!(
            serde_json::to_value(bare_report(vec![]))
                .expect("json")
                .get("cds")
                .is_none()
        );
    }
}
