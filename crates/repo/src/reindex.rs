//! `$reindex`: a job (kind `reindex`) that recomputes the index rows of every current
//! resource of one type (or of all types), for instance after a SearchParameter was
//! added.
//!
//! The job works through the documents in batches of [`Limits::reindex_batch`] in
//! `rid` order. Each batch is one commit through the funnel that replaces a document's
//! rows only when its version is still the one they were computed from (a concurrent
//! write indexed the newer version itself), and records the job's progress (`cursor`,
//! `processed`, `total`) with it, which renews the lease; no version is written. When
//! an instance dies, another resumes from the last committed batch (see
//! [`crate::jobs`]).
//!
//! [`Limits::reindex_batch`]: crate::Limits::reindex_batch

use async_trait::async_trait;
use ember_fhir::instant;
use ember_store::{Commit, Job, JobState, Reindexed, SearchQuery};
use serde_json::{Value, json};

use crate::commit::JobRequest;
use crate::jobs::{JobContext, JobError, JobHandler, Ran};
use crate::{Repo, RepoError, Result, check_id, check_type};

/// The kind of reindex jobs.
pub(crate) const KIND: &str = "reindex";

/// The `reindex` job handler.
pub(crate) struct Reindex;

/// Where a reindex job stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Position {
    /// The last `rid` whose batch is committed.
    cursor: i64,
    processed: i64,
    total: i64,
}

impl Position {
    fn of(job: &Job) -> Self {
        let p = crate::jobs::progress(job);
        let n = |k: &str| p.get(k).and_then(Value::as_i64).unwrap_or(0);
        Position {
            cursor: n("cursor"),
            processed: n("processed"),
            total: n("total"),
        }
    }

    fn to_json(self) -> Value {
        json!({"cursor": self.cursor, "processed": self.processed, "total": self.total})
    }
}

/// The scope (a type, or every type) of a reindex job's payload.
fn scope(job: &Job) -> Option<String> {
    serde_json::from_str::<Value>(&job.payload)
        .ok()
        .and_then(|p| p.get("scope").and_then(Value::as_str).map(str::to_owned))
}

#[async_trait]
impl JobHandler for Reindex {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let repo = ctx.repo();
        let scope = scope(job);
        if let Some(t) = &scope {
            check_type(t).map_err(|_| JobError::Failed(format!("{t:?} is not a resource type")))?;
        }
        let mut at = Position::of(job);
        if job.progress.is_none() {
            at.total = i64::try_from(repo.live_count(scope.as_deref()).await?).unwrap_or(i64::MAX);
            ctx.checkpoint(Commit::default(), &at.to_json()).await?;
        }
        let batch = repo.limits.reindex_batch.max(1);
        loop {
            if ctx.stopping() {
                return Ok(Ran::Stopped);
            }
            let docs = repo
                .store
                .live_documents(scope.as_deref(), at.cursor, batch)
                .await?;
            let done = docs.len() < batch as usize;
            let next = docs.last().map_or(at.cursor, |d| d.rid);
            let processed = docs.len() as i64;
            let params = repo.params.clone();
            let reindexed = tokio::task::spawn_blocking(move || {
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
            .map_err(|e| JobError::Failed(format!("indexing failed: {e}")))?;
            at.cursor = next;
            at.processed += processed;
            let commit = Commit {
                reindexed,
                ..Default::default()
            };
            ctx.checkpoint(commit, &at.to_json()).await?;
            if done {
                tracing::info!(processed = at.processed, "reindex done");
                return Ok(Ran::Done(Some(at.to_json())));
            }
        }
    }
}

impl Repo {
    /// Queues a reindex of every current resource of `res_type` (all types when
    /// `None`) and returns the job's id.
    pub async fn reindex(&self, res_type: Option<&str>) -> Result<String> {
        if let Some(t) = res_type {
            check_type(t)?;
        }
        let request = JobRequest {
            kind: KIND.to_owned(),
            payload: json!({"scope": res_type}),
            key: None,
        };
        let id = self
            .enqueue(vec![request])
            .await?
            .pop()
            .ok_or_else(|| RepoError::Invalid("no job was queued".into()))?;
        tracing::info!(job = id, scope = res_type.unwrap_or("*"), "reindex queued");
        Ok(id)
    }

    /// The state of a reindex job as a `Parameters` resource.
    pub async fn reindex_status(&self, id: &str) -> Result<Value> {
        check_id(id)?;
        let job = self
            .store
            .job(id)
            .await?
            .filter(|j| j.kind == KIND)
            .ok_or_else(|| RepoError::NotFound(format!("the $reindex job {id}")))?;
        Ok(job_parameters(&job))
    }

    /// How many live documents of `res_type` (of every type when `None`) there are.
    async fn live_count(&self, res_type: Option<&str>) -> Result<u64> {
        let types = match res_type {
            Some(t) => vec![t.to_owned()],
            None => ember_fhir::resource_types()
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
        };
        let query = SearchQuery {
            types,
            filters: Vec::new(),
            sort: Vec::new(),
            cursor: None,
            limit: 1,
            timeline: None,
        };
        Ok(self.store.count(&query).await?)
    }
}

/// A job as the `Parameters` the status endpoint answers with.
fn job_parameters(job: &Job) -> Value {
    let at = Position::of(job);
    let status = match job.state {
        JobState::Queued if job.started_at.is_some() => "running",
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Done => "done",
        JobState::Dead => "failed",
    };
    let mut parameter = vec![
        json!({"name": "id", "valueString": job.id}),
        json!({"name": "status", "valueCode": status}),
        json!({"name": "scope", "valueString": scope(job).as_deref().unwrap_or("*")}),
        json!({"name": "processed", "valueInteger": at.processed}),
        json!({"name": "total", "valueInteger": at.total}),
        json!({"name": "created", "valueInstant": instant::format_instant(job.created_at)}),
    ];
    if let Some(t) = job.started_at {
        parameter.push(json!({"name": "started", "valueInstant": instant::format_instant(t)}));
    }
    if let Some(t) = job.finished_at {
        parameter.push(json!({"name": "finished", "valueInstant": instant::format_instant(t)}));
    }
    if let Some(e) = &job.last_error {
        parameter.push(json!({"name": "error", "valueString": e}));
    }
    json!({"resourceType": "Parameters", "parameter": parameter})
}
