//! Round-trip of the official FHIR R4 examples (`hl7.fhir.r4.examples` 4.0.1) on both
//! stores: every non-definitional example is stored with PUT at its own id and must
//! read back unchanged, apart from the server-managed `meta.versionId` and
//! `meta.lastUpdated`, down to the exact text of every number (FHIR decimals keep
//! their precision: `0.40` is not `0.4`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::common::corpus::{
    Example, diagnostics, known_invalid, load_package, package_path, valid_id,
};
use crate::common::{Backend, Http, TestServer};

/// Requests in flight at once.
const CONCURRENCY: usize = 8;

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_examples() {
        let server = crate::common::TestServer::start_with(
            crate::common::Backend::Sqlite,
            crate::common::corpus::settings(),
        )
        .await;
        super::round_trip_examples(&server).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn round_trip_examples() {
        let server = crate::common::TestServer::start_with(
            crate::common::Backend::Postgres,
            crate::common::corpus::settings(),
        )
        .await;
        super::round_trip_examples(&server).await;
    }
}

/// Percent-encodes everything but unreserved characters, for ids that are not valid.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Removes the server-managed `meta` elements, and `meta` itself when that empties it.
fn normalize(mut v: Value) -> Value {
    if let Some(obj) = v.as_object_mut() {
        let empty = match obj.get_mut("meta").and_then(Value::as_object_mut) {
            Some(meta) => {
                meta.shift_remove("versionId");
                meta.shift_remove("lastUpdated");
                meta.is_empty()
            }
            None => false,
        };
        if empty {
            obj.shift_remove("meta");
        }
    }
    v
}

/// The literal text of every JSON number outside strings, sorted, with the exponent
/// letter lower-cased (`1E-22` and `1e-22` are the same JSON number with the same
/// precision). `serde_json::Value` compares numbers as binary floats, which would hide
/// lost decimal precision.
fn number_literals(json: &str) -> Vec<String> {
    let bytes = json.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push(json[start..i].to_ascii_lowercase());
            }
            _ => i += 1,
        }
    }
    out.sort();
    out
}

/// Literals of `a` missing from `b` (both sorted), at most `max`.
fn missing(a: &[String], b: &[String], max: usize) -> Vec<String> {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for s in b {
        *counts.entry(s).or_default() += 1;
    }
    let mut out = Vec::new();
    for s in a {
        let c = counts.entry(s).or_default();
        if *c > 0 {
            *c -= 1;
        } else if out.len() < max {
            out.push(s.clone());
        }
    }
    out
}

/// The first place where two JSON values differ, as a path and both sides.
fn first_difference(path: &str, a: &Value, b: &Value) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(&format!("{path}.{k}"), v, w),
                    None => return format!("{path}.{k} missing from the read"),
                }
            }
            match y.keys().find(|k| !x.contains_key(*k)) {
                Some(k) => format!("{path}.{k} added by the server"),
                None => format!("{path}: differs"),
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find(|(_, (v, w))| v != w)
            .map(|(i, (v, w))| first_difference(&format!("{path}[{i}]"), v, w))
            .unwrap_or_else(|| format!("{path}: differs")),
        _ => {
            let show = |v: &Value| {
                let s = v.to_string();
                if s.chars().count() > 120 {
                    format!("{}…", s.chars().take(120).collect::<String>())
                } else {
                    s
                }
            };
            format!("{path}: sent {} read {}", show(a), show(b))
        }
    }
}

#[derive(Default)]
struct Tally {
    written: usize,
    equal: usize,
    invalid_ids: usize,
    /// Examples that genuinely break R4's structural rules, rejected with 422.
    rejected_invalid: usize,
    failures: Vec<(String, String)>,
}

/// Writes every example of one `Type/id` in package order, then reads back the version
/// the last write made (by its ETag, as the server may add versions of its own: a
/// `requested` Subscription is made `active`) and compares it with what was written.
async fn round_trip_group(http: &Http, examples: &[&Example], tally: &mut Tally) {
    let mut last_written: Option<(&Example, String)> = None;
    for ex in examples {
        let url = format!("{}/{}", ex.res_type, encode_segment(ex.url_id()));
        let r = http.send("PUT", &url, &[], Some(&ex.text)).await;
        if !ex.id.as_deref().is_some_and(valid_id) {
            tally.invalid_ids += 1;
            if r.status != 400 {
                tally.failures.push((
                    ex.member.clone(),
                    format!(
                        "invalid or missing id {:?}: PUT {url} answered {} instead of 400",
                        ex.id, r.status
                    ),
                ));
            }
            continue;
        }
        if known_invalid().contains(&ex.member) {
            tally.rejected_invalid += 1;
            if r.status != 422 {
                tally.failures.push((
                    ex.member.clone(),
                    format!(
                        "known-invalid example: PUT {url} answered {} instead of 422",
                        r.status
                    ),
                ));
            }
            continue;
        }
        if !r.status.is_success() {
            tally.failures.push((
                ex.member.clone(),
                format!("PUT {url} → {}: {}", r.status, diagnostics(&r.body)),
            ));
            continue;
        }
        let expected = if last_written.is_none() { 201 } else { 200 };
        if r.status != expected {
            tally.failures.push((
                ex.member.clone(),
                format!("PUT {url} → {} instead of {expected}", r.status),
            ));
            continue;
        }
        let Some(version) = r
            .header("etag")
            .and_then(|e| e.strip_prefix("W/\""))
            .and_then(|e| e.strip_suffix('"'))
        else {
            tally.failures.push((
                ex.member.clone(),
                format!("PUT {url} answered without a weak ETag"),
            ));
            continue;
        };
        tally.written += 1;
        last_written = Some((ex, version.to_owned()));
    }
    let Some((ex, version)) = last_written else {
        return;
    };
    let url = format!(
        "{}/{}/_history/{version}",
        ex.res_type,
        encode_segment(ex.url_id())
    );
    let r = http.get(&url).await;
    if r.status != 200 {
        tally.failures.push((
            ex.member.clone(),
            format!("GET {url} → {}: {}", r.status, diagnostics(&r.body)),
        ));
        return;
    }
    let read_text = String::from_utf8_lossy(&r.body);
    let read = match serde_json::from_str::<Value>(&read_text) {
        Ok(v) => normalize(v),
        Err(e) => {
            tally
                .failures
                .push((ex.member.clone(), format!("GET {url}: not JSON: {e}")));
            return;
        }
    };
    let sent = normalize(serde_json::from_str(&ex.text).expect("example JSON"));
    if sent != read {
        tally.failures.push((
            ex.member.clone(),
            format!("read back differs: {}", first_difference("", &sent, &read)),
        ));
        return;
    }
    let sent_numbers = number_literals(&ex.text);
    let read_numbers = number_literals(&read_text);
    if sent_numbers != read_numbers {
        tally.failures.push((
            ex.member.clone(),
            format!(
                "numbers changed (decimal precision lost): sent {:?} read back as {:?}",
                missing(&sent_numbers, &read_numbers, 4),
                missing(&read_numbers, &sent_numbers, 4)
            ),
        ));
        return;
    }
    tally.equal += 1;
}

async fn round_trip_examples(s: &TestServer) {
    let started = Instant::now();
    let package = tokio::task::spawn_blocking(load_package)
        .await
        .expect("load the package");
    let loaded_in = started.elapsed();

    // Examples sharing a `Type/id` are written in package order by one worker.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for (i, ex) in package.examples.iter().enumerate() {
        let key = (ex.res_type.clone(), ex.url_id().to_owned());
        let g = *by_key.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let shared_ids = groups.iter().filter(|g| g.len() > 1).count();

    let package = Arc::new(package);
    let groups = Arc::new(groups);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (package, groups, next) = (package.clone(), groups.clone(), next.clone());
            let http = s.http.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let g = next.fetch_add(1, Ordering::Relaxed);
                    let Some(group) = groups.get(g) else {
                        return tally;
                    };
                    let examples: Vec<&Example> =
                        group.iter().map(|&i| &package.examples[i]).collect();
                    round_trip_group(&http, &examples, &mut tally).await;
                }
            })
        })
        .collect();
    let mut total = Tally::default();
    for w in workers {
        let t = w.await.expect("round-trip worker");
        total.written += t.written;
        total.equal += t.equal;
        total.invalid_ids += t.invalid_ids;
        total.rejected_invalid += t.rejected_invalid;
        total.failures.extend(t.failures);
    }
    total.failures.sort();

    let store = match s.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    println!(
        "R4 examples on {store}: {} resources in the package, {} definitional skipped, \
         {} examples ({} Type/id shared by several files), {} written (2xx), \
         {} read back equal, {} invalid or missing ids (400), \
         {} structurally invalid examples rejected (422), {} failures; \
         loaded in {:.1?}, round trip in {:.1?}",
        package.resources,
        package.definitional,
        package.examples.len(),
        shared_ids,
        total.written,
        total.equal,
        total.invalid_ids,
        total.rejected_invalid,
        total.failures.len(),
        loaded_in,
        started.elapsed() - loaded_in,
    );
    assert!(
        !package.examples.is_empty(),
        "no examples found in {}",
        package_path()
    );
    let report: Vec<String> = total
        .failures
        .iter()
        .take(20)
        .map(|(member, reason)| format!("{member}: {reason}"))
        .collect();
    assert!(
        total.failures.is_empty(),
        "{} of {} examples did not round-trip on {store}; the first {}:\n{}",
        total.failures.len(),
        package.examples.len(),
        report.len(),
        report.join("\n")
    );
    assert_eq!(
        total.written + total.invalid_ids + total.rejected_invalid,
        package.examples.len(),
        "every valid example with a valid id must be written"
    );
}
