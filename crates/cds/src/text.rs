//! Short human-readable text for cards: names of codes, amounts, zones and times.

use ember_telemed::zones::{Amount, Zone};
use serde_json::Value;

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.truncate(out.trim_end().len());
    out.push('…');
    out
}

/// What a CodeableConcept names: its text, a coding's display, the measurement Ember
/// knows by that LOINC code, or a code.
pub(crate) fn concept(cc: &Value) -> String {
    if let Some(t) = cc.get("text").and_then(Value::as_str) {
        return t.to_owned();
    }
    let codings = cc
        .get("coding")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let known = codings.iter().find_map(|c| {
        ember_telemed::codes::measure(c.get("code")?.as_str()?).map(|m| m.name.to_owned())
    });
    known
        .or_else(|| {
            codings
                .iter()
                .find_map(|c| c.get("display")?.as_str().map(str::to_owned))
        })
        .or_else(|| {
            codings
                .iter()
                .find_map(|c| c.get("code")?.as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "measurement".to_owned())
}

/// `84 %`, `7.2 mmol/L`.
pub(crate) fn amount(a: &Amount) -> String {
    format!("{} {}", a.value, a.code)
}

/// A zone's range: `≤ 85 %`, `≥ 130 /min`, `85–88 %`.
pub(crate) fn zone(z: &Zone) -> String {
    match (&z.low, &z.high) {
        (Some(l), Some(h)) if l.code == h.code => format!("{}–{} {}", l.value, h.value, h.code),
        (Some(l), Some(h)) => format!("{}–{}", amount(l), amount(h)),
        (Some(l), None) => format!("≥ {}", amount(l)),
        (None, Some(h)) => format!("≤ {}", amount(h)),
        (None, None) => "any value".to_owned(),
    }
}

/// A FHIR dateTime as `2026-12-01 08:30` (the local time the client sent).
pub(crate) fn time(t: &str) -> String {
    t.chars().take(16).collect::<String>().replace('T', " ")
}
