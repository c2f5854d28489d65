//! Versioned documents and their search: reads, the one commit every change goes
//! through, history, and search over the index rows.

use async_trait::async_trait;

use crate::jobs::{NewJob, Progress};
use crate::{Backend, Hit, Hits, IndexRows, Micros, Result, SearchQuery};

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
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Patch => "patch",
            Change::Delete => "delete",
        }
    }

    pub(crate) fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "create" => Change::Create,
            "update" => Change::Update,
            "patch" => Change::Patch,
            "delete" => Change::Delete,
            other => {
                return Err(crate::StoreError::Backend(format!(
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

/// New index rows for one document, computed from `version`.
#[derive(Debug, Clone)]
pub struct Reindexed {
    pub rid: i64,
    pub version: i64,
    pub index: IndexRows,
}

/// Everything one transaction stores: the only way anything is written.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    /// Checked first, each under its lock; when one matches, nothing is stored.
    pub guards: Vec<Guard>,
    /// New versions.
    pub writes: Vec<Write>,
    /// Index rows recomputed for current versions, without a new version; a document
    /// written meanwhile keeps the rows that write gave it.
    pub reindexed: Vec<Reindexed>,
    /// Jobs enqueued with the writes (the transactional outbox).
    pub jobs: Vec<NewJob>,
    /// Progress of jobs the committer holds; the commit fails with
    /// [`crate::StoreError::LeaseLost`], storing nothing, when it no longer holds one.
    pub progress: Vec<Progress>,
}

/// The result of [`Documents::commit`].
#[derive(Debug, Clone, PartialEq)]
pub enum Committed {
    /// Everything is stored; the ids of the commit's jobs, in order (the existing job's
    /// id for an idempotency key enqueued before).
    Stored { jobs: Vec<String> },
    /// Guard `index` matched these documents (at most its query's limit); nothing was
    /// stored.
    Matched { index: usize, hits: Vec<Hit> },
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

/// The current version of a live document, with its internal key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveDoc {
    pub rid: i64,
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub body: String,
}

/// A page of [`Documents::scan`]: live documents of one type whose current version was
/// written within `[since, until]`, with `rid` above `after`, in `rid` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scan<'a> {
    pub res_type: &'a str,
    /// Written at or after this instant; any time when `None`.
    pub since: Option<Micros>,
    /// Written at or before this instant.
    pub until: Micros,
    pub after: i64,
    pub limit: u32,
}

/// Versioned documents: read, commit, history and search.
#[async_trait]
pub trait Documents: Send + Sync {
    fn backend(&self) -> Backend;

    /// The current state of a document, deleted or not.
    async fn read(&self, res_type: &str, id: &str) -> Result<Option<Current>>;

    /// The current state of each of `keys` (type, id), in their order, as [`read`]
    /// gives it one by one: several documents in one round trip.
    ///
    /// [`read`]: Documents::read
    async fn read_many(&self, keys: &[(&str, &str)]) -> Result<Vec<Option<Current>>>;

    /// One version of a document.
    async fn vread(&self, res_type: &str, id: &str, version: i64) -> Result<Option<Version>>;

    /// Stores everything in `commit` in one transaction, or nothing: the guards are
    /// checked first, holding an exclusive lock on each guard's key until the end (so
    /// two commits with the same guard run one after the other on every instance);
    /// then the job's lease is checked and its progress recorded, the versions written
    /// (a write whose expected version does not match is
    /// [`crate::StoreError::Conflict`]), the reindexed rows replaced and the jobs
    /// enqueued.
    async fn commit(&self, commit: Commit) -> Result<Committed>;

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

    /// How many live documents match a search by the planner's statistics, without
    /// running it (PostgreSQL's estimate for the counting statement with these values);
    /// `None` where the backend has none or counting is as cheap, and the caller counts.
    async fn estimate(&self, query: &SearchQuery) -> Result<Option<u64>>;

    /// How the database runs the statement [`Documents::search`] would run for `query`
    /// now: PostgreSQL's `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of the prepared
    /// statement (which runs it, with the plan every connection uses), SQLite's `EXPLAIN
    /// QUERY PLAN` one step a line, indented under its parent. For diagnosis; the text
    /// is the backend's own.
    async fn explain(&self, query: &SearchQuery) -> Result<String>;

    /// The distinct targets `(type, id)` of the reference rows under `keys` of the
    /// documents `rids` (for `_include`).
    async fn referenced(&self, rids: &[i64], keys: &[i64]) -> Result<Vec<(String, String)>>;

    /// The live documents among `docs` (`(type, id)`), in no particular order.
    async fn fetch(&self, docs: &[(String, String)]) -> Result<Vec<Hit>>;

    /// Up to `limit` live documents of type `scope` (all when `None`) with `rid` above
    /// `after`, in `rid` order.
    async fn live_documents(
        &self,
        scope: Option<&str>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<LiveDoc>>;

    /// Up to `scan.limit` live documents of one type by when their current version was
    /// written, in `rid` order: a bulk read of a type without the search index.
    async fn scan(&self, scan: &Scan<'_>) -> Result<Vec<LiveDoc>>;
}
