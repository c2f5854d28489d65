//! Batch and transaction Bundles.
//!
//! A transaction is all or nothing: its writes are planned against the current
//! versions and committed in one storage transaction, in the order the spec gives
//! (DELETE, POST, PUT/PATCH), and its reads and searches (GET) run afterwards. A
//! search entry (`GET [type]?…`, `GET [type]`, `GET [base]?_type=…`,
//! `GET [compartment]/[id]/[type]?…`) answers with the same `searchset` Bundle as the
//! search itself, in the entry's `resource`. `urn:uuid:` and
//! relative references between entries are rewritten to the ids the server assigns.
//! A batch runs each entry on its own and reports a status per entry.
//!
//! Conditional entries (`ifNoneExist`, `Type?criteria` URLs) and conditional references
//! (`"reference": "Patient?identifier=…"`) are resolved by searching before the plan;
//! conditional creates are committed under guards (see [`crate::conditional`]) and the
//! whole transaction is planned again when a guard finds that another writer created a
//! match meanwhile.

use std::collections::{HashMap, HashSet};

use base64::Engine;
use ember_fhir::{IssueType, OperationOutcome, Severity, id, instant};
use ember_store::{Commit, Committed, Current, Guard, Hit, StoreError};
use serde_json::{Value, json};

mod together;

use crate::conditional::Condition;
use crate::conditional::{at_most_one, multiple, parse_condition, stored_of};
use crate::prefer::{Prefer, status_line};
use crate::search::{Handling, SearchScope};

use crate::write::{
    PatchDocument, Plan, Stored, check_body, check_if_match, parse_etag, plan_delete, plan_patch,
};
use crate::{Repo, RepoError, Result, check_id, check_type};

/// Whether entries succeed or fail together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Batch,
    Transaction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    /// Processing order within a transaction: DELETE, POST, PUT/PATCH, GET.
    fn rank(self) -> u8 {
        match self {
            Method::Delete => 0,
            Method::Post => 1,
            Method::Put | Method::Patch => 2,
            Method::Get => 3,
        }
    }
}

/// One request entry, parsed.
#[derive(Debug, Clone)]
struct Entry {
    method: Method,
    res_type: String,
    id: Option<String>,
    version: Option<String>,
    full_url: Option<String>,
    resource: Option<Value>,
    if_match: Option<i64>,
    /// The criteria of `ifNoneExist` (POST) or of a `Type?criteria` URL (PUT, PATCH,
    /// DELETE).
    condition: Option<Vec<(String, String)>>,
    /// The search a GET entry without an id runs.
    search: Option<Search>,
}

/// A search entry: where it searches (`res_type` is the entry's) and its parameters,
/// decoded.
#[derive(Debug, Clone)]
struct Search {
    target: Target,
    pairs: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum Target {
    /// `GET [type]?…`
    Type,
    /// `GET [base]?_type=…&…`
    System,
    /// `GET [compartment]/[id]/[type]?…`
    Compartment { compartment: String, id: String },
}

/// What the search of a conditional entry found, for one plan of a transaction.
#[derive(Debug, Clone)]
enum Resolved {
    /// Not conditional, or a conditional update or patch whose match is now `Entry::id`.
    Plain,
    /// A conditional create whose criteria match this resource: nothing is written.
    Existing(Stored),
    /// A create (POST, or a PUT that matched nothing) committed under this guard.
    Guarded(Condition),
    /// The matches of a conditional delete.
    Deletes(Condition, Vec<Hit>),
}

/// What one entry did, for the response Bundle.
enum Outcome {
    Written(Stored),
    Deleted(Option<i64>),
    Read(Stored),
    /// A search's `searchset` Bundle.
    Searched(Value),
    Failed(RepoError),
}

impl Repo {
    /// Processes a `batch` or `transaction` Bundle and returns the response Bundle.
    pub async fn process_bundle(
        &self,
        mut bundle: Value,
        base: &str,
        prefer: Prefer,
    ) -> Result<Value> {
        let kind = match bundle.get("type").and_then(Value::as_str) {
            Some("transaction") => BundleKind::Transaction,
            Some("batch") => BundleKind::Batch,
            other => {
                return Err(RepoError::Invalid(format!(
                    "only batch and transaction Bundles can be processed here, not {:?}; store other Bundles with POST [base]/Bundle",
                    other.unwrap_or("(no type)")
                )));
            }
        };
        let raw_entries = match bundle.get_mut("entry") {
            None => Vec::new(),
            Some(Value::Array(entries)) => std::mem::take(entries),
            Some(_) => return Err(RepoError::Invalid("Bundle.entry must be an array".into())),
        };
        if raw_entries.len() > self.limits.max_bundle_entries {
            return Err(RepoError::Invalid(format!(
                "the Bundle has {} entries; at most {} are accepted",
                raw_entries.len(),
                self.limits.max_bundle_entries
            )));
        }
        let parsed: Vec<Result<Entry>> = raw_entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| parse_entry(e, base).map_err(|err| at_entry(i, err)))
            .collect();
        let outcomes = match kind {
            BundleKind::Transaction => {
                let entries = parsed.into_iter().collect::<Result<Vec<_>>>()?;
                self.transaction(entries, base).await?
            }
            BundleKind::Batch => self.batch(parsed, base).await,
        };
        let response_type = match kind {
            BundleKind::Transaction => "transaction-response",
            BundleKind::Batch => "batch-response",
        };
        let entries: Vec<Value> = outcomes
            .into_iter()
            .map(|o| response_entry(o, base, prefer))
            .collect();
        Ok(json!({"resourceType": "Bundle", "type": response_type, "entry": entries}))
    }

    async fn batch(&self, entries: Vec<Result<Entry>>, base: &str) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = entries.iter().map(|_| None).collect();
        for (i, outcome) in self.write_together(&entries).await {
            outcomes[i] = Some(outcome);
        }
        let mut order: Vec<usize> = (0..entries.len())
            .filter(|&i| outcomes[i].is_none())
            .collect();
        order.sort_by_key(|&i| entries[i].as_ref().map_or(0, |e| e.method.rank()));
        for i in order {
            let outcome = match &entries[i] {
                Err(e) => Outcome::Failed(RepoError::Invalid(e.to_string())),
                Ok(entry) => self
                    .run_single(entry.clone(), base)
                    .await
                    .unwrap_or_else(Outcome::Failed),
            };
            outcomes[i] = Some(outcome);
        }
        outcomes.into_iter().flatten().collect()
    }

    /// Runs one entry as its own interaction (batch semantics).
    async fn run_single(&self, e: Entry, base: &str) -> Result<Outcome> {
        if let Some(criteria) = &e.condition {
            return self.run_conditional(&e, criteria).await;
        }
        let id = e.id.as_deref().unwrap_or_default();
        Ok(match e.method {
            Method::Post => Outcome::Written(
                self.create(&e.res_type, e.resource.unwrap_or_default())
                    .await?,
            ),
            Method::Put => Outcome::Written(
                self.update(&e.res_type, id, e.resource.unwrap_or_default(), e.if_match)
                    .await?,
            ),
            Method::Patch => {
                let patch = patch_document(e.resource.as_ref())?;
                Outcome::Written(self.patch(&e.res_type, id, &patch, e.if_match).await?)
            }
            Method::Delete => {
                Outcome::Deleted(self.delete(&e.res_type, id, e.if_match).await?.version)
            }
            Method::Get => self.get(&e, base).await?,
        })
    }

    /// Runs one conditional entry as its own interaction (batch semantics).
    async fn run_conditional(&self, e: &Entry, criteria: &[(String, String)]) -> Result<Outcome> {
        let resource = || e.resource.clone().unwrap_or_default();
        Ok(match e.method {
            Method::Post => Outcome::Written(
                self.create_conditional(&e.res_type, resource(), criteria)
                    .await?,
            ),
            Method::Put => Outcome::Written(
                self.update_conditional(&e.res_type, criteria, resource(), e.if_match)
                    .await?,
            ),
            Method::Patch => {
                let patch = patch_document(e.resource.as_ref())?;
                Outcome::Written(
                    self.patch_conditional(&e.res_type, criteria, &patch, e.if_match)
                        .await?,
                )
            }
            Method::Delete => {
                let deleted = self.delete_conditional(&e.res_type, criteria).await?;
                Outcome::Deleted(match deleted.deleted.as_slice() {
                    [(_, version)] => Some(*version),
                    _ => None,
                })
            }
            Method::Get => {
                return Err(RepoError::NotSupported(
                    "searches in Bundles are not supported yet".into(),
                ));
            }
        })
    }

    /// Runs a GET entry: a read, a version read or a search.
    async fn get(&self, e: &Entry, base: &str) -> Result<Outcome> {
        if let Some(search) = &e.search {
            return self.search_entry(&e.res_type, search, base).await;
        }
        let id = e.id.as_deref().unwrap_or_default();
        Ok(Outcome::Read(match &e.version {
            Some(v) => self.vread(&e.res_type, id, v).await?,
            None => self.read(&e.res_type, id).await?,
        }))
    }

    async fn search_entry(&self, res_type: &str, s: &Search, base: &str) -> Result<Outcome> {
        let (scope, endpoint) = search_scope(res_type, s, base);
        let bundle = self
            .search(scope, &s.pairs, Handling::Lenient, base, &endpoint)
            .await?;
        let bundle = serde_json::from_str(&bundle)
            .map_err(|e| RepoError::Unprocessable(format!("a searchset is not JSON: {e}")))?;
        Ok(Outcome::Searched(bundle))
    }

    async fn transaction(&self, original: Vec<Entry>, base: &str) -> Result<Vec<Outcome>> {
        let patches: Vec<Option<PatchDocument>> = original
            .iter()
            .enumerate()
            .map(|(i, e)| match e.method {
                Method::Patch => patch_document(e.resource.as_ref())
                    .map(Some)
                    .map_err(|err| at_entry(i, err)),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        // Searches run after the commit; one that cannot run fails the transaction
        // before anything is written.
        for (i, e) in original.iter().enumerate() {
            if let Some(search) = &e.search {
                let (scope, _) = search_scope(&e.res_type, search, base);
                self.check_search(scope, &search.pairs, Handling::Lenient, base)
                    .await
                    .map_err(|err| at_entry(i, err))?;
            }
        }
        let mut order: Vec<usize> = (0..original.len()).collect();
        order.sort_by_key(|&i| original[i].method.rank());

        let mut attempt = 0;
        let (entries, mut outcomes) = loop {
            // Conditions are resolved afresh on every attempt: a retry follows a commit
            // by someone else that may have changed what they match.
            let mut entries = original.clone();
            let mut resolved = Vec::with_capacity(entries.len());
            for (i, e) in entries.iter_mut().enumerate() {
                resolved.push(self.resolve(e).await.map_err(|err| at_entry(i, err))?);
            }
            check_distinct_guards(&entries, &resolved)?;
            let mut references = assign_ids(&mut entries, &resolved)?;
            self.resolve_references(&entries, &mut references).await?;
            for entry in &mut entries {
                if let Some(resource) = entry
                    .resource
                    .as_mut()
                    .filter(|_| matches!(entry.method, Method::Post | Method::Put))
                {
                    rewrite_references(resource, &references);
                }
            }

            let mut currents = self.read_currents(&entries, &resolved).await?;
            let mut outcomes: Vec<Option<Outcome>> = entries.iter().map(|_| None).collect();
            let mut plans: Vec<(usize, Plan)> = Vec::new();
            let mut guards: Vec<Guard> = Vec::new();
            for &i in &order {
                let e = &entries[i];
                if e.method == Method::Get {
                    continue;
                }
                let (planned, outcome) = self
                    .plan_entry(e, patches[i].as_ref(), &resolved[i], currents[i].take())
                    .map_err(|err| at_entry(i, err))?;
                outcomes[i] = Some(outcome);
                plans.extend(planned.into_iter().map(|p| (i, p)));
                if let Resolved::Guarded(cond) = &resolved[i] {
                    guards.push(cond.guard());
                }
            }
            let commit = Commit {
                guards,
                writes: plans.iter().map(|(_, p)| p.write.clone()).collect(),
                ..Default::default()
            };
            match self.commit(commit).await {
                Ok(Committed::Stored { .. }) => break (entries, outcomes),
                // A conditional create lost a race: plan again, and find the winner.
                Ok(Committed::Matched { .. }) => {}
                Err(RepoError::Store(StoreError::Conflict { index })) => {
                    let entry = &entries[plans[index].0];
                    if let Some(expected) = entry.if_match {
                        let id = entry.id.as_deref().unwrap_or_default();
                        let current = self.store.read(&entry.res_type, id).await?;
                        check_if_match(&entry.res_type, id, Some(expected), current.as_ref())?;
                    }
                }
                Err(e) => return Err(e),
            }
            if attempt >= self.limits.write_retries {
                return Err(RepoError::Conflict(
                    "the transaction kept conflicting with concurrent writes".into(),
                ));
            }
            crate::write::backoff(attempt).await;
            attempt += 1;
        };
        for &i in order.iter().filter(|&&i| entries[i].method == Method::Get) {
            outcomes[i] = Some(
                self.get(&entries[i], base)
                    .await
                    .unwrap_or_else(Outcome::Failed),
            );
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// Runs the search of a conditional entry and fixes the entry's target: the id of
    /// the match of a conditional update or patch, the id of a conditional create's
    /// existing resource, the id a conditional update creates.
    async fn resolve(&self, e: &mut Entry) -> Result<Resolved> {
        let Some(criteria) = e.condition.clone() else {
            return Ok(Resolved::Plain);
        };
        let res_type = e.res_type.clone();
        if e.method == Method::Delete {
            let cond = self
                .condition(&res_type, &criteria, self.delete_limit() + 1)
                .await?;
            let hits = self.matches(&cond).await?;
            return Ok(Resolved::Deletes(cond, hits));
        }
        let cond = self.condition(&res_type, &criteria, 2).await?;
        let what = match e.method {
            Method::Post => "conditional create",
            Method::Put => "conditional update",
            _ => "conditional patch",
        };
        let found = at_most_one(&res_type, &cond, self.matches(&cond).await?, what)?;
        Ok(match (e.method, found) {
            (Method::Post, Some(hit)) => {
                e.id = Some(hit.id.clone());
                Resolved::Existing(stored_of(hit))
            }
            (Method::Post, None) => Resolved::Guarded(cond),
            (Method::Put, found) => {
                let resource = e.resource.get_or_insert_with(|| json!({}));
                let body_id = crate::write::body_id(resource)?;
                let (id, resolved) = match found {
                    Some(hit) => {
                        if body_id.as_deref().is_some_and(|id| id != hit.id) {
                            return Err(RepoError::Invalid(format!(
                                "the resource id {:?} is not the id of the resource the criteria match ({res_type}/{})",
                                body_id.unwrap_or_default(),
                                hit.id
                            )));
                        }
                        (hit.id, Resolved::Plain)
                    }
                    None => (body_id.unwrap_or_else(id::new_id), Resolved::Guarded(cond)),
                };
                resource["id"] = Value::String(id.clone());
                e.id = Some(id);
                resolved
            }
            (_, Some(hit)) => {
                e.id = Some(hit.id);
                Resolved::Plain
            }
            (_, None) => {
                return Err(RepoError::NotFound(format!(
                    "no resource matching {res_type}?{}",
                    cond.canonical
                )));
            }
        })
    }

    /// Resolves every conditional reference (`Patient?identifier=…`) in the resources of
    /// POST and PUT entries to its single match: none is a 400, several a 412.
    async fn resolve_references(
        &self,
        entries: &[Entry],
        references: &mut HashMap<String, String>,
    ) -> Result<()> {
        for (i, e) in entries.iter().enumerate() {
            if !matches!(e.method, Method::Post | Method::Put) {
                continue;
            }
            let mut found = Vec::new();
            if let Some(resource) = &e.resource {
                conditional_references(resource, &mut found);
            }
            for reference in found {
                if references.contains_key(&reference) {
                    continue;
                }
                let Some((res_type, query)) = reference.split_once('?') else {
                    continue;
                };
                let resolve = async {
                    let pairs = parse_condition(query);
                    let cond = self.condition(res_type, &pairs, 2).await?;
                    let mut ids: Vec<String> = self
                        .matches(&cond)
                        .await?
                        .into_iter()
                        .map(|h| h.id)
                        .collect();
                    // Resources this transaction writes are not stored yet: they are
                    // judged in memory, when the criteria are token parameters.
                    for other in entries.iter().filter(|o| {
                        matches!(o.method, Method::Post | Method::Put) && o.res_type == res_type
                    }) {
                        let (Some(resource), Some(id)) = (&other.resource, &other.id) else {
                            continue;
                        };
                        if ember_fhir::index::matches_tokens(resource, &pairs) == Some(true)
                            && !ids.contains(id)
                        {
                            ids.push(id.clone());
                        }
                    }
                    match ids.as_slice() {
                        [id] => Ok(id.clone()),
                        [] => Err(RepoError::Invalid(format!(
                            "the conditional reference {reference:?} matches no resource"
                        ))),
                        _ => Err(multiple(res_type, &cond, "conditional reference")),
                    }
                };
                let id = resolve.await.map_err(|err| at_entry(i, err))?;
                let target = format!("{res_type}/{id}");
                references.insert(reference, target);
            }
        }
        Ok(())
    }

    /// The current version of each entry that [`Repo::plan_entry`] plans against (an
    /// update, patch or delete of a named resource), read together; `None` for the
    /// others.
    async fn read_currents(
        &self,
        entries: &[Entry],
        resolved: &[Resolved],
    ) -> Result<Vec<Option<Current>>> {
        let planned: Vec<usize> = (0..entries.len())
            .filter(|&i| !matches!(entries[i].method, Method::Get | Method::Post))
            .filter(|&i| matches!(resolved[i], Resolved::Plain | Resolved::Guarded(_)))
            .collect();
        let keys: Vec<(&str, &str)> = planned
            .iter()
            .map(|&i| {
                let e = &entries[i];
                (e.res_type.as_str(), e.id.as_deref().unwrap_or_default())
            })
            .collect();
        let mut currents = vec![None; entries.len()];
        for (i, current) in planned.into_iter().zip(self.store.read_many(&keys).await?) {
            currents[i] = current;
        }
        Ok(currents)
    }

    /// Plans one write entry of a transaction against its `current` version (see
    /// [`Repo::read_currents`]).
    fn plan_entry(
        &self,
        e: &Entry,
        patch: Option<&PatchDocument>,
        resolved: &Resolved,
        current: Option<Current>,
    ) -> Result<(Vec<Plan>, Outcome)> {
        match resolved {
            Resolved::Existing(stored) => return Ok((vec![], Outcome::Written(stored.clone()))),
            Resolved::Deletes(cond, hits) => {
                let plans = self.plan_deletes(&e.res_type, cond, hits)?;
                let version = match plans.as_slice() {
                    [one] => Some(one.stored.version),
                    _ => None,
                };
                return Ok((plans, Outcome::Deleted(version)));
            }
            Resolved::Plain | Resolved::Guarded(_) => {}
        }
        let id = e.id.as_deref().unwrap_or_default();
        if let (Resolved::Guarded(cond), Some(c)) = (resolved, &current) {
            if !c.deleted {
                return Err(RepoError::Conflict(format!(
                    "{}/{id} exists but does not meet the criteria {}?{}",
                    e.res_type, e.res_type, cond.canonical
                )));
            }
        }
        check_if_match(&e.res_type, id, e.if_match, current.as_ref())?;
        let plan = match e.method {
            Method::Post => {
                self.plan_create(&e.res_type, id, e.resource.clone().unwrap_or_default())?
            }
            Method::Put => {
                let body = e.resource.clone().unwrap_or_default();
                check_body(&e.res_type, &body)?;
                if body.get("id").and_then(Value::as_str) != Some(id) {
                    return Err(RepoError::Invalid(format!(
                        "the resource id must be {id:?}, as in the request URL"
                    )));
                }
                self.plan_update(&e.res_type, id, body, current.as_ref())?
            }
            Method::Patch => {
                let patch = patch.ok_or_else(|| {
                    RepoError::Invalid("a PATCH entry needs a patch document".into())
                })?;
                plan_patch(
                    &e.res_type,
                    id,
                    patch,
                    current.as_ref(),
                    &self.limits,
                    &self.params,
                )?
            }
            Method::Delete => {
                return Ok(match plan_delete(&e.res_type, id, current.as_ref())? {
                    Some(plan) => {
                        let version = plan.stored.version;
                        (vec![plan], Outcome::Deleted(Some(version)))
                    }
                    None => (vec![], Outcome::Deleted(None)),
                });
            }
            Method::Get => {
                return Err(RepoError::Invalid(
                    "GET entries are read after the writes".into(),
                ));
            }
        };
        let outcome = Outcome::Written(plan.stored.clone());
        Ok((vec![plan], outcome))
    }
}

/// Gives every POST entry that creates a resource a new id and maps each entry's
/// `fullUrl` (and, for absolute URLs, its `Type/id` tail) to the reference it will have
/// on this server (for a conditional create that matched, the existing resource). Fails
/// when two entries write the same resource.
/// Refuses control characters in an entry's `fullUrl` and `request` (its resource is
/// validated as it is written).
fn check_entry_text(raw: &Value, request: &Value) -> Result<()> {
    let full_url = raw.get("fullUrl").map(|v| ("fullUrl", v));
    let request_fields = request.as_object().into_iter().flatten();
    for (name, value) in full_url
        .into_iter()
        .chain(request_fields.map(|(k, v)| (k.as_str(), v)))
    {
        if let Some(c) = value.as_str().and_then(ember_fhir::control_char) {
            return Err(RepoError::Invalid(format!(
                "{name}: control characters are not allowed (found U+{:04X})",
                u32::from(c)
            )));
        }
    }
    Ok(())
}

/// What a search entry searches, and its endpoint URL for the searchset's links.
fn search_scope<'a>(res_type: &'a str, s: &'a Search, base: &str) -> (SearchScope<'a>, String) {
    match &s.target {
        Target::Type => (SearchScope::Type(res_type), format!("{base}/{res_type}")),
        Target::System => (SearchScope::System, base.to_owned()),
        Target::Compartment { compartment, id } => (
            SearchScope::Compartment {
                compartment,
                id,
                res_type,
            },
            format!("{base}/{compartment}/{id}/{res_type}"),
        ),
    }
}

fn assign_ids(entries: &mut [Entry], resolved: &[Resolved]) -> Result<HashMap<String, String>> {
    let mut references = HashMap::new();
    let mut written = HashSet::new();
    let mut write = |i: usize, reference: String| {
        if written.insert(reference.clone()) {
            Ok(())
        } else {
            Err(at_entry(
                i,
                RepoError::Invalid(format!("{reference} is written by more than one entry")),
            ))
        }
    };
    for (i, e) in entries.iter_mut().enumerate() {
        if let Some(Resolved::Deletes(_, hits)) = resolved.get(i) {
            for hit in hits {
                write(i, format!("{}/{}", hit.res_type, hit.id))?;
            }
            continue;
        }
        let existing = matches!(resolved.get(i), Some(Resolved::Existing(_)));
        if e.method == Method::Post && !existing {
            e.id = Some(id::new_id());
        }
        let Some(id) = e.id.clone() else { continue };
        let reference = format!("{}/{id}", e.res_type);
        if e.method != Method::Get && !existing {
            write(i, reference.clone())?;
        }
        if let Some(full_url) = &e.full_url {
            if matches!(e.method, Method::Post | Method::Put) {
                references.insert(full_url.clone(), reference.clone());
                if !full_url.starts_with("urn:") {
                    let tail: Vec<&str> = full_url.rsplitn(3, '/').collect();
                    if let [old_id, res_type, _] = tail.as_slice() {
                        if *res_type == e.res_type {
                            references.insert(format!("{res_type}/{old_id}"), reference.clone());
                        }
                    }
                }
            }
        }
    }
    Ok(references)
}

/// Fails when two conditional creates of one transaction have the same criteria: both
/// would be created, since neither sees the other before the commit.
fn check_distinct_guards(entries: &[Entry], resolved: &[Resolved]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, r) in resolved.iter().enumerate() {
        if let Resolved::Guarded(cond) = r {
            if !seen.insert((entries[i].res_type.as_str(), cond.canonical.as_str())) {
                return Err(at_entry(
                    i,
                    RepoError::Invalid(format!(
                        "another entry conditionally creates {}?{} too",
                        entries[i].res_type, cond.canonical
                    )),
                ));
            }
        }
    }
    Ok(())
}

/// Collects the conditional references (`"reference": "Type?criteria"`) in `value`.
fn conditional_references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if key == "reference" => {
                        if s.split_once('?')
                            .is_some_and(|(t, _)| ember_fhir::is_resource_type(t))
                            && !out.contains(s)
                        {
                            out.push(s.clone());
                        }
                    }
                    _ => conditional_references(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| conditional_references(v, out)),
        _ => {}
    }
}

/// Replaces references (and `urn:uuid:` URIs) that point at other entries.
fn rewrite_references(value: &mut Value, references: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(s) if key == "reference" || s.starts_with("urn:uuid:") => {
                        if let Some(new) = references.get(s.as_str()) {
                            *s = new.clone();
                        }
                    }
                    _ => rewrite_references(v, references),
                }
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| rewrite_references(v, references)),
        _ => {}
    }
}

/// The patch carried by a PATCH entry: a `Parameters` resource (FHIRPath Patch) or a
/// Binary of `application/json-patch+json` (JSON Patch).
fn patch_document(resource: Option<&Value>) -> Result<PatchDocument> {
    let resource =
        resource.ok_or_else(|| RepoError::Invalid("a PATCH entry needs a resource".into()))?;
    match resource.get("resourceType").and_then(Value::as_str) {
        Some("Binary") => {
            let content_type = resource
                .get("contentType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !content_type.starts_with("application/json-patch+json") {
                return Err(RepoError::NotSupported(format!(
                    "a PATCH entry's Binary must have contentType application/json-patch+json, not {content_type:?}"
                )));
            }
            let data = resource
                .get("data")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(data)
                .map_err(|e| RepoError::Invalid(format!("the Binary data is not base64: {e}")))?;
            serde_json::from_slice(&bytes)
                .map(PatchDocument::Json)
                .map_err(|e| RepoError::Invalid(format!("the JSON Patch is not valid JSON: {e}")))
        }
        Some("Parameters") => Ok(PatchDocument::FhirPath(resource.clone())),
        _ => Err(RepoError::Invalid(
            "a PATCH entry's resource must be a Parameters resource (FHIRPath Patch) or a Binary holding a JSON Patch".into(),
        )),
    }
}

fn parse_entry(mut raw: Value, base: &str) -> Result<Entry> {
    let resource = raw.get_mut("resource").map(Value::take);
    let request = raw
        .get("request")
        .ok_or_else(|| RepoError::Invalid("the entry has no request".into()))?;
    check_entry_text(&raw, request)?;
    let method = match request.get("method").and_then(Value::as_str) {
        Some("GET") | Some("HEAD") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("PATCH") => Method::Patch,
        Some("DELETE") => Method::Delete,
        other => {
            return Err(RepoError::Invalid(format!(
                "unsupported request.method {other:?}"
            )));
        }
    };
    let url = request
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| RepoError::Invalid("the entry has no request.url".into()))?;
    if request.get("ifNoneMatch").is_some() || request.get("ifModifiedSince").is_some() {
        return Err(RepoError::NotSupported(
            "ifNoneMatch and ifModifiedSince in Bundles are not supported yet".into(),
        ));
    }
    let mut condition = match request.get("ifNoneExist") {
        None => None,
        Some(_) if method != Method::Post => {
            return Err(RepoError::Invalid(
                "request.ifNoneExist is only allowed on POST entries".into(),
            ));
        }
        Some(Value::String(criteria)) => Some(parse_condition(criteria)),
        Some(_) => {
            return Err(RepoError::Invalid(
                "request.ifNoneExist must be a string".into(),
            ));
        }
    };
    let path = url
        .strip_prefix(base)
        .map(|p| p.trim_start_matches('/'))
        .unwrap_or(url);
    if path.starts_with("http://") || path.starts_with("https://") {
        return Err(RepoError::Invalid(format!("{url:?} is not on this server")));
    }
    let path = path.trim_start_matches('/');
    let mut query = None;
    let path = match path.split_once('?') {
        None => path,
        Some((path, q)) => {
            match method {
                Method::Put | Method::Patch | Method::Delete if !path.contains('/') => {
                    condition = Some(parse_condition(q));
                }
                Method::Get => query = Some(parse_condition(q)),
                _ => {
                    return Err(RepoError::Invalid(format!(
                        "{method:?} is not allowed on {url:?}"
                    )));
                }
            }
            path
        }
    };
    let segments: Vec<&str> = path.split('/').collect();
    let (res_type, id, version, compartment) = match segments.as_slice() {
        [""] if method == Method::Get => ("", None, None, None),
        [t] => (*t, None, None, None),
        [t, id] => (*t, Some(*id), None, None),
        [t, id, "_history", v] => (*t, Some(*id), Some(*v), None),
        [c, id, t] if method == Method::Get => (*t, None, None, Some((*c, *id))),
        _ => {
            return Err(RepoError::NotSupported(format!(
                "the request URL {url:?} is not supported in a Bundle"
            )));
        }
    };
    // `GET [base]?…` names no type; every other URL does.
    if !(method == Method::Get && res_type.is_empty()) {
        check_type(res_type)?;
    }
    if let Some(id) = id {
        check_id(id)?;
    }
    let search = match (method, id, compartment) {
        (Method::Get, None, None) if res_type.is_empty() => Some(Target::System),
        (Method::Get, None, None) => Some(Target::Type),
        (Method::Get, None, Some((compartment, id))) => {
            check_type(compartment)?;
            check_id(id)?;
            Some(Target::Compartment {
                compartment: compartment.to_owned(),
                id: id.to_owned(),
            })
        }
        (Method::Get, Some(_), _) if query.is_some() => {
            return Err(RepoError::NotSupported(format!(
                "parameters on a read in a Bundle ({url:?}) are not supported"
            )));
        }
        _ => None,
    }
    .map(|target| Search {
        target,
        pairs: query.unwrap_or_default(),
    });
    let shape_ok = match method {
        Method::Post => id.is_none(),
        Method::Put | Method::Patch | Method::Delete if condition.is_some() => id.is_none(),
        Method::Put | Method::Patch | Method::Delete => id.is_some() && version.is_none(),
        Method::Get => true,
    };
    if !shape_ok {
        return Err(RepoError::Invalid(format!(
            "{method:?} is not allowed on {url:?}"
        )));
    }
    if matches!(method, Method::Post | Method::Put) {
        let body = resource
            .as_ref()
            .ok_or_else(|| RepoError::Invalid(format!("a {method:?} entry needs a resource")))?;
        check_body(res_type, body)?;
    }
    let if_match =
        match request.get("ifMatch").and_then(Value::as_str) {
            Some(s) => Some(parse_etag(s).ok_or_else(|| {
                RepoError::Invalid(format!("ifMatch {s:?} is not a version ETag"))
            })?),
            None => None,
        };
    Ok(Entry {
        method,
        res_type: res_type.to_owned(),
        id: id.map(str::to_owned),
        version: version.map(str::to_owned),
        full_url: raw
            .get("fullUrl")
            .and_then(Value::as_str)
            .map(str::to_owned),
        resource,
        if_match,
        condition,
        search,
    })
}

/// Prefixes an error's message with the entry it concerns, keeping its kind.
fn at_entry(index: usize, e: RepoError) -> RepoError {
    let prefix = format!("Bundle.entry[{index}]: ");
    match e {
        RepoError::Invalid(m) => RepoError::Invalid(prefix + &m),
        RepoError::NotFound(m) => RepoError::NotFound(prefix + &m),
        RepoError::Gone(m) => RepoError::Gone(prefix + &m),
        RepoError::Conflict(m) => RepoError::Conflict(prefix + &m),
        RepoError::MultipleMatches(m) => RepoError::MultipleMatches(prefix + &m),
        RepoError::TooManyMatches(m) => RepoError::TooManyMatches(prefix + &m),
        RepoError::Unprocessable(m) => RepoError::Unprocessable(prefix + &m),
        RepoError::NotSupported(m) => RepoError::NotSupported(prefix + &m),
        RepoError::UnknownType(t) => {
            RepoError::Invalid(format!("{prefix}unknown resource type {t:?}"))
        }
        RepoError::Body(b) => RepoError::Invalid(prefix + &b.to_string()),
        other => other,
    }
}

fn response_entry(outcome: Outcome, base: &str, prefer: Prefer) -> Value {
    match outcome {
        Outcome::Written(s) => {
            let status = if s.created { "201 Created" } else { "200 OK" };
            let mut entry = json!({"fullUrl": format!("{base}/{}/{}", s.res_type, s.id)});
            match prefer {
                Prefer::Representation => {
                    entry["resource"] = serde_json::from_str(&s.body).unwrap_or(Value::Null)
                }
                Prefer::Minimal => {}
                Prefer::OperationOutcome => {}
            }
            let mut response = json!({
                "status": status,
                "location": s.versioned_reference(),
                "etag": s.etag(),
                "lastModified": instant::format_instant(s.last_updated),
            });
            if prefer == Prefer::OperationOutcome {
                response["outcome"] = OperationOutcome::single(
                    Severity::Information,
                    IssueType::Informational,
                    status,
                )
                .to_json();
            }
            entry["response"] = response;
            entry
        }
        Outcome::Deleted(version) => {
            let mut response = json!({"status": "204 No Content"});
            if let Some(v) = version {
                response["etag"] = json!(crate::write::etag(v));
            }
            json!({"response": response})
        }
        Outcome::Read(s) => json!({
            "fullUrl": format!("{base}/{}/{}", s.res_type, s.id),
            "resource": serde_json::from_str::<Value>(&s.body).unwrap_or(Value::Null),
            "response": {
                "status": "200 OK",
                "etag": s.etag(),
                "lastModified": instant::format_instant(s.last_updated),
            },
        }),
        Outcome::Searched(bundle) => json!({
            "resource": bundle,
            "response": {"status": "200 OK"},
        }),
        Outcome::Failed(e) => json!({
            "response": {
                "status": status_line(e.status()),
                "outcome": e.outcome().to_json(),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_references_between_entries() {
        let map: HashMap<String, String> = [
            ("urn:uuid:1".to_owned(), "Patient/a".to_owned()),
            ("Patient/old".to_owned(), "Patient/b".to_owned()),
        ]
        .into();
        let mut r = json!({"subject": {"reference": "urn:uuid:1"}, "performer": [{"reference": "Patient/old"}],
            "focus": {"reference": "Patient/other"}, "note": [{"text": "Patient/old"}], "derivedFrom": [{"reference": "urn:uuid:2"}]});
        rewrite_references(&mut r, &map);
        assert_eq!(r["subject"]["reference"], "Patient/a");
        assert_eq!(r["performer"][0]["reference"], "Patient/b");
        assert_eq!(r["focus"]["reference"], "Patient/other");
        assert_eq!(r["note"][0]["text"], "Patient/old");
        assert_eq!(r["derivedFrom"][0]["reference"], "urn:uuid:2");
    }

    #[test]
    fn parses_entries() {
        let e = parse_entry(json!({"request": {"method": "PUT", "url": "http://x/fhir/Patient/1", "ifMatch": "W/\"2\""},
            "resource": {"resourceType": "Patient", "id": "1"}}), "http://x/fhir").unwrap();
        assert_eq!(
            (e.method, e.res_type.as_str(), e.id.as_deref(), e.if_match),
            (Method::Put, "Patient", Some("1"), Some(2))
        );
        let e = parse_entry(
            json!({"request": {"method": "GET", "url": "Patient/1/_history/3"}}),
            "http://x/fhir",
        )
        .unwrap();
        assert_eq!(e.version.as_deref(), Some("3"));
        assert!(e.search.is_none());
        let search = |url: &str| {
            let e = parse_entry(
                json!({"request": {"method": "GET", "url": url}}),
                "http://x/fhir",
            )
            .unwrap();
            let s = e.search.unwrap_or_else(|| panic!("{url} is no search"));
            (e.res_type, s.target, s.pairs)
        };
        let (t, target, pairs) = search("Patient?name=J%C3%B8rgen&_count=2");
        assert_eq!(t, "Patient");
        assert!(matches!(target, Target::Type));
        assert_eq!(
            pairs,
            [
                ("name".into(), "Jørgen".into()),
                ("_count".into(), "2".into())
            ]
        );
        let (t, target, pairs) = search("http://x/fhir/Observation");
        assert!(t == "Observation" && matches!(target, Target::Type) && pairs.is_empty());
        let (t, target, pairs) = search("?_type=Patient,Observation");
        assert!(t.is_empty() && matches!(target, Target::System));
        assert_eq!(pairs, [("_type".into(), "Patient,Observation".into())]);
        let (t, target, _) = search("Patient/p1/Observation?code=x");
        assert_eq!(t, "Observation");
        assert!(
            matches!(target, Target::Compartment { ref compartment, ref id } if compartment == "Patient" && id == "p1")
        );
        for bad in [
            json!({"request": {"method": "POST", "url": "Patient/1"}, "resource": {"resourceType": "Patient"}}),
            json!({"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Observation"}}),
            json!({"request": {"method": "PUT", "url": "Patient"}, "resource": {"resourceType": "Patient"}}),
            json!({"request": {"method": "DELETE", "url": "Nope/1"}}),
            json!({"request": {"method": "TRACE", "url": "Patient/1"}}),
            json!({"request": {"method": "GET", "url": "http://elsewhere/fhir/Patient/1"}}),
            json!({"request": {"method": "GET", "url": "Patient/1?_summary=true"}}),
            json!({"request": {"method": "GET", "url": "Nope/p1/Observation"}}),
            json!({"request": {"method": "GET", "url": "Patient/p1/Nope"}}),
            json!({"request": {"method": "POST", "url": ""}, "resource": {"resourceType": "Patient"}}),
            json!({"request": {"method": "DELETE", "url": "Patient/p1/Observation"}}),
            json!({"resource": {"resourceType": "Patient"}}),
        ] {
            assert!(parse_entry(bad.clone(), "http://x/fhir").is_err(), "{bad}");
        }
    }
}
