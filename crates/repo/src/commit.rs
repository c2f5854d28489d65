//! The commit funnel: [`Repo::commit`] is the one way this crate writes, whether a
//! create, update, patch, delete, conditional write, transaction, reindex batch or
//! operation.
//!
//! Components take part in every commit in three ways:
//! - a [`WriteRule`] sees each version first and may refuse the whole commit (the
//!   immutability of submitted measurements is one), with nothing stored;
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

use crate::{Repo, RepoError};

/// A version a commit writes, as a [`WriteListener`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    pub res_type: &'a str,
    pub id: &'a str,
    pub version: i64,
    pub change: Change,
    /// The version it replaces; `None` for a create.
    pub expected: Option<i64>,
    /// The JSON text of the version; `None` for a deletion.
    pub body: Option<&'a str>,
    /// The operation that writes it (see [`Repo::for_operation`]); `None` for the REST
    /// interactions.
    pub operation: Option<&'a str>,
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

/// Sees every version before it is committed and may refuse the commit: the error is
/// what the writer gets, and nothing is stored.
#[async_trait]
pub trait WriteRule: Send + Sync {
    async fn check(&self, repo: &Repo, written: &Written<'_>) -> Result<(), RepoError>;
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
    pub rules: Vec<Arc<dyn WriteRule>>,
    pub listeners: Vec<Arc<dyn WriteListener>>,
    pub hooks: Vec<Arc<dyn AfterCommit>>,
}

impl Repo {
    /// Checks `commit` against the write rules, then stores it in one transaction with
    /// the jobs its listeners ask for, and runs the after-commit hooks. A refusal or a
    /// store error (a version conflict, a lost lease) comes back with nothing stored.
    pub(crate) async fn commit(&self, mut commit: Commit) -> Result<Committed, RepoError> {
        let now = instant::now();
        let mut jobs = Vec::new();
        for w in &commit.writes {
            let written = Written {
                res_type: &w.res_type,
                id: &w.id,
                version: w.version,
                change: w.change,
                expected: w.expected,
                body: w.body.as_deref(),
                operation: self.operation,
            };
            if crate::access::current().is_some() {
                self.check_access(&written).await?;
            }
            for rule in &self.participants.rules {
                rule.check(self, &written).await?;
            }
            for listener in &self.participants.listeners {
                jobs.extend(listener.jobs(&written).into_iter().map(|r| new_job(r, now)));
            }
        }
        commit.jobs.extend(jobs);
        let versions: Vec<(String, String, i64)> = commit
            .writes
            .iter()
            .map(|w| (w.res_type.clone(), w.id.clone(), w.version))
            .collect();
        let committed = if crate::group::Group::takes(&commit) {
            self.group.commit(&self.store, commit).await?
        } else {
            self.store.commit(commit).await?
        };
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

    /// Refuses a write the caller's [`crate::access::Access`] does not allow: of the
    /// version written, and of the version it replaces.
    async fn check_access(&self, w: &Written<'_>) -> Result<(), RepoError> {
        use crate::access::{Reach, current, need_of};
        let need = need_of(w.change, w.expected.is_some());
        match current().map(|access| access.reach(w.res_type, need)) {
            None | Some(Reach::All) => return Ok(()),
            Some(Reach::None(reason)) => return Err(RepoError::Forbidden(reason)),
            Some(Reach::Some) => {}
        }
        if let Some(body) = w.body {
            crate::access::check_write(w.res_type, w.id, need, body)?;
        }
        if let Some(expected) = w.expected {
            let before = self.store.vread(w.res_type, w.id, expected).await?;
            if let Some(body) = before.and_then(|v| v.body) {
                crate::access::check_write(w.res_type, w.id, need, &body)?;
            }
        }
        Ok(())
    }

    /// Commits versions alone (see [`Repo::commit`]).
    pub(crate) async fn commit_writes(&self, writes: Vec<Write>) -> Result<(), RepoError> {
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
    ) -> Result<Committed, RepoError> {
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
            Committed::Matched { .. } => Err(RepoError::Store(StoreError::Backend(
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
