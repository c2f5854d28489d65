//! Commits: each version is one data-modifying statement (its pointer, version row and
//! index rows together); guards, a held job's progress, reindexed rows and the
//! outbox's jobs share the transaction when there are any.

use std::collections::HashSet;
use std::sync::{LazyLock, OnceLock};

use deadpool_postgres::GenericClient;
use futures_util::future::{join_all, join4};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{Param, PgStore, param_refs, pg_err, refused_after_failure};
use crate::{
    Commit, Committed, IndexRows, NewJob, Progress, Reindexed, Result, Slot, StoreError, Write,
};

/// Creates the current pointer only if absent, then the version row and the index rows
/// of `parts`: a new document's statement touches only the tables it has rows for
/// (see [`Rows`]). Built once per combination; the one with every part stands for
/// all of them in [`statements`], as each other one is that statement less some parts.
fn write_new(parts: Parts) -> &'static str {
    static BY_PARTS: [OnceLock<String>; 1 << PARTS] = [const { OnceLock::new() }; 1 << PARTS];
    BY_PARTS[usize::from(parts.0)].get_or_init(|| {
        write_statement(
            "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, timeline_version)
        VALUES ($1, $2, $3, $4, $5, $3)
        ON CONFLICT (res_type, res_id) DO NOTHING
        RETURNING rid",
            8,
            Rows::New(parts),
        )
    })
}

/// Creates several new documents in one statement: the documents are bound as column
/// arrays (`$1`–`$9`, see [`new_params`]), each numbered by its position (`ord`, from
/// 1); a pointer that exists already is skipped, and so are its version and index rows.
/// It returns the `ord` of each document it created. One statement instead of one per
/// document matters because PostgreSQL's cost of a write statement is mostly its set-up
/// per table, not its rows. Built once per combination of `parts`, like [`write_new`].
fn write_new_many(parts: Parts) -> &'static str {
    static BY_PARTS: [OnceLock<String>; 1 << PARTS] = [const { OnceLock::new() }; 1 << PARTS];
    BY_PARTS[usize::from(parts.0)].get_or_init(|| {
        let mut sql = String::from(
            "WITH d AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[],
            $5::bool[], $6::text[], $7::text[], $8::int8[], $9::int8[]) WITH ORDINALITY
        AS d (res_type, res_id, version, last_updated, deleted, change, body, t_at, t_updated, ord)),
    cur AS (INSERT INTO resources (res_type, res_id, version, last_updated, deleted, timeline_version)
        SELECT res_type, res_id, version, last_updated, deleted, version FROM d ORDER BY res_type, res_id
        ON CONFLICT (res_type, res_id) DO NOTHING
        RETURNING rid, res_type, res_id),
    docs AS (SELECT cur.rid, d.* FROM cur JOIN d USING (res_type, res_id)),
    ver AS (INSERT INTO resource_versions (res_type, res_id, version, last_updated, change, body)
        SELECT res_type, res_id, version, last_updated, change, body FROM docs)",
        );
        index_ctes(&mut sql, 10, Rows::New(parts), Of::Many);
        sql.push_str("
SELECT ord FROM docs");
        sql
    })
}

/// Moves the current pointer only from the expected version ($8), adds the version
/// row and replaces the index rows.
static WRITE_NEXT: LazyLock<String> = LazyLock::new(|| {
    write_statement(
        "UPDATE resources SET version = $3, last_updated = $4, deleted = $5, timeline_version = $3
        WHERE res_type = $1 AND res_id = $2 AND version = $8
        RETURNING rid",
        9,
        Rows::Replace,
    )
});

/// One statement that writes a version: `cur` moves the pointer (and yields the
/// document's `rid` only when that worked); the version row, the removal of the old
/// index rows and the new ones (bound as arrays from parameter `first` on) all
/// depend on it. It returns 1 when the write happened, 0 when the guard failed.
fn write_statement(cur: &str, first: usize, rows: Rows) -> String {
    let mut sql = format!(
        "WITH cur AS ({cur}),
    ver AS (INSERT INTO resource_versions (res_type, res_id, version, last_updated, change, body)
        SELECT $1::text, $2::text, $3::bigint, $4::bigint, $6::text, $7::text FROM cur)"
    );
    index_ctes(&mut sql, first, rows, Of::One);
    sql.push_str("\nSELECT count(*) FROM cur");
    sql
}

/// Reindexing a document holds its pointer row by deleting it and inserting it again
/// (same values, same `rid`) in the batch's transaction, only while its current version
/// is `$2`. A concurrent write of the document waits, then finds its row gone and fails
/// its version guard (the repository retries it with a fresh snapshot); so does a
/// reindex of the same document by another job. A plain row lock would not do: the
/// waiting statement would then run on a snapshot without the new index rows and
/// leave them beside its own.
pub(super) const REINDEX_TAKE: &str = "DELETE FROM resources
    WHERE rid = $1 AND version = $2 AND NOT deleted
    RETURNING res_type, res_id, last_updated";

pub(super) const REINDEX_PUT_BACK: &str = "INSERT INTO resources
    (rid, res_type, res_id, version, last_updated, deleted, timeline_version)
    VALUES ($1, $3, $4, $2, $5, false, $2)";

/// Records a held job's progress and extends its lease, or ends the job when `$5` (its
/// finish instant) is set; no row when the committer no longer holds it. The row stays
/// locked until the commit, so no instance can claim the job meanwhile.
const PROGRESS: &str = "UPDATE jobs SET progress = COALESCE($3, progress), due = $4,
        state = CASE WHEN $5::bigint IS NULL THEN state ELSE 'done' END,
        finished_at = COALESCE($5::bigint, finished_at)
    WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING id";

/// Enqueues a job; no row when its idempotency key has a job already.
const ENQUEUE: &str = "INSERT INTO jobs
    (id, kind, payload, state, due, idempotency_key, trace, created_at)
    VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7)
    ON CONFLICT (idempotency_key) DO NOTHING RETURNING id";

const JOB_OF_KEY: &str = "SELECT id FROM jobs WHERE idempotency_key = $1";

pub(super) fn statements() -> Vec<String> {
    vec![
        write_new(Parts::ALL).to_owned(),
        write_new_many(Parts::ALL).to_owned(),
        WRITE_NEXT.clone(),
        REINDEX_TAKE.to_owned(),
        REINDEX_PUT_BACK.to_owned(),
        REINDEX_ROWS.clone(),
        TIMELINE_ROWS.clone(),
        PROGRESS.to_owned(),
        ENQUEUE.to_owned(),
        JOB_OF_KEY.to_owned(),
    ]
}

pub(super) async fn commit(store: &PgStore, c: Commit) -> Result<Committed> {
    let mut client = store.client().await?;
    let alone =
        c.guards.is_empty() && c.reindexed.is_empty() && c.jobs.is_empty() && c.progress.is_empty();
    if let ([single], true) = (c.writes.as_slice(), alone) {
        // One statement: atomic without a transaction.
        return match write_one(&client, single).await? {
            true => Ok(Committed::Stored { jobs: Vec::new() }),
            false => Err(StoreError::Conflict { index: 0 }),
        };
    }
    let tx = client.transaction().await.map_err(pg_err)?;
    // Locks in key order, so two commits with overlapping guards cannot deadlock.
    let mut locks: Vec<i64> = c.guards.iter().map(|g| g.lock).collect();
    locks.sort_unstable();
    locks.dedup();
    for lock in locks {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
            .await
            .map_err(pg_err)?;
    }
    // Each statement below sees every commit that finished before the locks were
    // granted (READ COMMITTED takes a snapshot per statement).
    for (index, guard) in c.guards.iter().enumerate() {
        let (sql, args) = crate::search_sql::page(&crate::search_sql::POSTGRES, &guard.query);
        let kinds = crate::search_sql::sort_kinds(&guard.query.sort);
        let params = super::arg_params(args);
        let rows = tx.query(&sql, &param_refs(&params)).await.map_err(pg_err)?;
        if !rows.is_empty() {
            let hits = rows
                .iter()
                .map(|r| super::search::hit_from_row(r, 0, &kinds))
                .collect();
            let hits = crate::search_sql::into_page(hits, &guard.query).hits;
            return Ok(Committed::Matched { index, hits });
        }
    }
    // The held jobs' progress, the writes, the reindexed rows and the new jobs do not
    // depend on one another's results, so their statements are sent together and
    // PostgreSQL answers them in one round trip instead of one each. They are judged
    // in that order, as if run one after the other; on a failure, dropping the
    // transaction rolls it back.
    let (held, written, reindexed, jobs) = join4(
        join_all(c.progress.iter().map(|p| hold(&tx, p))),
        write_all(&tx, &c.writes),
        reindex(&tx, &c.reindexed),
        join_all(c.jobs.iter().map(|job| enqueue(&tx, job))),
    )
    .await;
    let jobs = first_failure(
        held.into_iter()
            .chain([written, reindexed])
            .map(|r| r.map(|()| None))
            .chain(jobs.into_iter().map(|r| r.map(Some))),
    )?
    .into_iter()
    .flatten()
    .collect();
    tx.commit().await.map_err(pg_err)?;
    Ok(Committed::Stored { jobs })
}

/// The values of `results`, or the first failure in their order that is not only the
/// consequence of an earlier statement's: when statements are sent together, one that
/// PostgreSQL ran after a failed one fails as `in_failed_sql_transaction` (25P02),
/// whichever was sent first.
fn first_failure<T>(results: impl IntoIterator<Item = Result<T>>) -> Result<Vec<T>> {
    let mut values = Vec::new();
    let mut consequence = None;
    for r in results {
        match r {
            Ok(v) => values.push(v),
            Err(e) if refused_after_failure(&e) => {
                consequence.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    match consequence {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

/// Records a held job's progress, or fails the commit when the lease is lost.
async fn hold<C: GenericClient>(client: &C, p: &Progress) -> Result<()> {
    let stmt = client.prepare_cached(PROGRESS).await.map_err(pg_err)?;
    let held = client
        .query_opt(
            &stmt,
            &[
                &p.job,
                &p.owner,
                &p.progress,
                &p.lease_until,
                &p.finished_at,
            ],
        )
        .await
        .map_err(pg_err)?;
    match held {
        Some(_) => Ok(()),
        None => Err(StoreError::LeaseLost(p.job.clone())),
    }
}

/// Enqueues a job and returns its id, or the id of the job its key has already.
async fn enqueue<C: GenericClient>(client: &C, job: &NewJob) -> Result<String> {
    let stmt = client.prepare_cached(ENQUEUE).await.map_err(pg_err)?;
    let inserted = client
        .query_opt(
            &stmt,
            &[
                &job.id,
                &job.kind,
                &job.payload,
                &job.due,
                &job.key,
                &job.trace,
                &job.created_at,
            ],
        )
        .await
        .map_err(pg_err)?;
    if let Some(row) = inserted {
        return Ok(row.get(0));
    }
    let stmt = client.prepare_cached(JOB_OF_KEY).await.map_err(pg_err)?;
    let row = client.query_one(&stmt, &[&job.key]).await.map_err(pg_err)?;
    Ok(row.get(0))
}

/// Replaces the index rows of each document whose current version is still the one
/// they were computed from; a document written meanwhile was indexed by that write.
async fn reindex<C: GenericClient>(tx: &C, docs: &[Reindexed]) -> Result<()> {
    if docs.is_empty() {
        return Ok(());
    }
    let take = tx.prepare_cached(REINDEX_TAKE).await.map_err(pg_err)?;
    let put_back = tx.prepare_cached(REINDEX_PUT_BACK).await.map_err(pg_err)?;
    let rows = tx.prepare_cached(&REINDEX_ROWS).await.map_err(pg_err)?;
    for doc in docs {
        let Some(held) = tx
            .query_opt(&take, &[&doc.rid, &doc.version])
            .await
            .map_err(pg_err)?
        else {
            // Written (or deleted) meanwhile: that write indexed it.
            continue;
        };
        let (res_type, res_id, last_updated): (String, String, i64) =
            (held.get(0), held.get(1), held.get(2));
        tx.execute(
            &put_back,
            &[&doc.rid, &doc.version, &res_type, &res_id, &last_updated],
        )
        .await
        .map_err(pg_err)?;
        let mut params: Vec<Param> = vec![Box::new(doc.rid)];
        params.extend(index_params(&[&doc.index], Parts::ALL, Of::One));
        tx.query_one(&rows, &param_refs(&params))
            .await
            .map_err(pg_err)?;
    }
    Ok(())
}

/// Writes the versions of a commit. Several new documents, each written once, go in one
/// statement ([`write_new_many`]) after the next versions; otherwise each version is
/// one statement, in order.
async fn write_all<C: GenericClient>(client: &C, writes: &[Write]) -> Result<()> {
    let new: Vec<usize> = (0..writes.len())
        .filter(|&i| writes[i].expected.is_none())
        .collect();
    let mut docs = HashSet::new();
    let distinct = writes
        .iter()
        .all(|w| docs.insert((w.res_type.as_str(), w.id.as_str())));
    let together = new.len() > 1 && distinct;
    for (index, w) in writes.iter().enumerate() {
        if together && w.expected.is_none() {
            continue;
        }
        if !write_one(client, w).await? {
            return Err(StoreError::Conflict { index });
        }
    }
    if together {
        let batch: Vec<&Write> = new.iter().map(|&i| &writes[i]).collect();
        if let Some(k) = write_many(client, &batch).await? {
            return Err(StoreError::Conflict { index: new[k] });
        }
    }
    Ok(())
}

/// Creates the documents `writes` in one statement; `Some(k)` when `writes[k]` exists
/// already (the statement then wrote the others, so the transaction must roll back).
async fn write_many<C: GenericClient>(client: &C, writes: &[&Write]) -> Result<Option<usize>> {
    let parts = writes
        .iter()
        .fold(Parts::NONE, |parts, w| parts.union(Parts::of(&w.index)));
    let stmt = client
        .prepare_cached(write_new_many(parts))
        .await
        .map_err(pg_err)?;
    let params = new_params(writes, parts);
    let rows = match client.query(&stmt, &param_refs(&params)).await {
        Ok(rows) => rows,
        // A version row that exists already (a concurrent writer got there first):
        // the statement does not say whose, so the first document stands for all.
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Ok(Some(0)),
        Err(e) => return Err(pg_err(e)),
    };
    if rows.len() == writes.len() {
        return Ok(None);
    }
    let created: HashSet<i64> = rows.iter().map(|r| r.get::<_, i64>(0)).collect();
    Ok((1..)
        .zip(0..writes.len())
        .find_map(|(ord, k)| (!created.contains(&ord)).then_some(k)))
}

async fn write_one<C: GenericClient>(client: &C, w: &Write) -> Result<bool> {
    let deleted = w.body.is_none();
    let mut params: Vec<Param> = vec![
        Box::new(w.res_type.clone()),
        Box::new(w.id.clone()),
        Box::new(w.version),
        Box::new(w.last_updated),
        Box::new(deleted),
        Box::new(w.change.as_str()),
        Box::new(w.body.clone()),
    ];
    // A next version also binds the version it expects to replace.
    let (sql, parts) = match w.expected {
        None => {
            let parts = Parts::of(&w.index);
            (write_new(parts), parts)
        }
        Some(expected) => {
            params.push(Box::new(expected));
            (WRITE_NEXT.as_str(), Parts::ALL)
        }
    };
    params.extend(index_params(&[&w.index], parts, Of::One));
    let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
    match client.query_one(&stmt, &param_refs(&params)).await {
        Ok(row) => Ok(row.get::<_, i64>(0) == 1),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
        Err(e) => Err(pg_err(e)),
    }
}

/// Replaces the index rows of document `$1` (bound from `$2` on), on a snapshot taken
/// after its pointer row is held.
static REINDEX_ROWS: LazyLock<String> = LazyLock::new(|| {
    let mut sql = String::from("WITH cur AS (SELECT $1::bigint AS rid)");
    index_ctes(&mut sql, 2, Rows::Replace, Of::One);
    sql.push_str("\nSELECT count(*) FROM cur");
    sql
});

/// Replaces the timeline entries of document `$1` (bound from `$2` on), on a snapshot
/// taken after its pointer row is held.
pub(super) static TIMELINE_ROWS: LazyLock<String> = LazyLock::new(|| {
    let mut sql = String::from("WITH cur AS (SELECT $1::bigint AS rid)");
    timeline_ctes(&mut sql, 2, Rows::Replace, Of::One);
    sql.push_str("\nSELECT count(*) FROM cur");
    sql
});

/// The index rows a statement writes for the document in `cur`.
#[derive(Clone, Copy, PartialEq)]
enum Rows {
    /// It was just inserted, with a new `rid`, so it has no rows yet: only those of
    /// these parts are inserted and nothing is removed (each part, even of no row,
    /// opens its table and indexes, and the token part runs the count trigger).
    New(Parts),
    /// Its rows of every part are replaced.
    Replace,
}

impl Rows {
    fn parts(self) -> Parts {
        match self {
            Rows::New(parts) => parts,
            Rows::Replace => Parts::ALL,
        }
    }
}

/// Which index parts of a document a statement writes, one bit each: the tables of
/// [`INDEX_COLUMNS`] in their order, then the full text, then the timeline.
#[derive(Clone, Copy, PartialEq)]
struct Parts(u16);

const PARTS: usize = INDEX_COLUMNS.len() + 2;
const TEXT: usize = INDEX_COLUMNS.len();
const TIMELINE: usize = INDEX_COLUMNS.len() + 1;

impl Parts {
    const ALL: Parts = Parts((1 << PARTS) - 1);
    const NONE: Parts = Parts(0);

    fn union(self, other: Parts) -> Parts {
        Parts(self.0 | other.0)
    }

    /// The parts `rows` has rows for.
    fn of(rows: &IndexRows) -> Parts {
        let present = [
            !rows.strings.is_empty(),
            !rows.tokens.is_empty(),
            !rows.dates.is_empty(),
            !rows.numbers.is_empty(),
            !rows.quantities.is_empty(),
            !rows.references.is_empty(),
            !rows.uris.is_empty(),
            !rows.texts.is_empty(),
            !rows.timeline.entries.is_empty(),
        ];
        Parts(
            present
                .iter()
                .enumerate()
                .filter(|(_, p)| **p)
                .fold(0, |bits, (i, _)| bits | 1 << i),
        )
    }

    fn has(self, part: usize) -> bool {
        self.0 & (1 << part) != 0
    }
}

/// Which documents a statement's index CTEs write rows for.
#[derive(Clone, Copy, PartialEq)]
enum Of {
    /// The one document in `cur`; the rows are bound as plain column arrays.
    One,
    /// The documents in `docs`; each row array is preceded by an array of the `ord` of
    /// the row's document.
    Many,
}

impl Of {
    /// The `FROM` clause that pairs the rows `u (cols)`, bound from parameter `n` on
    /// with element types `types`, with their document, and the document's `rid`.
    fn rows(self, n: &mut usize, cols: &[&str], types: &[&str]) -> (String, &'static str) {
        let mut arrays = Vec::new();
        if self == Of::Many {
            arrays.push(format!("${n}::int8[]"));
            *n += 1;
        }
        for ty in types {
            arrays.push(format!("${n}::{ty}[]"));
            *n += 1;
        }
        let arrays = arrays.join(", ");
        let cols = cols.join(", ");
        match self {
            Of::One => (format!("cur, unnest({arrays}) AS u ({cols})"), "cur.rid"),
            Of::Many => (
                format!("docs JOIN unnest({arrays}) AS u (ord, {cols}) USING (ord)"),
                "docs.rid",
            ),
        }
    }

    /// The table that holds the statement's documents.
    fn table(self) -> &'static str {
        match self {
            Of::One => "cur",
            Of::Many => "docs",
        }
    }
}

/// Appends the CTEs that remove the index rows of the documents `of` (unless they are
/// new) and insert the new ones, bound as arrays from parameter `first` on (see
/// [`index_params`]).
fn index_ctes(sql: &mut String, first: usize, rows: Rows, of: Of) {
    let parts = rows.parts();
    let mut n = first;
    let docs = of.table();
    let remove = |sql: &mut String, table: &str| {
        if rows == Rows::Replace {
            sql.push_str(&format!(
                ",\n    d_{table} AS (DELETE FROM {table} WHERE rid IN (SELECT rid FROM {docs}))"
            ));
        }
    };
    for (i, (table, cols)) in INDEX_COLUMNS.iter().enumerate() {
        remove(sql, table);
        if !parts.has(i) {
            continue;
        }
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let types: Vec<&str> = cols.iter().map(|(_, ty)| *ty).collect();
        let (from, rid) = of.rows(&mut n, &names, &types);
        let values: Vec<String> = names.iter().map(|c| format!("u.{c}")).collect();
        sql.push_str(&format!(
            ",\n    i_{table} AS (INSERT INTO {table} (rid, {names}) SELECT {rid}, {values} FROM {from})",
            names = names.join(", "),
            values = values.join(", "),
        ));
    }
    remove(sql, "idx_text");
    if parts.has(TEXT) {
        let (from, rid) = of.rows(&mut n, &["kind", "doc"], &["int2", "text"]);
        sql.push_str(&format!(
            ",\n    i_idx_text AS (INSERT INTO idx_text (rid, kind, tsv)
        SELECT {rid}, u.kind, to_tsvector('simple', u.doc) FROM {from})"
        ));
    }
    if parts.has(TIMELINE) {
        timeline_ctes(sql, n, rows, of);
    }
}

/// Appends the CTEs that replace the timeline entries of the documents `of` (add them,
/// when they are new), bound from parameter `n` on as [`timeline_params`] orders them.
/// The entries' sort values follow them for one document, and are the columns `t_at`
/// and `t_updated` of `docs` for several.
fn timeline_ctes(sql: &mut String, mut n: usize, rows: Rows, of: Of) {
    if rows == Rows::Replace {
        sql.push_str(&format!(
            ",\n    d_idx_timeline AS (DELETE FROM idx_timeline WHERE rid IN (SELECT rid FROM {}))",
            of.table()
        ));
    }
    let (from, rid) = of.rows(
        &mut n,
        &["cmp", "p", "system", "code"],
        &["int8", "int8", "text", "text"],
    );
    let (at, updated) = match of {
        Of::One => (format!("${n}::int8"), format!("${}::int8", n + 1)),
        Of::Many => ("docs.t_at".to_owned(), "docs.t_updated".to_owned()),
    };
    sql.push_str(&format!(
        ",\n    i_idx_timeline AS (INSERT INTO idx_timeline (rid, cmp, p, system, code, at, updated)
        SELECT {rid}, u.cmp, u.p, u.system, u.code, {at}, {updated} FROM {from})"
    ));
}

/// The index tables with their columns after `rid`, and the PostgreSQL element types.
const INDEX_COLUMNS: [(&str, &[(&str, &str)]); 7] = [
    (
        "idx_string",
        &[
            ("p", "int8"),
            ("grp", "int4"),
            ("norm", "text"),
            ("exact", "text"),
        ],
    ),
    (
        "idx_token",
        &[
            ("p", "int8"),
            ("grp", "int4"),
            ("system", "text"),
            ("code", "text"),
            ("text", "text"),
        ],
    ),
    (
        "idx_date",
        &[
            ("p", "int8"),
            ("grp", "int4"),
            ("lo", "int8"),
            ("hi", "int8"),
        ],
    ),
    (
        "idx_number",
        &[("p", "int8"), ("grp", "int4"), ("v", "float8")],
    ),
    (
        "idx_quantity",
        &[
            ("p", "int8"),
            ("grp", "int4"),
            ("system", "text"),
            ("code", "text"),
            ("v", "float8"),
        ],
    ),
    (
        "idx_reference",
        &[
            ("p", "int8"),
            ("grp", "int4"),
            ("target_type", "text"),
            ("target_id", "text"),
            ("url", "text"),
        ],
    ),
    (
        "idx_uri",
        &[("p", "int8"), ("grp", "int4"), ("uri", "text")],
    ),
];

/// The index rows of `parts` of the documents `docs` as column arrays: the tables of
/// [`INDEX_COLUMNS`] in their order, then the full text, then the timeline. With
/// [`Of::Many`], each table's arrays are preceded by the `ord` (from 1) of each row's
/// document, and the timeline's sort values are left to [`new_params`].
fn index_params(docs: &[&IndexRows], parts: Parts, of: Of) -> Vec<Param> {
    /// The columns of one table: the `ord` array when `of` asks for it, then one array
    /// per column, each gathering one value per row of every document.
    struct Table<'a, T> {
        docs: &'a [&'a IndexRows],
        rows: fn(&IndexRows) -> &[T],
        group: Vec<Param>,
    }
    impl<'a, T> Table<'a, T> {
        fn new(docs: &'a [&'a IndexRows], of: Of, rows: fn(&IndexRows) -> &[T]) -> Self {
            let mut group: Vec<Param> = Vec::new();
            if of == Of::Many {
                let ords: Vec<i64> = docs
                    .iter()
                    .zip(1i64..)
                    .flat_map(|(d, ord)| std::iter::repeat_n(ord, rows(d).len()))
                    .collect();
                group.push(Box::new(ords));
            }
            Table { docs, rows, group }
        }
        fn col<V: ToSql + Sync + Send + 'static>(mut self, f: impl Fn(&T) -> V) -> Self {
            let values: Vec<V> = self
                .docs
                .iter()
                .flat_map(|d| (self.rows)(d).iter().map(&f))
                .collect();
            self.group.push(Box::new(values));
            self
        }
        fn slot(self, slot: impl Fn(&T) -> Slot) -> Self {
            self.col(|r| slot(r).p).col(|r| slot(r).grp)
        }
    }
    let groups: [Vec<Param>; PARTS] = [
        Table::new(docs, of, |d| &d.strings)
            .slot(|r| r.slot)
            .col(|r| r.norm.clone())
            .col(|r| r.exact.clone())
            .group,
        Table::new(docs, of, |d| &d.tokens)
            .slot(|r| r.slot)
            .col(|r| r.system.clone())
            .col(|r| r.code.clone())
            .col(|r| r.text.clone())
            .group,
        Table::new(docs, of, |d| &d.dates)
            .slot(|r| r.slot)
            .col(|r| r.lo)
            .col(|r| r.hi)
            .group,
        Table::new(docs, of, |d| &d.numbers)
            .slot(|r| r.slot)
            .col(|r| r.v)
            .group,
        Table::new(docs, of, |d| &d.quantities)
            .slot(|r| r.slot)
            .col(|r| r.system.clone())
            .col(|r| r.code.clone())
            .col(|r| r.v)
            .group,
        Table::new(docs, of, |d| &d.references)
            .slot(|r| r.slot)
            .col(|r| r.target_type.clone())
            .col(|r| r.target_id.clone())
            .col(|r| r.url.clone())
            .group,
        Table::new(docs, of, |d| &d.uris)
            .slot(|r| r.slot)
            .col(|r| r.uri.clone())
            .group,
        Table::new(docs, of, |d| &d.texts)
            .col(|r| r.kind as i16)
            .col(|r| r.doc.clone())
            .group,
        timeline_columns(docs, of),
    ];
    groups
        .into_iter()
        .enumerate()
        .filter(|(i, _)| parts.has(*i))
        .flat_map(|(_, g)| g)
        .collect()
}

/// The timeline entries of `docs` as column arrays (each entry's `ord` first with
/// [`Of::Many`]); with [`Of::One`], the document's sort values follow.
fn timeline_columns(docs: &[&IndexRows], of: Of) -> Vec<Param> {
    let entries: Vec<(i64, &crate::TimelineEntry)> = docs
        .iter()
        .zip(1i64..)
        .flat_map(|(d, ord)| {
            d.timeline
                .unique_entries()
                .into_iter()
                .map(move |e| (ord, e))
        })
        .collect();
    let mut cols: Vec<Param> = Vec::new();
    if of == Of::Many {
        cols.push(Box::new(
            entries.iter().map(|(o, _)| *o).collect::<Vec<i64>>(),
        ));
    }
    cols.push(Box::new(
        entries.iter().map(|(_, e)| e.cmp).collect::<Vec<i64>>(),
    ));
    cols.push(Box::new(
        entries.iter().map(|(_, e)| e.p).collect::<Vec<i64>>(),
    ));
    cols.push(Box::new(
        entries
            .iter()
            .map(|(_, e)| e.system.clone())
            .collect::<Vec<_>>(),
    ));
    cols.push(Box::new(
        entries
            .iter()
            .map(|(_, e)| e.code.clone())
            .collect::<Vec<_>>(),
    ));
    if let ([doc], Of::One) = (docs, of) {
        let (at, updated) = doc.timeline.sort_values(doc);
        cols.push(Box::new(at));
        cols.push(Box::new(updated));
    }
    cols
}

/// The timeline entries of `rows` as column arrays, then their sort values.
pub(super) fn timeline_params(rows: &IndexRows) -> Vec<Param> {
    timeline_columns(&[rows], Of::One)
}

/// The parameters of [`write_new_many`]: the documents' columns, then their index rows.
fn new_params(writes: &[&Write], parts: Parts) -> Vec<Param> {
    fn col<V: ToSql + Sync + Send + 'static>(writes: &[&Write], f: impl Fn(&Write) -> V) -> Param {
        Box::new(writes.iter().map(|w| f(w)).collect::<Vec<V>>())
    }
    let sort = |w: &Write| w.index.timeline.sort_values(&w.index);
    let mut params = vec![
        col(writes, |w| w.res_type.clone()),
        col(writes, |w| w.id.clone()),
        col(writes, |w| w.version),
        col(writes, |w| w.last_updated),
        col(writes, |w| w.body.is_none()),
        col(writes, |w| w.change.as_str().to_owned()),
        col(writes, |w| w.body.clone()),
        col(writes, |w| sort(w).0),
        col(writes, |w| sort(w).1),
    ];
    let docs: Vec<&IndexRows> = writes.iter().map(|w| &w.index).collect();
    params.extend(index_params(&docs, parts, Of::Many));
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> StoreError {
        StoreError::Backend(
            "current transaction is aborted, commands ignored until end of transaction block (25P02)"
                .into(),
        )
    }

    #[test]
    fn the_first_failure_is_not_a_consequence_of_another() {
        let results = vec![
            Ok(1),
            Err(refused()),
            Err(StoreError::LeaseLost("j".into())),
        ];
        assert!(matches!(first_failure(results), Err(StoreError::LeaseLost(j)) if j == "j"));
        let results: Vec<Result<i32>> =
            vec![Err(StoreError::Conflict { index: 2 }), Err(refused())];
        assert!(matches!(
            first_failure(results),
            Err(StoreError::Conflict { index: 2 })
        ));
        assert!(matches!(
            first_failure(vec![Ok(1), Err(refused())]),
            Err(StoreError::Backend(_))
        ));
        assert_eq!(first_failure(vec![Ok(1), Ok(2)]).unwrap(), vec![1, 2]);
    }
}
