//! The `subscription-match` job (one per committed version of a watched type) and the
//! `subscription-activate` job (one per `requested` Subscription version).
//!
//! Matching reads the resource's current version and judges it against each live
//! subscription's criteria in memory, from the index rows it is stored with
//! ([`Repo::judge`]); criteria that need the database (chains, `_has`, `_text`) run as
//! a search restricted to the resource's `_id`. Either way it sees the current
//! version: when the resource changed again before its job ran, the match is judged on
//! the newer version and the notification is for that version; the newer version's own
//! job finds the same version and event, so a receiver sees one event id for it.
//!
//! The job sends the notifications of its matches itself, at once (several side by
//! side, within a quarter of its lease), so a notification costs no second job. One
//! the endpoint does not take, or not in that time, goes to a `subscription-notify`
//! job, which retries it with backoff. When the instance dies mid-job, the job runs
//! again elsewhere and sends again, with the same event ids: at least once.

use std::sync::Arc;
use std::time::Duration;

use ember_fhir::instant;
use ember_repo::{Candidate, JobContext, JobError, JobHandler, Ran, Repo, RepoError};
use ember_store::Job;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::delivery::{Event, Notify, max_attempts};
use crate::model::{Status, Subscription};
use crate::registry::{Registry, Watched};
use crate::{ACTIVATE_JOB, MATCH_JOB, OPERATION, SUBSCRIPTION};

/// Notifications of one version sent at once (to different subscriptions).
const SENDS_AT_ONCE: usize = 16;

/// Matches one version against the active subscriptions of its type and notifies.
pub(crate) struct Match {
    pub registry: Registry,
    pub notify: Arc<Notify>,
}

#[async_trait::async_trait]
impl JobHandler for Match {
    fn kind(&self) -> &'static str {
        MATCH_JOB
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let payload = payload(job)?;
        let (Some(res_type), Some(id)) = (payload["type"].as_str(), payload["id"].as_str()) else {
            return Err(JobError::Failed("the job names no resource".into()));
        };
        let repo = ctx.repo();
        let watched = self.registry.snapshot();
        let live = live(repo, watched.of_type(res_type)).await?;
        let current = match repo.read(res_type, id).await {
            Ok(current) => current,
            // R4: a deletion notifies no one.
            Err(RepoError::NotFound(_) | RepoError::Gone(_)) => {
                return Ok(Ran::Done(Some(json!({"matched": 0}))));
            }
            Err(e) => return Err(e.into()),
        };
        let resource: Value =
            serde_json::from_str(&current.body).map_err(|e| JobError::Failed(e.to_string()))?;
        let candidate = repo.candidate(&resource);
        let mut events = Vec::new();
        for w in live {
            if matches(repo, &w, id, candidate.as_ref()).await? {
                let event = Event::new(&w.subscription.id, res_type, id, current.version);
                events.push((w, event));
            }
        }
        let matched = events.len();
        // Sent side by side, and only while the job's lease is young: endpoints that
        // hang cannot hold the job past its lease. What is not sent by then is retried.
        let lease = repo.limits().job_lease;
        let deadline = tokio::time::Instant::now() + lease / 4;
        let body = current.body.as_str();
        let notify = &self.notify;
        let sends = events.into_iter().map(|(w, event)| async move {
            let sent = tokio::time::timeout_at(
                deadline,
                notify.send(repo, &w.subscription, &event, Some(body)),
            )
            .await;
            (w, event, sent)
        });
        let outcomes: Vec<_> = futures_util::stream::iter(sends)
            .buffer_unordered(SENDS_AT_ONCE)
            .collect()
            .await;
        let mut retry = Vec::new();
        for (w, event, sent) in outcomes {
            match sent {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(reason))) if max_attempts(repo) <= 1 => {
                    self.notify
                        .give_up(repo, &w.subscription, 1, &reason)
                        .await?;
                }
                Ok(Ok(Err(reason))) => {
                    tracing::debug!(
                        subscription = event.subscription,
                        reason,
                        "notification will be retried"
                    );
                    self.notify.retried(&w.subscription);
                    retry.push(event.job());
                }
                Ok(Err(e)) => {
                    tracing::warn!(subscription = event.subscription, error = %e, "notification will be retried");
                    retry.push(event.job());
                }
                Err(_) => {
                    tracing::debug!(
                        subscription = event.subscription,
                        "no time left in the matching job; notification will be retried"
                    );
                    retry.push(event.job());
                }
            }
        }
        let retried = retry.len();
        if !retry.is_empty() {
            repo.enqueue(retry).await?;
        }
        Ok(Ran::Done(Some(
            json!({"matched": matched, "retried": retried}),
        )))
    }
}

/// The subscriptions of `watched` that notify now. A `requested` one is read again:
/// it may have become active after this instance's registry was loaded (the reload
/// that tells it so can still be on its way), and a write committed after that must
/// be notified.
async fn live(repo: &Repo, watched: &[Arc<Watched>]) -> Result<Vec<Arc<Watched>>, JobError> {
    let now = instant::now();
    let mut live = Vec::with_capacity(watched.len());
    for w in watched {
        if w.subscription.status != Status::Requested {
            if w.subscription.is_live(now) {
                live.push(Arc::clone(w));
            }
            continue;
        }
        let current = match repo.read(SUBSCRIPTION, &w.subscription.id).await {
            Ok(current) => current,
            Err(RepoError::NotFound(_) | RepoError::Gone(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        let resource: Value =
            serde_json::from_str(&current.body).map_err(|e| JobError::Failed(e.to_string()))?;
        if let Ok(s) = Subscription::parse(&resource) {
            if s.is_live(now) {
                live.push(Arc::new(Watched::new(s)));
            }
        }
    }
    Ok(live)
}

/// Whether `candidate` (the current version of `id`) meets `w`'s criteria: judged in
/// memory, or by a search restricted to `id` when that needs the database. Criteria
/// that no longer compile (a SearchParameter they use was removed) set the
/// subscription to `error` and match nothing.
async fn matches(
    repo: &Repo,
    w: &Watched,
    id: &str,
    candidate: Option<&Candidate>,
) -> Result<bool, JobError> {
    let s = &w.subscription;
    let judged = match w.matcher(repo).await {
        Ok(m) => candidate.and_then(|c| repo.judge(&m, c)),
        Err(RepoError::Store(e)) => return Err(e.into()),
        Err(e) => return unsearchable(repo, s, e).await,
    };
    if let Some(judged) = judged {
        return Ok(judged);
    }
    let mut params = s.params.clone();
    params.push(("_id".to_owned(), id.to_owned()));
    match repo.find(&s.res_type, &params).await {
        Ok(hits) => Ok(!hits.is_empty()),
        Err(RepoError::Store(e)) => Err(e.into()),
        Err(e) => unsearchable(repo, s, e).await,
    }
}

async fn unsearchable(repo: &Repo, s: &Subscription, e: RepoError) -> Result<bool, JobError> {
    set_error(
        repo,
        &s.id,
        &format!("the criteria cannot be searched: {e}"),
    )
    .await?;
    Ok(false)
}

/// How long after a `requested` Subscription is stored its activation waits, so that
/// every instance has heard of it through the bus (within milliseconds) and enqueues
/// matching jobs for its type before it is active.
pub(crate) const SETTLE: Duration = Duration::from_millis(500);

/// Activates a `requested` Subscription (R4: the server sets it `active` once it
/// serves it), [`SETTLE`] after it was stored.
pub(crate) struct Activate;

#[async_trait::async_trait]
impl JobHandler for Activate {
    fn kind(&self) -> &'static str {
        ACTIVATE_JOB
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let payload = payload(job)?;
        let (Some(id), Some(version)) = (payload["id"].as_str(), payload["version"].as_i64())
        else {
            return Err(JobError::Failed("the job names no Subscription".into()));
        };
        let age = u64::try_from(instant::now().saturating_sub(job.created_at)).unwrap_or(0);
        tokio::time::sleep(SETTLE.saturating_sub(Duration::from_micros(age))).await;
        let activated = transition(ctx.repo(), id, Some(version), Status::Requested, |s| {
            s["status"] = json!("active");
            if let Some(o) = s.as_object_mut() {
                o.remove("error");
            }
        })
        .await?;
        Ok(Ran::Done(Some(json!({"activated": activated}))))
    }
}

/// Sets an active Subscription's `status` to `error` with `reason` (a write through the
/// repository, as the operation `subscriptions`); nothing when it is no longer active.
pub(crate) async fn set_error(repo: &Repo, id: &str, reason: &str) -> Result<(), JobError> {
    tracing::warn!(subscription = id, reason, "subscription set to error");
    transition(repo, id, None, Status::Active, |s| {
        s["status"] = json!("error");
        s["error"] = json!(reason);
    })
    .await
    .map(|_| ())
}

/// Changes the Subscription `id` with `change` when it is in status `from` (and at
/// `version`, when given), compare-and-swap, re-reading after a lost race. Whether it
/// changed it.
async fn transition(
    repo: &Repo,
    id: &str,
    version: Option<i64>,
    from: Status,
    change: impl Fn(&mut Value),
) -> Result<bool, JobError> {
    let writer = repo.for_operation(OPERATION);
    for _ in 0..8 {
        let current = match repo.read(SUBSCRIPTION, id).await {
            Ok(current) => current,
            Err(RepoError::NotFound(_) | RepoError::Gone(_)) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if version.is_some_and(|v| v != current.version) {
            return Ok(false);
        }
        let mut resource: Value =
            serde_json::from_str(&current.body).map_err(|e| JobError::Failed(e.to_string()))?;
        if Subscription::parse(&resource).map(|s| s.status) != Ok(from) {
            return Ok(false);
        }
        change(&mut resource);
        match writer
            .update(SUBSCRIPTION, id, resource, Some(current.version))
            .await
        {
            Ok(_) => return Ok(true),
            Err(RepoError::VersionMismatch { .. }) if version.is_none() => continue,
            Err(RepoError::VersionMismatch { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Err(JobError::Failed(format!(
        "Subscription/{id} kept changing; will try again"
    )))
}

pub(crate) fn payload(job: &Job) -> Result<Value, JobError> {
    serde_json::from_str(&job.payload).map_err(|e| JobError::Failed(e.to_string()))
}
