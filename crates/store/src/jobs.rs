//! The durable job queue: jobs are enqueued with the commit that causes them (see
//! [`crate::Commit::jobs`]), claimed under a lease by any instance, and finished,
//! failed (retried later or dead-lettered) or released.

use async_trait::async_trait;

use crate::{Micros, Result};

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// Unique among jobs (the repository gives each a new id).
    pub id: String,
    pub kind: String,
    /// JSON text.
    pub payload: String,
    /// Enqueueing a key that a job already has makes no second job.
    pub key: Option<String>,
    /// Not claimed before this instant.
    pub due: Micros,
    /// The trace context of the cause (JSON text), to run the job in.
    pub trace: Option<String>,
    pub created_at: Micros,
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    Queued,
    Running,
    Done,
    /// Failed as often as allowed; waits for a retry by hand.
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "done" => JobState::Done,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }
}

/// A stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    /// JSON text.
    pub payload: String,
    pub state: JobState,
    /// Claims so far (a claim that ended in a crash counts too).
    pub attempts: i32,
    /// Queued: not claimed before this; running: the end of the lease.
    pub due: Micros,
    /// Running: the worker holding the lease; done: the worker that ran it.
    pub lease_owner: Option<String>,
    /// JSON text, as the job's handler last recorded it.
    pub progress: Option<String>,
    pub last_error: Option<String>,
    pub key: Option<String>,
    /// JSON text: the trace context of the cause.
    pub trace: Option<String>,
    pub created_at: Micros,
    pub started_at: Option<Micros>,
    pub finished_at: Option<Micros>,
}

/// A held job's progress, recorded with a commit (see [`crate::Commit::progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub job: String,
    pub owner: String,
    /// JSON text; `None` keeps the progress recorded before.
    pub progress: Option<String>,
    /// The lease is extended to this instant.
    pub lease_until: Micros,
    /// When set, the commit ends the job: it is `done`, finished at this instant, so
    /// the work and the job's end are stored together or not at all.
    pub finished_at: Option<Micros>,
}

/// The job queue.
#[async_trait]
pub trait Jobs: Send + Sync {
    /// Claims up to `limit` jobs of `kinds` that are due at `now`, for `owner` until
    /// `lease_until`: queued jobs whose time has come and running ones whose lease
    /// ended, oldest due first; each claim counts as an attempt. On PostgreSQL with
    /// `FOR UPDATE SKIP LOCKED`, so instances never claim the same job at once.
    async fn claim(
        &self,
        owner: &str,
        kinds: &[&str],
        now: Micros,
        lease_until: Micros,
        limit: u32,
    ) -> Result<Vec<Job>>;

    /// Marks a held job done, with its last progress (`owner` stays recorded as the
    /// worker that ran it); `false` when `owner` no longer holds it.
    async fn finish(
        &self,
        id: &str,
        owner: &str,
        now: Micros,
        progress: Option<&str>,
    ) -> Result<bool>;

    /// Records a held job's failure: queued again, due at `retry_at`, or dead when that
    /// is `None`; `false` when `owner` no longer holds it.
    async fn fail(
        &self,
        id: &str,
        owner: &str,
        error: &str,
        retry_at: Option<Micros>,
    ) -> Result<bool>;

    /// Gives a held job back without counting the attempt, due at `now` (an instance
    /// that stops); `false` when `owner` no longer holds it.
    async fn release(&self, id: &str, owner: &str, now: Micros) -> Result<bool>;

    /// A job by id.
    async fn job(&self, id: &str) -> Result<Option<Job>>;

    /// Jobs in `state` (any when `None`), newest first, at most `limit`.
    async fn jobs(&self, state: Option<JobState>, limit: u32) -> Result<Vec<Job>>;

    /// Queues a dead job again, due at `now`, with its attempts reset; `false` when it
    /// is not dead.
    async fn retry(&self, id: &str, now: Micros) -> Result<bool>;

    /// Removes the jobs done before `before`; returns how many.
    async fn purge_done(&self, before: Micros) -> Result<u64>;
}
