//! The PostgreSQL backend: tokio-postgres with a deadpool pool and cached prepared statements.
//!
//! A single write is one statement (a data-modifying CTE), so it is atomic without an
//! explicit transaction and costs one round-trip. Several writes share one transaction.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::{NoTls, Row, error::SqlState};

use crate::migrate::{self, now_micros};
use crate::{
    Backend, Change, Current, HistoryQuery, HistoryRow, HistoryScope, PoolStatus, Result, Store,
    StoreError, StoreOptions, Version, Write,
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
/// The fixed statements of this backend (see [`crate::statements`]).
pub(crate) const STATEMENTS: &[&str] = &[READ, VREAD, WRITE_NEW, WRITE_NEXT];

const READ: &str = "SELECT version, last_updated, body IS NULL, body
    FROM resource_versions WHERE res_type = $1 AND res_id = $2
    ORDER BY version DESC LIMIT 1";

const VREAD: &str = "SELECT res_type, res_id, version, last_updated, change, body
    FROM resource_versions WHERE res_type = $1 AND res_id = $2 AND version = $3";

/// Creates the current pointer only if absent, and the version row only if that worked.
const WRITE_NEW: &str = "WITH cur AS (
        INSERT INTO resources (res_type, res_id, version, last_updated, deleted)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (res_type, res_id) DO NOTHING
        RETURNING 1)
    INSERT INTO resource_versions (res_type, res_id, version, last_updated, change, body)
    SELECT $1::text, $2::text, $3::bigint, $4::bigint, $6::text, $7::text FROM cur";

/// Moves the current pointer only from the expected version, and adds the version row.
const WRITE_NEXT: &str = "WITH cur AS (
        UPDATE resources SET version = $3, last_updated = $4, deleted = $5
        WHERE res_type = $1 AND res_id = $2 AND version = $8
        RETURNING 1)
    INSERT INTO resource_versions (res_type, res_id, version, last_updated, change, body)
    SELECT $1::text, $2::text, $3::bigint, $4::bigint, $6::text, $7::text FROM cur";

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
    let change = w.change.as_str();
    let expected = w.expected.unwrap_or_default();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &w.res_type,
        &w.id,
        &w.version,
        &w.last_updated,
        &deleted,
        &change,
        &w.body,
        &expected,
    ];
    // A new document binds the first seven parameters; a next version also the expected one.
    let (sql, params) = match w.expected {
        None => (WRITE_NEW, &params[..7]),
        Some(_) => (WRITE_NEXT, &params[..]),
    };
    let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
    let n = client.execute(&stmt, params).await;
    match n {
        Ok(n) => Ok(n == 1),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(false),
        Err(e) => Err(pg_err(e)),
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

    async fn history(&self, scope: HistoryScope<'_>, q: &HistoryQuery) -> Result<Vec<HistoryRow>> {
        let client = self.client().await?;
        let (sql, args) = crate::sql::history(scope, q, crate::sql::pg_placeholder);
        let params: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>> = args
            .into_iter()
            .map(|a| -> Box<dyn tokio_postgres::types::ToSql + Sync + Send> {
                match a {
                    crate::sql::Arg::Text(t) => Box::new(t),
                    crate::sql::Arg::Int(i) => Box::new(i),
                }
            })
            .collect();
        let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
            .iter()
            .map(|p| &**p as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let rows = client.query(&sql, &refs).await.map_err(pg_err)?;
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
    if e.is_closed() || io || transient_state {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Backend(e.to_string())
    }
}
