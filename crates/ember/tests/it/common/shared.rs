//! The part of the harness that the platform-conformance suite (`tests/conformance.rs`)
//! shares, by `#[path]`, so everything here is used by both test binaries: a database
//! per test, a minimal HTTP client, and real `ember serve` processes.
//!
//! PostgreSQL tests need `EMBER_TEST_DATABASE_URL` (`cargo xtask test` provides it);
//! each test gets its own schema, so tests run in parallel. SQLite tests get their
//! own temporary file.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Which storage backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server for tests. Panics (fails the test) when unset: tests never skip.
fn postgres_url() -> String {
    std::env::var("EMBER_TEST_DATABASE_URL")
        .expect("EMBER_TEST_DATABASE_URL must name a PostgreSQL database; run the tests with `cargo xtask test`")
}

/// A database of its own for one test: a PostgreSQL schema or a SQLite file.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Schema { admin_url: String, schema: String },
    Dir(std::path::PathBuf),
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("ember-test-{tag}"));
                std::fs::create_dir_all(&dir).expect("temp dir");
                TestDb {
                    url: format!("sqlite://{}", dir.join("ember.db").display()),
                    cleanup: Cleanup::Dir(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_url();
                let schema = format!("t_{tag}");
                let (client, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                    .await
                    .expect("connect to EMBER_TEST_DATABASE_URL");
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .await
                    .expect("create schema");
                let sep = if admin_url.contains('?') { '&' } else { '?' };
                let url = format!("{admin_url}{sep}options=-csearch_path%3D{schema}");
                TestDb {
                    url,
                    cleanup: Cleanup::Schema { admin_url, schema },
                }
            }
        }
    }

    /// A direct connection to this test's schema (PostgreSQL only).
    pub async fn pg_client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Schema { admin_url, schema } => {
                let (url, sql) = (
                    admin_url.clone(),
                    format!("DROP SCHEMA IF EXISTS {schema} CASCADE"),
                );
                // Drop runs outside any runtime guarantee; use a thread with its own runtime.
                let _ = std::thread::spawn(move || {
                    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    else {
                        return;
                    };
                    rt.block_on(async {
                        if let Ok((client, conn)) =
                            tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                        {
                            tokio::spawn(conn);
                            let _ = client.batch_execute(&sql).await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// An HTTP response, fully read.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}; content-type {:?}): {}",
                self.header("content-type"),
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A minimal HTTP client for tests.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    /// The FHIR base URL, e.g. `http://127.0.0.1:1234/fhir`.
    pub base: String,
}

impl Http {
    pub fn new(base: String) -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base,
        }
    }

    /// Like [`Http::send`], returning transport failures instead of panicking.
    pub async fn try_send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Result<Resp, String> {
        let body = body.map(|b| Bytes::from(b.to_owned()));
        self.try_send_bytes(method, path, headers, body).await
    }

    /// Like [`Http::try_send`], with a body of any bytes.
    pub async fn try_send_bytes(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Resp, String> {
        let url = if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}/{}", self.base, path.trim_start_matches('/'))
        };
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?)
            .uri(&url);
        let has_content_type = headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        if body.is_some() && !has_content_type {
            req = req.header("content-type", "application/fhir+json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        let resp = tokio::time::timeout(Duration::from_secs(60), self.client.request(req))
            .await
            .map_err(|_| format!("{method} {url} timed out"))?
            .map_err(|e| format!("{method} {url} failed: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("{method} {url}: reading the body: {e}"))?
            .to_bytes();
        Ok(Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// A real `ember serve` process (the binary under test).
pub struct Process {
    pub child: Child,
    pub http: Http,
    pub addr: SocketAddr,
    /// stdout lines after the ready line, collected in the background.
    pub logs: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `ember serve` on an ephemeral port with the given database and extra
    /// environment, and waits until it logs that it is ready.
    pub fn spawn(database_url: &str, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember"));
        cmd.arg("serve");
        Self::spawn_command(cmd, database_url, env)
    }

    /// Like [`Process::spawn`], for a prepared command that ends in `ember serve` (for
    /// example run through `setpriv` as another user).
    pub fn spawn_command(mut cmd: Command, database_url: &str, env: &[(&str, &str)]) -> Self {
        cmd.env("EMBER_LISTEN", "127.0.0.1:0")
            .env("EMBER_DATABASE_URL", database_url)
            .env("EMBER_SHUTDOWN_DELAY_MS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ember");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = ready_address(&line) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                if let Ok(mut logs) = sink.lock() {
                    logs.push(line);
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
            // A `Child` is not killed when dropped: do not leave it running.
            let _ = child.kill();
            let _ = child.wait();
            panic!("ember did not log that it is ready within 30 s (the ready line is at INFO)");
        };
        Process {
            child,
            http: Http::new(format!("http://{addr}/fhir")),
            addr,
            logs,
        }
    }

    /// Sends SIGTERM (again, if already sent), waits for the exit, and returns the exit
    /// status and every stdout line.
    pub fn terminate_keep_logs(self) -> (std::process::ExitStatus, Vec<String>) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.wait()
    }

    /// Waits for the process to exit by itself; returns the exit status and every stdout line.
    pub fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.child.wait().expect("wait");
        // Give the reader thread a moment to drain the pipe.
        std::thread::sleep(Duration::from_millis(100));
        let lines = self.logs.lock().map(|l| l.clone()).unwrap_or_default();
        (status, lines)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the P7 log line `{"body": "ember is ready listen=127.0.0.1:1234 …", …}`.
fn ready_address(line: &str) -> Option<SocketAddr> {
    let v: Value = serde_json::from_str(line).ok()?;
    let body = v.get("body")?.as_str()?.strip_prefix("ember is ready")?;
    body.split_whitespace()
        .find_map(|kv| kv.strip_prefix("listen="))?
        .parse()
        .ok()
}
