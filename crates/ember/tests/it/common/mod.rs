//! The test harness: a real Ember HTTP server in the test process on an ephemeral port,
//! on either store (`TestServer`, `both_stores!`), and the assertions the tests share.
//! Databases, the HTTP client and `ember serve` processes are in `shared`, which the
//! conformance suite uses too; the R4 examples package is in `corpus`.

pub mod corpus;
pub mod issuer;
mod shared;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use shared::{Backend, Http, Process, Resp, TestDb};

/// Runs each named `async fn(&TestServer)` as two tests, one per store:
/// `both_stores!(create_then_read, update_conflicts);` makes `sqlite::create_then_read`,
/// `postgres::create_then_read`, and so on.
macro_rules! both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = $crate::common::TestServer::start($crate::common::Backend::Sqlite).await;
                    super::$name(&server).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = $crate::common::TestServer::start($crate::common::Backend::Postgres).await;
                    super::$name(&server).await;
                }
            )+
        }
    };
}

impl TestDb {
    /// The single `bigint` a query on this test's schema returns (PostgreSQL only).
    pub async fn sql_i64(&self, sql: &str) -> i64 {
        self.pg_client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }
}

/// Runs the `ember` binary with `args` in `dir` off the runtime's threads: its exit
/// status (-1 when killed by a signal), standard output and standard error.
pub async fn run_ember(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let dir = dir.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_ember"))
            .args(&owned)
            .current_dir(&dir)
            .output()
            .expect("run ember")
    })
    .await
    .expect("join");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the `ember` binary with `args` off the runtime's threads, asserts that it
/// succeeded, and returns its standard output.
pub async fn run_ember_ok(args: &[&str]) -> String {
    let (code, out, err) = run_ember(Path::new("."), args).await;
    assert_eq!(code, 0, "ember {args:?}: {out}\n{err}");
    out
}

/// A folder of its own under the system's temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Standard base64 with padding (`Binary.data`).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Asserts the status, with the body in the message.
#[track_caller]
pub fn expect(resp: &Resp, status: u16) {
    assert_eq!(
        resp.status.as_u16(),
        status,
        "unexpected status; body: {}",
        String::from_utf8_lossy(&resp.body)
    );
}

/// Asserts an error status with an OperationOutcome body; returns the diagnostics.
#[track_caller]
pub fn expect_outcome(resp: &Resp, status: u16) -> String {
    expect(resp, status);
    assert!(
        resp.header("content-type")
            .unwrap_or_default()
            .starts_with("application/fhir+json"),
        "{:?}",
        resp.header("content-type")
    );
    resp.outcome()
}

impl Resp {
    /// Asserts an OperationOutcome body with an error issue, and returns its diagnostics.
    pub fn outcome(&self) -> String {
        let body = self.json();
        assert_eq!(
            body["resourceType"], "OperationOutcome",
            "not an OperationOutcome: {body}"
        );
        assert!(body["issue"][0]["code"].is_string(), "{body}");
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Http {
    /// Sends a request; `path` is relative to the FHIR base (or absolute when it starts with `http`).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send("GET", path, &[], None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Resp {
        self.send("POST", path, &[], Some(&body.to_string())).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Resp {
        self.send("PUT", path, &[], Some(&body.to_string())).await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None).await
    }
}

/// An in-process Ember server on an ephemeral port.
pub struct TestServer {
    pub http: Http,
    pub db: TestDb,
    pub backend: Backend,
    pub addr: SocketAddr,
    pub repo: ember_repo::Repo,
    task: tokio::task::JoinHandle<()>,
    _background: ember_repo::Background,
}

impl std::ops::Deref for TestServer {
    type Target = Http;
    fn deref(&self) -> &Http {
        &self.http
    }
}

/// Settings a test can change before the server starts.
#[derive(Debug, Clone)]
pub struct TestSettings {
    pub max_body_bytes: usize,
    pub limits: ember_repo::Limits,
    pub telemed: ember_telemed::Settings,
    /// Token checks; `None` runs the server open.
    pub auth: Option<ember_auth::AuthSettings>,
    /// Origins allowed by CORS.
    pub cors_origins: Vec<String>,
    /// `EMBER_AUDIT`: `off`, `log` or `fhir`.
    pub audit: &'static str,
    /// `EMBER_CDS_CLIENTS`; empty runs the CDS services open (on loopback).
    pub cds_clients: Vec<ember_auth::CdsClient>,
    /// The public FHIR base URL (`EMBER_PUBLIC_BASE_URL`); from `Host` when unset.
    pub public_base_url: Option<String>,
}

impl Default for TestSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            limits: ember_repo::Limits {
                max_json_depth: 32,
                ..Default::default()
            },
            telemed: Default::default(),
            auth: None,
            cors_origins: Vec::new(),
            audit: "off",
            cds_clients: Vec::new(),
            public_base_url: None,
        }
    }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, TestSettings::default()).await
    }

    pub async fn start_with(backend: Backend, settings: TestSettings) -> Self {
        let db = TestDb::new(backend).await;
        let store = ember_store::open(&ember_store::StoreOptions {
            url: db.url.clone(),
            pool_size: 8,
            acquire_timeout: Duration::from_secs(10),
        })
        .await
        .expect("open store");
        let repo = ember_telemed::install(
            ember_repo::Repo::new(store, settings.limits),
            settings.telemed,
        );
        let metrics: Arc<ember_platform::metrics::Metrics> = Default::default();
        let (repo, subscriptions) = ember_subscriptions::install(
            repo,
            ember_platform::http_client::HttpClient::new("ember-test", Duration::from_secs(5)),
            Arc::clone(&metrics),
        );
        let background = repo.start_background();
        subscriptions
            .start(&repo)
            .await
            .expect("load the subscriptions");
        let lifecycle = ember_platform::Lifecycle::new();
        lifecycle.set_database_ok(true);
        lifecycle.mark_started();
        let audit = match settings.audit {
            "log" => ember_api::Audit::Log,
            "fhir" => ember_api::Audit::Fhir(ember_repo::audit::AuditSink::start(repo.clone())),
            _ => ember_api::Audit::Off,
        };
        let state = ember_api::AppState {
            repo: repo.clone(),
            lifecycle,
            metrics,
            spans: None,
            settings: Arc::new(ember_api::ApiSettings {
                base_path: "/fhir".into(),
                public_url: ember_platform::public_url::PublicUrl {
                    base_path: "/fhir".into(),
                    configured: settings.public_base_url,
                    ..Default::default()
                },
                max_body_bytes: settings.max_body_bytes,
                request_timeout: Duration::from_secs(30),
                liveness_path: "/livez".into(),
                readiness_path: "/readyz".into(),
                cors_origins: settings.cors_origins,
                kv_max_bytes: 1024,
            }),
            auth: settings.auth.map(|auth| {
                let client = ember_platform::http_client::HttpClient::new(
                    "ember-test",
                    Duration::from_secs(5),
                );
                Arc::new(ember_auth::Verifier::new(auth, client))
            }),
            audit,
            cds: if settings.cds_clients.is_empty() {
                ember_api::CdsTrust::Loopback
            } else {
                let client = ember_platform::http_client::HttpClient::new(
                    "ember-test",
                    Duration::from_secs(5),
                );
                ember_api::CdsTrust::Clients(Arc::new(ember_auth::CdsVerifier::new(
                    settings.cds_clients,
                    client,
                )))
            },
            client: ember_platform::http_client::HttpClient::new(
                "ember-test",
                Duration::from_secs(5),
            ),
            subscriptions,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = ember_api::service(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            http: Http::new(format!("http://{addr}/fhir")),
            db,
            backend,
            addr,
            repo,
            task,
            _background: background,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Process {
    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.terminate_keep_logs().0
    }
}
