//! How telemonitoring takes part in every commit:
//! - [`Immutable`]: a submitted measurement or answer (tagged by `$submit-measurement`)
//!   is never changed or deleted, by any interaction, transaction or operation; and
//!   only `$submit-measurement` may tag one;
//! - [`Submitted`]: each submitted measurement or answer enqueues its triage job in
//!   the commit that stores it (the outbox), keyed by the resource, so it is triaged
//!   once.

use async_trait::async_trait;
use ember_repo::{JobRequest, Repo, RepoError, WriteListener, WriteRule, Written};
use ember_store::Change;
use serde_json::{Value, json};

use crate::codes::{SUBMITTED_CODE, SUBMITTED_SYSTEM};
use crate::{SUBMIT, TRIAGE_JOB};

/// The resource types `$submit-measurement` tags and triage judges.
pub(crate) const TRIAGED: [&str; 2] = ["Observation", "QuestionnaireResponse"];

/// Whether a resource's JSON text carries the submission tag.
pub(crate) fn is_submitted(text: &str) -> bool {
    // Cheap test first: most resources never mention the system.
    text.contains(SUBMITTED_SYSTEM)
        && serde_json::from_str::<Value>(text).is_ok_and(|v| has_submitted_tag(&v))
}

pub(crate) fn has_submitted_tag(resource: &Value) -> bool {
    resource["meta"]["tag"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["system"] == SUBMITTED_SYSTEM && t["code"] == SUBMITTED_CODE)
    })
}

/// The submission tag, as `meta.tag` holds it.
pub(crate) fn submitted_tag() -> Value {
    json!({"system": SUBMITTED_SYSTEM, "code": SUBMITTED_CODE, "display": "Submitted with $submit-measurement"})
}

/// Refuses changes to submitted resources, and the submission tag outside
/// `$submit-measurement`.
pub(crate) struct Immutable;

#[async_trait]
impl WriteRule for Immutable {
    async fn check(&self, repo: &Repo, w: &Written<'_>) -> Result<(), RepoError> {
        if !TRIAGED.contains(&w.res_type) {
            return Ok(());
        }
        if let Some(expected) = w.expected {
            let before = repo
                .store()
                .vread(w.res_type, w.id, expected)
                .await?
                .and_then(|v| v.body);
            if before.as_deref().is_some_and(is_submitted) {
                return Err(RepoError::Unprocessable(format!(
                    "{}/{} was submitted with $submit-measurement and cannot be changed or deleted; record a correction as a Provenance or Communication",
                    w.res_type, w.id
                )));
            }
        }
        if w.operation != Some(SUBMIT) && w.body.is_some_and(is_submitted) {
            return Err(RepoError::Unprocessable(format!(
                "the tag {SUBMITTED_SYSTEM}|{SUBMITTED_CODE} is set by $submit-measurement only"
            )));
        }
        Ok(())
    }
}

/// Enqueues the triage of each submitted measurement and answer.
pub(crate) struct Submitted;

impl WriteListener for Submitted {
    fn jobs(&self, w: &Written<'_>) -> Vec<JobRequest> {
        if w.operation != Some(SUBMIT)
            || w.change != Change::Create
            || !TRIAGED.contains(&w.res_type)
            || !w.body.is_some_and(is_submitted)
        {
            return Vec::new();
        }
        vec![JobRequest {
            kind: TRIAGE_JOB.to_owned(),
            payload: json!({"type": w.res_type, "id": w.id}),
            key: Some(format!("{TRIAGE_JOB}:{}/{}", w.res_type, w.id)),
        }]
    }
}
