//! The services on hand-worked fixtures, without a store: every prefetch is sent.

use serde_json::{Value, json};

use crate::card::{Kind, check, origin};
use crate::{HookRequest, SERVICES, evaluate, service};

const ZONE: &str = "urn:oid:1.2.208.184.100.1";
const UCUM: &str = "http://unitsofmeasure.org";
const LOINC: &str = "http://loinc.org";
const CATEGORY: &str = "http://ehealth.sundhed.dk/cs/task-category";
const FINDING: &str = "http://ehealth.sundhed.dk/cs/clinicalimpression-finding-codes";
const THRESHOLD: &str = "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-referenceRange";

fn q(v: i64, unit: &str) -> Value {
    json!({"value": v, "unit": unit, "system": UCUM, "code": unit})
}

fn range(kind: &str, low: Option<Value>, high: Option<Value>) -> Value {
    let mut r = json!({"type": {"coding": [{"system": ZONE, "code": kind}]}});
    if let Some(l) = low {
        r["low"] = l;
    }
    if let Some(h) = high {
        r["high"] = h;
    }
    r
}

/// A threshold extension of an order.
fn threshold(kind: &str, low: Option<Value>, high: Option<Value>) -> Value {
    let mut parts = vec![
        json!({"url": "type", "valueCodeableConcept": {"coding": [{"system": ZONE, "code": kind}]}}),
    ];
    if let Some(l) = low {
        parts.push(json!({"url": "low", "valueQuantity": l}));
    }
    if let Some(h) = high {
        parts.push(json!({"url": "high", "valueQuantity": h}));
    }
    json!({"url": THRESHOLD, "extension": parts})
}

fn entry(r: Value) -> Value {
    json!({"resource": r})
}

fn bundle(resources: Vec<Value>) -> Value {
    json!({"resourceType": "Bundle", "type": "searchset", "entry": resources.into_iter().map(entry).collect::<Vec<_>>()})
}

/// A triage result: Task, ClinicalImpression and Observation.
fn result(key: &str, colour: &str, priority: &str, status: &str, obs: Value) -> Vec<Value> {
    vec![
        json!({"resourceType": "Task", "id": format!("task-{key}"), "status": status, "intent": "order",
               "priority": priority, "code": {"coding": [{"system": CATEGORY, "code": "MeasurementForAssessment"}]},
               "focus": {"reference": format!("ClinicalImpression/triage-{key}")},
               "for": {"reference": "Patient/p1"}, "authoredOn": "2026-12-01T10:00:00Z",
               "description": format!("Triage {colour}")}),
        json!({"resourceType": "ClinicalImpression", "id": format!("triage-{key}"), "status": "completed",
               "subject": {"reference": "Patient/p1"}, "summary": format!("Triage {colour}"),
               "investigation": [{"code": {"text": "x"}, "item": [{"reference": format!("Observation/{key}")}]}],
               "finding": [{"itemCodeableConcept": {"coding": [{"system": FINDING, "code": colour}]}}]}),
        obs,
    ]
}

fn observation(id: &str, code: &str, value: Value, when: &str, ranges: Vec<Value>) -> Value {
    json!({"resourceType": "Observation", "id": id, "status": "final",
           "code": {"coding": [{"system": LOINC, "code": code}]},
           "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when,
           "valueQuantity": value, "referenceRange": ranges})
}

fn spo2_red() -> Vec<Value> {
    let zones = vec![
        range("RAL", None, Some(q(85, "%"))),
        range("GAL", Some(q(85, "%")), Some(q(88, "%"))),
    ];
    result(
        "spo2",
        "red",
        "asap",
        "requested",
        observation(
            "spo2",
            "59408-5",
            q(84, "%"),
            "2026-12-01T08:30:00+01:00",
            zones,
        ),
    )
}

fn pulse_yellow() -> Vec<Value> {
    let zones = vec![
        range("RAL", Some(q(130, "/min")), None),
        range("GAL", Some(q(100, "/min")), Some(q(129, "/min"))),
    ];
    result(
        "pulse",
        "yellow",
        "urgent",
        "requested",
        observation(
            "pulse",
            "8867-4",
            q(105, "/min"),
            "2026-12-02T09:00:00+01:00",
            zones,
        ),
    )
}

fn green(key: &str) -> Vec<Value> {
    let zones = vec![range("RAL", None, Some(q(85, "%")))];
    result(
        key,
        "green",
        "routine",
        "requested",
        observation(
            key,
            "59408-5",
            q(97, "%"),
            "2026-12-01T07:00:00+01:00",
            zones,
        ),
    )
}

fn missing() -> Vec<Value> {
    vec![
        json!({"resourceType": "Task", "id": "missing-w", "status": "requested", "intent": "order", "priority": "routine",
               "code": {"coding": [{"system": CATEGORY, "code": "MissingMeasurementResolving"}]},
               "focus": {"reference": "ServiceRequest/weight"}, "for": {"reference": "Patient/p1"},
               "authoredOn": "2026-12-03T06:00:00Z", "description": "No body weight in the week to 2026-12-02"}),
        json!({"resourceType": "ServiceRequest", "id": "weight", "status": "active", "intent": "order",
               "code": {"coding": [{"system": LOINC, "code": "29463-7"}]}, "subject": {"reference": "Patient/p1"}}),
    ]
}

fn call_body(hook: &str, context: Value, prefetch: Value) -> Value {
    let mut ctx = json!({"userId": "Practitioner/doc", "patientId": "p1"});
    for (k, v) in context.as_object().unwrap() {
        ctx[k] = v.clone();
    }
    json!({"hook": hook, "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
           "fhirServer": "https://ehr.example.org/fhir", "context": ctx, "prefetch": prefetch})
}

async fn run(id: &str, body: Value) -> Value {
    let service = service(id).unwrap();
    let request = HookRequest::parse(service, &body).unwrap();
    let response = evaluate(service, &request, None).await.unwrap().to_json();
    assert_eq!(check(&response), Vec::<String>::new(), "{response:#}");
    response
}

fn summaries(response: &Value) -> Vec<(String, String)> {
    response["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["indicator"].as_str().unwrap().to_owned(),
                c["summary"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn patient_view_red_yellow_missing_most_urgent_first() {
    let mut all = spo2_red();
    all.extend(pulse_yellow());
    all.extend(green("g1"));
    all.extend(missing());
    // Resolved: no card.
    all.extend(result(
        "old",
        "red",
        "asap",
        "completed",
        observation("old", "59408-5", q(80, "%"), "2026-11-01T08:00:00Z", vec![]),
    ));
    let body = call_body("patient-view", json!({}), json!({"tasks": bundle(all)}));
    let response = run("telemonitoring-summary", body).await;
    assert_eq!(
        summaries(&response),
        [
            (
                "critical".into(),
                "Red: Oxygen saturation 84 % (red zone ≤ 85 %) at 2026-12-01 08:30".into()
            ),
            ("warning".into(), "Missing measurements: Body weight".into()),
            (
                "warning".into(),
                "Yellow: Pulse 105 /min (yellow zone 100–129 /min) at 2026-12-02 09:00".into()
            ),
        ]
    );
    let red = &response["cards"][0];
    assert_eq!(red["selectionBehavior"], "at-most-one");
    let action = &red["suggestions"][0]["actions"][0];
    assert_eq!(action["type"], "update");
    assert_eq!(action["resource"]["id"], "task-spo2");
    assert_eq!(action["resource"]["status"], "completed");
    assert_eq!(
        red["links"][0]["url"],
        "https://ehr.example.org/fhir/Observation?subject=Patient/p1&_sort=-date&code=http%3A%2F%2Floinc.org%7C59408-5"
    );
    assert_eq!(
        origin(red["uuid"].as_str().unwrap()).map(|(s, k)| (s.id, k)),
        Some(("telemonitoring-summary", Kind::RedResult))
    );
    let missing = &response["cards"][1];
    assert_eq!(
        missing["suggestions"][0]["actions"][0]["resource"]["id"],
        "missing-w"
    );
    assert!(
        missing["detail"]
            .as_str()
            .unwrap()
            .contains("No body weight")
    );
}

#[tokio::test]
async fn patient_view_all_green_is_information_and_nothing_is_empty() {
    let mut all = green("g1");
    all.extend(green("g2"));
    let response = run(
        "telemonitoring-summary",
        call_body("patient-view", json!({}), json!({"tasks": bundle(all)})),
    )
    .await;
    assert_eq!(
        summaries(&response),
        [(
            "info".into(),
            "All telemonitoring results are green: 2 await routine review".into()
        )]
    );
    let response = run(
        "telemonitoring-summary",
        call_body("patient-view", json!({}), json!({"tasks": bundle(vec![])})),
    )
    .await;
    assert_eq!(response, json!({"cards": []}));
}

#[tokio::test]
async fn the_same_hook_instance_gives_the_same_card_uuids() {
    let body = call_body(
        "patient-view",
        json!({}),
        json!({"tasks": bundle(spo2_red())}),
    );
    let a = run("telemonitoring-summary", body.clone()).await;
    let b = run("telemonitoring-summary", body).await;
    assert_eq!(a["cards"][0]["uuid"], b["cards"][0]["uuid"]);
}

fn draft(id: &str, code: &str, extensions: Vec<Value>) -> Value {
    json!({"resourceType": "ServiceRequest", "id": id, "status": "draft", "intent": "order",
           "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": "Patient/p1"},
           "extension": extensions})
}

#[tokio::test]
async fn order_sign_warns_and_fixes() {
    let drafts = vec![
        draft("no-zones", "59408-5", vec![]),
        draft(
            "swapped",
            "59408-5",
            vec![threshold("RAL", Some(q(90, "%")), Some(q(85, "%")))],
        ),
        draft(
            "covered",
            "9279-1",
            vec![
                threshold("RAL", None, Some(q(10, "/min"))),
                threshold("RAL", Some(q(8, "/min")), None),
                threshold("GAL", Some(q(9, "/min")), Some(q(12, "/min"))),
            ],
        ),
        draft(
            "kg-percent",
            "29463-7",
            vec![threshold("RAL", None, Some(q(100, "%")))],
        ),
        draft(
            "twin",
            "8867-4",
            vec![threshold("RAL", None, Some(q(40, "/min")))],
        ),
        // Not a telemonitoring order.
        draft("xray", "36643-5", vec![]),
    ];
    let bundle_of_drafts = json!({"resourceType": "Bundle", "type": "collection", "entry": drafts.into_iter().map(entry).collect::<Vec<_>>()});
    let active = bundle(vec![
        json!({"resourceType": "ServiceRequest", "id": "pulse", "status": "active", "intent": "order",
        "code": {"coding": [{"system": LOINC, "code": "8867-4"}]}, "subject": {"reference": "Patient/p1"}}),
    ]);
    let body = call_body(
        "order-sign",
        json!({"draftOrders": bundle_of_drafts}),
        json!({"orders": active}),
    );
    let response = run("telemonitoring-order-check", body).await;
    let cards = response["cards"].as_array().unwrap();
    let kinds: Vec<Kind> = cards
        .iter()
        .map(|c| origin(c["uuid"].as_str().unwrap()).unwrap().1)
        .collect();
    assert_eq!(
        kinds,
        [
            Kind::NoThresholds,
            Kind::ContradictoryThresholds,
            Kind::ContradictoryThresholds,
            Kind::IncommensurableUnit,
            Kind::DuplicateOrder
        ]
    );
    assert!(cards.iter().all(|c| c["indicator"] == "warning"));
    assert_eq!(
        cards[0]["summary"],
        "Oxygen saturation order has no alarm thresholds: its measurements will not be triaged"
    );
    assert!(cards[0].get("suggestions").is_none());
    // Low above high: the fix swaps them.
    assert_eq!(
        cards[1]["summary"],
        "Oxygen saturation order: a red zone's low 90 % is above its high 85 %"
    );
    let fixed = &cards[1]["suggestions"][0]["actions"][0]["resource"];
    let parts = &fixed["extension"][0]["extension"];
    assert_eq!(
        (
            parts[1]["url"].as_str(),
            parts[1]["valueQuantity"]["value"].to_string()
        ),
        (Some("high"), "90".into())
    );
    assert_eq!(
        (
            parts[2]["url"].as_str(),
            parts[2]["valueQuantity"]["value"].to_string()
        ),
        (Some("low"), "85".into())
    );
    // A yellow zone inside the red ones: the fix removes it.
    assert_eq!(
        cards[2]["summary"],
        "Respiratory rate order: the yellow zone 9–12 /min lies inside the red zones and can never be reached"
    );
    let fixed = &cards[2]["suggestions"][0]["actions"][0]["resource"];
    assert_eq!(fixed["extension"].as_array().unwrap().len(), 2);
    assert_eq!(fixed["id"], "covered");
    assert_eq!(
        cards[3]["summary"],
        "Body weight order: the threshold unit % cannot be compared with kg, the unit of Body weight"
    );
    // A duplicate: the fix deletes the draft.
    assert_eq!(
        cards[4]["summary"],
        "Pulse is already ordered for this patient: ServiceRequest/pulse is active"
    );
    let action = &cards[4]["suggestions"][0]["actions"][0];
    assert_eq!(
        (action["type"].as_str(), action["resourceId"].as_str()),
        (Some("delete"), Some("ServiceRequest/twin"))
    );
    assert!(action.get("resource").is_none());
}

#[tokio::test]
async fn a_yellow_zone_partly_outside_the_red_ones_is_fine() {
    let drafts = vec![draft(
        "ok",
        "59408-5",
        vec![
            threshold("RAL", None, Some(q(85, "%"))),
            threshold("GAL", Some(q(85, "%")), Some(q(88, "%"))),
        ],
    )];
    let bundle_of_drafts = json!({"resourceType": "Bundle", "type": "collection", "entry": drafts.into_iter().map(entry).collect::<Vec<_>>()});
    let body = call_body(
        "order-sign",
        json!({"draftOrders": bundle_of_drafts}),
        json!({"orders": bundle(vec![])}),
    );
    assert_eq!(
        run("telemonitoring-order-check", body).await,
        json!({"cards": []})
    );
}

#[tokio::test]
async fn appointment_book_warns_only_with_red_results() {
    let appointments = json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "Appointment", "id": "a1", "status": "proposed", "start": "2027-01-20T10:00:00+01:00",
        "participant": [{"actor": {"reference": "Patient/p1"}, "status": "needs-action"}]}}]});
    let mut all = spo2_red();
    all.extend(pulse_yellow());
    let body = call_body(
        "appointment-book",
        json!({"appointments": appointments.clone()}),
        json!({"tasks": bundle(all)}),
    );
    let response = run("telemonitoring-appointment-check", body).await;
    assert_eq!(
        summaries(&response),
        [(
            "warning".into(),
            "1 red home measurement awaits a decision: consider seeing the patient sooner".into()
        )]
    );
    assert!(
        response["cards"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("2027-01-20 10:00")
    );
    let body = call_body(
        "appointment-book",
        json!({"appointments": appointments}),
        json!({"tasks": bundle(pulse_yellow())}),
    );
    assert_eq!(
        run("telemonitoring-appointment-check", body).await,
        json!({"cards": []})
    );
}

#[test]
fn malformed_requests_are_refused() {
    let summary = service("telemonitoring-summary").unwrap();
    let good = call_body("patient-view", json!({}), json!({}));
    assert!(HookRequest::parse(summary, &good).is_ok());
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "JSON object"),
        (
            json!({"hook": "order-sign"}),
            "answers the hook patient-view",
        ),
        (
            {
                let mut b = good.clone();
                b["hookInstance"] = json!("x");
                b
            },
            "hookInstance",
        ),
        (
            {
                let mut b = good.clone();
                b["fhirServer"] = json!("ftp://x");
                b
            },
            "fhirServer",
        ),
        (
            {
                let mut b = good.clone();
                b["fhirServer"] = json!("http://ehr.example.org/fhir");
                b
            },
            "fhirServer",
        ),
        (
            {
                let mut b = good.clone();
                b["context"]["patientId"] = json!("a&b=c");
                b
            },
            "patientId",
        ),
        (
            {
                let mut b = good.clone();
                b["context"].as_object_mut().unwrap().remove("userId");
                b
            },
            "userId",
        ),
        (
            {
                let mut b = good.clone();
                b["prefetch"] = json!({"tasks": 3});
                b
            },
            "prefetch.tasks",
        ),
        (
            {
                let mut b = good.clone();
                b["fhirAuthorization"] = json!({"access_token": "t"});
                b
            },
            "fhirAuthorization",
        ),
    ];
    for (body, expected) in cases {
        let e = HookRequest::parse(summary, &body).unwrap_err().to_string();
        assert!(e.contains(expected), "{body}: {e}");
    }
    let order = service("telemonitoring-order-check").unwrap();
    let e = HookRequest::parse(order, &call_body("order-sign", json!({}), json!({}))).unwrap_err();
    assert!(e.to_string().contains("draftOrders"), "{e}");
}

#[tokio::test]
async fn without_prefetch_or_source_the_call_is_a_412() {
    let summary = service("telemonitoring-summary").unwrap();
    let request =
        HookRequest::parse(summary, &call_body("patient-view", json!({}), json!({}))).unwrap();
    let e = evaluate(summary, &request, None).await.unwrap_err();
    assert_eq!(e.status(), 412, "{e}");
}

#[test]
fn discovery_uses_only_the_specification_tokens() {
    let d = crate::discovery();
    let services = d["services"].as_array().unwrap();
    assert_eq!(services.len(), SERVICES.len());
    for s in services {
        for key in ["hook", "id", "title", "description"] {
            assert!(s[key].as_str().is_some_and(|v| !v.is_empty()), "{s}");
        }
        for template in s["prefetch"].as_object().unwrap().values() {
            let t = template.as_str().unwrap();
            let tokens: Vec<&str> = t
                .split("{{")
                .skip(1)
                .map(|x| x.split("}}").next().unwrap())
                .collect();
            assert!(!tokens.is_empty());
            assert!(
                tokens
                    .iter()
                    .all(|t| t.starts_with("context.") || t.starts_with("user")),
                "{t}"
            );
        }
    }
}

#[test]
fn the_checker_finds_every_broken_rule() {
    let bad = json!({"cards": [{
        "uuid": "not-a-uuid",
        "summary": "x".repeat(140),
        "indicator": "severe",
        "source": {},
        "detail": "",
        "overrideReasons": [{"code": "x"}],
        "suggestions": [
            {"label": "a", "uuid": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "isRecommended": true,
             "actions": [{"type": "delete", "description": "d", "resource": {"resourceType": "Task"}}]},
            {"label": "b", "uuid": "d1577c69-dfbe-44ad-ba6d-3e05e953b2eb", "isRecommended": true, "actions": []},
        ],
        "links": [{"label": "l", "url": null}],
    }]});
    let problems = check(&bad).join("\n");
    for expected in [
        "summary: 140 characters",
        "indicator",
        "source.label",
        "uuid: required",
        "selectionBehavior: required",
        "a delete needs a resourceId",
        "a delete has no resource",
        "overrideReasons[0]",
        "links[0]",
        "$.cards[0].detail: empty string",
        "$.cards[0].source: empty object",
        "actions: empty array",
        "url: null",
    ] {
        assert!(
            problems.contains(expected),
            "{expected} not in:\n{problems}"
        );
    }
    let mut two = bad.clone();
    two["cards"][0]["selectionBehavior"] = json!("at-most-one");
    assert!(
        check(&two)
            .join("\n")
            .contains("more than one isRecommended")
    );
    assert_eq!(check(&json!({"cards": []})), Vec::<String>::new());
}
