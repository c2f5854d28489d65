//! `ember check --url URL`: a smoke test of a live deployment. It reads the
//! CapabilityStatement, makes a create/read/update/search/delete round trip of one
//! Patient, looks for CDS Hooks discovery and, when discovery lists it, calls the
//! `telemonitoring-summary` service (patient-view) once with an empty prefetch, then
//! prints one line per step and fails when any step fails. Search and CDS Hooks are
//! skipped when the server does not offer them; with `--bearer`, the CDS steps are
//! skipped when the services refuse the call (401 or 403), as they want a CDS client's
//! own JWT, which `ember check` has none of.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow, bail, ensure};
use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::cds::{SERVICE, empty_prefetch, patient_view_request};
use crate::http::{Conn, Reply, Target, created_id};
use crate::rng::Rng;
use crate::stats::truncate;
use crate::workload::{Refs, ResourceType, generate};

/// Arguments of `ember check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// FHIR base URL of the deployment, e.g. `http://ember.internal:8080/fhir`.
    #[arg(long, env = "EMBER_CHECK_URL")]
    pub url: String,
    /// CDS Hooks discovery URL; defaults to `/cds-services` at the server's root.
    #[arg(long, env = "EMBER_CHECK_CDS_URL")]
    pub cds_url: Option<String>,
    /// A bearer token for a deployment that requires one (scopes to create, read,
    /// update, search and delete a Patient).
    #[arg(long, env = "EMBER_CHECK_BEARER")]
    pub bearer: Option<String>,
}

/// What happened to one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass(String),
    Skip(String),
    Fail(String),
}

/// One step's name, outcome and duration.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: &'static str,
    pub outcome: Outcome,
    pub millis: f64,
}

/// Runs the smoke test, prints the report, and returns whether every step passed or
/// was skipped.
pub async fn run(args: CheckArgs) -> Result<bool> {
    let steps = check(&args).await?;
    println!("Ember check  {}", args.url);
    for step in &steps {
        let (word, text) = match &step.outcome {
            Outcome::Pass(t) => ("PASS", t),
            Outcome::Skip(t) => ("SKIP", t),
            Outcome::Fail(t) => ("FAIL", t),
        };
        println!("{word}  {:<10} {:>8.1} ms  {text}", step.name, step.millis);
    }
    let failed = steps
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Fail(_)))
        .count();
    println!("{} passed, {failed} failed", steps.len() - failed);
    Ok(failed == 0)
}

/// Runs every step. Later steps that need an earlier one's result fail with a reason.
pub async fn check(args: &CheckArgs) -> Result<Vec<Step>> {
    let target = Arc::new(Target::parse(&args.url)?.with_bearer(args.bearer.as_deref())?);
    let mut conn = Conn::new(Arc::clone(&target));
    let mut steps = Vec::new();
    let mut run_step = |name: &'static str, started: Instant, result: Result<Outcome>| {
        let outcome = result.unwrap_or_else(|e| Outcome::Fail(format!("{e:#}")));
        steps.push(Step {
            name,
            outcome,
            millis: started.elapsed().as_secs_f64() * 1000.0,
        });
    };

    let t = Instant::now();
    let metadata = get_json(&mut conn, &target.path("metadata")).await;
    let searchable = metadata
        .as_ref()
        .ok()
        .is_some_and(|m| advertises(m, "Patient", "search-type"));
    run_step(
        "metadata",
        t,
        metadata.and_then(|m| {
            ensure!(
                m["resourceType"] == "CapabilityStatement",
                "not a CapabilityStatement"
            );
            let version = m["fhirVersion"].as_str().unwrap_or_default();
            ensure!(
                version.starts_with("4.0"),
                "fhirVersion is {version:?}, not R4"
            );
            Ok(Outcome::Pass(format!(
                "CapabilityStatement, FHIR {version}"
            )))
        }),
    );

    let t = Instant::now();
    let marker = format!("ember-check-{}", std::process::id());
    let mut patient = generate(
        ResourceType::Patient,
        &mut Rng::new(7),
        &Refs::default(),
        None,
    );
    patient["identifier"] = serde_json::json!([{"system": "urn:ember:check", "value": marker}]);
    let created = send(
        &mut conn,
        Method::POST,
        &target.path("Patient"),
        Some(&patient),
    )
    .await;
    let id = created.as_ref().ok().and_then(created_id);
    run_step(
        "create",
        t,
        created.and_then(|r| {
            ensure!(r.status == 201, "POST Patient answered {}", r.status);
            let id = created_id(&r).ok_or_else(|| anyhow!("no id in Location or body"))?;
            Ok(Outcome::Pass(format!("Patient/{id}")))
        }),
    );
    let Some(id) = id else {
        for name in ["read", "update", "search", "delete"] {
            run_step(
                name,
                Instant::now(),
                Err(anyhow!("no resource was created")),
            );
        }
        steps.extend(cds_steps(&target, args, CHECK_PATIENT).await);
        return Ok(steps);
    };

    let t = Instant::now();
    let read = get_json(&mut conn, &target.path(&format!("Patient/{id}"))).await;
    let version = read
        .as_ref()
        .ok()
        .and_then(|r| r["meta"]["versionId"].as_str().map(str::to_owned));
    run_step(
        "read",
        t,
        read.and_then(|r| {
            ensure!(r["id"] == id.as_str(), "read back id {}", r["id"]);
            ensure!(
                r["identifier"][0]["value"] == marker.as_str(),
                "read back other content"
            );
            Ok(Outcome::Pass(format!(
                "version {}",
                version.clone().unwrap_or_default()
            )))
        }),
    );

    let t = Instant::now();
    let mut changed = patient.clone();
    changed["id"] = Value::String(id.clone());
    changed["active"] = Value::Bool(false);
    let updated = send(
        &mut conn,
        Method::PUT,
        &target.path(&format!("Patient/{id}")),
        Some(&changed),
    )
    .await;
    run_step(
        "update",
        t,
        updated.and_then(|r| {
            ensure!(r.status == 200, "PUT answered {}", r.status);
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let new_version = body["meta"]["versionId"].as_str().map(str::to_owned);
            ensure!(
                new_version.is_none() || new_version != version,
                "the version did not change"
            );
            Ok(Outcome::Pass(format!(
                "version {}",
                new_version.unwrap_or_else(|| "?".into())
            )))
        }),
    );

    let t = Instant::now();
    let searched = if searchable {
        get_json(&mut conn, &target.path(&format!("Patient?_id={id}")))
            .await
            .and_then(|b| {
                ensure!(b["resourceType"] == "Bundle", "not a Bundle");
                let found = b["entry"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["resource"]["id"] == id.as_str()));
                ensure!(found, "Patient?_id={id} did not find it");
                Ok(Outcome::Pass("Patient?_id found the resource".into()))
            })
    } else {
        Ok(Outcome::Skip(
            "the CapabilityStatement does not advertise search on Patient".into(),
        ))
    };
    run_step("search", t, searched);

    let t = Instant::now();
    let deleted = async {
        let r = send(
            &mut conn,
            Method::DELETE,
            &target.path(&format!("Patient/{id}")),
            None,
        )
        .await?;
        ensure!(
            matches!(r.status.as_u16(), 200 | 202 | 204),
            "DELETE answered {}",
            r.status
        );
        let after = send(
            &mut conn,
            Method::GET,
            &target.path(&format!("Patient/{id}")),
            None,
        )
        .await?;
        ensure!(
            matches!(after.status.as_u16(), 404 | 410),
            "read after delete answered {}",
            after.status
        );
        Ok(Outcome::Pass(format!(
            "then read answered {}",
            after.status.as_u16()
        )))
    }
    .await;
    run_step("delete", t, deleted);

    steps.extend(cds_steps(&target, args, &id).await);
    Ok(steps)
}

/// The patient of the CDS call when the check created none.
const CHECK_PATIENT: &str = "ember-check";
/// The user of the CDS call.
const CHECK_USER: &str = "Practitioner/ember-check";

/// Where the CDS services are: their discovery path on a target (without a base path).
fn cds_endpoint(target: &Target, args: &CheckArgs) -> Result<(Arc<Target>, String)> {
    Ok(match &args.cds_url {
        Some(url) => {
            let t = Target::parse(url)?;
            let path = if t.base_path.is_empty() {
                "/".to_owned()
            } else {
                t.base_path.clone()
            };
            (
                Arc::new(Target {
                    base_path: String::new(),
                    ..t
                }),
                path,
            )
        }
        None => (
            Arc::new(Target {
                base_path: String::new(),
                ..target.clone()
            }),
            "/cds-services".to_owned(),
        ),
    })
}

/// What CDS Hooks discovery found.
enum Discovered {
    /// The ids of the services listed, with the connection and discovery path.
    Services(Vec<String>, Conn, String),
    Skipped,
    Failed,
}

/// The CDS steps: discovery (`cds`), then one call of `telemonitoring-summary`
/// (`cds-call`) for `patient` when discovery lists it.
async fn cds_steps(target: &Target, args: &CheckArgs, patient: &str) -> Vec<Step> {
    let bearer = args.bearer.is_some();
    let mut steps = Vec::new();
    let t = Instant::now();
    let discovery = async {
        let (cds_target, path) = cds_endpoint(target, args)?;
        let mut conn = Conn::new(cds_target);
        let r = send(&mut conn, Method::GET, &path, None).await?;
        let (outcome, ids) = judge_discovery(&path, r.status.as_u16(), &r.body, bearer)?;
        Ok::<_, anyhow::Error>(match ids {
            Some(ids) => (outcome, Discovered::Services(ids, conn, path)),
            None => (outcome, Discovered::Skipped),
        })
    }
    .await;
    let (outcome, found) =
        discovery.unwrap_or_else(|e| (Outcome::Fail(format!("{e:#}")), Discovered::Failed));
    steps.push(Step {
        name: "cds",
        outcome,
        millis: t.elapsed().as_secs_f64() * 1000.0,
    });

    let t = Instant::now();
    let outcome = match found {
        Discovered::Failed => Outcome::Fail("CDS Hooks discovery failed".into()),
        Discovered::Skipped => Outcome::Skip("CDS Hooks discovery was skipped".into()),
        Discovered::Services(ids, ..) if !ids.iter().any(|i| i == SERVICE) => {
            Outcome::Skip(format!("CDS Hooks discovery does not list {SERVICE}"))
        }
        Discovered::Services(_, mut conn, path) => {
            let url = format!("{}/{SERVICE}", path.trim_end_matches('/'));
            let hook_instance = uuid::Uuid::new_v4().to_string();
            let body = patient_view_request(
                &hook_instance,
                CHECK_USER,
                patient,
                Some(&empty_prefetch()),
                None,
            );
            match send(&mut conn, Method::POST, &url, Some(&body)).await {
                Ok(r) => judge_call(r.status.as_u16(), &r.body, bearer)
                    .unwrap_or_else(|e| Outcome::Fail(format!("POST {url}: {e:#}"))),
                Err(e) => Outcome::Fail(format!("POST {url}: {e:#}")),
            }
        }
    };
    steps.push(Step {
        name: "cds-call",
        outcome,
        millis: t.elapsed().as_secs_f64() * 1000.0,
    });
    steps
}

/// A CDS answer refused to `--bearer`: the services want a CDS client's JWT. The
/// reason includes the server's own (an OperationOutcome's diagnostics).
fn refused_to_bearer(what: &str, status: u16, body: &[u8], bearer: bool) -> Option<Outcome> {
    (bearer && matches!(status, 401 | 403)).then(|| {
        let why = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| {
                v["issue"][0]["diagnostics"]
                    .as_str()
                    .map(|d| truncate(d, 160))
            })
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        Outcome::Skip(format!(
            "{what} answered {status}{why}: the CDS services want a CDS client's signed JWT, \
             which ember check cannot send (--bearer is a FHIR token)"
        ))
    })
}

/// CDS Hooks discovery's answer: passes with a `services` array (and their ids), skips
/// on 404, and on 401 or 403 with `--bearer`.
fn judge_discovery(
    path: &str,
    status: u16,
    body: &[u8],
    bearer: bool,
) -> Result<(Outcome, Option<Vec<String>>)> {
    if status == 404 {
        return Ok((
            Outcome::Skip(format!("no CDS Hooks discovery at {path}")),
            None,
        ));
    }
    if let Some(skip) = refused_to_bearer("CDS discovery", status, body, bearer) {
        return Ok((skip, None));
    }
    ensure!(status == 200, "CDS discovery answered {status}");
    let body: Value = serde_json::from_slice(body)?;
    let services = body["services"]
        .as_array()
        .ok_or_else(|| anyhow!("no services array"))?;
    let ids: Vec<String> = services
        .iter()
        .filter_map(|s| s["id"].as_str().map(str::to_owned))
        .collect();
    Ok((
        Outcome::Pass(format!("{} service(s)", services.len())),
        Some(ids),
    ))
}

/// The answer to the `telemonitoring-summary` call: passes with 200 and a JSON body
/// with a `cards` array, skips on 401 or 403 with `--bearer`.
fn judge_call(status: u16, body: &[u8], bearer: bool) -> Result<Outcome> {
    if let Some(skip) = refused_to_bearer(SERVICE, status, body, bearer) {
        return Ok(skip);
    }
    ensure!(
        status == 200,
        "{SERVICE} answered {status}: {}",
        truncate(&String::from_utf8_lossy(body), 200)
    );
    let body: Value =
        serde_json::from_slice(body).map_err(|e| anyhow!("the answer is not JSON: {e}"))?;
    let cards = body["cards"]
        .as_array()
        .ok_or_else(|| anyhow!("the answer has no cards array"))?;
    Ok(Outcome::Pass(format!(
        "patient-view {SERVICE}: {} card(s)",
        cards.len()
    )))
}

/// Whether the CapabilityStatement lists `interaction` for `resource_type`.
fn advertises(metadata: &Value, resource_type: &str, interaction: &str) -> bool {
    metadata["rest"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|rest| {
            rest["resource"].as_array().into_iter().flatten().any(|r| {
                r["type"] == resource_type
                    && r["interaction"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|i| i["code"] == interaction)
            })
        })
}

async fn send(conn: &mut Conn, method: Method, path: &str, body: Option<&Value>) -> Result<Reply> {
    let body = body.map(|b| Bytes::from(b.to_string()));
    conn.send(method, path, body).await
}

async fn get_json(conn: &mut Conn, path: &str) -> Result<Value> {
    let r = send(conn, Method::GET, path, None).await?;
    if !r.status.is_success() {
        bail!("GET {path} answered {}", r.status);
    }
    Ok(serde_json::from_slice(&r.body)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_advertised_interactions() {
        let m = json!({"rest": [{"resource": [{"type": "Patient", "interaction": [{"code": "read"}, {"code": "search-type"}]}]}]});
        assert!(advertises(&m, "Patient", "search-type"));
        assert!(!advertises(&m, "Patient", "delete"));
        assert!(!advertises(&m, "Observation", "read"));
    }

    #[tokio::test]
    async fn fails_cleanly_when_nothing_answers() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/fhir", listener.local_addr().unwrap());
        drop(listener);
        let steps = check(&CheckArgs {
            url,
            cds_url: None,
            bearer: None,
        })
        .await
        .unwrap();
        assert!(steps.iter().any(|s| matches!(s.outcome, Outcome::Fail(_))));
        assert_eq!(steps[0].name, "metadata");
        let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
        assert_eq!(&names[names.len() - 2..], ["cds", "cds-call"]);
        // Discovery failed, so the call fails with that reason.
        assert_eq!(
            steps.last().map(|s| &s.outcome),
            Some(&Outcome::Fail("CDS Hooks discovery failed".into()))
        );
    }

    #[test]
    fn judges_discovery() {
        let ok = br#"{"services": [{"id": "a"}, {"id": "telemonitoring-summary"}]}"#;
        let (outcome, ids) = judge_discovery("/cds-services", 200, ok, false).unwrap();
        assert_eq!(outcome, Outcome::Pass("2 service(s)".into()));
        assert_eq!(ids, Some(vec!["a".to_owned(), SERVICE.to_owned()]));
        let (outcome, ids) = judge_discovery("/cds-services", 404, b"", false).unwrap();
        assert!(matches!(outcome, Outcome::Skip(_)) && ids.is_none());
        // Refused: skipped with --bearer, failed without.
        for status in [401, 403] {
            let (outcome, ids) = judge_discovery("/cds-services", status, b"{}", true).unwrap();
            assert!(
                matches!(&outcome, Outcome::Skip(r) if r.contains(&status.to_string())),
                "{outcome:?}"
            );
            assert!(ids.is_none());
            assert!(judge_discovery("/cds-services", status, b"{}", false).is_err());
        }
        assert!(judge_discovery("/cds-services", 200, b"{}", false).is_err());
        assert!(judge_discovery("/cds-services", 500, b"", true).is_err());
    }

    #[test]
    fn judges_the_call() {
        let pass = judge_call(200, br#"{"cards": [{"summary": "x"}]}"#, false).unwrap();
        assert_eq!(
            pass,
            Outcome::Pass("patient-view telemonitoring-summary: 1 card(s)".into())
        );
        assert_eq!(
            judge_call(200, br#"{"cards": []}"#, true).unwrap(),
            Outcome::Pass("patient-view telemonitoring-summary: 0 card(s)".into())
        );
        let skip = judge_call(401, b"{}", true).unwrap();
        assert!(
            matches!(&skip, Outcome::Skip(r) if r.contains("401") && r.contains("--bearer")),
            "{skip:?}"
        );
        assert!(matches!(judge_call(403, b"", true), Ok(Outcome::Skip(_))));
        let closed = br#"{"resourceType": "OperationOutcome", "issue": [{"severity": "error",
            "code": "forbidden", "diagnostics": "the CDS services need EMBER_CDS_CLIENTS"}]}"#;
        let skip = judge_call(403, closed, true).unwrap();
        assert!(
            matches!(&skip, Outcome::Skip(r) if r.starts_with(
                "telemonitoring-summary answered 403 (the CDS services need EMBER_CDS_CLIENTS): "
            )),
            "{skip:?}"
        );
        let err = judge_call(401, b"no token", false).unwrap_err();
        assert!(
            format!("{err:#}").contains("answered 401: no token"),
            "{err:#}"
        );
        assert!(judge_call(200, b"{}", false).is_err());
        assert!(judge_call(200, b"not json", false).is_err());
        assert!(judge_call(412, b"{}", true).is_err());
    }

    /// How the mock's CDS endpoints answer.
    #[derive(Clone)]
    struct Cds {
        discovery: u16,
        services: Value,
        call: u16,
    }

    /// A server that creates a Patient (`Patient/p1`) and answers CDS Hooks as `cds`
    /// says; everything else is a 404. The calls' bodies are kept.
    async fn mock(cds: Cds) -> (String, Arc<std::sync::Mutex<Vec<Value>>>) {
        use axum::http::StatusCode;
        use axum::routing::{get, post};
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = calls.clone();
        let (d, c) = (cds.clone(), cds);
        let app = axum::Router::new()
            .route(
                "/fhir/Patient",
                post(|| async {
                    (
                        StatusCode::CREATED,
                        [("location", "/fhir/Patient/p1/_history/1")],
                        "",
                    )
                }),
            )
            .route(
                "/cds-services",
                get(move || async move {
                    let status = StatusCode::from_u16(d.discovery).unwrap();
                    (status, json!({"services": d.services}).to_string())
                }),
            )
            .route(
                "/cds-services/{id}",
                post(
                    move |axum::extract::Path(id): axum::extract::Path<String>,
                          body: axum::body::Bytes| async move {
                        let body: Value = serde_json::from_slice(&body).unwrap_or_default();
                        kept.lock().unwrap().push(json!({"id": id, "body": body}));
                        let status = StatusCode::from_u16(c.call).unwrap();
                        (status, r#"{"cards": [{"indicator": "info"}]}"#)
                    },
                ),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}/fhir"), calls)
    }

    async fn cds_outcomes(cds: Cds, bearer: Option<&str>) -> (Outcome, Outcome, Vec<Value>) {
        let (url, calls) = mock(cds).await;
        let steps = check(&CheckArgs {
            url,
            cds_url: None,
            bearer: bearer.map(str::to_owned),
        })
        .await
        .unwrap();
        let outcome = |name: &str| {
            steps
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.outcome.clone())
                .unwrap()
        };
        let calls = calls.lock().unwrap().clone();
        (outcome("cds"), outcome("cds-call"), calls)
    }

    fn listed() -> Value {
        json!([{"id": "telemonitoring-summary", "hook": "patient-view"}])
    }

    #[tokio::test]
    async fn calls_telemonitoring_summary_with_an_empty_prefetch() {
        let cds = Cds {
            discovery: 200,
            services: listed(),
            call: 200,
        };
        let (discovery, call, calls) = cds_outcomes(cds, None).await;
        assert_eq!(discovery, Outcome::Pass("1 service(s)".into()));
        assert_eq!(
            call,
            Outcome::Pass("patient-view telemonitoring-summary: 1 card(s)".into())
        );
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0]["id"], SERVICE);
        let body = &calls[0]["body"];
        assert_eq!(body["hook"], "patient-view");
        let instance = body["hookInstance"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(instance).is_ok(), "{body}");
        // The Patient the check created (and deleted): the prefetch needs no data.
        assert_eq!(
            body["context"],
            json!({"userId": "Practitioner/ember-check", "patientId": "p1"})
        );
        assert_eq!(
            body["prefetch"],
            json!({"tasks": {"resourceType": "Bundle", "type": "searchset", "entry": []}})
        );
        assert!(body.get("fhirServer").is_none(), "{body}");
    }

    #[tokio::test]
    async fn cds_steps_skip_fail_and_refuse() {
        let cds = |discovery, services, call| Cds {
            discovery,
            services,
            call,
        };
        // No CDS Hooks: both skipped.
        let (d, c, calls) = cds_outcomes(cds(404, listed(), 200), None).await;
        assert!(matches!(d, Outcome::Skip(_)), "{d:?}");
        assert_eq!(c, Outcome::Skip("CDS Hooks discovery was skipped".into()));
        assert!(calls.is_empty());
        // Discovery without the service: the call is skipped.
        let (d, c, _) = cds_outcomes(cds(200, json!([{"id": "other"}]), 200), None).await;
        assert!(matches!(d, Outcome::Pass(_)), "{d:?}");
        assert!(
            matches!(&c, Outcome::Skip(r) if r.contains("does not list")),
            "{c:?}"
        );
        // A refused call: skipped with --bearer (no CDS client JWT), failed without.
        let (_, c, calls) = cds_outcomes(cds(200, listed(), 401), Some("t")).await;
        assert!(matches!(&c, Outcome::Skip(r) if r.contains("401")), "{c:?}");
        assert_eq!(calls.len(), 1);
        let (_, c, _) = cds_outcomes(cds(200, listed(), 403), None).await;
        assert!(matches!(&c, Outcome::Fail(r) if r.contains("403")), "{c:?}");
        // Refused discovery with --bearer: both skipped.
        let (d, c, calls) = cds_outcomes(cds(401, listed(), 200), Some("t")).await;
        assert!(matches!(d, Outcome::Skip(_)), "{d:?}");
        assert!(matches!(c, Outcome::Skip(_)), "{c:?}");
        assert!(calls.is_empty());
        // A failing discovery fails the call too.
        let (d, c, _) = cds_outcomes(cds(500, listed(), 200), None).await;
        assert!(matches!(d, Outcome::Fail(_)), "{d:?}");
        assert_eq!(c, Outcome::Fail("CDS Hooks discovery failed".into()));
    }
}
