//! The resources a triage or a missed measurement leaves for the care team: a
//! `ClinicalImpression` (the triage result), a `Task` (the work, in the team's
//! worklist) and, for red and yellow results and missed measurements, a
//! `Communication` (the notification, sent by Ember's Device). Their ids derive from
//! the cause, so doing the same work twice finds the first result.

use ember_fhir::instant;
use serde_json::{Value, json};

use crate::Settings;
use crate::codes::{
    COMMUNICATION_CATEGORY, DEVICE_ID, FINDING_SYSTEM, IMPRESSION_SYSTEM, TASK_CATEGORY_SYSTEM,
    TRIAGING_RESULT,
};
use crate::zones::Colour;

/// Who and what a follow-up is about.
#[derive(Debug, Clone, Default)]
pub(crate) struct Context {
    /// `Patient/…`.
    pub patient: String,
    /// `ServiceRequest/…` the measurement answers.
    pub service_request: Option<String>,
    /// `CareTeam/…` of the CarePlan the ServiceRequest is based on.
    pub care_team: Option<String>,
}

/// A triage result.
#[derive(Debug, Clone)]
pub(crate) struct Result {
    /// `Observation/…` or `QuestionnaireResponse/…`.
    pub item: String,
    /// `None` when the item could not be judged or has no zones.
    pub colour: Option<Colour>,
    /// `ClinicalImpression.finding`s.
    pub findings: Vec<Value>,
    /// The Task category (`codes::FOR_ASSESSMENT`, …).
    pub category: &'static str,
    /// What a clinician reads first: the result, or why there is none.
    pub description: String,
}

impl Result {
    /// A result without a colour: the item has no zones (or no significance) to be
    /// judged against, or cannot be judged; `description` says which.
    pub fn untriaged(item: &str, category: &'static str, description: String) -> Self {
        Self {
            item: item.to_owned(),
            colour: None,
            findings: Vec::new(),
            category,
            description,
        }
    }
}

/// The ClinicalImpression, Task and (red, yellow) Communication of a triage result,
/// with ids derived from `key` (the triaged resource's).
pub(crate) fn triage(settings: &Settings, ctx: &Context, key: &str, r: &Result) -> Vec<Value> {
    let now = instant::format_instant(instant::now());
    let impression_id = format!("triage-{key}");
    let mut findings = r.findings.clone();
    if let Some(c) = r.colour {
        findings.push(json!({"itemCodeableConcept": {"coding": [{
            "system": FINDING_SYSTEM, "code": c.code(), "display": c.code(),
        }]}}));
    }
    let mut impression = json!({
        "resourceType": "ClinicalImpression",
        "id": impression_id,
        "status": "completed",
        "code": {"coding": [{"system": IMPRESSION_SYSTEM, "code": TRIAGING_RESULT, "display": "Triaging result"}]},
        "subject": {"reference": ctx.patient},
        "date": now,
        "investigation": [{
            "code": {"text": "Telemonitoring submission"},
            "item": [{"reference": r.item}],
        }],
        "summary": r.description,
    });
    if !findings.is_empty() {
        impression["finding"] = Value::Array(findings);
    }
    let priority = r.colour.map_or("routine", Colour::priority);
    let task = task(
        settings,
        ctx,
        &format!("task-{key}"),
        r.category,
        priority,
        &format!("ClinicalImpression/{impression_id}"),
        &r.description,
        &now,
    );
    let mut out = vec![tagged(settings, impression), task];
    if matches!(r.colour, Some(Colour::Red | Colour::Yellow)) {
        out.push(notice(
            settings,
            ctx,
            &format!("notice-{key}"),
            &format!("Task/task-{key}"),
            priority,
            &r.description,
            &now,
        ));
    }
    out
}

/// The Task and Communication of a missed measurement, ids derived from `key`.
pub(crate) fn missing(
    settings: &Settings,
    ctx: &Context,
    key: &str,
    description: &str,
) -> Vec<Value> {
    let now = instant::format_instant(instant::now());
    let focus = ctx.service_request.clone().unwrap_or_default();
    vec![
        task(
            settings,
            ctx,
            &format!("missing-{key}"),
            crate::codes::MISSING,
            "routine",
            &focus,
            description,
            &now,
        ),
        notice(
            settings,
            ctx,
            &format!("missing-notice-{key}"),
            &format!("Task/missing-{key}"),
            "routine",
            description,
            &now,
        ),
    ]
}

#[allow(clippy::too_many_arguments)]
fn task(
    settings: &Settings,
    ctx: &Context,
    id: &str,
    category: &str,
    priority: &str,
    focus: &str,
    description: &str,
    now: &str,
) -> Value {
    let mut task = json!({
        "resourceType": "Task",
        "id": id,
        "status": "requested",
        "intent": "order",
        "priority": priority,
        "code": {"coding": [{"system": TASK_CATEGORY_SYSTEM, "code": category}]},
        "description": description,
        "focus": {"reference": focus},
        "for": {"reference": ctx.patient},
        "authoredOn": now,
        "requester": {"reference": format!("Device/{DEVICE_ID}")},
    });
    if let Some(sr) = &ctx.service_request {
        task["basedOn"] = json!([{"reference": sr}]);
    }
    if let Some(team) = &ctx.care_team {
        task["owner"] = json!({"reference": team});
    }
    tagged(settings, task)
}

fn notice(
    settings: &Settings,
    ctx: &Context,
    id: &str,
    about: &str,
    priority: &str,
    text: &str,
    now: &str,
) -> Value {
    let mut communication = json!({
        "resourceType": "Communication",
        "id": id,
        "status": "completed",
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": "notification"}]}],
        "priority": priority,
        "subject": {"reference": ctx.patient},
        "about": [{"reference": about}],
        "sent": now,
        "sender": {"reference": format!("Device/{DEVICE_ID}")},
        "payload": [{"contentString": text}],
    });
    if let Some(team) = &ctx.care_team {
        communication["recipient"] = json!([{"reference": team}]);
    }
    tagged(settings, communication)
}

/// The Device that requests the Tasks and sends the notifications: created once, on first use.
pub(crate) fn device(settings: &Settings) -> Value {
    tagged(
        settings,
        json!({
            "resourceType": "Device",
            "id": DEVICE_ID,
            "status": "active",
            "deviceName": [{"name": "Ember telemonitoring triage", "type": "user-friendly-name"}],
        }),
    )
}

/// Adds the coexistence tag, when one is configured.
fn tagged(settings: &Settings, mut resource: Value) -> Value {
    if let Some((system, code)) = &settings.coexistence_tag {
        resource["meta"] = json!({"tag": [{"system": system, "code": code}]});
    }
    resource
}
