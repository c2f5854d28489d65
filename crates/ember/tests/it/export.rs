//! Bulk Data `$export` at system, Patient and Group level: kick-off, status polling,
//! the manifest and its NDJSON files (several per type when they fill up), `_type`,
//! `_since`, `_typeFilter`, cancellation, the errors, and the grants of a token; on
//! PostgreSQL with real `ember serve` processes, an export whose instance is killed
//! mid-job is finished by another, every resource in it exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::issuer::{Issuer, settings};
use crate::common::{
    Backend, Http, Process, TestDb, TestServer, TestSettings, expect, expect_outcome,
};

both_stores!(export_levels_files_and_filters);

const ASYNC: (&str, &str) = ("prefer", "respond-async");

async fn put(http: &Http, headers: &[(&str, &str)], r: Value) {
    let path = format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap(),
        r["id"].as_str().unwrap()
    );
    let resp = http.send("PUT", &path, headers, Some(&r.to_string())).await;
    assert!(
        resp.status.is_success(),
        "{path}: {}",
        String::from_utf8_lossy(&resp.body)
    );
}

fn obs(id: &str, patient: &str) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final", "code": {"text": "x"},
           "subject": {"reference": format!("Patient/{patient}")}})
}

async fn fixture(http: &Http, headers: &[(&str, &str)]) {
    put(
        http,
        headers,
        json!({"resourceType": "Organization", "id": "org", "name": "Clinic"}),
    )
    .await;
    for p in ["p1", "p2", "p3"] {
        put(http, headers, json!({"resourceType": "Patient", "id": p})).await;
    }
    for (id, p) in [("o1", "p1"), ("o2", "p1"), ("o3", "p1"), ("o4", "p2")] {
        put(http, headers, obs(id, p)).await;
    }
    put(
        http,
        headers,
        json!({"resourceType": "Condition", "id": "c3", "subject": {"reference": "Patient/p3"}}),
    )
    .await;
    put(http, headers, json!({"resourceType": "Group", "id": "g", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p3"}}]})).await;
}

/// Kicks off an export and waits for its manifest.
async fn export(http: &Http, headers: &[(&str, &str)], path: &str) -> (String, Value) {
    let mut h = headers.to_vec();
    h.push(ASYNC);
    let r = http.send("GET", path, &h, None).await;
    expect(&r, 202);
    let status = r.header("content-location").unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http.send("GET", &status, headers, None).await;
        match r.status.as_u16() {
            202 => {
                assert!(r.header("x-progress").is_some());
                assert_eq!(r.header("retry-after"), Some("2"));
            }
            200 => return (status, r.json()),
            other => panic!("{status}: {other} {}", String::from_utf8_lossy(&r.body)),
        }
        assert!(Instant::now() < deadline, "{path} did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The ids per type in a manifest's files, and the number of files per type.
async fn contents(
    http: &Http,
    headers: &[(&str, &str)],
    manifest: &Value,
) -> (BTreeMap<String, BTreeSet<String>>, BTreeMap<String, usize>) {
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut files: BTreeMap<String, usize> = BTreeMap::new();
    for out in manifest["output"].as_array().unwrap() {
        let t = out["type"].as_str().unwrap().to_owned();
        let r = http
            .send("GET", out["url"].as_str().unwrap(), headers, None)
            .await;
        expect(&r, 200);
        assert_eq!(r.header("content-type"), Some("application/fhir+ndjson"));
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len() as u64, out["count"].as_u64().unwrap());
        for line in lines {
            let resource: Value = serde_json::from_str(line).unwrap();
            assert_eq!(resource["resourceType"], t.as_str());
            ids.entry(t.clone())
                .or_default()
                .insert(resource["id"].as_str().unwrap().to_owned());
        }
        *files.entry(t).or_default() += 1;
    }
    (ids, files)
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

async fn export_levels_files_and_filters(s: &TestServer) {
    let settings = TestSettings {
        limits: ember_repo::Limits {
            export_file_resources: 2,
            ..TestSettings::default().limits
        },
        ..Default::default()
    };
    let s = TestServer::start_with(s.backend, settings).await;
    fixture(&s, &[]).await;
    // Errors at kick-off.
    assert!(expect_outcome(&s.get("$export").await, 400).contains("respond-async"));
    let bad = |q: &'static str| {
        let s = &s;
        async move { s.send("GET", q, &[ASYNC], None).await }
    };
    assert!(
        expect_outcome(&bad("$export?_outputFormat=text/csv").await, 400).contains("_outputFormat")
    );
    assert!(expect_outcome(&bad("$export?_type=Nope").await, 400).contains("_type"));
    assert!(expect_outcome(&bad("$export?elements=x").await, 400).contains("$export"));
    assert!(
        expect_outcome(&bad("Patient/$export?_type=Organization").await, 400)
            .contains("compartment")
    );
    assert!(
        expect_outcome(&bad("$export?_typeFilter=Observation?nope=1").await, 400).contains("nope")
    );
    expect_outcome(&bad("Group/none/$export").await, 404);
    expect_outcome(&bad("Observation/$export").await, 404);
    // System level, two resources to a file.
    let (status, manifest) =
        export(&s, &[], "$export?_type=Patient,Observation,Organization").await;
    assert_eq!(manifest["requiresAccessToken"], false);
    assert!(
        manifest["request"]
            .as_str()
            .unwrap()
            .ends_with("$export?_type=Patient%2CObservation%2COrganization")
    );
    assert!(manifest["transactionTime"].as_str().is_some());
    let (ids, files) = contents(&s, &[], &manifest).await;
    assert_eq!(ids["Patient"], set(&["p1", "p2", "p3"]));
    assert_eq!(ids["Observation"], set(&["o1", "o2", "o3", "o4"]));
    assert_eq!(ids["Organization"], set(&["org"]));
    assert_eq!(
        (
            files["Patient"],
            files["Observation"],
            files["Organization"]
        ),
        (2, 2, 1)
    );
    // _typeFilter, alternatives of one type written once each.
    let (_, manifest) = export(&s, &[], "$export?_type=Observation&_typeFilter=Observation%3Fsubject%3DPatient/p2,Observation%3F_id%3Do4,o1").await;
    let (ids, _) = contents(&s, &[], &manifest).await;
    assert_eq!(ids["Observation"], set(&["o1", "o4"]));
    // _since: what changed from the last export's transaction time on.
    let since = manifest["transactionTime"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    put(&s, &[], obs("o5", "p2")).await;
    let (_, manifest) = export(&s, &[], &format!("$export?_since={since}")).await;
    let (ids, _) = contents(&s, &[], &manifest).await;
    assert_eq!(ids.keys().collect::<Vec<_>>(), ["Observation"]);
    assert_eq!(ids["Observation"], set(&["o5"]));
    // Patient level: the compartments (the Group names patients, so it is in them), no
    // Organization.
    let (_, manifest) = export(&s, &[], "Patient/$export").await;
    let (ids, _) = contents(&s, &[], &manifest).await;
    assert_eq!(
        ids.keys().cloned().collect::<BTreeSet<_>>(),
        set(&["Condition", "Group", "Observation", "Patient"])
    );
    assert_eq!(ids["Observation"].len(), 5);
    // Group level: the members' compartments only.
    let (group, manifest) = export(&s, &[], "Group/g/$export").await;
    let (ids, _) = contents(&s, &[], &manifest).await;
    assert_eq!(ids["Patient"], set(&["p1", "p3"]));
    assert_eq!(ids["Observation"], set(&["o1", "o2", "o3"]));
    assert_eq!(ids["Condition"], set(&["c3"]));
    // Deleting an export removes it and its files; the others stay.
    let file = manifest["output"][0]["url"].as_str().unwrap().to_owned();
    expect(&s.send("DELETE", &group, &[], None).await, 202);
    expect_outcome(&s.get(&group).await, 404);
    expect_outcome(&s.get(&file).await, 404);
    expect(&s.get(&status).await, 200);
    // Declared in the CapabilityStatement.
    let cs = s.get("metadata").await.json();
    assert_eq!(
        cs["instantiates"][0],
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    );
    assert!(
        cs["rest"][0]["operation"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["name"] == "export")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_follows_the_tokens_grants() {
    let issuer = Issuer::start().await;
    let s = TestServer::start_with(
        Backend::Sqlite,
        TestSettings {
            auth: Some(settings(&issuer)),
            ..Default::default()
        },
    )
    .await;
    let bearer =
        |scope: &str, patient: Option<&str>| format!("Bearer {}", issuer.token(scope, patient));
    let admin = bearer("system/*.cruds", None);
    fixture(&s, &[("authorization", &admin)]).await;
    // A system token gets everything, and needs its token for the files.
    let (status, manifest) =
        export(&s, &[("authorization", &admin)], "$export?_type=Patient").await;
    assert_eq!(manifest["requiresAccessToken"], true);
    let (ids, _) = contents(&s, &[("authorization", &admin)], &manifest).await;
    assert_eq!(ids["Patient"], set(&["p1", "p2", "p3"]));
    // Another client may not see it.
    let mut other = issuer.claims("system/*.read", None);
    other["client_id"] = json!("someone-else");
    let other = format!("Bearer {}", issuer.sign(&other));
    expect_outcome(
        &s.send("GET", &status, &[("authorization", &other)], None)
            .await,
        403,
    );
    let file = manifest["output"][0]["url"].as_str().unwrap();
    expect_outcome(
        &s.send("GET", file, &[("authorization", &other)], None)
            .await,
        403,
    );
    // A patient token exports its own patient's data only.
    let p1 = bearer("patient/*.read", Some("p1"));
    let (_, manifest) = export(&s, &[("authorization", &p1)], "$export").await;
    let (ids, _) = contents(&s, &[("authorization", &p1)], &manifest).await;
    assert_eq!(ids["Patient"], set(&["p1"]));
    assert_eq!(ids["Observation"], set(&["o1", "o2", "o3"]));
    assert!(!ids.contains_key("Organization") && !ids.contains_key("Condition"));
    // A type the token may not read, asked for by name.
    let patients_only = bearer("system/Patient.read", None);
    let r = s
        .send(
            "GET",
            "$export?_type=Observation",
            &[("authorization", &patients_only), ASYNC],
            None,
        )
        .await;
    expect_outcome(&r, 403);
}

async fn spawn(url: &str) -> Process {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        Process::spawn(
            &url,
            &[
                ("EMBER_JOB_LEASE_SECONDS", "2"),
                ("EMBER_EXPORT_FILE_RESOURCES", "25"),
            ],
        )
    })
    .await
    .expect("spawn ember")
}

/// The resources and files of an export so far, from its status' `X-Progress`
/// ("N resources in M files").
fn progress(r: &crate::common::Resp) -> (u64, u64) {
    let line = r.header("x-progress").unwrap_or_default();
    let numbers: Vec<u64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
    assert_eq!(numbers.len(), 2, "{line}");
    (numbers[0], numbers[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instances_export_is_finished_by_another() {
    const PATIENTS: usize = 40;
    const PER_PATIENT: usize = 50;
    let db = TestDb::new(Backend::Postgres).await;
    let mut a = spawn(&db.url).await;
    let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in 0..PATIENTS {
        let pid = format!("k{p}");
        let mut entries = vec![json!({"resource": {"resourceType": "Patient", "id": pid},
            "request": {"method": "PUT", "url": format!("Patient/{pid}")}})];
        for o in 0..PER_PATIENT {
            let oid = format!("k{p}-{o}");
            entries.push(json!({"resource": obs(&oid, &pid),
                "request": {"method": "PUT", "url": format!("Observation/{oid}")}}));
            expected
                .entry("Observation".into())
                .or_default()
                .insert(oid);
        }
        expected.entry("Patient".into()).or_default().insert(pid);
        let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        let r = a.http.post("", &bundle).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = a
        .http
        .send("GET", "$export?_type=Patient,Observation", &[ASYNC], None)
        .await;
    expect(&r, 202);
    // Relative to the base, so that it reaches whichever instance is asked.
    let status = r
        .header("content-location")
        .and_then(|l| l.split_once("/fhir/"))
        .map(|(_, path)| path.to_owned())
        .expect("Content-Location");
    // Kill `a` once it has written a file, while the export still runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let written_at_kill = loop {
        let r = a.http.get(&status).await;
        assert_eq!(
            r.status, 202,
            "the export finished before it could be interrupted"
        );
        let (_, files) = progress(&r);
        if files > 0 {
            a.child.kill().expect("SIGKILL");
            let _ = a.child.wait();
            break files;
        }
        assert!(Instant::now() < deadline, "no file was written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    drop(a);

    // Another instance takes the job over once the lease (2 s) has run out.
    let b = spawn(&db.url).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let manifest = loop {
        let r = b.http.get(&status).await;
        match r.status.as_u16() {
            202 => assert!(progress(&r).1 >= written_at_kill),
            200 => break r.json(),
            other => panic!("{status}: {other} {}", String::from_utf8_lossy(&r.body)),
        }
        assert!(Instant::now() < deadline, "the export was not finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Every resource exactly once: the files hold as many lines as distinct ids, and
    // file names run on without a gap.
    let mut lines: BTreeMap<String, usize> = BTreeMap::new();
    let mut names: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for out in manifest["output"].as_array().unwrap() {
        let t = out["type"].as_str().unwrap().to_owned();
        let url = out["url"].as_str().unwrap();
        let n: u64 = url
            .rsplit_once(&format!("{t}-"))
            .and_then(|(_, n)| n.strip_suffix(".ndjson"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{url}"));
        names.entry(t.clone()).or_default().push(n);
        assert!(out["count"].as_u64().unwrap() <= 25, "{out}");
        let text = String::from_utf8(b.http.get(url).await.body.to_vec()).unwrap();
        *lines.entry(t).or_default() += text.lines().count();
    }
    let (ids, _) = contents(&b.http, &[], &manifest).await;
    assert_eq!(ids, expected);
    for (t, want) in &expected {
        assert_eq!(lines[t], want.len(), "{t}: duplicates");
        let mut n = names[t].clone();
        n.sort_unstable();
        assert_eq!(n, (1..=n.len() as u64).collect::<Vec<_>>(), "{t}");
    }
}
