//! Upkeep: folding the token-count deltas, putting documents of an earlier release
//! into the timeline, the probe and the pool's status.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::search::STALE_ANY;
use super::write::{TIMELINE_DONE, insert_timeline};
use super::{Conns, SqliteStore, sqlite_err};
use crate::{Maintenance, PoolStatus, Result, StaleDoc, TimelineRefresh};

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

/// The current version of a document and whether it kept the timeline.
const TIMELINE_STATE: &str = "SELECT version, timeline_version IS version FROM resources
    WHERE res_type = ?1 AND res_id = ?2";

/// Records that a deleted document's (absent) entries are those of version `?3`.
const TIMELINE_DELETED: &str = "UPDATE resources SET timeline_version = version
    WHERE res_type = ?1 AND res_id = ?2 AND version = ?3 AND deleted";

pub(super) fn statements() -> Vec<String> {
    let mut all: Vec<String> = [
        STALE_LIST,
        STALE_DONE,
        STALE_ANY,
        TIMELINE_STATE,
        TIMELINE_DELETED,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    all.push(format!("SELECT count(*) FROM ({COUNT_VALUES})"));
    all.extend(fold_statements());
    all
}

#[async_trait]
impl Maintenance for SqliteStore {
    async fn compact_counts(&self, limit: u32) -> Result<u32> {
        self.writer
            .run(move |conn| compact_counts(conn, limit))
            .await
    }

    async fn stale_timeline(&self, limit: u32) -> Result<Vec<StaleDoc>> {
        self.readers
            .run(move |conn| {
                let mut stmt = conn.prepare_cached(STALE_LIST).map_err(sqlite_err)?;
                let docs = stmt
                    .query_map([limit], |r| {
                        Ok(StaleDoc {
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

    async fn refresh_timeline(&self, docs: Vec<TimelineRefresh>) -> Result<()> {
        self.writer
            .run(move |conn| refresh_timeline(conn, &docs))
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.readers
            .run(|conn| conn.execute_batch("SELECT 1").map_err(sqlite_err))
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
}

/// Puts waiting documents into the timeline in one immediate transaction (see
/// [`Store::refresh_timeline`]).
fn refresh_timeline(conn: &mut Connection, docs: &[TimelineRefresh]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    for TimelineRefresh { doc, index } in docs {
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
