//! The FHIR resource repository: every RESTful interaction (create, read, vread,
//! update, patch, delete, history, batch and transaction) as a transport-free
//! operation over a [`Store`].
//!
//! This crate owns FHIR versioning: it stamps `meta`, checks `If-Match` versions and
//! retries optimistic writes that lost a race. It knows nothing of HTTP: callers pass
//! parsed headers in and turn [`RepoError`] into responses.

mod bundle;
mod conditional;
mod error;
mod history;
mod indexer;
mod registry;
mod reindex;
mod search;
mod timeline;
mod write;

use std::sync::Arc;

use ember_store::Store;

pub use bundle::{BundleKind, Prefer};
pub use conditional::{ConditionalDeleted, parse_condition};
pub use error::RepoError;
pub use history::{HistoryPage, HistoryParams, HistoryScope, history_bundle};
pub use registry::SearchParams;
pub use search::{Handling, SearchScope};
pub use write::{Deleted, PatchDocument, Stored, etag, parse_etag};

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// Limits that protect the server from oversized work.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deepest JSON nesting accepted in a resource.
    pub max_json_depth: usize,
    /// Most entries in a batch or transaction Bundle.
    pub max_bundle_entries: usize,
    /// Default and maximum page size of history.
    pub default_count: u32,
    pub max_count: u32,
    /// How often a write that lost a version race is retried before giving up.
    pub write_retries: u32,
    /// Structural validation of every resource written.
    pub validation: ember_fhir::validate::Mode,
    /// Most resources one conditional delete may remove; 0 or 1 allows single-match
    /// conditional deletes only.
    pub max_conditional_delete: u32,
    /// The run-time search parameters (stored SearchParameters) that writes index and
    /// searches find; shared by clones and kept current by the [`Repo`].
    pub search_params: SearchParams,
    /// How long a reindex worker holds a job without committing a batch before another
    /// instance may resume it.
    pub reindex_lease: std::time::Duration,
    /// Documents per reindex batch (one transaction).
    pub reindex_batch: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_json_depth: 64,
            max_bundle_entries: 10_000,
            default_count: 20,
            max_count: 1000,
            write_retries: 32,
            validation: ember_fhir::validate::Mode::Strict,
            max_conditional_delete: 100,
            search_params: SearchParams::default(),
            reindex_lease: std::time::Duration::from_secs(60),
            reindex_batch: 500,
        }
    }
}

/// The FHIR repository. Cheap to clone.
#[derive(Clone)]
pub struct Repo {
    store: Arc<dyn Store>,
    limits: Arc<Limits>,
    /// Set once the background work runs: wakes the reindex worker.
    background: Arc<std::sync::OnceLock<Arc<tokio::sync::Notify>>>,
    /// This repository's tag in bus messages.
    origin: Arc<str>,
}

impl Repo {
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        let origin = ember_fhir::id::new_id();
        // Commits that write a SearchParameter reload `limits.search_params`.
        let store = Arc::new(registry::Watched {
            inner: store,
            params: limits.search_params.clone(),
            origin: origin.clone(),
        });
        Self {
            store,
            limits: Arc::new(limits),
            background: Arc::default(),
            origin: origin.into(),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// Checks that `res_type` names a concrete R4 resource type.
pub fn check_type(res_type: &str) -> Result<()> {
    if ember_fhir::is_resource_type(res_type) {
        Ok(())
    } else {
        Err(RepoError::UnknownType(res_type.to_owned()))
    }
}

/// Checks that `id` is a valid logical id.
pub fn check_id(id: &str) -> Result<()> {
    if ember_fhir::id::is_valid_id(id) {
        Ok(())
    } else {
        Err(RepoError::Invalid(format!(
            "{id:?} is not a valid resource id ([A-Za-z0-9-.]{{1,64}})"
        )))
    }
}
