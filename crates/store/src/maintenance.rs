//! Upkeep of the derived data and the connection: count folding, the patient
//! timelines of documents an earlier release wrote, probes and pool status.

use async_trait::async_trait;

use crate::{IndexRows, Result};

/// A document an earlier release wrote, waiting to be put into the timeline (see
/// [`Maintenance::stale_timeline`]), in its current state.
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
/// [`Maintenance::refresh_timeline`] stores the timeline entries.
#[derive(Debug, Clone)]
pub struct TimelineRefresh {
    pub doc: StaleDoc,
    pub index: IndexRows,
}

/// Connection pool use, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatus {
    pub max: usize,
    pub open: usize,
    pub idle: usize,
    pub waiting: usize,
}

/// Upkeep that runs beside requests.
#[async_trait]
pub trait Maintenance: Send + Sync {
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
}
