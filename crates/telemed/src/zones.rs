//! Alarm zones and the colour of a measurement: pure functions over JSON.
//!
//! A zone is a range of values, `RAL` (red) or `GAL` (yellow), with inclusive bounds; a
//! missing bound leaves that side open. A value inside a red zone is red, inside a
//! yellow zone yellow, otherwise green; across zones and components the worst colour
//! wins. A component zone (blood pressure) names its component's code in a second
//! coding of its `type`. Values in another unit than the zone's are converted when
//! UCUM makes them commensurable (kPa against mm[Hg]), and never guessed otherwise.

use ember_fhir::fhirpath::{Decimal, to_canonical};
use serde_json::{Value, json};

use crate::codes::{RED_ZONE, THRESHOLD_URL, YELLOW_ZONE, ZONE_TYPE_SYSTEMS};

/// The colour of a triage, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Colour {
    Green,
    Yellow,
    Red,
}

impl Colour {
    pub fn code(self) -> &'static str {
        match self {
            Colour::Green => "green",
            Colour::Yellow => "yellow",
            Colour::Red => "red",
        }
    }

    /// `Task.priority` of a result of this colour.
    pub fn priority(self) -> &'static str {
        match self {
            Colour::Green => "routine",
            Colour::Yellow => "urgent",
            Colour::Red => "asap",
        }
    }

    pub fn parse(code: &str) -> Option<Colour> {
        match code {
            "green" => Some(Colour::Green),
            "yellow" => Some(Colour::Yellow),
            "red" => Some(Colour::Red),
            _ => None,
        }
    }
}

/// A bound of a zone: a value in a unit (UCUM `system|code`).
#[derive(Debug, Clone, PartialEq)]
pub struct Amount {
    pub value: Decimal,
    pub system: String,
    pub code: String,
}

impl Amount {
    /// A Quantity's value and unit; `None` when one is missing.
    pub fn of(q: &Value) -> Option<Amount> {
        let value = q.get("value").map(number_text)?;
        Some(Amount {
            value: Decimal::parse(&value)?,
            system: q.get("system")?.as_str()?.to_owned(),
            code: q.get("code")?.as_str()?.to_owned(),
        })
    }

    /// This amount's value and `other`'s, comparable: as they are in the same unit, in
    /// canonical UCUM units when they differ; `None` when they are incommensurable.
    pub fn comparable(&self, other: &Amount) -> Option<(Decimal, Decimal)> {
        if self.system == other.system && self.code == other.code {
            return Some((self.value, other.value));
        }
        let (a, ua) = to_canonical(&self.value, &self.code)?;
        let (b, ub) = to_canonical(&other.value, &other.code)?;
        (ua == ub).then_some((a, b))
    }
}

/// One alarm zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    pub colour: Colour,
    pub low: Option<Amount>,
    pub high: Option<Amount>,
    /// The code (`system|code`) of the component the zone is for; `None` for the
    /// measurement's own value.
    pub component: Option<(String, String)>,
    /// The zone as an `Observation.referenceRange`.
    pub range: Value,
}

/// Why zones or values cannot be judged; the text goes into the follow-up Task.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Unjudgeable(pub String);

/// The alarm zones of a ServiceRequest's threshold extensions. A malformed zone is an
/// error; extensions of other types than RAL/GAL are not zones.
pub fn of_service_request(sr: &Value) -> Result<Vec<Zone>, Unjudgeable> {
    let mut zones = Vec::new();
    for ext in array(sr, "extension") {
        if let Some(zone) = of_threshold(ext)? {
            zones.push(zone);
        }
    }
    Ok(zones)
}

/// The alarm zone of one extension of a ServiceRequest: `None` when it is not a
/// threshold extension, or a threshold of another type than RAL/GAL.
pub fn of_threshold(ext: &Value) -> Result<Option<Zone>, Unjudgeable> {
    if ext.get("url").and_then(Value::as_str) != Some(THRESHOLD_URL) {
        return Ok(None);
    }
    let part = |name: &str| {
        array(ext, "extension")
            .iter()
            .find(|e| e.get("url").and_then(Value::as_str) == Some(name))
    };
    let mut range = json!({});
    if let Some(low) = part("low").and_then(|e| e.get("valueQuantity")) {
        range["low"] = low.clone();
    }
    if let Some(high) = part("high").and_then(|e| e.get("valueQuantity")) {
        range["high"] = high.clone();
    }
    if let Some(t) = part("type").and_then(|e| e.get("valueCodeableConcept")) {
        range["type"] = t.clone();
    }
    zone(&range)
}

/// The alarm zones among an Observation's `referenceRange`s (where submission copied
/// them); other reference ranges are not zones.
pub fn of_observation(obs: &Value) -> Result<Vec<Zone>, Unjudgeable> {
    let mut zones = Vec::new();
    for range in array(obs, "referenceRange") {
        if let Some(zone) = zone(range)? {
            zones.push(zone);
        }
    }
    Ok(zones)
}

/// One range as a zone: `None` when its type is not RAL or GAL.
fn zone(range: &Value) -> Result<Option<Zone>, Unjudgeable> {
    let codings = range
        .get("type")
        .map(|t| array(t, "coding"))
        .unwrap_or_default();
    let colour = codings.iter().find_map(|c| {
        let system = c.get("system").and_then(Value::as_str)?;
        if !ZONE_TYPE_SYSTEMS.contains(&system) {
            return None;
        }
        match c.get("code").and_then(Value::as_str)? {
            RED_ZONE => Some(Colour::Red),
            YELLOW_ZONE => Some(Colour::Yellow),
            _ => None,
        }
    });
    let Some(colour) = colour else {
        return Ok(None);
    };
    let component = codings.iter().find_map(|c| {
        let system = c.get("system").and_then(Value::as_str)?;
        (!ZONE_TYPE_SYSTEMS.contains(&system))
            .then(|| Some((system.to_owned(), c.get("code")?.as_str()?.to_owned())))?
    });
    let bound = |name: &str| -> Result<Option<Amount>, Unjudgeable> {
        match range.get(name) {
            None => Ok(None),
            Some(q) => Amount::of(q).map(Some).ok_or_else(|| {
                Unjudgeable(format!(
                    "a {} zone's {name} bound lacks a value, unit system or unit code",
                    zone_code(colour)
                ))
            }),
        }
    };
    let (low, high) = (bound("low")?, bound("high")?);
    if low.is_none() && high.is_none() {
        return Err(Unjudgeable(format!(
            "a {} zone has neither a low nor a high bound",
            zone_code(colour)
        )));
    }
    if let (Some(l), Some(h)) = (&low, &high) {
        match l.comparable(h) {
            Some((l, h)) if l.cmp_value(&h).is_gt() => {
                return Err(Unjudgeable(format!(
                    "a {} zone's low bound is above its high bound",
                    zone_code(colour)
                )));
            }
            Some(_) => {}
            None => {
                return Err(Unjudgeable(format!(
                    "a {} zone's bounds are in incommensurable units",
                    zone_code(colour)
                )));
            }
        }
    }
    Ok(Some(Zone {
        colour,
        low,
        high,
        component,
        range: range.clone(),
    }))
}

fn zone_code(colour: Colour) -> &'static str {
    match colour {
        Colour::Red => RED_ZONE,
        _ => YELLOW_ZONE,
    }
}

/// One measured value: the Observation's own or a component's.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The component's code (`system|code`); `None` for the Observation's value.
    pub component: Option<(String, String)>,
    pub amount: Amount,
}

/// The judgement of one measured value.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub measured: Measured,
    pub colour: Colour,
}

/// The colour of each value against the zones that apply to it, or why they cannot be
/// judged (a unit that cannot be converted).
pub fn judge(values: &[Measured], zones: &[Zone]) -> Result<Vec<Judged>, Unjudgeable> {
    values
        .iter()
        .map(|m| {
            let mut colour = Colour::Green;
            for z in zones.iter().filter(|z| z.component == m.component) {
                if inside(&m.amount, z)? {
                    colour = colour.max(z.colour);
                }
            }
            Ok(Judged {
                measured: m.clone(),
                colour,
            })
        })
        .collect()
}

/// Whether `v` lies in `zone`, bounds included.
fn inside(v: &Amount, zone: &Zone) -> Result<bool, Unjudgeable> {
    let check = |bound: &Amount, above: bool| -> Result<bool, Unjudgeable> {
        let (v, b) = v.comparable(bound).ok_or_else(|| {
            Unjudgeable(format!(
                "the unit {} cannot be compared with the zone's unit {}",
                v.code, bound.code
            ))
        })?;
        let order = v.cmp_value(&b);
        Ok(if above { order.is_ge() } else { order.is_le() })
    };
    let low_ok = match &zone.low {
        Some(l) => check(l, true)?,
        None => true,
    };
    let high_ok = match &zone.high {
        Some(h) => check(h, false)?,
        None => true,
    };
    Ok(low_ok && high_ok)
}

/// The numeric values of an Observation: its `valueQuantity`, or its components'.
/// `Err` when a value is missing (with the `dataAbsentReason` when there is one) or
/// is not a Quantity with value, unit system and code.
pub fn measured(obs: &Value) -> Result<Vec<Measured>, Unjudgeable> {
    if let Some(q) = obs.get("valueQuantity") {
        let amount = Amount::of(q).ok_or_else(|| {
            Unjudgeable("the value lacks a number, unit system or unit code".into())
        })?;
        return Ok(vec![Measured {
            component: None,
            amount,
        }]);
    }
    let mut values = Vec::new();
    for c in array(obs, "component") {
        let code = c
            .get("code")
            .map(|cc| array(cc, "coding"))
            .and_then(|codings| {
                codings.iter().find_map(|x| {
                    Some((
                        x.get("system")?.as_str()?.to_owned(),
                        x.get("code")?.as_str()?.to_owned(),
                    ))
                })
            });
        let Some(q) = c.get("valueQuantity") else {
            if c.get("dataAbsentReason").is_some() {
                return Err(Unjudgeable(format!(
                    "no value for component {}: {}",
                    code.map(|(_, c)| c).unwrap_or_default(),
                    absent_reason(c)
                )));
            }
            continue;
        };
        let amount = Amount::of(q).ok_or_else(|| {
            Unjudgeable("a component value lacks a number, unit system or unit code".into())
        })?;
        values.push(Measured {
            component: code,
            amount,
        });
    }
    if !values.is_empty() {
        return Ok(values);
    }
    if obs.get("dataAbsentReason").is_some() {
        return Err(Unjudgeable(format!("no value: {}", absent_reason(obs))));
    }
    if obs.get("valueCodeableConcept").is_some() {
        return Err(Unjudgeable(
            "a coded value cannot be compared with alarm zones".into(),
        ));
    }
    Err(Unjudgeable("the measurement has no value".into()))
}

fn absent_reason(v: &Value) -> String {
    let reason = &v["dataAbsentReason"];
    array(reason, "coding")
        .first()
        .and_then(|c| c.get("code").and_then(Value::as_str))
        .or_else(|| reason.get("text").and_then(Value::as_str))
        .map_or_else(
            || "data absent".to_owned(),
            |c| format!("data absent ({c})"),
        )
}

/// The text of a JSON number or string.
fn number_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests;
