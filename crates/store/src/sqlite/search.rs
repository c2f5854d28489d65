//! Searches: pages (through the timeline when a path is given and complete), counts,
//! plans, and the documents `_include` adds.

use rusqlite::Row;

use super::SqliteStore;
use crate::query::ValKind;
use crate::{Hit, Hits, Result, SearchQuery, Val};

/// Whether documents wait to be put into the timeline (see migration 0005).
pub(super) const STALE_ANY: &str = "SELECT EXISTS (SELECT 1 FROM timeline_stale)";

pub(super) async fn search(store: &SqliteStore, q: &SearchQuery) -> Result<Hits> {
    let d = &crate::search_sql::SQLITE;
    let kinds = crate::search_sql::sort_kinds(&q.sort);
    if let Some((sql, args)) = crate::search_sql::timeline_page(d, q) {
        let kinds = kinds.clone();
        let rows = store
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
    let hits = store
        .query_dynamic(sql, args, move |r| hit_from_row(r, 0, &kinds))
        .await?;
    Ok(crate::search_sql::into_page(hits, q))
}

pub(super) async fn count(store: &SqliteStore, q: &SearchQuery) -> Result<u64> {
    let d = &crate::search_sql::SQLITE;
    if let Some((sql, args)) = crate::search_sql::timeline_count(d, q) {
        let rows = store
            .query_dynamic(sql, args, |r| {
                Ok((r.get::<_, bool>(0)?, r.get::<_, i64>(1)?))
            })
            .await?;
        if let Some((false, n)) = rows.first() {
            return Ok((*n).max(0) as u64);
        }
    }
    let (sql, args) = crate::search_sql::count(d, q);
    let counts = store
        .query_dynamic(sql, args, |r| r.get::<_, i64>(0))
        .await?;
    Ok(counts.first().map_or(0, |c| (*c).max(0) as u64))
}

pub(super) async fn explain(store: &SqliteStore, q: &SearchQuery) -> Result<String> {
    let d = &crate::search_sql::SQLITE;
    let stale = store
        .query_dynamic(STALE_ANY.to_owned(), vec![], |r| r.get::<_, bool>(0))
        .await?
        .first()
        .copied()
        .unwrap_or(true);
    let (sql, args) = match crate::search_sql::timeline_page(d, q) {
        Some(timeline) if !stale => timeline,
        _ => crate::search_sql::page(d, q),
    };
    let steps = store
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

pub(super) async fn referenced(
    store: &SqliteStore,
    rids: &[i64],
    keys: &[i64],
) -> Result<Vec<(String, String)>> {
    let (sql, args) = crate::search_sql::referenced(&crate::search_sql::SQLITE, rids, keys);
    store
        .query_dynamic(sql, args, |r| Ok((r.get(0)?, r.get(1)?)))
        .await
}

pub(super) async fn fetch(store: &SqliteStore, docs: &[(String, String)]) -> Result<Vec<Hit>> {
    if docs.is_empty() {
        return Ok(Vec::new());
    }
    let (sql, args) = crate::search_sql::fetch(&crate::search_sql::SQLITE, docs);
    store
        .query_dynamic(sql, args, |r| hit_from_row(r, 0, &[]))
        .await
}

/// The hit in the columns of a page query, starting at column `at`.
pub(super) fn hit_from_row(r: &Row<'_>, at: usize, kinds: &[ValKind]) -> rusqlite::Result<Hit> {
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
