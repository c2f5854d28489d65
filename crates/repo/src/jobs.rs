//! Background jobs: a [`JobHandler`] per kind, and the worker every instance runs,
//! which claims due jobs from the store's queue and runs them.
//!
//! A job runs in the trace context of the request that caused it, so its logs carry
//! that request's `id`. A handler that fails is retried with exponential backoff
//! (`job_retry_base` × 2^(attempt − 1), at most an hour, with jitter) until
//! `job_max_attempts`, then the job is dead-lettered with its reason; an operator
//! sees it and queues it again through the admin API ([`Repo::retry_job`]). A long
//! job records its progress with [`JobContext::checkpoint`], which also renews its
//! lease; when its instance dies, the lease runs out and another instance resumes it
//! from that progress. When the instance stops, handlers see
//! [`JobContext::stopping`], return [`Ran::Stopped`] at their next checkpoint, and
//! the job goes back to the queue at once.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ember_fhir::instant;
use ember_platform::trace::TraceContext;
use ember_store::{Commit, Job, JobState, Progress, StoreError};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

use crate::commit::AfterCommit;
use crate::{Repo, RepoError};

/// How often an idle worker looks for due jobs (retries, expired leases); new jobs
/// wake it at once through the bus.
const POLL: Duration = Duration::from_secs(1);

/// Runs the jobs of one kind.
#[async_trait]
pub trait JobHandler: Send + Sync {
    /// The kind of the jobs it runs.
    fn kind(&self) -> &'static str;

    /// Runs `job` (resuming from its progress, when it has one) to the end, or until
    /// the instance stops.
    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError>;
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ran {
    /// The job is done; its final progress, if any.
    Done(Option<Value>),
    /// The job is done, and the commit that stored its work said so already (see
    /// [`JobContext::create_once_and_finish`]).
    Recorded,
    /// The instance is stopping; the job goes back to the queue.
    Stopped,
}

/// Why a run did not end.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Retried later, dead-lettered after the last attempt.
    #[error("{0}")]
    Failed(String),
    /// Another instance holds the job now (this one's lease ran out).
    #[error("the lease was lost")]
    LeaseLost,
}

impl From<RepoError> for JobError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Store(e) => e.into(),
            e => JobError::Failed(e.to_string()),
        }
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::LeaseLost(_) => JobError::LeaseLost,
            e => JobError::Failed(e.to_string()),
        }
    }
}

/// What a running job can reach.
pub struct JobContext {
    repo: Repo,
    job: String,
    owner: String,
    stop: watch::Receiver<bool>,
}

impl JobContext {
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Whether the instance is stopping: the handler should return [`Ran::Stopped`]
    /// after its next checkpoint.
    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Commits `commit` together with the job's `progress`, and renews the lease.
    /// [`JobError::LeaseLost`], with nothing stored, when another instance took over.
    pub async fn checkpoint(&self, mut commit: Commit, progress: &Value) -> Result<(), JobError> {
        commit.progress = vec![self.progress(Some(progress), None)];
        self.repo.commit(commit).await?;
        Ok(())
    }

    /// Creates `resources` with `repo` (this job's repository, perhaps scoped to an
    /// operation) as [`Repo::create_once`] does, and ends the job with `progress` in the
    /// same commit, so its result and its end are stored together or not at all:
    /// [`Ran::Recorded`]. When one of them exists already, nothing is stored and the
    /// job ends as [`Ran::Done`].
    pub async fn create_once_and_finish(
        &self,
        repo: &Repo,
        resources: Vec<Value>,
        progress: Option<Value>,
    ) -> Result<Ran, JobError> {
        let end = self.progress(progress.as_ref(), Some(instant::now()));
        match repo.create_once_with(resources, Some(end)).await? {
            Some(_) => Ok(Ran::Recorded),
            None => Ok(Ran::Done(progress)),
        }
    }

    fn progress(&self, progress: Option<&Value>, finished_at: Option<i64>) -> Progress {
        Progress {
            job: self.job.clone(),
            owner: self.owner.clone(),
            progress: progress.map(Value::to_string),
            lease_until: lease_end(&self.repo),
            finished_at,
        }
    }
}

/// The job handlers of a repository, by kind.
#[derive(Clone, Default)]
pub(crate) struct Handlers(Vec<Arc<dyn JobHandler>>);

impl Handlers {
    pub fn add(&mut self, handler: Arc<dyn JobHandler>) {
        self.0.retain(|h| h.kind() != handler.kind());
        self.0.push(handler);
    }

    fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.0.iter().find(|h| h.kind() == kind).cloned()
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.0.iter().map(|h| h.kind()).collect()
    }
}

/// A job kind enqueued once per period (see [`Repo::with_schedule`]).
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub kind: &'static str,
    pub every: Duration,
}

impl Schedule {
    /// The job of the period `now` falls in: keyed by the period, so every instance
    /// asks for the same job and the queue keeps one.
    pub fn request(&self, now: i64) -> crate::JobRequest {
        let every = i64::try_from(self.every.as_micros())
            .unwrap_or(i64::MAX)
            .max(1);
        let period = now.div_euclid(every) * every;
        crate::JobRequest {
            kind: self.kind.to_owned(),
            payload: serde_json::json!({"period": period, "every": self.every.as_secs()}),
            key: Some(format!("{}:{period}", self.kind)),
        }
    }

    /// How often an instance asks: a tenth of the period, between 1 s and a minute,
    /// so a period's job is enqueued soon after it starts.
    pub fn tick(&self) -> Duration {
        (self.every / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// `noop`: does nothing. For measuring the queue, and for checking it works.
pub(crate) struct Noop;

#[async_trait]
impl JobHandler for Noop {
    fn kind(&self) -> &'static str {
        "noop"
    }

    async fn run(&self, _ctx: &JobContext, _job: &Job) -> Result<Ran, JobError> {
        Ok(Ran::Done(None))
    }
}

impl Repo {
    /// A job by id.
    pub async fn job(&self, id: &str) -> crate::Result<Option<Job>> {
        Ok(self.store.job(id).await?)
    }

    /// Jobs in `state` (any when `None`), newest first.
    pub async fn jobs(&self, state: Option<JobState>, limit: u32) -> crate::Result<Vec<Job>> {
        Ok(self.store.jobs(state, limit).await?)
    }

    /// Queues a dead job again, with its attempts reset, and wakes the workers;
    /// `false` when it is not dead.
    pub async fn retry_job(&self, id: &str) -> crate::Result<bool> {
        let queued = self.store.retry(id, instant::now()).await?;
        if queued {
            self.wake_workers();
        }
        Ok(queued)
    }

    /// Wakes the job workers of this instance at once and, through the bus, of every
    /// other soon after (see [`RemoteWake`]).
    pub(crate) fn wake_workers(&self) {
        self.wake.notify_one();
        self.remote_wake.ask(&self.store);
    }
}

/// The bus message that wakes idle job workers.
pub(crate) const WAKE: &str = "jobs";

/// The pause after each published wake-up: wake-ups asked for meanwhile make one
/// message, so a burst of commits costs the bus at most one message per pause.
const WAKE_PAUSE: Duration = Duration::from_millis(5);

/// Publishes the wake-up for other instances' workers from a task of its own, off the
/// path of the commit that asked: one message for all the wake-ups asked for while the
/// previous one was published and during the pause after it. A busy worker claims again
/// whenever one of its jobs ends, so only idle workers need the message, and they get
/// it within a pause.
pub(crate) struct RemoteWake {
    asked: Arc<Notify>,
    started: std::sync::Once,
}

impl Default for RemoteWake {
    fn default() -> Self {
        Self {
            asked: Arc::default(),
            started: std::sync::Once::new(),
        }
    }
}

impl RemoteWake {
    fn ask(&self, store: &Arc<dyn ember_store::Store>) {
        self.asked.notify_one();
        self.started.call_once(|| {
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return;
            };
            // Weak: the task ends once the repository is gone.
            let store = Arc::downgrade(store);
            let asked = Arc::clone(&self.asked);
            runtime.spawn(async move {
                loop {
                    asked.notified().await;
                    let Some(store) = store.upgrade() else {
                        return;
                    };
                    if let Err(e) = store.publish(WAKE).await {
                        tracing::warn!(error = %e, "cannot wake the job workers of other instances");
                    }
                    drop(store);
                    tokio::time::sleep(WAKE_PAUSE).await;
                }
            });
        });
    }
}

/// Wakes the job workers of every instance after a commit that enqueued jobs.
pub(crate) struct Wake;

#[async_trait]
impl AfterCommit for Wake {
    async fn after_commit(&self, repo: &Repo, stored: &crate::commit::Stored) {
        if !stored.jobs.is_empty() {
            repo.wake_workers();
        }
    }
}

fn lease_end(repo: &Repo) -> i64 {
    let lease = i64::try_from(repo.limits.job_lease.as_micros()).unwrap_or(i64::MAX);
    instant::now().saturating_add(lease)
}

/// The pause before attempt `attempts + 1`: `base` × 2^(attempts − 1), at most an
/// hour, ±20 % so that jobs failing together spread out.
pub(crate) fn backoff(base: Duration, attempts: i32) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let pause = base
        .saturating_mul(1u32 << exponent)
        .min(Duration::from_secs(3600));
    let jitter = f64::from(uuid::Uuid::new_v4().as_bytes()[0]) / 255.0 * 0.4 + 0.8;
    pause.mul_f64(jitter)
}

/// Claims and runs jobs until `stop` turns true, then waits for the running ones to
/// return (they see the stop at their next checkpoint).
pub(crate) async fn work(repo: Repo, owner: String, mut stop: watch::Receiver<bool>) {
    let kinds = repo.handlers.kinds();
    let slots = Arc::new(Semaphore::new(repo.limits.job_concurrency.max(1)));
    let wake: Arc<Notify> = Arc::clone(&repo.wake);
    let mut running = JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        let free = slots.available_permits();
        let mut claimed = Vec::new();
        if free > 0 {
            let now = instant::now();
            match repo
                .store
                .claim(&owner, &kinds, now, lease_end(&repo), free as u32)
                .await
            {
                Ok(jobs) => claimed = jobs,
                Err(e) => tracing::warn!(error = %e, "job worker: cannot claim; retrying"),
            }
        }
        let full = free > 0 && claimed.len() == free;
        for job in claimed {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let (repo, owner, stop) = (repo.clone(), owner.clone(), stop.clone());
            running.spawn(async move {
                run_one(repo, job, owner, stop).await;
                drop(permit);
            });
        }
        if full {
            // More may be due: claim again as soon as a slot frees up.
            tokio::select! {
                _ = running.join_next() => {}
                _ = stop.changed() => {}
            }
            continue;
        }
        // A retry this instance scheduled may be due before the next poll.
        let nap = repo.next_retry.lock().ok().map_or(POLL, |mut next| {
            let now = instant::now();
            match *next {
                Some(at) if at > now => {
                    let wait = u64::try_from(at - now).unwrap_or(0);
                    Duration::from_micros(wait).min(POLL)
                }
                _ => {
                    *next = None;
                    POLL
                }
            }
        });
        tokio::select! {
            _ = wake.notified() => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = stop.changed() => {}
        }
    }
    while running.join_next().await.is_some() {}
}

/// Runs one claimed job in its trace context and records how it ended.
async fn run_one(repo: Repo, job: Job, owner: String, stop: watch::Receiver<bool>) {
    let trace = job
        .trace
        .as_deref()
        .and_then(TraceContext::from_carrier)
        .unwrap_or_else(|| TraceContext::from_headers(&Default::default()));
    trace
        .clone()
        .scope(async move {
            let Some(handler) = repo.handlers.get(&job.kind) else {
                return;
            };
            let ctx = JobContext {
                repo: repo.clone(),
                job: job.id.clone(),
                owner: owner.clone(),
                stop,
            };
            tracing::debug!(
                job = job.id,
                kind = job.kind,
                attempt = job.attempts,
                "job started"
            );
            // A panicking handler fails its job instead of leaving it to its lease.
            let task = {
                let job = job.clone();
                tokio::spawn(trace.scope(async move { handler.run(&ctx, &job).await }))
            };
            let outcome = match task.await {
                Ok(outcome) => outcome,
                Err(e) => Err(JobError::Failed(format!("the handler panicked: {e}"))),
            };
            finish(&repo, &job, &owner, outcome).await;
        })
        .await;
}

async fn finish(repo: &Repo, job: &Job, owner: &str, outcome: Result<Ran, JobError>) {
    let store = &repo.store;
    let recorded = match outcome {
        Ok(Ran::Done(progress)) => {
            let progress = progress.map(|p| p.to_string());
            let done = store
                .finish(&job.id, owner, instant::now(), progress.as_deref())
                .await;
            tracing::debug!(job = job.id, kind = job.kind, "job done");
            done
        }
        Ok(Ran::Recorded) => {
            tracing::debug!(job = job.id, kind = job.kind, "job done");
            return;
        }
        Ok(Ran::Stopped) => store.release(&job.id, owner, instant::now()).await,
        Err(JobError::LeaseLost) => {
            tracing::warn!(
                job = job.id,
                kind = job.kind,
                "job taken over by another instance"
            );
            return;
        }
        Err(JobError::Failed(reason)) => {
            let last =
                job.attempts >= i32::try_from(repo.limits.job_max_attempts).unwrap_or(i32::MAX);
            let retry_at = (!last).then(|| {
                let pause = backoff(repo.limits.job_retry_base, job.attempts);
                instant::now().saturating_add(i64::try_from(pause.as_micros()).unwrap_or(i64::MAX))
            });
            if last {
                tracing::error!(
                    job = job.id,
                    kind = job.kind,
                    attempts = job.attempts,
                    reason,
                    "job dead-lettered"
                );
            } else {
                tracing::warn!(
                    job = job.id,
                    kind = job.kind,
                    attempts = job.attempts,
                    reason,
                    "job failed; retrying later"
                );
            }
            if let (Some(at), Ok(mut next)) = (retry_at, repo.next_retry.lock()) {
                *next = Some(next.map_or(at, |n: i64| n.min(at)));
            }
            store.fail(&job.id, owner, &reason, retry_at).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(job = job.id, error = %e, "cannot record how the job ended; its lease will run out");
    }
}

/// A job's progress as its handler last recorded it (`null` before the first record).
pub(crate) fn progress(job: &Job) -> Value {
    job.progress
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_keys_its_jobs_by_period() {
        let hourly = Schedule {
            kind: "check",
            every: Duration::from_secs(3600),
        };
        let hour = 3_600_000_000;
        let a = hourly.request(5 * hour + 17);
        let b = hourly.request(6 * hour - 1);
        let c = hourly.request(6 * hour);
        assert_eq!(a.key, b.key);
        assert_eq!(a.key.as_deref(), Some("check:18000000000"));
        assert_eq!(c.payload["period"], 6 * hour);
        assert_ne!(a.key, c.key);
        assert_eq!(hourly.tick(), Duration::from_secs(60));
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let base = Duration::from_secs(1);
        for (attempts, seconds) in [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0)] {
            let pause = backoff(base, attempts).as_secs_f64();
            assert!(
                (seconds * 0.8..=seconds * 1.2).contains(&pause),
                "{attempts}: {pause}"
            );
        }
        assert!(backoff(base, 40) <= Duration::from_secs(3600).mul_f64(1.2));
        assert!(backoff(base, 0) <= Duration::from_millis(1200));
    }
}
