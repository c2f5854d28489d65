//! Bulk Data `$export` (FHIR Bulk Data Access 2.0): a job (kind `export`) that writes
//! the matching resources as NDJSON files, kept in the shared key-value store (namespace
//! [`NAMESPACE`]) until they expire, so any instance serves them and a job that loses
//! its instance resumes on another from its last file.
//!
//! What an export covers is settled at kick-off, with the caller's grants applied
//! there: types the caller may not search are left out (or refused, when asked for by
//! name); a patient-confined token exports its own patient's data only; granular
//! scope criteria are refused. The job then reads without grants, within those limits.
//! Every search is bounded by the kick-off instant (`transactionTime`), so a resource
//! changed later waits for the next export with `_since`.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use ember_fhir::{definitions, instant};
use ember_store::{Cursor, Filter, Job, JobState, KvExpect, Scan, SearchQuery};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::access::{Need, Reach};
use crate::commit::JobRequest;
use crate::jobs::{JobContext, JobError, JobHandler, Ran};
use crate::search::everything::links_to;
use crate::{Handling, Repo, RepoError, Result, SearchScope, check_id, check_type};

/// The kind of export jobs.
pub(crate) const KIND: &str = "export";
/// The key-value namespace of export files (`ember.` is never served by `/kv`).
pub const NAMESPACE: &str = "ember.export";
/// Resources fetched per search page.
const PAGE: u32 = 1000;
/// Resources fetched per store call when a type is read by last update.
const SCAN_PAGE: u32 = 5000;
/// Files read ahead of the one being written.
const READ_AHEAD: usize = 1;

/// Which data an export covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportLevel {
    /// `GET [base]/$export`: everything.
    System,
    /// `GET [base]/Patient/$export`: every patient's compartment.
    Patient,
    /// `GET [base]/Group/[id]/$export`: the compartments of the group's patients.
    Group(String),
}

/// An accepted export, as its status endpoint reports it.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportStatus {
    /// Queued or running; a line on its progress.
    InProgress(String),
    /// Done: the manifest.
    Complete(Value),
    /// Failed for good; why.
    Failed(String),
}

/// Who asked (issuer and client), so only they poll, cancel and download.
pub type Owner = Option<String>;

impl Repo {
    /// Checks an export request and queues its job; returns the job id. `params` are
    /// the kick-off's query parameters, `request` its URL (for the manifest).
    pub async fn export_start(
        &self,
        level: ExportLevel,
        params: &[(String, String)],
        request: &str,
        owner: Owner,
    ) -> Result<String> {
        crate::check_controls(params)?;
        let mut since = None;
        let mut wanted: Option<Vec<String>> = None;
        let mut filters: Vec<(String, String)> = Vec::new();
        for (name, value) in params {
            match name.as_str() {
                "_outputFormat" => {
                    if !matches!(
                        value.as_str(),
                        "application/fhir+ndjson" | "application/ndjson" | "ndjson"
                    ) {
                        return Err(RepoError::Invalid(format!(
                            "_outputFormat: {value:?} is not supported; use application/fhir+ndjson"
                        )));
                    }
                }
                "_since" => {
                    let (from, _) = instant::parse_range(value).ok_or_else(|| {
                        RepoError::Invalid(format!("_since: {value:?} is not an instant"))
                    })?;
                    since = Some(from);
                }
                "_type" => {
                    let types = wanted.get_or_insert_with(Vec::new);
                    for t in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                        check_type(t).map_err(|_| {
                            RepoError::Invalid(format!("_type: {t:?} is not a resource type"))
                        })?;
                        types.push(t.to_owned());
                    }
                }
                "_typeFilter" => filters.extend(type_filters(value)?),
                "_format" | "_pretty" => {}
                other => {
                    return Err(RepoError::Invalid(format!(
                        "{other} is not a parameter of $export (_outputFormat, _since, _type, _typeFilter)"
                    )));
                }
            }
        }
        // The types of the level.
        let compartment = definitions::compartment("Patient");
        let in_compartment =
            |t: &str| t == "Patient" || compartment.is_some_and(|c| c.params(t).is_some());
        let all: Vec<String> = ember_fhir::resource_types()
            .iter()
            .filter(|t| level == ExportLevel::System || in_compartment(t))
            .map(|t| (*t).to_owned())
            .collect();
        let named = wanted.is_some();
        let mut types = match wanted {
            Some(types) => {
                if let Some(t) = types.iter().find(|t| !all.contains(t)) {
                    return Err(RepoError::Invalid(format!(
                        "_type: {t} is not in the Patient compartment, which a patient-level export covers"
                    )));
                }
                types
            }
            None => all,
        };
        // The group's patients.
        let mut patients = match &level {
            ExportLevel::Group(id) => Some(self.group_patients(id).await?),
            _ => None,
        };
        // The caller's grants.
        if let Some(access) = crate::access::current() {
            let mut allowed = Vec::new();
            for t in types {
                match access.reach(&t, Need::Search) {
                    Reach::None(reason) if named => return Err(RepoError::Forbidden(reason)),
                    Reach::None(_) => continue,
                    _ => {}
                }
                let narrowing = access.narrowing(&t);
                if !narrowing.criteria.is_empty() {
                    return Err(RepoError::Forbidden(format!(
                        "the token's scope for {t} is granular; $export needs whole-type scopes"
                    )));
                }
                if let Some((c, pid)) = narrowing.compartment {
                    // Confined to one patient's compartment: that patient's data only.
                    if c == "Patient" && in_compartment(&t) {
                        let own = vec![pid.clone()];
                        patients = Some(match patients.take() {
                            Some(members) if members.contains(&pid) => own,
                            Some(_) => Vec::new(),
                            None => own,
                        });
                    } else {
                        continue;
                    }
                }
                allowed.push(t);
            }
            types = allowed;
        }
        if let Some((t, _)) = filters.iter().find(|(t, _)| !types.contains(t)) {
            if named {
                return Err(RepoError::Invalid(format!(
                    "_typeFilter: {t} is not among the exported types"
                )));
            }
        }
        // Every filter must parse (a 400 now rather than a failed job later).
        for (t, query) in &filters {
            let pairs = pairs_of(query);
            self.check_search(SearchScope::Type(t), &pairs, Handling::Strict, "")
                .await?;
        }
        let payload = json!({
            "level": match &level {
                ExportLevel::System => "system".to_owned(),
                ExportLevel::Patient => "patient".to_owned(),
                ExportLevel::Group(id) => format!("group/{id}"),
            },
            "types": types,
            "since": since,
            "typeFilters": filters,
            "patients": patients,
            "request": request,
            "owner": owner,
            "transactionTime": instant::now(),
        });
        let job = JobRequest {
            kind: KIND.to_owned(),
            payload,
            key: None,
        };
        let id = self
            .enqueue(vec![job])
            .await?
            .pop()
            .ok_or_else(|| RepoError::Invalid("no job was queued".into()))?;
        tracing::info!(job = id, "export queued");
        Ok(id)
    }

    /// Where an export stands; `base` is the public FHIR base URL (for file URLs).
    pub async fn export_status(&self, id: &str, owner: &Owner, base: &str) -> Result<ExportStatus> {
        let (job, payload) = self.export_job(id, owner).await?;
        let at = Position::of(&job);
        Ok(match job.state {
            JobState::Queued | JobState::Running => ExportStatus::InProgress(format!(
                "{} resources in {} files",
                at.exported,
                at.files.len()
            )),
            JobState::Dead => ExportStatus::Failed(
                job.last_error
                    .unwrap_or_else(|| "the export failed".to_owned()),
            ),
            JobState::Done => {
                let expires =
                    job.finished_at.unwrap_or(job.created_at) + micros(self.limits.export_expiry);
                if instant::now() > expires {
                    return Err(RepoError::NotFound(format!("the export {id} (expired)")));
                }
                let output: Vec<Value> = at
                    .files
                    .iter()
                    .map(|f| {
                        json!({"type": f.res_type, "url": format!("{base}/$export-file/{id}/{}", f.name), "count": f.count})
                    })
                    .collect();
                ExportStatus::Complete(json!({
                    "transactionTime": instant::format_instant(payload["transactionTime"].as_i64().unwrap_or_default()),
                    "request": payload["request"],
                    "requiresAccessToken": owner.is_some(),
                    "output": output,
                    "error": [],
                }))
            }
        })
    }

    /// One file of a finished export: its NDJSON bytes.
    pub async fn export_file(&self, id: &str, name: &str, owner: &Owner) -> Result<Vec<u8>> {
        self.export_job(id, owner).await?;
        let entry = self
            .kv_get(NAMESPACE, &format!("{id}/{name}"))
            .await
            .map_err(|_| RepoError::NotFound(format!("the export file {name}")))?;
        Ok(entry.value)
    }

    /// Cancels an export (or deletes a finished one's files): its job stops at its next
    /// file, and the files are removed.
    pub async fn export_cancel(&self, id: &str, owner: &Owner) -> Result<()> {
        self.export_job(id, owner).await?;
        let ttl = Some(self.limits.export_expiry.max(Duration::from_secs(1)));
        self.kv_put(
            NAMESPACE,
            &format!("{id}/cancelled"),
            b"1",
            "text/plain",
            ttl,
            KvExpect::Any,
            16,
        )
        .await?;
        self.delete_files(id).await
    }

    async fn delete_files(&self, id: &str) -> Result<()> {
        loop {
            let files = self
                .kv_list(NAMESPACE, &format!("{id}/"), crate::kv::MAX_LIST)
                .await?;
            let files: Vec<_> = files
                .into_iter()
                .filter(|f| !f.key.ends_with("/cancelled"))
                .collect();
            if files.is_empty() {
                return Ok(());
            }
            for f in files {
                match self.kv_delete(NAMESPACE, &f.key, None).await {
                    Ok(()) | Err(RepoError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// An export job the caller may see, with its payload; cancelled ones are gone.
    async fn export_job(&self, id: &str, owner: &Owner) -> Result<(Job, Value)> {
        check_id(id)?;
        let gone = || RepoError::NotFound(format!("the export {id}"));
        let job = self
            .store
            .job(id)
            .await?
            .filter(|j| j.kind == KIND)
            .ok_or_else(gone)?;
        let payload: Value = serde_json::from_str(&job.payload).unwrap_or_default();
        let asked_by = payload["owner"].as_str().map(str::to_owned);
        if asked_by.is_some() && &asked_by != owner {
            return Err(RepoError::Forbidden(format!(
                "the export {id} was requested by another client"
            )));
        }
        if self
            .kv_get(NAMESPACE, &format!("{id}/cancelled"))
            .await
            .is_ok()
        {
            return Err(gone());
        }
        Ok((job, payload))
    }

    /// The Patient ids of a Group's members (read with the caller's grants).
    async fn group_patients(&self, id: &str) -> Result<Vec<String>> {
        let group: Value = serde_json::from_str(&self.read("Group", id).await?.body)
            .map_err(|e| RepoError::Unprocessable(format!("the stored Group is invalid: {e}")))?;
        Ok(group["member"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m.get("inactive") != Some(&Value::Bool(true)))
            .filter_map(|m| {
                m.pointer("/entity/reference")?
                    .as_str()?
                    .strip_prefix("Patient/")
            })
            .map(str::to_owned)
            .collect())
    }

    /// The store query of one type's part of an export.
    async fn export_query(
        &self,
        payload: &Value,
        res_type: &str,
        filter: Option<&str>,
    ) -> Result<SearchQuery> {
        let mut pairs = filter.map(pairs_of).unwrap_or_default();
        let tt = payload["transactionTime"].as_i64().unwrap_or_default();
        pairs.push((
            "_lastUpdated".into(),
            format!("le{}", instant::format_instant(tt)),
        ));
        if let Some(since) = payload["since"].as_i64() {
            pairs.push((
                "_lastUpdated".into(),
                format!("ge{}", instant::format_instant(since)),
            ));
        }
        pairs.push(("_count".into(), PAGE.to_string()));
        let mut extra: Vec<Filter> = Vec::new();
        let patients: Option<Vec<String>> = payload["patients"].as_array().map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect()
        });
        let level = payload["level"].as_str().unwrap_or("system");
        if level != "system" || patients.is_some() {
            if res_type == "Patient" {
                if let Some(ids) = &patients {
                    extra.push(Filter::Id(ids.clone()));
                }
            } else {
                extra.push(links_to(
                    "Patient",
                    patients.as_deref(),
                    &[res_type.to_owned()],
                ));
            }
        }
        self.raw_query(res_type, &pairs, extra).await
    }
}

/// `_typeFilter` values (`Type?query`, several separated by commas, each possibly
/// with commas of its own in its query) as `(type, query)`.
fn type_filters(value: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for piece in value.split(',') {
        let starts = piece
            .split_once('?')
            .is_some_and(|(t, _)| ember_fhir::is_resource_type(t));
        match out.last_mut() {
            Some((_, query)) if !starts => {
                query.push(',');
                query.push_str(piece);
            }
            _ => {
                let (t, query) = piece.split_once('?').ok_or_else(|| {
                    RepoError::Invalid(format!("_typeFilter: {piece:?} is not Type?query"))
                })?;
                check_type(t).map_err(|_| {
                    RepoError::Invalid(format!("_typeFilter: {t:?} is not a resource type"))
                })?;
                out.push((t.to_owned(), query.to_owned()));
            }
        }
    }
    Ok(out)
}

fn pairs_of(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// One NDJSON file of an export.
#[derive(Debug, Clone, PartialEq)]
struct File {
    res_type: String,
    name: String,
    count: u64,
}

/// Where an export job stands: the next type and filter and the position in its
/// reading, and the files written so far.
#[derive(Debug, Clone, Default, PartialEq)]
struct Position {
    mark: Mark,
    exported: u64,
    files: Vec<File>,
}

impl Position {
    fn of(job: &Job) -> Self {
        let p = crate::jobs::progress(job);
        Position {
            mark: Mark {
                type_index: p["typeIndex"].as_u64().unwrap_or(0) as usize,
                filter_index: p["filterIndex"].as_u64().unwrap_or(0) as usize,
                cursor: p["cursor"].as_i64(),
            },
            exported: p["exported"].as_u64().unwrap_or(0),
            files: p["files"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|f| File {
                    res_type: f["type"].as_str().unwrap_or_default().to_owned(),
                    name: f["name"].as_str().unwrap_or_default().to_owned(),
                    count: f["count"].as_u64().unwrap_or(0),
                })
                .collect(),
        }
    }

    fn to_json(&self) -> Value {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| json!({"type": f.res_type, "name": f.name, "count": f.count}))
            .collect();
        let at = &self.mark;
        json!({"typeIndex": at.type_index, "filterIndex": at.filter_index,
               "cursor": at.cursor, "exported": self.exported, "files": files})
    }
}

/// The `export` job handler.
///
/// Reading and writing overlap: the job reads the resources of the next file while it
/// writes the current one, one file ahead at most (a bounded channel), so the store's
/// read and its write of a file run at once and memory stays bounded by a few files.
/// The position is recorded after every file written, so a job resumed elsewhere
/// starts after the last file it wrote, without duplicates or gaps.
pub(crate) struct Export;

/// The export a job runs, from its payload.
struct Plan {
    payload: Value,
    types: Vec<String>,
    filters: Vec<(String, String)>,
    /// Resources per file.
    per_file: u64,
}

impl Plan {
    /// The `_typeFilter` queries of a type (alternatives), or one `None` without any.
    fn parts(&self, res_type: &str) -> Vec<Option<&str>> {
        let own: Vec<Option<&str>> = self
            .filters
            .iter()
            .filter(|(t, _)| t == res_type)
            .map(|(_, q)| Some(q.as_str()))
            .collect();
        if own.is_empty() { vec![None] } else { own }
    }

    /// Whether the export covers every resource of its types (system level, no patient
    /// confinement): then a type without `_typeFilter` is read by last update alone.
    fn unconfined(&self) -> bool {
        self.payload["level"].as_str().unwrap_or("system") == "system"
            && self.payload["patients"].is_null()
    }
}

/// Where the reading stands: the type, its filter and the last resource read.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Mark {
    type_index: usize,
    filter_index: usize,
    cursor: Option<i64>,
}

/// One file's resources, read ahead of its writing (empty when a part of the export
/// ends with nothing more), and where the job stands once it is written.
struct Chunk {
    /// The index of its resources' type.
    type_index: usize,
    lines: Vec<u8>,
    count: u64,
    next: Mark,
}

/// A resource read for a file.
struct Line {
    rid: i64,
    id: String,
    body: String,
}

/// How one part (a type and perhaps one of its `_typeFilter` queries) is read.
enum Source {
    /// The type's resources by last update, without the search index.
    Scan { since: Option<i64>, until: i64 },
    /// A search.
    Search(Box<SearchQuery>),
}

impl Source {
    async fn new(repo: &Repo, plan: &Plan, res_type: &str, filter: Option<&str>) -> Result<Self> {
        if filter.is_none() && plan.unconfined() {
            return Ok(Source::Scan {
                since: plan.payload["since"].as_i64(),
                until: plan.payload["transactionTime"].as_i64().unwrap_or_default(),
            });
        }
        let query = repo.export_query(&plan.payload, res_type, filter).await?;
        Ok(Source::Search(Box::new(query)))
    }

    /// Up to `limit` resources after `cursor`, and whether more may follow.
    async fn page(
        &mut self,
        repo: &Repo,
        res_type: &str,
        cursor: Option<i64>,
        limit: u32,
    ) -> Result<(Vec<Line>, bool)> {
        match self {
            Source::Scan { since, until } => {
                let scan = Scan {
                    res_type,
                    since: *since,
                    until: *until,
                    after: cursor.unwrap_or(i64::MIN),
                    limit,
                };
                let docs = repo.store.scan(&scan).await?;
                let more = docs.len() == limit as usize;
                let lines = docs
                    .into_iter()
                    .map(|d| Line {
                        rid: d.rid,
                        id: d.id,
                        body: d.body,
                    })
                    .collect();
                Ok((lines, more))
            }
            Source::Search(query) => {
                query.cursor = cursor.map(|rid| Cursor {
                    values: Vec::new(),
                    rid,
                    backward: false,
                });
                query.limit = limit.min(PAGE);
                let page = repo.store.search(query).await?;
                let lines = page
                    .hits
                    .into_iter()
                    .map(|h| Line {
                        rid: h.rid,
                        id: h.id,
                        body: h.body,
                    })
                    .collect();
                Ok((lines, page.more))
            }
        }
    }
}

/// Reads the export from `at` on, one chunk per file, into `files`; stops early, with
/// no error, when the writer is gone.
async fn read_files(
    repo: &Repo,
    plan: &Plan,
    mut at: Mark,
    files: mpsc::Sender<Chunk>,
) -> Result<(), JobError> {
    while at.type_index < plan.types.len() {
        let res_type = plan.types[at.type_index].as_str();
        let parts = plan.parts(res_type);
        // Several filters of one type are alternatives: a resource matching two is
        // written once, with the first. A job resumed past the first finds again what
        // the earlier ones wrote.
        let mut written: HashSet<String> = HashSet::new();
        // The size of the last file, to allocate the next one at once.
        let mut size = 0;
        for part in &parts[..at.filter_index.min(parts.len())] {
            let mut source = Source::new(repo, plan, res_type, *part).await?;
            let mut cursor = None;
            loop {
                let (lines, more) = source.page(repo, res_type, cursor, PAGE).await?;
                cursor = lines.last().map(|l| l.rid);
                written.extend(lines.into_iter().map(|l| l.id));
                if !more || cursor.is_none() {
                    break;
                }
            }
        }
        while at.filter_index < parts.len() {
            let mut source = Source::new(repo, plan, res_type, parts[at.filter_index]).await?;
            loop {
                let mut lines = Vec::with_capacity(size);
                let mut count = 0u64;
                let mut done = false;
                while count < plan.per_file {
                    let limit = u64::from(SCAN_PAGE).min(plan.per_file - count) as u32;
                    let (page, more) = source.page(repo, res_type, at.cursor, limit).await?;
                    if let Some(last) = page.last() {
                        at.cursor = Some(last.rid);
                    }
                    let end = !more || page.is_empty();
                    for line in page {
                        if parts.len() == 1 || written.insert(line.id) {
                            lines.extend_from_slice(line.body.as_bytes());
                            lines.push(b'\n');
                            count += 1;
                        }
                    }
                    if end {
                        done = true;
                        break;
                    }
                }
                if done {
                    at.filter_index += 1;
                    at.cursor = None;
                }
                size = size.max(lines.len());
                let chunk = Chunk {
                    type_index: at.type_index,
                    lines,
                    count,
                    next: at,
                };
                if files.send(chunk).await.is_err() {
                    return Ok(());
                }
                if done {
                    break;
                }
            }
        }
        at.type_index += 1;
        at.filter_index = 0;
    }
    Ok(())
}

#[async_trait]
impl JobHandler for Export {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let repo = ctx.repo();
        let payload: Value = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Failed(format!("the export's payload is invalid: {e}")))?;
        let types: Vec<String> = payload["types"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let filters: Vec<(String, String)> = payload["typeFilters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| Some((f[0].as_str()?.to_owned(), f[1].as_str()?.to_owned())))
            .collect();
        let plan = Plan {
            payload,
            types,
            filters,
            per_file: repo.limits.export_file_resources.max(1),
        };
        let at = Position::of(job);
        let (sender, files) = mpsc::channel::<Chunk>(READ_AHEAD);
        let reading = read_files(repo, &plan, at.mark, sender);
        let writing = write_files(ctx, job, &plan, at, files);
        tokio::pin!(reading, writing);
        let mut read = false;
        loop {
            tokio::select! {
                // A failed read fails the job at once; a finished one lets the writer
                // write what was read.
                r = &mut reading, if !read => {
                    r?;
                    read = true;
                }
                // A writer that stops (or fails) ends the reading too.
                w = &mut writing => return w,
            }
        }
    }
}

/// Writes each chunk read as a file and records the position after it; checks before
/// each file whether the instance is stopping or the export was cancelled.
async fn write_files(
    ctx: &JobContext,
    job: &Job,
    plan: &Plan,
    mut at: Position,
    mut files: mpsc::Receiver<Chunk>,
) -> Result<Ran, JobError> {
    let repo = ctx.repo();
    let ttl = Some(repo.limits.export_expiry.max(Duration::from_secs(1)));
    while let Some(chunk) = files.recv().await {
        if ctx.stopping() {
            return Ok(Ran::Stopped);
        }
        if repo
            .kv_get(NAMESPACE, &format!("{}/cancelled", job.id))
            .await
            .is_ok()
        {
            return Ok(Ran::Done(Some(json!({"cancelled": true}))));
        }
        if chunk.count > 0 {
            let res_type = &plan.types[chunk.type_index];
            let n = at.files.iter().filter(|f| &f.res_type == res_type).count() + 1;
            let name = format!("{res_type}-{n}.ndjson");
            repo.kv_put(
                NAMESPACE,
                &format!("{}/{name}", job.id),
                &chunk.lines,
                "application/fhir+ndjson",
                ttl,
                KvExpect::Any,
                usize::MAX,
            )
            .await?;
            at.files.push(File {
                res_type: res_type.clone(),
                name,
                count: chunk.count,
            });
            at.exported += chunk.count;
        }
        at.mark = chunk.next;
        ctx.checkpoint(Default::default(), &at.to_json()).await?;
    }
    tracing::info!(
        job = job.id,
        exported = at.exported,
        files = at.files.len(),
        "export done"
    );
    Ok(Ran::Done(Some(at.to_json())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_filters_split_at_types_only() {
        let got =
            type_filters("Observation?code=a,b&status=final,Condition?clinical-status=active")
                .unwrap();
        assert_eq!(
            got,
            [
                ("Observation".to_owned(), "code=a,b&status=final".to_owned()),
                ("Condition".to_owned(), "clinical-status=active".to_owned())
            ]
        );
        assert!(type_filters("status=final").is_err());
        assert!(type_filters("Nope?x=1").is_err());
    }
}
