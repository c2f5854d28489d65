//! How subscriptions take part in every commit:
//! - [`Valid`]: a Subscription is stored only when Ember can serve it (criteria the
//!   search parser accepts, a supported channel), and only by a caller who may search
//!   everything its criteria could match;
//! - [`Outbox`]: a version of a type some active or requested subscription watches
//!   enqueues its matching job, and a `requested` Subscription its activation, in the
//!   commit that stores it; writes of other types enqueue nothing;
//! - [`Reload`]: a commit that writes a Subscription reloads the registry before it
//!   returns, and tells the other instances.

use std::sync::Arc;

use async_trait::async_trait;
use ember_repo::access::{Need, Reach};
use ember_repo::{
    AfterCommit, CommitStored, JobRequest, Repo, RepoError, WriteListener, WriteRule, Written,
};
use serde_json::{Value, json};

use crate::model::{Status, Subscription};
use crate::registry::{MESSAGE, Registry};
use crate::{ACTIVATE_JOB, MATCH_JOB, SUBSCRIPTION};

/// Refuses a Subscription Ember cannot serve (422, naming the problem).
pub(crate) struct Valid;

#[async_trait]
impl WriteRule for Valid {
    async fn check(&self, repo: &Repo, w: &Written<'_>) -> Result<(), RepoError> {
        if w.res_type != SUBSCRIPTION {
            return Ok(());
        }
        let Some(body) = w.body else { return Ok(()) };
        let resource: Value = serde_json::from_str(body)
            .map_err(|e| RepoError::Unprocessable(format!("Subscription: {e}")))?;
        let s = Subscription::parse(&resource).map_err(RepoError::Unprocessable)?;
        repo.check_criteria(&s.res_type, &s.params)
            .await
            .map_err(|e| RepoError::Unprocessable(format!("Subscription.criteria: {e}")))?;
        // Notifications are sent without the caller's grants, so the caller must be
        // able to search every resource the criteria could match.
        match ember_repo::access::reach(&s.res_type, Need::Search) {
            Reach::All => Ok(()),
            _ => Err(RepoError::Forbidden(format!(
                "a Subscription on {} needs access to every {} resource",
                s.res_type, s.res_type
            ))),
        }
    }
}

/// Enqueues the matching of watched versions and the activation of requested
/// Subscriptions.
pub(crate) struct Outbox {
    pub registry: Registry,
}

impl WriteListener for Outbox {
    fn jobs(&self, w: &Written<'_>) -> Vec<JobRequest> {
        let Some(body) = w.body else {
            // R4: a deletion notifies no one.
            return Vec::new();
        };
        let mut jobs = Vec::new();
        if w.res_type == SUBSCRIPTION && requested(body) {
            jobs.push(JobRequest {
                kind: ACTIVATE_JOB.to_owned(),
                payload: json!({"id": w.id, "version": w.version}),
                key: Some(format!("{ACTIVATE_JOB}:{}/{}", w.id, w.version)),
            });
        }
        if !self.registry.snapshot().of_type(w.res_type).is_empty() {
            jobs.push(JobRequest {
                kind: MATCH_JOB.to_owned(),
                payload: json!({"type": w.res_type, "id": w.id, "version": w.version}),
                key: Some(format!("{MATCH_JOB}:{}/{}/{}", w.res_type, w.id, w.version)),
            });
        }
        jobs
    }
}

/// Whether a Subscription's JSON text has status `requested`.
fn requested(body: &str) -> bool {
    body.contains("requested")
        && serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|r| Subscription::parse(&r).ok())
            .is_some_and(|s| s.status == Status::Requested)
}

/// Reloads the registry after a commit that writes a Subscription.
pub(crate) struct Reload {
    pub registry: Registry,
    /// This instance's tag in bus messages.
    pub origin: Arc<str>,
}

#[async_trait]
impl AfterCommit for Reload {
    async fn after_commit(&self, repo: &Repo, stored: &CommitStored) {
        if !stored.versions.iter().any(|(t, _, _)| t == SUBSCRIPTION) {
            return;
        }
        // On a task of its own: the registry is read without the writer's grants.
        let (registry, reader) = (self.registry.clone(), repo.clone());
        match tokio::spawn(async move { registry.reload(&reader).await }).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot reload the subscriptions"),
            Err(e) => tracing::error!(error = %e, "cannot reload the subscriptions"),
        }
        let message = format!("{MESSAGE} {}", self.origin);
        if let Err(e) = repo.store().publish(&message).await {
            tracing::warn!(error = %e, "cannot tell other instances of a Subscription change");
        }
    }
}
