//! The PostgreSQL backend: tokio-postgres with a deadpool pool and cached prepared statements.
//!
//! A single write is one statement (a data-modifying CTE), so it is atomic without an
//! explicit transaction and costs one round-trip. Several writes share one transaction.

use async_trait::async_trait;
use std::sync::LazyLock;

use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row, error::SqlState};

use crate::migrate::{self, now_micros};
use crate::query::ValKind;
use crate::{
    Backend, Change, Current, Guard, Guarded, HistoryQuery, HistoryRow, HistoryScope, Hit, Hits,
    IndexRows, PoolStatus, Result, SearchQuery, Slot, Store, StoreError, StoreOptions,
    TimelineRefresh, Val, Version, Write,
};

/// A pool of PostgreSQL connections holding Ember's schema.
pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The `LISTEN`/`NOTIFY` channel: one per schema, so that separate deployments
    /// sharing a database do not hear each other.
    channel: std::sync::OnceLock<String>,
}

/// The newest version is the current one: versions and the pointer are written
/// together, so one backward scan of the primary key finds the current state.
const READ: &str = "SELECT version, last_updated, body IS NULL, body
    FROM resource_versions WHERE res_type = $1 AND res_id = $2
    ORDER BY version DESC LIMIT 1";

const VREAD: &str = "SELECT res_type, res_id, version, last_updated, change, body
    FROM resource_versions WHERE res_type = $1 AND res_id = $2 AND version = $3";

/// The fixed statements of this backend (see [`crate::statements`]).
pub(crate) fn statements() -> Vec<String> {
    vec![
        READ.to_owned(),
        VREAD.to_owned(),
        WRITE_NEW.clone(),
        WRITE_NEXT.clone(),
        REINDEX_TAKE.to_owned(),
        REINDEX_PUT_BACK.to_owned(),
        REINDEX_ROWS.clone(),
        JOB_ENQUEUE.to_owned(),
        JOB_READ.to_owned(),
        JOB_CLAIM.to_owned(),
        JOB_LOCK.to_owned(),
        JOB_ADVANCE.to_owned(),
        LIVE_ALL.to_owned(),
        LIVE_TYPE.to_owned(),
        COMPACT_COUNTS.to_owned(),
        STALE_LIST.to_owned(),
        STALE_ANY.to_owned(),
        STALE_DONE.to_owned(),
        STALE_SETTLED.to_owned(),
        TIMELINE_DELETED.to_owned(),
        TIMELINE_ROWS.clone(),
    ]
}

const JOB_ENQUEUE: &str = "INSERT INTO reindex_jobs (id, scope, status, total, created_at)
    SELECT $1, $2, 'queued', count(*), $3 FROM resources
    WHERE NOT deleted AND ($2::text IS NULL OR res_type = $2::text)
    RETURNING id, scope, status, cursor_rid, processed, total, created_at, started_at, finished_at";

const JOB_READ: &str =
    "SELECT id, scope, status, cursor_rid, processed, total, created_at, started_at, finished_at
    FROM reindex_jobs WHERE id = $1";

/// Takes the oldest unfinished job that nobody holds: `SKIP LOCKED` passes over a job
/// another instance is claiming or committing a batch of right now.
const JOB_CLAIM: &str = "UPDATE reindex_jobs
    SET status = 'running', claimed_by = $1, claimed_until = $3,
        started_at = COALESCE(started_at, $2)
    WHERE id = (SELECT id FROM reindex_jobs
        WHERE status <> 'done' AND (claimed_until IS NULL OR claimed_until < $2)
        ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
    RETURNING id, scope, status, cursor_rid, processed, total, created_at, started_at, finished_at";

const JOB_LOCK: &str = "SELECT cursor_rid FROM reindex_jobs
    WHERE id = $1 AND claimed_by = $2 AND status = 'running' FOR UPDATE";

const JOB_ADVANCE: &str = "UPDATE reindex_jobs
    SET cursor_rid = $3, processed = processed + $4, claimed_until = $5, status = $6,
        finished_at = $7
    WHERE id = $1 AND claimed_by = $2";

const LIVE_ALL: &str = "SELECT r.rid, r.res_type, r.res_id, r.version, v.body
    FROM resources r JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    WHERE NOT r.deleted AND r.rid > $1 ORDER BY r.rid LIMIT $2";

const LIVE_TYPE: &str = "SELECT r.rid, r.res_type, r.res_id, r.version, v.body
    FROM resources r JOIN resource_versions v
      ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version
    WHERE NOT r.deleted AND r.rid > $1 AND r.res_type = $3 ORDER BY r.rid LIMIT $2";

fn job_from_row(r: &Row) -> Result<crate::ReindexJob> {
    Ok(crate::ReindexJob {
        id: r.get(0),
        scope: r.get(1),
        status: crate::JobStatus::parse(r.get(2))?,
        cursor: r.get(3),
        processed: r.get(4),
        total: r.get(5),
        created_at: r.get(6),
        started_at: r.get(7),
        finished_at: r.get(8),
    })
}

/// Creates the current pointer only if absent, then the version row and index rows.
static WRITE_NEW: LazyLock<String> = LazyLock::new(|| {
    write_statement(
        "INSERT INTO resources (res_type, res_id, version, last_updated, deleted, timeline_version)
        VALUES ($1, $2, $3, $4, $5, $3)
        ON CONFLICT (res_type, res_id) DO NOTHING
        RETURNING rid",
        8,
    )
});

/// Moves the current pointer only from the expected version ($8), adds the version
/// row and replaces the index rows.
static WRITE_NEXT: LazyLock<String> = LazyLock::new(|| {
    write_statement(
        "UPDATE resources SET version = $3, last_updated = $4, deleted = $5, timeline_version = $3
        WHERE res_type = $1 AND res_id = $2 AND version = $8
        RETURNING rid",
        9,
    )
});

/// One statement that writes a version: `cur` moves the pointer (and yields the
/// document's `rid` only when that worked); the version row, the removal of the old
/// index rows and the new ones (bound as arrays from parameter `first` on) all
/// depend on it. It returns 1 when the write happened, 0 when the guard failed.
fn write_statement(cur: &str, first: usize) -> String {
    let mut sql = format!(
        "WITH cur AS ({cur}),
    ver AS (INSERT INTO resource_versions (res_type, res_id, version, last_updated, change, body)
        SELECT $1::text, $2::text, $3::bigint, $4::bigint, $6::text, $7::text FROM cur)"
    );
    index_ctes(&mut sql, first);
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
const REINDEX_TAKE: &str = "DELETE FROM resources
    WHERE rid = $1 AND version = $2 AND NOT deleted
    RETURNING res_type, res_id, last_updated";

const REINDEX_PUT_BACK: &str = "INSERT INTO resources
    (rid, res_type, res_id, version, last_updated, deleted, timeline_version)
    VALUES ($1, $3, $4, $2, $5, false, $2)";

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

const STALE_ANY: &str = "SELECT EXISTS (SELECT 1 FROM timeline_stale)";

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

/// Replaces the timeline entries of document `$1` (bound from `$2` on), on a snapshot
/// taken after its pointer row is held.
static TIMELINE_ROWS: LazyLock<String> = LazyLock::new(|| {
    let mut sql = String::from("WITH cur AS (SELECT $1::bigint AS rid)");
    timeline_ctes(&mut sql, 2);
    sql.push_str("\nSELECT count(*) FROM cur");
    sql
});

/// Replaces the index rows of document `$1` (bound from `$2` on), on a snapshot taken
/// after its pointer row is held.
static REINDEX_ROWS: LazyLock<String> = LazyLock::new(|| {
    let mut sql = String::from("WITH cur AS (SELECT $1::bigint AS rid)");
    index_ctes(&mut sql, 2);
    sql.push_str("\nSELECT count(*) FROM cur");
    sql
});

/// Appends the CTEs that remove the index rows of the document in `cur` and insert the
/// new ones, bound as arrays from parameter `first` on.
fn index_ctes(sql: &mut String, first: usize) {
    let mut n = first;
    for (table, cols) in INDEX_COLUMNS {
        sql.push_str(&format!(
            ",\n    d_{table} AS (DELETE FROM {table} WHERE rid IN (SELECT rid FROM cur))"
        ));
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let arrays: Vec<String> = cols
            .iter()
            .map(|(_, ty)| {
                let a = format!("${n}::{ty}[]");
                n += 1;
                a
            })
            .collect();
        sql.push_str(&format!(
            ",\n    i_{table} AS (INSERT INTO {table} (rid, {names}) SELECT cur.rid, u.* FROM cur, unnest({arrays}) AS u)",
            names = names.join(", "),
            arrays = arrays.join(", "),
        ));
    }
    sql.push_str(&format!(
        ",\n    d_idx_text AS (DELETE FROM idx_text WHERE rid IN (SELECT rid FROM cur)),
    i_idx_text AS (INSERT INTO idx_text (rid, kind, tsv)
        SELECT cur.rid, u.kind, to_tsvector('simple', u.doc)
        FROM cur, unnest(${n}::int2[], ${}::text[]) AS u (kind, doc))",
        n + 1
    ));
    timeline_ctes(sql, n + 2);
}

/// Appends the CTEs that replace the timeline entries of the document in `cur`, bound
/// from parameter `n` on as [`timeline_params`] orders them.
fn timeline_ctes(sql: &mut String, n: usize) {
    sql.push_str(&format!(
        ",\n    d_idx_timeline AS (DELETE FROM idx_timeline WHERE rid IN (SELECT rid FROM cur)),
    i_idx_timeline AS (INSERT INTO idx_timeline (rid, cmp, p, system, code, at, updated)
        SELECT cur.rid, u.cmp, u.p, u.system, u.code, ${}::int8, ${}::int8
        FROM cur, unnest(${n}::int8[], ${}::int8[], ${}::text[], ${}::text[]) AS u (cmp, p, system, code))",
        n + 4,
        n + 5,
        n + 1,
        n + 2,
        n + 3,
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

/// A bind value of a write statement.
type Param = Box<dyn ToSql + Sync + Send>;

/// The index rows as column arrays, in the order of [`INDEX_COLUMNS`].
fn index_params(rows: &IndexRows) -> Vec<Param> {
    fn slots<T>(rows: &[T], slot: impl Fn(&T) -> Slot) -> [Param; 2] {
        [
            Box::new(rows.iter().map(|r| slot(r).p).collect::<Vec<i64>>()),
            Box::new(rows.iter().map(|r| slot(r).grp).collect::<Vec<i32>>()),
        ]
    }
    fn col<T, V: ToSql + Sync + Send + 'static>(rows: &[T], f: impl Fn(&T) -> V) -> Param {
        Box::new(rows.iter().map(f).collect::<Vec<V>>())
    }
    let mut out: Vec<Param> = Vec::with_capacity(36);
    let r = &rows.strings;
    out.extend(slots(r, |r| r.slot));
    out.push(col(r, |r| r.norm.clone()));
    out.push(col(r, |r| r.exact.clone()));
    let r = &rows.tokens;
    out.extend(slots(r, |r| r.slot));
    out.push(col(r, |r| r.system.clone()));
    out.push(col(r, |r| r.code.clone()));
    out.push(col(r, |r| r.text.clone()));
    let r = &rows.dates;
    out.extend(slots(r, |r| r.slot));
    out.push(col(r, |r| r.lo));
    out.push(col(r, |r| r.hi));
    let r = &rows.numbers;
    out.extend(slots(r, |r| r.slot));
    out.push(col(r, |r| r.v));
    let r = &rows.quantities;
    out.extend(slots(r, |r| r.slot));
    out.push(col(r, |r| r.system.clone()));
    out.push(col(r, |r| r.code.clone()));
    out.push(col(r, |r| r.v));
    let r = &rows.references;
    out.extend(slots(r, |r| r.slot));
    out.push(col(r, |r| r.target_type.clone()));
    out.push(col(r, |r| r.target_id.clone()));
    out.push(col(r, |r| r.url.clone()));
    let r = &rows.uris;
    out.extend(slots(r, |r| r.slot));
    out.push(col(r, |r| r.uri.clone()));
    let r = &rows.texts;
    out.push(col(r, |r| r.kind as i16));
    out.push(col(r, |r| r.doc.clone()));
    out.extend(timeline_params(rows));
    out
}

/// The timeline entries of `rows` as column arrays, then their sort values.
fn timeline_params(rows: &IndexRows) -> [Param; 6] {
    let entries = rows.timeline.unique_entries();
    let (at, updated) = rows.timeline.sort_values(rows);
    [
        Box::new(entries.iter().map(|e| e.cmp).collect::<Vec<i64>>()),
        Box::new(entries.iter().map(|e| e.p).collect::<Vec<i64>>()),
        Box::new(entries.iter().map(|e| e.system.clone()).collect::<Vec<_>>()),
        Box::new(entries.iter().map(|e| e.code.clone()).collect::<Vec<_>>()),
        Box::new(at),
        Box::new(updated),
    ]
}

impl PgStore {
    /// Connects, migrates (under an advisory lock) and returns the store.
    pub async fn open(options: &StoreOptions) -> Result<Self> {
        let store = Self::connect(options)?;
        store.run_migrations().await?;
        Ok(store)
    }

    /// Applies pending migrations and closes the pool.
    pub(crate) async fn migrate_only(options: &StoreOptions) -> Result<usize> {
        let store = Self::connect(options)?;
        let applied = store.run_migrations().await?;
        store.pool.close();
        Ok(applied)
    }

    fn connect(options: &StoreOptions) -> Result<Self> {
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if config.get_application_name().is_none() {
            config.application_name("ember");
        }
        config.connect_timeout(options.acquire_timeout);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .timeouts(Timeouts {
                wait: Some(options.acquire_timeout),
                create: Some(options.acquire_timeout),
                recycle: Some(options.acquire_timeout),
            })
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .post_create(deadpool_postgres::Hook::async_fn(|client, _| {
                Box::pin(async move {
                    prefer_generic_plans(client).await;
                    Ok(())
                })
            }))
            .build()
            .map_err(|e| StoreError::Config(e.to_string()))?;
        Ok(Self {
            pool,
            config,
            channel: std::sync::OnceLock::new(),
        })
    }

    /// The notification channel of this schema, looked up once.
    async fn channel(&self) -> Result<String> {
        if let Some(c) = self.channel.get() {
            return Ok(c.clone());
        }
        let client = self.client().await?;
        let schema: String = client
            .query_one("SELECT current_schema()", &[])
            .await
            .map_err(pg_err)?
            .get(0);
        let channel = format!("ember_bus_{schema}");
        Ok(self.channel.get_or_init(|| channel).clone())
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Applies every pending migration in one transaction holding an advisory lock
    /// scoped to the current schema, so concurrent instances migrate exactly once.
    async fn run_migrations(&self) -> Result<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('ember.migrate.' || current_schema())::bigint)",
            &[],
        )
        .await
        .map_err(pg_err)?;
        tx.batch_execute(migrate::SCHEMA_TABLE)
            .await
            .map_err(pg_err)?;
        let done: Vec<i64> = tx
            .query("SELECT version FROM ember_schema", &[])
            .await
            .map_err(pg_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let mut applied = 0;
        for m in migrate::POSTGRES
            .iter()
            .filter(|m| !done.contains(&m.version))
        {
            tx.batch_execute(m.sql).await.map_err(pg_err)?;
            tx.execute(
                "INSERT INTO ember_schema (version, name, applied_at) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &now_micros()],
            )
            .await
            .map_err(pg_err)?;
            tracing::info!(version = m.version, name = m.name, "applied migration");
            applied += 1;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(applied)
    }
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
    let sql = match w.expected {
        None => WRITE_NEW.as_str(),
        Some(expected) => {
            params.push(Box::new(expected));
            WRITE_NEXT.as_str()
        }
    };
    params.extend(index_params(&w.index));
    let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
    match client.query_one(&stmt, &param_refs(&params)).await {
        Ok(row) => Ok(row.get::<_, i64>(0) == 1),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
        Err(e) => Err(pg_err(e)),
    }
}

fn param_refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect()
}

fn arg_params(args: Vec<crate::sql::Arg>) -> Vec<Param> {
    args.into_iter()
        .map(|a| -> Param {
            match a {
                crate::sql::Arg::Text(t) => Box::new(t),
                crate::sql::Arg::Int(i) => Box::new(i),
                crate::sql::Arg::Float(f) => Box::new(f),
            }
        })
        .collect()
}

/// A bind value as an SQL literal (for `EXECUTE` in [`Store::explain`]).
fn literal(a: &crate::sql::Arg) -> String {
    match a {
        crate::sql::Arg::Text(t) => format!("'{}'", t.replace('\'', "''")),
        crate::sql::Arg::Int(i) => format!("'{i}'"),
        crate::sql::Arg::Float(f) => format!("'{f:?}'"),
    }
}

/// Plans each prepared statement once per connection instead of on every execution.
///
/// PostgreSQL's default replans a statement with the actual parameter values until a
/// generic plan looks as cheap, and for search SQL it rarely does: planning the joins
/// took 0.5 to 1.3 ms per search against 0.1 ms of execution. Ember's SQL fixes its
/// own access path (the driving filter, keyset paging), so the generic plan is the
/// intended one. A server without the setting (older or PostgreSQL-compatible
/// engines) keeps its default.
async fn prefer_generic_plans(client: &tokio_postgres::Client) {
    if let Err(e) = client
        .batch_execute("SET plan_cache_mode = force_generic_plan")
        .await
    {
        tracing::debug!(error = %e, "plan_cache_mode is not supported; keeping the default");
    }
}

/// Prepared statements kept per connection before the cache is emptied: search SQL
/// varies with the shape of a query, and shapes are unbounded.
const STATEMENT_CACHE_LIMIT: usize = 256;

impl PgStore {
    /// Runs a dynamically built query, prepared once per shape and connection.
    async fn query_dynamic(&self, sql: &str, args: Vec<crate::sql::Arg>) -> Result<Vec<Row>> {
        let client = self.client().await?;
        if client.statement_cache.size() > STATEMENT_CACHE_LIMIT {
            client.statement_cache.clear();
        }
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        let params = arg_params(args);
        client
            .query(&stmt, &param_refs(&params))
            .await
            .map_err(pg_err)
    }
}

/// The hit in the columns of a page query, starting at column `at`.
fn hit_from_row(r: &Row, at: usize, kinds: &[ValKind]) -> Hit {
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

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn read(&self, res_type: &str, id: &str) -> Result<Option<Current>> {
        let client = self.client().await?;
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

    async fn vread(&self, res_type: &str, id: &str, version: i64) -> Result<Option<Version>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(VREAD).await.map_err(pg_err)?;
        let row = client
            .query_opt(&stmt, &[&res_type, &id, &version])
            .await
            .map_err(pg_err)?;
        row.map(|r| version_from_row(&r, 0)).transpose()
    }

    async fn commit(&self, writes: Vec<Write>) -> Result<()> {
        let mut client = self.client().await?;
        if let [single] = writes.as_slice() {
            return match write_one(&client, single).await? {
                true => Ok(()),
                false => Err(StoreError::Conflict { index: 0 }),
            };
        }
        let tx = client.transaction().await.map_err(pg_err)?;
        for (index, w) in writes.iter().enumerate() {
            if !write_one(&tx, w).await? {
                // Dropping the transaction rolls it back.
                return Err(StoreError::Conflict { index });
            }
        }
        tx.commit().await.map_err(pg_err)
    }

    async fn commit_guarded(&self, guards: &[Guard], writes: Vec<Write>) -> Result<Guarded> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Locks in key order, so two commits with overlapping guards cannot deadlock.
        let mut locks: Vec<i64> = guards.iter().map(|g| g.lock).collect();
        locks.sort_unstable();
        locks.dedup();
        for lock in locks {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock])
                .await
                .map_err(pg_err)?;
        }
        // Each statement below sees every commit that finished before the locks were
        // granted (READ COMMITTED takes a snapshot per statement).
        for (index, guard) in guards.iter().enumerate() {
            let (sql, args) = crate::search_sql::page(&crate::search_sql::POSTGRES, &guard.query);
            let kinds = crate::search_sql::sort_kinds(&guard.query.sort);
            let params = arg_params(args);
            let rows = tx.query(&sql, &param_refs(&params)).await.map_err(pg_err)?;
            if !rows.is_empty() {
                let hits = rows.iter().map(|r| hit_from_row(r, 0, &kinds)).collect();
                let hits = crate::search_sql::into_page(hits, &guard.query).hits;
                return Ok(Guarded::Matched { index, hits });
            }
        }
        for (index, w) in writes.iter().enumerate() {
            if !write_one(&tx, w).await? {
                return Err(StoreError::Conflict { index });
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(Guarded::Committed)
    }

    async fn history(&self, scope: HistoryScope<'_>, q: &HistoryQuery) -> Result<Vec<HistoryRow>> {
        let client = self.client().await?;
        let (sql, args) = crate::sql::history(scope, q, crate::sql::pg_placeholder);
        let params = arg_params(args);
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

    async fn search(&self, q: &SearchQuery) -> Result<Hits> {
        let d = &crate::search_sql::POSTGRES;
        let kinds = crate::search_sql::sort_kinds(&q.sort);
        if let Some((sql, args)) = crate::search_sql::timeline_page(d, q) {
            let rows = self.query_dynamic(&sql, args).await?;
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
        let rows = self.query_dynamic(&sql, args).await?;
        Ok(crate::search_sql::into_page(
            rows.iter().map(|r| hit_from_row(r, 0, &kinds)).collect(),
            q,
        ))
    }

    async fn explain(&self, q: &SearchQuery) -> Result<String> {
        let d = &crate::search_sql::POSTGRES;
        let client = self.client().await?;
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

    async fn count(&self, q: &SearchQuery) -> Result<u64> {
        let d = &crate::search_sql::POSTGRES;
        if let Some((sql, args)) = crate::search_sql::timeline_count(d, q) {
            let rows = self.query_dynamic(&sql, args).await?;
            if let Some(r) = rows.first().filter(|r| !r.get::<_, bool>(0)) {
                return Ok(r.get::<_, i64>(1).max(0) as u64);
            }
        }
        let (sql, args) = crate::search_sql::count(d, q);
        let rows = self.query_dynamic(&sql, args).await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0).max(0) as u64))
    }

    async fn referenced(&self, rids: &[i64], keys: &[i64]) -> Result<Vec<(String, String)>> {
        let (sql, args) = crate::search_sql::referenced(&crate::search_sql::POSTGRES, rids, keys);
        let rows = self.query_dynamic(&sql, args).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn fetch(&self, docs: &[(String, String)]) -> Result<Vec<Hit>> {
        if docs.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, args) = crate::search_sql::fetch(&crate::search_sql::POSTGRES, docs);
        let rows = self.query_dynamic(&sql, args).await?;
        Ok(rows.iter().map(|r| hit_from_row(r, 0, &[])).collect())
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

    async fn publish(&self, message: &str) -> Result<()> {
        let channel = self.channel().await?;
        let client = self.client().await?;
        client
            .execute("SELECT pg_notify($1, $2)", &[&channel, &message])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    fn subscribe(&self, on_message: crate::Subscriber) {
        let config = self.config.clone();
        let pool = self.pool.clone();
        tokio::spawn(async move {
            let mut wait = std::time::Duration::from_millis(100);
            let mut first = true;
            loop {
                match listen(&config, &pool, &on_message, first).await {
                    Ok(()) => wait = std::time::Duration::from_millis(100),
                    Err(e) => {
                        tracing::warn!(error = %e, "the cache bus lost its connection; reconnecting")
                    }
                }
                first = false;
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
        });
    }

    async fn enqueue_reindex(
        &self,
        id: &str,
        scope: Option<&str>,
        now: crate::Micros,
    ) -> Result<crate::ReindexJob> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(JOB_ENQUEUE).await.map_err(pg_err)?;
        let row = client
            .query_one(&stmt, &[&id, &scope, &now])
            .await
            .map_err(pg_err)?;
        job_from_row(&row)
    }

    async fn reindex_job(&self, id: &str) -> Result<Option<crate::ReindexJob>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(JOB_READ).await.map_err(pg_err)?;
        let row = client.query_opt(&stmt, &[&id]).await.map_err(pg_err)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn claim_reindex(
        &self,
        owner: &str,
        now: crate::Micros,
        lease_until: crate::Micros,
    ) -> Result<Option<crate::ReindexJob>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(JOB_CLAIM).await.map_err(pg_err)?;
        let row = client
            .query_opt(&stmt, &[&owner, &now, &lease_until])
            .await
            .map_err(pg_err)?;
        row.as_ref().map(job_from_row).transpose()
    }

    async fn live_documents(
        &self,
        scope: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<crate::LiveDoc>> {
        let client = self.client().await?;
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
        Ok(rows
            .iter()
            .map(|r| crate::LiveDoc {
                rid: r.get(0),
                res_type: r.get(1),
                id: r.get(2),
                version: r.get(3),
                body: r.get(4),
            })
            .collect())
    }

    async fn reindex_batch(&self, batch: crate::ReindexBatch) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // Holding the job row serializes this batch with a claim by another instance.
        let held = tx
            .query_opt(JOB_LOCK, &[&batch.job, &batch.owner])
            .await
            .map_err(pg_err)?;
        if held.is_none() {
            return Ok(false);
        }
        let take = tx.prepare_cached(REINDEX_TAKE).await.map_err(pg_err)?;
        let put_back = tx.prepare_cached(REINDEX_PUT_BACK).await.map_err(pg_err)?;
        let rows = tx.prepare_cached(&REINDEX_ROWS).await.map_err(pg_err)?;
        for doc in &batch.docs {
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
            params.extend(index_params(&doc.index));
            tx.query_one(&rows, &param_refs(&params))
                .await
                .map_err(pg_err)?;
        }
        let (status, finished) = if batch.done {
            ("done", Some(batch.now))
        } else {
            ("running", None)
        };
        tx.execute(
            JOB_ADVANCE,
            &[
                &batch.job,
                &batch.owner,
                &batch.cursor,
                &batch.processed,
                &batch.lease_until,
                &status,
                &finished,
            ],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

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

    async fn stale_timeline(&self, limit: u32) -> Result<Vec<crate::StaleDoc>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(STALE_LIST).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&i64::from(limit)])
            .await
            .map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| crate::StaleDoc {
                res_type: r.get(0),
                id: r.get(1),
                rid: r.get(2),
                // A pointer row is always there; version 0 never is current.
                version: r.get::<_, Option<i64>>(3).unwrap_or(0),
                body: r.get(4),
            })
            .collect())
    }

    async fn refresh_timeline(&self, docs: Vec<crate::TimelineRefresh>) -> Result<()> {
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
}

/// Listens on the schema's channel until the connection ends, passing every
/// notification to `on_message`. Every (re)connection after the first starts with
/// [`crate::RESYNC`].
async fn listen(
    config: &tokio_postgres::Config,
    pool: &Pool,
    on_message: &crate::Subscriber,
    first: bool,
) -> Result<()> {
    let schema: String = {
        let client = pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        client
            .query_one("SELECT current_schema()", &[])
            .await
            .map_err(pg_err)?
            .get(0)
    };
    let (client, mut connection) = config.connect(NoTls).await.map_err(pg_err)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let channel = format!("ember_bus_{schema}");
    client
        .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
        .await
        .map_err(pg_err)?;
    if !first {
        tracing::info!("the cache bus reconnected");
        on_message(crate::RESYNC);
    }
    while let Some(message) = rx.recv().await {
        on_message(&message);
    }
    driver.abort();
    Err(StoreError::Unavailable(
        "the listening connection closed".into(),
    ))
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

/// Lost connections, I/O failures and the SQLSTATE classes for connection problems
/// (08), exhausted resources (53), shutdowns (57P) and lock contention (40001, 40P01)
/// are `Unavailable`: retrying later may work. Everything else is a backend error.
fn pg_err(e: tokio_postgres::Error) -> StoreError {
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    let transient_state = e.code().is_some_and(|c| {
        let c = c.code();
        c.starts_with("08")
            || c.starts_with("53")
            || c.starts_with("57P")
            || c == "40001"
            || c == "40P01"
    });
    // The server's own message says what failed ("db error" alone does not).
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    if e.is_closed() || io || transient_state {
        StoreError::Unavailable(text)
    } else {
        StoreError::Backend(text)
    }
}
