use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::checkpoint::{Checkpoint, FileProgress, format_ranges, parse_ranges, temp_path};
use super::progress::{Snapshot, eta, format_duration, status_line};
use super::source::{
    At, BatchBuilder, BatchLimits, InputFile, Kind, Unit, bundle_unit, derive_id, expand,
    is_fhir_id, kind_of, ndjson_units, parse_line,
};
use super::*;

/// A folder of its own under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ember-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const LIMITS: BatchLimits = BatchLimits {
    entries: 2,
    bytes: 1 << 20,
};

fn units(text: &str, progress: &FileProgress, limits: BatchLimits) -> Vec<Unit> {
    let mut out = Vec::new();
    ndjson_units(
        7,
        Cursor::new(text.as_bytes()),
        progress,
        limits,
        &mut |u| {
            out.push(u);
            true
        },
    )
    .expect("read");
    out
}

fn body(unit: &Unit) -> Value {
    serde_json::from_slice(unit.body.as_ref().expect("a body")).expect("JSON body")
}

fn positions(unit: &Unit) -> Vec<u64> {
    unit.entries.iter().map(|e| e.pos).collect()
}

fn invalid_lines(unit: &Unit) -> Vec<u64> {
    unit.invalid
        .iter()
        .map(|f| match f.at {
            At::Line(n) => n,
            ref other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn a_line_with_an_id_goes_into_the_batch_as_it_is() {
    let line = br#"{"resourceType":"Patient","id":"p-1.a","gender":"female"}"#;
    let p = parse_line(line).expect("valid");
    assert_eq!(p.resource_type, "Patient");
    assert_eq!(p.id, "p-1.a");
    assert_eq!(
        p.entry,
        r#"{"resource":{"resourceType":"Patient","id":"p-1.a","gender":"female"},"request":{"method":"PUT","url":"Patient/p-1.a"}}"#
    );
}

#[test]
fn a_line_without_an_id_gets_one_from_its_content() {
    let line = br#"{"status":"final","resourceType":"Observation","code":{"text":"x"}}"#;
    let p = parse_line(line).expect("valid");
    assert_eq!(p.id, derive_id(line));
    assert!(is_fhir_id(&p.id), "{}", p.id);
    let entry: Value = serde_json::from_str(&p.entry).expect("JSON");
    assert_eq!(entry["request"]["url"], format!("Observation/{}", p.id));
    let resource = entry["resource"].as_object().expect("object");
    let keys: Vec<&str> = resource.keys().map(String::as_str).collect();
    assert_eq!(keys, ["resourceType", "id", "status", "code"]);
    assert_eq!(resource["id"], p.id.as_str());
    // The same line, the same id; another line, another id.
    assert_eq!(parse_line(line).expect("valid"), p);
    let other = br#"{"status":"final","resourceType":"Observation","code":{"text":"y"}}"#;
    assert_ne!(parse_line(other).expect("valid").id, p.id);
    // A null id is no id.
    let null = br#"{"resourceType":"Patient","id":null}"#;
    assert_eq!(parse_line(null).expect("valid").id, derive_id(null));
}

#[test]
fn derived_ids_are_stable_uuids_v5() {
    let id = derive_id(b"{\"resourceType\":\"Patient\"}");
    assert_eq!(id, derive_id(b"{\"resourceType\":\"Patient\"}"));
    let uuid = uuid::Uuid::parse_str(&id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 5);
    assert_ne!(id, derive_id(b"{\"resourceType\":\"Group\"}"));
}

#[test]
fn bad_lines_are_invalid_with_a_reason() {
    let reason = |line: &str| {
        let e = parse_line(line.as_bytes()).expect_err(line);
        (e.code, e.message)
    };
    let (code, msg) = reason(r#"{"resourceType":"Patient","#);
    assert_eq!(code, "structure");
    assert!(msg.starts_with("not valid JSON: "), "{msg}");
    assert!(msg.contains("column"), "{msg}");
    assert!(!msg.contains("line 1"), "{msg}");
    let (_, msg) = reason("not json at all");
    assert!(msg.starts_with("not valid JSON"), "{msg}");
    let (_, msg) = reason(r#"{"resourceType":"Patient"} trailing"#);
    assert!(msg.contains("trailing"), "{msg}");
    assert_eq!(
        reason(r#"[{"resourceType":"Patient"}]"#),
        ("structure", "not a JSON object (a resource)".to_owned())
    );
    assert_eq!(
        reason(r#"{"id":"x","gender":"male"}"#),
        ("required", "no resourceType".to_owned())
    );
    let (code, msg) = reason(r#"{"resourceType":7}"#);
    assert_eq!(code, "value");
    assert!(msg.contains("not a resource type name"), "{msg}");
    let (_, msg) = reason(r#"{"resourceType":"patient/x"}"#);
    assert!(msg.contains("not a resource type name"), "{msg}");
    let (code, msg) = reason(r#"{"resourceType":"Patient","id":"a b"}"#);
    assert_eq!(code, "value");
    assert!(msg.contains("not a FHIR id"), "{msg}");
    assert!(
        reason(r#"{"resourceType":"Patient","id":12}"#)
            .1
            .contains("not a FHIR id")
    );
    let long = format!(r#"{{"resourceType":"Patient","id":"{}"}}"#, "a".repeat(65));
    assert!(reason(&long).1.contains("not a FHIR id"));
}

#[test]
fn batches_are_batch_bundles_of_puts_within_their_limits() {
    let mut b = BatchBuilder::default();
    assert_eq!(b.take(), (None, Vec::new()));
    let limits = BatchLimits {
        entries: 3,
        bytes: 1 << 20,
    };
    for (i, id) in ["a", "b"].iter().enumerate() {
        let line = format!(r#"{{"resourceType":"Patient","id":"{id}"}}"#);
        b.push(i as u64 + 1, parse_line(line.as_bytes()).expect("valid"));
    }
    assert!(!b.is_full(limits, 0));
    assert!(
        b.is_full(limits, 1),
        "invalid lines count towards the batch"
    );
    let (body, entries) = b.take();
    let bundle: Value = serde_json::from_slice(&body.expect("body")).expect("JSON");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "batch");
    assert_eq!(bundle["entry"][1]["request"]["method"], "PUT");
    assert_eq!(bundle["entry"][1]["request"]["url"], "Patient/b");
    assert_eq!(bundle["entry"][1]["resource"]["id"], "b");
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].id.as_deref(), Some("a"));
    assert_eq!(b.take(), (None, Vec::new()), "empty again");
    // The byte limit.
    let small = BatchLimits {
        entries: 500,
        bytes: 200,
    };
    b.push(
        1,
        parse_line(br#"{"resourceType":"Patient","id":"a"}"#).expect("valid"),
    );
    assert!(!b.is_full(small, 0));
    b.push(
        2,
        parse_line(br#"{"resourceType":"Patient","id":"b"}"#).expect("valid"),
    );
    assert!(b.is_full(small, 0));
}

const NDJSON: &str = concat!(
    "\u{feff}{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n",
    "{\"resourceType\":\"Patient\",\"id\":\"p2\"}\r\n",
    "\n",
    "{broken\n",
    "{\"resourceType\":\"Observation\",\"id\":\"o1\"}\n",
    "{\"id\":\"o2\"}\n",
    "   \n",
    "{\"resourceType\":\"Observation\",\"id\":\"o3\"}",
);

#[test]
fn ndjson_is_read_in_batches_with_its_invalid_lines() {
    let all = units(NDJSON, &FileProgress::default(), LIMITS);
    // p1 p2 | broken o1 | o2(invalid) o3 | (end of file)
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_eq!(
        all.iter().map(|u| u.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "sequence numbers"
    );
    assert_eq!(positions(&all[0]), [1, 2], "the BOM and CR are trimmed");
    assert_eq!(body(&all[0])["entry"][0]["resource"]["id"], "p1");
    assert_eq!(all[0].end, 2);
    assert_eq!(positions(&all[1]), [5]);
    assert_eq!(invalid_lines(&all[1]), [4]);
    assert_eq!(all[1].end, 5);
    assert_eq!(positions(&all[2]), [8]);
    assert_eq!(invalid_lines(&all[2]), [6]);
    assert_eq!(all[2].end, 8);
    assert!(all[3].body.is_none() && all[3].invalid.is_empty());
    assert_eq!(all[3].end, 8, "the last unit ends at the last line");
    assert_eq!(
        all.iter().map(|u| u.bytes).sum::<u64>(),
        NDJSON.len() as u64
    );
    assert!(
        all.iter()
            .all(|u| u.idempotent && !u.transaction && u.file == 7)
    );
    assert_eq!(all.iter().map(|u| u.skipped).sum::<u64>(), 0);
}

#[test]
fn a_checkpoint_skips_done_lines_and_retries_the_rejected_ones() {
    let progress = FileProgress {
        done: 5,
        rejected: BTreeSet::from([4]),
    };
    let all = units(NDJSON, &progress, LIMITS);
    // Lines 1, 2 and 5 are done; 4 was rejected and is read again.
    assert_eq!(all[0].skipped, 3);
    assert_eq!(invalid_lines(&all[0]), [4, 6]);
    let sent: Vec<u64> = all.iter().flat_map(positions).collect();
    assert_eq!(sent, [8]);
    let invalid: Vec<u64> = all.iter().flat_map(invalid_lines).collect();
    assert_eq!(invalid, [4, 6]);
    assert_eq!(all.last().expect("a unit").end, 8);
    let skipped_bytes: u64 = all.iter().map(|u| u.skipped_bytes).sum();
    assert!(skipped_bytes > 0 && skipped_bytes < NDJSON.len() as u64);

    // A file done completely: one unit that sends nothing and keeps `done`.
    let done = FileProgress {
        done: 8,
        rejected: BTreeSet::new(),
    };
    let all = units(NDJSON, &done, LIMITS);
    assert_eq!(all.len(), 1);
    assert!(all[0].body.is_none() && all[0].invalid.is_empty());
    assert_eq!((all[0].end, all[0].skipped), (8, 6));
}

#[test]
fn an_empty_file_still_has_its_unit() {
    let all = units("", &FileProgress::default(), LIMITS);
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].end, all[0].bytes), (0, 0));
    assert!(all[0].body.is_none());
}

#[test]
fn reading_stops_when_told() {
    let mut seen = 0;
    ndjson_units(
        0,
        Cursor::new(NDJSON.as_bytes()),
        &FileProgress::default(),
        LIMITS,
        &mut |_| {
            seen += 1;
            false
        },
    )
    .expect("read");
    assert_eq!(seen, 1);
}

#[test]
fn checkpoint_progress_rules() {
    let p = FileProgress {
        done: 10,
        rejected: BTreeSet::from([3, 12]),
    };
    assert!(p.skips_line(1) && p.skips_line(10));
    assert!(!p.skips_line(3), "rejected lines are sent again");
    assert!(!p.skips_line(11) && !p.skips_line(12));
    assert!(!FileProgress::default().bundle_complete());
    assert!(!p.bundle_complete());
    let complete = FileProgress {
        done: 4,
        rejected: BTreeSet::new(),
    };
    assert!(complete.bundle_complete());
    assert_eq!(FileProgress::default().bundle_entries(3), [0, 1, 2]);
    assert_eq!(p.bundle_entries(11), [3]);
}

#[test]
fn rejected_positions_are_written_as_ranges() {
    let set = BTreeSet::from([1, 2, 3, 7, 9, 10]);
    assert_eq!(format_ranges(&set), "1-3,7,9-10");
    assert_eq!(parse_ranges("1-3,7,9-10").expect("valid"), set);
    assert_eq!(format_ranges(&BTreeSet::new()), "");
    assert!(parse_ranges("").expect("valid").is_empty());
    assert!(parse_ranges("3-1").is_err());
    assert!(parse_ranges("x").is_err());
}

#[test]
fn the_checkpoint_is_saved_atomically_and_read_back() {
    let dir = TempDir::new();
    let path = dir.0.join("cp.json");
    assert_eq!(Checkpoint::load(&path).expect("no file"), None);
    let mut cp = Checkpoint::default();
    cp.files.insert(
        "/data/Patient.ndjson".into(),
        FileProgress {
            done: 1500,
            rejected: BTreeSet::from([4, 5, 6, 900]),
        },
    );
    cp.files.insert(
        "/data/b.json".into(),
        FileProgress {
            done: 12,
            rejected: BTreeSet::new(),
        },
    );
    cp.save(&path).expect("save");
    assert!(!temp_path(&path).exists(), "the temporary file is renamed");
    let text = std::fs::read_to_string(&path).expect("read");
    let json: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        json["files"]["/data/Patient.ndjson"],
        json!({"done": 1500, "rejected": "4-6,900"})
    );
    assert_eq!(json["files"]["/data/b.json"], json!({"done": 12}));
    assert_eq!(Checkpoint::load(&path).expect("load"), Some(cp));

    std::fs::write(&path, "{\"files\": 3}").expect("write");
    let e = Checkpoint::load(&path).expect_err("not a checkpoint");
    assert!(format!("{e:#}").contains("--restart"), "{e:#}");
    assert_eq!(
        temp_path(Path::new("/x/import-checkpoint.json")),
        Path::new("/x/import-checkpoint.json.tmp")
    );
}

fn tx_bundle() -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "Patient"},
             "request": {"method": "POST", "url": "Patient"}},
            {"resource": {"resourceType": "Observation", "id": "o1"},
             "request": {"method": "PUT", "url": "Observation/o1"}},
            {"request": {"method": "DELETE", "url": "Condition/c9"}},
        ]
    })
}

#[test]
fn a_bundle_file_is_posted_as_it_is() {
    let text = serde_json::to_vec_pretty(&tx_bundle()).expect("JSON");
    let unit = bundle_unit(3, text.clone(), &FileProgress::default());
    assert_eq!(unit.body.as_deref(), Some(text.as_slice()));
    assert!(unit.transaction);
    assert!(!unit.idempotent, "a POST without ifNoneExist");
    assert_eq!((unit.end, unit.bytes, unit.file), (3, text.len() as u64, 3));
    let meta: Vec<(u64, &str, Option<&str>)> = unit
        .entries
        .iter()
        .map(|e| (e.pos, e.resource_type.as_str(), e.id.as_deref()))
        .collect();
    assert_eq!(
        meta,
        [
            (0, "Patient", None),
            (1, "Observation", Some("o1")),
            (2, "Condition", Some("c9"))
        ]
    );
    let mut puts = tx_bundle();
    puts["entry"][0]["request"]["ifNoneExist"] = json!("identifier=x|1");
    let unit = bundle_unit(0, puts.to_string().into_bytes(), &FileProgress::default());
    assert!(unit.idempotent);
}

#[test]
fn a_bundle_retry_posts_only_its_rejected_entries() {
    let mut batch = tx_bundle();
    batch["type"] = json!("batch");
    let progress = FileProgress {
        done: 3,
        rejected: BTreeSet::from([1]),
    };
    let unit = bundle_unit(0, batch.to_string().into_bytes(), &progress);
    let sent = body(&unit);
    assert_eq!(sent["type"], "batch");
    assert_eq!(sent["entry"].as_array().expect("entries").len(), 1);
    assert_eq!(sent["entry"][0]["request"]["url"], "Observation/o1");
    assert_eq!(positions(&unit), [1]);
    assert_eq!((unit.end, unit.skipped), (3, 2));
    assert!(unit.idempotent && !unit.transaction);
}

#[test]
fn a_json_file_that_is_no_transaction_or_batch_is_one_reject() {
    let reason = |text: &str| {
        let unit = bundle_unit(0, text.as_bytes().to_vec(), &FileProgress::default());
        assert!(unit.body.is_none() && unit.entries.is_empty());
        assert_eq!(unit.end, 0, "the file is not done");
        assert_eq!(unit.invalid.len(), 1);
        assert_eq!(unit.invalid[0].at, At::File);
        unit.invalid[0].outcome["issue"][0]["diagnostics"]
            .as_str()
            .expect("diagnostics")
            .to_owned()
    };
    let msg = reason(r#"{"resourceType":"Bundle","type":"collection"}"#);
    assert!(msg.contains("\"collection\""), "{msg}");
    assert!(msg.contains("transaction or batch Bundle"), "{msg}");
    let msg = reason(r#"{"resourceType":"Patient","id":"x"}"#);
    assert!(msg.contains("resourceType \"Patient\""), "{msg}");
    let msg = reason("{\n  \"resourceType\": ");
    assert!(
        msg.starts_with("not valid JSON") && msg.contains("line 2"),
        "{msg}"
    );
}

fn unit_of(entries: &[(&str, &str)], transaction: bool) -> Unit {
    Unit {
        entries: entries
            .iter()
            .enumerate()
            .map(|(i, (t, id))| EntryMeta {
                pos: i as u64 + 1,
                resource_type: (*t).to_owned(),
                id: Some((*id).to_owned()),
            })
            .collect(),
        transaction,
        idempotent: true,
        ..Unit::default()
    }
}

#[test]
fn batch_responses_are_read_per_entry() {
    let unit = unit_of(
        &[("Patient", "a"), ("Patient", "b"), ("Observation", "c")],
        false,
    );
    let oo = source::outcome("invalid", "bad birthDate");
    let response = json!({"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"response": {"status": "201 Created"}},
        {"response": {"status": "400 Bad Request", "outcome": oo}},
        {"response": {"status": "200"}},
    ]});
    let Sent::Entries(r) = judge(&unit, 200, response.to_string().as_bytes()) else {
        panic!("entries");
    };
    assert_eq!(
        r,
        [
            None,
            Some(Refusal {
                status: Some(400),
                outcome: oo.clone()
            }),
            None
        ]
    );
    // Fewer response entries than sent: the missing ones are refused.
    let short = json!({"resourceType": "Bundle", "entry": [{"response": {"status": "200 OK"}}]});
    let Sent::Entries(r) = judge(&unit, 200, short.to_string().as_bytes()) else {
        panic!("entries");
    };
    assert!(r[0].is_none() && r[1].is_some() && r[2].is_some());
    assert_eq!(r[1].as_ref().and_then(|r| r.status), None);
}

#[test]
fn a_refused_request_refuses_every_entry_or_the_transaction() {
    let oo = source::outcome("too-costly", "too many");
    let batch = unit_of(&[("Patient", "a"), ("Patient", "b")], false);
    let Sent::Entries(r) = judge(&batch, 413, oo.to_string().as_bytes()) else {
        panic!("entries");
    };
    assert_eq!(
        r,
        vec![
            Some(Refusal {
                status: Some(413),
                outcome: oo.clone()
            });
            2
        ]
    );
    let tx = unit_of(&[("Patient", "a"), ("Patient", "b")], true);
    let Sent::Transaction(r) = judge(&tx, 400, oo.to_string().as_bytes()) else {
        panic!("a transaction");
    };
    assert_eq!((r.status, r.outcome), (Some(400), oo));
    // A body that is no OperationOutcome is kept as its text.
    let Sent::Transaction(r) = judge(&tx, 500, b"boom") else {
        panic!("a transaction");
    };
    let msg = r.outcome["issue"][0]["diagnostics"].as_str().expect("text");
    assert_eq!(msg, "the server answered 500: boom");
}

#[test]
fn connection_errors_before_sending_are_told_apart() {
    assert!(not_sent(
        &anyhow!("connection refused").context("cannot connect to h:1")
    ));
    assert!(not_sent(&anyhow!("connect to h:1 timed out")));
    assert!(!not_sent(&anyhow!("request timed out after 300s")));
    assert!(!not_sent(&anyhow!("broken pipe").context("request failed")));
}

#[test]
fn reject_lines_name_the_file_the_place_and_the_outcome() {
    let oo = source::outcome("invalid", "why");
    let f = |at| Failure {
        at,
        resource_type: Some("Patient".into()),
        id: Some("p1".into()),
        status: Some(400),
        outcome: oo.clone(),
    };
    assert_eq!(
        reject_line("d/a.ndjson", &f(At::Line(4))),
        json!({"file": "d/a.ndjson", "line": 4, "resourceType": "Patient", "id": "p1",
               "status": 400, "outcome": oo})
    );
    assert_eq!(reject_line("b.json", &f(At::Entry(0)))["entry"], 0);
    let tx = Failure {
        at: At::Transaction(5),
        resource_type: None,
        id: None,
        status: Some(400),
        outcome: oo.clone(),
    };
    assert_eq!(
        reject_line("b.json", &tx),
        json!({"file": "b.json", "bundle": "transaction", "entries": 5, "status": 400,
               "outcome": oo})
    );
    let file = Failure {
        at: At::File,
        resource_type: None,
        id: None,
        status: None,
        outcome: oo.clone(),
    };
    assert_eq!(
        reject_line("c.json", &file),
        json!({"file": "c.json", "outcome": oo})
    );
}

fn input(path: &str, kind: Kind) -> InputFile {
    InputFile {
        path: PathBuf::from(path),
        key: format!("/abs/{path}"),
        kind,
        size: 100,
    }
}

#[test]
fn the_collector_counts_writes_rejects_and_moves_the_checkpoint_in_file_order() {
    let dir = TempDir::new();
    let (cp_path, rejects) = (dir.0.join("cp.json"), dir.0.join("rejects.ndjson"));
    let files = Arc::new(vec![
        input("a.ndjson", Kind::Ndjson),
        input("t.json", Kind::Bundle),
    ]);
    let counters = Arc::new(Counters::default());
    let mut c = Collector::new(
        files,
        Checkpoint::default(),
        cp_path.clone(),
        rejects.clone(),
        Arc::clone(&counters),
    );
    let oo = source::outcome("invalid", "no");
    // The second unit of a.ndjson (lines 3-4, the 4th refused) completes first.
    let mut second = unit_of(&[("Patient", "c"), ("Observation", "d")], false);
    for (e, pos) in second.entries.iter_mut().zip([3, 4]) {
        e.pos = pos;
    }
    second.seq = 1;
    second.end = 4;
    second.bytes = 40;
    c.record(
        second,
        Sent::Entries(vec![
            None,
            Some(Refusal {
                status: Some(422),
                outcome: oo.clone(),
            }),
        ]),
    );
    let saved = |path: &Path| Checkpoint::load(path).expect("load").expect("saved");
    let progress = saved(&cp_path).files["/abs/a.ndjson"].clone();
    assert_eq!(progress.done, 0, "unit 0 is not complete yet");
    assert_eq!(progress.rejected, BTreeSet::from([4]));
    // Unit 0: lines 1-2, the 2nd not JSON.
    let mut first = unit_of(&[("Patient", "a")], false);
    first.end = 2;
    first.bytes = 30;
    first.invalid.push(Failure {
        at: At::Line(2),
        resource_type: None,
        id: None,
        status: None,
        outcome: oo.clone(),
    });
    c.record(first, Sent::Entries(vec![None]));
    let progress = saved(&cp_path).files["/abs/a.ndjson"].clone();
    assert_eq!(progress.done, 4);
    assert_eq!(progress.rejected, BTreeSet::from([2, 4]));
    // A transaction that fails: one reject line, every entry failed.
    let tx = unit_of(&[("Patient", "x"), ("Observation", "y")], true);
    let tx = Unit {
        file: 1,
        end: 2,
        entries: tx
            .entries
            .into_iter()
            .map(|e| EntryMeta {
                pos: e.pos - 1,
                ..e
            })
            .collect(),
        ..tx
    };
    c.record(
        tx,
        Sent::Transaction(Refusal {
            status: Some(400),
            outcome: oo.clone(),
        }),
    );
    let progress = saved(&cp_path).files["/abs/t.json"].clone();
    assert_eq!(progress.done, 2);
    assert_eq!(progress.rejected, BTreeSet::from([0, 1]));
    // A fatal error is kept and commits nothing.
    c.record(Unit::default(), Sent::Fatal(anyhow!("gone")));
    c.record(Unit::default(), Sent::Fatal(anyhow!("later")));
    assert_eq!(
        c.error.as_ref().map(|e| e.to_string()).as_deref(),
        Some("gone")
    );

    assert_eq!(
        c.types,
        BTreeMap::from([
            (
                "Observation".to_owned(),
                TypeCounts {
                    imported: 0,
                    failed: 2
                }
            ),
            (
                "Patient".to_owned(),
                TypeCounts {
                    imported: 2,
                    failed: 1
                }
            ),
            (
                UNPARSED.to_owned(),
                TypeCounts {
                    imported: 0,
                    failed: 1
                }
            ),
        ])
    );
    let s = counters.snapshot();
    assert_eq!((s.imported, s.failed, s.bytes), (2, 4, 70));
    let text = std::fs::read_to_string(&rejects).expect("rejects");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(c.reject_lines, 3);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (&lines[0]["file"], &lines[0]["line"]),
        (&json!("a.ndjson"), &json!(4))
    );
    assert_eq!(lines[0]["id"], "d");
    assert_eq!(lines[0]["status"], 422);
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1].get("status").is_none());
    assert_eq!(lines[2]["bundle"], "transaction");
    assert_eq!(lines[2]["file"], "t.json");

    // Retried later and imported: off the rejected list.
    let mut retry = unit_of(&[("Observation", "d")], false);
    retry.entries[0].pos = 4;
    retry.seq = 2;
    retry.end = 4;
    c.record(retry, Sent::Entries(vec![None]));
    let progress = saved(&cp_path).files["/abs/a.ndjson"].clone();
    assert_eq!(progress.rejected, BTreeSet::from([2]));
}

#[test]
fn the_summary_has_the_counts_per_type_time_and_rate() {
    let summary = Summary {
        url: "http://h/fhir".into(),
        files: 2,
        types: BTreeMap::from([
            (
                "Observation".to_owned(),
                TypeCounts {
                    imported: 300,
                    failed: 1,
                },
            ),
            (
                "Patient".to_owned(),
                TypeCounts {
                    imported: 100,
                    failed: 0,
                },
            ),
        ]),
        skipped: 7,
        elapsed: Duration::from_secs(2),
        reject_lines: 1,
        rejects_path: PathBuf::from("import-rejects.ndjson"),
    };
    assert_eq!((summary.imported(), summary.failed()), (400, 1));
    assert_eq!(summary.rate(), 200.0);
    let text = summary.render();
    let row = |label: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} in\n{text}"))[label.len()..]
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row("Observation"), ["300", "1"]);
    assert_eq!(row("Patient"), ["100", "0"]);
    assert_eq!(row("total"), ["400", "1"]);
    assert_eq!(row("skipped (done before)"), ["7"]);
    assert_eq!(row("elapsed"), ["2.00", "s"]);
    assert_eq!(row("resources/s"), ["200.0"]);
    assert_eq!(row("rejects"), ["1", "import-rejects.ndjson"]);
    assert!(
        text.starts_with("Ember import  http://h/fhir  2 file(s)\n"),
        "{text}"
    );
}

#[test]
fn progress_text_and_eta() {
    assert_eq!(format_duration(Duration::from_secs(12)), "12s");
    assert_eq!(format_duration(Duration::from_secs(65)), "1m05s");
    assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
    let s = Snapshot {
        imported: 100,
        failed: 2,
        skipped: 0,
        bytes: 300,
        skipped_bytes: 100,
    };
    // 200 bytes sent in 10 s, 700 left: 35 s.
    assert_eq!(
        eta(&s, 1000, Duration::from_secs(10)),
        Some(Duration::from_secs(35))
    );
    assert_eq!(
        eta(&Snapshot::default(), 1000, Duration::from_secs(1)),
        None
    );
    assert_eq!(
        status_line(&s, 1000, Duration::from_secs(10)),
        "100 imported, 2 failed, 10/s, ETA 35s"
    );
    let s = Snapshot { skipped: 5, ..s };
    assert!(status_line(&s, 1000, Duration::from_secs(10)).ends_with(", 5 skipped (done before)"));
}

/// The paths of each group's files, relative to `dir`.
fn relative(groups: &[Vec<InputFile>], dir: &Path) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|f| {
                    f.path
                        .strip_prefix(dir)
                        .expect("under dir")
                        .display()
                        .to_string()
                })
                .collect()
        })
        .collect()
}

#[test]
fn inputs_are_files_and_folders_in_name_order() {
    let dir = TempDir::new();
    let b = dir.write("data/b.ndjson", "");
    dir.write("data/a.json", "{}");
    dir.write("data/sub/c.jsonl", "");
    dir.write("data/.hidden.ndjson", "");
    dir.write("data/README.md", "");
    let rejects = dir.write("data/import-rejects.ndjson", "");
    let single = dir.write("one.NDJSON", "x\n");
    let groups = expand(
        &[single.clone(), dir.0.join("data"), b.clone()],
        std::slice::from_ref(&rejects),
    )
    .expect("expand");
    let names = relative(&groups, &dir.0);
    assert_eq!(
        names,
        [
            vec!["one.NDJSON".to_owned()],
            vec![
                "data/a.json".to_owned(),
                "data/b.ndjson".to_owned(),
                "data/sub/c.jsonl".to_owned()
            ],
            vec![],
        ],
        "b.ndjson is loaded once"
    );
    let one = &groups[0][0];
    assert_eq!((one.kind, one.size), (Kind::Ndjson, 2));
    assert!(Path::new(&one.key).is_absolute());
    assert_eq!(groups[1][0].kind, Kind::Bundle);

    let missing = expand(&[dir.0.join("nope")], &[]).expect_err("missing");
    assert!(format!("{missing:#}").contains("no such file or folder"));
    let other = dir.write("notes.txt", "");
    let e = expand(&[other], &[]).expect_err("not an input");
    assert!(format!("{e:#}").contains("not an .ndjson"), "{e:#}");
    assert_eq!(kind_of(Path::new("x.json")), Some(Kind::Bundle));
    assert_eq!(kind_of(Path::new("x.jsonl")), Some(Kind::Ndjson));
    assert_eq!(kind_of(Path::new("x.csv")), None);
}

#[test]
fn an_export_folder_leaves_out_its_manifest_and_errors() {
    let dir = TempDir::new();
    dir.write(
        "export/manifest.json",
        r#"{"transactionTime": "2024-05-01T10:00:00Z", "output": [], "error": []}"#,
    );
    dir.write("export/Patient-1.ndjson", "");
    dir.write("export/error/OperationOutcome-1.ndjson", "");
    dir.write("export/.Observation-1.ndjson.part", "");
    // A Bundle of that name elsewhere is data like any other.
    dir.write(
        "bundles/manifest.json",
        r#"{"resourceType": "Bundle", "output": []}"#,
    );
    dir.write("bundles/error/x.ndjson", "");
    let groups = expand(&[dir.0.join("export"), dir.0.join("bundles")], &[]).expect("expand");
    let names = relative(&groups, &dir.0);
    assert_eq!(
        names,
        [
            vec!["export/Patient-1.ndjson".to_owned()],
            vec![
                "bundles/error/x.ndjson".to_owned(),
                "bundles/manifest.json".to_owned()
            ],
        ]
    );
}
