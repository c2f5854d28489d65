//! Commits, each in one immediate transaction of the single writer: guards, a held
//! job's progress, versions with their index rows, reindexed rows and the outbox's
//! jobs.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{sqlite_err, sqlite_value};
use crate::{Commit, Committed, Hit, NewJob, Progress, Reindexed, Result, StoreError, Write};

/// Records that document `?1`'s timeline entries are those of version `?2`.
pub(super) const TIMELINE_DONE: &str = "UPDATE resources SET timeline_version = ?2
    WHERE version = ?2 AND (res_type, res_id) IN (SELECT res_type, res_id FROM resource_keys WHERE rid = ?1)";

const LIVE_VERSION: &str = "SELECT r.version FROM resource_keys k
    JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id
    WHERE k.rid = ?1 AND NOT r.deleted";

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
pub(super) fn insert_timeline(
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

/// Records a held job's progress and extends its lease, or ends the job when `?5` (its
/// finish instant) is set; no change when the committer no longer holds it.
const PROGRESS: &str = "UPDATE jobs SET progress = COALESCE(?3, progress), due = ?4,
        state = CASE WHEN ?5 IS NULL THEN state ELSE 'done' END,
        finished_at = COALESCE(?5, finished_at)
    WHERE id = ?1 AND lease_owner = ?2 AND state = 'running'";

/// Enqueues a job; no change when its idempotency key has a job already.
const ENQUEUE: &str = "INSERT INTO jobs
    (id, kind, payload, state, due, idempotency_key, trace, created_at)
    VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7)
    ON CONFLICT (idempotency_key) DO NOTHING";

const JOB_OF_KEY: &str = "SELECT id FROM jobs WHERE idempotency_key = ?1";

pub(super) fn statements() -> Vec<String> {
    let mut all: Vec<String> = [
        WRITE_NEW,
        WRITE_NEXT,
        WRITE_VERSION,
        LIVE_VERSION,
        TIMELINE_DONE,
        PROGRESS,
        ENQUEUE,
        JOB_OF_KEY,
    ]
    .iter()
    .chain(INDEX_STATEMENTS)
    .map(|s| (*s).to_owned())
    .collect();
    all.extend(
        INDEX_TABLES
            .iter()
            .map(|t| format!("DELETE FROM {t} WHERE rid = ?1")),
    );
    all
}

/// Stores a commit (see [`crate::Documents::commit`]) in one immediate transaction.
/// The single writer connection already serializes every commit, so guards need no
/// lock keys.
pub(super) fn commit(conn: &mut Connection, c: &Commit) -> Result<Committed> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    for (index, guard) in c.guards.iter().enumerate() {
        let (sql, args) = crate::search_sql::page(&crate::search_sql::SQLITE, &guard.query);
        let kinds = crate::search_sql::sort_kinds(&guard.query.sort);
        let args: Vec<rusqlite::types::Value> = args.into_iter().map(sqlite_value).collect();
        let mut stmt = tx.prepare_cached(&sql).map_err(sqlite_err)?;
        let hits = stmt
            .query_map(rusqlite::params_from_iter(args), |r| {
                super::search::hit_from_row(r, 0, &kinds)
            })
            .map_err(sqlite_err)?
            .collect::<rusqlite::Result<Vec<Hit>>>()
            .map_err(sqlite_err)?;
        if !hits.is_empty() {
            let hits = crate::search_sql::into_page(hits, &guard.query).hits;
            return Ok(Committed::Matched { index, hits });
        }
    }
    for p in &c.progress {
        hold(&tx, p)?;
    }
    write_in(&tx, &c.writes)?;
    reindex(&tx, &c.reindexed)?;
    let mut jobs = Vec::with_capacity(c.jobs.len());
    for job in &c.jobs {
        jobs.push(enqueue(&tx, job)?);
    }
    tx.commit().map_err(sqlite_err)?;
    Ok(Committed::Stored { jobs })
}

/// Records a held job's progress, or fails the commit when the lease is lost.
fn hold(tx: &rusqlite::Transaction<'_>, p: &Progress) -> Result<()> {
    let held = tx
        .prepare_cached(PROGRESS)
        .and_then(|mut s| {
            s.execute(params![
                p.job,
                p.owner,
                p.progress,
                p.lease_until,
                p.finished_at
            ])
        })
        .map_err(sqlite_err)?;
    if held == 1 {
        Ok(())
    } else {
        Err(StoreError::LeaseLost(p.job.clone()))
    }
}

/// Enqueues a job and returns its id, or the id of the job its key has already.
fn enqueue(tx: &rusqlite::Transaction<'_>, job: &NewJob) -> Result<String> {
    let added = tx
        .prepare_cached(ENQUEUE)
        .and_then(|mut s| {
            s.execute(params![
                job.id,
                job.kind,
                job.payload,
                job.due,
                job.key,
                job.trace,
                job.created_at
            ])
        })
        .map_err(sqlite_err)?;
    if added == 1 {
        return Ok(job.id.clone());
    }
    tx.prepare_cached(JOB_OF_KEY)
        .and_then(|mut s| s.query_row([&job.key], |r| r.get(0)))
        .map_err(sqlite_err)
}

/// Replaces the index rows of each document whose current version is still the one
/// they were computed from; a document written meanwhile was indexed by that write.
fn reindex(tx: &rusqlite::Transaction<'_>, docs: &[Reindexed]) -> Result<()> {
    for doc in docs {
        let current: Option<i64> = tx
            .prepare_cached(LIVE_VERSION)
            .and_then(|mut s| s.query_row([doc.rid], |r| r.get(0)).optional())
            .map_err(sqlite_err)?;
        if current == Some(doc.version) {
            delete_rows(tx, doc.rid).map_err(sqlite_err)?;
            insert_rows(tx, doc.rid, &doc.index).map_err(sqlite_err)?;
            tx.prepare_cached(TIMELINE_DONE)
                .and_then(|mut s| s.execute(params![doc.rid, doc.version]))
                .map_err(sqlite_err)?;
        }
    }
    Ok(())
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
