//! `telemonitoring-summary` (patient-view) and `telemonitoring-appointment-check`
//! (appointment-book), both over the patient's open follow-up Tasks with their triage
//! results (ClinicalImpression) and the measurements those name.

use std::collections::HashMap;

use ember_fhir::instant;
use ember_telemed::codes::{FINDING_SYSTEM, MISSING, TASK_CATEGORY_SYSTEM};
use ember_telemed::zones::{self, Colour};
use serde_json::{Value, json};

use crate::card::{Action, Card, Indicator, Kind, Link};
use crate::prefetch::Data;
use crate::{CdsError, HookRequest, SERVICES, text};

/// Task states that still wait for someone.
const OPEN: [&str; 6] = [
    "requested",
    "received",
    "accepted",
    "ready",
    "in-progress",
    "on-hold",
];

/// One open triage result.
struct Open<'a> {
    task: &'a Value,
    colour: Option<Colour>,
    impression: Option<&'a Value>,
    item: Option<&'a Value>,
    /// When it was measured (or judged).
    when: String,
}

/// The open telemonitoring Tasks of the prefetch, split into triage results and
/// missed measurements (with the order each is for).
struct Worklist<'a> {
    results: Vec<Open<'a>>,
    missing: Vec<(&'a Value, Option<&'a Value>)>,
}

fn worklist(data: &Data) -> Worklist<'_> {
    let all = data.resources("tasks");
    let by_ref: HashMap<String, &Value> = all
        .iter()
        .filter_map(|r| {
            Some((
                format!(
                    "{}/{}",
                    r.get("resourceType")?.as_str()?,
                    r.get("id")?.as_str()?
                ),
                *r,
            ))
        })
        .collect();
    let resolve = |v: &Value| {
        v.get("reference")
            .and_then(Value::as_str)
            .and_then(|r| by_ref.get(r).copied())
    };
    let mut list = Worklist {
        results: Vec::new(),
        missing: Vec::new(),
    };
    for task in all
        .iter()
        .filter(|r| r.get("resourceType") == Some(&json!("Task")))
    {
        let status = task
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let category = task
            .pointer("/code/coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("system").and_then(Value::as_str) == Some(TASK_CATEGORY_SYSTEM))
            .and_then(|c| c.get("code")?.as_str());
        let (Some(category), true) = (category, OPEN.contains(&status)) else {
            continue;
        };
        let focus = task.get("focus").and_then(resolve);
        if category == MISSING {
            list.missing.push((task, focus));
            continue;
        }
        let impression =
            focus.filter(|f| f.get("resourceType") == Some(&json!("ClinicalImpression")));
        let colour = match impression {
            Some(ci) => finding(ci),
            None => match task.get("priority").and_then(Value::as_str) {
                Some("asap" | "stat") => Some(Colour::Red),
                Some("urgent") => Some(Colour::Yellow),
                _ => None,
            },
        };
        let item = impression
            .and_then(|ci| ci.pointer("/investigation/0/item/0"))
            .and_then(resolve);
        let when = item
            .and_then(|o| {
                o.get("effectiveDateTime")
                    .or_else(|| o.pointer("/effectivePeriod/start"))
                    .or_else(|| o.get("authored"))
            })
            .or_else(|| impression.and_then(|ci| ci.get("date")))
            .or_else(|| task.get("authoredOn"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        list.results.push(Open {
            task,
            colour,
            impression,
            item,
            when,
        });
    }
    list
}

/// The overall colour a triage's ClinicalImpression found.
fn finding(ci: &Value) -> Option<Colour> {
    ci.get("finding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| f.pointer("/itemCodeableConcept/coding")?.as_array())
        .flatten()
        .filter(|c| c.get("system").and_then(Value::as_str) == Some(FINDING_SYSTEM))
        .find_map(|c| Colour::parse(c.get("code")?.as_str()?))
}

/// A Task acknowledged: completed, with the time.
fn acknowledged(task: &Value) -> Value {
    let mut t = task.clone();
    t["status"] = json!("completed");
    t["businessStatus"] = json!({"text": "Acknowledged"});
    t["lastModified"] = json!(instant::format_instant(instant::now()));
    t
}

fn task_ref(task: &Value) -> String {
    format!(
        "Task/{}",
        task.get("id").and_then(Value::as_str).unwrap_or_default()
    )
}

/// A link to the patient's measurements (of one code) on the client's FHIR server.
fn measurements_link(request: &HookRequest, patient: &str, code: Option<&Value>) -> Option<Link> {
    let server = request.fhir_server.as_deref()?;
    let mut url = format!("{server}/Observation?subject=Patient/{patient}&_sort=-date");
    let coding = code.and_then(|c| c.pointer("/coding/0"));
    if let Some((system, code)) =
        coding.and_then(|c| Some((c.get("system")?.as_str()?, c.get("code")?.as_str()?)))
    {
        let value: String =
            form_urlencoded::byte_serialize(format!("{system}|{code}").as_bytes()).collect();
        url.push_str(&format!("&code={value}"));
    }
    Some(Link {
        label: "The patient's measurements".into(),
        url,
        kind: "absolute",
    })
}

/// What an open result shows: its summary line and its detail.
fn describe(open: &Open<'_>, colour: Colour) -> (String, String) {
    let name = colour_name(colour);
    let fallback = || {
        open.impression
            .and_then(|ci| ci.get("summary"))
            .or_else(|| open.task.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("a telemonitoring result")
            .to_owned()
    };
    let Some(obs) = open
        .item
        .filter(|i| i.get("resourceType") == Some(&json!("Observation")))
    else {
        let text = fallback();
        return (format!("{name}: {text}"), text);
    };
    let what = obs
        .get("code")
        .map_or_else(|| "Measurement".to_owned(), text::concept);
    let values = zones::measured(obs).unwrap_or_default();
    let zones = zones::of_observation(obs).unwrap_or_default();
    let judged = zones::judge(&values, &zones).unwrap_or_default();
    let shown: Vec<String> = values.iter().map(|m| text::amount(&m.amount)).collect();
    // The zones of the result's colour that apply to the values of that colour.
    let thresholds: Vec<String> = zones
        .iter()
        .filter(|z| {
            z.colour == colour
                && judged
                    .iter()
                    .any(|j| j.colour == colour && j.measured.component == z.component)
        })
        .map(text::zone)
        .collect();
    let mut summary = format!("{name}: {what} {}", shown.join(", "));
    if !thresholds.is_empty() {
        summary.push_str(&format!(
            " ({} zone {})",
            colour.code(),
            thresholds.join(" or ")
        ));
    }
    if !open.when.is_empty() {
        summary.push_str(&format!(" at {}", text::time(&open.when)));
    }
    let mut detail = format!("**{what}** measured {}: {}.", open.when, shown.join(", "));
    for j in &judged {
        if let Some((_, code)) = &j.measured.component {
            detail.push_str(&format!(
                "\n- component {code}: {} ({})",
                text::amount(&j.measured.amount),
                j.colour.code()
            ));
        }
    }
    for z in &zones {
        detail.push_str(&format!("\n- {} zone: {}", z.colour.code(), text::zone(z)));
    }
    detail.push_str(&format!("\n\n{}", fallback()));
    (summary, detail)
}

fn colour_name(c: Colour) -> &'static str {
    match c {
        Colour::Red => "Red",
        Colour::Yellow => "Yellow",
        Colour::Green => "Green",
    }
}

/// `telemonitoring-summary`: a card per open red or yellow result, one for missed
/// measurements, and an information card when everything open is green.
pub(crate) fn summary(request: &HookRequest, data: &Data) -> Vec<Card> {
    let service = &SERVICES[0];
    let patient = request.patient_id().unwrap_or_default();
    let list = worklist(data);
    let mut cards = Vec::new();
    for open in &list.results {
        let (kind, indicator, colour) = match open.colour {
            Some(Colour::Red) => (Kind::RedResult, Indicator::Critical, Colour::Red),
            Some(Colour::Yellow) => (Kind::YellowResult, Indicator::Warning, Colour::Yellow),
            _ => continue,
        };
        let (summary, detail) = describe(open, colour);
        let mut card = Card::new(
            service,
            request,
            kind,
            &task_ref(open.task),
            indicator,
            &summary,
        );
        card.detail = Some(detail);
        card.when = open.when.clone();
        card.suggest(
            "Acknowledge",
            vec![Action::update(
                format!("Mark {} completed", task_ref(open.task)),
                acknowledged(open.task),
            )],
        );
        card.links.extend(measurements_link(
            request,
            patient,
            open.item.and_then(|o| o.get("code")),
        ));
        cards.push(card);
    }
    if !list.missing.is_empty() {
        let mut names: Vec<String> = list
            .missing
            .iter()
            .map(|(_, order)| {
                order
                    .and_then(|o| o.get("code"))
                    .map_or_else(|| "measurement".to_owned(), text::concept)
            })
            .collect();
        names.dedup();
        let key: Vec<String> = list.missing.iter().map(|(t, _)| task_ref(t)).collect();
        let mut card = Card::new(
            service,
            request,
            Kind::MissingMeasurements,
            &key.join(","),
            Indicator::Warning,
            &format!("Missing measurements: {}", names.join(", ")),
        );
        let lines: Vec<String> = list
            .missing
            .iter()
            .map(|(t, _)| {
                format!(
                    "- {}",
                    t.get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("a measurement did not come")
                )
            })
            .collect();
        card.detail = Some(lines.join("\n"));
        card.when = list
            .missing
            .iter()
            .filter_map(|(t, _)| t.get("authoredOn")?.as_str())
            .max()
            .unwrap_or_default()
            .to_owned();
        card.suggest(
            "Acknowledge",
            list.missing
                .iter()
                .map(|(t, _)| {
                    Action::update(format!("Mark {} completed", task_ref(t)), acknowledged(t))
                })
                .collect(),
        );
        card.links.extend(measurements_link(request, patient, None));
        cards.push(card);
    }
    if cards.is_empty() && !list.results.is_empty() {
        let green = list
            .results
            .iter()
            .filter(|o| o.colour == Some(Colour::Green))
            .count();
        let other = list.results.len() - green;
        let text = match (green, other) {
            (g, 0) => format!("All telemonitoring results are green: {g} await routine review"),
            (0, o) => format!("No red or yellow results: {o} without a colour need assessment"),
            (g, o) => format!(
                "No red or yellow results: {g} green await routine review, {o} without a colour need assessment"
            ),
        };
        let mut card = Card::new(
            service,
            request,
            Kind::AllGreen,
            patient,
            Indicator::Info,
            &text,
        );
        card.links.extend(measurements_link(request, patient, None));
        cards.push(card);
    }
    cards
}

/// `telemonitoring-appointment-check`: a warning when red results await a decision.
pub(crate) fn appointment_check(request: &HookRequest, data: &Data) -> Result<Vec<Card>, CdsError> {
    let service = &SERVICES[2];
    let patient = request.patient_id()?;
    let list = worklist(data);
    let red: Vec<&Open<'_>> = list
        .results
        .iter()
        .filter(|o| o.colour == Some(Colour::Red))
        .collect();
    if red.is_empty() {
        return Ok(Vec::new());
    }
    let starts: Vec<String> = request
        .context_resources("appointments")
        .filter_map(|a| a.get("start")?.as_str().map(text::time))
        .collect();
    let summary = match red.len() {
        1 => "1 red home measurement awaits a decision: consider seeing the patient sooner"
            .to_owned(),
        n => format!(
            "{n} red home measurements await a decision: consider seeing the patient sooner"
        ),
    };
    let keys: Vec<String> = red.iter().map(|o| task_ref(o.task)).collect();
    let mut card = Card::new(
        service,
        request,
        Kind::RedBeforeAppointment,
        &keys.join(","),
        Indicator::Warning,
        &summary,
    );
    let mut detail: Vec<String> = red
        .iter()
        .map(|o| format!("- {}", describe(o, Colour::Red).0))
        .collect();
    if !starts.is_empty() {
        detail.push(format!(
            "\nThe appointment being booked starts {}.",
            starts.join(", ")
        ));
    }
    card.detail = Some(detail.join("\n"));
    card.links.extend(measurements_link(request, patient, None));
    Ok(vec![card])
}
