//! Durable storage of versioned JSON documents, on PostgreSQL or an embedded SQLite file.
//!
//! The store knows resource types, ids, versions and timestamps, never FHIR REST
//! semantics. Every write is a compare-and-swap on the current version of a document,
//! so concurrent writers on any number of instances can never lose an update or
//! produce two versions with the same number: the loser gets [`StoreError::Conflict`]
//! and decides itself whether to retry.

mod migrate;
mod postgres;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use postgres::PgStore;
pub use sql::statements;
pub use sqlite::SqliteStore;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// The current state of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    pub version: i64,
    pub last_updated: Micros,
    pub deleted: bool,
    /// The JSON text of the current version; `None` when deleted.
    pub body: Option<String>,
}

/// The change that produced a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Patch,
    Delete,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Patch => "patch",
            Change::Delete => "delete",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "create" => Change::Create,
            "update" => Change::Update,
            "patch" => Change::Patch,
            "delete" => Change::Delete,
            other => {
                return Err(StoreError::Backend(format!(
                    "unknown change kind {other:?}"
                )));
            }
        })
    }
}

/// One stored version of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: Micros,
    pub change: Change,
    /// JSON text; `None` for a deletion.
    pub body: Option<String>,
}

/// A version to write, guarded by the version it expects to replace.
#[derive(Debug, Clone)]
pub struct Write {
    pub res_type: String,
    pub id: String,
    /// `None`: the document must not exist yet. `Some(v)`: its current version must be `v`.
    pub expected: Option<i64>,
    pub version: i64,
    pub last_updated: Micros,
    pub change: Change,
    /// JSON text; `None` writes a deletion marker.
    pub body: Option<String>,
}

/// Which versions a history query covers.
#[derive(Debug, Clone, Copy)]
pub enum HistoryScope<'a> {
    System,
    Type(&'a str),
    Instance(&'a str, &'a str),
}

/// Filters and paging of a history query. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// Only versions written at or after this instant.
    pub since: Option<Micros>,
    /// Only versions that were current at some point in `[start, end)`.
    pub at: Option<(Micros, Micros)>,
    /// Paging cursor: only versions with a sequence number below this one.
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// A version together with its global sequence number (the history paging key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub seq: i64,
    pub version: Version,
    /// Whether this version brought the document into existence: it is the first
    /// version, or the one before it was a deletion.
    pub created: bool,
}

/// Errors at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's expected version did not match; nothing of the commit was stored.
    #[error("version conflict on write {index}")]
    Conflict { index: usize },
    /// The database cannot be reached or the pool is exhausted; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The database URL or settings are wrong.
    #[error("storage configuration: {0}")]
    Config(String),
    /// Anything else the database reported.
    #[error("storage error: {0}")]
    Backend(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The storage backend in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// A versioned document store. Implementations are cheap to share (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// The current state of a document, deleted or not.
    async fn read(&self, res_type: &str, id: &str) -> Result<Option<Current>>;

    /// One version of a document.
    async fn vread(&self, res_type: &str, id: &str, version: i64) -> Result<Option<Version>>;

    /// Applies all writes atomically: either every write is stored or none is.
    async fn commit(&self, writes: Vec<Write>) -> Result<()>;

    /// Versions in `scope`, newest first, at most `query.limit`.
    async fn history(
        &self,
        scope: HistoryScope<'_>,
        query: &HistoryQuery,
    ) -> Result<Vec<HistoryRow>>;

    /// A cheap round-trip to the database.
    async fn ping(&self) -> Result<()>;

    /// How the connection pool is used right now.
    fn pool_status(&self) -> PoolStatus;

    /// Sends `message` to the subscribers of every instance on this database
    /// (PostgreSQL `NOTIFY`; in-process for the single-instance SQLite store).
    async fn publish(&self, message: &str) -> Result<()>;

    /// Calls `on_message` for every published message, from any instance, until the
    /// process ends. After a lost connection it reconnects by itself and calls
    /// `on_message` with [`RESYNC`], since messages may have been missed meanwhile.
    fn subscribe(&self, on_message: Subscriber);
}

/// A receiver of published messages.
pub type Subscriber = Arc<dyn Fn(&str) + Send + Sync>;

/// The message a subscriber gets when it may have missed messages.
pub const RESYNC: &str = "*";

/// Connection pool use, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub max: usize,
    pub open: usize,
    pub idle: usize,
    pub waiting: usize,
}

/// Storage settings taken from configuration.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `postgres://…` or `sqlite://path`.
    pub url: String,
    /// Maximum pooled connections (PostgreSQL) or reader connections (SQLite).
    pub pool_size: usize,
    /// How long a request waits for a pooled connection.
    pub acquire_timeout: std::time::Duration,
}

/// Opens the store named by `options.url` and brings its schema up to date.
pub async fn open(options: &StoreOptions) -> Result<Arc<dyn Store>> {
    let url = options.url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgStore::open(options).await?))
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(SqliteStore::open(path, options).await?))
    } else {
        Err(StoreError::Config(
            "the database URL must start with postgres://, postgresql:// or sqlite://".into(),
        ))
    }
}

/// Applies migrations only (for `ember migrate`), returning how many were new.
pub async fn migrate(options: &StoreOptions) -> Result<usize> {
    let url = options.url.as_str();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        PgStore::migrate_only(options).await
    } else if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        SqliteStore::migrate_only(path).await
    } else {
        Err(StoreError::Config(
            "the database URL must start with postgres://, postgresql:// or sqlite://".into(),
        ))
    }
}
