//! `ember check --url URL`: a smoke test of a live deployment. It reads the
//! CapabilityStatement, makes a create/read/update/search/delete round trip of one
//! Patient, and looks for CDS Hooks discovery, then prints one line per step and
//! fails when any step fails. Search and CDS Hooks are skipped when the server does
//! not offer them.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Result, anyhow, bail, ensure};
use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::http::{Conn, Reply, Target, created_id};
use crate::rng::Rng;
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
        run_step("cds", Instant::now(), cds(&target, args).await);
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

    let t = Instant::now();
    run_step("cds", t, cds(&target, args).await);
    Ok(steps)
}

/// CDS Hooks discovery: passes with a `services` array, skips on 404.
async fn cds(target: &Arc<Target>, args: &CheckArgs) -> Result<Outcome> {
    let (cds_target, path) = match &args.cds_url {
        Some(url) => {
            let t = Target::parse(url)?;
            let path = if t.base_path.is_empty() {
                "/".to_owned()
            } else {
                t.base_path.clone()
            };
            (Arc::new(t), path)
        }
        None => (
            Arc::new(Target {
                base_path: String::new(),
                ..(**target).clone()
            }),
            "/cds-services".to_owned(),
        ),
    };
    let mut conn = Conn::new(cds_target);
    let r = send(&mut conn, Method::GET, &path, None).await?;
    if r.status == 404 {
        return Ok(Outcome::Skip(format!("no CDS Hooks discovery at {path}")));
    }
    ensure!(r.status == 200, "CDS discovery answered {}", r.status);
    let body: Value = serde_json::from_slice(&r.body)?;
    let services = body["services"]
        .as_array()
        .ok_or_else(|| anyhow!("no services array"))?;
    Ok(Outcome::Pass(format!("{} service(s)", services.len())))
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
    }
}
