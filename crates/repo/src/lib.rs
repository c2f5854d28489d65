//! The FHIR resource repository: every RESTful interaction (create, read, vread,
//! update, patch, delete, history, batch and transaction) as a transport-free
//! operation over a [`Store`].
//!
//! This crate owns FHIR versioning: it stamps `meta`, checks `If-Match` versions and
//! retries optimistic writes that lost a race. It knows nothing of HTTP: callers pass
//! parsed headers in and turn [`RepoError`] into responses.

pub mod access;
pub mod audit;
mod background;
mod bundle;
mod commit;
mod conditional;
mod error;
pub mod export;
mod group;
mod history;
mod indexer;
mod jobs;
pub mod kv;
mod prefer;
mod profiles;
mod read;
mod registry;
mod reindex;
mod search;
mod terminology;
mod timeline;
mod turns;
mod write;

use std::sync::Arc;
use std::time::Duration;

use ember_store::Store;
use tokio::sync::Notify;

pub use background::Background;
pub use bundle::BundleKind;
pub use commit::{
    AfterCommit, JobRequest, Stored as CommitStored, WriteListener, WriteRule, Written,
};
pub use conditional::{ConditionalDeleted, parse_condition};
pub use error::RepoError;
pub use history::{HistoryPage, HistoryParams, HistoryScope, history_bundle};
pub use jobs::{JobContext, JobError, JobHandler, Ran};
pub use prefer::Prefer;
pub use read::subset_read;
pub use registry::SearchParams;
pub use search::matcher::{Candidate, Matcher};
pub use search::{Handling, Pages, SearchScope};
pub use terminology::{Coded, ExpandRequest, LookupRequest, ValidateCodeRequest, ValueSetRef};
pub use write::{Deleted, PatchDocument, Stored, etag, parse_etag};

pub type Result<T, E = RepoError> = std::result::Result<T, E>;

/// Limits that protect the server from oversized work, and the pace of background
/// work.
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
    /// How long a worker holds a job without recording progress before another
    /// instance may take it over.
    pub job_lease: Duration,
    /// Attempts of a failing job before it is dead-lettered.
    pub job_max_attempts: u32,
    /// The pause before the second attempt; it doubles with every further one.
    pub job_retry_base: Duration,
    /// Jobs one instance runs at once.
    pub job_concurrency: usize,
    /// Documents per reindex batch (one transaction).
    pub reindex_batch: u32,
    /// How long `$export` files are kept after the export ends.
    pub export_expiry: Duration,
    /// Most resources in one `$export` NDJSON file.
    pub export_file_resources: u64,
    /// Most codes in one value set expansion (`$expand`, `$validate-code`).
    pub max_expansion: usize,
    /// Most codes one search modifier (`:in`, `:not-in`, `:below`, `:above`) may
    /// stand for, so that its SQL stays bounded.
    pub max_search_codes: usize,
    /// Checks every resource written against the stored profiles its `meta.profile`
    /// names (see `profiles`).
    pub validate_profiles: bool,
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
            job_lease: Duration::from_secs(60),
            job_max_attempts: 10,
            job_retry_base: Duration::from_secs(1),
            job_concurrency: 8,
            reindex_batch: 500,
            export_expiry: Duration::from_secs(24 * 3600),
            export_file_resources: 10_000,
            max_expansion: 10_000,
            max_search_codes: 1_000,
            validate_profiles: false,
        }
    }
}

/// The FHIR repository. Cheap to clone.
#[derive(Clone)]
pub struct Repo {
    store: Arc<dyn Store>,
    limits: Arc<Limits>,
    /// The run-time search parameters that writes index and searches find.
    params: SearchParams,
    participants: Arc<commit::Participants>,
    handlers: Arc<jobs::Handlers>,
    /// Wakes this instance's idle job worker.
    wake: Arc<Notify>,
    /// Wakes the idle job workers of the other instances.
    remote_wake: Arc<jobs::RemoteWake>,
    /// The earliest retry this instance's worker scheduled, to wake up for it.
    next_retry: Arc<std::sync::Mutex<Option<i64>>>,
    /// This repository's tag in bus messages.
    origin: Arc<str>,
    /// The operation this handle writes for (see [`Repo::for_operation`]).
    operation: Option<&'static str>,
    /// Job kinds enqueued on a schedule (see [`Repo::with_schedule`]).
    schedules: Arc<Vec<jobs::Schedule>>,
    /// This instance's compiled profiles.
    profiles: Arc<profiles::Cache>,
    /// This instance's terminology caches.
    terminology: Arc<terminology::cache::Caches>,
    /// Routes the bus's invalidations to this instance's caches.
    caches: ember_platform::cache::CacheHub,
    /// Queues this instance's writers of one resource (see [`turns`]).
    turns: Arc<turns::Turns>,
    /// Stores the creates that arrive together in one commit (see [`group`]).
    group: Arc<group::Group>,
}

impl Repo {
    /// A repository with Ember's own commit participants (the SearchParameter
    /// registry, the job wake-up) and job handlers (`reindex`, `export`, `audit`,
    /// `noop`).
    pub fn new(store: Arc<dyn Store>, limits: Limits) -> Self {
        let mut participants = commit::Participants::default();
        participants.hooks.push(Arc::new(registry::Reload));
        participants.hooks.push(Arc::new(jobs::Wake));
        participants
            .hooks
            .push(Arc::new(terminology::cache::Invalidation));
        participants.hooks.push(Arc::new(profiles::Invalidation));
        participants.rules.push(Arc::new(profiles::Rule));
        let mut handlers = jobs::Handlers::default();
        handlers.add(Arc::new(reindex::Reindex));
        handlers.add(Arc::new(export::Export));
        handlers.add(Arc::new(audit::AuditWriter));
        handlers.add(Arc::new(jobs::Noop));
        let terminology = Arc::new(terminology::cache::Caches::default());
        let caches = ember_platform::cache::CacheHub::new();
        caches.register(terminology.clone());
        let profiles = Arc::new(profiles::Cache::default());
        caches.register(profiles.clone());
        Self {
            store,
            limits: Arc::new(limits),
            params: SearchParams::default(),
            participants: Arc::new(participants),
            handlers: Arc::new(handlers),
            wake: Arc::new(Notify::new()),
            remote_wake: Arc::default(),
            next_retry: Arc::default(),
            origin: ember_fhir::id::new_id().into(),
            operation: None,
            schedules: Arc::default(),
            profiles,
            terminology: terminology.clone(),
            caches,
            turns: Arc::default(),
            group: Arc::default(),
        }
    }

    /// A handle on the same repository whose writes [`WriteRule`]s and
    /// [`WriteListener`]s see as made by `operation` (for example
    /// `"submit-measurement"`), so a rule can allow what only that operation may do.
    pub fn for_operation(&self, operation: &'static str) -> Self {
        Self {
            operation: Some(operation),
            ..self.clone()
        }
    }

    /// Adds a rule that may refuse any commit.
    pub fn with_rule(mut self, rule: Arc<dyn WriteRule>) -> Self {
        Arc::make_mut(&mut self.participants).rules.push(rule);
        self
    }

    /// Has the background work of every instance enqueue a job of `kind` once per
    /// `every`: the job's key is the period, so however many instances run, each
    /// period makes one job (its payload is `{"period": start, "every": seconds}`,
    /// the period's start in microseconds since the epoch).
    pub fn with_schedule(mut self, kind: &'static str, every: Duration) -> Self {
        Arc::make_mut(&mut self.schedules).push(jobs::Schedule { kind, every });
        self
    }

    /// Adds a listener that sees every version before it is committed.
    pub fn with_listener(mut self, listener: Arc<dyn WriteListener>) -> Self {
        Arc::make_mut(&mut self.participants)
            .listeners
            .push(listener);
        self
    }

    /// Adds a hook that runs after every stored commit.
    pub fn with_hook(mut self, hook: Arc<dyn AfterCommit>) -> Self {
        Arc::make_mut(&mut self.participants).hooks.push(hook);
        self
    }

    /// Adds (or replaces) the handler of a job kind.
    pub fn with_handler(mut self, handler: Arc<dyn JobHandler>) -> Self {
        Arc::make_mut(&mut self.handlers).add(handler);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The run-time search parameters.
    pub fn search_params(&self) -> &SearchParams {
        &self.params
    }

    /// Loads the run-time search parameters from the store.
    pub async fn load_search_params(&self) -> Result<usize> {
        Ok(self.params.reload(&*self.store).await?)
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

/// Checks that no parameter name or value of a query holds a control character (see
/// [`ember_fhir::control_char`]): such a value can match nothing stored, and it never
/// reaches the database.
pub fn check_controls(pairs: &[(String, String)]) -> Result<()> {
    for (name, value) in pairs {
        if let Some(c) = ember_fhir::control_char(name).or_else(|| ember_fhir::control_char(value))
        {
            return Err(RepoError::Invalid(format!(
                "parameter {:?}: control characters are not allowed (found U+{:04X})",
                name.escape_debug().to_string(),
                u32::from(c)
            )));
        }
    }
    Ok(())
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
