//! Searches: pages (through the timeline when a path is given and complete), counts,
//! plans, and the documents `_include` adds.

use tokio_postgres::Row;

use super::{PgStore, pg_err};
use crate::query::ValKind;
use crate::{Hit, Hits, Result, SearchQuery, Val};

/// Whether documents wait to be put into the timeline (see migration 0005).
pub(super) const STALE_ANY: &str = "SELECT EXISTS (SELECT 1 FROM timeline_stale)";

pub(super) async fn search(store: &PgStore, q: &SearchQuery) -> Result<Hits> {
    let d = &crate::search_sql::POSTGRES;
    let kinds = crate::search_sql::sort_kinds(&q.sort);
    if let Some((sql, args)) = crate::search_sql::timeline_page(d, q) {
        let rows = store.query_dynamic(&sql, args).await?;
        if rows.first().is_some_and(|r| !r.get::<_, bool>(0)) {
            let hits = rows
                .iter()
                .filter(|r| r.get::<_, Option<i64>>(1).is_some())
                .map(|r| hit_from_row(r, 1, &kinds))
                .collect();
            return Ok(crate::search_sql::into_page(hits, q));
        }
    }
    let (sql, args) = crate::search_sql::page(d, q);
    let rows = store.query_dynamic(&sql, args).await?;
    Ok(crate::search_sql::into_page(
        rows.iter().map(|r| hit_from_row(r, 0, &kinds)).collect(),
        q,
    ))
}

pub(super) async fn count(store: &PgStore, q: &SearchQuery) -> Result<u64> {
    let d = &crate::search_sql::POSTGRES;
    if let Some((sql, args)) = crate::search_sql::timeline_count(d, q) {
        let rows = store.query_dynamic(&sql, args).await?;
        if let Some(r) = rows.first().filter(|r| !r.get::<_, bool>(0)) {
            return Ok(r.get::<_, i64>(1).max(0) as u64);
        }
    }
    let (sql, args) = crate::search_sql::count(d, q);
    let rows = store.query_dynamic(&sql, args).await?;
    Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
}

/// The planner's row estimate for the counting statement, planned for these values
/// (the values are written into the statement, so it gets a custom plan and the
/// columns' statistics, not the generic plan searches run with). `None` when the count
/// reads the per-value token counts, which is as cheap as an estimate.
pub(super) async fn estimate(store: &PgStore, q: &SearchQuery) -> Result<Option<u64>> {
    let d = &crate::search_sql::POSTGRES;
    let (sql, args) = crate::search_sql::count(d, q);
    if sql.contains("idx_token_counts") {
        return Ok(None);
    }
    // `$10` before `$1`, so a shorter placeholder never matches a longer one's prefix.
    let mut sql = sql;
    for (i, a) in args.iter().enumerate().rev() {
        sql = sql.replace(&format!("${}", i + 1), &literal(a));
    }
    let client = store.client().await?;
    let messages = client
        .simple_query(&format!("EXPLAIN (FORMAT JSON) {sql}"))
        .await
        .map_err(pg_err)?;
    let text: String = messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    let plan: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| crate::StoreError::Backend(format!("EXPLAIN answered no JSON: {e}")))?;
    let top = &plan[0]["Plan"];
    // The counting aggregate's input holds the estimate.
    let rows = match top["Node Type"].as_str() {
        Some("Aggregate") => &top["Plans"][0]["Plan Rows"],
        _ => &top["Plan Rows"],
    };
    Ok(rows.as_f64().map(|r| r.max(0.0).round() as u64))
}

pub(super) async fn explain(store: &PgStore, q: &SearchQuery) -> Result<String> {
    let d = &crate::search_sql::POSTGRES;
    let client = store.client().await?;
    let stale = client
        .query_one(STALE_ANY, &[])
        .await
        .map_err(pg_err)?
        .get::<_, bool>(0);
    let (sql, args) = match crate::search_sql::timeline_page(d, q) {
        Some(timeline) if !stale => timeline,
        _ => crate::search_sql::page(d, q),
    };
    // A named prepared statement, executed with literal values: the same generic
    // plan the search gets on every pooled connection.
    let values: Vec<String> = args.iter().map(literal).collect();
    let values = if values.is_empty() {
        String::new()
    } else {
        format!("({})", values.join(", "))
    };
    client
        .batch_execute(&format!("PREPARE ember_explain AS {sql}"))
        .await
        .map_err(pg_err)?;
    let plan = client
        .simple_query(&format!(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE ember_explain{values}"
        ))
        .await;
    client
        .batch_execute("DEALLOCATE ember_explain")
        .await
        .map_err(pg_err)?;
    let text = plan
        .map_err(pg_err)?
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        })
        .collect();
    Ok(text)
}

pub(super) async fn referenced(
    store: &PgStore,
    rids: &[i64],
    keys: &[i64],
) -> Result<Vec<(String, String)>> {
    let (sql, args) = crate::search_sql::referenced(&crate::search_sql::POSTGRES, rids, keys);
    let rows = store.query_dynamic(&sql, args).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(super) async fn fetch(store: &PgStore, docs: &[(String, String)]) -> Result<Vec<Hit>> {
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    let (sql, args) = crate::search_sql::fetch(&crate::search_sql::POSTGRES, docs);
    let rows = store.query_dynamic(&sql, args).await?;
    Ok(rows.iter().map(|r| hit_from_row(r, 0, &[])).collect())
}

/// The hit in the columns of a page query, starting at column `at`.
pub(super) fn hit_from_row(r: &Row, at: usize, kinds: &[ValKind]) -> Hit {
    Hit {
        rid: r.get(at),
        res_type: r.get(at + 1),
        id: r.get(at + 2),
        version: r.get(at + 3),
        last_updated: r.get(at + 4),
        body: r.get(at + 5),
        sort_values: kinds
            .iter()
            .enumerate()
            .map(|(i, k)| match k {
                ValKind::Text => Val::Text(r.get(at + 6 + i)),
                ValKind::Int => Val::Int(r.get(at + 6 + i)),
                ValKind::Float => Val::Float(r.get(at + 6 + i)),
            })
            .collect(),
    }
}

/// A bind value as an SQL literal (for `EXECUTE` in [`Store::explain`]).
fn literal(a: &crate::sql::Arg) -> String {
    match a {
        crate::sql::Arg::Text(t) => format!("'{}'", t.replace('\'', "''")),
        crate::sql::Arg::Int(i) => format!("'{i}'"),
        crate::sql::Arg::Float(f) => format!("'{f:?}'"),
    }
}
