//! Upkeep: folding the token-count deltas, putting documents of an earlier release
//! into the timeline, the probe and the pool's status.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;

use super::search::STALE_ANY;
use super::write::{REINDEX_PUT_BACK, REINDEX_TAKE, TIMELINE_ROWS, timeline_params};
use super::{Param, PgStore, param_refs, pg_err};
use crate::{Maintenance, PoolStatus, Result, StaleDoc, TimelineRefresh};

/// Folds the deltas of up to `$1` token values into one row each. A value another
/// instance is folding at the same moment waits on its rows and then finds them gone;
/// deltas committed meanwhile stay for the next round. Every sum is kept either way.
const COMPACT_COUNTS: &str = "WITH v AS (
        SELECT DISTINCT p, code, system FROM idx_token_counts WHERE delta LIMIT $1
    ), d AS (
        DELETE FROM idx_token_counts c USING v
        WHERE c.p = v.p AND c.code = v.code AND c.system = v.system
        RETURNING c.p, c.system, c.code, c.n
    ), i AS (
        INSERT INTO idx_token_counts (p, system, code, n, delta)
        SELECT p, system, code, sum(n), false FROM d
        GROUP BY p, system, code HAVING sum(n) <> 0
    )
    SELECT count(*) FROM v";

/// The documents waiting for the timeline, in their current state.
const STALE_LIST: &str = "SELECT s.res_type, s.res_id, r.rid, r.version, v.body
    FROM timeline_stale s
    LEFT JOIN resources r ON r.res_type = s.res_type AND r.res_id = s.res_id
    LEFT JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    LIMIT $1";

/// Takes a document off the waiting list.
const STALE_DONE: &str = "DELETE FROM timeline_stale WHERE res_type = $1 AND res_id = $2";

/// Takes a document off the waiting list if its current version kept the timeline.
const STALE_SETTLED: &str = "DELETE FROM timeline_stale s USING resources r
    WHERE s.res_type = $1 AND s.res_id = $2
      AND r.res_type = s.res_type AND r.res_id = s.res_id AND r.timeline_version = r.version";

/// A deleted document has no entries: records that for version `$2`, if current.
const TIMELINE_DELETED: &str = "WITH cur AS (
        UPDATE resources SET timeline_version = version
        WHERE rid = $1 AND version = $2 AND deleted RETURNING rid
    ), d AS (DELETE FROM idx_timeline WHERE rid IN (SELECT rid FROM cur))
    SELECT count(*) FROM cur";

pub(super) fn statements() -> Vec<String> {
    [
        COMPACT_COUNTS,
        STALE_LIST,
        STALE_ANY,
        STALE_DONE,
        STALE_SETTLED,
        TIMELINE_DELETED,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

#[async_trait]
impl Maintenance for PgStore {
    async fn compact_counts(&self, limit: u32) -> Result<u32> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(COMPACT_COUNTS)
            .await
            .map_err(pg_err)?;
        let row = client
            .query_one(&stmt, &[&i64::from(limit)])
            .await
            .map_err(pg_err)?;
        let folded = u32::try_from(row.get::<_, i64>(0)).unwrap_or(u32::MAX);
        if folded > 0 {
            // The deltas are a queue: reclaim their space now rather than when
            // autovacuum, busy with the big index tables during a bulk load, gets to it
            // (a 1-million-resource load left 800 MB of dead deltas otherwise).
            if let Err(e) = client
                .batch_execute("VACUUM (SKIP_LOCKED) idx_token_counts")
                .await
            {
                tracing::debug!(error = %e, "cannot vacuum idx_token_counts; autovacuum will");
            }
        }
        Ok(folded)
    }

    async fn stale_timeline(&self, limit: u32) -> Result<Vec<StaleDoc>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(STALE_LIST).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&i64::from(limit)])
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| StaleDoc {
                res_type: r.get(0),
                id: r.get(1),
                rid: r.get(2),
                // A pointer row is always there; version 0 never is current.
                version: r.get::<_, Option<i64>>(3).unwrap_or(0),
                body: r.get(4),
            })
            .collect())
    }

    async fn refresh_timeline(&self, docs: Vec<TimelineRefresh>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let take = tx.prepare_cached(REINDEX_TAKE).await.map_err(pg_err)?;
        let put_back = tx.prepare_cached(REINDEX_PUT_BACK).await.map_err(pg_err)?;
        let rows = tx.prepare_cached(&TIMELINE_ROWS).await.map_err(pg_err)?;
        let deleted = tx.prepare_cached(TIMELINE_DELETED).await.map_err(pg_err)?;
        let done = tx.prepare_cached(STALE_DONE).await.map_err(pg_err)?;
        let settled = tx.prepare_cached(STALE_SETTLED).await.map_err(pg_err)?;
        for TimelineRefresh { doc, index } in &docs {
            let key: [&(dyn ToSql + Sync); 2] = [&doc.res_type, &doc.id];
            let Some(rid) = doc.rid else {
                tx.execute(&done, &key).await.map_err(pg_err)?;
                continue;
            };
            let current = if doc.body.is_none() {
                let row = tx
                    .query_one(&deleted, &[&rid, &doc.version])
                    .await
                    .map_err(pg_err)?;
                row.get::<_, i64>(0) == 1
            } else if let Some(held) = tx
                .query_opt(&take, &[&rid, &doc.version])
                .await
                .map_err(pg_err)?
            {
                // Held like a reindexed document (see REINDEX_TAKE); the pointer row
                // goes back with the timeline version set.
                let (res_type, res_id, last_updated): (String, String, i64) =
                    (held.get(0), held.get(1), held.get(2));
                tx.execute(
                    &put_back,
                    &[&rid, &doc.version, &res_type, &res_id, &last_updated],
                )
                .await
                .map_err(pg_err)?;
                let mut params: Vec<Param> = vec![Box::new(rid)];
                params.extend(timeline_params(index));
                tx.query_one(&rows, &param_refs(&params))
                    .await
                    .map_err(pg_err)?;
                true
            } else {
                false
            };
            let off = if current { &done } else { &settled };
            tx.execute(off, &key).await.map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        // Every search on a timeline path looks for waiting documents: once none are
        // left, give the list's space back now rather than when autovacuum gets to it,
        // so that the look stays a scan of an empty table.
        let left = client
            .query_one(STALE_ANY, &[])
            .await
            .map_err(pg_err)?
            .get::<_, bool>(0);
        if !left {
            if let Err(e) = client
                .batch_execute("VACUUM (SKIP_LOCKED) timeline_stale")
                .await
            {
                tracing::debug!(error = %e, "cannot vacuum timeline_stale; autovacuum will");
            }
        }
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg_err)?;
        Ok(())
    }
    fn pool_status(&self) -> PoolStatus {
        let s = self.pool.status();
        PoolStatus {
            max: s.max_size,
            open: s.size,
            idle: s.available,
            waiting: s.waiting,
        }
    }
}
