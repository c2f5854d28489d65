//! Search over the official FHIR R4 examples (`hl7.fhir.r4.examples` 4.0.1) on both
//! stores: the corpus is loaded once per store (every non-definitional example PUT at
//! its own id, as in `examples`), then every query of `tests/data/corpus-searches.txt`
//! runs and its matches (and `_include`/`_revinclude` results) must be exactly the ids
//! the examples imply. All mismatches are collected and reported together.
//!
//! The data file is tab-separated: `QUERY  MATCHES  [INCLUDES]  [ordered]`, ids as
//! `Type/id`, comma-separated, `-` for none. Values are written unescaped; the test
//! percent-encodes them. `ordered` compares the matches in order (`_sort`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::common::corpus::{Example, diagnostics, known_invalid, load_package, valid_id};
use crate::common::{Backend, Http, TestServer};

const QUERIES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/corpus-searches.txt"
);

/// Requests in flight at once while loading.
const CONCURRENCY: usize = 8;

/// Page size asked for; `next` links are followed anyway.
const COUNT: usize = 1000;

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corpus_searches() {
        let server = crate::common::TestServer::start_with(
            crate::common::Backend::Sqlite,
            crate::common::corpus::settings(),
        )
        .await;
        super::corpus_searches(&server).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corpus_searches() {
        let server = crate::common::TestServer::start_with(
            crate::common::Backend::Postgres,
            crate::common::corpus::settings(),
        )
        .await;
        super::corpus_searches(&server).await;
    }
}

// ---------------------------------------------------------------------------------
// Loading the corpus

/// PUTs every example with a valid id that the validator accepts, examples sharing a
/// `Type/id` in package order. Returns how many were written and the failures.
async fn load_corpus(http: &Http) -> (usize, Vec<String>) {
    let examples = tokio::task::spawn_blocking(load_package)
        .await
        .expect("load the package")
        .examples;
    assert!(!examples.is_empty(), "no examples in the package");
    let invalid = known_invalid();
    let examples: Vec<Example> = examples
        .into_iter()
        .filter(|ex| ex.id.as_deref().is_some_and(valid_id) && !invalid.contains(&ex.member))
        .collect();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_key: HashMap<(String, String), usize> = HashMap::new();
    for (i, ex) in examples.iter().enumerate() {
        let key = (ex.res_type.clone(), ex.id.clone().unwrap_or_default());
        let g = *by_key.entry(key).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    let examples = Arc::new(examples);
    let groups = Arc::new(groups);
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (examples, groups, next) = (examples.clone(), groups.clone(), next.clone());
            let http = http.clone();
            tokio::spawn(async move {
                let (mut written, mut failures) = (0usize, Vec::new());
                while let Some(group) = groups.get(next.fetch_add(1, Ordering::Relaxed)) {
                    for &i in group {
                        let ex = &examples[i];
                        let url = format!("{}/{}", ex.res_type, ex.id.as_deref().unwrap_or(""));
                        match http.try_send("PUT", &url, &[], Some(&ex.text)).await {
                            Ok(r) if r.status.is_success() => written += 1,
                            Ok(r) => failures.push(format!(
                                "load {}: PUT {url} → {}: {}",
                                ex.member,
                                r.status,
                                diagnostics(&r.body)
                            )),
                            Err(e) => failures.push(format!("load {}: {e}", ex.member)),
                        }
                    }
                }
                (written, failures)
            })
        })
        .collect();
    let (mut written, mut failures) = (0, Vec::new());
    for w in workers {
        let (n, f) = w.await.expect("load worker");
        written += n;
        failures.extend(f);
    }
    failures.sort();
    (written, failures)
}

// ---------------------------------------------------------------------------------
// The queries

#[derive(Debug)]
struct Case {
    line: usize,
    query: String,
    matches: Vec<String>,
    includes: BTreeSet<String>,
    ordered: bool,
}

fn id_list(s: &str) -> Vec<String> {
    if s.trim() == "-" {
        return Vec::new();
    }
    s.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert!(
            cols.len() >= 2,
            "{QUERIES}:{}: expected QUERY<TAB>MATCHES, got {line:?}",
            n + 1
        );
        let mut case = Case {
            line: n + 1,
            query: cols[0].trim().to_owned(),
            matches: id_list(cols[1]),
            includes: BTreeSet::new(),
            ordered: false,
        };
        for col in &cols[2..] {
            match col.trim() {
                "ordered" => case.ordered = true,
                other => case.includes.extend(id_list(other)),
            }
        }
        for id in case.matches.iter().chain(&case.includes) {
            assert!(
                id.split_once('/')
                    .is_some_and(|(t, i)| !t.is_empty() && !i.is_empty()),
                "{QUERIES}:{}: {id:?} is not Type/id",
                n + 1
            );
        }
        cases.push(case);
    }
    cases
}

/// Percent-encodes all but unreserved characters and those that structure a FHIR
/// search value (`,` separates OR values and is sent as is).
fn encode_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The request path for a query line: names kept as written (`subject:Patient.name`,
/// `_has:Observation:patient:code`), values percent-encoded, `_count` added.
fn request_path(query: &str) -> String {
    let (path, qs) = query.split_once('?').unwrap_or((query, ""));
    let mut params: Vec<String> = qs
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((name, value)) => format!("{name}={}", encode_value(value)),
            None => p.to_owned(),
        })
        .collect();
    if !params.iter().any(|p| p.starts_with("_count=")) {
        params.push(format!("_count={COUNT}"));
    }
    format!("{path}?{}", params.join("&"))
}

/// The matched and included `Type/id`s of a search, following `next` links.
async fn run_search(http: &Http, query: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let mut url = request_path(query);
    let (mut matches, mut includes) = (Vec::new(), Vec::new());
    for page in 0.. {
        if page == 50 {
            return Err("more than 50 pages: the next links do not end".into());
        }
        let r = http.try_send("GET", &url, &[], None).await?;
        if r.status != 200 {
            return Err(format!(
                "GET {url} → {}: {}",
                r.status,
                diagnostics(&r.body)
            ));
        }
        let bundle: Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("GET {url}: the body is not JSON: {e}"))?;
        if bundle["resourceType"] != "Bundle" || bundle["type"] != "searchset" {
            return Err(format!("GET {url}: not a searchset Bundle"));
        }
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let res = &entry["resource"];
            let id = format!(
                "{}/{}",
                res["resourceType"].as_str().unwrap_or("?"),
                res["id"].as_str().unwrap_or("?")
            );
            match entry["search"]["mode"].as_str() {
                Some("match") => matches.push(id),
                Some("include") => includes.push(id),
                Some("outcome") => {}
                other => return Err(format!("GET {url}: entry {id} has search.mode {other:?}")),
            }
        }
        let next = bundle["link"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|l| {
                (l["relation"] == "next")
                    .then(|| l["url"].as_str().map(str::to_owned))
                    .flatten()
            });
        match next {
            Some(next) => url = next,
            None => break,
        }
    }
    Ok((matches, includes))
}

fn show(ids: impl IntoIterator<Item = impl AsRef<str>>) -> String {
    let v: Vec<String> = ids.into_iter().map(|s| s.as_ref().to_owned()).collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

/// Compares one result with its case; `None` when it passes.
fn compare(case: &Case, matches: &[String], includes: &[String]) -> Option<String> {
    let mut problems = Vec::new();
    let expected: BTreeSet<&String> = case.matches.iter().collect();
    let got: BTreeSet<&String> = matches.iter().collect();
    if got.len() != matches.len() {
        problems.push(format!("duplicate matches in {}", show(matches)));
    }
    if expected != got {
        problems.push(format!(
            "matches: missing {} unexpected {}",
            show(expected.difference(&got)),
            show(got.difference(&expected))
        ));
    } else if case.ordered && matches != case.matches.as_slice() {
        problems.push(format!(
            "order: expected {} got {}",
            show(&case.matches),
            show(matches)
        ));
    }
    let got_inc: BTreeSet<&String> = includes.iter().collect();
    let expected_inc: BTreeSet<&String> = case.includes.iter().collect();
    if got_inc != expected_inc {
        problems.push(format!(
            "includes: missing {} unexpected {}",
            show(expected_inc.difference(&got_inc)),
            show(got_inc.difference(&expected_inc))
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

async fn corpus_searches(s: &TestServer) {
    let store = match s.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let cases = parse_cases(&std::fs::read_to_string(QUERIES).expect("the query file"));
    assert!(
        cases.len() >= 50,
        "only {} queries in {QUERIES}",
        cases.len()
    );

    let started = Instant::now();
    let (written, mut failures) = load_corpus(&s.http).await;
    let loaded_in = started.elapsed();

    let mut passed = 0;
    let mut judged = Judged::default();
    for case in &cases {
        match run_search(&s.http, &case.query).await {
            Ok((matches, includes)) => match compare(case, &matches, &includes) {
                None if judge_all(s, case, &matches, &mut judged, &mut failures).await => {
                    passed += 1
                }
                None => {}
                Some(problem) => failures.push(format!(
                    "line {}: {}\n    expected {}{}\n    got      {}{}\n    {problem}",
                    case.line,
                    case.query,
                    show(&case.matches),
                    if case.includes.is_empty() {
                        String::new()
                    } else {
                        format!(" + include {}", show(&case.includes))
                    },
                    show(&matches),
                    if includes.is_empty() {
                        String::new()
                    } else {
                        format!(" + include {}", show(&includes))
                    },
                )),
            },
            Err(e) => failures.push(format!("line {}: {}\n    {e}", case.line, case.query)),
        }
    }
    println!(
        "R4 corpus searches on {store}: {written} examples loaded in {loaded_in:.1?}; \
         {passed} of {} queries passed in {:.1?}; in memory {} resources judged against \
         {} queries, {} left to the database",
        cases.len(),
        started.elapsed() - loaded_in,
        judged.resources,
        judged.queries,
        judged.undecided,
    );
    // Most queries look only at the resource's own values: the in-memory judge must
    // answer them, not leave them all to the database.
    assert!(
        judged.queries * 10 >= cases.len() * 7,
        "only {} of {} queries were judged in memory",
        judged.queries,
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "R4 corpus searches on {store}: {passed} of {} queries passed; {} problems:\n{}",
        cases.len(),
        failures.len(),
        failures.join("\n")
    );
}

/// How the in-memory judge ([`ember_repo::Repo::judge`], which Subscription matching
/// uses) did against the searches.
#[derive(Default)]
struct Judged {
    /// Queries it judged at least one resource of.
    queries: usize,
    resources: usize,
    /// Judgements it left to the database.
    undecided: usize,
}

/// Judges every stored resource of the case's type against its query in memory and
/// compares with the search's `matches`: a resource judged a match must be among them,
/// and one judged no match must not. System-level queries are skipped. Whether it
/// found no problem.
async fn judge_all(
    s: &TestServer,
    case: &Case,
    matches: &[String],
    judged: &mut Judged,
    failures: &mut Vec<String>,
) -> bool {
    let (res_type, qs) = case.query.split_once('?').unwrap_or((&case.query, ""));
    if res_type.is_empty() || res_type.contains('/') {
        return true;
    }
    let pairs: Vec<(String, String)> = qs
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    let matcher = match s.repo.matcher(res_type, &pairs).await {
        Ok(m) => m,
        Err(e) => {
            failures.push(format!(
                "line {}: {}\n    no matcher: {e}",
                case.line, case.query
            ));
            return false;
        }
    };
    let all = [("_count".to_owned(), "500".to_owned())];
    let mut pages = s.repo.pages(res_type, &all).await.expect("read the type");
    let mut wrong = Vec::new();
    let mut any = false;
    while let Some(page) = pages.next().await.expect("read a page") {
        for resource in page {
            let id = format!("{res_type}/{}", resource["id"].as_str().unwrap_or("?"));
            let candidate = s.repo.candidate(&resource).expect("a type and an id");
            match s.repo.judge(&matcher, &candidate) {
                Some(m) => {
                    any = true;
                    judged.resources += 1;
                    if m != matches.contains(&id) {
                        wrong.push(format!("{id} judged {m}"));
                    }
                }
                None => judged.undecided += 1,
            }
        }
    }
    judged.queries += usize::from(any);
    if wrong.is_empty() {
        return true;
    }
    failures.push(format!(
        "line {}: {}\n    the in-memory judge disagrees with the search: {}",
        case.line,
        case.query,
        wrong.join(", ")
    ));
    false
}
