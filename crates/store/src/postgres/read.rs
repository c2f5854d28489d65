//! Reads of documents: the current version, one version, history, the live documents
//! in key order (for reindexing), and scans of one type by
//! last update (bulk reads).

use tokio_postgres::Row;

use super::{PgStore, param_refs, pg_err, query_with_local};
use crate::{
    Change, Current, HistoryQuery, HistoryRow, HistoryScope, LiveDoc, Micros, Result, Scan, Version,
};

/// The newest version is the current one: versions and the pointer are written
/// together, so one backward scan of the primary key finds the current state.
const READ: &str = "SELECT version, last_updated, body IS NULL, body
    FROM resource_versions WHERE res_type = $1 AND res_id = $2
    ORDER BY version DESC LIMIT 1";

/// [`READ`] for several documents, each numbered by its position (`ord`, from 1).
const READ_MANY: &str = "SELECT k.ord, v.version, v.last_updated, v.body IS NULL, v.body
    FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k (res_type, res_id, ord)
    CROSS JOIN LATERAL (
        SELECT version, last_updated, body FROM resource_versions
        WHERE res_type = k.res_type AND res_id = k.res_id
        ORDER BY version DESC LIMIT 1
    ) v";

const VREAD: &str = "SELECT res_type, res_id, version, last_updated, change, body
    FROM resource_versions WHERE res_type = $1 AND res_id = $2 AND version = $3";

const LIVE_ALL: &str = "SELECT r.rid, r.res_type, r.res_id, r.version, v.body
    FROM resources r JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    WHERE NOT r.deleted AND r.rid > $1 ORDER BY r.rid LIMIT $2";

const LIVE_TYPE: &str = "SELECT r.rid, r.res_type, r.res_id, r.version, v.body
    FROM resources r JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    WHERE NOT r.deleted AND r.rid > $1 AND r.res_type = $3 ORDER BY r.rid LIMIT $2";

/// The current versions of one type written within a span, in `rid` order; no search
/// index is read. Each body is looked up by the version's primary key, one row at a time
/// (a subquery per row), so the plan cannot turn into a join over all of the type's
/// versions.
const SCAN: &str = "SELECT r.rid, r.res_type, r.res_id, r.version,
        (SELECT v.body FROM resource_versions v
         WHERE v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version)
    FROM (SELECT rid, res_type, res_id, version FROM resources
          WHERE NOT deleted AND res_type = $1 AND rid > $2
            AND last_updated >= $3 AND last_updated <= $4
          ORDER BY rid LIMIT $5) r
    ORDER BY r.rid";

pub(super) fn statements() -> Vec<String> {
    [READ, READ_MANY, VREAD, LIVE_ALL, LIVE_TYPE, SCAN]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

pub(super) async fn read(store: &PgStore, res_type: &str, id: &str) -> Result<Option<Current>> {
    let client = store.client().await?;
    let stmt = client.prepare_cached(READ).await.map_err(pg_err)?;
    let row = client
        .query_opt(&stmt, &[&res_type, &id])
        .await
        .map_err(pg_err)?;
    Ok(row.map(|r| Current {
        version: r.get(0),
        last_updated: r.get(1),
        deleted: r.get(2),
        body: r.get(3),
    }))
}

pub(super) async fn read_many(
    store: &PgStore,
    keys: &[(&str, &str)],
) -> Result<Vec<Option<Current>>> {
    let mut out: Vec<Option<Current>> = vec![None; keys.len()];
    if keys.is_empty() {
        return Ok(out);
    }
    let types: Vec<&str> = keys.iter().map(|k| k.0).collect();
    let ids: Vec<&str> = keys.iter().map(|k| k.1).collect();
    let client = store.client().await?;
    let stmt = client.prepare_cached(READ_MANY).await.map_err(pg_err)?;
    for r in client.query(&stmt, &[&types, &ids]).await.map_err(pg_err)? {
        let ord: i64 = r.get(0);
        out[(ord - 1) as usize] = Some(Current {
            version: r.get(1),
            last_updated: r.get(2),
            deleted: r.get(3),
            body: r.get(4),
        });
    }
    Ok(out)
}

pub(super) async fn vread(
    store: &PgStore,
    res_type: &str,
    id: &str,
    version: i64,
) -> Result<Option<Version>> {
    let client = store.client().await?;
    let stmt = client.prepare_cached(VREAD).await.map_err(pg_err)?;
    let row = client
        .query_opt(&stmt, &[&res_type, &id, &version])
        .await
        .map_err(pg_err)?;
    row.map(|r| version_from_row(&r, 0)).transpose()
}

pub(super) async fn history(
    store: &PgStore,
    scope: HistoryScope<'_>,
    q: &HistoryQuery,
) -> Result<Vec<HistoryRow>> {
    let client = store.client().await?;
    let (sql, args) = crate::sql::history(scope, q, crate::sql::pg_placeholder);
    let params = super::arg_params(args);
    let rows = client
        .query(&sql, &param_refs(&params))
        .await
        .map_err(pg_err)?;
    rows.iter()
        .map(|r| {
            Ok(HistoryRow {
                seq: r.get(0),
                version: version_from_row(r, 1)?,
                created: r.get(7),
            })
        })
        .collect()
}

pub(super) async fn live_documents(
    store: &PgStore,
    scope: Option<&str>,
    after: i64,
    limit: u32,
) -> Result<Vec<LiveDoc>> {
    let client = store.client().await?;
    let limit = i64::from(limit);
    let rows = match scope {
        None => {
            let stmt = client.prepare_cached(LIVE_ALL).await.map_err(pg_err)?;
            client.query(&stmt, &[&after, &limit]).await
        }
        Some(t) => {
            let stmt = client.prepare_cached(LIVE_TYPE).await.map_err(pg_err)?;
            client.query(&stmt, &[&after, &limit, &t]).await
        }
    }
    .map_err(pg_err)?;
    Ok(rows.iter().map(live_doc).collect())
}

/// A scan is planned for its values (a custom plan), unlike every other statement: which
/// index reaches the type's documents best depends on how many it has (a generic plan
/// walked all of `resources_rid` for a type with none, a second per call on a million
/// documents). Planning costs under a millisecond against tens for the page.
pub(super) async fn scan(store: &PgStore, scan: &Scan<'_>) -> Result<Vec<LiveDoc>> {
    let client = store.client().await?;
    let since = scan.since.unwrap_or(Micros::MIN);
    let limit = i64::from(scan.limit);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&scan.res_type, &scan.after, &since, &scan.until, &limit];
    let stmt = client.prepare_cached(SCAN).await.map_err(pg_err)?;
    let rows = query_with_local(
        &client,
        "SET LOCAL plan_cache_mode = force_custom_plan",
        &stmt,
        &params,
    )
    .await?;
    Ok(rows.iter().map(live_doc).collect())
}

fn live_doc(r: &Row) -> LiveDoc {
    LiveDoc {
        rid: r.get(0),
        res_type: r.get(1),
        id: r.get(2),
        version: r.get(3),
        body: r.get(4),
    }
}

fn version_from_row(r: &Row, at: usize) -> Result<Version> {
    Ok(Version {
        res_type: r.get(at),
        id: r.get(at + 1),
        version: r.get(at + 2),
        last_updated: r.get(at + 3),
        change: Change::parse(r.get(at + 4))?,
        body: r.get(at + 5),
    })
}
