//! Triage of questionnaire answers from the answer significance of the
//! Questionnaire's items.

use serde_json::{Value, json};

use super::*;
use crate::common::TestServer;

const SIGNIFICANCE: &str =
    "http://ehealth.sundhed.dk/fhir/StructureDefinition/ehealth-answer-significance";
const INDICATOR: &str = "http://ehealth.sundhed.dk/cs/questionnaire-item-significance-indicator";

both_stores!(
    answers_red_yellow_and_intervals,
    a_questionnaire_without_significance
);

fn significance(colour: &str, conditions: &[(&str, Value)]) -> Value {
    let mut parts =
        vec![json!({"url": "significance", "valueCoding": {"system": INDICATOR, "code": colour}})];
    for (op, answer) in conditions {
        parts.push(json!({"url": "condition", "extension": [
            {"url": "operator", "valueCode": op}, {"url": "answer", "valueInteger": answer},
        ]}));
    }
    json!({"url": SIGNIFICANCE, "extension": parts})
}

fn answers(questionnaire: &str, breathless: i64) -> Value {
    json!({
        "resourceType": "QuestionnaireResponse", "status": "completed",
        "questionnaire": questionnaire,
        "subject": {"reference": "Patient/pat"},
        "basedOn": [{"reference": "ServiceRequest/spo2"}],
        "item": [{"linkId": "breathless", "answer": [{"valueInteger": breathless}]}],
    })
}

async fn answers_red_yellow_and_intervals(s: &TestServer) {
    setup(s).await;
    let q = json!({
        "resourceType": "Questionnaire", "id": "copd", "status": "active",
        "url": "http://example.org/Questionnaire/copd",
        "item": [{"linkId": "breathless", "type": "integer", "text": "Breathlessness 0-10", "extension": [
            significance("red", &[(">=", json!(8))]),
            significance("yellow", &[(">=", json!(5)), ("<=", json!(7))]),
        ]}],
    });
    expect(&s.put("Questionnaire/copd", &q).await, 201);
    let refs = submit(
        s,
        &[
            answers("http://example.org/Questionnaire/copd", 9),
            answers("http://example.org/Questionnaire/copd", 5),
            answers("Questionnaire/copd", 7),
            answers("http://example.org/Questionnaire/copd", 4),
        ],
    )
    .await;
    for (reference, (colour, priority)) in refs.iter().zip([
        ("red", "asap"),
        ("yellow", "urgent"),
        ("yellow", "urgent"),
        ("green", "routine"),
    ]) {
        let t = triaged(s, reference).await;
        assert_eq!(t.colour().as_deref(), Some(colour), "{reference}");
        assert_eq!(t.priority(), priority);
        assert_eq!(t.task["owner"]["reference"], "CareTeam/team");
        assert_eq!(t.notice.is_some(), colour != "green");
    }
    // The matched answer is recorded as the basis.
    let red = triaged(s, &refs[0]).await;
    let basis: Vec<&str> = red.impression["finding"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["basis"].as_str())
        .collect();
    assert_eq!(basis, vec!["breathless = 9 (red)"]);
}

async fn a_questionnaire_without_significance(s: &TestServer) {
    setup(s).await;
    let q = json!({"resourceType": "Questionnaire", "id": "plain", "status": "active",
        "item": [{"linkId": "breathless", "type": "integer"}]});
    expect(&s.put("Questionnaire/plain", &q).await, 201);
    let refs = submit(s, &[answers("Questionnaire/plain", 9)]).await;
    let t = triaged(s, &refs[0]).await;
    assert_eq!(t.colour(), None);
    assert_eq!(t.category(), "MeasurementForAssessment");
    assert_eq!(t.priority(), "routine");
}
