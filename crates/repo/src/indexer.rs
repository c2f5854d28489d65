//! Turns a resource's search-parameter values ([`ember_fhir::index::extract_where`]) into the
//! store's index rows.
//!
//! Row keys are [`ember_store::key`]`(type, code)`. Besides the plain values:
//! - a composite value stores each component under `key(type, "code#i")`, all with one
//!   `grp` number, so a search can pair the components of the same value;
//! - a reference with an `identifier` stores it as a token under
//!   `key(type, "code:identifier")` (the `:identifier` modifier);
//! - a UCUM quantity in other than canonical units is also stored converted (system
//!   `http://unitsofmeasure.org`, canonical code) under `key(type, "code:canonical")`,
//!   so `1 g` matches `1000 mg` while a search without units compares the value as
//!   written.

use ember_fhir::index::{IndexValue, extract_adhoc, extract_where};

use crate::registry::{SearchParams, Snapshot};
use ember_store::{
    DateRow, IndexRows, NumberRow, QuantityRow, ReferenceRow, Slot, StringRow, TextKind, TextRow,
    TokenRow, UriRow, key,
};
use serde_json::Value;

/// The UCUM code system.
pub(crate) const UCUM: &str = "http://unitsofmeasure.org";

/// The index key of a component of a composite parameter.
pub(crate) fn component_key(res_type: &str, code: &str, component: usize) -> i64 {
    key(res_type, &format!("{code}#{component}"))
}

/// The index key of the canonical-unit copies of the quantities under `name` (a
/// parameter code, or `code#i` for a component).
pub(crate) fn canonical_key(res_type: &str, name: &str) -> i64 {
    key(res_type, &format!("{name}:canonical"))
}

/// The index key of the typed identifiers of a token parameter (`:of-type`): rows
/// with the type's system and `code|value`.
pub(crate) fn of_type_key(res_type: &str, code: &str) -> i64 {
    key(res_type, &format!("{code}:of-type"))
}

/// The index key of the identifiers of a reference parameter.
pub(crate) fn identifier_key(res_type: &str, code: &str) -> i64 {
    key(res_type, &format!("{code}:identifier"))
}

/// The index rows of a resource about to be stored (stamped), for the built-in and the
/// run-time search parameters (`params`). Values that cannot be indexed are left out;
/// extraction problems never fail a write. A SearchParameter that breaks the rules of
/// run-time parameters ([`crate::registry`]) is refused (422).
pub(crate) fn index_rows(resource: &Value, params: &SearchParams) -> crate::Result<IndexRows> {
    crate::registry::check(resource)?;
    Ok(rows_of(resource, params))
}

/// Parameters whose expression is the union of two others of the same type (R4's
/// Observation `combo-*`). Their values are not stored a second time: a search on one
/// reads the rows of its parts, which keeps an Observation's index about a third
/// smaller.
const UNIONS: &[(&str, &str, [&str; 2])] = &[
    ("Observation", "combo-code", ["code", "component-code"]),
    (
        "Observation",
        "combo-data-absent-reason",
        ["data-absent-reason", "component-data-absent-reason"],
    ),
    (
        "Observation",
        "combo-value-concept",
        ["value-concept", "component-value-concept"],
    ),
    (
        "Observation",
        "combo-value-quantity",
        ["value-quantity", "component-value-quantity"],
    ),
    (
        "Observation",
        "combo-code-value-concept",
        ["code-value-concept", "component-code-value-concept"],
    ),
    (
        "Observation",
        "combo-code-value-quantity",
        ["code-value-quantity", "component-code-value-quantity"],
    ),
];

/// The names the values of parameter `code` of `res_type` are stored under: its own,
/// or for a union, its parts'.
pub(crate) fn stored_names<'a>(res_type: &str, code: &'a str) -> Vec<&'a str> {
    match UNIONS.iter().find(|(t, c, _)| *t == res_type && *c == code) {
        Some((_, _, parts)) => parts.to_vec(),
        None => vec![code],
    }
}

/// Whether the values of `code` are stored under other names.
fn is_union(res_type: &str, code: &str) -> bool {
    UNIONS.iter().any(|(t, c, _)| *t == res_type && *c == code)
}

/// The index rows of a resource (see [`index_rows`]), without the checks of a write.
pub(crate) fn rows_of(resource: &Value, params: &SearchParams) -> IndexRows {
    rows_under(resource, &params.snapshot())
}

/// [`rows_of`] under the definitions of `snapshot`.
pub(crate) fn rows_under(resource: &Value, snapshot: &Snapshot) -> IndexRows {
    let mut rows = IndexRows::default();
    let Some(res_type) = resource.get("resourceType").and_then(Value::as_str) else {
        return rows;
    };
    // `_id` is searched on the document key itself, and a union's values are its
    // parts': neither is stored, so neither is extracted.
    let stored = |code: &str| code != "_id" && !is_union(res_type, code);
    let Ok(extraction) = extract_where(resource, stored) else {
        return rows;
    };
    for param in snapshot.of_type(res_type) {
        // A problem (an invalid date) loses this parameter's values only.
        if let Ok(values) = extract_adhoc(resource, &param.param) {
            for value in &values {
                push(&mut rows, res_type, param.code(), 0, value);
            }
        }
    }
    index_text(resource, &mut rows);
    let mut grp = 0;
    for entry in &extraction.entries {
        if let IndexValue::Composite(parts) = &entry.value {
            grp += 1;
            for (i, part) in parts.iter().enumerate() {
                let name = format!("{}#{i}", entry.code);
                push(&mut rows, res_type, &name, grp, part);
            }
        } else {
            push(&mut rows, res_type, entry.code, 0, &entry.value);
        }
    }
    rows.timeline = crate::timeline::entries(res_type, &rows);
    rows
}

/// Adds the rows of one value of the index `name` (a code, or `code#i`).
fn push(rows: &mut IndexRows, res_type: &str, name: &str, grp: i32, value: &IndexValue) {
    let slot = Slot {
        p: key(res_type, name),
        grp,
    };
    match value {
        IndexValue::String {
            original,
            normalized,
        } => rows.strings.push(StringRow {
            slot,
            norm: normalized.clone(),
            exact: original.clone(),
        }),
        IndexValue::Token {
            system,
            code,
            display,
            text_only: _,
        } => rows.tokens.push(TokenRow {
            slot,
            system: system.clone(),
            code: code.clone(),
            text: display.as_deref().map(ember_fhir::index::normalize),
        }),
        IndexValue::Date { low, high } => rows.dates.push(DateRow {
            slot,
            lo: low.unwrap_or(i64::MIN),
            hi: high.unwrap_or(i64::MAX),
        }),
        IndexValue::Number { value, .. } => {
            if let Ok(v) = value.parse::<f64>() {
                rows.numbers.push(NumberRow { slot, v });
            }
        }
        IndexValue::Quantity {
            value,
            system,
            code,
            unit,
            canonical,
        } => {
            if let Ok(v) = value.parse::<f64>() {
                rows.quantities.push(QuantityRow {
                    slot,
                    system: system.clone(),
                    code: code.clone().or_else(|| unit.clone()),
                    v,
                });
            }
            if let Some((value, canonical_code)) = canonical {
                if let Ok(v) = value.parse::<f64>() {
                    if code.as_deref() != Some(canonical_code) {
                        rows.quantities.push(QuantityRow {
                            slot: Slot {
                                p: canonical_key(res_type, name),
                                grp,
                            },
                            system: Some(UCUM.to_owned()),
                            code: Some(canonical_code.clone()),
                            v,
                        });
                    }
                }
            }
        }
        IndexValue::Reference {
            res_type: target_type,
            id,
            url,
            identifier,
            version: _,
        } => {
            // An absolute URL names a resource on another server: it is compared by
            // URL only, never taken for the local resource with the same type and id.
            let (target_type, id) = if url.as_deref().is_some_and(is_absolute) {
                (None, None)
            } else {
                (target_type.clone(), id.clone())
            };
            if target_type.is_some() || id.is_some() || url.is_some() {
                rows.references.push(ReferenceRow {
                    slot,
                    target_type,
                    target_id: id,
                    url: url.clone(),
                });
            }
            if let Some((system, value)) = identifier {
                rows.tokens.push(TokenRow {
                    slot: Slot {
                        p: identifier_key(res_type, name),
                        grp,
                    },
                    system: system.clone(),
                    code: Some(value.clone()),
                    text: None,
                });
            }
        }
        IndexValue::IdentifierType {
            system,
            code,
            value,
        } => rows.tokens.push(TokenRow {
            slot: Slot {
                p: of_type_key(res_type, name),
                grp,
            },
            system: Some(system.clone()),
            code: Some(format!("{code}|{value}")),
            text: None,
        }),
        IndexValue::Uri(uri) => rows.uris.push(UriRow {
            slot,
            uri: uri.clone(),
        }),
        // Composites do not nest.
        IndexValue::Composite(_) => {}
    }
}

/// The folded words of the narrative (`_text`) and of every string (`_content`).
fn index_text(resource: &Value, rows: &mut IndexRows) {
    let narrative = resource
        .pointer("/text/div")
        .and_then(Value::as_str)
        .map(strip_markup)
        .unwrap_or_default();
    if !narrative.trim().is_empty() {
        rows.texts.push(TextRow {
            kind: TextKind::Narrative,
            doc: words(&narrative).join(" "),
        });
    }
    let mut all = Vec::new();
    let mut budget = CONTENT_LIMIT;
    collect_strings(resource, &mut all, &mut budget);
    let content: Vec<String> = all.iter().flat_map(|s| words(s)).collect();
    if !content.is_empty() {
        rows.texts.push(TextRow {
            kind: TextKind::Content,
            doc: content.join(" "),
        });
    }
}

/// Bytes of text of one resource that `_content` indexes; the rest of a very large
/// resource (a 35 MB Bundle) is not searchable by `_content`.
const CONTENT_LIMIT: usize = 256 * 1024;

/// Members whose strings are identifiers or machine values, not words anyone searches.
const NOT_CONTENT: &[&str] = &[
    "resourceType",
    "id",
    "reference",
    "system",
    "url",
    "fullUrl",
    "versionId",
    "lastUpdated",
    "profile",
];

/// The string values of a JSON tree, up to `budget` bytes; markup is dropped.
fn collect_strings(v: &Value, out: &mut Vec<String>, budget: &mut usize) {
    if *budget == 0 {
        return;
    }
    match v {
        Value::String(s) => {
            let text = if s.starts_with('<') {
                strip_markup(s)
            } else {
                s.clone()
            };
            *budget = budget.saturating_sub(text.len());
            out.push(text);
        }
        Value::Array(items) => items.iter().for_each(|i| collect_strings(i, out, budget)),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !NOT_CONTENT.contains(&k.as_str()))
            .for_each(|(_, v)| collect_strings(v, out, budget)),
        _ => {}
    }
}

/// XHTML as text: tags removed, the common entities decoded.
fn strip_markup(xhtml: &str) -> String {
    let mut out = String::with_capacity(xhtml.len());
    let mut in_tag = false;
    for c in xhtml.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Folded words: case and accents removed, split at anything not a letter or digit.
/// Search input goes through the same function.
pub(crate) fn words(text: &str) -> Vec<String> {
    ember_fhir::index::normalize(text)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a reference is an absolute URL (or URN), not relative to this server.
fn is_absolute(url: &str) -> bool {
    url.contains("://") || url.starts_with("urn:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_of_an_observation() {
        let obs = json!({
            "resourceType": "Observation", "id": "o1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}]},
            "subject": {"reference": "Patient/p1", "identifier": {"system": "urn:s", "value": "v"}},
            "effectiveDateTime": "2024-05-01",
            "valueQuantity": {"value": 1, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"},
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                           "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}]
        });
        let rows = rows_of(&obs, &SearchParams::default());
        let code = key("Observation", "code");
        assert!(rows.tokens.iter().any(|t| t.slot.p == code
            && t.code.as_deref() == Some("8480-6")
            && t.text.as_deref() == Some("systolic")));
        let subject = key("Observation", "subject");
        assert!(rows.references.iter().any(|r| r.slot.p == subject
            && r.target_type.as_deref() == Some("Patient")
            && r.target_id.as_deref() == Some("p1")));
        let ident = identifier_key("Observation", "subject");
        assert!(
            rows.tokens
                .iter()
                .any(|t| t.slot.p == ident && t.code.as_deref() == Some("v"))
        );
        let date = rows
            .dates
            .iter()
            .find(|d| d.slot.p == key("Observation", "date"))
            .expect("date row");
        assert_eq!(date.hi - date.lo, 86_400_000_000);
        // 1 g is stored as written and, being canonical already, once only.
        let vq = key("Observation", "value-quantity");
        assert_eq!(rows.quantities.iter().filter(|q| q.slot.p == vq).count(), 1);
        let vq_canonical = canonical_key("Observation", "value-quantity");
        assert!(!rows.quantities.iter().any(|q| q.slot.p == vq_canonical));
        // The component pairs code and value under one grp.
        let c0 = component_key("Observation", "component-code-value-quantity", 0);
        let c1 = component_key("Observation", "component-code-value-quantity", 1);
        let grp = rows
            .tokens
            .iter()
            .find(|t| t.slot.p == c0)
            .expect("c0")
            .slot
            .grp;
        assert!(grp > 0);
        assert!(
            rows.quantities
                .iter()
                .any(|q| q.slot.p == c1 && q.slot.grp == grp)
        );
    }

    #[test]
    fn narrative_and_content_words() {
        let p = json!({"resourceType": "Patient", "id": "t",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Søren &amp; <b>Åse</b></div>"},
            "name": [{"family": "Müller"}]});
        let rows = rows_of(&p, &SearchParams::default());
        let narrative = rows
            .texts
            .iter()
            .find(|t| t.kind == TextKind::Narrative)
            .unwrap();
        assert_eq!(narrative.doc, "søren ase");
        let content = rows
            .texts
            .iter()
            .find(|t| t.kind == TextKind::Content)
            .unwrap();
        assert!(content.doc.contains("muller"), "{}", content.doc);
        assert!(!content.doc.contains("xhtml"), "{}", content.doc);
    }

    #[test]
    fn a_milligram_quantity_also_gets_a_canonical_row() {
        let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "valueQuantity": {"value": 5, "system": "http://unitsofmeasure.org", "code": "mg"}});
        let rows = rows_of(&obs, &SearchParams::default());
        let as_written: Vec<_> = rows
            .quantities
            .iter()
            .filter(|q| q.slot.p == key("Observation", "value-quantity"))
            .collect();
        assert_eq!(as_written.len(), 1);
        assert_eq!(as_written[0].code.as_deref(), Some("mg"));
        let canonical: Vec<_> = rows
            .quantities
            .iter()
            .filter(|q| q.slot.p == canonical_key("Observation", "value-quantity"))
            .collect();
        assert_eq!(canonical.len(), 1);
        assert_eq!(canonical[0].code.as_deref(), Some("g"));
        assert!((canonical[0].v - 0.005).abs() < 1e-12);
    }

    #[test]
    fn timeline_entries_of_an_observation() {
        let obs = serde_json::json!({
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "59408-5"},
                                {"system": "urn:local", "code": "spo2"},
                                {"system": "http://loinc.org", "code": "59408-5"},
                                {"text": "no code"}]},
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Patient/p1"}, {"reference": "Practitioner/d"},
                          {"reference": "Patient/p2"}],
            "focus": [{"reference": "Patient/p3"}],
            "effectiveDateTime": "2024-05-01T10:00:00Z",
            "meta": {"lastUpdated": "2024-05-02T00:00:00Z"}
        });
        let rows = rows_of(&obs, &SearchParams::default());
        let t = &rows.timeline;
        assert_eq!(t.date_key, key("Observation", "date"));
        assert_eq!(t.updated_key, key("Observation", "_lastUpdated"));
        let mut seen: Vec<(i64, i64, &str)> = t
            .entries
            .iter()
            .map(|e| (e.cmp, e.p, e.code.as_str()))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        let code = key("Observation", "code");
        let mut want = Vec::new();
        for p in ["p1", "p2"] {
            let cmp = key("Patient", p);
            want.extend([
                (cmp, crate::timeline::any_key("Observation"), ""),
                (cmp, code, "59408-5"),
                (cmp, code, "spo2"),
            ]);
        }
        want.sort_unstable();
        assert_eq!(seen, want);
        // A reference to another server is no member of a local compartment.
        let remote = serde_json::json!({"resourceType": "Observation", "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "https://other.example/fhir/Patient/p1"}});
        let rows = rows_of(&remote, &SearchParams::default());
        assert!(rows.timeline.entries.is_empty());
    }
}
