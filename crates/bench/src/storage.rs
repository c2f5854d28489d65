//! Storage-ceiling baseline: the database alone doing the equivalent
//! insert / select-by-primary-key work on the same JSON payloads.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::task::JoinSet;

use crate::phase::{Timing, WorkerOut, summarize};
use crate::rng::{Rng, mix64};
use crate::stats::{ErrorSamples, PhaseStats};
use crate::workload::{Refs, ResourceType, generate_string};

/// Which database the baseline talks to.
#[derive(Debug, Clone)]
pub enum Db {
    Postgres(Box<tokio_postgres::Config>),
    /// The server's own SQLite file; the baseline uses `<path>.bench-baseline`.
    Sqlite(PathBuf),
}

impl Db {
    pub fn parse(url: &str) -> Result<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let cfg: tokio_postgres::Config =
                url.parse().context("--db: invalid PostgreSQL URL")?;
            return Ok(Db::Postgres(Box::new(cfg)));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let rest = rest.strip_prefix("//").unwrap_or(rest);
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() {
                bail!("--db {url:?}: missing SQLite file path (sqlite://path/to/file.db)");
            }
            return Ok(Db::Sqlite(PathBuf::from(path)));
        }
        bail!("--db {url:?}: expected postgres://, postgresql:// or sqlite:// URL")
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Postgres(_) => "postgresql",
            Db::Sqlite(_) => "sqlite",
        }
    }
}

/// Settings shared by both storage phases.
#[derive(Debug, Clone)]
pub struct StorageOpts {
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub seed: u64,
    pub refs: Arc<Refs>,
}

/// Result of the storage baseline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StorageResult {
    pub backend: String,
    pub insert: PhaseStats,
    pub select: PhaseStats,
}

/// Same payload stream as the HTTP create phase of worker `idx`.
struct Payloads {
    rng: Rng,
    cursor: usize,
    refs: Arc<Refs>,
}

impl Payloads {
    fn new(opts: &StorageOpts, idx: usize) -> Self {
        // Salt 1 = the create phase's salt, so payloads match byte for byte.
        Self {
            rng: Rng::for_worker(opts.seed, 1, idx),
            cursor: idx,
            refs: opts.refs.clone(),
        }
    }

    fn next_body(&mut self) -> String {
        let rt = ResourceType::ALL[self.cursor % ResourceType::ALL.len()];
        self.cursor += 1;
        generate_string(rt, &mut self.rng, &self.refs, None)
    }
}

fn row_id(worker: usize, n: u64) -> String {
    format!("w{worker}-{n}")
}

/// Picks a random previously inserted id.
fn random_id(rng: &mut Rng, counts: &[(usize, u64)]) -> String {
    let (w, count) = counts[rng.index(counts.len())];
    row_id(w, rng.below(count))
}

fn nonempty_counts(counts: &[u64]) -> Result<Arc<Vec<(usize, u64)>>> {
    let v: Vec<(usize, u64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| **c > 0)
        .map(|(w, c)| (w, *c))
        .collect();
    if v.is_empty() {
        bail!("storage insert phase inserted no rows; cannot run the select phase");
    }
    Ok(Arc::new(v))
}

pub async fn run(db: &Db, opts: &StorageOpts) -> Result<StorageResult> {
    match db {
        Db::Postgres(cfg) => run_postgres(cfg, opts).await,
        Db::Sqlite(path) => run_sqlite(path, opts).await,
    }
}

// ---------------------------------------------------------------- PostgreSQL

pub(crate) async fn pg_connect(cfg: &tokio_postgres::Config) -> Result<tokio_postgres::Client> {
    let (client, conn) = cfg
        .connect(tokio_postgres::NoTls)
        .await
        .context("connecting to PostgreSQL (--db)")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

fn scratch_schema() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let pid = std::process::id();
    let r = mix64(nanos ^ (u64::from(pid) << 32)) as u32;
    format!("ember_bench_{pid}_{r:08x}")
}

async fn run_postgres(cfg: &tokio_postgres::Config, opts: &StorageOpts) -> Result<StorageResult> {
    let admin = pg_connect(cfg).await?;
    let schema = scratch_schema();
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA {schema}; CREATE TABLE {schema}.t (id text PRIMARY KEY, body text NOT NULL)"
        ))
        .await
        .with_context(|| format!("creating scratch schema {schema}"))?;
    let result = tokio::select! {
        r = pg_phases(cfg, &schema, opts) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    let drop_sql = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
    let dropped = match admin.batch_execute(&drop_sql).await {
        Ok(()) => Ok(()),
        Err(_) => match pg_connect(cfg).await {
            Ok(c) => c
                .batch_execute(&drop_sql)
                .await
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        },
    };
    if let Err(e) = dropped {
        eprintln!("warning: could not drop scratch schema {schema}: {e:#}");
    }
    result
}

struct PgWorker {
    client: tokio_postgres::Client,
    insert: tokio_postgres::Statement,
    select: tokio_postgres::Statement,
}

async fn pg_phases(
    cfg: &tokio_postgres::Config,
    schema: &str,
    opts: &StorageOpts,
) -> Result<StorageResult> {
    let mut set = JoinSet::new();
    for _ in 0..opts.connections {
        let cfg = cfg.clone();
        let schema = schema.to_owned();
        set.spawn(async move {
            let client = pg_connect(&cfg).await?;
            let insert = client
                .prepare(&format!(
                    "INSERT INTO {schema}.t (id, body) VALUES ($1, $2)"
                ))
                .await
                .context("preparing INSERT")?;
            let select = client
                .prepare(&format!("SELECT body FROM {schema}.t WHERE id = $1"))
                .await
                .context("preparing SELECT")?;
            Ok::<_, anyhow::Error>(PgWorker {
                client,
                insert,
                select,
            })
        });
    }
    let mut workers = Vec::with_capacity(opts.connections);
    while let Some(r) = set.join_next().await {
        workers.push(Arc::new(r.context("PostgreSQL connect task crashed")??));
    }

    // Insert phase.
    eprintln!(
        "storage insert ({} postgresql connections)...",
        opts.connections
    );
    let samples = Arc::new(ErrorSamples::default());
    let timing = Timing::starting_now(opts.warmup, opts.duration);
    let mut set = JoinSet::new();
    for (idx, w) in workers.iter().enumerate() {
        let w = w.clone();
        let samples = samples.clone();
        let mut payloads = Payloads::new(opts, idx);
        set.spawn(async move {
            let mut out = WorkerOut::new();
            let mut n = 0u64;
            while Instant::now() < timing.end {
                let id = row_id(idx, n);
                let body = payloads.next_body();
                let started = Instant::now();
                let res = w.client.execute(&w.insert, &[&id, &body]).await;
                let ok = match res {
                    Ok(_) => {
                        n += 1;
                        true
                    }
                    Err(e) => {
                        samples.push(|| format!("INSERT: {e}"));
                        false
                    }
                };
                out.record(&timing, started, ok);
                if w.client.is_closed() {
                    out.ended_early = true;
                    break;
                }
            }
            out.finished_at = Instant::now();
            (idx, n, out)
        });
    }
    let mut counts = vec![0u64; workers.len()];
    let mut outs = Vec::new();
    while let Some(r) = set.join_next().await {
        let (idx, n, out) = r.context("storage insert worker crashed")?;
        counts[idx] = n;
        outs.push(out);
    }
    let (insert, _) = summarize("storage insert", &timing, outs, samples.take());

    // Select phase.
    eprintln!("storage select...");
    let counts = nonempty_counts(&counts)?;
    let timing = Timing::starting_now(opts.warmup, opts.duration);
    let mut set = JoinSet::new();
    for (idx, w) in workers.iter().enumerate() {
        let w = w.clone();
        let samples = samples.clone();
        let counts = counts.clone();
        let mut rng = Rng::for_worker(opts.seed, 12, idx);
        set.spawn(async move {
            let mut out = WorkerOut::new();
            while Instant::now() < timing.end {
                let id = random_id(&mut rng, &counts);
                let started = Instant::now();
                let ok = match w.client.query_opt(&w.select, &[&id]).await {
                    Ok(Some(row)) => row.try_get::<_, String>(0).is_ok(),
                    Ok(None) => {
                        samples.push(|| format!("SELECT {id}: row missing"));
                        false
                    }
                    Err(e) => {
                        samples.push(|| format!("SELECT: {e}"));
                        false
                    }
                };
                out.record(&timing, started, ok);
                if w.client.is_closed() {
                    out.ended_early = true;
                    break;
                }
            }
            out.finished_at = Instant::now();
            out
        });
    }
    let mut outs = Vec::new();
    while let Some(r) = set.join_next().await {
        outs.push(r.context("storage select worker crashed")?);
    }
    let (select, _) = summarize("storage select", &timing, outs, samples.take());
    Ok(StorageResult {
        backend: "postgresql".into(),
        insert,
        select,
    })
}

// ------------------------------------------------------------------- SQLite

/// `<path>.bench-baseline`.
pub fn sqlite_scratch_path(server_db: &Path) -> PathBuf {
    let mut s = server_db.as_os_str().to_owned();
    s.push(".bench-baseline");
    PathBuf::from(s)
}

fn remove_sqlite_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn sqlite_open(path: &Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)
        .with_context(|| format!("opening SQLite file {}", path.display()))?;
    conn.busy_timeout(Duration::from_millis(5000))
        .context("setting busy_timeout")?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .context("setting journal_mode=WAL")?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("SQLite refused journal_mode=WAL (got {mode})");
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL")
        .context("setting synchronous=NORMAL")?;
    Ok(conn)
}

async fn run_sqlite(server_db: &Path, opts: &StorageOpts) -> Result<StorageResult> {
    let scratch = sqlite_scratch_path(server_db);
    remove_sqlite_files(&scratch);
    let result = sqlite_phases(scratch.clone(), opts).await;
    remove_sqlite_files(&scratch);
    result
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow!("SQLite worker thread crashed: {e}"))
}

async fn sqlite_phases(path: PathBuf, opts: &StorageOpts) -> Result<StorageResult> {
    let n = opts.connections;
    let conns = blocking(move || -> Result<Vec<rusqlite::Connection>> {
        let first = sqlite_open(&path)?;
        first
            .execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
            .context("creating the baseline table")?;
        let mut conns = Vec::with_capacity(n);
        conns.push(first);
        for _ in 1..n {
            conns.push(sqlite_open(&path)?);
        }
        Ok(conns)
    })
    .await??;

    // Insert phase: one blocking thread per connection.
    eprintln!("storage insert ({n} sqlite connections)...");
    let samples = Arc::new(ErrorSamples::default());
    let timing = Timing::starting_now(opts.warmup, opts.duration);
    let mut set = JoinSet::new();
    for (idx, conn) in conns.into_iter().enumerate() {
        let samples = samples.clone();
        let mut payloads = Payloads::new(opts, idx);
        set.spawn_blocking(move || {
            let mut out = WorkerOut::new();
            let mut count = 0u64;
            match conn.prepare("INSERT INTO t (id, body) VALUES (?1, ?2)") {
                Ok(mut stmt) => {
                    while Instant::now() < timing.end {
                        let id = row_id(idx, count);
                        let body = payloads.next_body();
                        let started = Instant::now();
                        let ok = match stmt.execute(rusqlite::params![id, body]) {
                            Ok(_) => {
                                count += 1;
                                true
                            }
                            Err(e) => {
                                samples.push(|| format!("INSERT: {e}"));
                                false
                            }
                        };
                        out.record(&timing, started, ok);
                    }
                }
                Err(e) => {
                    samples.push(|| format!("preparing INSERT: {e}"));
                    out.ended_early = true;
                }
            }
            out.finished_at = Instant::now();
            (idx, count, out, conn)
        });
    }
    let mut counts = vec![0u64; n];
    let mut outs = Vec::with_capacity(n);
    let mut conns = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        let (idx, count, out, conn) = r.context("storage insert worker crashed")?;
        counts[idx] = count;
        outs.push(out);
        conns.push((idx, conn));
    }
    let (insert, _) = summarize("storage insert", &timing, outs, samples.take());

    // Select phase.
    eprintln!("storage select...");
    let counts = nonempty_counts(&counts)?;
    let timing = Timing::starting_now(opts.warmup, opts.duration);
    let mut set = JoinSet::new();
    for (idx, conn) in conns {
        let samples = samples.clone();
        let counts = counts.clone();
        let mut rng = Rng::for_worker(opts.seed, 12, idx);
        set.spawn_blocking(move || {
            let mut out = WorkerOut::new();
            match conn.prepare("SELECT body FROM t WHERE id = ?1") {
                Ok(mut stmt) => {
                    while Instant::now() < timing.end {
                        let id = random_id(&mut rng, &counts);
                        let started = Instant::now();
                        let ok = match stmt.query_row([&id], |r| r.get::<_, String>(0)) {
                            Ok(_) => true,
                            Err(e) => {
                                samples.push(|| format!("SELECT {id}: {e}"));
                                false
                            }
                        };
                        out.record(&timing, started, ok);
                    }
                }
                Err(e) => {
                    samples.push(|| format!("preparing SELECT: {e}"));
                    out.ended_early = true;
                }
            }
            out.finished_at = Instant::now();
            drop(conn);
            out
        });
    }
    let mut outs = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        outs.push(r.context("storage select worker crashed")?);
    }
    let (select, _) = summarize("storage select", &timing, outs, samples.take());
    Ok(StorageResult {
        backend: "sqlite".into(),
        insert,
        select,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn db_url_parsing() {
        assert!(matches!(
            Db::parse("postgres://u:p@localhost/db"),
            Ok(Db::Postgres(_))
        ));
        assert!(matches!(
            Db::parse("postgresql://u@localhost:5433/db"),
            Ok(Db::Postgres(_))
        ));
        match Db::parse("sqlite:///var/lib/ember/ember.db?mode=rwc") {
            Ok(Db::Sqlite(p)) => assert_eq!(p, PathBuf::from("/var/lib/ember/ember.db")),
            other => panic!("unexpected {other:?}"),
        }
        match Db::parse("sqlite://data/ember.db") {
            Ok(Db::Sqlite(p)) => assert_eq!(p, PathBuf::from("data/ember.db")),
            other => panic!("unexpected {other:?}"),
        }
        assert!(Db::parse("sqlite://").is_err());
        assert!(Db::parse("mysql://x").is_err());
        assert_eq!(
            sqlite_scratch_path(Path::new("/tmp/e.db")),
            PathBuf::from("/tmp/e.db.bench-baseline")
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_baseline_runs_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("ember-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let server_db = dir.join("server.db");
        std::fs::write(&server_db, b"not touched").expect("write");
        let opts = StorageOpts {
            connections: 2,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(500),
            seed: 42,
            refs: Arc::new(Refs::default()),
        };
        let res = run(&Db::Sqlite(server_db.clone()), &opts)
            .await
            .expect("baseline");
        assert!(res.insert.requests > 0);
        assert_eq!(res.insert.errors, 0, "{:?}", res.insert.error_samples);
        assert!(res.select.requests > 0);
        assert_eq!(res.select.errors, 0, "{:?}", res.select.error_samples);
        assert!(!sqlite_scratch_path(&server_db).exists());
        assert_eq!(std::fs::read(&server_db).expect("read"), b"not touched");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Needs PostgreSQL: `cargo xtask test` provides EMBER_TEST_DATABASE_URL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_baseline_runs_and_drops_schema() {
        let url = std::env::var("EMBER_TEST_DATABASE_URL").expect(
            "EMBER_TEST_DATABASE_URL must name a PostgreSQL database (run `cargo xtask test`)",
        );
        let Ok(db @ Db::Postgres(_)) = Db::parse(&url) else {
            panic!("EMBER_TEST_DATABASE_URL must be a postgres:// URL");
        };
        let opts = StorageOpts {
            connections: 4,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            seed: 42,
            refs: Arc::new(Refs::default()),
        };
        let res = run(&db, &opts).await.expect("baseline");
        assert!(res.insert.requests > 0 && res.select.requests > 0);
        assert_eq!(
            res.insert.errors + res.select.errors,
            0,
            "{:?}",
            res.insert.error_samples
        );
        let Db::Postgres(cfg) = db else { return };
        let client = pg_connect(&cfg).await.expect("connect");
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'ember_bench_%'",
                &[],
            )
            .await
            .expect("query")
            .get(0);
        assert_eq!(left, 0, "scratch schema left behind");
    }
}
