//! `telemonitoring-order-check` (order-sign): the draft telemonitoring orders' alarm
//! thresholds and duplicates. A telemonitoring order is a ServiceRequest for a home
//! measurement Ember knows, or one that carries threshold extensions.

use ember_fhir::fhirpath::{Decimal, to_canonical};
use ember_telemed::codes::{self, THRESHOLD_URL};
use ember_telemed::zones::{self, Amount, Colour, Zone};
use serde_json::{Value, json};

use crate::card::{Action, Card, Indicator, Kind};
use crate::prefetch::Data;
use crate::{CdsError, HookRequest, SERVICES, text};

pub(crate) fn check(request: &HookRequest, data: &Data) -> Result<Vec<Card>, CdsError> {
    let mut cards = Vec::new();
    let active = data.resources("orders");
    let drafts = request
        .context_resources("draftOrders")
        .filter(|r| r.get("resourceType") == Some(&json!("ServiceRequest")));
    for (n, order) in drafts.enumerate() {
        let id = order.get("id").and_then(Value::as_str);
        let key = id.map_or_else(|| format!("#{n}"), str::to_owned);
        Check {
            request,
            order,
            key: &key,
            name: order
                .get("code")
                .map_or_else(|| "telemonitoring".to_owned(), text::concept),
            cards: &mut cards,
        }
        .run(id, &active);
    }
    Ok(cards)
}

struct Check<'a> {
    request: &'a HookRequest,
    order: &'a Value,
    key: &'a str,
    name: String,
    cards: &'a mut Vec<Card>,
}

impl Check<'_> {
    fn run(mut self, id: Option<&str>, active: &[&Value]) {
        let extensions = self
            .order
            .get("extension")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let measure = codings(self.order).find_map(|(_, code)| codes::measure(code));
        let has_thresholds = extensions
            .iter()
            .any(|e| e.get("url") == Some(&json!(THRESHOLD_URL)));
        if measure.is_none() && !has_thresholds {
            return;
        }
        let mut zones: Vec<(usize, Zone)> = Vec::new();
        let mut malformed = false;
        for (i, ext) in extensions.iter().enumerate() {
            match zones::of_threshold(ext) {
                Ok(Some(z)) => zones.push((i, z)),
                Ok(None) => {}
                Err(e) => {
                    malformed = true;
                    self.malformed(i, ext, &e.to_string(), &extensions);
                }
            }
        }
        if zones.is_empty() && !malformed {
            self.warn(
                Kind::NoThresholds,
                &format!(
                    "{} order has no alarm thresholds: its measurements will not be triaged",
                    self.name
                ),
                None,
            );
        }
        for (_, z) in &zones {
            if let Some(m) = z
                .component
                .as_ref()
                .and_then(|(_, c)| codes::measure(c))
                .or(measure)
            {
                self.unit(z, m);
            }
        }
        for (i, y) in zones.iter().filter(|(_, z)| z.colour == Colour::Yellow) {
            let reds: Vec<&Zone> = zones
                .iter()
                .map(|(_, z)| z)
                .filter(|z| z.colour == Colour::Red && z.component == y.component)
                .collect();
            if unreachable(y, &reds) {
                let mut fixed = self.order.clone();
                let mut exts = extensions.clone();
                exts.remove(*i);
                fixed["extension"] = Value::Array(exts);
                self.warn(
                    Kind::ContradictoryThresholds,
                    &format!(
                        "{} order: the yellow zone {} lies inside the red zones and can never be reached",
                        self.name,
                        text::zone(y)
                    ),
                    Some(("Remove the unreachable yellow zone", Action::update("Remove the yellow zone".into(), fixed))),
                );
            }
        }
        self.duplicates(id, active);
    }

    fn warn(&mut self, kind: Kind, summary: &str, fix: Option<(&str, Action)>) {
        let key = format!("{}|{summary}", self.key);
        let mut card = Card::new(
            &SERVICES[1],
            self.request,
            kind,
            &key,
            Indicator::Warning,
            summary,
        );
        card.detail = Some(format!("{summary}."));
        if let Some((label, action)) = fix {
            card.suggest(label, vec![action]);
        }
        self.cards.push(card);
    }

    /// A threshold that is not a zone. When its low bound lies above its high bound,
    /// the fix swaps them; otherwise there is no obvious fix.
    fn malformed(&mut self, i: usize, ext: &Value, why: &str, extensions: &[Value]) {
        let mut swapped = ext.clone();
        for part in swapped
            .get_mut("extension")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let other = match part.get("url").and_then(Value::as_str) {
                Some("low") => "high",
                Some("high") => "low",
                _ => continue,
            };
            part["url"] = json!(other);
        }
        let Ok(Some(z)) = zones::of_threshold(&swapped) else {
            let kind = if why.contains("incommensurable") {
                Kind::IncommensurableUnit
            } else {
                Kind::ContradictoryThresholds
            };
            self.warn(kind, &format!("{} order: {why}", self.name), None);
            return;
        };
        // `z` has its bounds back in order: its high bound was the threshold's low.
        let (Some(was_low), Some(was_high)) = (&z.high, &z.low) else {
            return;
        };
        let mut fixed = self.order.clone();
        let mut exts = extensions.to_vec();
        exts[i] = swapped;
        fixed["extension"] = Value::Array(exts);
        self.warn(
            Kind::ContradictoryThresholds,
            &format!(
                "{} order: a {} zone's low {} is above its high {}",
                self.name,
                z.colour.code(),
                text::amount(was_low),
                text::amount(was_high)
            ),
            Some((
                "Swap the zone's low and high",
                Action::update("Swap low and high".into(), fixed),
            )),
        );
    }

    /// A bound whose unit cannot be compared with the measurement's.
    fn unit(&mut self, z: &Zone, m: &codes::Measure) {
        for bound in [&z.low, &z.high].into_iter().flatten() {
            let dimension = |unit: &str| to_canonical(&bound.value, unit).map(|(_, u)| u);
            let fits = bound.code == m.ucum
                || dimension(&bound.code).is_some_and(|d| Some(d) == dimension(m.ucum));
            if !fits {
                self.warn(
                    Kind::IncommensurableUnit,
                    &format!(
                        "{} order: the threshold unit {} cannot be compared with {}, the unit of {}",
                        self.name, bound.code, m.ucum, m.name
                    ),
                    None,
                );
                return;
            }
        }
    }

    /// An active order of the same patient for the same code.
    fn duplicates(&mut self, id: Option<&str>, active: &[&Value]) {
        let mine: Vec<(&str, &str)> = codings(self.order).collect();
        let subject = self.order.pointer("/subject/reference");
        let twin = active.iter().find(|o| {
            o.get("resourceType") == Some(&json!("ServiceRequest"))
                && o.get("status") == Some(&json!("active"))
                && o.get("id").and_then(Value::as_str) != id
                && (subject.is_none() || o.pointer("/subject/reference") == subject)
                && codings(o).any(|c| mine.contains(&c))
        });
        let Some(twin) = twin else {
            return;
        };
        let twin_ref = format!(
            "ServiceRequest/{}",
            twin.get("id").and_then(Value::as_str).unwrap_or_default()
        );
        let fix = id.map(|id| {
            (
                "Remove this duplicate order",
                Action::delete(
                    format!("Remove the draft ServiceRequest/{id}"),
                    format!("ServiceRequest/{id}"),
                ),
            )
        });
        self.warn(
            Kind::DuplicateOrder,
            &format!(
                "{} is already ordered for this patient: {twin_ref} is active",
                self.name
            ),
            fix,
        );
    }
}

/// The `(system, code)` of an order's codes.
fn codings(order: &Value) -> impl Iterator<Item = (&str, &str)> {
    order
        .pointer("/code/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c.get("system")?.as_str()?, c.get("code")?.as_str()?)))
}

/// A bound in canonical units; `None` when UCUM cannot convert it.
fn canonical(a: &Amount) -> Option<(Decimal, String)> {
    to_canonical(&a.value, &a.code)
}

/// Whether the red zones cover the yellow zone entirely (bounds are inclusive, and the
/// worst colour wins, so a value there is always red).
fn unreachable(yellow: &Zone, reds: &[&Zone]) -> bool {
    type Bound = Option<Decimal>;
    let bound = |b: &Option<Amount>, unit: &mut Option<String>| -> Result<Bound, ()> {
        match b {
            None => Ok(None),
            Some(a) => {
                let (v, u) = canonical(a).ok_or(())?;
                if unit.get_or_insert_with(|| u.clone()) != &u {
                    return Err(());
                }
                Ok(Some(v))
            }
        }
    };
    let mut unit = None;
    let (Ok(y_low), Ok(y_high)) = (
        bound(&yellow.low, &mut unit),
        bound(&yellow.high, &mut unit),
    ) else {
        return false;
    };
    let mut intervals: Vec<(Bound, Bound)> = Vec::new();
    for r in reds {
        let (Ok(lo), Ok(hi)) = (bound(&r.low, &mut unit), bound(&r.high, &mut unit)) else {
            return false;
        };
        intervals.push((lo, hi));
    }
    // Lowest start first, an open start before every value.
    intervals.sort_by(|a, b| match (&a.0, &b.0) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, _) => std::cmp::Ordering::Less,
        (_, None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x.cmp_value(y),
    });
    // Sweep: `covered` is how far from the yellow zone's low the red zones reach.
    let mut covered: Bound = y_low;
    for (lo, hi) in intervals {
        let starts_in_time = match (&lo, &covered) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(l), Some(c)) => l.cmp_value(c).is_le(),
        };
        if !starts_in_time {
            break;
        }
        match hi {
            None => return true,
            Some(h) => {
                if covered.as_ref().is_none_or(|c| h.cmp_value(c).is_ge()) {
                    covered = Some(h);
                }
            }
        }
        if let (Some(c), Some(yh)) = (&covered, &y_high) {
            if c.cmp_value(yh).is_ge() {
                return true;
            }
        }
    }
    false
}
