//! `$reindex`: background jobs that recompute the index rows of every current resource
//! of one type (or of all types), for instance after a SearchParameter was added.
//!
//! A job is a row in the store ([`ember_store::ReindexJob`]). Every instance runs one
//! worker ([`Repo::start_background`]) that claims the oldest unfinished job with a
//! lease ([`Limits::reindex_lease`]) and works through it in batches of
//! [`Limits::reindex_batch`] documents in `rid` order. Each batch is one transaction
//! that replaces a document's rows only when its version is still the one they were
//! computed from (a concurrent write indexed the newer version itself), advances the
//! job's cursor and renews the lease; no version is written. When an instance dies,
//! its lease runs out and another worker (or the same instance after a restart)
//! resumes from the last committed batch. Idle workers look for jobs every second and
//! are woken at once when a job is queued on any instance (bus message `reindex`).
//!
//! The same background work folds the token-count deltas that triggers append on every
//! index write ([`Repo::compact_counts`]), so counted values stay one row each, and puts
//! documents written by an earlier release into the patient timelines
//! ([`Repo::refresh_timeline`]).
//!
//! [`Limits::reindex_lease`]: crate::Limits::reindex_lease
//! [`Limits::reindex_batch`]: crate::Limits::reindex_batch

use std::sync::Arc;
use std::time::Duration;

use ember_fhir::instant;
use ember_store::{ReindexBatch, ReindexJob, Reindexed};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::registry::MESSAGE;
use crate::{Repo, RepoError, Result, check_id, check_type};

/// The bus message that wakes the idle workers of every instance.
const WAKE: &str = "reindex";

/// How often an idle worker looks for a job (for leases that ran out).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// How often each instance folds the appended token-count deltas.
const COMPACT_EVERY: Duration = Duration::from_secs(5);

/// Token values folded per statement.
const COMPACT_BATCH: u32 = 1000;

impl Repo {
    /// Queues a reindex of every current resource of `res_type` (all types when
    /// `None`) and returns the job.
    pub async fn reindex(&self, res_type: Option<&str>) -> Result<ReindexJob> {
        if let Some(t) = res_type {
            check_type(t)?;
        }
        let id = ember_fhir::id::new_id();
        let job = self
            .store
            .enqueue_reindex(&id, res_type, instant::now())
            .await?;
        if let Some(wake) = self.background.get() {
            wake.notify_one();
        }
        if let Err(e) = self.store.publish(WAKE).await {
            tracing::warn!(error = %e, "cannot wake the reindex workers of other instances");
        }
        tracing::info!(
            job = job.id,
            scope = res_type.unwrap_or("*"),
            total = job.total,
            "reindex queued"
        );
        Ok(job)
    }

    /// The state of a reindex job as a `Parameters` resource.
    pub async fn reindex_status(&self, id: &str) -> Result<Value> {
        check_id(id)?;
        let job = self
            .store
            .reindex_job(id)
            .await?
            .ok_or_else(|| RepoError::NotFound(format!("the $reindex job {id}")))?;
        Ok(job_parameters(&job))
    }

    /// Loads the run-time search parameters from the store.
    pub async fn load_search_params(&self) -> Result<usize> {
        Ok(self.limits.search_params.reload(&**self.store()).await?)
    }

    /// Starts, once per repository, the work that runs beside requests: listening on
    /// the store's bus (SearchParameter changes on other instances, queued reindex
    /// jobs) and the reindex worker. Does nothing outside a Tokio runtime.
    pub fn start_background(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut first = false;
        let wake = self.background.get_or_init(|| {
            first = true;
            Arc::new(Notify::new())
        });
        if !first {
            return;
        }
        let wake = Arc::clone(wake);
        let repo = self.clone();
        let own = format!("{MESSAGE} {}", self.origin);
        let (bus_repo, bus_wake, bus_runtime) = (self.clone(), Arc::clone(&wake), runtime.clone());
        self.store.subscribe(Arc::new(move |message: &str| {
            let reload = message == ember_store::RESYNC
                || (message.split(' ').next() == Some(MESSAGE) && message != own);
            if reload {
                let repo = bus_repo.clone();
                bus_runtime.spawn(async move {
                    if let Err(e) = repo.load_search_params().await {
                        tracing::error!(error = %e, "cannot reload the run-time search parameters");
                    }
                });
            }
            if message == WAKE || message == ember_store::RESYNC {
                bus_wake.notify_one();
            }
        }));
        let compactor = self.clone();
        runtime.spawn(async move {
            loop {
                tokio::time::sleep(COMPACT_EVERY).await;
                if let Err(e) = compactor.compact_counts().await {
                    tracing::warn!(error = %e, "token count compaction: retrying");
                }
            }
        });
        let refresher = self.clone();
        runtime.spawn(async move {
            loop {
                if let Err(e) = refresher.refresh_timeline().await {
                    tracing::warn!(error = %e, "timeline refresh: retrying");
                }
                tokio::time::sleep(IDLE_POLL).await;
            }
        });
        let owner = ember_fhir::id::new_id();
        runtime.spawn(async move {
            loop {
                match repo.reindex_step(&owner).await {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "reindex worker: retrying"),
                }
                let _ = tokio::time::timeout(IDLE_POLL, wake.notified()).await;
            }
        });
    }

    /// Folds the appended deltas of the token counts (see migration 0004) until none
    /// are left; returns the token values folded. The background work does this every
    /// few seconds; a count is right before and after.
    pub async fn compact_counts(&self) -> Result<u64> {
        let mut folded = 0;
        loop {
            let n = self.store.compact_counts(COMPACT_BATCH).await?;
            folded += u64::from(n);
            if n < COMPACT_BATCH {
                return Ok(folded);
            }
        }
    }

    /// Claims a job and works through it; `false` when there was none to claim.
    pub(crate) async fn reindex_step(&self, owner: &str) -> Result<bool> {
        let lease = i64::try_from(self.limits.reindex_lease.as_micros()).unwrap_or(i64::MAX);
        let now = instant::now();
        let Some(job) = self
            .store
            .claim_reindex(owner, now, now.saturating_add(lease))
            .await?
        else {
            return Ok(false);
        };
        tracing::info!(
            job = job.id,
            cursor = job.cursor,
            processed = job.processed,
            "reindex job claimed"
        );
        let batch = self.limits.reindex_batch.max(1);
        let mut cursor = job.cursor;
        loop {
            let docs = self
                .store
                .live_documents(job.scope.as_deref(), cursor, batch)
                .await?;
            let done = docs.len() < batch as usize;
            let next = docs.last().map_or(cursor, |d| d.rid);
            let processed = docs.len() as i64;
            let params = self.limits.search_params.clone();
            let rows = tokio::task::spawn_blocking(move || {
                docs.into_iter()
                    .filter_map(|d| {
                        let body: Value = serde_json::from_str(&d.body).ok()?;
                        Some(Reindexed {
                            rid: d.rid,
                            version: d.version,
                            index: crate::indexer::rows_of(&body, &params),
                        })
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| RepoError::Store(ember_store::StoreError::Backend(e.to_string())))?;
            let now = instant::now();
            let held = self
                .store
                .reindex_batch(ReindexBatch {
                    job: job.id.clone(),
                    owner: owner.to_owned(),
                    docs: rows,
                    processed,
                    cursor: next,
                    done,
                    now,
                    lease_until: now.saturating_add(lease),
                })
                .await?;
            if !held {
                tracing::warn!(job = job.id, "reindex job taken over by another worker");
                return Ok(true);
            }
            cursor = next;
            if done {
                tracing::info!(job = job.id, "reindex job done");
                return Ok(true);
            }
        }
    }
}

/// A job as the `Parameters` the status endpoint answers with.
fn job_parameters(job: &ReindexJob) -> Value {
    let mut parameter = vec![
        json!({"name": "id", "valueString": job.id}),
        json!({"name": "status", "valueCode": job.status.as_str()}),
        json!({"name": "scope", "valueString": job.scope.as_deref().unwrap_or("*")}),
        json!({"name": "processed", "valueInteger": job.processed}),
        json!({"name": "total", "valueInteger": job.total}),
        json!({"name": "created", "valueInstant": instant::format_instant(job.created_at)}),
    ];
    if let Some(t) = job.started_at {
        parameter.push(json!({"name": "started", "valueInstant": instant::format_instant(t)}));
    }
    if let Some(t) = job.finished_at {
        parameter.push(json!({"name": "finished", "valueInstant": instant::format_instant(t)}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}
