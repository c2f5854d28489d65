//! Searches pinned to one patient read about as many rows as their page needs, plus the
//! matches of their most selective filter, however long the patient's history.
//!
//! Checked on the database's own account of each search, never on time: PostgreSQL's
//! `EXPLAIN ANALYZE` of the generic plan every pooled connection uses, on a freshly
//! loaded database that was never analyzed (autovacuum is off for the test's tables),
//! and SQLite's query plan. The answers are checked too.

use ember_repo::{Handling, SearchScope};
use serde_json::{Value, json};

use crate::common::{Backend, TestServer, expect};

/// The deep patient's Observations, cycling through [`CODES`] one hour apart.
const DEEP: usize = 5_000;
/// Other patients with the same codes, so that each code has rows of others too.
const OTHERS: usize = 6;
const OTHER_READINGS: usize = 250;
const CODES: [&str; 4] = ["59408-5", "85354-9", "8867-4", "29463-7"];
const LOINC: &str = "http://loinc.org";
const PAGE: usize = 50;
/// 2020-01-01T00:00:00Z: the first reading of every patient.
const START: i64 = 1_577_836_800;

fn effective(k: usize) -> String {
    ember_fhir::instant::format_instant((START + k as i64 * 3600) * 1_000_000)
}

fn observation(patient: &str, k: usize) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": CODES[k % CODES.len()]}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": effective(k),
        "valueQuantity": {"value": k % 100, "unit": "1", "system": "http://unitsofmeasure.org", "code": "1"},
    })
}

/// Loads the deep patient and the others through transaction Bundles.
async fn load(server: &TestServer) {
    if server.backend == Backend::Postgres {
        // A database right after a bulk load: no statistics, whatever autovacuum would do.
        let client = server.db.pg_client().await;
        client
            .batch_execute(
                "DO $$ DECLARE t text; BEGIN
                   FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
                     EXECUTE format('ALTER TABLE %I SET (autovacuum_enabled = false)', t);
                   END LOOP; END $$",
            )
            .await
            .unwrap();
    }
    let mut all: Vec<Value> = (0..DEEP).map(|k| observation("deep", k)).collect();
    for n in 0..OTHERS {
        all.extend((0..OTHER_READINGS).map(|k| observation(&format!("other-{n}"), k)));
    }
    for chunk in all.chunks(1000) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|r| json!({"resource": r, "request": {"method": "POST", "url": "Observation"}}))
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let resp = server
            .send(
                "POST",
                "",
                &[("prefer", "return=minimal")],
                Some(&bundle.to_string()),
            )
            .await;
        expect(&resp, 200);
    }
}

/// The searches of the deep patient, each with the most rows it may read beyond a small
/// multiple of its page: the matches of its most selective filter.
struct Case {
    query: String,
    matches: usize,
}

fn cases() -> Vec<Case> {
    let per_code = DEEP / CODES.len();
    // A week in the middle of the history.
    let (from, to) = (effective(DEEP / 2), effective(DEEP / 2 + 7 * 24));
    vec![
        Case {
            query: format!(
                "subject=Patient/deep&code={LOINC}|{}&_sort=-date&_count={PAGE}",
                CODES[0]
            ),
            matches: per_code,
        },
        Case {
            query: format!("subject=Patient/deep&category=vital-signs&_sort=-date&_count={PAGE}"),
            matches: DEEP,
        },
        Case {
            query: format!(
                "subject=Patient/deep&code={LOINC}|{}&date=ge{from}&date=lt{to}&_count={PAGE}",
                CODES[1]
            ),
            matches: per_code,
        },
        Case {
            query: format!(
                "subject=Patient/deep&code={LOINC}|{}&_sort=-_lastUpdated&_count={PAGE}",
                CODES[2]
            ),
            matches: per_code,
        },
    ]
}

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect()
}

async fn explain(server: &TestServer, query: &str) -> String {
    server
        .repo
        .explain_search(
            SearchScope::Type("Observation"),
            &pairs(query),
            Handling::Strict,
            &server.base,
        )
        .await
        .unwrap()
}

/// Every row a plan node produced or threw away, over all its loops, in the whole tree
/// (subplans included).
fn rows_read(node: &Value) -> f64 {
    let loops = node["Actual Loops"].as_f64().unwrap_or(1.0);
    let own: f64 = [
        "Actual Rows",
        "Rows Removed by Filter",
        "Rows Removed by Join Filter",
        "Rows Removed by Index Recheck",
    ]
    .iter()
    .filter_map(|k| node[*k].as_f64())
    .sum();
    let children: f64 = node["Plans"]
        .as_array()
        .map_or(0.0, |plans| plans.iter().map(rows_read).sum());
    own * loops + children
}

/// The effective times of a searchset's entries, in order, and their codes.
fn readings(bundle: &Value) -> Vec<(String, String)> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    let r = &e["resource"];
                    (
                        r["effectiveDateTime"].as_str().unwrap().to_owned(),
                        r["code"]["coding"][0]["code"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The answers: the latest readings of a code or of all codes, the week's readings.
async fn check_answers(server: &TestServer) {
    let latest = |code: usize| -> Vec<(String, String)> {
        (0..DEEP)
            .rev()
            .filter(|k| k % CODES.len() == code)
            .take(PAGE)
            .map(|k| (effective(k), CODES[code].to_owned()))
            .collect()
    };
    let c = cases();
    let got = server.get(&format!("Observation?{}", c[0].query)).await;
    expect(&got, 200);
    assert_eq!(readings(&got.json()), latest(0));

    let got = server.get(&format!("Observation?{}", c[1].query)).await;
    let all: Vec<(String, String)> = (0..DEEP)
        .rev()
        .take(PAGE)
        .map(|k| (effective(k), CODES[k % CODES.len()].to_owned()))
        .collect();
    assert_eq!(readings(&got.json()), all);

    let got = server.get(&format!("Observation?{}", c[2].query)).await;
    let mut week: Vec<(String, String)> = (DEEP / 2..DEEP / 2 + 7 * 24)
        .filter(|k| k % CODES.len() == 1)
        .map(|k| (effective(k), CODES[1].to_owned()))
        .collect();
    let mut seen = readings(&got.json());
    week.sort();
    seen.sort();
    assert_eq!(seen, week);

    let got = server.get(&format!("Observation?{}", c[3].query)).await;
    let body = got.json();
    let updated: Vec<&str> = body["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"]["meta"]["lastUpdated"].as_str().unwrap())
        .collect();
    assert_eq!(updated.len(), PAGE);
    assert!(updated.windows(2).all(|w| w[0] >= w[1]), "{updated:?}");
    assert!(readings(&body).iter().all(|(_, code)| code == CODES[2]));

    // The next page continues where the first ended, in the same order.
    let next = body["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .and_then(|l| l["url"].as_str())
        .expect("a next page")
        .to_owned();
    let page2 = server.get(&next).await.json();
    let first_of_2 = page2["entry"][0]["resource"]["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(first_of_2.as_str() <= updated[PAGE - 1]);
    let count = server
        .get(&format!(
            "Observation?subject=Patient/deep&code={LOINC}|{}&_summary=count",
            CODES[2]
        ))
        .await
        .json();
    assert_eq!(count["total"], DEEP / CODES.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_the_page_not_the_history() {
    let server = TestServer::start(Backend::Postgres).await;
    load(&server).await;
    assert_eq!(
        server
            .db
            .sql_i64("SELECT count(*) FROM pg_stats WHERE schemaname = current_schema()")
            .await,
        0,
        "the tables must not have been analyzed"
    );
    for case in cases() {
        let plan: Value = serde_json::from_str(&explain(&server, &case.query).await).unwrap();
        let read = rows_read(&plan[0]["Plan"]);
        let bound = 12 * (PAGE + 1) + 4 * case.matches;
        assert!(
            read <= bound as f64,
            "{}: read {read} rows, more than {bound}: {plan:#}",
            case.query
        );
    }
    check_answers(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_the_timeline_in_order() {
    let server = TestServer::start(Backend::Sqlite).await;
    load(&server).await;
    for (i, case) in cases().iter().enumerate() {
        let plan = explain(&server, &case.query).await;
        let index = if case.query.contains("_lastUpdated") {
            "idx_timeline_updated"
        } else {
            "idx_timeline_at"
        };
        assert!(plan.contains(index), "{}:\n{plan}", case.query);
        // Sorted searches read the index in their order and stop after the page: the
        // page's own query sorts nothing (only the few rows of the page are ordered
        // again outside it).
        if i != 2 {
            let indent = |l: &str| l.len() - l.trim_start().len();
            let mut lines = plan.lines().skip_while(|l| l.trim() != "CO-ROUTINE s");
            let top = lines.next().map_or(0, indent);
            let page: Vec<&str> = lines.take_while(|l| indent(l) > top).collect();
            assert!(!page.is_empty(), "{}:\n{plan}", case.query);
            assert!(
                page.iter().all(|l| !l.contains("TEMP B-TREE")),
                "{}:\n{plan}",
                case.query
            );
        }
    }
    check_answers(&server).await;
}
