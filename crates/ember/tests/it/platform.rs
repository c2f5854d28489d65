//! The platform contract, on the real `ember` binary: probes, metrics, `--print-config`,
//! draining on SIGTERM, `ember check`, the cache bus and span export. The logging
//! model, configuration strictness and the multi-instance scenarios are in the
//! conformance suite (`conformance.rs`).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{self, Backend, Process, TestDb, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_metrics() {
    let s = TestServer::start(Backend::Sqlite).await;
    let root = format!("http://{}", s.addr);
    assert_eq!(s.get(&format!("{root}/livez")).await.status, 200);
    let ready = s.get(&format!("{root}/readyz")).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(s.get(&format!("{root}/healthz")).await.status, 200);
    let created = s.post("Patient", &json!({"resourceType": "Patient"})).await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&format!("Patient/{id}")).await.status, 200);
    assert_eq!(s.get("Patient/does-not-exist").await.status, 404);
    let metrics = s.get(&format!("{root}/metrics")).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        text.contains(
            r#"ember_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"ember_http_requests_total{method="GET",route="/fhir/{type}/{id}",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"ember_http_requests_total{method="POST",route="/fhir/{type}",status="201"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("ember_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"ember_db_pool_connections{state="max"}"#),
        "{text}"
    );
    assert!(
        !text.contains(&id),
        "metrics must carry route templates, not ids"
    );
}

#[test]
fn print_config_masks_secrets() {
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["serve", "--print-config"])
        .env(
            "EMBER_DATABASE_URL",
            "postgres://ember:hunter2@db.internal/ember",
        )
        .env("EMBER_MAX_COUNT", "500")
        .output()
        .expect("run ember");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("EMBER_DATABASE_URL=postgres://ember:****@db.internal/ember  (environment)"),
        "{text}"
    );
    assert!(
        text.contains("EMBER_MAX_COUNT=500  (environment)"),
        "{text}"
    );
    assert!(
        text.contains("EMBER_LISTEN=127.0.0.1:8080  (default)"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
}

/// SIGTERM: readiness turns 503 at once while requests are still served (with
/// `Connection: close`) for the shutdown delay, then the process exits 0 in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_then_exits() {
    let db = TestDb::new(Backend::Sqlite).await;
    let p = Process::spawn(
        &db.url,
        &[
            ("EMBER_SHUTDOWN_DELAY_MS", "1500"),
            ("EMBER_SHUTDOWN_GRACE_MS", "4000"),
        ],
    );
    let root = format!("http://{}", p.addr);
    assert_eq!(p.http.get(&format!("{root}/readyz")).await.status, 200);
    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let mut saw_not_ready = false;
    while sent.elapsed() < Duration::from_millis(1000) {
        if p.http.get(&format!("{root}/readyz")).await.status == 503 {
            saw_not_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_not_ready, "readiness did not turn 503 after SIGTERM");
    let during = p.http.get("metadata").await;
    assert_eq!(
        during.status, 200,
        "requests are still served while draining"
    );
    assert_eq!(during.header("connection"), Some("close"));
    let (status, _) = tokio::task::spawn_blocking(move || p.wait())
        .await
        .expect("wait");
    assert!(status.success(), "{status:?}");
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(1500),
        "exited before the shutdown delay: {took:?}"
    );
    assert!(
        took < Duration::from_secs(4),
        "exited after the grace period: {took:?}"
    );
}

/// A second signal during draining exits at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_signal_exits_at_once() {
    let db = TestDb::new(Backend::Sqlite).await;
    let p = Process::spawn(
        &db.url,
        &[
            ("EMBER_SHUTDOWN_DELAY_MS", "5000"),
            ("EMBER_SHUTDOWN_GRACE_MS", "9000"),
        ],
    );
    let pid = p.child.id().to_string();
    let sent = Instant::now();
    Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = tokio::task::spawn_blocking(move || p.terminate_keep_logs())
        .await
        .expect("wait");
    assert!(status.success(), "{status:?}");
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
}

/// `ember check` against a live instance passes (search and CDS Hooks are skipped
/// while Ember does not offer them), and fails against nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_test_command() {
    let db = TestDb::new(Backend::Sqlite).await;
    let p = Process::spawn(&db.url, &[]);
    let text = common::run_ember_ok(&["check", "--url", &p.http.base]).await;
    for step in ["metadata", "create", "read", "update", "search", "delete"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("PASS") && l.contains(step)),
            "{step}: {text}"
        );
    }
    // CDS Hooks answer on loopback: discovery and one patient-view call pass.
    for step in ["cds ", "cds-call"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("PASS") && l.contains(step)),
            "{step}: {text}"
        );
    }

    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}/fhir", dead.local_addr().unwrap());
    drop(dead);
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .args(["check", "--url", &dead_url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL"));
}

/// P2: two instances on one PostgreSQL, each with its own cache. An invalidation
/// published on one reaches both; when the listening connections are killed they
/// reconnect by themselves, drop everything they may have missed, and keep listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_bus_reaches_every_instance_and_survives_reconnects() {
    use ember_platform::cache::{CacheHub, TtlCache};
    use std::sync::Arc;

    let db = TestDb::new(Backend::Postgres).await;
    let options = ember_store::StoreOptions {
        url: db.url.clone(),
        pool_size: 2,
        acquire_timeout: Duration::from_secs(5),
    };
    let mut instances = Vec::new();
    for _ in 0..2 {
        let store = ember_store::open(&options).await.expect("open store");
        let hub = CacheHub::new();
        let cache = Arc::new(TtlCache::<String>::new(
            "things",
            100,
            Duration::from_secs(600),
            None,
        ));
        hub.register(cache.clone());
        store.subscribe(Arc::new(move |m: &str| hub.on_message(m)));
        instances.push((store, cache));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    async fn until(what: &str, f: impl Fn() -> bool) {
        let started = Instant::now();
        while !f() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "timed out: {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    for (_, cache) in &instances {
        cache.insert("k", "v".to_owned());
        cache.insert("other", "v".to_owned());
    }
    instances[0]
        .0
        .publish(&CacheHub::message("things", Some("k")))
        .await
        .expect("publish");
    until("both instances drop k", || {
        instances.iter().all(|(_, c)| c.get("k").is_none())
    })
    .await;
    assert!(
        instances.iter().all(|(_, c)| c.get("other").is_some()),
        "only k is invalidated"
    );

    // Kill the listening connections: each instance reconnects and resynchronizes.
    let sql = db.pg_client().await;
    let killed: i64 = sql
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE query LIKE 'LISTEN \"ember_bus_' || current_schema() || '\"%'",
            &[],
        )
        .await
        .expect("terminate listeners")
        .get(0);
    assert_eq!(killed, 2, "two listening connections");
    until("both instances resync after reconnecting", || {
        instances.iter().all(|(_, c)| c.get("other").is_none())
    })
    .await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    for (_, cache) in &instances {
        cache.insert("again", "v".to_owned());
    }
    instances[1]
        .0
        .publish(&CacheHub::message("things", Some("again")))
        .await
        .expect("publish");
    until("the bus works after the reconnect", || {
        instances.iter().all(|(_, c)| c.get("again").is_none())
    })
    .await;
}

/// With OPENTELEMETRY_COLLECTOR_URL set, a request arrives at the collector as a span
/// of the caller's trace, child of the caller's span, sent with Ember's User-Agent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector() {
    use std::sync::{Arc, Mutex};

    let received: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let sink = received.clone();
    let collector = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let sink = sink.clone();
            async move {
                let agent = headers
                    .get("user-agent")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                sink.lock()
                    .unwrap()
                    .push((agent, serde_json::from_str(&body).unwrap_or_default()));
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let db = TestDb::new(Backend::Sqlite).await;
    let p = Process::spawn(
        &db.url,
        &[
            ("OPENTELEMETRY_COLLECTOR_URL", &collector_url),
            ("EMBER_APP_NAME", "otel-test"),
        ],
    );
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = p
        .http
        .send("GET", "metadata", &[("traceparent", traceparent)], None)
        .await;
    assert_eq!(r.status, 200);
    let started = Instant::now();
    let span = loop {
        let found = received.lock().unwrap().iter().find_map(|(agent, body)| {
            body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()?
                .iter()
                .find(|s| s["traceId"] == "0af7651916cd43dd8448eb211c80319c")
                .map(|s| {
                    (
                        agent.clone(),
                        s.clone(),
                        body["resourceSpans"][0]["resource"].clone(),
                    )
                })
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no span reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (agent, span, resource) = span;
    assert_eq!(span["parentSpanId"], "b7ad6b7169203331");
    assert_eq!(span["name"], "GET /fhir/metadata");
    assert_eq!(span["kind"], 2);
    assert_eq!(
        resource["attributes"][0]["value"]["stringValue"],
        "otel-test"
    );
    assert!(
        agent.starts_with("Ember/") && agent.ends_with("(otel-test)"),
        "{agent}"
    );
}

/// The probe paths are configurable; readiness keeps answering at /healthz too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_paths_are_configurable() {
    let db = TestDb::new(Backend::Sqlite).await;
    let p = Process::spawn(
        &db.url,
        &[
            ("EMBER_LIVENESS_PATH", "/health/live"),
            ("EMBER_READINESS_PATH", "/health/ready"),
        ],
    );
    let root = format!("http://{}", p.addr);
    for (path, status) in [
        ("/health/live", 200),
        ("/health/ready", 200),
        ("/healthz", 200),
        ("/livez", 404),
        ("/readyz", 404),
    ] {
        assert_eq!(
            p.http.get(&format!("{root}{path}")).await.status,
            status,
            "{path}"
        );
    }
}
