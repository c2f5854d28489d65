//! Durable storage of versioned JSON documents, on PostgreSQL or an embedded SQLite file.
//!
//! The store knows resource types, ids, versions and timestamps, never FHIR REST
//! semantics. Every write is a compare-and-swap on the current version of a document,
//! so concurrent writers on any number of instances can never lose an update or
//! produce two versions with the same number: the loser gets [`StoreError::Conflict`]
//! and decides itself whether to retry.

mod index;
mod migrate;
mod postgres;
mod query;
mod search_sql;
mod sql;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;

pub use index::{
    DateRow, IndexRows, NumberRow, QuantityRow, ReferenceRow, Slot, StringRow, TextKind, TextRow,
    Timeline, TimelineEntry, TokenRow, UriRow, key,
};
pub use postgres::PgStore;
pub use query::{
    Col, Cond, Cursor, Filter, Hit, Hits, Op, Rows, SearchQuery, Sort, SortKey, Table,
    TimelinePath, Val,
};
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
    /// The index rows of this version; they replace the document's previous rows.
    /// Must be empty for a deletion.
    pub index: IndexRows,
}

/// A condition checked atomically with a commit: "no document matches `query`".
#[derive(Debug, Clone)]
pub struct Guard {
    /// The key of the lock that serializes commits with the same condition.
    pub lock: i64,
    pub query: SearchQuery,
}

/// The result of [`Store::commit_guarded`].
#[derive(Debug, Clone, PartialEq)]
pub enum Guarded {
    Committed,
    /// Guard `index` matched these documents (at most its query's limit); nothing was
    /// written.
    Matched {
        index: usize,
        hits: Vec<Hit>,
    },
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

/// The state of a reindex job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Queued,
    Running,
    Done,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "queued" => JobStatus::Queued,
            "running" => JobStatus::Running,
            "done" => JobStatus::Done,
            other => return Err(StoreError::Backend(format!("unknown job status {other:?}"))),
        })
    }
}

/// A job that recomputes the index rows of every live document of one type (or of all
/// types), in batches in `rid` order, without writing versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReindexJob {
    pub id: String,
    /// The document type; `None` for every type.
    pub scope: Option<String>,
    pub status: JobStatus,
    /// The last `rid` whose batch is committed; the next batch starts after it.
    pub cursor: i64,
    /// Documents handled so far.
    pub processed: i64,
    /// Live documents in scope when the job was created.
    pub total: i64,
    pub created_at: Micros,
    pub started_at: Option<Micros>,
    pub finished_at: Option<Micros>,
}

/// The current version of a live document, with its internal key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDoc {
    pub rid: i64,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub body: String,
}

/// New index rows for one document, computed from `version`.
#[derive(Debug, Clone)]
pub struct Reindexed {
    pub rid: i64,
    pub version: i64,
    pub index: IndexRows,
}

/// One committed step of a claimed reindex job (see [`Store::reindex_batch`]).
#[derive(Debug, Clone)]
pub struct ReindexBatch {
    pub job: String,
    /// The worker that claimed the job.
    pub owner: String,
    pub docs: Vec<Reindexed>,
    /// Documents handled by this batch (those whose version changed meanwhile too).
    pub processed: i64,
    /// The job's cursor after this batch (the largest `rid` of the batch).
    pub cursor: i64,
    /// Whether this is the last batch.
    pub done: bool,
    pub now: Micros,
    /// The worker's lease is extended to this instant.
    pub lease_until: Micros,
}

/// A document an earlier release wrote, waiting to be put into the timeline (see
/// [`Store::stale_timeline`]), in its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleDoc {
    pub res_type: String,
    pub id: String,
    /// The document's key; `None` when the backend keeps none for deleted documents.
    pub rid: Option<i64>,
    pub version: i64,
    /// JSON text of the current version; `None` when deleted.
    pub body: Option<String>,
}

/// The index rows of a [`StaleDoc`]'s version (empty when deleted), of which
/// [`Store::refresh_timeline`] stores the timeline entries.
#[derive(Debug, Clone)]
pub struct TimelineRefresh {
    pub doc: StaleDoc,
    pub index: IndexRows,
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

    /// Like [`Store::commit`], but first runs each guard's query in the same
    /// transaction, holding an exclusive lock on the guard's `lock` key until the end,
    /// so two commits with the same guard run one after the other on every instance.
    /// When a guard's query finds anything, nothing is written and the matches are
    /// returned with the guard's index.
    async fn commit_guarded(&self, guards: &[Guard], writes: Vec<Write>) -> Result<Guarded>;

    /// Versions in `scope`, newest first, at most `query.limit`.
    async fn history(
        &self,
        scope: HistoryScope<'_>,
        query: &HistoryQuery,
    ) -> Result<Vec<HistoryRow>>;

    /// One page of the live documents that match a search.
    async fn search(&self, query: &SearchQuery) -> Result<Hits>;

    /// How many live documents match a search (its sort and cursor are ignored).
    async fn count(&self, query: &SearchQuery) -> Result<u64>;

    /// How the database runs the statement [`Store::search`] would run for `query` now:
    /// PostgreSQL's `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of the prepared statement
    /// (which runs it, with the plan every connection uses), SQLite's `EXPLAIN QUERY
    /// PLAN` one step a line. For diagnosis; the text is the backend's own.
    async fn explain(&self, query: &SearchQuery) -> Result<String>;

    /// The distinct targets `(type, id)` of the reference rows under `keys` of the
    /// documents `rids` (for `_include`).
    async fn referenced(&self, rids: &[i64], keys: &[i64]) -> Result<Vec<(String, String)>>;

    /// The live documents among `docs` (`(type, id)`), in no particular order.
    async fn fetch(&self, docs: &[(String, String)]) -> Result<Vec<Hit>>;

    /// Queues a reindex job of the live documents of type `scope` (all when `None`);
    /// its `total` is their number now.
    async fn enqueue_reindex(
        &self,
        id: &str,
        scope: Option<&str>,
        now: Micros,
    ) -> Result<ReindexJob>;

    /// A reindex job by id.
    async fn reindex_job(&self, id: &str) -> Result<Option<ReindexJob>>;

    /// Claims the oldest unfinished reindex job for `owner` until `lease_until`: a job
    /// nobody holds, or whose holder's lease ended before `now` (PostgreSQL: `FOR UPDATE
    /// SKIP LOCKED`, so instances never claim the same job at once).
    async fn claim_reindex(
        &self,
        owner: &str,
        now: Micros,
        lease_until: Micros,
    ) -> Result<Option<ReindexJob>>;

    /// Up to `limit` live documents of type `scope` (all when `None`) with `rid` above
    /// `after`, in `rid` order.
    async fn live_documents(
        &self,
        scope: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LiveDoc>>;

    /// In one transaction: replaces the index rows of each document of the batch whose
    /// current version is still the one they were computed from (others are left as the
    /// newer write indexed them), and advances the job. Returns `false`, writing nothing,
    /// when `owner` no longer holds the job (its lease ended and another worker took it).
    async fn reindex_batch(&self, batch: ReindexBatch) -> Result<bool>;

    /// Folds the appended deltas of up to `limit` token values in `idx_token_counts`
    /// into one row each, keeping every sum; returns how many values it folded (fewer
    /// than `limit` when none are left). Safe to run on several instances at once.
    async fn compact_counts(&self, limit: u32) -> Result<u32>;

    /// Up to `limit` documents waiting to be put into the timeline: written by an
    /// earlier release, which does not keep it. Searches do not use the timeline while
    /// any wait.
    async fn stale_timeline(&self, limit: u32) -> Result<Vec<StaleDoc>>;

    /// In one transaction: replaces the timeline entries of each document whose
    /// current version is still the one its rows were computed from, and takes it off
    /// the waiting list; a document written meanwhile is taken off when that write
    /// kept the timeline, and waits on otherwise.
    async fn refresh_timeline(&self, docs: Vec<TimelineRefresh>) -> Result<()>;

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
