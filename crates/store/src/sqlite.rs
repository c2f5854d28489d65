//! The embedded SQLite backend, for one instance: a laptop, a demo or tests.
//!
//! SQLite allows one writer at a time, so writes go through a single connection and
//! queue fairly in async code instead of spinning on `SQLITE_BUSY`. Reads use a small
//! pool of reader connections; WAL mode lets them run beside the writer. Each call
//! takes one hop to tokio's blocking thread pool.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::Semaphore;

use crate::migrate::{self, now_micros};
use crate::{
    Backend, Change, Current, HistoryQuery, HistoryRow, HistoryScope, PoolStatus, Result, Store,
    StoreError, StoreOptions, Version, Write,
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

/// The newest version is the current one: versions and the pointer are written
/// together, so one backward scan of the primary key finds the current state.
/// The fixed statements of this backend (see [`crate::statements`]).
pub(crate) const STATEMENTS: &[&str] = &[READ, VREAD, WRITE_NEW, WRITE_NEXT, WRITE_VERSION];

const READ: &str = "SELECT version, last_updated, body IS NULL, body
    FROM resource_versions WHERE res_type = ?1 AND res_id = ?2
    ORDER BY version DESC LIMIT 1";

const VREAD: &str = "SELECT res_type, res_id, version, last_updated, change, body
    FROM resource_versions WHERE res_type = ?1 AND res_id = ?2 AND version = ?3";

const WRITE_NEW: &str = "INSERT INTO resources (res_type, res_id, version, last_updated, deleted)
    VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (res_type, res_id) DO NOTHING";

const WRITE_NEXT: &str = "UPDATE resources SET version = ?3, last_updated = ?4, deleted = ?5
    WHERE res_type = ?1 AND res_id = ?2 AND version = ?6";

const WRITE_VERSION: &str = "INSERT INTO resource_versions
    (res_type, res_id, version, last_updated, change, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

fn write_all(conn: &mut Connection, writes: &[Write]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    for (index, w) in writes.iter().enumerate() {
        let deleted = w.body.is_none();
        let moved = match w.expected {
            None => tx.prepare_cached(WRITE_NEW).and_then(|mut s| {
                s.execute(params![
                    w.res_type,
                    w.id,
                    w.version,
                    w.last_updated,
                    deleted
                ])
            }),
            Some(expected) => tx.prepare_cached(WRITE_NEXT).and_then(|mut s| {
                s.execute(params![
                    w.res_type,
                    w.id,
                    w.version,
                    w.last_updated,
                    deleted,
                    expected
                ])
            }),
        }
        .map_err(sqlite_err)?;
        if moved != 1 {
            // Dropping the transaction rolls it back.
            return Err(StoreError::Conflict { index });
        }
        let added = tx.prepare_cached(WRITE_VERSION).and_then(|mut s| {
            s.execute(params![
                w.res_type,
                w.id,
                w.version,
                w.last_updated,
                w.change.as_str(),
                w.body
            ])
        });
        match added {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::Conflict { index });
            }
            Err(e) => return Err(sqlite_err(e)),
        }
    }
    tx.commit().map_err(sqlite_err)
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn read(&self, res_type: &str, id: &str) -> Result<Option<Current>> {
        let (t, i) = (res_type.to_owned(), id.to_owned());
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(READ).map_err(sqlite_err)?;
                stmt.query_row(params![t, i], |r| {
                    Ok(Current {
                        version: r.get(0)?,
                        last_updated: r.get(1)?,
                        deleted: r.get(2)?,
                        body: r.get(3)?,
                    })
                })
                .optional()
                .map_err(sqlite_err)
            })
            .await
    }

    async fn vread(&self, res_type: &str, id: &str, version: i64) -> Result<Option<Version>> {
        let (t, i) = (res_type.to_owned(), id.to_owned());
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(VREAD).map_err(sqlite_err)?;
                let row = stmt
                    .query_row(params![t, i, version], |r| raw_version(r, 0))
                    .optional()
                    .map_err(sqlite_err)?;
                row.map(RawVersion::into_version).transpose()
            })
            .await
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<()> {
        self.writer.run(move |conn| write_all(conn, &writes)).await
    }

    async fn history(&self, scope: HistoryScope<'_>, q: &HistoryQuery) -> Result<Vec<HistoryRow>> {
        let (sql, args) = crate::sql::history(scope, q, crate::sql::sqlite_placeholder);
        let args: Vec<rusqlite::types::Value> = args
            .into_iter()
            .map(|a| match a {
                crate::sql::Arg::Text(t) => rusqlite::types::Value::Text(t),
                crate::sql::Arg::Int(i) => rusqlite::types::Value::Integer(i),
            })
            .collect();
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(&sql).map_err(sqlite_err)?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(args), |r| {
                        Ok((r.get(0)?, raw_version(r, 1)?, r.get(7)?))
                    })
                    .map_err(sqlite_err)?;
                rows.map(|row| {
                    let (seq, raw, created) = row.map_err(sqlite_err)?;
                    Ok(HistoryRow {
                        seq,
                        version: raw.into_version()?,
                        created,
                    })
                })
                .collect()
            })
            .await
    }

    fn pool_status(&self) -> PoolStatus {
        let in_use = |c: &Conns| c.size.saturating_sub(c.permits.available_permits());
        let idle = self.readers.idle_count() + self.writer.idle_count();
        PoolStatus {
            max: self.readers.size + self.writer.size,
            open: idle + in_use(&self.readers) + in_use(&self.writer),
            idle,
            waiting: 0,
        }
    }

    async fn publish(&self, message: &str) -> Result<()> {
        let subscribers = self
            .subscribers
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        for subscriber in subscribers {
            subscriber(message);
        }
        Ok(())
    }

    fn subscribe(&self, on_message: crate::Subscriber) {
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.push(on_message);
        }
    }

    async fn ping(&self) -> Result<()> {
        self.readers
            .run(|conn| conn.execute_batch("SELECT 1").map_err(sqlite_err))
            .await
    }
}

/// A version row before its `change` column is checked.
struct RawVersion(Version, String);

impl RawVersion {
    fn into_version(self) -> Result<Version> {
        let RawVersion(mut v, change) = self;
        v.change = Change::parse(&change)?;
        Ok(v)
    }
}

fn raw_version(r: &Row<'_>, at: usize) -> rusqlite::Result<RawVersion> {
    Ok(RawVersion(
        Version {
            res_type: r.get(at)?,
            id: r.get(at + 1)?,
            version: r.get(at + 2)?,
            last_updated: r.get(at + 3)?,
            change: Change::Create,
            body: r.get(at + 5)?,
        },
        r.get(at + 4)?,
    ))
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
