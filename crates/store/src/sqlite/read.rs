//! Reads of documents: the current version, one version, history, the live documents
//! in key order (for reindexing), and scans of one type by
//! last update (bulk reads).

use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, sqlite_err, sqlite_value};
use crate::{
    Change, Current, HistoryQuery, HistoryRow, HistoryScope, LiveDoc, Micros, Result, Scan, Version,
};

/// The newest version is the current one: versions and the pointer are written
/// together, so one backward scan of the primary key finds the current state.
const READ: &str = "SELECT version, last_updated, body IS NULL, body
    FROM resource_versions WHERE res_type = ?1 AND res_id = ?2
    ORDER BY version DESC LIMIT 1";

const VREAD: &str = "SELECT res_type, res_id, version, last_updated, change, body
    FROM resource_versions WHERE res_type = ?1 AND res_id = ?2 AND version = ?3";

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

/// The current versions of one type written within a span, in `rid` order from
/// `resource_keys_type (res_type, rid)`; no search index is read.
const SCAN: &str = "SELECT k.rid, k.res_type, k.res_id, r.version, v.body
    FROM resource_keys k
    JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id
    JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    WHERE k.res_type = ?1 AND k.rid > ?2 AND NOT r.deleted
      AND r.last_updated >= ?3 AND r.last_updated <= ?4
    ORDER BY k.rid LIMIT ?5";

pub(super) fn statements() -> Vec<String> {
    [READ, VREAD, LIVE_ALL, LIVE_TYPE, SCAN]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

pub(super) async fn read(store: &SqliteStore, res_type: &str, id: &str) -> Result<Option<Current>> {
    let mut current = read_many(store, &[(res_type, id)]).await?;
    Ok(current.pop().flatten())
}

/// Each document's [`READ`], on one reader connection.
pub(super) async fn read_many(
    store: &SqliteStore,
    keys: &[(&str, &str)],
) -> Result<Vec<Option<Current>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<(String, String)> = keys
        .iter()
        .map(|(t, i)| ((*t).to_owned(), (*i).to_owned()))
        .collect();
    store
        .readers
        .run(move |conn| {
            let mut stmt = conn.prepare_cached(READ).map_err(sqlite_err)?;
            keys.iter()
                .map(|(t, i)| {
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
                .collect()
        })
        .await
}

pub(super) async fn vread(
    store: &SqliteStore,
    res_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<Version>> {
    let (t, i) = (res_type.to_owned(), id.to_owned());
    store
        .readers
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

pub(super) async fn history(
    store: &SqliteStore,
    scope: HistoryScope<'_>,
    q: &HistoryQuery,
) -> Result<Vec<HistoryRow>> {
    let (sql, args) = crate::sql::history(scope, q, crate::sql::sqlite_placeholder);
    let args: Vec<rusqlite::types::Value> = args.into_iter().map(sqlite_value).collect();
    store
        .readers
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

pub(super) async fn live_documents(
    store: &SqliteStore,
    scope: Option<&str>,
    after: i64,
    limit: u32,
) -> Result<Vec<LiveDoc>> {
    let scope = scope.map(str::to_owned);
    store
        .readers
        .run(move |conn| {
            let map = live_doc;
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

pub(super) async fn scan(store: &SqliteStore, scan: &Scan<'_>) -> Result<Vec<LiveDoc>> {
    let res_type = scan.res_type.to_owned();
    let (after, until, limit) = (scan.after, scan.until, scan.limit);
    let since = scan.since.unwrap_or(Micros::MIN);
    store
        .readers
        .run(move |conn| {
            conn.prepare_cached(SCAN)
                .and_then(|mut s| {
                    s.query_map(params![res_type, after, since, until, limit], live_doc)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(sqlite_err)
        })
        .await
}

fn live_doc(r: &Row<'_>) -> rusqlite::Result<LiveDoc> {
    Ok(LiveDoc {
        rid: r.get(0)?,
        res_type: r.get(1)?,
        id: r.get(2)?,
        version: r.get(3)?,
        body: r.get(4)?,
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
