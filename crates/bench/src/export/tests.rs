use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::manifest::{Item, plan};
use super::pacing::{CEILING, MIN_FLOOR};
use super::*;

/// A folder of its own under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ember-export-{}", uuid::Uuid::new_v4()));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn item(t: &str, url: &str, count: Option<u64>) -> Item {
    Item {
        res_type: t.into(),
        url: url.into(),
        count,
    }
}

#[test]
fn manifests_are_read_and_checked() {
    let body = br#"{"transactionTime": "2024-05-01T10:00:00.000Z", "request": "x",
        "requiresAccessToken": true,
        "output": [{"type": "Patient", "url": "http://h/f/1", "count": 2},
                   {"type": "Observation", "url": "http://h/f/2"}],
        "error": [{"type": "OperationOutcome", "url": "http://h/f/3", "count": 1}]}"#;
    let m = Manifest::parse(body).expect("a manifest");
    assert_eq!(
        m.transaction_time.as_deref(),
        Some("2024-05-01T10:00:00.000Z")
    );
    assert!(m.requires_access_token);
    assert_eq!(
        m.output,
        [
            item("Patient", "http://h/f/1", Some(2)),
            item("Observation", "http://h/f/2", None)
        ]
    );
    assert_eq!(m.error, [item("OperationOutcome", "http://h/f/3", Some(1))]);
    assert!(m.deleted.is_empty());
    // `error` may be left out; `output` may not.
    let m = Manifest::parse(br#"{"output": []}"#).expect("a manifest");
    assert!(m.output.is_empty() && m.error.is_empty() && !m.requires_access_token);
    let e = Manifest::parse(br#"{"resourceType": "OperationOutcome"}"#).expect_err("no output");
    assert!(format!("{e:#}").contains("output"), "{e:#}");
    let e = Manifest::parse(br#"{"output": [{"type": "Patient", "url": "u", "count": -1}]}"#)
        .expect_err("a negative count");
    assert!(format!("{e:#}").contains("not valid"), "{e:#}");
    // A type that could leave the folder is refused.
    let e = Manifest::parse(br#"{"output": [{"type": "../../etc/x", "url": "u"}]}"#)
        .expect_err("a path");
    assert!(format!("{e:#}").contains("not a resource type"), "{e:#}");
}

#[test]
fn files_are_named_by_type_and_number() {
    let m = Manifest {
        transaction_time: None,
        requires_access_token: false,
        output: vec![
            item("Patient", "u1", None),
            item("Observation", "u2", None),
            item("Patient", "u3", None),
        ],
        error: vec![item("OperationOutcome", "u4", None)],
        deleted: vec![],
    };
    let names: Vec<(String, bool, String)> = plan(&m)
        .into_iter()
        .map(|d| (d.name.display().to_string(), d.error, d.item.url))
        .collect();
    let row = |n: &str, e: bool, u: &str| (n.to_owned(), e, u.to_owned());
    assert_eq!(
        names,
        [
            row("Patient-1.ndjson", false, "u1"),
            row("Observation-1.ndjson", false, "u2"),
            row("Patient-2.ndjson", false, "u3"),
            row("error/OperationOutcome-1.ndjson", true, "u4"),
        ]
    );
    assert_eq!(
        part_path(Path::new("/x/error/Patient-1.ndjson")),
        Path::new("/x/error/.Patient-1.ndjson.part")
    );
}

#[test]
fn lines_are_counted_across_chunks() {
    let count = |chunks: &[&str]| {
        let mut c = LineCounter::default();
        for chunk in chunks {
            c.feed(chunk.as_bytes());
        }
        c.lines()
    };
    assert_eq!(count(&[]), 0);
    assert_eq!(count(&["{}\n{}\n"]), 2);
    assert_eq!(count(&["{\"a\"", ":1}\n{", "}"]), 2);
    assert_eq!(count(&["{}\r\n\n  \n{}\n", "\n"]), 2);
    assert_eq!(count(&["\n", "{}"]), 1);
}

#[test]
fn retry_after_is_seconds_or_a_date() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(
        retry_after(Some("120"), now),
        Some(Duration::from_secs(120))
    );
    assert_eq!(retry_after(Some(" 0 "), now), Some(Duration::ZERO));
    let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
    assert_eq!(
        retry_after(Some(&later), now),
        Some(Duration::from_secs(30))
    );
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
    assert_eq!(retry_after(Some(&earlier), now), Some(Duration::ZERO));
    assert_eq!(retry_after(Some("soon"), now), None);
    assert_eq!(retry_after(Some("-5"), now), None);
    assert_eq!(retry_after(None, now), None);
}

#[test]
fn polls_wait_within_floor_and_ceiling() {
    let s = Duration::from_secs;
    let mut p = Pacing::new(s(2));
    assert_eq!(p.next(Some(s(5))), s(5));
    assert_eq!(p.next(Some(Duration::ZERO)), s(2), "never below the floor");
    assert_eq!(p.next(Some(s(3600))), CEILING, "never above the ceiling");
    // Without Retry-After: the floor, then half as long again each time, up to the ceiling.
    let mut p = Pacing::new(s(2));
    let waits: Vec<Duration> = (0..4).map(|_| p.next(None)).collect();
    assert_eq!(
        waits,
        [
            s(2),
            s(3),
            Duration::from_millis(4500),
            Duration::from_millis(6750)
        ]
    );
    for _ in 0..20 {
        p.next(None);
    }
    assert_eq!(p.next(None), CEILING);
    // A floor above the ceiling wins; a zero floor is raised.
    assert_eq!(Pacing::new(s(90)).next(Some(s(1))), s(90));
    assert_eq!(
        Pacing::new(Duration::ZERO).next(Some(Duration::ZERO)),
        MIN_FLOOR
    );
    assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
    assert!(parse_seconds("-1").is_err() && parse_seconds("x").is_err());
}

fn args(url: &str, out: &Path) -> ExportArgs {
    ExportArgs {
        url: url.to_owned(),
        out: out.to_owned(),
        patient: false,
        group: None,
        types: vec![],
        since: None,
        type_filters: vec![],
        bearer: None,
        poll_interval: Duration::ZERO,
        concurrency: 2,
    }
}

#[test]
fn kick_off_requests_carry_the_level_and_parameters() {
    let target = Target::parse("http://h:1/fhir").expect("target");
    let out = Path::new("/nowhere");
    let path = |a: &ExportArgs| kick_off_path(&target, a).expect("a path");
    assert_eq!(path(&args("http://h:1/fhir", out)), "/fhir/$export");
    let mut a = args("http://h:1/fhir", out);
    a.patient = true;
    a.types = vec!["Patient".into(), " Observation".into()];
    a.since = Some("2024-05-01T10:00:00+02:00".into());
    a.type_filters = vec![
        "Observation?code=1234-5".into(),
        "Patient?active=true".into(),
    ];
    assert_eq!(
        path(&a),
        "/fhir/Patient/$export?_type=Patient%2CObservation&_since=2024-05-01T10%3A00%3A00%2B02%3A00\
         &_typeFilter=Observation%3Fcode%3D1234-5&_typeFilter=Patient%3Factive%3Dtrue"
    );
    a.group = Some("g-1".into());
    assert!(path(&a).starts_with("/fhir/Group/g-1/$export?_type="));
    a.group = Some("../x".into());
    let e = kick_off_path(&target, &a).expect_err("not an id");
    assert!(format!("{e:#}").contains("not a FHIR id"), "{e:#}");
}

#[test]
fn urls_the_server_names_are_located() {
    let target = Arc::new(Target::parse("http://127.0.0.1:8080/fhir").expect("target"));
    let at = locate(&target, "http://127.0.0.1:8080/fhir/$export-status/7").expect("same");
    assert!(at.home);
    assert_eq!(at.path, "/fhir/$export-status/7");
    let at = locate(&target, "/fhir/$export-file/7/Patient-1.ndjson?x=1").expect("relative");
    assert_eq!(
        (at.home, at.path.as_str()),
        (true, "/fhir/$export-file/7/Patient-1.ndjson?x=1")
    );
    let at = locate(&target, "http://files.example:9000/b/Patient-1.ndjson").expect("other");
    assert!(!at.home);
    assert_eq!(at.target.describe(), "files.example:9000");
    assert_eq!(at.path, "/b/Patient-1.ndjson");
    assert!(locate(&target, "https://files.example/x").is_err());
}

#[test]
fn error_answers_say_what_the_server_said() {
    let outcome = br#"{"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "_type: unknown type Nope"},
        {"severity": "error", "code": "processing", "details": {"text": "and more"}}]}"#;
    assert_eq!(
        server_says(StatusCode::BAD_REQUEST, outcome),
        "400 Bad Request: _type: unknown type Nope; and more"
    );
    assert_eq!(
        server_says(StatusCode::BAD_GATEWAY, b"upstream down"),
        "502 Bad Gateway: upstream down"
    );
    assert!(server_says(StatusCode::UNAUTHORIZED, b"").contains("--bearer"));
}

/// A Bulk Data server in a box: the status answers `busy` 429s, then 202s until
/// `polls` are done (forever when `None`), then the manifest.
#[derive(Default)]
struct Stub {
    polls: Option<u64>,
    busy: u64,
    seen: AtomicU64,
    deleted: AtomicBool,
    /// `(type, name, count in the manifest, body)`; no body is a 404.
    files: Vec<(
        &'static str,
        &'static str,
        Option<u64>,
        Option<&'static str>,
    )>,
    errors: Vec<(&'static str, &'static str)>,
    /// Files take this long to answer.
    file_delay: Duration,
    base: Mutex<String>,
}

async fn stub_kick_off(State(s): State<Arc<Stub>>, headers: HeaderMap) -> Response {
    assert_eq!(
        headers.get("prefer").and_then(|v| v.to_str().ok()),
        Some("respond-async")
    );
    let base = s.base.lock().expect("lock").clone();
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_LOCATION, format!("{base}/$export-status/1"))],
    )
        .into_response()
}

async fn stub_status(State(s): State<Arc<Stub>>) -> Response {
    let n = s.seen.fetch_add(1, Ordering::SeqCst);
    if n < s.busy {
        return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "0")]).into_response();
    }
    if s.polls.is_none_or(|p| n < s.busy + p) {
        return (
            StatusCode::ACCEPTED,
            [
                (header::RETRY_AFTER, "0".to_owned()),
                (
                    header::HeaderName::from_static("x-progress"),
                    format!("poll {n}"),
                ),
            ],
        )
            .into_response();
    }
    let base = s.base.lock().expect("lock").clone();
    let item = |t: &str, name: &str, count: Option<u64>| {
        let mut i = json!({"type": t, "url": format!("{base}/files/{name}")});
        if let Some(c) = count {
            i["count"] = json!(c);
        }
        i
    };
    let output: Vec<Value> = s.files.iter().map(|(t, n, c, _)| item(t, n, *c)).collect();
    let error: Vec<Value> = s
        .errors
        .iter()
        .map(|(n, _)| item("OperationOutcome", n, None))
        .collect();
    axum::Json(
        json!({"transactionTime": "2024-05-01T10:00:00Z", "request": "r",
        "requiresAccessToken": false, "output": output, "error": error}),
    )
    .into_response()
}

async fn stub_cancel(State(s): State<Arc<Stub>>) -> StatusCode {
    s.deleted.store(true, Ordering::SeqCst);
    StatusCode::ACCEPTED
}

async fn stub_file(State(s): State<Arc<Stub>>, UrlPath(name): UrlPath<String>) -> Response {
    tokio::time::sleep(s.file_delay).await;
    let body = s
        .files
        .iter()
        .map(|(_, n, _, b)| (*n, *b))
        .chain(s.errors.iter().map(|(n, b)| (*n, Some(*b))))
        .find(|(n, _)| *n == name)
        .and_then(|(_, b)| b);
    match body {
        Some(b) => b.into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Serves `stub` on a loopback port; its FHIR base URL.
async fn serve(stub: Arc<Stub>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/fhir", listener.local_addr().expect("addr"));
    *stub.base.lock().expect("lock") = base.clone();
    let app = Router::new()
        .route("/fhir/$export", get(stub_kick_off))
        .route(
            "/fhir/$export-status/1",
            get(stub_status).delete(stub_cancel),
        )
        .route("/fhir/files/{name}", get(stub_file))
        .with_state(stub);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

const PATIENTS: &str =
    "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n{\"resourceType\":\"Patient\",\"id\":\"b\"}\n";
/// Without a newline at the end.
const LAST_PATIENT: &str = "{\"resourceType\":\"Patient\",\"id\":\"c\"}";
const OUTCOMES: &str = "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\",\"code\":\"processing\",\"diagnostics\":\"Observation/x: cannot be read\"}]}\n";

#[tokio::test]
async fn an_export_is_polled_downloaded_and_counted() {
    let stub = Arc::new(Stub {
        polls: Some(2),
        busy: 1,
        files: vec![
            ("Patient", "p1", Some(2), Some(PATIENTS)),
            ("Patient", "p2", None, Some(LAST_PATIENT)),
            ("Observation", "o1", Some(0), Some("")),
        ],
        errors: vec![("e1", OUTCOMES)],
        ..Default::default()
    });
    let base = serve(Arc::clone(&stub)).await;
    let dir = TempDir::new();
    let summary = run_until(args(&base, &dir.0), std::future::pending())
        .await
        .expect("the export");
    assert_eq!(
        stub.seen.load(Ordering::SeqCst),
        4,
        "one 429, two 202, the manifest"
    );
    let read = |name: &str| std::fs::read_to_string(dir.0.join(name)).expect(name);
    assert_eq!(read("Patient-1.ndjson"), PATIENTS);
    assert_eq!(read("Patient-2.ndjson"), LAST_PATIENT);
    assert_eq!(read("Observation-1.ndjson"), "");
    assert_eq!(read("error/OperationOutcome-1.ndjson"), OUTCOMES);
    let manifest: Value = serde_json::from_str(&read("manifest.json")).expect("JSON");
    assert_eq!(manifest["output"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        summary.types["Patient"],
        Totals {
            files: 2,
            resources: 3,
            bytes: (PATIENTS.len() + LAST_PATIENT.len()) as u64
        }
    );
    assert_eq!(summary.types["Observation"].resources, 0);
    assert_eq!((summary.errors.files, summary.errors.resources), (1, 1));
    assert_eq!(summary.total().resources, 3);
    assert_eq!(
        summary.transaction_time.as_deref(),
        Some("2024-05-01T10:00:00Z")
    );
    let text = summary.render();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Patient") && l.contains(" 3 ")),
        "{text}"
    );
    // No file is left half written, and the folder must be empty for another run.
    let hidden = std::fs::read_dir(&dir.0)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(hidden, 0);
    let e = run_until(args(&base, &dir.0), std::future::pending())
        .await
        .expect_err("not empty");
    assert!(format!("{e:#}").contains("not empty"), "{e:#}");
    // The folder loads back: the manifest and the error folder are not data.
    let groups = crate::import::source::expand(std::slice::from_ref(&dir.0), &[]).expect("expand");
    let found: Vec<String> = groups[0]
        .iter()
        .map(|f| {
            f.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        found,
        [
            "Observation-1.ndjson",
            "Patient-1.ndjson",
            "Patient-2.ndjson"
        ]
    );
}

#[tokio::test]
async fn a_count_other_than_the_manifests_fails() {
    let stub = Arc::new(Stub {
        polls: Some(0),
        files: vec![
            ("Patient", "p1", Some(3), Some(PATIENTS)),
            ("Patient", "gone", Some(1), None),
        ],
        ..Default::default()
    });
    let base = serve(Arc::clone(&stub)).await;
    let dir = TempDir::new();
    let e = run_until(args(&base, &dir.0), std::future::pending())
        .await
        .expect_err("a mismatch");
    let text = format!("{e:#}");
    assert!(text.contains("2 of 2 file(s) failed"), "{text}");
    assert!(
        text.contains("Patient-1.ndjson: 2 resource(s) in the file, the manifest says 3"),
        "{text}"
    );
    assert!(text.contains("Patient-2.ndjson: GET"), "{text}");
    assert!(text.contains("404"), "{text}");
}

/// An interrupt `later` after the stub's status was asked for `polls` times.
fn after_polls(stub: &Arc<Stub>, polls: u64, later: Duration) -> impl Future<Output = ()> {
    let stub = Arc::clone(stub);
    async move {
        while stub.seen.load(Ordering::SeqCst) < polls {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(later).await;
    }
}

#[tokio::test]
async fn an_interrupt_while_polling_cancels_the_export() {
    let stub = Arc::new(Stub::default());
    let base = serve(Arc::clone(&stub)).await;
    let dir = TempDir::new();
    let e = run_until(args(&base, &dir.0), after_polls(&stub, 2, Duration::ZERO))
        .await
        .expect_err("interrupted");
    assert!(stub.deleted.load(Ordering::SeqCst), "no DELETE");
    let text = format!("{e:#}");
    assert!(
        text.contains("interrupted; the export was cancelled (DELETE answered 202"),
        "{text}"
    );
    assert!(!dir.0.join("manifest.json").exists());
}

#[tokio::test]
async fn an_interrupt_while_downloading_leaves_the_export_alone() {
    let stub = Arc::new(Stub {
        polls: Some(0),
        files: vec![("Patient", "p1", Some(2), Some(PATIENTS))],
        file_delay: Duration::from_secs(30),
        ..Default::default()
    });
    let base = serve(Arc::clone(&stub)).await;
    let dir = TempDir::new();
    let later = Duration::from_millis(200);
    let e = run_until(args(&base, &dir.0), after_polls(&stub, 1, later))
        .await
        .expect_err("interrupted");
    let text = format!("{e:#}");
    assert!(text.contains("interrupted while downloading"), "{text}");
    assert!(
        !stub.deleted.load(Ordering::SeqCst),
        "a DELETE of a finished export"
    );
    assert!(dir.0.join("manifest.json").exists());
    assert!(!dir.0.join("Patient-1.ndjson").exists());
}
