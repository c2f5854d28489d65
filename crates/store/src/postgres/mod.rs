//! The PostgreSQL backend: tokio-postgres with a deadpool pool and cached prepared
//! statements, one module per concern of the [`crate::Store`].
//!
//! A single write is one statement (a data-modifying CTE), so it is atomic without an
//! explicit transaction and costs one round-trip. Several writes share one transaction.

mod bus;
mod jobs;
mod kv;
mod maintenance;
mod read;
mod search;
mod write;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use crate::migrate::{self, now_micros};
use crate::{
    Backend, Commit, Committed, Current, Documents, HistoryQuery, HistoryRow, HistoryScope, Hit,
    Hits, LiveDoc, Result, Scan, SearchQuery, StoreError, StoreOptions, Version,
};

/// A pool of PostgreSQL connections holding Ember's schema.
pub struct PgStore {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The `LISTEN`/`NOTIFY` channel: one per schema, so that separate deployments
    /// sharing a database do not hear each other.
    channel: std::sync::OnceLock<String>,
}

/// The fixed statements of this backend (see [`crate::statements`]).
pub(crate) fn statements() -> Vec<String> {
    let mut all = read::statements();
    all.extend(write::statements());
    all.extend(jobs::statements());
    all.extend(kv::statements());
    all.extend(maintenance::statements());
    all
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

/// A bind value of a statement.
type Param = Box<dyn ToSql + Sync + Send>;

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

/// Runs `stmt` in a transaction of its own whose first statement is `local` (a `SET
/// LOCAL`, which lasts as long as the transaction). The three requests are sent
/// together: one round trip. Whatever happens to the statement, the `COMMIT` ends the
/// transaction (as a rollback when the statement failed), so the connection goes back
/// to the pool outside one, even when this future is dropped midway: the requests are
/// sent already.
async fn query_with_local(
    client: &tokio_postgres::Client,
    local: &str,
    stmt: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    let begin = format!("BEGIN; {local}");
    let (begun, rows, ended) = futures_util::future::join3(
        client.batch_execute(&begin),
        client.query(stmt, params),
        client.batch_execute("COMMIT"),
    )
    .await;
    begun.map_err(pg_err)?;
    let rows = rows.map_err(pg_err)?;
    ended.map_err(pg_err)?;
    Ok(rows)
}

/// The hit in the columns of a page query, starting at column `at`.
#[async_trait]
impl Documents for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn read(&self, res_type: &str, id: &str) -> Result<Option<Current>> {
        read::read(self, res_type, id).await
    }

    async fn read_many(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Current>>> {
        read::read_many(self, keys).await
    }

    async fn vread(&self, res_type: &str, id: &str, version: i64) -> Result<Option<Version>> {
        read::vread(self, res_type, id, version).await
    }

    async fn commit(&self, commit: Commit) -> Result<Committed> {
        write::commit(self, commit).await
    }

    async fn history(&self, scope: HistoryScope<'_>, q: &HistoryQuery) -> Result<Vec<HistoryRow>> {
        read::history(self, scope, q).await
    }

    async fn search(&self, q: &SearchQuery) -> Result<Hits> {
        search::search(self, q).await
    }

    async fn count(&self, q: &SearchQuery) -> Result<u64> {
        search::count(self, q).await
    }

    async fn estimate(&self, q: &SearchQuery) -> Result<Option<u64>> {
        search::estimate(self, q).await
    }

    async fn explain(&self, q: &SearchQuery) -> Result<String> {
        search::explain(self, q).await
    }

    async fn referenced(&self, rids: &[i64], keys: &[i64]) -> Result<Vec<(String, String)>> {
        search::referenced(self, rids, keys).await
    }

    async fn fetch(&self, docs: &[(String, String)]) -> Result<Vec<Hit>> {
        search::fetch(self, docs).await
    }

    async fn live_documents(
        &self,
        scope: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LiveDoc>> {
        read::live_documents(self, scope, after, limit).await
    }

    async fn scan(&self, scan: &Scan<'_>) -> Result<Vec<LiveDoc>> {
        read::scan(self, scan).await
    }
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

/// Whether `e` is [`pg_err`]'s error for a statement PostgreSQL refused because its
/// transaction had already failed (`in_failed_sql_transaction`).
fn refused_after_failure(e: &StoreError) -> bool {
    let code = tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION.code();
    matches!(e, StoreError::Backend(text) if text.ends_with(&format!("({code})")))
}
