//! Feedback (`POST /cds-services/{id}/feedback`): what the clinician did with a card,
//! accepted or overridden (with the reason), recorded once per card and outcome in the
//! shared key-value store for a year, so a client that sends the same feedback again
//! changes nothing.

use ember_repo::{Repo, RepoError};
use ember_store::KvExpect;
use serde_json::{Value, json};

use crate::card::{Kind, origin};
use crate::replay::NAMESPACE;
use crate::{CdsError, Service};

/// One outcome recorded for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub service: &'static str,
    pub kind: Kind,
    /// `accepted` or `overridden`.
    pub outcome: &'static str,
}

/// Checks every item of a feedback request, then records each one not recorded
/// before; the newly recorded ones, for metrics.
pub async fn record_feedback(
    repo: &Repo,
    service: &'static Service,
    body: &Value,
) -> Result<Vec<Recorded>, CdsError> {
    let bad = |m: String| CdsError::BadRequest(m);
    let items = body
        .get("feedback")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("feedback: required, a non-empty array".into()))?;
    let mut checked = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("feedback[{i}]");
        let card = item
            .get("card")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(format!("{at}.card: required, the card's uuid")))?;
        let kind = match origin(card) {
            Some((s, kind)) if s.id == service.id => kind,
            _ => return Err(bad(format!("{at}.card: not a card of {}", service.id))),
        };
        let outcome = match item.get("outcome").and_then(Value::as_str) {
            Some("accepted") => "accepted",
            Some("overridden") => "overridden",
            _ => return Err(bad(format!("{at}.outcome: accepted or overridden"))),
        };
        let timestamp = item.get("outcomeTimestamp").and_then(Value::as_str);
        if timestamp
            .and_then(ember_fhir::instant::parse_range)
            .is_none()
        {
            return Err(bad(format!("{at}.outcomeTimestamp: required, an instant")));
        }
        if outcome == "accepted" {
            let suggestions = item.get("acceptedSuggestions").and_then(Value::as_array);
            let ok = suggestions.is_some_and(|s| {
                !s.is_empty()
                    && s.iter()
                        .all(|x| x.get("id").and_then(Value::as_str).is_some())
            });
            if !ok {
                return Err(bad(format!(
                    "{at}.acceptedSuggestions: required when accepted, each with an id"
                )));
            }
        }
        if let Some(reason) = item.get("overrideReason") {
            let ok = outcome == "overridden"
                && reason.is_object()
                && reason
                    .get("reason")
                    .is_none_or(|r| r.get("code").and_then(Value::as_str).is_some());
            if !ok {
                return Err(bad(format!(
                    "{at}.overrideReason: only when overridden, with a reason Coding"
                )));
            }
        }
        checked.push((card, kind, outcome, item));
    }
    let mut recorded = Vec::new();
    for (card, kind, outcome, item) in checked {
        let value =
            json!({"service": service.id, "cardType": kind.name(), "feedback": item}).to_string();
        let key = format!("feedback/{}/{card}/{outcome}", service.id);
        let put = repo
            .kv_put(
                NAMESPACE,
                &key,
                value.as_bytes(),
                "application/json",
                Some(ember_repo::kv::MAX_TTL),
                KvExpect::Absent,
                64 * 1024,
            )
            .await;
        match put {
            Ok(_) => recorded.push(Recorded {
                service: service.id,
                kind,
                outcome,
            }),
            Err(RepoError::Precondition(_)) => {}
            Err(e) => return Err(CdsError::Repo(e)),
        }
    }
    Ok(recorded)
}
