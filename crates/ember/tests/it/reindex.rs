//! Run-time SearchParameters and `$reindex`: on both stores in-process, and on
//! PostgreSQL with real `ember serve` processes sharing (and resuming) reindex jobs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Backend, Http, Process, TestDb, TestServer};

const EYE: &str = "http://example.org/eye-colour";
const STRICT: [(&str, &str); 1] = [("prefer", "handling=strict")];

fn eye_colour_parameter() -> Value {
    json!({
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/eye-colour",
        "name": "EyeColour",
        "status": "active",
        "description": "The eye colour of a patient",
        "code": "eye-colour",
        "base": ["Patient"],
        "type": "token",
        "expression": "Patient.extension.where(url='http://example.org/eye-colour').value",
    })
}

fn patient(colour: &str, marker: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "identifier": [{"system": "urn:ember-test:marker", "value": marker}],
        "extension": [{"url": EYE, "valueCode": colour}],
    })
}

/// The ids a strict search finds (all pages: `_count` is large enough here).
async fn ids(http: &Http, query: &str) -> Vec<String> {
    let r = http
        .send("GET", &format!("{query}&_count=1000"), &STRICT, None)
        .await;
    assert_eq!(
        r.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let mut ids: Vec<String> = r.json()["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

async fn total(http: &Http, query: &str) -> u64 {
    let r = http
        .send("GET", &format!("{query}&_summary=count"), &STRICT, None)
        .await;
    assert_eq!(
        r.status,
        200,
        "{query}: {}",
        String::from_utf8_lossy(&r.body)
    );
    r.json()["total"].as_u64().expect("total")
}

fn param<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

fn job_status(status: &Value) -> String {
    param(status, "status")["valueCode"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn count_of(status: &Value, name: &str) -> i64 {
    param(status, name)["valueInteger"].as_i64().expect(name)
}

/// Queues a reindex at `path` (`$reindex` or `Type/$reindex`): 202 with the status URL.
async fn start_reindex(http: &Http, path: &str) -> String {
    let r = http.send("POST", path, &[], None).await;
    assert_eq!(
        r.status,
        202,
        "{path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    let status = r.json();
    assert_eq!(status["resourceType"], "Parameters", "{status}");
    let location = r
        .header("content-location")
        .expect("Content-Location")
        .to_owned();
    // Relative to the base, so any instance can be asked.
    let (_, path) = location
        .split_once("/fhir/")
        .unwrap_or_else(|| panic!("{location}"));
    assert!(path.starts_with("$reindex/"), "{location}");
    path.to_owned()
}

/// Polls the status URL until the job is done; returns the final status.
async fn wait_done(http: &Http, location: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let r = http.get(location).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let status = r.json();
        if job_status(&status) == "done" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the reindex job is not done after {timeout:?}: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn create(http: &Http, resource: &Value) -> String {
    let ty = resource["resourceType"].as_str().unwrap();
    let r = http.post(ty, resource).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    r.json()["id"].as_str().unwrap().to_owned()
}

async fn runtime_parameter_and_reindex(s: &TestServer) {
    // Unknown before it is defined.
    let r = s
        .send("GET", "Patient?eye-colour=blue", &STRICT, None)
        .await;
    assert_eq!(r.status, 400);
    r.outcome();

    let before = create(s, &patient("blue", "before")).await;
    let brown = create(s, &patient("brown", "before")).await;
    let sp = create(s, &eye_colour_parameter()).await;
    let after = create(s, &patient("blue", "after")).await;

    // Written after the definition: indexed with the write.
    assert_eq!(
        ids(s, "Patient?eye-colour=blue").await,
        std::slice::from_ref(&after)
    );
    assert_eq!(total(s, "Patient?eye-colour:missing=true").await, 2);

    // Type-level $reindex indexes the older ones.
    let location = start_reindex(s, "Patient/$reindex").await;
    let status = wait_done(s, &location, Duration::from_secs(60)).await;
    assert_eq!(count_of(&status, "total"), 3, "{status}");
    assert_eq!(count_of(&status, "processed"), 3, "{status}");
    assert_eq!(param(&status, "scope")["valueString"], "Patient");
    assert!(param(&status, "finished")["valueInstant"].is_string());
    let mut blue = vec![before.clone(), after.clone()];
    blue.sort();
    assert_eq!(ids(s, "Patient?eye-colour=blue").await, blue);
    assert_eq!(
        ids(s, "Patient?eye-colour=brown").await,
        std::slice::from_ref(&brown)
    );
    assert_eq!(total(s, "Patient?eye-colour:missing=true").await, 0);
    // Reindexing wrote no versions.
    let r = s.get(&format!("Patient/{before}")).await;
    assert_eq!(r.json()["meta"]["versionId"], "1");

    // System-level $reindex: every type.
    let location = start_reindex(s, "$reindex").await;
    let status = wait_done(s, &location, Duration::from_secs(60)).await;
    assert_eq!(count_of(&status, "total"), 4, "{status}");
    assert_eq!(param(&status, "scope")["valueString"], "*");
    assert_eq!(ids(s, "Patient?eye-colour=blue").await, blue);

    // Updating the definition re-evaluates it (here: a string parameter).
    let mut changed = eye_colour_parameter();
    changed["id"] = json!(sp);
    changed["type"] = json!("string");
    let r = s.put(&format!("SearchParameter/{sp}"), &changed).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let later = create(s, &patient("Blue-green", "later")).await;
    assert_eq!(ids(s, "Patient?eye-colour:exact=Blue-green").await, [later]);

    // A built-in code may not be redefined: 422 and nothing stored.
    let mut gender = eye_colour_parameter();
    gender["code"] = json!("gender");
    gender["url"] = json!("http://example.org/SearchParameter/gender");
    let r = s.post("SearchParameter", &gender).await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.outcome().contains("built-in"), "{}", r.outcome());
    // Neither may an expression that does not parse.
    let mut broken = eye_colour_parameter();
    broken["code"] = json!("broken");
    broken["expression"] = json!("Patient.(");
    assert_eq!(s.post("SearchParameter", &broken).await.status, 422);

    // Deleting the definition makes the code unknown again.
    assert!(
        s.delete(&format!("SearchParameter/{sp}"))
            .await
            .status
            .is_success()
    );
    let r = s
        .send("GET", "Patient?eye-colour=blue", &STRICT, None)
        .await;
    assert_eq!(r.status, 400);
    assert!(r.outcome().contains("eye-colour"), "{}", r.outcome());

    // Unknown jobs and types.
    let r = s.get("$reindex/no-such-job").await;
    assert_eq!(r.status, 404);
    r.outcome();
    let r = s.send("POST", "Nope/$reindex", &[], None).await;
    assert!(r.status.is_client_error(), "{}", r.status);
    r.outcome();
}

/// `_include=*` (and `_revinclude` by code) follow a run-time reference parameter.
async fn include_star_follows_runtime_references(s: &TestServer) {
    let buddy = json!({
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/buddy",
        "name": "Buddy", "status": "active", "description": "A patient's buddy",
        "code": "buddy", "base": ["Patient"], "type": "reference", "target": ["Patient"],
        "expression": "Patient.extension.where(url='http://example.org/buddy').value",
    });
    create(s, &buddy).await;
    let b = create(s, &json!({"resourceType": "Patient", "active": true})).await;
    let a = create(
        s,
        &json!({"resourceType": "Patient", "extension": [
            {"url": "http://example.org/buddy", "valueReference": {"reference": format!("Patient/{b}")}}]}),
    )
    .await;
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(ids(s, &format!("Patient?_id={a}&_include=*")).await, both);
    assert_eq!(
        ids(s, &format!("Patient?_id={a}&_include=Patient:buddy")).await,
        both
    );
    assert_eq!(
        ids(s, &format!("Patient?_id={b}&_revinclude=Patient:buddy")).await,
        both
    );
}

async fn reindex_is_advertised(s: &TestServer) {
    let cs = s.get("metadata").await.json();
    let ops = cs["rest"][0]["operation"].as_array().expect("operations");
    assert!(ops.iter().any(|o| o["name"] == "reindex"), "{ops:?}");
}

both_stores!(
    runtime_parameter_and_reindex,
    reindex_is_advertised,
    include_star_follows_runtime_references,
);

// ---------------------------------------------------------------------------------
// Real processes on one PostgreSQL schema.

const POOL_SIZE: &str = "6";

async fn spawn(url: &str) -> Process {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        Process::spawn(
            &url,
            &[
                ("EMBER_DB_POOL_SIZE", POOL_SIZE),
                ("EMBER_JOB_LEASE_SECONDS", "2"),
            ],
        )
    })
    .await
    .expect("spawn ember")
}

/// Stores `n` patients (alternating blue and green) through transaction Bundles.
async fn load_patients(http: &Http, n: usize, marker: &str) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|i| {
                let colour = if i % 2 == 0 { "blue" } else { "green" };
                json!({"resource": patient(colour, marker),
                       "request": {"method": "POST", "url": "Patient"}})
            })
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let r = http.post("", &bundle).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
}

/// Every live patient has exactly one `eye-colour` row, and no index row is doubled.
async fn assert_indexed_once(db: &TestDb, patients: i64) {
    let key = ember_store::key("Patient", "eye-colour");
    let rows = db
        .sql_i64(&format!("SELECT count(*) FROM idx_token WHERE p = {key}"))
        .await;
    let docs = db
        .sql_i64(&format!(
            "SELECT count(DISTINCT rid) FROM idx_token WHERE p = {key}"
        ))
        .await;
    assert_eq!((rows, docs), (patients, patients));
    let doubled = db
        .sql_i64(
            "SELECT count(*) FROM (SELECT 1 FROM idx_token
            GROUP BY rid, p, grp, system, code, text HAVING count(*) > 1) d",
        )
        .await;
    assert_eq!(doubled, 0, "duplicate token rows");
    let doubled = db
        .sql_i64(
            "SELECT count(*) FROM (SELECT 1 FROM idx_date
            GROUP BY rid, p, grp, lo, hi HAVING count(*) > 1) d",
        )
        .await;
    assert_eq!(doubled, 0, "duplicate date rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_on_two_instances_index_every_resource_once() {
    const N: usize = 3000;
    let db = TestDb::new(Backend::Postgres).await;
    let a = spawn(&db.url).await;
    let b = spawn(&db.url).await;
    load_patients(&a.http, N, "two").await;
    create(&a.http, &eye_colour_parameter()).await;
    // The other instance hears of the new parameter through the bus.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = b
            .http
            .send(
                "GET",
                "Patient?eye-colour=blue&_summary=count",
                &STRICT,
                None,
            )
            .await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "instance b never learned eye-colour"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(total(&b.http, "Patient?eye-colour=blue").await, 0);

    // Two jobs at once, queued on different instances; both workers run.
    let (one, two) = tokio::join!(
        start_reindex(&a.http, "Patient/$reindex"),
        start_reindex(&b.http, "$reindex")
    );
    let one = wait_done(&b.http, &one, Duration::from_secs(180)).await;
    let two = wait_done(&a.http, &two, Duration::from_secs(180)).await;
    assert_eq!(count_of(&one, "processed"), N as i64, "{one}");
    assert_eq!(count_of(&two, "total"), N as i64 + 1, "{two}");
    assert_eq!(count_of(&two, "processed"), N as i64 + 1, "{two}");
    assert_eq!(
        total(&a.http, "Patient?eye-colour=blue").await,
        N as u64 / 2
    );
    assert_eq!(
        total(&b.http, "Patient?eye-colour=green").await,
        N as u64 / 2
    );
    assert_indexed_once(&db, N as i64).await;
    // No versions were written.
    assert_eq!(
        db.sql_i64("SELECT count(*) FROM resource_versions WHERE version > 1")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_job_is_resumed() {
    const N: usize = 5000;
    let db = TestDb::new(Backend::Postgres).await;
    let mut a = spawn(&db.url).await;
    load_patients(&a.http, N, "kill").await;
    create(&a.http, &eye_colour_parameter()).await;
    let location = start_reindex(&a.http, "Patient/$reindex").await;
    // Kill `a` once it has committed a batch, while it still holds the job.
    let deadline = Instant::now() + Duration::from_secs(120);
    let processed_at_kill = loop {
        let status = a.http.get(&location).await.json();
        let processed = count_of(&status, "processed");
        assert_ne!(
            job_status(&status),
            "done",
            "the job finished before it could be interrupted: {status}"
        );
        if processed > 0 {
            a.child.kill().expect("SIGKILL");
            let _ = a.child.wait();
            break processed;
        }
        assert!(Instant::now() < deadline, "no batch committed: {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(a);
    assert!(processed_at_kill < N as i64);

    // Another instance takes the job over once the lease (2 s) has run out.
    let b = spawn(&db.url).await;
    let status = wait_done(&b.http, &location, Duration::from_secs(180)).await;
    assert_eq!(count_of(&status, "total"), N as i64, "{status}");
    assert_eq!(
        count_of(&status, "processed"),
        N as i64,
        "batches were redone or skipped: {status}"
    );
    assert_eq!(
        total(&b.http, "Patient?eye-colour=blue").await,
        N as u64 / 2
    );
    assert_indexed_once(&db, N as i64).await;
}
