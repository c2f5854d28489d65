//! Cards as CDS Hooks 2.0 defines them, and [`check`], the specification's rules for a
//! response, which every response Ember produces is tested against.
//!
//! A card's `uuid` is a UUIDv8 that carries the service and the [`Kind`] of card in its
//! last two bytes, so feedback on a card (which names only the uuid) is counted per
//! service and card type without storing the cards that were shown.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{HookRequest, SERVICES, Service};

/// The longest `summary` the specification allows (fewer than 140 characters).
pub const MAX_SUMMARY: usize = 139;

/// What a card is about; its label in metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    RedResult,
    YellowResult,
    MissingMeasurements,
    AllGreen,
    NoThresholds,
    ContradictoryThresholds,
    IncommensurableUnit,
    DuplicateOrder,
    RedBeforeAppointment,
}

const KINDS: [Kind; 9] = [
    Kind::RedResult,
    Kind::YellowResult,
    Kind::MissingMeasurements,
    Kind::AllGreen,
    Kind::NoThresholds,
    Kind::ContradictoryThresholds,
    Kind::IncommensurableUnit,
    Kind::DuplicateOrder,
    Kind::RedBeforeAppointment,
];

impl Kind {
    /// The card type's name, as metrics label it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::RedResult => "red-result",
            Kind::YellowResult => "yellow-result",
            Kind::MissingMeasurements => "missing-measurements",
            Kind::AllGreen => "all-green",
            Kind::NoThresholds => "no-thresholds",
            Kind::ContradictoryThresholds => "contradictory-thresholds",
            Kind::IncommensurableUnit => "incommensurable-unit",
            Kind::DuplicateOrder => "duplicate-order",
            Kind::RedBeforeAppointment => "red-before-appointment",
        }
    }

    fn index(self) -> u8 {
        KINDS.iter().position(|k| *k == self).unwrap_or_default() as u8
    }
}

/// The service and card type a card uuid of Ember's carries; `None` for any other uuid.
pub fn origin(uuid: &str) -> Option<(&'static Service, Kind)> {
    let uuid = Uuid::parse_str(uuid).ok()?;
    if uuid.get_version_num() != 8 {
        return None;
    }
    let bytes = uuid.as_bytes();
    let service = SERVICES.get(usize::from(bytes[14]))?;
    let kind = *KINDS.get(usize::from(bytes[15]))?;
    Some((service, kind))
}

/// The uuid of a card: the same for the same hook instance, service, kind and subject.
pub(crate) fn card_uuid(service: &Service, request: &HookRequest, kind: Kind, key: &str) -> Uuid {
    let seed = format!(
        "{}|{}|{}|{key}",
        service.id,
        request.hook_instance,
        kind.name()
    );
    let mut bytes = *Uuid::new_v5(&Uuid::NAMESPACE_URL, seed.as_bytes()).as_bytes();
    bytes[14] = SERVICES
        .iter()
        .position(|s| s.id == service.id)
        .unwrap_or_default() as u8;
    bytes[15] = kind.index();
    Uuid::new_v8(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    Critical,
    Warning,
    Info,
}

/// `source` of a card.
#[derive(Debug, Clone, Serialize)]
pub struct CardSource {
    pub label: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Coding>,
}

/// A Coding with a display, as `overrideReasons` and `topic` need.
#[derive(Debug, Clone, Serialize)]
pub struct Coding {
    pub system: &'static str,
    pub code: &'static str,
    pub display: &'static str,
}

/// One action of a suggestion.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

impl Action {
    pub fn update(description: String, resource: Value) -> Self {
        Self {
            kind: "update",
            description,
            resource: Some(resource),
            resource_id: None,
        }
    }

    pub fn delete(description: String, reference: String) -> Self {
        Self {
            kind: "delete",
            description,
            resource: None,
            resource_id: Some(reference),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suggestion {
    pub label: String,
    pub uuid: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_recommended: bool,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub label: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// One card.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    pub uuid: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub indicator: Indicator,
    pub source: CardSource,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suggestions: Vec<Suggestion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub override_reasons: Vec<Coding>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// The card type, for metrics; not part of the card.
    #[serde(skip)]
    pub kind: Kind,
    /// Orders cards of the same indicator: later first.
    #[serde(skip)]
    pub when: String,
}

/// The source label of every card.
pub const SOURCE: &str = "Ember telemonitoring";
const OVERRIDE_SYSTEM: &str = "http://ember.dev/fhir/CodeSystem/cds-override-reason";

/// The reasons a clinician can give for not following a card.
pub const OVERRIDE_REASONS: [Coding; 3] = [
    Coding {
        system: OVERRIDE_SYSTEM,
        code: "already-handled",
        display: "Already handled",
    },
    Coding {
        system: OVERRIDE_SYSTEM,
        code: "patient-contacted",
        display: "Patient contacted",
    },
    Coding {
        system: OVERRIDE_SYSTEM,
        code: "not-clinically-relevant",
        display: "Not clinically relevant",
    },
];

impl Card {
    /// A card of `kind` with a summary clipped to the specification's limit; its uuid
    /// derives from the call and `key`.
    pub(crate) fn new(
        service: &Service,
        request: &HookRequest,
        kind: Kind,
        key: &str,
        indicator: Indicator,
        summary: &str,
    ) -> Self {
        Self {
            uuid: card_uuid(service, request, kind, key).to_string(),
            summary: crate::text::clip(summary, MAX_SUMMARY),
            detail: None,
            indicator,
            source: CardSource {
                label: SOURCE,
                topic: None,
            },
            suggestions: Vec::new(),
            selection_behavior: None,
            override_reasons: OVERRIDE_REASONS.to_vec(),
            links: Vec::new(),
            kind,
            when: String::new(),
        }
    }

    /// Adds a suggestion; the first is recommended, and a user takes at most one.
    pub(crate) fn suggest(&mut self, label: &str, actions: Vec<Action>) {
        let n = self.suggestions.len();
        let uuid = Uuid::new_v5(
            &Uuid::NAMESPACE_URL,
            format!("{}#{n}", self.uuid).as_bytes(),
        );
        self.suggestions.push(Suggestion {
            label: label.to_owned(),
            uuid: uuid.to_string(),
            is_recommended: n == 0,
            actions,
        });
        self.selection_behavior = Some("at-most-one");
    }
}

/// The answer of a service call: `{"cards": […]}`, most urgent first.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    pub cards: Vec<Card>,
    /// The service that answered, for metrics.
    #[serde(skip)]
    pub service: &'static str,
}

impl Response {
    pub(crate) fn new(service: &'static Service, mut cards: Vec<Card>) -> Self {
        // Within an indicator the latest first, by instant (offsets and precisions differ).
        let at = |c: &Card| ember_fhir::instant::parse_range(&c.when).map(|(from, _)| from);
        cards.sort_by(|a, b| {
            a.indicator
                .cmp(&b.indicator)
                .then_with(|| at(b).cmp(&at(a)))
        });
        Self {
            cards,
            service: service.id,
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// Every way `response` breaks the specification's rules for a CDS service response:
/// required fields, `summary` under 140 characters, no `null` or empty values,
/// `selectionBehavior` with suggestions, at most one recommended suggestion under
/// `at-most-one`, override reasons with a display, and delete actions with a
/// `resourceId` and no resource.
pub fn check(response: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    empty_values(response, "$", &mut problems);
    let Some(cards) = response.get("cards").and_then(Value::as_array) else {
        problems.push("cards: required, an array".into());
        return problems;
    };
    for (i, card) in cards.iter().enumerate() {
        let at = format!("cards[{i}]");
        let text = |name: &str| card.get(name).and_then(Value::as_str);
        match text("summary") {
            Some(s) if s.chars().count() <= MAX_SUMMARY => {}
            Some(_) => problems.push(format!("{at}.summary: 140 characters or more")),
            None => problems.push(format!("{at}.summary: required")),
        }
        if !matches!(text("indicator"), Some("info" | "warning" | "critical")) {
            problems.push(format!("{at}.indicator: info, warning or critical"));
        }
        if card
            .pointer("/source/label")
            .and_then(Value::as_str)
            .is_none()
        {
            problems.push(format!("{at}.source.label: required"));
        }
        if text("uuid").and_then(|u| Uuid::parse_str(u).ok()).is_none() {
            problems.push(format!("{at}.uuid: required, a UUID"));
        }
        let suggestions = card.get("suggestions").and_then(Value::as_array);
        let behavior = text("selectionBehavior");
        match (suggestions, behavior) {
            (Some(_), None) => {
                problems.push(format!("{at}.selectionBehavior: required with suggestions"))
            }
            (_, Some(b)) if !matches!(b, "at-most-one" | "any") => {
                problems.push(format!("{at}.selectionBehavior: at-most-one or any"))
            }
            _ => {}
        }
        let suggestions = suggestions.map(Vec::as_slice).unwrap_or_default();
        let recommended = suggestions
            .iter()
            .filter(|s| s.get("isRecommended") == Some(&Value::Bool(true)))
            .count();
        if behavior == Some("at-most-one") && recommended > 1 {
            problems.push(format!(
                "{at}.suggestions: more than one isRecommended with at-most-one"
            ));
        }
        for (j, s) in suggestions.iter().enumerate() {
            let at = format!("{at}.suggestions[{j}]");
            if s.get("label").and_then(Value::as_str).is_none() {
                problems.push(format!("{at}.label: required"));
            }
            if s.get("uuid")
                .and_then(Value::as_str)
                .and_then(|u| Uuid::parse_str(u).ok())
                .is_none()
            {
                problems.push(format!("{at}.uuid: required, a UUID"));
            }
            for (k, a) in s
                .get("actions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let at = format!("{at}.actions[{k}]");
                if a.get("description").and_then(Value::as_str).is_none() {
                    problems.push(format!("{at}.description: required"));
                }
                match a.get("type").and_then(Value::as_str) {
                    Some("delete") => {
                        if a.get("resourceId").and_then(Value::as_str).is_none() {
                            problems.push(format!("{at}: a delete needs a resourceId"));
                        }
                        if a.get("resource").is_some() {
                            problems.push(format!("{at}: a delete has no resource"));
                        }
                    }
                    Some("create" | "update") => {
                        if a.pointer("/resource/resourceType").is_none() {
                            problems.push(format!("{at}: a create or update needs a resource"));
                        }
                    }
                    _ => problems.push(format!("{at}.type: create, update or delete")),
                }
            }
        }
        for (j, r) in card
            .get("overrideReasons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if r.get("display").and_then(Value::as_str).is_none() || r.get("code").is_none() {
                problems.push(format!(
                    "{at}.overrideReasons[{j}]: needs a code and a display"
                ));
            }
        }
        for (j, l) in card
            .get("links")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let ok = l.get("label").and_then(Value::as_str).is_some()
                && l.get("url").and_then(Value::as_str).is_some()
                && matches!(
                    l.get("type").and_then(Value::as_str),
                    Some("absolute" | "smart")
                );
            if !ok {
                problems.push(format!("{at}.links[{j}]: needs a label, a url and a type"));
            }
        }
    }
    problems
}

/// Every `null`, empty string, empty array or empty object under `v`.
fn empty_values(v: &Value, at: &str, problems: &mut Vec<String>) {
    match v {
        Value::Null => problems.push(format!("{at}: null")),
        Value::String(s) if s.is_empty() => problems.push(format!("{at}: empty string")),
        Value::Array(a) if a.is_empty() && at != "$.cards" => {
            problems.push(format!("{at}: empty array"))
        }
        Value::Object(o) if o.is_empty() => problems.push(format!("{at}: empty object")),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| empty_values(x, &format!("{at}[{i}]"), problems)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| empty_values(x, &format!("{at}.{k}"), problems)),
        _ => {}
    }
}
