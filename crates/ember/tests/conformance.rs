//! The platform-conformance suite: real `ember` processes on the local PostgreSQL,
//! checked against the platform's rules (`../shared/DESIGN.md` §2). It prints a table
//! (rule, check, result) and fails when any check fails.
//!
//! It has its own `main` (`harness = false`) so that it can print the table, and
//! answers the libtest listing protocol so that `cargo test` and nextest both run it.

#[path = "it/common/shared.rs"]
mod common;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::pin::Pin;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Backend, Http, Process, TestDb};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

const SUITE: &str = "platform_conformance";

type CheckFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// One row of the table.
struct Check {
    rule: &'static str,
    name: &'static str,
    run: fn() -> CheckFuture,
}

fn checks() -> Vec<Check> {
    vec![
        Check {
            rule: "P3 P4 P5 P6",
            name: "rolling restart of 3 instances under load",
            run: || Box::pin(rolling_restart()),
        },
        Check {
            rule: "P3 P4",
            name: "SIGKILL in the middle of transactions",
            run: || Box::pin(hard_kill()),
        },
        Check {
            rule: "P5",
            name: "readiness follows a database outage",
            run: || Box::pin(database_outage()),
        },
        Check {
            rule: "P7",
            name: "JSON log lines, P7 fields, no CPR number",
            run: || Box::pin(logs()),
        },
        Check {
            rule: "P1 P12",
            name: "uid 10001, unwritable cwd and HOME",
            run: || Box::pin(no_root_no_disk()),
        },
        Check {
            rule: "P8 P9",
            name: "trace headers and User-Agent reach an outgoing target (shared client)",
            run: || Box::pin(propagation()),
        },
        Check {
            rule: "P11",
            name: "an unknown EMBER_* variable refuses to start",
            run: || Box::pin(unknown_setting()),
        },
    ]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("{SUITE}: test");
        }
        return ExitCode::SUCCESS;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| SUITE.contains(f.as_str())) {
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut rows = Vec::new();
    for check in checks() {
        let started = Instant::now();
        let result = runtime.block_on(async {
            match tokio::time::timeout(Duration::from_secs(180), tokio::spawn((check.run)())).await
            {
                Ok(Ok(result)) => result,
                Ok(Err(panic)) => Err(format!("panicked: {panic}")),
                Err(_) => Err("did not finish within 180 s".into()),
            }
        });
        rows.push((check.rule, check.name, result, started.elapsed()));
    }
    println!("\n| rule | check | result |\n| --- | --- | --- |");
    for (rule, name, result, took) in &rows {
        let cell = match result {
            Ok(detail) => format!("pass ({detail}; {:.1} s)", took.as_secs_f64()),
            Err(e) => format!("FAIL: {e}"),
        };
        println!("| {rule} | {name} | {cell} |");
    }
    let failed = rows.iter().filter(|r| r.2.is_err()).count();
    println!("\n{} passed, {failed} failed", rows.len() - failed);
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Starts `ember serve` without blocking the runtime while it waits for readiness.
async fn spawn_blocking_process(url: String, env: Vec<(&'static str, String)>) -> Process {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Process::spawn(&url, &env)
    })
    .await
    .expect("spawn ember")
}

fn sigterm(p: &Process) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
}

// ---------------------------------------------------------------------------------
// A small reverse proxy that routes round-robin to ready upstreams only, like a
// Kubernetes Service whose endpoints follow the readiness probe.

struct Upstream {
    addr: SocketAddr,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

#[derive(Default)]
struct Proxy {
    upstreams: Mutex<Vec<Upstream>>,
    next: AtomicUsize,
}

impl Proxy {
    /// Starts the proxy and returns its address.
    async fn start(self: &Arc<Self>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let proxy = Arc::clone(self);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let proxy = Arc::clone(&proxy);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let proxy = Arc::clone(&proxy);
                        async move { Ok::<_, Infallible>(proxy.forward(req).await) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        addr
    }

    /// Adds an upstream; it gets traffic once its `/readyz` answers 200 (polled every 100 ms).
    fn add(&self, addr: SocketAddr) {
        let ready = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&ready), Arc::clone(&stop));
        tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                let req = Request::get("/readyz")
                    .header("host", addr.to_string())
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let ok = matches!(
                    tokio::time::timeout(Duration::from_millis(300), send_to(addr, req)).await,
                    Ok(Ok(resp)) if resp.status() == StatusCode::OK
                );
                r.store(ok, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        self.upstreams
            .lock()
            .unwrap()
            .push(Upstream { addr, ready, stop });
    }

    fn remove(&self, addr: SocketAddr) {
        let mut ups = self.upstreams.lock().unwrap();
        if let Some(i) = ups.iter().position(|u| u.addr == addr) {
            ups[i].stop.store(true, Ordering::SeqCst);
            ups.remove(i);
        }
    }

    fn pick(&self) -> Option<SocketAddr> {
        let ups = self.upstreams.lock().unwrap();
        let ready: Vec<SocketAddr> = ups
            .iter()
            .filter(|u| u.ready.load(Ordering::SeqCst))
            .map(|u| u.addr)
            .collect();
        if ready.is_empty() {
            return None;
        }
        Some(ready[self.next.fetch_add(1, Ordering::Relaxed) % ready.len()])
    }

    async fn forward(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
            return status_only(StatusCode::BAD_REQUEST);
        };
        let Some(addr) = self.pick() else {
            return status_only(StatusCode::SERVICE_UNAVAILABLE);
        };
        let mut out = Request::builder().method(parts.method).uri(parts.uri);
        for (k, v) in &parts.headers {
            out = out.header(k, v);
        }
        let Ok(out) = out.body(Full::new(body)) else {
            return status_only(StatusCode::BAD_REQUEST);
        };
        match send_to(addr, out).await {
            Ok(resp) => resp,
            Err(_) => status_only(StatusCode::BAD_GATEWAY),
        }
    }
}

fn status_only(status: StatusCode) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

/// One request over a fresh HTTP/1.1 connection.
async fn send_to(
    addr: SocketAddr,
    req: Request<Full<Bytes>>,
) -> Result<Response<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Response::from_parts(parts, Full::new(body)))
}

// ---------------------------------------------------------------------------------

/// Three instances behind the proxy; a mixed read/write load runs while each
/// instance in turn gets SIGTERM and is replaced. No client request may fail, every
/// acknowledged write must be readable afterwards, and every instance must exit 0
/// within its grace period.
async fn rolling_restart() -> Result<String, String> {
    const DELAY_MS: u64 = 1200;
    const GRACE_MS: u64 = 6000;
    let db = TestDb::new(Backend::Postgres).await;
    let env = vec![
        ("EMBER_SHUTDOWN_DELAY_MS", DELAY_MS.to_string()),
        ("EMBER_SHUTDOWN_GRACE_MS", GRACE_MS.to_string()),
    ];
    let proxy = Arc::new(Proxy::default());
    let proxy_addr = proxy.start().await;
    let mut instances = Vec::new();
    for _ in 0..3 {
        let p = spawn_blocking_process(db.url.clone(), env.clone()).await;
        proxy.add(p.addr);
        instances.push(p);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = Http::new(format!("http://{proxy_addr}/fhir"));
    let stop = Arc::new(AtomicBool::new(false));
    let written: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let requests = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..6 {
        let (client, stop, written, failures, requests) = (
            client.clone(),
            stop.clone(),
            written.clone(),
            failures.clone(),
            requests.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let known = written.lock().unwrap().get((n as usize * 7919) % 1000).cloned();
                let result = match (n % 2, known) {
                    (0, Some((id, version))) => client.try_send("GET", &format!("Patient/{id}"), &[], None).await.and_then(|r| {
                        if r.status != 200 {
                            return Err(format!("read Patient/{id}: {}", r.status));
                        }
                        let v: i64 = r.json()["meta"]["versionId"].as_str().unwrap_or("0").parse().unwrap_or(0);
                        if v < version.parse().unwrap_or(1) { Err(format!("Patient/{id} went back to version {v}")) } else { Ok(()) }
                    }),
                    _ => {
                        let body = json!({"resourceType": "Patient", "identifier": [{"system": "urn:ember:rolling", "value": format!("{worker}-{n}")}]});
                        client.try_send("POST", "Patient", &[], Some(&body.to_string())).await.and_then(|r| {
                            if r.status != 201 {
                                return Err(format!("create: {} {}", r.status, String::from_utf8_lossy(&r.body)));
                            }
                            let v = r.json();
                            let id = v["id"].as_str().unwrap_or_default().to_owned();
                            written.lock().unwrap().push((id, v["meta"]["versionId"].as_str().unwrap_or("1").to_owned()));
                            Ok(())
                        })
                    }
                };
                requests.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = result {
                    failures.lock().unwrap().push(e);
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut exits = Vec::new();
    for _ in 0..3 {
        let fresh = spawn_blocking_process(db.url.clone(), env.clone()).await;
        proxy.add(fresh.addr);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let old = instances.remove(0);
        let addr = old.addr;
        let sent = Instant::now();
        sigterm(&old);
        let (status, _) = tokio::task::spawn_blocking(move || old.wait())
            .await
            .map_err(|e| e.to_string())?;
        let took = sent.elapsed();
        proxy.remove(addr);
        if !status.success() {
            return Err(format!("an instance exited with {status}"));
        }
        if took > Duration::from_millis(GRACE_MS + 500) {
            return Err(format!(
                "an instance took {took:?} to exit (grace {GRACE_MS} ms)"
            ));
        }
        exits.push(format!("{:.1}", took.as_secs_f64()));
        instances.push(fresh);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    for task in load {
        let _ = task.await;
    }

    let failures = failures.lock().unwrap().clone();
    if !failures.is_empty() {
        return Err(format!(
            "{} of {} requests failed, first: {}",
            failures.len(),
            requests.load(Ordering::SeqCst),
            failures[0]
        ));
    }
    let written = written.lock().unwrap().clone();
    for (id, _) in &written {
        let r = client
            .try_send("GET", &format!("Patient/{id}"), &[], None)
            .await?;
        if r.status != 200 {
            return Err(format!(
                "acknowledged Patient/{id} is not readable: {}",
                r.status
            ));
        }
    }
    for p in instances {
        sigterm(&p);
        let _ = tokio::task::spawn_blocking(move || p.wait()).await;
    }
    Ok(format!(
        "{} requests, 0 failed; {} writes read back; exits after {} s",
        requests.load(Ordering::SeqCst),
        written.len(),
        exits.join("/")
    ))
}

/// Transaction Bundles are in flight when an instance is killed with SIGKILL. Every
/// acknowledged transaction is complete, and no transaction is partly stored.
async fn hard_kill() -> Result<String, String> {
    const ENTRIES: usize = 10;
    let db = TestDb::new(Backend::Postgres).await;
    let victim = spawn_blocking_process(db.url.clone(), vec![]).await;
    let survivor = spawn_blocking_process(db.url.clone(), vec![]).await;
    // (transaction number, locations of its resources)
    type Acked = Vec<(usize, Vec<String>)>;
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let attempted = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let (http, acked, attempted) = (victim.http.clone(), acked.clone(), attempted.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..10_000usize {
                let n = attempted.fetch_add(1, Ordering::SeqCst);
                let marker = format!("hk-{n}-x");
                let mut entries = vec![json!({
                    "fullUrl": "urn:uuid:5a1e0000-0000-4000-8000-000000000001",
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": {"resourceType": "Patient", "identifier": [{"system": "urn:ember:hard-kill", "value": marker}]},
                })];
                for _ in 1..ENTRIES {
                    entries.push(json!({
                        "request": {"method": "POST", "url": "Observation"},
                        "resource": {"resourceType": "Observation", "status": "final",
                            "identifier": [{"system": "urn:ember:hard-kill", "value": marker}],
                            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                            "subject": {"reference": "urn:uuid:5a1e0000-0000-4000-8000-000000000001"}},
                    }));
                }
                let bundle = json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
                match http.try_send("POST", &http.base, &[("prefer", "return=minimal")], Some(&bundle.to_string())).await {
                    Ok(r) if r.status == 200 => {
                        let locations = r.json()["entry"]
                            .as_array()
                            .map(|e| e.iter().filter_map(|e| e["response"]["location"].as_str().map(str::to_owned)).collect())
                            .unwrap_or_default();
                        acked.lock().unwrap().push((n, locations));
                    }
                    _ => break,
                }
                let _ = (worker, round);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let _ = Command::new("kill")
        .args(["-KILL", &victim.child.id().to_string()])
        .status();
    for t in tasks {
        let _ = t.await;
    }
    drop(victim);
    let acked = acked.lock().unwrap().clone();
    if acked.is_empty() {
        return Err("no transaction was acknowledged before the kill".into());
    }
    let sql = db.pg_client().await;
    let mut partial = Vec::new();
    let attempted = attempted.load(Ordering::SeqCst);
    for n in 0..attempted {
        let marker = format!("%\"hk-{n}-x\"%");
        let count: i64 = sql
            .query_one(
                "SELECT count(*) FROM resource_versions WHERE body LIKE $1",
                &[&marker],
            )
            .await
            .map_err(|e| e.to_string())?
            .get(0);
        let was_acked = acked.iter().any(|(a, _)| *a == n);
        // All or nothing, and all when acknowledged.
        let complete = count == ENTRIES as i64;
        if !complete && (was_acked || count != 0) {
            partial.push(format!(
                "transaction {n}: {count} of {ENTRIES} resources stored (acknowledged: {was_acked})"
            ));
        }
    }
    if !partial.is_empty() {
        return Err(partial.join("; "));
    }
    for (_, locations) in &acked {
        for location in locations {
            let r = survivor.http.try_send("GET", location, &[], None).await?;
            if r.status != 200 {
                return Err(format!(
                    "acknowledged {location} is not readable: {}",
                    r.status
                ));
            }
        }
    }
    Ok(format!(
        "{} transactions acknowledged, {} attempted, none partial",
        acked.len(),
        attempted
    ))
}

/// A throwaway PostgreSQL cluster that can be stopped and started.
struct Cluster {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl Cluster {
    fn as_postgres(&self, program: &str, args: &[&str]) -> Command {
        let program = self.bin.join(program);
        // initdb and postgres refuse to run as root.
        if unsafe_is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program).args(args);
            cmd
        } else {
            let mut cmd = Command::new(program);
            cmd.args(args);
            cmd
        }
    }

    fn create() -> Result<Self, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL binaries in /usr/lib/postgresql: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .find(|b| b.join("initdb").exists())
            .ok_or("initdb not found under /usr/lib/postgresql")?;
        let dir = std::env::temp_dir().join(format!("ember-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        if unsafe_is_root() {
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .map_err(|e| e.to_string())?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let cluster = Cluster { dir, bin, port };
        let data = cluster.dir.join("data");
        let out = cluster
            .as_postgres(
                "initdb",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                ],
            )
            .stdout(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        cluster.start()?;
        Ok(cluster)
    }

    fn start(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let out = self
            .as_postgres(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "start",
                ],
            )
            .stdout(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl start failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn stop(&self) -> Result<(), String> {
        let data = self.dir.join("data");
        let out = self
            .as_postgres(
                "pg_ctl",
                &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
            )
            .stdout(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl stop failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

async fn wait_for(http: &Http, url: &str, status: u16, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if http
            .try_send("GET", url, &[], None)
            .await
            .is_ok_and(|r| r.status == status)
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The database goes away: readiness turns 503 within 2 s, liveness stays 200, API
/// calls get a 503 OperationOutcome; when the database returns, readiness and writes
/// come back by themselves and the process never exits.
async fn database_outage() -> Result<String, String> {
    let cluster = tokio::task::spawn_blocking(Cluster::create)
        .await
        .map_err(|e| e.to_string())??;
    let mut p = spawn_blocking_process(
        cluster.url(),
        vec![("EMBER_DB_ACQUIRE_TIMEOUT_MS", "1000".into())],
    )
    .await;
    let root = format!("http://{}", p.addr);
    wait_for(
        &p.http,
        &format!("{root}/readyz"),
        200,
        Duration::from_secs(5),
    )
    .await
    .ok_or("never ready")?;
    let created = p
        .http
        .try_send(
            "POST",
            "Patient",
            &[],
            Some(r#"{"resourceType":"Patient"}"#),
        )
        .await?;
    if created.status != 201 {
        return Err(format!("create before the outage: {}", created.status));
    }

    let cluster = tokio::task::spawn_blocking(move || cluster.stop().map(|()| cluster))
        .await
        .map_err(|e| e.to_string())??;
    let to_503 = wait_for(
        &p.http,
        &format!("{root}/readyz"),
        503,
        Duration::from_secs(5),
    )
    .await
    .ok_or("readiness stayed 200 with the database down")?;
    if to_503 > Duration::from_secs(2) {
        return Err(format!("readiness took {to_503:?} to turn 503"));
    }
    let live = p
        .http
        .try_send("GET", &format!("{root}/livez"), &[], None)
        .await?;
    if live.status != 200 {
        return Err(format!(
            "liveness answered {} during the outage",
            live.status
        ));
    }
    let during = p
        .http
        .try_send(
            "POST",
            "Patient",
            &[],
            Some(r#"{"resourceType":"Patient"}"#),
        )
        .await?;
    let outcome: Value = serde_json::from_slice(&during.body).unwrap_or_default();
    if during.status != 503 || outcome["resourceType"] != "OperationOutcome" {
        return Err(format!(
            "a write during the outage answered {} {}",
            during.status, outcome
        ));
    }

    let cluster = tokio::task::spawn_blocking(move || cluster.start().map(|()| cluster))
        .await
        .map_err(|e| e.to_string())??;
    let back = wait_for(
        &p.http,
        &format!("{root}/readyz"),
        200,
        Duration::from_secs(15),
    )
    .await
    .ok_or("readiness did not come back after the database returned")?;
    let after = p
        .http
        .try_send(
            "POST",
            "Patient",
            &[],
            Some(r#"{"resourceType":"Patient"}"#),
        )
        .await?;
    if after.status != 201 {
        return Err(format!(
            "a write after the outage answered {}",
            after.status
        ));
    }
    if p.child.try_wait().map_err(|e| e.to_string())?.is_some() {
        return Err("the process exited during the outage".into());
    }
    drop(cluster);
    Ok(format!(
        "503 after {:.2} s, ready again {:.2} s after restart",
        to_503.as_secs_f64(),
        back.as_secs_f64()
    ))
}

/// Every stdout line is P7 JSON; CPR numbers in a search, an id or a header never
/// reach the log; the access log names route templates; the B3 trace id is the log id.
async fn logs() -> Result<String, String> {
    let db = TestDb::new(Backend::Sqlite).await;
    let p = spawn_blocking_process(
        db.url.clone(),
        vec![("EMBER_APP_NAME", "ember-conformance".into())],
    )
    .await;
    let cpr = "0102031234";
    p.http
        .try_send(
            "GET",
            &format!("Patient?identifier=urn:oid:1.2.208.176.1.2|{cpr}"),
            &[],
            None,
        )
        .await?;
    p.http
        .try_send("GET", &format!("Patient/{cpr}"), &[], None)
        .await?;
    p.http
        .try_send(
            "GET",
            "Patient?name=010203-1234",
            &[("x-cpr", "010203-1234")],
            None,
        )
        .await?;
    p.http
        .try_send(
            "GET",
            "metadata",
            &[("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124")],
            None,
        )
        .await?;
    let (status, lines) = tokio::task::spawn_blocking(move || p.terminate_keep_logs())
        .await
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("exit {status}"));
    }
    let mut access = 0;
    let mut traced = false;
    for line in &lines {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e}): {line}"))?;
        let mut keys: Vec<&str> = v
            .as_object()
            .ok_or("not an object")?
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        if keys != ["app", "body", "id", "severity", "subject", "time", "type"] {
            return Err(format!("fields {keys:?} in {line}"));
        }
        if line.contains(cpr) || line.contains("010203-1234") {
            return Err(format!("a CPR number reached the log: {line}"));
        }
        if v["subject"] == "ember_api::access" {
            access += 1;
            let body = v["body"].as_str().unwrap_or_default();
            if !body.contains("route=/fhir/") || body.contains("identifier") {
                return Err(format!("access event without a route template: {body}"));
            }
            traced |= v["id"] == "463ac35c9f6413ad48485a3953bb6124";
        }
    }
    if access < 4 || !traced {
        return Err(format!("{access} access events, trace id seen: {traced}"));
    }
    Ok(format!("{} lines, {access} access events", lines.len()))
}

/// Runs as uid 10001 with an unwritable working directory and HOME, in PostgreSQL mode.
async fn no_root_no_disk() -> Result<String, String> {
    if !unsafe_is_root() {
        return Err("this check switches to uid 10001 and must run as root (as CI does)".into());
    }
    let db = TestDb::new(Backend::Postgres).await;
    let dir = std::env::temp_dir().join(format!("ember-noroot-{}", uuid::Uuid::new_v4().simple()));
    let bin = dir.join("ember");
    let cwd = dir.join("readonly");
    std::fs::create_dir_all(&cwd).map_err(|e| e.to_string())?;
    std::fs::copy(env!("CARGO_BIN_EXE_ember"), &bin).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o555))
        .map_err(|e| e.to_string())?;
    let url = db.url.clone();
    let (bin2, cwd2) = (bin.clone(), cwd.clone());
    let p = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=10001", "--regid=10001", "--clear-groups", "--"])
            .arg(&bin2)
            .arg("serve");
        cmd.current_dir(&cwd2)
            .env("HOME", "/nonexistent")
            .env("TMPDIR", "/nonexistent");
        Process::spawn_command(cmd, &url, &[])
    })
    .await
    .map_err(|e| e.to_string())?;
    let uid = std::fs::read_to_string(format!("/proc/{}/status", p.child.id()))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .unwrap_or_default();
    if uid.split_whitespace().nth(1) != Some("10001") {
        return Err(format!("the server runs as {uid:?}"));
    }
    let created = p
        .http
        .try_send(
            "POST",
            "Patient",
            &[],
            Some(r#"{"resourceType":"Patient"}"#),
        )
        .await?;
    if created.status != 201 {
        return Err(format!("create answered {}", created.status));
    }
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    let read = p
        .http
        .try_send("GET", &format!("Patient/{id}"), &[], None)
        .await?;
    if read.status != 200 {
        return Err(format!("read answered {}", read.status));
    }
    let written = std::fs::read_dir(&cwd).map(|d| d.count()).unwrap_or(0);
    let (status, _) = tokio::task::spawn_blocking(move || p.terminate_keep_logs())
        .await
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_dir_all(&dir);
    if written != 0 {
        return Err(format!("{written} files appeared in the working directory"));
    }
    if !status.success() {
        return Err(format!("exit {status}"));
    }
    Ok("CRUD works as uid 10001; exit 0".into())
}

async fn unknown_setting() -> Result<String, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_ember"))
        .arg("serve")
        .env("EMBER_DATABSE_URL", "postgres://x")
        .output()
        .map_err(|e| e.to_string())?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || !err.contains("EMBER_DATABSE_URL") {
        return Err(format!("exit {:?}: {err}", out.status.code()));
    }
    Ok("exit 2 naming the variable".into())
}

/// Every P8 header of an incoming request, and Ember's User-Agent, arrive at an echo
/// server standing in for an outgoing target, through the one shared HTTP client that
/// every outgoing call uses. (No feature of the binary calls out during a request yet,
/// so the client is driven directly, inside the request's trace context.)
async fn propagation() -> Result<String, String> {
    use ember_platform::http_client::HttpClient;
    use ember_platform::trace::{PROPAGATED, TraceContext};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "http://{}/echo",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let echo = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&head).to_lowercase())
    });
    let mut incoming = hyper::HeaderMap::new();
    for name in PROPAGATED {
        incoming.insert(
            hyper::header::HeaderName::from_static(name),
            hyper::header::HeaderValue::from_str(&format!("in-{name}"))
                .map_err(|e| e.to_string())?,
        );
    }
    let client = HttpClient::new("conformance", Duration::from_secs(5));
    let request = Request::get(&url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    TraceContext::from_headers(&incoming)
        .scope(client.send(request))
        .await
        .map_err(|e| e.to_string())?;
    let head = echo
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the echo server got nothing")?;
    let missing: Vec<&str> = PROPAGATED
        .iter()
        .copied()
        .filter(|n| !head.contains(&format!("{n}: in-{n}")))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing at the target: {missing:?}"));
    }
    if !head.contains("user-agent: ember/") || !head.contains("(conformance)") {
        return Err("no Ember User-Agent".into());
    }
    Ok(format!(
        "{} headers and the User-Agent arrived",
        PROPAGATED.len()
    ))
}
