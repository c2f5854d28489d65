//! The inputs of `ember import`: finding the files, reading NDJSON lines into `batch`
//! Bundles of PUTs, and reading Bundle files.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::checkpoint::FileProgress;

/// How a file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One resource per line (`.ndjson`, `.jsonl`).
    Ndjson,
    /// A transaction or batch Bundle (`.json`).
    Bundle,
}

/// The kind of a file by its name, `None` for other files.
pub fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.ends_with(".ndjson") || name.ends_with(".jsonl") {
        Some(Kind::Ndjson)
    } else if name.ends_with(".json") {
        Some(Kind::Bundle)
    } else {
        None
    }
}

/// One input file.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// As given or found under a given folder; for messages and the rejects.
    pub path: PathBuf,
    /// The canonical path: the key of the checkpoint.
    pub key: String,
    pub kind: Kind,
    pub size: u64,
}

/// The files of each PATH argument in order: a file as it is, a folder's `.ndjson`,
/// `.jsonl` and `.json` files recursively, sorted by path (hidden entries and the files
/// in `exclude` left out). A file given twice is loaded once, where it first appears.
pub fn expand(paths: &[PathBuf], exclude: &[PathBuf]) -> Result<Vec<Vec<InputFile>>> {
    let exclude: HashSet<PathBuf> = exclude
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut groups = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{}: no such file or folder", path.display()))?;
        let mut found = Vec::new();
        if meta.is_dir() {
            let mut visited = HashSet::new();
            walk(path, &mut found, &mut visited)?;
            found.sort();
        } else {
            if kind_of(path).is_none() {
                bail!(
                    "{}: not an .ndjson (or .jsonl) file nor a .json Bundle",
                    path.display()
                );
            }
            found.push(path.clone());
        }
        let mut group = Vec::new();
        for file in found {
            let canonical = std::fs::canonicalize(&file)
                .with_context(|| format!("{}: cannot resolve the path", file.display()))?;
            if exclude.contains(&canonical) || !seen.insert(canonical.clone()) {
                continue;
            }
            let size = std::fs::metadata(&canonical)
                .with_context(|| format!("{}", file.display()))?
                .len();
            let kind = kind_of(&file).unwrap_or(Kind::Ndjson);
            group.push(InputFile {
                path: file,
                key: canonical.display().to_string(),
                kind,
                size,
            });
        }
        groups.push(group);
    }
    Ok(groups)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>, visited: &mut HashSet<PathBuf>) -> Result<()> {
    let canonical =
        std::fs::canonicalize(dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    let export = is_export_folder(dir);
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot read", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("{}: cannot read", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || (export && (name == MANIFEST || name == ERROR_FOLDER)) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, out, visited)?;
        } else if meta.is_file() && kind_of(&path).is_some() {
            out.push(path);
        }
    }
    Ok(())
}

/// The Bulk Data manifest in a folder `ember export` wrote.
pub const MANIFEST: &str = "manifest.json";
/// The folder of its error files (OperationOutcomes) beside the manifest.
pub const ERROR_FOLDER: &str = "error";

/// Whether `dir` holds a Bulk Data export: a `manifest.json` that is a JSON object with
/// an `output` array and no `resourceType` (so not a Bundle). Its manifest and error
/// folder are not data to load.
pub fn is_export_folder(dir: &Path) -> bool {
    let Ok(text) = std::fs::read(dir.join(MANIFEST)) else {
        return false;
    };
    serde_json::from_slice::<Value>(&text)
        .is_ok_and(|v| v["output"].is_array() && v.get("resourceType").is_none())
}

/// Why a line or file was not sent, as an OperationOutcome issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The issue type (`structure`, `required`, `value`, ...).
    pub code: &'static str,
    pub message: String,
}

impl Invalid {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn outcome(&self) -> Value {
        outcome(self.code, &self.message)
    }
}

/// An OperationOutcome with one error issue.
pub fn outcome(code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    })
}

/// A resource read from a line, ready for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub resource_type: String,
    pub id: String,
    /// The Bundle entry: `{"resource":…,"request":{"method":"PUT","url":"Type/id"}}`.
    pub entry: String,
}

#[derive(Deserialize)]
struct Head {
    #[serde(rename = "resourceType")]
    resource_type: Option<Value>,
    id: Option<Value>,
}

/// The namespace of the ids derived from content.
fn id_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:ember:import")
}

/// The id of a resource that has none: a UUIDv5 of its line, so the same line gets
/// the same id on every run.
pub fn derive_id(line: &[u8]) -> String {
    Uuid::new_v5(&id_namespace(), line).to_string()
}

/// Whether `s` is a FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn is_fhir_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether `s` looks like a resource type name: a capital, then letters.
pub fn is_type_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphabetic())
        && s.len() <= 64
}

/// serde_json's message, with its position in a whole file or else (a line) its column.
fn json_error(e: &serde_json::Error, whole_file: bool) -> String {
    let text = e.to_string();
    let msg = text.split(" at line ").next().unwrap_or(&text);
    if whole_file {
        format!(
            "not valid JSON: {msg} (line {}, column {})",
            e.line(),
            e.column()
        )
    } else {
        format!("not valid JSON: {msg} (column {})", e.column())
    }
}

/// Reads one non-empty NDJSON line (surrounding whitespace trimmed) into a PUT entry. A
/// resource without an id gets [`derive_id`] of the line.
pub fn parse_line(line: &[u8]) -> Result<Prepared, Invalid> {
    if line.first() != Some(&b'{') {
        return Err(match serde_json::from_slice::<Value>(line) {
            Err(e) => Invalid::new("structure", json_error(&e, false)),
            Ok(_) => Invalid::new("structure", "not a JSON object (a resource)"),
        });
    }
    let head: Head = serde_json::from_slice(line)
        .map_err(|e| Invalid::new("structure", json_error(&e, false)))?;
    let resource_type = match head.resource_type {
        None => return Err(Invalid::new("required", "no resourceType")),
        Some(Value::String(t)) if is_type_name(&t) => t,
        Some(other) => {
            return Err(Invalid::new(
                "value",
                format!("resourceType {other} is not a resource type name"),
            ));
        }
    };
    let (id, resource) = match head.id {
        Some(Value::String(id)) if is_fhir_id(&id) => {
            // The line goes into the Bundle as it is.
            let text = std::str::from_utf8(line)
                .map_err(|_| Invalid::new("structure", "not UTF-8 text"))?;
            (id, text.to_owned())
        }
        Some(Value::Null) | None => {
            let id = derive_id(line);
            let value: Map<String, Value> = serde_json::from_slice(line)
                .map_err(|e| Invalid::new("structure", json_error(&e, false)))?;
            let mut with_id = Map::new();
            with_id.insert("resourceType".into(), Value::String(resource_type.clone()));
            with_id.insert("id".into(), Value::String(id.clone()));
            for (k, v) in value {
                if k != "resourceType" && k != "id" {
                    with_id.insert(k, v);
                }
            }
            (id, Value::Object(with_id).to_string())
        }
        Some(other) => {
            return Err(Invalid::new(
                "value",
                format!("id {other} is not a FHIR id (1 to 64 of A-Z, a-z, 0-9, - and .)"),
            ));
        }
    };
    let entry = format!(
        r#"{{"resource":{resource},"request":{{"method":"PUT","url":"{resource_type}/{id}"}}}}"#
    );
    Ok(Prepared {
        resource_type,
        id,
        entry,
    })
}

/// What one entry of a request is, for the counts and the rejects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    /// NDJSON: the line (from 1); a Bundle file: the entry index (from 0).
    pub pos: u64,
    pub resource_type: String,
    pub id: Option<String>,
}

/// Where a reject was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum At {
    /// An NDJSON line (from 1).
    Line(u64),
    /// An entry of a Bundle file (from 0).
    Entry(u64),
    /// A whole transaction Bundle of this many entries.
    Transaction(u64),
    /// The file itself (unreadable, not a Bundle, ...).
    File,
}

/// One entry (or file) that was not imported.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub at: At,
    pub resource_type: Option<String>,
    pub id: Option<String>,
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    pub outcome: Value,
}

/// The work of one request (or of none, when everything in it was skipped or invalid).
#[derive(Debug, Default)]
pub struct Unit {
    /// Index of the file in the run's file list.
    pub file: usize,
    /// Its place among the file's units, from 0.
    pub seq: u64,
    /// The file's `done` once this unit and all before it are complete.
    pub end: u64,
    /// Input bytes this unit covers (for the progress).
    pub bytes: u64,
    /// Resources and bytes skipped as done by the checkpoint.
    pub skipped: u64,
    pub skipped_bytes: u64,
    /// The Bundle to POST, if any.
    pub body: Option<Bytes>,
    pub entries: Vec<EntryMeta>,
    /// A transaction: all or nothing.
    pub transaction: bool,
    /// Sending it twice does no harm (no POST without `ifNoneExist`, no PATCH).
    pub idempotent: bool,
    /// Invalid lines (or the file itself) found while reading.
    pub invalid: Vec<Failure>,
}

/// Limits of one NDJSON batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most entries.
    pub entries: usize,
    /// Most bytes of entries (a single larger line still goes, alone).
    pub bytes: usize,
}

/// Entries being gathered into a `batch` Bundle.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    text: String,
    entries: Vec<EntryMeta>,
}

const BATCH_HEAD: &str = r#"{"resourceType":"Bundle","type":"batch","entry":["#;

impl BatchBuilder {
    pub fn push(&mut self, pos: u64, p: Prepared) {
        if self.entries.is_empty() {
            self.text.push_str(BATCH_HEAD);
        } else {
            self.text.push(',');
        }
        self.text.push_str(&p.entry);
        self.entries.push(EntryMeta {
            pos,
            resource_type: p.resource_type,
            id: Some(p.id),
        });
    }

    /// Whether the batch, with `invalid` lines beside it, is to be sent.
    pub fn is_full(&self, limits: BatchLimits, invalid: usize) -> bool {
        self.entries.len() + invalid >= limits.entries || self.text.len() >= limits.bytes
    }

    /// The Bundle (`None` when empty) and its entries; the builder is empty again.
    pub fn take(&mut self) -> (Option<Bytes>, Vec<EntryMeta>) {
        let entries = std::mem::take(&mut self.entries);
        if entries.is_empty() {
            return (None, entries);
        }
        let mut text = std::mem::take(&mut self.text);
        text.push_str("]}");
        (Some(Bytes::from(text)), entries)
    }
}

/// Reads an NDJSON file into units: the lines the checkpoint has not done (or
/// rejected), in batches within `limits`, and the invalid lines, and calls `emit` with
/// each; stops early when `emit` returns false. The last unit brings `done` to the
/// file's last line.
pub fn ndjson_units(
    file: usize,
    mut reader: impl BufRead,
    progress: &FileProgress,
    limits: BatchLimits,
    emit: &mut dyn FnMut(Unit) -> bool,
) -> std::io::Result<()> {
    let mut seq = 0;
    let mut unit = Unit {
        file,
        idempotent: true,
        ..Unit::default()
    };
    let mut batch = BatchBuilder::default();
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        unit.bytes += n as u64;
        unit.end = line_no;
        let mut line = buf.trim_ascii();
        if line_no == 1 {
            line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        }
        if line.is_empty() {
            continue;
        }
        if progress.skips_line(line_no) {
            unit.skipped += 1;
            unit.skipped_bytes += n as u64;
            continue;
        }
        match parse_line(line) {
            Ok(p) => batch.push(line_no, p),
            Err(invalid) => unit.invalid.push(Failure {
                at: At::Line(line_no),
                resource_type: None,
                id: None,
                status: None,
                outcome: invalid.outcome(),
            }),
        }
        if batch.is_full(limits, unit.invalid.len()) {
            let (body, entries) = batch.take();
            let next = Unit {
                file,
                seq: seq + 1,
                end: line_no,
                idempotent: true,
                ..Unit::default()
            };
            let full = std::mem::replace(&mut unit, next);
            seq += 1;
            if !emit(Unit {
                body,
                entries,
                ..full
            }) {
                return Ok(());
            }
        }
    }
    let (body, entries) = batch.take();
    emit(Unit {
        body,
        entries,
        ..unit
    });
    Ok(())
}

/// The unit of a whole file that is not read: skipped as complete, or failed.
pub fn file_unit(
    file: usize,
    size: u64,
    progress: &FileProgress,
    failure: Option<Failure>,
) -> Unit {
    match failure {
        None => Unit {
            file,
            end: progress.done,
            bytes: size,
            skipped: progress.done,
            skipped_bytes: size,
            idempotent: true,
            ..Unit::default()
        },
        Some(f) => Unit {
            file,
            end: 0,
            bytes: size,
            idempotent: true,
            invalid: vec![f],
            ..Unit::default()
        },
    }
}

/// A failure of a whole file.
pub fn file_failure(code: &'static str, message: String) -> Failure {
    Failure {
        at: At::File,
        resource_type: None,
        id: None,
        status: None,
        outcome: outcome(code, &message),
    }
}

/// The resource type and id of a Bundle entry, from its resource or else its request URL.
fn entry_identity(entry: &Value) -> (String, Option<String>) {
    let resource = &entry["resource"];
    let url = entry["request"]["url"].as_str().unwrap_or_default();
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let mut segs = path.split('/').filter(|s| !s.is_empty());
    let (url_type, url_id) = (segs.next(), segs.next());
    let res_type = resource["resourceType"]
        .as_str()
        .or(url_type.filter(|t| is_type_name(t)))
        .unwrap_or("(unknown)")
        .to_owned();
    let id = resource["id"]
        .as_str()
        .or(url_id.filter(|i| is_fhir_id(i)))
        .map(str::to_owned);
    (res_type, id)
}

/// Whether posting the entry twice does no harm.
fn entry_idempotent(entry: &Value) -> bool {
    let request = &entry["request"];
    match request["method"].as_str().unwrap_or_default() {
        "GET" | "HEAD" | "PUT" | "DELETE" => true,
        "POST" => request["ifNoneExist"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        _ => false,
    }
}

/// Reads a Bundle file into its unit: the Bundle as it is when nothing of it was
/// posted, else a Bundle of the same type with the entries the checkpoint has as rejected.
pub fn bundle_unit(file: usize, text: Vec<u8>, progress: &FileProgress) -> Unit {
    let size = text.len() as u64;
    let bundle: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            let f = file_failure("structure", json_error(&e, true));
            return file_unit(file, size, progress, Some(f));
        }
    };
    let kind = bundle["type"].as_str().unwrap_or_default();
    if bundle["resourceType"] != "Bundle" || !matches!(kind, "transaction" | "batch") {
        let what = if bundle["resourceType"] == "Bundle" {
            format!(
                "a Bundle of type {:?}",
                bundle["type"].as_str().unwrap_or("(none)")
            )
        } else {
            format!(
                "resourceType {}",
                bundle.get("resourceType").unwrap_or(&Value::Null)
            )
        };
        let f = file_failure(
            "invalid",
            format!("{what}: a .json file must hold a transaction or batch Bundle"),
        );
        return file_unit(file, size, progress, Some(f));
    }
    let all: &[Value] = bundle["entry"].as_array().map_or(&[], Vec::as_slice);
    let picked = progress.bundle_entries(all.len() as u64);
    let entries: Vec<EntryMeta> = picked
        .iter()
        .map(|&i| {
            let (resource_type, id) = entry_identity(&all[i as usize]);
            EntryMeta {
                pos: i,
                resource_type,
                id,
            }
        })
        .collect();
    let idempotent = picked.iter().all(|&i| entry_idempotent(&all[i as usize]));
    let body = if picked.len() == all.len() {
        Bytes::from(text)
    } else {
        let chosen: Vec<&Value> = picked.iter().map(|&i| &all[i as usize]).collect();
        Bytes::from(json!({"resourceType": "Bundle", "type": kind, "entry": chosen}).to_string())
    };
    Unit {
        file,
        end: all.len() as u64,
        bytes: size,
        skipped: (all.len() - picked.len()) as u64,
        body: Some(body),
        entries,
        transaction: kind == "transaction",
        idempotent,
        ..Unit::default()
    }
}
