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
use crate::query::ValKind;
use crate::{
    Backend, Change, Current, Guard, Guarded, HistoryQuery, HistoryRow, HistoryScope, Hit, Hits,
    PoolStatus, Result, SearchQuery, Store, StoreError, StoreOptions, Val, Version, Write,
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
pub(crate) fn statements() -> Vec<String> {
    let mut all: Vec<String> = [READ, VREAD, WRITE_NEW, WRITE_NEXT, WRITE_VERSION]
        .iter()
        .chain(INDEX_STATEMENTS)
        .map(|s| (*s).to_owned())
        .collect();
    all.extend(
        INDEX_TABLES
            .iter()
            .map(|t| format!("DELETE FROM {t} WHERE rid = ?1")),
    );
    all.extend(
        [
            JOB_ENQUEUE,
            JOB_READ,
            JOB_CLAIM,
            JOB_LOCK,
            JOB_ADVANCE,
            LIVE_ALL,
            LIVE_TYPE,
            LIVE_VERSION,
            TIMELINE_DONE,
            STALE_LIST,
            STALE_DONE,
            STALE_ANY,
            TIMELINE_STATE,
            TIMELINE_DELETED,
        ]
        .iter()
        .map(|s| (*s).to_owned()),
    );
    all.push(format!("SELECT count(*) FROM ({COUNT_VALUES})"));
    all.extend(fold_statements());
    all
}

const JOB_ENQUEUE: &str = "INSERT INTO reindex_jobs (id, scope, status, total, created_at)
    SELECT ?1, ?2, 'queued', count(*), ?3 FROM resources
    WHERE NOT deleted AND (?2 IS NULL OR res_type = ?2)
    RETURNING id, scope, status, cursor_rid, processed, total, created_at, started_at, finished_at";

const JOB_READ: &str =
    "SELECT id, scope, status, cursor_rid, processed, total, created_at, started_at, finished_at
    FROM reindex_jobs WHERE id = ?1";

/// One instance, one worker: the oldest unfinished job, whoever held it before.
const JOB_CLAIM: &str = "UPDATE reindex_jobs
    SET status = 'running', claimed_by = ?1, claimed_until = ?3,
        started_at = COALESCE(started_at, ?2)
    WHERE id = (SELECT id FROM reindex_jobs WHERE status <> 'done'
        ORDER BY created_at, id LIMIT 1)
    RETURNING id, scope, status, cursor_rid, processed, total, created_at, started_at, finished_at";

const JOB_LOCK: &str = "SELECT cursor_rid FROM reindex_jobs
    WHERE id = ?1 AND claimed_by = ?2 AND status = 'running'";

const JOB_ADVANCE: &str = "UPDATE reindex_jobs
    SET cursor_rid = ?3, processed = processed + ?4, claimed_until = ?5, status = ?6,
        finished_at = ?7
    WHERE id = ?1 AND claimed_by = ?2";

const LIVE_ALL: &str = "SELECT k.rid, k.res_type, k.res_id, r.version, v.body
    FROM resource_keys k
    JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id
    JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    WHERE k.rid > ?1 AND NOT r.deleted ORDER BY k.rid LIMIT ?2";

const LIVE_TYPE: &str = "SELECT k.rid, k.res_type, k.res_id, r.version, v.body
    FROM resource_keys k
    JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id
    JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    WHERE k.rid > ?1 AND k.res_type = ?3 AND NOT r.deleted ORDER BY k.rid LIMIT ?2";

/// The documents waiting for the timeline, in their current state (the key of a
/// deleted one is gone, and with it its entries: see migration 0005).
const STALE_LIST: &str = "SELECT s.res_type, s.res_id, k.rid, r.version, v.body
    FROM timeline_stale s
    LEFT JOIN resources r ON r.res_type = s.res_type AND r.res_id = s.res_id
    LEFT JOIN resource_keys k ON k.res_type = s.res_type AND k.res_id = s.res_id
    LEFT JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    LIMIT ?1";

const STALE_DONE: &str = "DELETE FROM timeline_stale WHERE res_type = ?1 AND res_id = ?2";

const STALE_ANY: &str = "SELECT EXISTS (SELECT 1 FROM timeline_stale)";

/// The current version of a document and whether it kept the timeline.
const TIMELINE_STATE: &str = "SELECT version, timeline_version IS version FROM resources
    WHERE res_type = ?1 AND res_id = ?2";

/// Records that a deleted document's (absent) entries are those of version `?3`.
const TIMELINE_DELETED: &str = "UPDATE resources SET timeline_version = version
    WHERE res_type = ?1 AND res_id = ?2 AND version = ?3 AND deleted";

/// Records that document `?1`'s timeline entries are those of version `?2`.
const TIMELINE_DONE: &str = "UPDATE resources SET timeline_version = ?2
    WHERE version = ?2 AND (res_type, res_id) IN (SELECT res_type, res_id FROM resource_keys WHERE rid = ?1)";

const LIVE_VERSION: &str = "SELECT r.version FROM resource_keys k
    JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id
    WHERE k.rid = ?1 AND NOT r.deleted";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<(crate::ReindexJob, String)> {
    Ok((
        crate::ReindexJob {
            id: r.get(0)?,
            scope: r.get(1)?,
            status: crate::JobStatus::Queued,
            cursor: r.get(3)?,
            processed: r.get(4)?,
            total: r.get(5)?,
            created_at: r.get(6)?,
            started_at: r.get(7)?,
            finished_at: r.get(8)?,
        },
        r.get(2)?,
    ))
}

fn job_checked(raw: Option<(crate::ReindexJob, String)>) -> Result<Option<crate::ReindexJob>> {
    raw.map(|(mut job, status)| {
        job.status = crate::JobStatus::parse(&status)?;
        Ok(job)
    })
    .transpose()
}

/// One batch of a reindex job in one immediate transaction (see
/// [`Store::reindex_batch`]).
fn reindex_batch(conn: &mut Connection, batch: &crate::ReindexBatch) -> Result<bool> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let held: Option<i64> = tx
        .prepare_cached(JOB_LOCK)
        .and_then(|mut s| {
            s.query_row(params![batch.job, batch.owner], |r| r.get(0))
                .optional()
        })
        .map_err(sqlite_err)?;
    if held.is_none() {
        return Ok(false);
    }
    for doc in &batch.docs {
        let current: Option<i64> = tx
            .prepare_cached(LIVE_VERSION)
            .and_then(|mut s| s.query_row([doc.rid], |r| r.get(0)).optional())
            .map_err(sqlite_err)?;
        if current == Some(doc.version) {
            delete_rows(&tx, doc.rid).map_err(sqlite_err)?;
            insert_rows(&tx, doc.rid, &doc.index).map_err(sqlite_err)?;
            tx.prepare_cached(TIMELINE_DONE)
                .and_then(|mut s| s.execute(params![doc.rid, doc.version]))
                .map_err(sqlite_err)?;
        }
    }
    let (status, finished) = if batch.done {
        ("done", Some(batch.now))
    } else {
        ("running", None)
    };
    tx.prepare_cached(JOB_ADVANCE)
        .and_then(|mut s| {
            s.execute(params![
                batch.job,
                batch.owner,
                batch.cursor,
                batch.processed,
                batch.lease_until,
                status,
                finished
            ])
        })
        .map_err(sqlite_err)?;
    tx.commit().map_err(sqlite_err)?;
    Ok(true)
}

/// Puts waiting documents into the timeline in one immediate transaction (see
/// [`Store::refresh_timeline`]).
fn refresh_timeline(conn: &mut Connection, docs: &[crate::TimelineRefresh]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    for crate::TimelineRefresh { doc, index } in docs {
        let state: Option<(i64, bool)> = tx
            .prepare_cached(TIMELINE_STATE)
            .and_then(|mut s| {
                s.query_row(params![doc.res_type, doc.id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()
            })
            .map_err(sqlite_err)?;
        let waits = match state {
            // Written meanwhile: by this release (which kept the timeline) or not.
            Some((version, kept)) if version != doc.version => !kept,
            Some(_) => {
                match (doc.rid, &doc.body) {
                    (Some(rid), Some(_)) => {
                        tx.prepare_cached("DELETE FROM idx_timeline WHERE rid = ?1")
                            .and_then(|mut s| s.execute([rid]))
                            .map_err(sqlite_err)?;
                        insert_timeline(&tx, rid, index).map_err(sqlite_err)?;
                        tx.prepare_cached(TIMELINE_DONE)
                            .and_then(|mut s| s.execute(params![rid, doc.version]))
                            .map_err(sqlite_err)?;
                    }
                    _ => {
                        tx.prepare_cached(TIMELINE_DELETED)
                            .and_then(|mut s| s.execute(params![doc.res_type, doc.id, doc.version]))
                            .map_err(sqlite_err)?;
                    }
                }
                false
            }
            None => false,
        };
        if !waits {
            tx.prepare_cached(STALE_DONE)
                .and_then(|mut s| s.execute(params![doc.res_type, doc.id]))
                .map_err(sqlite_err)?;
        }
    }
    tx.commit().map_err(sqlite_err)
}

const READ: &str = "SELECT version, last_updated, body IS NULL, body
    FROM resource_versions WHERE res_type = ?1 AND res_id = ?2
    ORDER BY version DESC LIMIT 1";

const VREAD: &str = "SELECT res_type, res_id, version, last_updated, change, body
    FROM resource_versions WHERE res_type = ?1 AND res_id = ?2 AND version = ?3";

const WRITE_NEW: &str = "INSERT INTO resources
    (res_type, res_id, version, last_updated, deleted, timeline_version)
    VALUES (?1, ?2, ?3, ?4, ?5, ?3) ON CONFLICT (res_type, res_id) DO NOTHING";

const WRITE_NEXT: &str = "UPDATE resources
    SET version = ?3, last_updated = ?4, deleted = ?5, timeline_version = ?3
    WHERE res_type = ?1 AND res_id = ?2 AND version = ?6";

const WRITE_VERSION: &str = "INSERT INTO resource_versions
    (res_type, res_id, version, last_updated, change, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

const KEY_READ: &str = "SELECT rid FROM resource_keys WHERE res_type = ?1 AND res_id = ?2";
const KEY_NEW: &str = "INSERT INTO resource_keys (res_type, res_id) VALUES (?1, ?2)";
const KEY_DROP: &str = "DELETE FROM resource_keys WHERE rid = ?1";
const INSERT_STRING: &str =
    "INSERT INTO idx_string (rid, p, grp, norm, exact) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_TOKEN: &str =
    "INSERT INTO idx_token (rid, p, grp, system, code, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_DATE: &str = "INSERT INTO idx_date (rid, p, grp, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5)";
const INSERT_NUMBER: &str = "INSERT INTO idx_number (rid, p, grp, v) VALUES (?1, ?2, ?3, ?4)";
const INSERT_QUANTITY: &str =
    "INSERT INTO idx_quantity (rid, p, grp, system, code, v) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_REFERENCE: &str =
    "INSERT INTO idx_reference (rid, p, grp, target_type, target_id, url)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const INSERT_URI: &str = "INSERT INTO idx_uri (rid, p, grp, uri) VALUES (?1, ?2, ?3, ?4)";
const INSERT_TIMELINE: &str = "INSERT INTO idx_timeline (rid, cmp, p, system, code, at, updated)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

const INSERT_TEXT: &str = "INSERT INTO idx_text (rowid, doc) VALUES (?1, ?2)";
const TEXT_DROP: &str = "DELETE FROM idx_text WHERE rowid IN (?1 * 2, ?1 * 2 + 1)";

const INDEX_STATEMENTS: &[&str] = &[
    INSERT_TEXT,
    TEXT_DROP,
    KEY_READ,
    KEY_NEW,
    KEY_DROP,
    INSERT_STRING,
    INSERT_TOKEN,
    INSERT_DATE,
    INSERT_NUMBER,
    INSERT_QUANTITY,
    INSERT_REFERENCE,
    INSERT_URI,
    INSERT_TIMELINE,
];

const INDEX_TABLES: [&str; 8] = [
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "idx_timeline",
];

/// Replaces the index rows of the document of `w`, inside the write's transaction:
/// drops the old rows, and the document's key when it was deleted.
fn write_index(tx: &rusqlite::Transaction<'_>, w: &Write) -> rusqlite::Result<()> {
    let rid: Option<i64> = tx
        .prepare_cached(KEY_READ)?
        .query_row(params![w.res_type, w.id], |r| r.get(0))
        .optional()?;
    if let Some(rid) = rid {
        delete_rows(tx, rid)?;
    }
    if w.body.is_none() {
        if let Some(rid) = rid {
            tx.prepare_cached(KEY_DROP)?.execute([rid])?;
        }
        return Ok(());
    }
    let rid = match rid {
        Some(rid) => rid,
        None => {
            tx.prepare_cached(KEY_NEW)?
                .execute(params![w.res_type, w.id])?;
            tx.last_insert_rowid()
        }
    };
    insert_rows(tx, rid, &w.index)
}

/// Removes every index row of document `rid`.
fn delete_rows(tx: &rusqlite::Transaction<'_>, rid: i64) -> rusqlite::Result<()> {
    for table in INDEX_TABLES {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE rid = ?1"))?
            .execute([rid])?;
    }
    tx.prepare_cached(TEXT_DROP)?.execute([rid])?;
    Ok(())
}

/// Adds the index rows of document `rid`.
fn insert_rows(
    tx: &rusqlite::Transaction<'_>,
    rid: i64,
    rows: &crate::IndexRows,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(INSERT_STRING)?;
    for r in &rows.strings {
        stmt.execute(params![rid, r.slot.p, r.slot.grp, r.norm, r.exact])?;
    }
    let mut stmt = tx.prepare_cached(INSERT_TOKEN)?;
    for r in &rows.tokens {
        stmt.execute(params![rid, r.slot.p, r.slot.grp, r.system, r.code, r.text])?;
    }
    let mut stmt = tx.prepare_cached(INSERT_DATE)?;
    for r in &rows.dates {
        stmt.execute(params![rid, r.slot.p, r.slot.grp, r.lo, r.hi])?;
    }
    let mut stmt = tx.prepare_cached(INSERT_NUMBER)?;
    for r in &rows.numbers {
        stmt.execute(params![rid, r.slot.p, r.slot.grp, r.v])?;
    }
    let mut stmt = tx.prepare_cached(INSERT_QUANTITY)?;
    for r in &rows.quantities {
        stmt.execute(params![rid, r.slot.p, r.slot.grp, r.system, r.code, r.v])?;
    }
    let mut stmt = tx.prepare_cached(INSERT_REFERENCE)?;
    for r in &rows.references {
        stmt.execute(params![
            rid,
            r.slot.p,
            r.slot.grp,
            r.target_type,
            r.target_id,
            r.url
        ])?;
    }
    let mut stmt = tx.prepare_cached(INSERT_URI)?;
    for r in &rows.uris {
        stmt.execute(params![rid, r.slot.p, r.slot.grp, r.uri])?;
    }
    let mut stmt = tx.prepare_cached(INSERT_TEXT)?;
    for r in &rows.texts {
        stmt.execute(params![rid * 2 + r.kind as i64, r.doc])?;
    }
    insert_timeline(tx, rid, rows)
}

/// Adds the timeline entries of document `rid`.
fn insert_timeline(
    tx: &rusqlite::Transaction<'_>,
    rid: i64,
    rows: &crate::IndexRows,
) -> rusqlite::Result<()> {
    let (at, updated) = rows.timeline.sort_values(rows);
    let mut stmt = tx.prepare_cached(INSERT_TIMELINE)?;
    for e in rows.timeline.unique_entries() {
        stmt.execute(params![rid, e.cmp, e.p, e.system, e.code, at, updated])?;
    }
    Ok(())
}

fn write_all(conn: &mut Connection, writes: &[Write]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    write_in(&tx, writes)?;
    tx.commit().map_err(sqlite_err)
}

/// Checks the guards, then writes, in one immediate transaction. The single writer
/// connection already serializes every commit, so no lock keys are needed.
fn write_guarded(conn: &mut Connection, guards: &[Guard], writes: &[Write]) -> Result<Guarded> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    for (index, guard) in guards.iter().enumerate() {
        let (sql, args) = crate::search_sql::page(&crate::search_sql::SQLITE, &guard.query);
        let kinds = crate::search_sql::sort_kinds(&guard.query.sort);
        let args: Vec<rusqlite::types::Value> = args.into_iter().map(sqlite_value).collect();
        let mut stmt = tx.prepare_cached(&sql).map_err(sqlite_err)?;
        let hits = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                hit_from_row(r, 0, &kinds)
            })
            .map_err(sqlite_err)?
            .collect::<rusqlite::Result<Vec<Hit>>>()
            .map_err(sqlite_err)?;
        if !hits.is_empty() {
            let hits = crate::search_sql::into_page(hits, &guard.query).hits;
            return Ok(Guarded::Matched { index, hits });
        }
    }
    write_in(&tx, writes)?;
    tx.commit().map_err(sqlite_err)?;
    Ok(Guarded::Committed)
}

/// The writes of one commit inside its transaction.
fn write_in(tx: &rusqlite::Transaction<'_>, writes: &[Write]) -> Result<()> {
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
        write_index(tx, w).map_err(sqlite_err)?;
    }
    Ok(())
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

    async fn commit_guarded(&self, guards: &[Guard], writes: Vec<Write>) -> Result<Guarded> {
        let guards = guards.to_vec();
        self.writer
            .run(move |conn| write_guarded(conn, &guards, &writes))
            .await
    }

    async fn history(&self, scope: HistoryScope<'_>, q: &HistoryQuery) -> Result<Vec<HistoryRow>> {
        let (sql, args) = crate::sql::history(scope, q, crate::sql::sqlite_placeholder);
        let args: Vec<rusqlite::types::Value> = args.into_iter().map(sqlite_value).collect();
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

    async fn search(&self, q: &SearchQuery) -> Result<Hits> {
        let d = &crate::search_sql::SQLITE;
        let kinds = crate::search_sql::sort_kinds(&q.sort);
        if let Some((sql, args)) = crate::search_sql::timeline_page(d, q) {
            let kinds = kinds.clone();
            let rows = self
                .query_dynamic(sql, args, move |r| {
                    let stale: bool = r.get(0)?;
                    let hit = match r.get::<_, Option<i64>>(1)? {
                        Some(_) if !stale => Some(hit_from_row(r, 1, &kinds)?),
                        _ => None,
                    };
                    Ok((stale, hit))
                })
                .await?;
            if rows.first().is_some_and(|(stale, _)| !stale) {
                let hits = rows.into_iter().filter_map(|(_, hit)| hit).collect();
                return Ok(crate::search_sql::into_page(hits, q));
            }
        }
        let (sql, args) = crate::search_sql::page(d, q);
        let hits = self
            .query_dynamic(sql, args, move |r| hit_from_row(r, 0, &kinds))
            .await?;
        Ok(crate::search_sql::into_page(hits, q))
    }

    async fn explain(&self, q: &SearchQuery) -> Result<String> {
        let d = &crate::search_sql::SQLITE;
        let stale = self
            .query_dynamic(STALE_ANY.to_owned(), vec![], |r| r.get::<_, bool>(0))
            .await?
            .first()
            .copied()
            .unwrap_or(true);
        let (sql, args) = match crate::search_sql::timeline_page(d, q) {
            Some(timeline) if !stale => timeline,
            _ => crate::search_sql::page(d, q),
        };
        let steps = self
            .query_dynamic(format!("EXPLAIN QUERY PLAN {sql}"), args, |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .await?;
        // One step a line, indented under the step it belongs to.
        let mut depth: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        let lines: Vec<String> = steps
            .into_iter()
            .map(|(id, parent, detail)| {
                let d = depth.get(&parent).map_or(0, |d| d + 1);
                depth.insert(id, d);
                format!("{}{detail}", "  ".repeat(d))
            })
            .collect();
        Ok(lines.join("\n"))
    }

    async fn count(&self, q: &SearchQuery) -> Result<u64> {
        let d = &crate::search_sql::SQLITE;
        if let Some((sql, args)) = crate::search_sql::timeline_count(d, q) {
            let rows = self
                .query_dynamic(sql, args, |r| {
                    Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?))
                })
                .await?;
            if let Some((false, n)) = rows.first() {
                return Ok((*n).max(0) as u64);
            }
        }
        let (sql, args) = crate::search_sql::count(d, q);
        let counts = self
            .query_dynamic(sql, args, |r| r.get::<_, i64>(0))
            .await?;
        Ok(counts.first().map_or(0, |c| (*c).max(0) as u64))
    }

    async fn referenced(&self, rids: &[i64], keys: &[i64]) -> Result<Vec<(String, String)>> {
        let (sql, args) = crate::search_sql::referenced(&crate::search_sql::SQLITE, rids, keys);
        self.query_dynamic(sql, args, |r| Ok((r.get(0)?, r.get(1)?)))
            .await
    }

    async fn fetch(&self, docs: &[(String, String)]) -> Result<Vec<Hit>> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, args) = crate::search_sql::fetch(&crate::search_sql::SQLITE, docs);
        self.query_dynamic(sql, args, |r| hit_from_row(r, 0, &[]))
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

    async fn enqueue_reindex(
        &self,
        id: &str,
        scope: Option<&str>,
        now: crate::Micros,
    ) -> Result<crate::ReindexJob> {
        let (id, scope) = (id.to_owned(), scope.map(str::to_owned));
        self.writer
            .run(move |conn| {
                let raw = conn
                    .prepare_cached(JOB_ENQUEUE)
                    .and_then(|mut s| s.query_row(params![id, scope, now], job_from_row))
                    .map_err(sqlite_err)?;
                job_checked(Some(raw))?
                    .ok_or_else(|| StoreError::Backend("no job was queued".into()))
            })
            .await
    }

    async fn reindex_job(&self, id: &str) -> Result<Option<crate::ReindexJob>> {
        let id = id.to_owned();
        self.readers
            .run(move |conn| {
                let raw = conn
                    .prepare_cached(JOB_READ)
                    .and_then(|mut s| s.query_row([id], job_from_row).optional())
                    .map_err(sqlite_err)?;
                job_checked(raw)
            })
            .await
    }

    async fn claim_reindex(
        &self,
        owner: &str,
        now: crate::Micros,
        lease_until: crate::Micros,
    ) -> Result<Option<crate::ReindexJob>> {
        let owner = owner.to_owned();
        self.writer
            .run(move |conn| {
                let raw = conn
                    .prepare_cached(JOB_CLAIM)
                    .and_then(|mut s| {
                        s.query_row(params![owner, now, lease_until], job_from_row)
                            .optional()
                    })
                    .map_err(sqlite_err)?;
                job_checked(raw)
            })
            .await
    }

    async fn live_documents(
        &self,
        scope: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<crate::LiveDoc>> {
        let scope = scope.map(str::to_owned);
        self.readers
            .run(move |conn| {
                let map = |r: &Row<'_>| {
                    Ok(crate::LiveDoc {
                        rid: r.get(0)?,
                        res_type: r.get(1)?,
                        id: r.get(2)?,
                        version: r.get(3)?,
                        body: r.get(4)?,
                    })
                };
                let docs = match &scope {
                    None => conn.prepare_cached(LIVE_ALL).and_then(|mut s| {
                        s.query_map(params![after, limit], map)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
                    Some(t) => conn.prepare_cached(LIVE_TYPE).and_then(|mut s| {
                        s.query_map(params![after, limit, t], map)?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    }),
                };
                docs.map_err(sqlite_err)
            })
            .await
    }

    async fn reindex_batch(&self, batch: crate::ReindexBatch) -> Result<bool> {
        self.writer
            .run(move |conn| reindex_batch(conn, &batch))
            .await
    }

    async fn compact_counts(&self, limit: u32) -> Result<u32> {
        self.writer
            .run(move |conn| compact_counts(conn, limit))
            .await
    }

    async fn stale_timeline(&self, limit: u32) -> Result<Vec<crate::StaleDoc>> {
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(STALE_LIST).map_err(sqlite_err)?;
                let docs = stmt
                    .query_map([limit], |r| {
                        Ok(crate::StaleDoc {
                            res_type: r.get(0)?,
                            id: r.get(1)?,
                            rid: r.get(2)?,
                            // A pointer row is always there; version 0 never is current.
                            version: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
                            body: r.get(4)?,
                        })
                    })
                    .map_err(sqlite_err)?;
                docs.collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(sqlite_err)
            })
            .await
    }

    async fn refresh_timeline(&self, docs: Vec<crate::TimelineRefresh>) -> Result<()> {
        self.writer
            .run(move |conn| refresh_timeline(conn, &docs))
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.readers
            .run(|conn| conn.execute_batch("SELECT 1").map_err(sqlite_err))
            .await
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

/// The hit in the columns of a page query, starting at column `at`.
fn hit_from_row(r: &Row<'_>, at: usize, kinds: &[ValKind]) -> rusqlite::Result<Hit> {
    let mut sort_values = Vec::with_capacity(kinds.len());
    for (i, k) in kinds.iter().enumerate() {
        sort_values.push(match k {
            ValKind::Text => Val::Text(r.get(at + 6 + i)?),
            ValKind::Int => Val::Int(r.get(at + 6 + i)?),
            ValKind::Float => Val::Float(r.get(at + 6 + i)?),
        });
    }
    Ok(Hit {
        rid: r.get(at)?,
        res_type: r.get(at + 1)?,
        id: r.get(at + 2)?,
        version: r.get(at + 3)?,
        last_updated: r.get(at + 4)?,
        body: r.get(at + 5)?,
        sort_values,
    })
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

/// The token values (at most `?2`, in a fixed order) with deltas among the count rows
/// up to rowid `?1`.
const COUNT_VALUES: &str = "SELECT p, code, system FROM idx_token_counts
    WHERE delta AND rowid <= ?1 GROUP BY p, code, system ORDER BY p, code, system LIMIT ?2";

/// Appends the sum of each value of [`COUNT_VALUES`], then removes the rows summed.
fn fold_statements() -> [String; 2] {
    [
        format!(
            "INSERT INTO idx_token_counts (p, system, code, n, delta)
             SELECT p, system, code, sum(n), 0 FROM idx_token_counts
             WHERE rowid <= ?1 AND (p, code, system) IN ({COUNT_VALUES})
             GROUP BY p, system, code HAVING sum(n) <> 0"
        ),
        format!(
            "DELETE FROM idx_token_counts
             WHERE rowid <= ?1 AND (p, code, system) IN ({COUNT_VALUES})"
        ),
    ]
}

/// Folds the deltas of up to `limit` token values into one row each, in one
/// transaction of the single writer: the sums of the rows present at the start are
/// appended, then those rows are removed.
fn compact_counts(conn: &mut Connection, limit: u32) -> Result<u32> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let last: i64 = tx
        .query_row(
            "SELECT COALESCE(max(rowid), 0) FROM idx_token_counts",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    let values: i64 = tx
        .query_row(
            &format!("SELECT count(*) FROM ({COUNT_VALUES})"),
            rusqlite::params![last, limit],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    if values > 0 {
        for sql in fold_statements() {
            tx.execute(&sql, rusqlite::params![last, limit])
                .map_err(sqlite_err)?;
        }
    }
    tx.commit().map_err(sqlite_err)?;
    Ok(u32::try_from(values).unwrap_or(u32::MAX))
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
