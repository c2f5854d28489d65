//! Durable storage of versioned JSON documents, on PostgreSQL or an embedded SQLite file.
//!
//! The store knows resource types, ids, versions and timestamps, never FHIR REST
//! semantics. Every write is a compare-and-swap on the current version of a document,
//! so concurrent writers on any number of instances can never lose an update or
//! produce two versions with the same number: the loser gets [`StoreError::Conflict`]
//! and decides itself whether to retry.
//!
//! A [`Store`] is four traits, one per concern: [`Documents`] (versions, the one
//! [`Commit`] every change goes through, history, search), [`Jobs`] (the durable job
//! queue whose outbox is the commit), [`Bus`] (messages between instances) and
//! [`Maintenance`] (derived data and probes). Each backend is a folder split the same
//! way.

mod bus;
mod documents;
mod index;
mod jobs;
mod judge;
mod kv;
mod maintenance;
mod migrate;
mod postgres;
mod query;
mod search_sql;
mod sql;
mod sqlite;
mod statements;

use std::sync::Arc;

pub use bus::{Bus, RESYNC, Subscriber};
pub use documents::{
    Change, Commit, Committed, Current, Documents, Guard, HistoryQuery, HistoryRow, HistoryScope,
    LiveDoc, Reindexed, Scan, Version, Write,
};
pub use index::{
    DateRow, IndexRows, NumberRow, QuantityRow, ReferenceRow, Slot, StringRow, TextKind, TextRow,
    Timeline, TimelineEntry, TokenRow, UriRow, key,
};
pub use jobs::{Job, JobState, Jobs, NewJob, Progress};
pub use judge::judge;
pub use kv::{Kv, KvEntry, KvExpect, KvItem, KvPut};
pub use maintenance::{Maintenance, PoolStatus, StaleDoc, TimelineRefresh};
pub use postgres::PgStore;
pub use query::{
    Col, Cond, Cursor, Filter, Hit, Hits, Op, Rows, SearchQuery, Sort, SortKey, Table,
    TimelinePath, Val,
};
pub use sqlite::SqliteStore;
pub use statements::statements;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// Errors at the storage boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A write's expected version did not match; nothing of the commit was stored.
    #[error("version conflict on write {index}")]
    Conflict { index: usize },
    /// A commit recorded the progress of a job its committer no longer holds (the
    /// lease ended and another instance took the job); nothing was stored.
    #[error("the lease on job {0} was lost")]
    LeaseLost(String),
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

/// A store: every concern of one database. Implementations are cheap to share
/// (`Arc<dyn Store>`), and an `Arc<dyn Store>` is also an `Arc` of each part.
pub trait Store: Documents + Jobs + Kv + Bus + Maintenance + 'static {}

impl<T: Documents + Jobs + Kv + Bus + Maintenance + 'static> Store for T {}

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
