//! The queue phase: enqueue plus run of `noop` jobs by whatever Ember instances serve
//! the PostgreSQL database `--db`.
//!
//! A producer inserts this run's jobs (`bench-<run>-<n>`) straight into `jobs` in
//! batches, each followed by a `NOTIFY` on the instances' bus channel, keeping at most
//! [`QueueOpts::max_backlog`] of them queued so the phase measures steady-state
//! throughput rather than a pile. After the warm-up plus the measured window it stops,
//! waits for the instances to finish every job of the run, reads the run's jobs back
//! and removes them. Only jobs created in the measured window count. The timestamps are
//! the bench's clock (`created_at`) and the instances' (`started_at`, `finished_at`):
//! run the bench on the same machine as the instances, or on one with a synced clock.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;

use crate::rng::mix64;
use crate::stats::{percentile, round2};
use crate::storage::pg_connect;

/// The job kind the phase enqueues: Ember's handler for it does nothing.
pub const JOB_KIND: &str = "noop";

/// Settings of the queue phase.
#[derive(Debug, Clone)]
pub struct QueueOpts {
    /// Jobs enqueued before the measured window (not counted).
    pub warmup: Duration,
    /// The measured window: jobs created in it count.
    pub duration: Duration,
    /// Jobs per `INSERT` (each followed by one `NOTIFY`).
    pub batch: u32,
    /// The producer waits while this many of the run's jobs are queued.
    pub max_backlog: i64,
    /// How long the producer sleeps when the backlog is full.
    pub pause: Duration,
    /// How long to wait, after the producer stops, for the last jobs to be done.
    pub drain_timeout: Duration,
}

impl QueueOpts {
    pub fn new(warmup: Duration, duration: Duration) -> Self {
        Self {
            warmup,
            duration,
            batch: 200,
            max_backlog: 2000,
            pause: Duration::from_millis(10),
            drain_timeout: Duration::from_secs(60),
        }
    }
}

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// From microseconds, any order.
    pub fn from_us(mut us: Vec<u64>) -> Self {
        us.sort_unstable();
        let ms = |v: u64| round2(v as f64 / 1000.0);
        Self {
            p50_ms: ms(percentile(&us, 50.0)),
            p90_ms: ms(percentile(&us, 90.0)),
            p99_ms: ms(percentile(&us, 99.0)),
            max_ms: ms(us.last().copied().unwrap_or(0)),
        }
    }
}

/// Result of the queue phase.
#[derive(Debug, Clone, Serialize)]
pub struct QueueResult {
    /// The run's id: its jobs were `bench-<run>-<n>`.
    pub run: String,
    pub kind: String,
    pub window_secs: f64,
    /// Jobs of the run, warm-up included.
    pub enqueued: u64,
    /// Jobs created in the measured window.
    pub measured: u64,
    /// Of those, the ones done.
    pub done: u64,
    /// `done / window_secs`.
    pub jobs_per_sec: f64,
    /// Jobs of the run (any creation time) finished in the window, per second.
    pub finished_in_window_per_sec: f64,
    /// `finished_at - started_at` (first claim to done) of the measured jobs.
    pub claim_to_done: Latency,
    /// `finished_at - created_at` of the measured jobs.
    pub enqueue_to_done: Latency,
    /// Distinct `lease_owner`s (one per instance) that ran the measured jobs.
    pub workers: u64,
    /// Jobs of the run claimed more than once (`attempts > 1`); should be 0.
    pub claimed_more_than_once: u64,
    /// Jobs of the run not done when the phase gave up waiting; should be 0.
    pub not_done: u64,
    /// The fewest and most of the run's jobs seen queued during the window.
    pub backlog_min: i64,
    pub backlog_max: i64,
    pub max_backlog: i64,
    /// Whether every job of the run was done before the drain timeout.
    pub drained: bool,
}

impl QueueResult {
    /// Jobs that went wrong: claimed twice, or never done.
    pub fn errors(&self) -> u64 {
        self.claimed_more_than_once + self.not_done
    }

    /// Remarks for the report's notes.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.not_done > 0 {
            notes.push(format!(
                "queue: {} of {} jobs were not done when the phase stopped waiting",
                self.not_done, self.enqueued
            ));
        }
        if self.claimed_more_than_once > 0 {
            notes.push(format!(
                "queue: {} jobs were claimed more than once (attempts > 1)",
                self.claimed_more_than_once
            ));
        }
        if self.measured > 0 && self.backlog_min == 0 {
            notes.push(
                "queue: the backlog ran empty during the window, so the workers waited for \
                 the producer at times; jobs/s may understate the queue"
                    .into(),
            );
        }
        notes
    }
}

/// One job of the run as read back.
#[derive(Debug, Clone)]
pub struct JobRow {
    pub state: String,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// The measured window, `[from, to)` in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    fn contains(self, t: i64) -> bool {
        self.from <= t && t < self.to
    }

    fn secs(self) -> f64 {
        (self.to - self.from).max(0) as f64 / 1e6
    }
}

/// What the producer saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produced {
    pub backlog_min: i64,
    pub backlog_max: i64,
    pub drained: bool,
}

/// Builds the result from the run's jobs.
pub fn summarize(
    run: &str,
    rows: &[JobRow],
    window: Window,
    produced: Produced,
    max_backlog: i64,
) -> QueueResult {
    let mut claim_to_done = Vec::new();
    let mut enqueue_to_done = Vec::new();
    let mut owners = HashSet::new();
    let (mut measured, mut finished_in_window) = (0u64, 0u64);
    for r in rows {
        let done_at = if r.state == "done" {
            r.finished_at
        } else {
            None
        };
        if done_at.is_some_and(|t| window.contains(t)) {
            finished_in_window += 1;
        }
        if !window.contains(r.created_at) {
            continue;
        }
        measured += 1;
        if let Some(finished) = done_at {
            let started = r.started_at.unwrap_or(finished);
            claim_to_done.push(u64::try_from(finished - started).unwrap_or(0));
            enqueue_to_done.push(u64::try_from(finished - r.created_at).unwrap_or(0));
            if let Some(owner) = &r.lease_owner {
                owners.insert(owner.as_str());
            }
        }
    }
    let done = claim_to_done.len() as u64;
    let secs = window.secs();
    let per_sec = |n: u64| {
        if secs > 0.0 {
            round2(n as f64 / secs)
        } else {
            0.0
        }
    };
    QueueResult {
        run: run.to_owned(),
        kind: JOB_KIND.to_owned(),
        window_secs: round2(secs),
        enqueued: rows.len() as u64,
        measured,
        done,
        jobs_per_sec: per_sec(done),
        finished_in_window_per_sec: per_sec(finished_in_window),
        claim_to_done: Latency::from_us(claim_to_done),
        enqueue_to_done: Latency::from_us(enqueue_to_done),
        workers: owners.len() as u64,
        claimed_more_than_once: rows.iter().filter(|r| r.attempts > 1).count() as u64,
        not_done: rows.iter().filter(|r| r.state != "done").count() as u64,
        backlog_min: produced.backlog_min,
        backlog_max: produced.backlog_max,
        max_backlog,
        drained: produced.drained,
    }
}

/// Microseconds since the epoch, like Ember's clock.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn run_id() -> String {
    let r = mix64(now_micros() as u64 ^ (u64::from(std::process::id()) << 40)) as u32;
    format!("{r:08x}")
}

/// Checks that `--db` has Ember's `jobs` table in its current schema; the schema.
pub async fn preflight(cfg: &tokio_postgres::Config) -> Result<String> {
    let client = pg_connect(cfg).await?;
    check_jobs_table(&client).await
}

async fn check_jobs_table(client: &tokio_postgres::Client) -> Result<String> {
    let row = client
        .query_one(
            "SELECT current_schema()::text, to_regclass('jobs') IS NOT NULL",
            &[],
        )
        .await
        .context("checking for the jobs table")?;
    let Some(schema) = row.get::<_, Option<String>>(0) else {
        bail!("--db has no current schema (check its search_path)");
    };
    if !row.get::<_, bool>(1) {
        bail!(
            "the queue phase needs --db to be the database the Ember instances use, migrated \
             (`ember migrate`): there is no `jobs` table in its schema {schema:?}"
        );
    }
    Ok(schema)
}

/// Runs the queue phase against the instances serving `cfg`'s database.
pub async fn run(cfg: &tokio_postgres::Config, opts: &QueueOpts) -> Result<QueueResult> {
    let client = pg_connect(cfg).await?;
    let schema = check_jobs_table(&client).await?;
    let run = run_id();
    let pattern = format!("bench-{run}-%");
    eprintln!(
        "queue: {:?} warmup + {:?} measured, noop jobs bench-{run}-* in {schema}.jobs, \
         batches of {}, at most {} queued...",
        opts.warmup, opts.duration, opts.batch, opts.max_backlog
    );
    let result = tokio::select! {
        r = produce_and_collect(&client, &run, opts) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    // Remove the run's jobs, also after a failure.
    let delete = "DELETE FROM jobs WHERE id LIKE $1";
    let removed = match client.execute(delete, &[&pattern]).await {
        Ok(n) => Ok(n),
        Err(_) => match pg_connect(cfg).await {
            Ok(c) => c
                .execute(delete, &[&pattern])
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = removed {
        eprintln!("warning: could not remove the jobs bench-{run}-*: {e:#}");
    }
    result
}

async fn produce_and_collect(
    client: &tokio_postgres::Client,
    run: &str,
    opts: &QueueOpts,
) -> Result<QueueResult> {
    let prefix = format!("bench-{run}-");
    let pattern = format!("{prefix}%");
    let insert = client
        .prepare(
            "INSERT INTO jobs (id, kind, payload, state, attempts, due, created_at)
             SELECT $1::text || g, $2::text, '{}', 'queued', 0, $3::bigint, $3::bigint
             FROM generate_series($4::bigint, $5::bigint) AS g",
        )
        .await
        .context("preparing the job INSERT")?;
    let notify = client
        .prepare("SELECT pg_notify('ember_bus_' || current_schema(), 'jobs')")
        .await
        .context("preparing the NOTIFY")?;
    let queued = client
        .prepare("SELECT count(*) FROM jobs WHERE state = 'queued' AND id LIKE $1")
        .await
        .context("preparing the backlog count")?;
    let unfinished = client
        .prepare("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running') AND id LIKE $1")
        .await
        .context("preparing the unfinished count")?;

    // Produce for the warm-up plus the window, keeping the backlog bounded.
    let start = now_micros();
    let warmup = i64::try_from(opts.warmup.as_micros()).unwrap_or(i64::MAX);
    let duration = i64::try_from(opts.duration.as_micros()).unwrap_or(i64::MAX);
    let window = Window {
        from: start.saturating_add(warmup),
        to: start.saturating_add(warmup).saturating_add(duration),
    };
    let batch = i64::from(opts.batch.max(1));
    let (mut backlog_min, mut backlog_max) = (i64::MAX, 0i64);
    let mut next = 0i64;
    loop {
        let now = now_micros();
        if now >= window.to {
            break;
        }
        let backlog: i64 = client
            .query_one(&queued, &[&pattern])
            .await
            .context("counting the backlog")?
            .get(0);
        if window.contains(now) {
            backlog_min = backlog_min.min(backlog);
            backlog_max = backlog_max.max(backlog);
        }
        if backlog + batch > opts.max_backlog.max(batch) {
            tokio::time::sleep(opts.pause).await;
            continue;
        }
        let stamp = now_micros();
        client
            .execute(
                &insert,
                &[&prefix, &JOB_KIND, &stamp, &next, &(next + batch - 1)],
            )
            .await
            .context("inserting jobs")?;
        next += batch;
        client
            .query_one(&notify, &[])
            .await
            .context("notifying the instances")?;
    }
    if backlog_min == i64::MAX {
        backlog_min = 0;
    }

    // Wait for the instances to finish the run.
    let left: i64 = client.query_one(&unfinished, &[&pattern]).await?.get(0);
    let untouched: i64 = client.query_one(&queued, &[&pattern]).await?.get(0);
    if untouched == next && next > 0 {
        bail!(
            "no Ember instance claimed any of the {next} noop jobs in {:.0}s: are instances \
             running on this database (their EMBER_DATABASE_URL must be --db)?",
            (opts.warmup + opts.duration).as_secs_f64()
        );
    }
    eprintln!("queue: producer stopped after {next} jobs; waiting for {left} to finish...");
    let deadline = Instant::now() + opts.drain_timeout;
    let drained = loop {
        let left: i64 = client
            .query_one(&unfinished, &[&pattern])
            .await
            .context("counting unfinished jobs")?
            .get(0);
        if left == 0 {
            break true;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "queue: {left} jobs still unfinished after {}s; giving up",
                opts.drain_timeout.as_secs()
            );
            break false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let rows = client
        .query(
            "SELECT state, attempts, lease_owner, created_at, started_at, finished_at
             FROM jobs WHERE id LIKE $1",
            &[&pattern],
        )
        .await
        .context("reading the run's jobs")?;
    let rows: Vec<JobRow> = rows
        .iter()
        .map(|r| JobRow {
            state: r.get(0),
            attempts: r.get(1),
            lease_owner: r.get(2),
            created_at: r.get(3),
            started_at: r.get(4),
            finished_at: r.get(5),
        })
        .collect();
    let produced = Produced {
        backlog_min,
        backlog_max,
        drained,
    };
    Ok(summarize(run, &rows, window, produced, opts.max_backlog))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str, owner: &str, created: i64, started: i64, finished: i64) -> JobRow {
        JobRow {
            state: state.into(),
            attempts: 1,
            lease_owner: Some(owner.into()),
            created_at: created,
            started_at: Some(started),
            finished_at: (state == "done").then_some(finished),
        }
    }

    #[test]
    fn summary_counts_only_the_window() {
        let window = Window {
            from: 1_000_000,
            to: 3_000_000,
        };
        let mut rows = vec![
            // Warm-up job: not measured, but it finished in the window.
            row("done", "a", 500_000, 900_000, 1_100_000),
        ];
        // 100 measured jobs: claim-to-done 1..=100 ms, enqueue-to-done 2x that.
        for i in 1..=100i64 {
            let created = 1_000_000 + i * 10_000;
            let started = created + i * 1000;
            let owner = if i % 2 == 0 { "a" } else { "b" };
            rows.push(row("done", owner, created, started, started + i * 1000));
        }
        // A job created at the end of the window is not measured.
        rows.push(row("done", "c", 3_000_000, 3_000_100, 3_000_200));
        let produced = Produced {
            backlog_min: 10,
            backlog_max: 2000,
            drained: true,
        };
        let r = summarize("r1", &rows, window, produced, 2000);
        assert_eq!(r.enqueued, 102);
        assert_eq!(r.measured, 100);
        assert_eq!(r.done, 100);
        assert_eq!(r.window_secs, 2.0);
        assert_eq!(r.jobs_per_sec, 50.0);
        // The warm-up job and the 100 measured ones finished in the window.
        assert_eq!(r.finished_in_window_per_sec, 50.5);
        assert_eq!(
            r.claim_to_done,
            Latency {
                p50_ms: 50.0,
                p90_ms: 90.0,
                p99_ms: 99.0,
                max_ms: 100.0
            }
        );
        assert_eq!(r.enqueue_to_done.p50_ms, 100.0);
        assert_eq!(r.enqueue_to_done.max_ms, 200.0);
        assert_eq!(r.workers, 2);
        assert_eq!(r.errors(), 0);
        assert!(r.notes().is_empty(), "{:?}", r.notes());
    }

    #[test]
    fn summary_reports_reclaimed_and_unfinished_jobs() {
        let window = Window {
            from: 0,
            to: 1_000_000,
        };
        let mut twice = row("done", "a", 10, 20, 30);
        twice.attempts = 2;
        let rows = vec![
            twice,
            row("running", "a", 40, 50, 0),
            JobRow {
                state: "queued".into(),
                attempts: 0,
                lease_owner: None,
                created_at: 60,
                started_at: None,
                finished_at: None,
            },
        ];
        let produced = Produced {
            backlog_min: 0,
            backlog_max: 1,
            drained: false,
        };
        let r = summarize("r2", &rows, window, produced, 2000);
        assert_eq!((r.measured, r.done), (3, 1));
        assert_eq!(r.claimed_more_than_once, 1);
        assert_eq!(r.not_done, 2);
        assert_eq!(r.errors(), 3);
        assert_eq!(r.workers, 1);
        assert_eq!(r.claim_to_done.max_ms, 0.01);
        let notes = r.notes().join("\n");
        assert!(notes.contains("2 of 3 jobs were not done"), "{notes}");
        assert!(
            notes.contains("1 jobs were claimed more than once"),
            "{notes}"
        );
        assert!(notes.contains("backlog ran empty"), "{notes}");
    }

    /// Needs PostgreSQL: `cargo xtask test` provides EMBER_TEST_DATABASE_URL. Runs the
    /// phase against a scratch schema with a `jobs` table and a fake consumer that
    /// wakes on the bus NOTIFY (or every second, like Ember) and marks jobs done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_queue_phase_with_fake_consumer() {
        use crate::storage::Db;
        let url = std::env::var("EMBER_TEST_DATABASE_URL").expect(
            "EMBER_TEST_DATABASE_URL must name a PostgreSQL database (run `cargo xtask test`)",
        );
        let Ok(Db::Postgres(base)) = Db::parse(&url) else {
            panic!("EMBER_TEST_DATABASE_URL must be a postgres:// URL");
        };
        let admin = pg_connect(&base).await.expect("connect");
        let schema = format!("ember_queue_test_{}", run_id());
        admin
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .expect("schema");
        let mut cfg = (*base).clone();
        cfg.options(format!("-c search_path={schema}"));
        // In a task, so that a failed assertion still drops the schema.
        let outcome = tokio::spawn(exercise(cfg, schema.clone())).await;
        admin
            .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .expect("drop schema");
        if let Err(e) = outcome {
            std::panic::resume_unwind(e.into_panic());
        }
    }

    async fn exercise(cfg: tokio_postgres::Config, schema: String) {
        let opts = QueueOpts {
            warmup: Duration::from_millis(300),
            duration: Duration::from_secs(1),
            batch: 50,
            max_backlog: 200,
            pause: Duration::from_millis(5),
            drain_timeout: Duration::from_secs(10),
        };
        // No jobs table yet: a clear error.
        let err = run(&cfg, &opts).await.expect_err("no jobs table");
        assert!(format!("{err:#}").contains("no `jobs` table"), "{err:#}");

        let client = pg_connect(&cfg).await.expect("connect");
        client
            .batch_execute(
                "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL,
                        payload TEXT NOT NULL, state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0, due BIGINT NOT NULL,
                        lease_owner TEXT, progress TEXT, last_error TEXT,
                        idempotency_key TEXT UNIQUE, trace TEXT, created_at BIGINT NOT NULL,
                        started_at BIGINT, finished_at BIGINT);
                     CREATE INDEX jobs_due ON jobs (due) WHERE state IN ('queued', 'running');
                     CREATE INDEX jobs_state ON jobs (state, created_at);",
            )
            .await
            .expect("jobs table");

        // Nobody runs the jobs: the phase says so, and leaves no job behind.
        let quick = QueueOpts {
            warmup: Duration::ZERO,
            duration: Duration::from_millis(500),
            ..opts.clone()
        };
        let err = run(&cfg, &quick).await.expect_err("no consumer");
        assert!(
            format!("{err:#}").contains("no Ember instance claimed"),
            "{err:#}"
        );
        let left: i64 = client
            .query_one("SELECT count(*) FROM jobs", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(left, 0, "jobs left behind");

        // The fake consumer.
        let (listener, mut conn) = cfg.connect(tokio_postgres::NoTls).await.expect("listen");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                if let tokio_postgres::AsyncMessage::Notification(n) = m {
                    let _ = tx.send(n.payload().to_owned());
                }
            }
        });
        listener
            .batch_execute(&format!("LISTEN ember_bus_{schema}"))
            .await
            .expect("LISTEN");
        let (stop_tx, mut stop) = tokio::sync::watch::channel(false);
        let worker = pg_connect(&cfg).await.expect("connect");
        let consumer = tokio::spawn(async move {
            let mut wakes = 0u64;
            loop {
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(p) if p == "jobs" => wakes += 1,
                        Some(_) => {}
                        None => break,
                    },
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => break,
                }
                let claimed: Vec<String> = worker
                    .query(
                        "UPDATE jobs SET state = 'running', lease_owner = 'fake',
                                attempts = attempts + 1, started_at = COALESCE(started_at, $1)
                             WHERE id IN (SELECT id FROM jobs WHERE state = 'queued'
                                ORDER BY due LIMIT 500 FOR UPDATE SKIP LOCKED)
                             RETURNING id",
                        &[&now_micros()],
                    )
                    .await
                    .expect("claim")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                worker
                    .execute(
                        "UPDATE jobs SET state = 'done', finished_at = $1 WHERE id = ANY($2)",
                        &[&now_micros(), &claimed],
                    )
                    .await
                    .expect("finish");
            }
            wakes
        });

        let r = run(&cfg, &opts).await.expect("queue phase");
        let _ = stop_tx.send(true);
        let wakes = consumer.await.expect("consumer");
        assert!(wakes > 0, "the producer never sent NOTIFY");
        assert!(r.measured > 0 && r.enqueued > r.measured, "{r:?}");
        assert_eq!(r.done, r.measured, "{r:?}");
        assert!(r.jobs_per_sec > 0.0, "{r:?}");
        assert_eq!(r.workers, 1, "{r:?}");
        assert_eq!(r.errors(), 0, "{r:?}");
        assert!(r.drained, "{r:?}");
        assert!(r.backlog_max <= 200, "backlog not bounded: {r:?}");
        assert!(r.claim_to_done.p50_ms <= r.claim_to_done.max_ms, "{r:?}");
        assert!(r.enqueue_to_done.p99_ms >= r.claim_to_done.p50_ms, "{r:?}");
        let left: i64 = client
            .query_one("SELECT count(*) FROM jobs", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(left, 0, "the run's jobs were not removed");
    }

    #[test]
    fn empty_run_has_zero_rates() {
        let window = Window { from: 5, to: 5 };
        let produced = Produced {
            backlog_min: 0,
            backlog_max: 0,
            drained: true,
        };
        let r = summarize("r3", &[], window, produced, 2000);
        assert_eq!((r.jobs_per_sec, r.done, r.workers), (0.0, 0, 0));
        assert_eq!(r.claim_to_done, Latency::default());
    }
}
