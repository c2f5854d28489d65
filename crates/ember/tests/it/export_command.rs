//! `ember export` against a test server on both stores: a system export's files and
//! counts match what is stored, and `ember import` loads the folder into an empty
//! server with the same resources; `--type`, `--since`, `--group` narrow it; an unknown
//! group or type ends with the server's message. Ctrl-C while the export runs cancels
//! it on the server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{TempDir, TestServer, run_ember};
use crate::import::row;

both_stores!(export_round_trip);

async fn put(server: &TestServer, r: Value) {
    let path = format!(
        "{}/{}",
        r["resourceType"].as_str().unwrap(),
        r["id"].as_str().unwrap()
    );
    let resp = server.put(&path, &r).await;
    assert!(
        resp.status.is_success(),
        "{path}: {}",
        String::from_utf8_lossy(&resp.body)
    );
}

fn observation(id: &str, patient: &str, value: u32) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
           "subject": {"reference": format!("Patient/{patient}")},
           "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}})
}

async fn fixture(server: &TestServer) {
    put(
        server,
        json!({"resourceType": "Organization", "id": "org", "name": "Clinic"}),
    )
    .await;
    for (p, family) in [("p1", "Ahl"), ("p2", "Berg"), ("p3", "Dahl")] {
        put(server, json!({"resourceType": "Patient", "id": p, "gender": "female",
            "name": [{"family": family}], "managingOrganization": {"reference": "Organization/org"}}))
        .await;
    }
    for (i, (id, p)) in [("o1", "p1"), ("o2", "p1"), ("o3", "p2"), ("o4", "p3")]
        .into_iter()
        .enumerate()
    {
        put(server, observation(id, p, 60 + i as u32)).await;
    }
    put(server, json!({"resourceType": "Group", "id": "g", "type": "person", "actual": true,
        "member": [{"entity": {"reference": "Patient/p1"}}, {"entity": {"reference": "Patient/p3"}}]}))
    .await;
}

/// Runs `ember export --url URL --out DIR ARGS…` (polling at least every 0.2 s).
async fn export(server: &TestServer, out: &Path, args: &[&str]) -> (i32, String, String) {
    let out = out.display().to_string();
    let mut all = vec![
        "export",
        "--url",
        &server.base,
        "--out",
        &out,
        "--poll-interval",
        "0.2",
    ];
    all.extend(args);
    run_ember(Path::new("."), &all).await
}

/// The files of an export folder (not the manifest) and, per file, its resources.
fn files(dir: &Path) -> BTreeMap<String, Vec<Value>> {
    std::fs::read_dir(dir)
        .expect("the export folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ndjson"))
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(&n)).expect("a file");
            let lines = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("a JSON line"))
                .collect();
            (n, lines)
        })
        .collect()
}

fn ids(resources: &[Value]) -> BTreeSet<String> {
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

async fn count(server: &TestServer, res_type: &str) -> u64 {
    let body = server
        .get(&format!("{res_type}?_summary=count"))
        .await
        .json();
    body["total"]
        .as_u64()
        .unwrap_or_else(|| panic!("{res_type}: {body}"))
}

/// A resource as the server holds it, without its `meta` (version and time are the
/// server's own).
async fn content(server: &TestServer, path: &str) -> Value {
    let mut body = server.get(path).await.json();
    assert!(body["id"].is_string(), "{path}: {body}");
    body.as_object_mut().map(|o| o.remove("meta"));
    body
}

async fn export_round_trip(server: &TestServer) {
    fixture(server).await;
    let root = TempDir::new("ember-export-it");
    let all = root.0.join("all");

    // The whole system: one file per type, counts as stored.
    let (code, out, err) = export(server, &all, &[]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let found = files(&all);
    assert_eq!(
        found.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "Group-1.ndjson",
            "Observation-1.ndjson",
            "Organization-1.ndjson",
            "Patient-1.ndjson"
        ]
    );
    for (t, n) in [
        ("Patient", 3),
        ("Observation", 4),
        ("Organization", 1),
        ("Group", 1),
    ] {
        assert_eq!(count(server, t).await, n);
        let file = &found[&format!("{t}-1.ndjson")];
        assert_eq!(file.len() as u64, n, "{t}");
        assert!(file.iter().all(|r| r["resourceType"] == t), "{t}");
        let bytes = std::fs::metadata(all.join(format!("{t}-1.ndjson")))
            .expect("file")
            .len();
        assert_eq!(row(&out, t), [1, n, bytes], "{out}");
    }
    assert_eq!(row(&out, "total")[..2], [4, 9], "{out}");
    assert_eq!(row(&out, "errors (OperationOutcome)"), [0, 0, 0], "{out}");
    assert_eq!(
        ids(&found["Observation-1.ndjson"]),
        set(&["o1", "o2", "o3", "o4"])
    );
    let p2 = found["Patient-1.ndjson"]
        .iter()
        .find(|r| r["id"] == "p2")
        .expect("p2")
        .clone();
    assert_eq!(p2, server.get("Patient/p2").await.json());
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(all.join("manifest.json")).expect("manifest"))
            .expect("JSON");
    assert_eq!(manifest["output"].as_array().map(Vec::len), Some(4));
    assert_eq!(manifest["error"], json!([]));
    let since = manifest["transactionTime"]
        .as_str()
        .expect("transactionTime")
        .to_owned();
    assert!(err.contains("accepted; status at"), "{err}");

    // The folder loads into an empty server as it is.
    let second = TestServer::start(server.backend).await;
    let (code, out, err) = run_ember(
        &root.0,
        &["import", "--url", &second.base, all.to_str().unwrap()],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(crate::import::row(&out, "total"), [9, 0], "{out}");
    for t in ["Patient", "Observation", "Organization", "Group"] {
        assert_eq!(count(&second, t).await, count(server, t).await, "{t}");
    }
    for path in ["Patient/p1", "Observation/o3", "Group/g"] {
        assert_eq!(
            content(&second, path).await,
            content(server, path).await,
            "{path}"
        );
    }

    // --type and --since: what changed after the first export, of the types named.
    put(server, observation("o5", "p2", 99)).await;
    put(
        server,
        json!({"resourceType": "Organization", "id": "org2", "name": "Other"}),
    )
    .await;
    let changed = root.0.join("changed");
    let (code, out, err) = export(
        server,
        &changed,
        &["--type", "Observation,Patient", "--since", &since],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let found = files(&changed);
    assert_eq!(found.keys().collect::<Vec<_>>(), ["Observation-1.ndjson"]);
    assert_eq!(ids(&found["Observation-1.ndjson"]), set(&["o5"]));
    assert_eq!(row(&out, "total")[..2], [1, 1], "{out}");

    // --group: the members' compartments only; a type filter narrows further.
    let group = root.0.join("group");
    let (code, out, err) = export(
        server,
        &group,
        &[
            "--group",
            "g",
            "--type",
            "Patient",
            "--type",
            "Observation",
            "--type-filter",
            "Observation?subject=Patient/p1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}\n{err}");
    let found = files(&group);
    assert_eq!(ids(&found["Patient-1.ndjson"]), set(&["p1", "p3"]));
    assert_eq!(ids(&found["Observation-1.ndjson"]), set(&["o1", "o2"]));

    // Refusals end the run with the server's message, and leave no manifest.
    let bad = root.0.join("bad");
    let (code, out, err) = export(server, &bad, &["--group", "none"]).await;
    assert_eq!(code, 2, "{out}\n{err}");
    // The server's diagnostics follow its status.
    let said = err
        .split("answered 404 Not Found: ")
        .nth(1)
        .unwrap_or_default();
    assert!(said.contains("none"), "{err}");
    let (code, out, err) = export(server, &bad, &["--type", "Nope"]).await;
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("answered 400 Bad Request: _type: \"Nope\" is not a resource type"),
        "{err}"
    );
    assert!(!bad.join("manifest.json").exists());
}

/// A server whose export never ends: it counts the polls and notes a DELETE.
#[derive(Default)]
struct Endless {
    polls: AtomicU64,
    deleted: AtomicBool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_while_polling_cancels_the_export() {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/fhir", listener.local_addr().expect("addr"));
    let state = Arc::new(Endless::default());
    let status = format!("{base}/$export-status/1");
    let app = axum::Router::new()
        .route(
            "/fhir/$export",
            get(move || async move {
                (StatusCode::ACCEPTED, [(header::CONTENT_LOCATION, status)]).into_response()
            }),
        )
        .route(
            "/fhir/$export-status/1",
            get(
                |axum::extract::State(s): axum::extract::State<Arc<Endless>>| async move {
                    s.polls.fetch_add(1, Ordering::SeqCst);
                    (
                        StatusCode::ACCEPTED,
                        [("retry-after", "0"), ("x-progress", "still going")],
                    )
                },
            )
            .delete(
                |axum::extract::State(s): axum::extract::State<Arc<Endless>>| async move {
                    s.deleted.store(true, Ordering::SeqCst);
                    StatusCode::ACCEPTED
                },
            ),
        )
        .with_state(Arc::clone(&state));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let root = TempDir::new("ember-export-it");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["export", "--url", &base, "--out", "out"])
        .args(["--poll-interval", "0.1"])
        .current_dir(&root.0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ember");
    let deadline = Instant::now() + Duration::from_secs(20);
    while state.polls.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "ember export did not poll");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(signalled.success());
    let out = tokio::task::spawn_blocking(move || {
        let _ = &mut child;
        child.wait_with_output().expect("wait")
    })
    .await
    .expect("join");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(state.deleted.load(Ordering::SeqCst), "no DELETE: {err}");
    assert!(
        err.contains("interrupted; the export was cancelled (DELETE answered 202"),
        "{err}"
    );
}
