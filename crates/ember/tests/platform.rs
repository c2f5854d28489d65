//! The platform contract, on the real `ember` binary: probes, metrics, the logging
//! model, configuration strictness and draining on SIGTERM.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Backend, Process, TestDb, TestServer};
use serde_json::{Value, json};

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

/// Every stdout line is a P7 JSON object; a CPR number sent in a search, an id and a
/// header never reaches the log; the access log names route templates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_the_model_and_hide_cpr_numbers() {
    let db = TestDb::new(Backend::Sqlite).await;
    let p = Process::spawn(
        &db.url,
        &[("EMBER_APP_NAME", "ember-test"), ("EMBER_LOG", "debug")],
    );
    let cpr = "0102031234";
    p.http
        .get(&format!("Patient?identifier=urn:oid:1.2.208.176.1.2|{cpr}"))
        .await;
    p.http.get(&format!("Patient/{cpr}")).await;
    p.http.get("Patient?name=010203-1234").await;
    p.http
        .send(
            "GET",
            "Patient/x",
            &[("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124")],
            None,
        )
        .await;
    let status = p.terminate_keep_logs();
    assert!(status.0.success(), "{:?}", status.0);
    let lines = status.1;
    assert!(lines.len() >= 5, "{lines:?}");
    let mut access = Vec::new();
    for line in &lines {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            ["app", "body", "id", "severity", "subject", "time", "type"],
            "{line}"
        );
        assert_eq!(v["app"], "ember-test");
        assert!(
            ["critical", "high", "medium", "low", "informational"]
                .contains(&v["severity"].as_str().unwrap())
        );
        assert!(["alarm", "alert", "event", "task"].contains(&v["type"].as_str().unwrap()));
        assert!(
            !line.contains(cpr) && !line.contains("010203-1234"),
            "CPR number in the log: {line}"
        );
        if v["subject"] == "ember_api::access" {
            access.push(v);
        }
    }
    let bodies: Vec<&str> = access.iter().map(|v| v["body"].as_str().unwrap()).collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("route=/fhir/{type}/{id}") && b.contains("status=404")),
        "{bodies:?}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("route=/fhir/{type}") && b.contains("status=501")),
        "{bodies:?}"
    );
    assert!(
        bodies.iter().all(|b| !b.contains("identifier")),
        "query values must not be logged: {bodies:?}"
    );
    assert!(
        access
            .iter()
            .any(|v| v["id"] == "463ac35c9f6413ad48485a3953bb6124"),
        "the incoming B3 trace id is the log id: {access:?}"
    );
}

#[test]
fn unknown_setting_refuses_to_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("serve")
        .env("EMBER_LISTN", "127.0.0.1:0")
        .output()
        .expect("run ember");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("EMBER_LISTN"), "{err}");
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
    let url = p.http.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(["check", "--url", &url])
            .output()
            .expect("run check")
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for step in ["metadata", "create", "read", "update", "delete"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("PASS") && l.contains(step)),
            "{step}: {text}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("SKIP") && l.contains("search")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("SKIP") && l.contains("cds")),
        "{text}"
    );

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
        hub.register("things", cache.clone());
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
