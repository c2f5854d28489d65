//! The commit funnel: [`Repo::commit`] is the one way this crate writes, whether a
//! create, update, patch, delete, conditional write, transaction, reindex batch or
//! operation.
//!
//! Components take part in every commit in two ways:
//! - a [`WriteListener`] sees each version before the commit and returns the jobs it
//!   calls for; they are enqueued in the same transaction as the versions (the
//!   outbox), so a rolled-back write leaves no job and a committed one always leaves
//!   them;
//! - an [`AfterCommit`] hook runs once the commit is stored, before [`Repo::commit`]
//!   returns (the SearchParameter registry reloads this way, and the job workers of
//!   every instance are woken when jobs were enqueued).

use std::sync::Arc;

use async_trait::async_trait;
use ember_fhir::{id, instant};
use ember_store::{Change, Commit, Committed, Guard, NewJob, StoreError, Write};
use serde_json::Value;

use crate::Repo;

/// A version a commit writes, as a [`WriteListener`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub res_type: &'a str,
    pub id: &'a str,
    pub version: i64,
    pub change: Change,
    /// The JSON text of the version; `None` for a deletion.
    pub body: Option<&'a str>,
}

/// A job a listener or an operation asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    pub kind: String,
    pub payload: Value,
    /// A second request with the same key makes no second job.
    pub key: Option<String>,
}

/// Sees every version before it is committed; the jobs it returns are enqueued with it.
pub trait WriteListener: Send + Sync {
    fn jobs(&self, written: &Written<'_>) -> Vec<JobRequest>;
}

/// What a commit stored, for [`AfterCommit`] hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `(type, id, version)` of every version written.
    pub versions: Vec<(String, String, i64)>,
    /// The ids of the jobs enqueued.
    pub jobs: Vec<String>,
}

/// Runs after each stored commit, before the commit returns.
#[async_trait]
pub trait AfterCommit: Send + Sync {
    async fn after_commit(&self, repo: &Repo, stored: &Stored);
}

/// The listeners and hooks of a repository.
#[derive(Clone, Default)]
pub(crate) struct Participants {
    pub listeners: Vec<Arc<dyn WriteListener>>,
    pub hooks: Vec<Arc<dyn AfterCommit>>,
}

impl Repo {
    /// Stores `commit` in one transaction with the jobs its listeners ask for, then
    /// runs the after-commit hooks. Store errors (a version conflict, a lost lease)
    /// come back as they are, nothing stored.
    pub(crate) async fn commit(&self, mut commit: Commit) -> Result<Committed, StoreError> {
        let now = instant::now();
        for w in &commit.writes {
            let written = Written {
                res_type: &w.res_type,
                id: &w.id,
                version: w.version,
                change: w.change,
                body: w.body.as_deref(),
            };
            for listener in &self.participants.listeners {
                for request in listener.jobs(&written) {
                    commit.jobs.push(new_job(request, now));
                }
            }
        }
        let versions: Vec<(String, String, i64)> = commit
            .writes
            .iter()
            .map(|w| (w.res_type.clone(), w.id.clone(), w.version))
            .collect();
        let committed = self.store.commit(commit).await?;
        if let Committed::Stored { jobs } = &committed {
            let stored = Stored {
                versions,
                jobs: jobs.clone(),
            };
            for hook in &self.participants.hooks {
                hook.after_commit(self, &stored).await;
            }
        }
        Ok(committed)
    }

    /// Commits versions alone (see [`Repo::commit`]).
    pub(crate) async fn commit_writes(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let commit = Commit {
            writes,
            ..Default::default()
        };
        self.commit(commit).await.map(|_| ())
    }

    /// Commits versions unless a guard matches (see [`Repo::commit`]).
    pub(crate) async fn commit_guarded(
        &self,
        guards: Vec<Guard>,
        writes: Vec<Write>,
    ) -> Result<Committed, StoreError> {
        self.commit(Commit {
            guards,
            writes,
            ..Default::default()
        })
        .await
    }

    /// Enqueues jobs outside any write (an operation such as `$reindex`); returns their
    /// ids, the existing job's for a key enqueued before.
    pub async fn enqueue(&self, requests: Vec<JobRequest>) -> crate::Result<Vec<String>> {
        let now = instant::now();
        let commit = Commit {
            jobs: requests.into_iter().map(|r| new_job(r, now)).collect(),
            ..Default::default()
        };
        match self.commit(commit).await? {
            Committed::Stored { jobs } => Ok(jobs),
            Committed::Matched { .. } => Err(crate::RepoError::Store(StoreError::Backend(
                "a commit without guards matched one".into(),
            ))),
        }
    }
}

/// A job to enqueue now, in the trace context of the current request.
pub(crate) fn new_job(request: JobRequest, now: i64) -> NewJob {
    NewJob {
        id: id::new_id(),
        kind: request.kind,
        payload: request.payload.to_string(),
        key: request.key,
        due: now,
        trace: ember_platform::trace::TraceContext::current().map(|t| t.to_carrier()),
        created_at: now,
    }
}
