//! The `subscription-match` job (one per committed version of a watched type) and the
//! `subscription-activate` job (one per `requested` Subscription version).
//!
//! Matching runs each live subscription's criteria as a search restricted to the
//! resource's `_id`, so it sees the resource's current version, as every search does.
//! When the resource changed again before its job ran, the match is judged on the
//! newer version and the notification is for that version; the newer version's own
//! job finds the same version and its notification key, so it is notified once.

use ember_fhir::instant;
use ember_repo::{JobContext, JobError, JobHandler, JobRequest, Ran, Repo, RepoError};
use ember_store::Job;
use serde_json::{Value, json};

use crate::model::{Status, Subscription};
use crate::registry::Registry;
use crate::{ACTIVATE_JOB, MATCH_JOB, NOTIFY_JOB, OPERATION, SUBSCRIPTION};

/// Matches one version against the active subscriptions of its type.
pub(crate) struct Match {
    pub registry: Registry,
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
        let now = instant::now();
        let live: Vec<_> = self
            .registry
            .snapshot()
            .of_type(res_type)
            .iter()
            .filter(|s| s.is_live(now))
            .cloned()
            .collect();
        let repo = ctx.repo();
        let mut notify = Vec::new();
        for s in live {
            let mut params = s.params.clone();
            params.push(("_id".to_owned(), id.to_owned()));
            match repo.find(res_type, &params).await {
                Ok(hits) => {
                    let version = hits.first().and_then(|hit| {
                        hit["meta"]["versionId"]
                            .as_str()
                            .and_then(|v| v.parse().ok())
                    });
                    if let Some(version) = version {
                        notify.push(notification(&s.id, res_type, id, version));
                    }
                }
                Err(RepoError::Store(e)) => return Err(e.into()),
                // The criteria no longer parse (a SearchParameter they use was removed).
                Err(e) => {
                    set_error(
                        repo,
                        &s.id,
                        &format!("the criteria cannot be searched: {e}"),
                    )
                    .await?
                }
            }
        }
        let matched = notify.len();
        if !notify.is_empty() {
            repo.enqueue(notify).await?;
        }
        Ok(Ran::Done(Some(json!({"matched": matched}))))
    }
}

/// The notification job of one subscription for one version, keyed by both, so a
/// version is notified once per subscription however often it is matched. Its event
/// id is derived from the key: stable across retries and instances.
fn notification(subscription: &str, res_type: &str, id: &str, version: i64) -> JobRequest {
    let key = format!("{NOTIFY_JOB}:{subscription}:{res_type}/{id}/{version}");
    let event = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("urn:ember:{key}").as_bytes(),
    );
    JobRequest {
        kind: NOTIFY_JOB.to_owned(),
        payload: json!({
            "subscription": subscription,
            "type": res_type,
            "id": id,
            "version": version,
            "event": event.to_string(),
        }),
        key: Some(key),
    }
}

/// Activates a `requested` Subscription (R4: the server sets it `active` once it
/// serves it).
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
