//! End-to-end tests against servers on 127.0.0.1 only.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ceiling_short_phase() {
    let server = CeilingServer::start(Bytes::from_static(
        br#"{"resourceType":"Patient","id":"x"}"#,
    ))
    .expect("start ceiling server");
    let target = Arc::new(Target::parse(&server.url()).expect("url"));
    let ctx = Arc::new(PhaseCtx::new(target, Arc::new(Refs::default()), 42));
    let (stats, _) = run_http_phase(
        "http ceiling",
        Work::Ceiling,
        ctx,
        2,
        Duration::ZERO,
        Duration::from_secs(1),
    )
    .await
    .expect("phase");
    assert!(stats.requests > 0);
    assert_eq!(stats.errors, 0, "{:?}", stats.error_samples);
    assert!(stats.p50_ms <= stats.p99_ms && stats.p99_ms <= stats.max_ms);
}

/// A tiny in-memory FHIR server: enough REST for the bench phases, plus a
/// `$submit-measurement` whose "triage" stores `Task/task-obs-<id>` (priority by the
/// order's zones) [`TRIAGE_DELAY`] after the answer.
///
/// For the cds phase it also finds Patients by `_id`, answers the `tasks` prefetch
/// query (`Task?patient=<id>&…&_include=…`: the patient's Tasks), and serves CDS Hooks
/// discovery and `telemonitoring-summary`, whose cards are the patient's asap (critical)
/// and urgent (warning) Tasks, else one info card; its data comes from the prefetch or,
/// when `fhirServer` is [`MockFhir::base`], the store. A `hookInstance` is used once.
struct MockFhir {
    store: Mutex<HashMap<String, String>>,
    next_id: AtomicU64,
    /// The FHIR base URL, as the mock sees itself.
    base: String,
    hook_instances: Mutex<std::collections::HashSet<String>>,
}

const TRIAGE_DELAY: Duration = Duration::from_millis(30);

impl MockFhir {
    fn handle(
        self: &Arc<Self>,
        method: &::http::Method,
        target: &str,
        body: Bytes,
    ) -> Response<Full<Bytes>> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let segs: Vec<&str> = path.trim_start_matches("/fhir/").split('/').collect();
        let reply = |status: StatusCode, body: String| {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = status;
            r
        };
        let mut store = match self.store.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let param = |name: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        };
        let tasks_of = |store: &HashMap<String, String>, patient: &str| -> Vec<serde_json::Value> {
            store
                .iter()
                .filter(|(k, _)| k.starts_with("Task/"))
                .filter_map(|(_, v)| serde_json::from_str::<serde_json::Value>(v).ok())
                .filter(|t| t["for"]["reference"] == format!("Patient/{patient}"))
                .collect()
        };
        match (method.as_str(), path) {
            ("GET", "/cds-services") => {
                let discovery = serde_json::json!({"services": [{
                    "hook": "patient-view", "id": "telemonitoring-summary",
                    "prefetch": {"tasks": "Task?patient={{context.patientId}}&status=requested,received,accepted,ready,in-progress,on-hold&_include=Task:focus&_include:iterate=ClinicalImpression:investigation&_count=200"},
                }]});
                return reply(StatusCode::OK, discovery.to_string());
            }
            ("POST", "/cds-services/telemonitoring-summary") => {
                let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let instance = call["hookInstance"].as_str().unwrap_or_default();
                let fresh = uuid::Uuid::parse_str(instance).is_ok()
                    && self
                        .hook_instances
                        .lock()
                        .expect("lock")
                        .insert(instance.to_owned());
                let patient = call["context"]["patientId"].as_str().unwrap_or_default();
                if call["hook"] != "patient-view"
                    || !fresh
                    || call["context"]["userId"] != "Practitioner/ember-bench"
                    || patient.is_empty()
                {
                    return reply(StatusCode::BAD_REQUEST, format!("bad call {call}"));
                }
                let tasks: Vec<serde_json::Value> =
                    match (call.get("prefetch"), call.get("fhirServer")) {
                        (Some(p), None) => p["tasks"]["entry"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|e| e["resource"].clone())
                            .collect(),
                        (None, Some(server)) if *server == self.base.as_str() => {
                            tasks_of(&store, patient)
                        }
                        _ => {
                            return reply(
                                StatusCode::PRECONDITION_FAILED,
                                format!("no data {call}"),
                            );
                        }
                    };
                let mut cards: Vec<serde_json::Value> = tasks
                    .iter()
                    .filter_map(|t| match t["priority"].as_str() {
                        Some("asap") => Some(serde_json::json!({"indicator": "critical"})),
                        Some("urgent") => Some(serde_json::json!({"indicator": "warning"})),
                        _ => None,
                    })
                    .collect();
                if cards.is_empty() && !tasks.is_empty() {
                    cards.push(serde_json::json!({"indicator": "info"}));
                }
                return reply(
                    StatusCode::OK,
                    serde_json::json!({"cards": cards}).to_string(),
                );
            }
            _ => {}
        }
        match (method.as_str(), segs.as_slice()) {
            ("POST", [""]) => {
                let bundle: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let mut answers = Vec::new();
                for e in bundle["entry"].as_array().into_iter().flatten() {
                    let url = e["request"]["url"].as_str().unwrap_or_default();
                    if e["request"]["method"] != "PUT"
                        || e["resource"]["id"] != url.split('/').nth(1).unwrap_or("-")
                    {
                        return reply(StatusCode::BAD_REQUEST, format!("not a PUT by id: {e}"));
                    }
                    store.insert(url.to_owned(), e["resource"].to_string());
                    answers.push(serde_json::json!({"response": {"status": "201 Created",
                        "location": format!("{url}/_history/1")}}));
                }
                let answer = serde_json::json!({"resourceType": "Bundle",
                    "type": "transaction-response", "entry": answers});
                reply(StatusCode::OK, answer.to_string())
            }
            ("POST", ["$submit-measurement"]) => {
                let params: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let bundle = &params["parameter"][0]["resource"];
                let obs = &bundle["entry"][0]["resource"];
                let patient = obs["subject"]["reference"].as_str().unwrap_or_default();
                let order = obs["basedOn"][0]["reference"].as_str().unwrap_or_default();
                let Some(order) = store
                    .get(order)
                    .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                else {
                    return reply(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("no order {order}"),
                    );
                };
                if params["parameter"][0]["name"] != "measurement"
                    || bundle["type"] != "transaction"
                    || obs["resourceType"] != "Observation"
                    || order["subject"]["reference"] != patient
                    || order["status"] != "active"
                {
                    return reply(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        format!("bad submission {params}"),
                    );
                }
                let Some(value) = obs["valueQuantity"]["value"].as_f64() else {
                    return reply(StatusCode::UNPROCESSABLE_ENTITY, "no value".into());
                };
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                store.insert(format!("Observation/{id}"), obs.to_string());
                let task = serde_json::json!({"resourceType": "Task", "id": format!("task-obs-{id}"),
                    "for": {"reference": patient},
                    "priority": crate::submit::tests::judge(&order, value).priority()});
                let mock = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(TRIAGE_DELAY).await;
                    let mut store = match mock.store.lock() {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    store.insert(format!("Task/task-obs-{id}"), task.to_string());
                });
                let answer = serde_json::json!({"resourceType": "Parameters", "parameter": [{
                    "name": "bundle", "resource": {"resourceType": "Bundle", "type": "transaction-response",
                    "entry": [{"response": {"status": "201 Created", "location": format!("Observation/{id}/_history/1")}}]}}]});
                reply(StatusCode::OK, answer.to_string())
            }
            ("GET", ["Patient"]) => {
                let entries: Vec<serde_json::Value> = param("_id")
                    .unwrap_or_default()
                    .split(',')
                    .filter(|id| store.contains_key(&format!("Patient/{id}")))
                    .map(
                        |id| serde_json::json!({"resource": {"resourceType": "Patient", "id": id}}),
                    )
                    .collect();
                let page = serde_json::json!({"resourceType": "Bundle", "type": "searchset",
                        "entry": entries});
                reply(StatusCode::OK, page.to_string())
            }
            ("GET", ["Task"]) => {
                if let (Some(patient), Some(_)) = (param("patient"), param("_include")) {
                    let entries: Vec<serde_json::Value> = tasks_of(&store, patient)
                        .into_iter()
                        .map(|t| serde_json::json!({"resource": t, "search": {"mode": "match"}}))
                        .collect();
                    let page = serde_json::json!({"resourceType": "Bundle", "type": "searchset",
                        "entry": entries});
                    return reply(StatusCode::OK, page.to_string());
                }
                if let Some(ids) = param("_id") {
                    let entries: Vec<serde_json::Value> = ids
                        .split(',')
                        .filter_map(|id| store.get(&format!("Task/{id}")))
                        .filter_map(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                        .map(|t| serde_json::json!({"resource": {"resourceType": "Task", "id": t["id"]}}))
                        .collect();
                    let page = serde_json::json!({"resourceType": "Bundle", "type": "searchset",
                        "entry": entries});
                    return reply(StatusCode::OK, page.to_string());
                }
                if param("_summary") != Some("count") || param("patient").is_none() {
                    return reply(StatusCode::BAD_REQUEST, format!("unexpected query {query}"));
                }
                let patients: Vec<&str> = param("patient").unwrap_or_default().split(',').collect();
                let total = store
                    .iter()
                    .filter(|(k, _)| k.starts_with("Task/"))
                    .filter_map(|(_, v)| serde_json::from_str::<serde_json::Value>(v).ok())
                    .filter(|t| {
                        patients.contains(&t["for"]["reference"].as_str().unwrap_or_default())
                    })
                    .filter(|t| param("priority").is_none_or(|p| t["priority"] == p))
                    .count();
                reply(
                    StatusCode::OK,
                    format!(r#"{{"resourceType":"Bundle","type":"searchset","total":{total}}}"#),
                )
            }
            ("GET", ["metadata"]) => reply(
                StatusCode::OK,
                r#"{"resourceType":"CapabilityStatement"}"#.into(),
            ),
            ("POST", [rtype]) => {
                let parsed: serde_json::Value = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string()),
                };
                if parsed["resourceType"] != *rtype {
                    return reply(StatusCode::BAD_REQUEST, "type mismatch".into());
                }
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                store.insert(
                    format!("{rtype}/{id}"),
                    String::from_utf8_lossy(&body).into_owned(),
                );
                let mut r = reply(StatusCode::CREATED, String::new());
                if id % 2 == 0 {
                    r.headers_mut().insert(
                        ::http::header::LOCATION,
                        ::http::HeaderValue::from_str(&format!(
                            "http://127.0.0.1/fhir/{rtype}/{id}/_history/1"
                        ))
                        .expect("header"),
                    );
                } else {
                    *r.body_mut() = Full::new(Bytes::from(format!(
                        r#"{{"resourceType":"{rtype}","id":"{id}"}}"#
                    )));
                }
                r
            }
            ("GET", [rtype, id]) => match store.get(&format!("{rtype}/{id}")) {
                Some(b) => reply(StatusCode::OK, b.clone()),
                None => reply(StatusCode::NOT_FOUND, "gone".into()),
            },
            ("PUT", [rtype, id]) => {
                let parsed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                if parsed["id"] != *id {
                    return reply(StatusCode::BAD_REQUEST, "id mismatch".into());
                }
                store.insert(
                    format!("{rtype}/{id}"),
                    String::from_utf8_lossy(&body).into_owned(),
                );
                reply(StatusCode::OK, String::from_utf8_lossy(&body).into_owned())
            }
            ("DELETE", [rtype, id]) => match store.remove(&format!("{rtype}/{id}")) {
                Some(_) => reply(StatusCode::NO_CONTENT, String::new()),
                None => reply(StatusCode::NOT_FOUND, "double delete".into()),
            },
            _ => reply(StatusCode::NOT_FOUND, format!("no route {method} {path}")),
        }
    }
}

async fn start_mock() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mock = Arc::new(MockFhir {
        store: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        base: format!("http://{addr}/fhir"),
        hook_instances: Mutex::new(std::collections::HashSet::new()),
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mock = mock.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let mock = mock.clone();
                    async move {
                        let method = req.method().clone();
                        let xml = req
                            .headers()
                            .get("accept")
                            .is_some_and(|a| a.as_bytes().ends_with(b"+xml"));
                        let path = req
                            .uri()
                            .path_and_query()
                            .map_or_else(String::new, |p| p.as_str().to_owned());
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let mut answer = mock.handle(&method, &path, body);
                        if xml {
                            // Only the Content-Type: the bench does not read the body.
                            answer.headers_mut().insert(
                                ::http::header::CONTENT_TYPE,
                                ::http::HeaderValue::from_static("application/fhir+xml"),
                            );
                        }
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

fn args(url: String) -> BenchArgs {
    BenchArgs {
        url,
        connections: 2,
        duration: 1,
        warmup: 0,
        seed: 7,
        ops: vec![Op::Create, Op::Read, Op::ReadXml, Op::Update, Op::Delete],
        db: None,
        no_http_baseline: false,
        pid: None,
        json: None,
        bearer: None,
        dataset_seed: 42,
        cds_patients: 200,
        cds_submissions: 4,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_against_mock_server() {
    let addr = start_mock().await;
    let dir = std::env::temp_dir().join(format!("ember-bench-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let json_path = dir.join("report.json");
    let mut a = args(format!("http://{addr}/fhir"));
    a.db = Some(format!("sqlite://{}", dir.join("server.db").display()));
    a.pid = Some(std::process::id());
    a.json = Some(json_path.clone());
    run(a).await.expect("bench run");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json written"))
            .expect("valid json");
    let phases = report["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 5);
    for p in phases {
        assert!(p["requests"].as_u64().unwrap_or(0) > 0, "{p}");
        assert_eq!(p["errors"], 0, "{p}");
    }
    assert!(report["http_ceiling"]["requests"].as_u64().unwrap_or(0) > 0);
    assert_eq!(report["storage"]["backend"], "sqlite");
    assert_eq!(report["args"]["connections"], 2);
    assert_eq!(report["ratios"].as_array().map(Vec::len), Some(5));
    assert!(report["rss"]["peak_mib"].as_f64().unwrap_or(0.0) > 0.0);
    assert!(!dir.join("server.db.bench-baseline").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn server_down_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = run(args(format!("http://{addr}/fhir")))
        .await
        .expect_err("must fail");
    assert!(format!("{err:#}").contains("not reachable"), "{err:#}");
}

#[test]
fn args_parse_with_defaults() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }
    let cli = Cli::try_parse_from(["ember", "--url", "http://h/fhir", "--ops", "read,create"])
        .expect("parse");
    assert_eq!(cli.bench.connections, 32);
    assert_eq!(cli.bench.duration, 10);
    assert_eq!(cli.bench.warmup, 2);
    assert_eq!(cli.bench.seed, 42);
    assert_eq!(cli.bench.ops, vec![Op::Read, Op::Create]);
    assert!(!cli.bench.no_http_baseline);
    let cli = Cli::try_parse_from(["ember", "--url", "http://h/fhir"]).expect("parse");
    assert_eq!(
        cli.bench.ops,
        [Op::Create, Op::Read, Op::ReadXml, Op::Update, Op::Delete]
    );
}

#[test]
fn queue_op_parses_and_is_not_a_default() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }
    let cli = Cli::try_parse_from(["ember", "--url", "http://h/fhir"]).expect("parse");
    assert!(!cli.bench.ops.contains(&Op::Queue));
    let cli = Cli::try_parse_from([
        "ember",
        "--url",
        "http://h/fhir",
        "--ops",
        "queue",
        "--db",
        "postgres://u@h/db",
    ])
    .expect("parse");
    assert_eq!(cli.bench.ops, vec![Op::Queue]);
    assert!(validate(&cli.bench).is_ok());
}

#[test]
fn queue_needs_a_postgres_db() {
    let mut a = args("http://127.0.0.1:1/fhir".into());
    a.ops = vec![Op::Queue];
    let err = validate(&a).expect_err("no --db");
    assert!(
        format!("{err:#}").contains("--ops queue needs --db postgres://"),
        "{err:#}"
    );
    a.db = Some("sqlite:///tmp/ember.db".into());
    let err = validate(&a).expect_err("sqlite");
    assert!(format!("{err:#}").contains("PostgreSQL only"), "{err:#}");
    a.db = Some("postgres://postgres@127.0.0.1:5432/x".into());
    assert!(matches!(validate(&a), Ok(Some(Db::Postgres(_)))));
    // Without the queue phase SQLite stays fine for the storage ceiling.
    a.ops = vec![Op::Read];
    a.db = Some("sqlite:///tmp/ember.db".into());
    assert!(matches!(validate(&a), Ok(Some(Db::Sqlite(_)))));
}

#[tokio::test]
async fn queue_with_sqlite_fails_before_touching_the_server() {
    // Nothing listens on the URL: the argument error must come first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let mut a = args(format!("http://{addr}/fhir"));
    a.ops = vec![Op::Create, Op::Queue];
    a.db = Some("sqlite:///tmp/ember.db".into());
    let err = run(a).await.expect_err("must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("PostgreSQL only") && !msg.contains("not reachable"),
        "{msg}"
    );
}

#[test]
fn submit_op_parses_and_is_not_a_default() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }
    let cli = Cli::try_parse_from(["ember", "--url", "http://h/fhir"]).expect("parse");
    assert!(!cli.bench.ops.contains(&Op::Submit));
    let cli =
        Cli::try_parse_from(["ember", "--url", "http://h/fhir", "--ops", "submit"]).expect("parse");
    assert_eq!(cli.bench.ops, vec![Op::Submit]);
    // It needs no --db.
    assert!(matches!(validate(&cli.bench), Ok(None)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_phase_against_mock_server() {
    let addr = start_mock().await;
    let dir = std::env::temp_dir().join(format!("ember-bench-submit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let json_path = dir.join("report.json");
    let mut a = args(format!("http://{addr}/fhir"));
    a.ops = vec![Op::Create, Op::Submit];
    a.no_http_baseline = true;
    a.json = Some(json_path.clone());
    run(a).await.expect("bench run");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json written"))
            .expect("valid json");
    let _ = std::fs::remove_dir_all(&dir);

    let s = &report["submit"];
    let http = &s["http"];
    assert_eq!(http["name"], "submit");
    assert!(http["requests"].as_u64().unwrap_or(0) > 20, "{s}");
    assert_eq!(http["errors"], 0, "{s}");
    assert_eq!(s["patients"], 64);
    // Each successful submission got its Task, with the priority of its colour.
    assert_eq!(s["drained"], true, "{s}");
    let submitted = s["submitted"].as_u64().expect("submitted");
    assert_eq!(s["tasks"].as_u64(), Some(submitted), "{s}");
    let (d, p) = (&s["drawn"], &s["priorities"]);
    assert_eq!(
        (&p["routine"], &p["urgent"], &p["asap"]),
        (&d["green"], &d["yellow"], &d["red"]),
        "{s}"
    );
    // Every 10th of each worker was a sample, and the lag includes the triage delay.
    let samples = s["lag_samples"].as_u64().expect("samples");
    let per_worker_max = http["requests"].as_u64().unwrap_or(0) / 10 + 2;
    assert!(samples >= 2 && samples <= per_worker_max, "{s}");
    assert_eq!(s["lag_timeouts"], 0, "{s}");
    let lag = &s["lag"];
    assert!(
        lag["p50_ms"].as_f64().unwrap_or(0.0) >= TRIAGE_DELAY.as_millis() as f64,
        "{s}"
    );
    assert!(lag["p99_ms"].as_f64().unwrap_or(0.0) < 1000.0, "{s}");
    // The Task comes after the answer, so the first poll for a sample cannot find it.
    assert!(s["lag_polls"].as_u64().unwrap_or(0) >= 2, "{s}");
    assert!(s["drain_secs"].as_f64().unwrap_or(99.0) < 5.0, "{s}");
    // Compared with the create phase of the same run.
    let create = report["phases"][0]["requests_per_sec"]
        .as_f64()
        .expect("create");
    let percent = s["percent_of_create"].as_f64().expect("percent");
    let expected = http["requests_per_sec"].as_f64().unwrap() / create * 100.0;
    assert!((percent - expected).abs() < 0.01, "{percent} vs {expected}");
    let ratios = report["ratios"].as_array().expect("ratios");
    assert!(
        ratios.iter().any(|r| r["name"] == "submit / create"),
        "{ratios:?}"
    );
}

#[tokio::test]
async fn submit_setup_failure_is_an_error() {
    // A server without $submit-measurement's setup: every POST to the base fails.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let mut r = Response::new(Full::new(Bytes::from_static(b"{}")));
                        if req.method() != ::http::Method::GET {
                            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
                        }
                        Ok::<_, Infallible>(r)
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let mut a = args(format!("http://{addr}/fhir"));
    a.ops = vec![Op::Submit];
    let err = run(a).await.expect_err("must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("submit phase failed") && msg.contains("submit setup") && msg.contains("405"),
        "{msg}"
    );
}

#[test]
fn cds_op_parses_and_is_not_a_default() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }
    let cli = Cli::try_parse_from(["ember", "--url", "http://h/fhir"]).expect("parse");
    assert!(!cli.bench.ops.contains(&Op::Cds));
    assert_eq!(
        (
            cli.bench.dataset_seed,
            cli.bench.cds_patients,
            cli.bench.cds_submissions
        ),
        (42, 200, 4)
    );
    let cli = Cli::try_parse_from([
        "ember",
        "--url",
        "http://h/fhir",
        "--ops",
        "cds",
        "--dataset-seed",
        "7",
        "--cds-patients",
        "30",
        "--cds-submissions",
        "2",
    ])
    .expect("parse");
    assert_eq!(cli.bench.ops, vec![Op::Cds]);
    assert_eq!(
        (
            cli.bench.dataset_seed,
            cli.bench.cds_patients,
            cli.bench.cds_submissions
        ),
        (7, 30, 2)
    );
    assert!(matches!(validate(&cli.bench), Ok(None)));
    let mut none = cli.bench.clone();
    none.cds_patients = 0;
    assert!(format!("{:#}", validate(&none).expect_err("no patients")).contains("--cds-patients"));
}

/// Loads the groups (Patient, CareTeam, ServiceRequests, CarePlan) of the first
/// `patients` of `ember dataset --seed seed` into the mock, their `urn:uuid:`
/// references resolved as a FHIR server resolves them in a transaction.
async fn load_dataset_groups(url: &str, seed: u64, patients: u64) {
    let g = crate::dataset::Generator {
        seed,
        patients,
        days: 0,
        deep: Vec::new(),
    };
    let mut conn = Conn::new(Arc::new(Target::parse(url).expect("url")));
    for key in g.patient_keys() {
        let items = g.patient_group(key);
        let mut text = crate::dataset::bundle(&items).to_string();
        for i in &items {
            text = text.replace(
                &format!("\"reference\":\"{}\"", i.full_url),
                &format!("\"reference\":\"{}/{}\"", i.res_type, i.id),
            );
        }
        let reply = conn
            .send(::http::Method::POST, "/fhir/", Some(Bytes::from(text)))
            .await
            .expect("load");
        assert_eq!(reply.status, 200, "{:?}", reply.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cds_phase_against_mock_server() {
    let addr = start_mock().await;
    let url = format!("http://{addr}/fhir");
    load_dataset_groups(&url, 42, 5).await;
    let dir = std::env::temp_dir().join(format!("ember-bench-cds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let json_path = dir.join("report.json");
    let mut a = args(url.clone());
    a.ops = vec![Op::Cds];
    a.no_http_baseline = true;
    a.json = Some(json_path.clone());
    a.cds_patients = 6;
    a.cds_submissions = 3;
    run(a).await.expect("bench run");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json written"))
            .expect("valid json");
    let _ = std::fs::remove_dir_all(&dir);

    let c = &report["cds"];
    // 5 of the 6 patients asked for are there, each with 3 submissions triaged.
    assert_eq!(
        (c["patients_requested"].as_u64(), c["patients"].as_u64()),
        (Some(6), Some(5)),
        "{c}"
    );
    assert_eq!(c["submitted"], 15, "{c}");
    assert_eq!(c["submit_errors"], 0, "{c}");
    assert_eq!(c["tasks_ready"], true, "{c}");
    assert_eq!(c["tasks"], 15, "{c}");
    assert_eq!(c["prefetch_tasks"], 15, "{c}");
    assert_eq!(c["patients_without_tasks"], 0, "{c}");
    assert_eq!(c["fhir_server"], url.as_str());
    for mode in ["with_prefetch", "own_store"] {
        let p = &c[mode];
        assert!(p["requests"].as_u64().unwrap_or(0) > 10, "{mode}: {c}");
        assert_eq!(p["errors"], 0, "{mode}: {c}");
        let cards = &c[format!("{mode}_cards")];
        assert!(cards["answers"].as_u64().unwrap_or(0) > 10, "{mode}: {c}");
        assert!(
            cards["critical"].as_u64().unwrap_or(0)
                + cards["warning"].as_u64().unwrap_or(0)
                + cards["info"].as_u64().unwrap_or(0)
                >= cards["answers"].as_u64().unwrap_or(0),
            "every patient has a card: {c}"
        );
    }
    assert_eq!(c["with_prefetch"]["name"], "cds prefetch");
    assert_eq!(c["own_store"]["name"], "cds own store");
    // Both modes see the same Tasks, so the same cards.
    assert_eq!(c["card_mismatches"], 0, "{c}");
    assert!(
        c["p99_own_over_prefetch"].as_f64().unwrap_or(0.0) > 0.0,
        "{c}"
    );
    // One-second windows, the own store's after the prefetch's.
    let window = |key: &str| -> Vec<i64> {
        c[key]
            .as_array()
            .expect("window")
            .iter()
            .filter_map(serde_json::Value::as_i64)
            .collect()
    };
    let (with, own) = (
        window("with_prefetch_window_us"),
        window("own_store_window_us"),
    );
    assert_eq!((with[1] - with[0], own[1] - own[0]), (1_000_000, 1_000_000));
    assert!(own[0] >= with[1], "{c}");
    let notes: Vec<&str> = report["notes"]
        .as_array()
        .expect("notes")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("only 5 of the 6 patients")),
        "{notes:?}"
    );
    assert!(report["phases"].as_array().is_some_and(Vec::is_empty));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cds_without_the_dataset_is_an_error() {
    let addr = start_mock().await;
    let mut a = args(format!("http://{addr}/fhir"));
    a.ops = vec![Op::Cds];
    a.no_http_baseline = true;
    let err = run(a).await.expect_err("must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("cds phase failed") && msg.contains("ember dataset --seed 42"),
        "{msg}"
    );
}
