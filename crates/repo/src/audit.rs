//! The audit trail as FHIR `AuditEvent`s. `api` hands each request's [`AuditRecord`] to
//! an [`AuditSink`]; the sink gathers them for up to a second (or 500 of them) and
//! enqueues one `audit` job per batch, so a request never waits for its audit write;
//! the job writes the batch's AuditEvents in one commit, with ids derived from the job,
//! so a job that runs twice writes them once.

use std::time::Duration;

use async_trait::async_trait;
use ember_fhir::instant;
use ember_store::Job;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::Repo;
use crate::commit::JobRequest;
use crate::jobs::{JobContext, JobError, JobHandler, Ran};

pub(crate) const KIND: &str = "audit";

/// Most records in one batch (one job, one commit).
const BATCH: usize = 500;
/// Longest a record waits for its batch.
const WAIT: Duration = Duration::from_secs(1);
/// Records held while the database cannot take them.
const BUFFER: usize = 20_000;

/// One access: who, what, which patient, and how it ended. Never a name, a search
/// value or a body: only ids, parameter names and codes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When (a FHIR instant).
    pub recorded: String,
    /// The user (`sub`), `"-"` when Ember runs without authentication.
    pub subject: String,
    /// The token's issuer.
    pub issuer: Option<String>,
    /// The client application.
    pub client: Option<String>,
    /// The RESTful interaction (`read`, `search-type`, `create`, `operation`, …).
    pub interaction: String,
    pub res_type: Option<String>,
    pub id: Option<String>,
    /// The operation's name, for `operation`.
    pub operation: Option<String>,
    /// The names of the search parameters (never their values).
    pub params: Vec<String>,
    /// The patient whose data it is, when known.
    pub patient: Option<String>,
    /// The care team the user acts for, when the token names one.
    #[serde(default)]
    pub care_team: Option<String>,
    /// The HTTP status of the answer.
    pub status: u16,
}

/// Gathers records and enqueues them in batches. Cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<AuditRecord>,
}

impl AuditSink {
    /// A sink whose batches `repo` enqueues, from a task of its own.
    pub fn start(repo: Repo) -> Self {
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(flush(repo, rx));
        Self { tx }
    }

    /// Takes a record without waiting; when the buffer is full (the database has been
    /// unreachable for a while) the record is dropped, and that is logged.
    pub fn record(&self, record: AuditRecord) {
        if self.tx.try_send(record).is_err() {
            tracing::error!("the audit buffer is full; an audit record was dropped");
        }
    }
}

async fn flush(repo: Repo, mut rx: mpsc::Receiver<AuditRecord>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + WAIT;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(record)) => batch.push(record),
                Ok(None) | Err(_) => break,
            }
        }
        let request = JobRequest {
            kind: KIND.to_owned(),
            payload: json!({ "records": batch }),
            key: None,
        };
        // The database may be away for a moment: try again, then give up loudly.
        let mut attempt = 0;
        while let Err(e) = repo.enqueue(vec![request.clone()]).await {
            attempt += 1;
            if attempt >= 30 {
                tracing::error!(error = %e, lost = batch.len(), "audit records could not be stored");
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// The `audit` job handler: one batch of records as AuditEvents, in one commit.
pub(crate) struct AuditWriter;

#[async_trait]
impl JobHandler for AuditWriter {
    fn kind(&self) -> &'static str {
        KIND
    }

    async fn run(&self, ctx: &JobContext, job: &Job) -> Result<Ran, JobError> {
        let payload: Value = serde_json::from_str(&job.payload)
            .map_err(|e| JobError::Failed(format!("the audit payload is not JSON: {e}")))?;
        let records: Vec<AuditRecord> =
            serde_json::from_value(payload.get("records").cloned().unwrap_or_default())
                .map_err(|e| JobError::Failed(format!("the audit records are malformed: {e}")))?;
        let events = records
            .iter()
            .enumerate()
            .map(|(i, r)| audit_event(&format!("{}-{i}", job.id), r))
            .collect();
        ctx.create_once_and_finish(ctx.repo(), events, None).await
    }
}

/// The R4 `AuditEvent` of one record.
pub fn audit_event(id: &str, r: &AuditRecord) -> Value {
    let (action, subtype) = match r.interaction.as_str() {
        "create" => ("C", "create"),
        "update" => ("U", "update"),
        "patch" => ("U", "patch"),
        "delete" => ("D", "delete"),
        "read" | "vread" | "history-instance" | "history-type" | "history-system" => {
            ("R", r.interaction.as_str())
        }
        "search-type" | "search-system" | "search-compartment" => ("E", "search-type"),
        "batch" | "transaction" => ("E", r.interaction.as_str()),
        _ => ("E", "operation"),
    };
    let outcome = match r.status {
        0..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let mut user = json!({"value": r.subject});
    if let Some(issuer) = &r.issuer {
        user["system"] = json!(issuer);
    }
    let mut agents = vec![json!({"who": {"identifier": user}, "requestor": true})];
    if let Some(client) = &r.client {
        agents.push(json!({
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
            "who": {"identifier": {"system": "urn:ietf:params:oauth:client-id", "value": client}},
            "requestor": false
        }));
    }
    let mut entities = Vec::new();
    if let Some(p) = &r.patient {
        entities.push(json!({
            "what": {"reference": format!("Patient/{p}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
        }));
    }
    match (&r.res_type, &r.id) {
        (Some(t), Some(id)) => entities.push(json!({"what": {"reference": format!("{t}/{id}")}})),
        (Some(t), None) => entities.push(json!({"name": t})),
        _ => {}
    }
    if let Some(team) = &r.care_team {
        entities.push(json!({
            "what": {"reference": format!("CareTeam/{team}")},
            "description": "the care team the user acts for"
        }));
    }
    if !r.params.is_empty() {
        entities
            .push(json!({"description": format!("search parameters: {}", r.params.join(", "))}));
    }
    if let Some(op) = &r.operation {
        entities.push(json!({"name": format!("${op}")}));
    }
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": id,
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": subtype}],
        "action": action,
        "recorded": if r.recorded.is_empty() { instant::format_instant(instant::now()) } else { r.recorded.clone() },
        "outcome": outcome,
        "outcomeDesc": format!("HTTP {}", r.status),
        "agent": agents,
        "source": {"observer": {"display": "Ember"}, "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]},
    });
    if !entities.is_empty() {
        event["entity"] = Value::Array(entities);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(interaction: &str, status: u16) -> AuditRecord {
        AuditRecord {
            recorded: "2026-12-06T10:00:00.000000Z".into(),
            subject: "u1".into(),
            issuer: Some("https://idp".into()),
            client: Some("app".into()),
            interaction: interaction.into(),
            res_type: Some("Observation".into()),
            id: None,
            operation: None,
            params: vec!["code".into(), "_sort".into()],
            patient: Some("p1".into()),
            care_team: None,
            status,
        }
    }

    #[test]
    fn audit_events_are_valid_r4() {
        for (interaction, status, action, outcome) in [
            ("search-type", 200, "E", "0"),
            ("read", 403, "R", "4"),
            ("create", 201, "C", "0"),
            ("delete", 500, "D", "8"),
        ] {
            let event = audit_event("job-0", &record(interaction, status));
            let issues = ember_fhir::validate::validate(&event, ember_fhir::validate::Mode::Strict);
            assert!(
                issues.issues.is_empty(),
                "{interaction}: {:?}",
                issues.issues
            );
            assert_eq!(event["action"], action);
            assert_eq!(event["outcome"], outcome);
            assert_eq!(event["entity"][0]["what"]["reference"], "Patient/p1");
            // Parameter names only, never values.
            assert_eq!(
                event["entity"][2]["description"],
                "search parameters: code, _sort"
            );
        }
        let mut acting = record("read", 200);
        acting.care_team = Some("4".into());
        let event = audit_event("job-1", &acting);
        let issues = ember_fhir::validate::validate(&event, ember_fhir::validate::Mode::Strict);
        assert!(issues.issues.is_empty(), "{:?}", issues.issues);
        assert_eq!(event["entity"][2]["what"]["reference"], "CareTeam/4");
    }
}
