//! Single-resource writes: create, update, patch and delete.
//!
//! Writes are optimistic: read the current version, plan the next one, and commit it
//! as a compare-and-swap. A lost race without `If-Match` is retried with the new
//! current version; with `If-Match` it is a 412.

use std::time::Duration;

use ember_fhir::instant::{self, Micros};
use ember_fhir::{id, meta, patch, validate};
use ember_store::{Change, Commit, Current, Progress, StoreError, Write};
use serde_json::Value;

use crate::{Limits, Repo, RepoError, Result, SearchParams, check_id, check_type};

/// A resource version as stored, ready to be returned to a client.
#[derive(Debug, Clone)]
pub struct Stored {
    pub res_type: String,
    pub id: String,
    pub version: i64,
    pub last_updated: Micros,
    /// The resource as JSON text, with `id` and `meta` set.
    pub body: String,
    /// Whether this write created the resource (201 rather than 200).
    pub created: bool,
}

impl Stored {
    /// `Type/id/_history/version`.
    pub fn versioned_reference(&self) -> String {
        format!("{}/{}/_history/{}", self.res_type, self.id, self.version)
    }

    /// The weak ETag of this version, `W/"n"`.
    pub fn etag(&self) -> String {
        etag(self.version)
    }
}

/// A patch: JSON Patch (RFC 6902) or FHIRPath Patch (a `Parameters` resource).
#[derive(Debug, Clone)]
pub enum PatchDocument {
    Json(Value),
    FhirPath(Value),
}

/// The result of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    /// The version that records the deletion; `None` when the resource was already deleted.
    pub version: Option<i64>,
}

/// A weak ETag for a version number.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// Parses a version ETag: `W/"3"`, `"3"` or `3`.
pub fn parse_etag(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    s.parse().ok().filter(|v| *v > 0)
}

/// A write worked out against a known current version, not yet committed.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub write: Write,
    pub stored: Stored,
}

impl Repo {
    /// Creates a resource with a server-assigned id. Any id in the body is replaced.
    pub async fn create(&self, res_type: &str, body: Value) -> Result<Stored> {
        let plan = self.plan_create(res_type, &id::new_id(), body)?;
        self.commit_writes(vec![plan.write]).await?;
        Ok(plan.stored)
    }

    /// Updates a resource, or creates it with the client's id when it does not exist.
    pub async fn update(
        &self,
        res_type: &str,
        id: &str,
        body: Value,
        if_match: Option<i64>,
    ) -> Result<Stored> {
        check_put(res_type, id, &body)?;
        let plan = self
            .commit_retrying(res_type, id, if_match, |current| {
                self.plan_update(res_type, id, body.clone(), current)
                    .map(Some)
            })
            .await?;
        written(plan)
    }

    /// Applies a JSON Patch to the current version.
    pub async fn patch(
        &self,
        res_type: &str,
        id: &str,
        patch_doc: &PatchDocument,
        if_match: Option<i64>,
    ) -> Result<Stored> {
        check_type(res_type)?;
        check_id(id)?;
        let plan = self
            .commit_retrying(res_type, id, if_match, |current| {
                plan_patch(res_type, id, patch_doc, current, &self.limits, &self.params).map(Some)
            })
            .await?;
        written(plan)
    }

    /// Deletes a resource, keeping its history. Deleting a deleted resource does nothing.
    pub async fn delete(&self, res_type: &str, id: &str, if_match: Option<i64>) -> Result<Deleted> {
        check_type(res_type)?;
        check_id(id)?;
        let plan = self
            .commit_retrying(res_type, id, if_match, |current| {
                plan_delete(res_type, id, current)
            })
            .await?;
        Ok(Deleted {
            version: plan.map(|p| p.stored.version),
        })
    }

    /// Creates `resources` (each with its `id`) in one commit when none of them exists
    /// yet; `Ok(None)`, with nothing stored, when one does (or did: a deleted one counts).
    /// For work that must happen once: ids derived from its cause make a second run
    /// find the first run's result, on any instance.
    pub async fn create_once(&self, resources: Vec<Value>) -> Result<Option<Vec<Stored>>> {
        self.create_once_with(resources, None).await
    }

    /// [`Repo::create_once`], recording a held job's `progress` in the same commit.
    pub(crate) async fn create_once_with(
        &self,
        resources: Vec<Value>,
        progress: Option<Progress>,
    ) -> Result<Option<Vec<Stored>>> {
        let mut plans = Vec::with_capacity(resources.len());
        for body in resources {
            let res_type = body
                .get("resourceType")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let id = body_id(&body)?.ok_or_else(|| {
                RepoError::Invalid(format!("a {res_type} created once needs its id"))
            })?;
            check_id(&id)?;
            plans.push(self.plan_create(&res_type, &id, body)?);
        }
        let commit = Commit {
            writes: plans.iter().map(|p| p.write.clone()).collect(),
            progress: progress.into_iter().collect(),
            ..Default::default()
        };
        match self.commit(commit).await {
            Ok(_) => Ok(Some(plans.into_iter().map(|p| p.stored).collect())),
            Err(RepoError::Store(StoreError::Conflict { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Plans the next version of `res_type/id` (or its creation with the client's id,
    /// when `current` is `None`) with `body`.
    pub(crate) fn plan_update(
        &self,
        res_type: &str,
        id: &str,
        body: Value,
        current: Option<&Current>,
    ) -> Result<Plan> {
        plan_put(
            res_type,
            id,
            body,
            current,
            Change::Update,
            &self.limits,
            &self.params,
        )
    }

    pub(crate) fn plan_create(&self, res_type: &str, id: &str, body: Value) -> Result<Plan> {
        check_type(res_type)?;
        check_body(res_type, &body)?;
        plan_put(
            res_type,
            id,
            body,
            None,
            Change::Create,
            &self.limits,
            &self.params,
        )
    }

    /// `$validate`: the structural issues of `resource` under strict rules, whatever mode
    /// writes use. Nothing is stored.
    pub fn validate(&self, resource: &Value) -> ember_fhir::OperationOutcome {
        validate::validate(resource, validate::Mode::Strict)
    }

    /// Reads the current version, plans a write with `plan` and commits it, retrying
    /// when another writer got there first (unless `If-Match` pinned the version).
    /// Writers of one resource on this instance take turns, so only instances race.
    async fn commit_retrying<F>(
        &self,
        res_type: &str,
        id: &str,
        if_match: Option<i64>,
        plan: F,
    ) -> Result<Option<Plan>>
    where
        F: Fn(Option<&Current>) -> Result<Option<Plan>>,
    {
        let _turn = self.turns.take(res_type, id).await;
        for attempt in 0..=self.limits.write_retries {
            let current = self.store.read(res_type, id).await?;
            check_if_match(res_type, id, if_match, current.as_ref())?;
            let Some(planned) = plan(current.as_ref())? else {
                return Ok(None);
            };
            match self.commit_writes(vec![planned.write.clone()]).await {
                Ok(()) => return Ok(Some(planned)),
                Err(RepoError::Store(StoreError::Conflict { .. })) if if_match.is_none() => {
                    backoff(attempt).await
                }
                Err(RepoError::Store(StoreError::Conflict { .. })) => {
                    let current = self.store.read(res_type, id).await?;
                    check_if_match(res_type, id, if_match, current.as_ref())?;
                    return Err(RepoError::Conflict(format!(
                        "{res_type}/{id} changed concurrently; retry"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Err(RepoError::Conflict(format!(
            "{res_type}/{id} is being changed by many writers at once; gave up after {} attempts",
            self.limits.write_retries + 1
        )))
    }
}

/// The stored version of a write that always plans one (update, patch).
fn written(plan: Option<Plan>) -> Result<Stored> {
    plan.map(|p| p.stored)
        .ok_or_else(|| RepoError::Store(StoreError::Backend("a write planned nothing".into())))
}

/// Checks an update's type, id and body, and that the body's id is the URL's.
pub(crate) fn check_put(res_type: &str, id: &str, body: &Value) -> Result<()> {
    check_type(res_type)?;
    check_id(id)?;
    check_body(res_type, body)?;
    match body.get("id") {
        Some(Value::String(body_id)) if body_id == id => Ok(()),
        Some(Value::String(body_id)) => Err(RepoError::Invalid(format!(
            "the resource id {body_id:?} does not match the id {id:?} in the URL"
        ))),
        _ => Err(RepoError::Invalid(
            "an update needs the resource id in the body".into(),
        )),
    }
}

/// A randomized pause before retrying a lost race: up to 1, 2, 4 … 64 ms, so writers
/// that keep colliding spread out.
pub(crate) async fn backoff(attempt: u32) {
    let window = 1u64 << attempt.min(6);
    let random = u64::from(u16::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..2]
            .try_into()
            .unwrap_or([0, 0]),
    ));
    tokio::time::sleep(Duration::from_millis(random % (window + 1))).await;
}

pub(crate) fn check_if_match(
    res_type: &str,
    id: &str,
    if_match: Option<i64>,
    current: Option<&Current>,
) -> Result<()> {
    let Some(expected) = if_match else {
        return Ok(());
    };
    match current {
        Some(c) if c.version == expected => Ok(()),
        other => Err(RepoError::VersionMismatch {
            reference: format!("{res_type}/{id}"),
            expected,
            current: other.map_or_else(
                || "none (the resource does not exist)".into(),
                |c| c.version.to_string(),
            ),
        }),
    }
}

/// The `id` a request body carries, checked; `None` when it has none.
pub(crate) fn body_id(body: &Value) -> Result<Option<String>> {
    match body.get("id") {
        None => Ok(None),
        Some(Value::String(id)) => {
            check_id(id)?;
            Ok(Some(id.clone()))
        }
        Some(_) => Err(RepoError::Invalid(
            "the resource id must be a string".into(),
        )),
    }
}

/// Checks that the body's `resourceType` is the one the URL names.
pub(crate) fn check_body(res_type: &str, body: &Value) -> Result<()> {
    ember_fhir::json::check_resource(body)?;
    match body.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == res_type => Ok(()),
        t => Err(RepoError::Invalid(format!(
            "the resourceType {:?} does not match the type {res_type:?} in the URL",
            t.unwrap_or_default()
        ))),
    }
}

/// Plans the next version of a resource with the given content.
pub(crate) fn plan_put(
    res_type: &str,
    id: &str,
    mut body: Value,
    current: Option<&Current>,
    change: Change,
    limits: &Limits,
    params: &SearchParams,
) -> Result<Plan> {
    let version = current.map_or(1, |c| c.version + 1);
    let last_updated = instant::now();
    meta::stamp(&mut body, id, version, last_updated);
    let outcome = validate::validate(&body, limits.validation);
    if validate::has_errors(&outcome) {
        return Err(RepoError::Invalidated(outcome));
    }
    let text = body.to_string();
    Ok(Plan {
        write: Write {
            res_type: res_type.to_owned(),
            id: id.to_owned(),
            expected: current.map(|c| c.version),
            version,
            last_updated,
            change,
            body: Some(text.clone()),
            index: crate::indexer::index_rows(&body, params)?,
        },
        stored: Stored {
            res_type: res_type.to_owned(),
            id: id.to_owned(),
            version,
            last_updated,
            body: text,
            created: current.is_none_or(|c| c.deleted),
        },
    })
}

/// Plans a deletion; `None` when the resource is already deleted.
pub(crate) fn plan_delete(
    res_type: &str,
    id: &str,
    current: Option<&Current>,
) -> Result<Option<Plan>> {
    let current = match current {
        None => return Err(RepoError::NotFound(format!("{res_type}/{id}"))),
        Some(c) if c.deleted => return Ok(None),
        Some(c) => c,
    };
    let version = current.version + 1;
    let last_updated = instant::now();
    Ok(Some(Plan {
        write: Write {
            res_type: res_type.to_owned(),
            id: id.to_owned(),
            expected: Some(current.version),
            version,
            last_updated,
            change: Change::Delete,
            body: None,
            index: ember_store::IndexRows::default(),
        },
        stored: Stored {
            res_type: res_type.to_owned(),
            id: id.to_owned(),
            version,
            last_updated,
            body: String::new(),
            created: false,
        },
    }))
}

/// Plans the version that results from applying a JSON Patch to the current one.
pub(crate) fn plan_patch(
    res_type: &str,
    id: &str,
    patch_doc: &PatchDocument,
    current: Option<&Current>,
    limits: &Limits,
    params: &SearchParams,
) -> Result<Plan> {
    let reference = format!("{res_type}/{id}");
    let (current, body) = match current {
        None => return Err(RepoError::NotFound(reference)),
        Some(Current {
            body: Some(body),
            deleted: false,
            ..
        }) => (current, body),
        Some(_) => return Err(RepoError::Gone(reference)),
    };
    let mut doc: Value = serde_json::from_str(body).map_err(|e| {
        RepoError::Store(StoreError::Backend(format!(
            "stored JSON of {reference} is invalid: {e}"
        )))
    })?;
    match patch_doc {
        PatchDocument::Json(ops) => patch::apply_json_patch(&mut doc, ops)?,
        PatchDocument::FhirPath(parameters) => {
            ember_fhir::fhirpath_patch::apply_fhirpath_patch(&mut doc, parameters)?
        }
    }
    if doc.get("resourceType").and_then(Value::as_str) != Some(res_type) {
        return Err(RepoError::Unprocessable(
            "a patch may not change the resourceType".into(),
        ));
    }
    if doc.get("id").and_then(Value::as_str) != Some(id) {
        return Err(RepoError::Unprocessable(
            "a patch may not change or remove the id".into(),
        ));
    }
    let max_depth = limits.max_json_depth;
    if ember_fhir::json::depth(&doc) > max_depth {
        return Err(RepoError::Unprocessable(format!(
            "the patched resource nests deeper than {max_depth} levels"
        )));
    }
    plan_put(res_type, id, doc, current, Change::Patch, limits, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_etags() {
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("7"), Some(7));
        assert_eq!(parse_etag("W/\"0\""), None);
        assert_eq!(parse_etag("W/\"x\""), None);
        assert_eq!(etag(4), "W/\"4\"");
    }

    #[test]
    fn plans_versions_after_the_current_one() {
        let current = Current {
            version: 4,
            last_updated: 0,
            deleted: false,
            body: None,
        };
        let plan = plan_put(
            "Patient",
            "p",
            serde_json::json!({"resourceType": "Patient"}),
            Some(&current),
            Change::Update,
            &Limits::default(),
            &SearchParams::default(),
        )
        .unwrap();
        assert_eq!(plan.write.expected, Some(4));
        assert_eq!(plan.write.version, 5);
        assert!(!plan.stored.created);
        let body: Value = serde_json::from_str(&plan.stored.body).unwrap();
        assert_eq!(body["meta"]["versionId"], "5");
        assert_eq!(body["id"], "p");
        let deleted = Current {
            deleted: true,
            ..current
        };
        assert!(
            plan_delete("Patient", "p", Some(&deleted))
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            plan_delete("Patient", "p", None),
            Err(RepoError::NotFound(_))
        ));
    }
}
