//! The colour of a questionnaire response, from the answer significance its
//! Questionnaire's items define: pure functions over JSON.
//!
//! An item may carry extensions [`SIGNIFICANCE_URL`], each with a `significance`
//! (`valueCoding`, `green|yellow|red` in [`SIGNIFICANCE_SYSTEM`]) and one or two
//! `condition`s. A condition has an `operator` (`valueCode`: `=`, `!=`, `>`, `<`,
//! `>=`, `<=`) and an `answer` (`valueBoolean`, `valueInteger`, `valueDecimal`,
//! `valueString` or `valueCoding`); an answer meets the significance when it meets
//! every condition, so two conditions form an interval. The worst significance that an
//! answer meets sets the colour.

use ember_fhir::fhirpath::Decimal;
use serde_json::Value;

use crate::codes::{SIGNIFICANCE_SYSTEM, SIGNIFICANCE_URL};
use crate::zones::{Colour, array};

/// An answer that met a significance: the item's `linkId`, the answer's value and the
/// colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    pub link_id: String,
    pub answer: String,
    pub colour: Colour,
}

/// The judgement of a response: `None` when the Questionnaire defines no significance
/// at all (a clinician assesses it); otherwise the matched answers, worst first
/// (none matched: green).
pub fn judge(questionnaire: &Value, response: &Value) -> Result<Option<Vec<Matched>>, String> {
    let mut rules = Vec::new();
    collect_rules(array(questionnaire, "item"), &mut rules)?;
    if rules.is_empty() {
        return Ok(None);
    }
    let mut answers = Vec::new();
    collect_answers(array(response, "item"), &mut answers);
    let mut matched = Vec::new();
    for (link_id, answer) in answers {
        let worst = rules
            .iter()
            .filter(|r| r.link_id == link_id && r.conditions.iter().all(|c| c.met_by(answer)))
            .map(|r| r.colour)
            .max();
        if let Some(colour) = worst {
            matched.push(Matched {
                link_id: link_id.to_owned(),
                answer: answer_text(answer),
                colour,
            });
        }
    }
    matched.sort_by_key(|m| std::cmp::Reverse(m.colour));
    Ok(Some(matched))
}

/// The colour of a judged response.
pub fn colour(matched: &[Matched]) -> Colour {
    matched
        .iter()
        .map(|m| m.colour)
        .max()
        .unwrap_or(Colour::Green)
}

struct Rule<'a> {
    link_id: &'a str,
    colour: Colour,
    conditions: Vec<Condition<'a>>,
}

struct Condition<'a> {
    operator: &'a str,
    /// `(answer[x] element name, value)`.
    answer: (&'a str, &'a Value),
}

impl Condition<'_> {
    fn met_by(&self, answer: &Value) -> bool {
        let (kind, expected) = self.answer;
        let Some(given) = answer.get(kind) else {
            return false;
        };
        let order = match kind {
            "valueInteger" | "valueDecimal" => {
                let (Some(a), Some(b)) = (decimal(given), decimal(expected)) else {
                    return false;
                };
                a.cmp_value(&b)
            }
            "valueCoding" => {
                let same = given.get("system") == expected.get("system")
                    && given.get("code") == expected.get("code");
                return match self.operator {
                    "=" => same,
                    "!=" => !same,
                    _ => false,
                };
            }
            "valueBoolean" => match (given.as_bool(), expected.as_bool()) {
                (Some(a), Some(b)) => a.cmp(&b),
                _ => return false,
            },
            _ => match (given.as_str(), expected.as_str()) {
                (Some(a), Some(b)) => a.cmp(b),
                _ => return false,
            },
        };
        match self.operator {
            "=" => order.is_eq(),
            "!=" => order.is_ne(),
            ">" => order.is_gt(),
            "<" => order.is_lt(),
            ">=" => order.is_ge(),
            "<=" => order.is_le(),
            _ => false,
        }
    }
}

const ANSWER_KINDS: [&str; 5] = [
    "valueBoolean",
    "valueInteger",
    "valueDecimal",
    "valueString",
    "valueCoding",
];
const OPERATORS: [&str; 6] = ["=", "!=", ">", "<", ">=", "<="];

fn collect_rules<'a>(items: &'a [Value], out: &mut Vec<Rule<'a>>) -> Result<(), String> {
    for item in items {
        let link_id = item
            .get("linkId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for ext in array(item, "extension")
            .iter()
            .filter(|e| e.get("url").and_then(Value::as_str) == Some(SIGNIFICANCE_URL))
        {
            let parts = array(ext, "extension");
            let colour = parts
                .iter()
                .filter(|p| p.get("url").and_then(Value::as_str) == Some("significance"))
                .filter_map(|p| p.get("valueCoding"))
                .find(|c| c.get("system").and_then(Value::as_str) == Some(SIGNIFICANCE_SYSTEM))
                .and_then(|c| c.get("code").and_then(Value::as_str))
                .and_then(Colour::parse)
                .ok_or_else(|| {
                    format!("item {link_id:?}: an answer significance without a green, yellow or red significance")
                })?;
            let mut conditions = Vec::new();
            for cond in parts
                .iter()
                .filter(|p| p.get("url").and_then(Value::as_str) == Some("condition"))
            {
                let sub = array(cond, "extension");
                let find = |url: &str| {
                    sub.iter()
                        .find(|e| e.get("url").and_then(Value::as_str) == Some(url))
                };
                let operator = find("operator")
                    .and_then(|e| e.get("valueCode"))
                    .and_then(Value::as_str)
                    .filter(|o| OPERATORS.contains(o))
                    .ok_or_else(|| {
                        format!("item {link_id:?}: a condition without a valid operator")
                    })?;
                let answer = find("answer")
                    .and_then(|e| ANSWER_KINDS.iter().find_map(|k| e.get(*k).map(|v| (*k, v))))
                    .ok_or_else(|| format!("item {link_id:?}: a condition without an answer"))?;
                conditions.push(Condition { operator, answer });
            }
            if conditions.is_empty() || conditions.len() > 2 {
                return Err(format!(
                    "item {link_id:?}: an answer significance needs one or two conditions"
                ));
            }
            out.push(Rule {
                link_id,
                colour,
                conditions,
            });
        }
        collect_rules(array(item, "item"), out)?;
    }
    Ok(())
}

/// Every answer of a response, with its item's `linkId`, nested items included.
fn collect_answers<'a>(items: &'a [Value], out: &mut Vec<(&'a str, &'a Value)>) {
    for item in items {
        let link_id = item
            .get("linkId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for answer in array(item, "answer") {
            out.push((link_id, answer));
            collect_answers(array(answer, "item"), out);
        }
        collect_answers(array(item, "item"), out);
    }
}

fn decimal(v: &Value) -> Option<Decimal> {
    Decimal::parse(&match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

fn answer_text(answer: &Value) -> String {
    ANSWER_KINDS
        .iter()
        .find_map(|k| answer.get(*k))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Object(_) => v
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn significance(colour: &str, conditions: &[(&str, Value)]) -> Value {
        let mut parts = vec![
            json!({"url": "significance", "valueCoding": {"system": SIGNIFICANCE_SYSTEM, "code": colour}}),
        ];
        for (op, answer) in conditions {
            parts.push(json!({"url": "condition", "extension": [
                {"url": "operator", "valueCode": op},
                {"url": "answer", "valueInteger": answer},
            ]}));
        }
        json!({"url": SIGNIFICANCE_URL, "extension": parts})
    }

    fn questionnaire() -> Value {
        json!({"resourceType": "Questionnaire", "item": [
            {"linkId": "breathless", "type": "integer", "extension": [
                significance("red", &[(">=", json!(8))]),
                // An interval: 5 to 7.
                significance("yellow", &[(">=", json!(5)), ("<=", json!(7))]),
            ]},
            {"linkId": "group", "type": "group", "item": [
                {"linkId": "cough", "type": "boolean", "extension": [{
                    "url": SIGNIFICANCE_URL, "extension": [
                        {"url": "significance", "valueCoding": {"system": SIGNIFICANCE_SYSTEM, "code": "yellow"}},
                        {"url": "condition", "extension": [
                            {"url": "operator", "valueCode": "="},
                            {"url": "answer", "valueBoolean": true},
                        ]},
                    ],
                }]},
            ]},
        ]})
    }

    fn response(breathless: i64, cough: bool) -> Value {
        json!({"resourceType": "QuestionnaireResponse", "item": [
            {"linkId": "breathless", "answer": [{"valueInteger": breathless}]},
            {"linkId": "group", "item": [{"linkId": "cough", "answer": [{"valueBoolean": cough}]}]},
        ]})
    }

    #[test]
    fn the_worst_matching_answer_sets_the_colour() {
        let q = questionnaire();
        let judged = |b, c| judge(&q, &response(b, c)).unwrap().unwrap();
        assert_eq!(colour(&judged(2, false)), Colour::Green);
        assert!(judged(2, false).is_empty());
        assert_eq!(colour(&judged(4, true)), Colour::Yellow);
        for (b, expected) in [
            (4, Colour::Green),
            (5, Colour::Yellow),
            (7, Colour::Yellow),
            (8, Colour::Red),
            (10, Colour::Red),
        ] {
            assert_eq!(colour(&judged(b, false)), expected, "{b}");
        }
        let red = judged(9, true);
        assert_eq!(
            red[0],
            Matched {
                link_id: "breathless".into(),
                answer: "9".into(),
                colour: Colour::Red
            }
        );
        assert_eq!(red[1].link_id, "cough");
    }

    #[test]
    fn no_significance_means_assessment_and_bad_rules_are_errors() {
        let plain = json!({"item": [{"linkId": "a", "type": "integer"}]});
        assert_eq!(judge(&plain, &response(9, true)).unwrap(), None);
        let bad = json!({"item": [{"linkId": "a", "extension": [significance("red", &[])]}]});
        assert!(judge(&bad, &response(9, true)).is_err());
        let purple = json!({"item": [{"linkId": "a", "extension": [significance("purple", &[("=", json!(1))])]}]});
        assert!(judge(&purple, &response(9, true)).is_err());
    }
}
