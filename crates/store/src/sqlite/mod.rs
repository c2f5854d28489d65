//! The embedded SQLite backend, for one instance: a laptop, a demo or tests; one
//! module per concern of the [`crate::Store`].
//!
//! SQLite allows one writer at a time, so writes go through a single connection and
//! queue fairly in async code instead of spinning on `SQLITE_BUSY`. Reads use a small
//! pool of reader connections; WAL mode lets them run beside the writer. Each call
//! takes one hop to tokio's blocking thread pool.

mod bus;
mod jobs;
mod kv;
mod maintenance;
mod read;
mod search;
mod write;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, Row, TransactionBehavior, params};
use tokio::sync::Semaphore;

use crate::migrate::{self, now_micros};
use crate::{
    Backend, Commit, Committed, Current, Documents, HistoryQuery, HistoryRow, HistoryScope, Hit,
    Hits, LiveDoc, Result, Scan, SearchQuery, StoreError, StoreOptions, Version,
};

const PRAGMAS: &str = "PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA busy_timeout = 5000;
    PRAGMA foreign_keys = ON;";

/// An embedded SQLite database file holding Ember's schema.
pub struct SqliteStore {
    writer: Conns,
    readers: Conns,
    /// One instance only: published messages go to local subscribers.
    subscribers: Mutex<Vec<crate::Subscriber>>,
}

/// A bounded set of connections to one file, handed out one call at a time.
struct Conns {
    size: usize,
    path: PathBuf,
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Semaphore,
    acquire_timeout: Duration,
}

impl Conns {
    fn new(path: &Path, size: usize, acquire_timeout: Duration) -> Self {
        Self {
            size: size.max(1),
            path: path.to_owned(),
            idle: Arc::new(Mutex::new(Vec::new())),
            permits: Semaphore::new(size.max(1)),
            acquire_timeout,
        }
    }

    /// Open connections waiting in the pool.
    fn idle_count(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }

    /// Runs `f` on a connection on the blocking thread pool.
    async fn run<R, F>(&self, f: F) -> Result<R>
    where
        F: FnOnce(&mut Connection) -> Result<R> + Send + 'static,
        R: Send + 'static,
    {
        let _permit = tokio::time::timeout(self.acquire_timeout, self.permits.acquire())
            .await
            .map_err(|_| {
                StoreError::Unavailable("timed out waiting for a SQLite connection".into())
            })?
            .map_err(|_| StoreError::Unavailable("the SQLite store is closed".into()))?;
        let idle = Arc::clone(&self.idle);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = idle
                .lock()
                .map_err(|_| StoreError::Backend("poisoned pool".into()))?
                .pop();
            let mut conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&path)?,
            };
            let result = f(&mut conn);
            if let Ok(mut idle) = idle.lock() {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("SQLite task failed: {e}")))?
    }
}

fn open_connection(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(sqlite_err)?;
    conn.execute_batch(PRAGMAS).map_err(sqlite_err)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, migrates it and returns the store.
    pub async fn open(path: &str, options: &StoreOptions) -> Result<Self> {
        let path = prepare_path(path)?;
        let store = Self {
            writer: Conns::new(&path, 1, options.acquire_timeout),
            readers: Conns::new(&path, options.pool_size, options.acquire_timeout),
            subscribers: Mutex::new(Vec::new()),
        };
        store.writer.run(run_migrations).await?;
        Ok(store)
    }

    pub(crate) async fn migrate_only(path: &str) -> Result<usize> {
        let path = prepare_path(path)?;
        tokio::task::spawn_blocking(move || run_migrations(&mut open_connection(&path)?))
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))?
    }
}

fn prepare_path(path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(StoreError::Config("sqlite:// needs a file path".into()));
    }
    let path = PathBuf::from(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create the data directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    Ok(path)
}

/// Applies pending migrations in one immediate (write-locked) transaction.
fn run_migrations(conn: &mut Connection) -> Result<usize> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    tx.execute_batch(migrate::SCHEMA_TABLE)
        .map_err(sqlite_err)?;
    let done: Vec<i64> = {
        let mut stmt = tx
            .prepare("SELECT version FROM ember_schema")
            .map_err(sqlite_err)?;
        stmt.query_map([], |r| r.get(0))
            .map_err(sqlite_err)?
            .collect::<Result<_, _>>()
            .map_err(sqlite_err)?
    };
    let mut applied = 0;
    for m in migrate::SQLITE
        .iter()
        .filter(|m| !done.contains(&m.version))
    {
        tx.execute_batch(m.sql).map_err(sqlite_err)?;
        tx.execute(
            "INSERT INTO ember_schema (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![m.version, m.name, now_micros()],
        )
        .map_err(sqlite_err)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        applied += 1;
    }
    tx.commit().map_err(sqlite_err)?;
    Ok(applied)
}

/// The fixed statements of this backend (see [`crate::statements`]).
pub(crate) fn statements() -> Vec<String> {
    let mut all = read::statements();
    all.extend(write::statements());
    all.extend(jobs::statements());
    all.extend(kv::statements());
    all.extend(maintenance::statements());
    all
}

#[async_trait]
impl Documents for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn read(&self, res_type: &str, id: &str) -> Result<Option<Current>> {
        read::read(self, res_type, id).await
    }

    async fn read_many(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Current>>> {
        read::read_many(self, keys).await
    }

    async fn vread(&self, res_type: &str, id: &str, version: i64) -> Result<Option<Version>> {
        read::vread(self, res_type, id, version).await
    }

    async fn commit(&self, commit: Commit) -> Result<Committed> {
        self.writer
            .run(move |conn| write::commit(conn, &commit))
            .await
    }

    async fn history(&self, scope: HistoryScope<'_>, q: &HistoryQuery) -> Result<Vec<HistoryRow>> {
        read::history(self, scope, q).await
    }

    async fn search(&self, q: &SearchQuery) -> Result<Hits> {
        search::search(self, q).await
    }

    async fn count(&self, q: &SearchQuery) -> Result<u64> {
        search::count(self, q).await
    }

    /// SQLite keeps no row estimates a search could use: the caller counts.
    async fn estimate(&self, _q: &SearchQuery) -> Result<Option<u64>> {
        Ok(None)
    }

    async fn explain(&self, q: &SearchQuery) -> Result<String> {
        search::explain(self, q).await
    }

    async fn referenced(&self, rids: &[i64], keys: &[i64]) -> Result<Vec<(String, String)>> {
        search::referenced(self, rids, keys).await
    }

    async fn fetch(&self, docs: &[(String, String)]) -> Result<Vec<Hit>> {
        search::fetch(self, docs).await
    }

    async fn live_documents(
        &self,
        scope: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LiveDoc>> {
        read::live_documents(self, scope, after, limit).await
    }

    async fn scan(&self, scan: &Scan<'_>) -> Result<Vec<LiveDoc>> {
        read::scan(self, scan).await
    }
}

impl SqliteStore {
    /// Runs a dynamically built query on a reader, mapping each row with `map`.
    async fn query_dynamic<T, F>(
        &self,
        sql: String,
        args: Vec<crate::sql::Arg>,
        map: F,
    ) -> Result<Vec<T>>
    where
        T: Send + 'static,
        F: Fn(&Row<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let args: Vec<rusqlite::types::Value> = args.into_iter().map(sqlite_value).collect();
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| map(r))
                    .map_err(sqlite_err)?;
                rows.collect::<rusqlite::Result<Vec<T>>>()
                    .map_err(sqlite_err)
            })
            .await
    }
}

fn sqlite_value(a: crate::sql::Arg) -> rusqlite::types::Value {
    match a {
        crate::sql::Arg::Text(t) => rusqlite::types::Value::Text(t),
        crate::sql::Arg::Int(i) => rusqlite::types::Value::Integer(i),
        crate::sql::Arg::Float(f) => rusqlite::types::Value::Real(f),
    }
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy
                    | rusqlite::ErrorCode::DatabaseLocked
                    | rusqlite::ErrorCode::CannotOpen
                    | rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::ReadOnly
            ) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}
