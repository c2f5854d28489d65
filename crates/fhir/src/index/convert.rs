//! Turning FHIRPath result nodes into typed index values, by search-parameter type and
//! node type.

use serde_json::{Map, Value};

use super::{IndexValue, normalize, ucum};
use crate::definitions::{self, SearchParamType};
use std::sync::OnceLock;

use crate::fhirpath::{Decimal, Env, Expression, Node};
use crate::instant;

const UCUM: &str = "http://unitsofmeasure.org";
const ISO_4217: &str = "urn:iso:std:iso:4217";

fn get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str)
}

fn owned(m: &Map<String, Value>, key: &str) -> Option<String> {
    get(m, key).map(str::to_string)
}

fn strings<'a>(m: &'a Map<String, Value>, key: &str) -> impl Iterator<Item = &'a str> {
    m.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

/// The FHIR type of an element node (`""` for computed values and unknown elements).
fn fhir_type(node: &Node<'_>) -> &'static str {
    match node {
        Node::Element(e) => e.type_name(),
        _ => "",
    }
}

/// Whether `ty` is `base`. Of the types tested here only Quantity has R4 subtypes (Age,
/// Count, Distance, Duration, SimpleQuantity, MoneyQuantity), so the type hierarchy is
/// walked for it alone.
fn is(ty: &str, base: &str) -> bool {
    ty == base || (base == "Quantity" && !ty.is_empty() && definitions::is_a(ty, base))
}

/// Appends the index values of `node` for a parameter of type `kind`. `root` is the
/// resource (to resolve `#contained` references). `Ok(false)` when the parameter type
/// cannot index a node of this type (a `string` where a date is expected, an Attachment
/// for a reference: R4 expressions select such choices); an error for a value that is not
/// what its type says (an invalid date, a number that does not parse).
pub(super) fn convert(
    kind: SearchParamType,
    node: &Node<'_>,
    root: &Value,
    out: &mut Vec<IndexValue>,
) -> Result<bool, String> {
    if let Node::Element(e) = node
        && e.json().is_none()
    {
        // A primitive with only an extension (`_birthDate`): no value to index.
        return Ok(true);
    }
    let ty = fhir_type(node);
    if ty == "Extension" {
        // An expression that stops at the extension (`extension('…')`): index its value.
        return extension_value(kind, node, root, out);
    }
    let obj = node.as_json().and_then(Value::as_object);
    Ok(match kind {
        SearchParamType::String => string(ty, node, obj, out),
        SearchParamType::Token => token(ty, node, obj, out),
        SearchParamType::Reference => reference(ty, node, obj, root, out),
        SearchParamType::Date => date(ty, node, obj, out)?,
        SearchParamType::Number => number(node, out)?,
        SearchParamType::Quantity => quantity(ty, node, obj, out),
        SearchParamType::Uri => match node.as_str() {
            Some(s) => {
                out.push(IndexValue::Uri(s.to_string()));
                true
            }
            None => false,
        },
        SearchParamType::Composite | SearchParamType::Special => true,
    })
}

/// The name of a node's type for messages.
pub(super) fn type_label(node: &Node<'_>) -> &'static str {
    match fhir_type(node) {
        "" => node.type_name(),
        ty => ty,
    }
}

fn extension_value(
    kind: SearchParamType,
    node: &Node<'_>,
    root: &Value,
    out: &mut Vec<IndexValue>,
) -> Result<bool, String> {
    static VALUE: OnceLock<Expression> = OnceLock::new();
    let value = VALUE.get_or_init(|| Expression::parse("value").expect("parses"));
    let nodes = value
        .evaluate_node(node.clone(), &Env::new())
        .map_err(|e| format!("extension value: {e}"))?;
    let mut indexed = true;
    for n in &nodes {
        indexed &= convert(kind, n, root, out)?;
    }
    Ok(indexed)
}

fn push_string(out: &mut Vec<IndexValue>, s: &str) {
    let normalized = normalize(s);
    if !normalized.is_empty() {
        out.push(IndexValue::String {
            original: s.to_string(),
            normalized,
        });
    }
}

fn string(
    ty: &str,
    node: &Node<'_>,
    obj: Option<&Map<String, Value>>,
    out: &mut Vec<IndexValue>,
) -> bool {
    if let Some(s) = node.as_str() {
        push_string(out, s);
        return true;
    }
    let Some(m) = obj else { return false };
    let (singles, lists): (&[&str], &[&str]) = if is(ty, "HumanName") {
        (&["family", "text"], &["given", "prefix", "suffix"])
    } else if is(ty, "Address") {
        (
            &["city", "district", "state", "postalCode", "country", "text"],
            &["line"],
        )
    } else {
        return false;
    };
    for key in singles {
        if let Some(s) = get(m, key) {
            push_string(out, s);
        }
    }
    for key in lists {
        for s in strings(m, key) {
            push_string(out, s);
        }
    }
    true
}

fn coding(m: &Map<String, Value>) -> Option<IndexValue> {
    let (system, code, display) = (owned(m, "system"), owned(m, "code"), owned(m, "display"));
    if system.is_none() && code.is_none() && display.is_none() {
        return None;
    }
    Some(IndexValue::Token {
        system,
        code,
        display,
        text_only: false,
    })
}

fn text_token(text: &str) -> IndexValue {
    IndexValue::Token {
        system: None,
        code: None,
        display: Some(text.to_string()),
        text_only: true,
    }
}

/// Whether one of `codings` has `text` as its display, as `:text` compares them
/// (normalized). A CodeableConcept's `text` is then no value of its own: `:text` finds
/// the concept through that coding already, and the text-only value would cost an index
/// row (and, in a composite, a group of rows that no composite search can match).
fn displayed(codings: &[IndexValue], text: &str) -> bool {
    let text = normalize(text);
    codings.iter().any(|c| match c {
        IndexValue::Token {
            display: Some(d), ..
        } => normalize(d) == text,
        _ => false,
    })
}

fn code_token(code: String) -> IndexValue {
    IndexValue::Token {
        system: None,
        code: Some(code),
        display: None,
        text_only: false,
    }
}

fn token(
    ty: &str,
    node: &Node<'_>,
    obj: Option<&Map<String, Value>>,
    out: &mut Vec<IndexValue>,
) -> bool {
    if let Some(b) = node.as_bool() {
        out.push(code_token(b.to_string()));
        return true;
    }
    if let Some(s) = node.as_str() {
        out.push(code_token(s.to_string()));
        return true;
    }
    let Some(m) = obj else { return false };
    if is(ty, "Coding") {
        out.extend(coding(m));
    } else if is(ty, "CodeableConcept") {
        let codings = m
            .get("coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        let first = out.len();
        out.extend(codings.filter_map(Value::as_object).filter_map(coding));
        if let Some(text) = get(m, "text")
            && !displayed(&out[first..], text)
        {
            out.push(text_token(text));
        }
    } else if is(ty, "Identifier") {
        let type_text = m
            .get("type")
            .and_then(|t| t.get("text"))
            .and_then(Value::as_str);
        let (system, code) = (owned(m, "system"), owned(m, "value"));
        let value = code.clone();
        if system.is_some() || code.is_some() {
            out.push(IndexValue::Token {
                system,
                code,
                display: type_text.map(str::to_string),
                text_only: false,
            });
        } else if let Some(text) = type_text {
            out.push(text_token(text));
        }
        if let Some(value) = &value {
            let types = m
                .get("type")
                .and_then(|t| t.get("coding"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten();
            for c in types {
                if let (Some(system), Some(code)) = (
                    c.get("system").and_then(Value::as_str),
                    c.get("code").and_then(Value::as_str),
                ) {
                    out.push(IndexValue::IdentifierType {
                        system: system.to_owned(),
                        code: code.to_owned(),
                        value: value.clone(),
                    });
                }
            }
        }
    } else if is(ty, "ContactPoint") {
        if let Some(value) = owned(m, "value") {
            out.push(IndexValue::Token {
                system: owned(m, "system"),
                code: Some(value),
                display: None,
                text_only: false,
            });
        }
    } else {
        return false;
    }
    true
}

/// The parts of a reference or canonical string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceParts<'a> {
    /// The resource type, when the reference is or ends in `Type/id` with a known type.
    pub res_type: Option<&'a str>,
    /// The logical id, with `res_type`.
    pub id: Option<&'a str>,
    /// `/_history/v` of a reference, `|version` of a canonical.
    pub version: Option<&'a str>,
    /// An absolute reference or canonical (without history or version), a `#local`
    /// reference, or a relative one that is not `Type/id`.
    pub url: Option<&'a str>,
}

/// `(type, id)` when `s` ends in `Type/id` with a concrete resource type and a valid id.
fn type_and_id(s: &str) -> Option<(&str, &str)> {
    let (rest, id) = s.rsplit_once('/')?;
    let ty = rest.rsplit_once('/').map_or(rest, |(_, t)| t);
    (crate::is_resource_type(ty) && crate::id::is_valid_id(id)).then_some((ty, id))
}

/// Parses a `Reference.reference`: `Type/id`, `Type/id/_history/v`, an absolute URL (its
/// type and id read from a `…/Type/id[/_history/v]` tail), `urn:uuid:…`, `#local`.
///
/// ```
/// use ember_fhir::index::parse_reference;
/// let r = parse_reference("Patient/123/_history/2");
/// assert_eq!((r.res_type, r.id, r.version, r.url), (Some("Patient"), Some("123"), Some("2"), None));
/// let r = parse_reference("http://x.org/fhir/Patient/123");
/// assert_eq!((r.res_type, r.id, r.url), (Some("Patient"), Some("123"), Some("http://x.org/fhir/Patient/123")));
/// ```
pub fn parse_reference(s: &str) -> ReferenceParts<'_> {
    if s.starts_with('#') {
        return ReferenceParts {
            url: Some(s),
            ..Default::default()
        };
    }
    let (body, version) = match s.rsplit_once("/_history/") {
        Some((b, v)) if !v.is_empty() && !v.contains('/') => (b, Some(v)),
        _ => (s, None),
    };
    let absolute = body.contains("://") || body.starts_with("urn:");
    let typed = type_and_id(body);
    let relative_typed = !absolute && typed.is_some() && body.matches('/').count() == 1;
    ReferenceParts {
        res_type: typed.filter(|_| absolute || relative_typed).map(|t| t.0),
        id: typed.filter(|_| absolute || relative_typed).map(|t| t.1),
        version,
        url: (!relative_typed).then_some(body),
    }
}

/// Parses a canonical `url|version` (type and id read from a `…/Type/id` tail).
///
/// ```
/// use ember_fhir::index::parse_canonical;
/// let r = parse_canonical("http://hl7.org/fhir/ValueSet/example|1.0");
/// assert_eq!((r.res_type, r.id, r.version), (Some("ValueSet"), Some("example"), Some("1.0")));
/// assert_eq!(r.url, Some("http://hl7.org/fhir/ValueSet/example"));
/// ```
pub fn parse_canonical(s: &str) -> ReferenceParts<'_> {
    let (url, version) = match s.split_once('|') {
        Some((u, v)) => (u, Some(v).filter(|v| !v.is_empty())),
        None => (s, None),
    };
    let typed = type_and_id(url);
    ReferenceParts {
        res_type: typed.map(|t| t.0),
        id: typed.map(|t| t.1),
        version,
        url: Some(url),
    }
}

fn reference_value(parts: ReferenceParts<'_>) -> IndexValue {
    IndexValue::Reference {
        res_type: parts.res_type.map(str::to_string),
        id: parts.id.map(str::to_string),
        version: parts.version.map(str::to_string),
        url: parts.url.map(str::to_string),
        identifier: None,
    }
}

fn contained_type<'r>(root: &'r Value, local_id: &str) -> Option<&'r str> {
    root.get("contained")?
        .as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(local_id))?
        .get("resourceType")?
        .as_str()
}

fn reference(
    ty: &str,
    node: &Node<'_>,
    obj: Option<&Map<String, Value>>,
    root: &Value,
    out: &mut Vec<IndexValue>,
) -> bool {
    if let Some(s) = node.as_str() {
        // canonical, uri, url (a computed string is read as a reference).
        let parts = if matches!(ty, "canonical" | "uri" | "url" | "oid" | "uuid") {
            parse_canonical(s)
        } else {
            parse_reference(s)
        };
        out.push(reference_value(parts));
        return true;
    }
    let Some(m) = obj else { return false };
    if let Some(rt) = get(m, "resourceType") {
        // A resource in place of a reference (`Bundle.entry[0].resource`).
        out.push(IndexValue::Reference {
            res_type: Some(rt.to_string()),
            id: owned(m, "id"),
            version: m
                .get("meta")
                .and_then(|meta| meta.get("versionId"))
                .and_then(Value::as_str)
                .map(str::to_string),
            url: None,
            identifier: None,
        });
        return true;
    }
    if is(ty, "Identifier") {
        // `Consent.source` as an Identifier: a logical reference (`:identifier`).
        if let Some(v) = owned(m, "value") {
            out.push(IndexValue::Reference {
                res_type: None,
                id: None,
                version: None,
                url: None,
                identifier: Some((owned(m, "system"), v)),
            });
        }
        return true;
    }
    if !is(ty, "Reference") {
        return false;
    }
    let mut value = match get(m, "reference") {
        Some(r) => {
            let mut parts = parse_reference(r);
            if let Some(local) = r.strip_prefix('#') {
                parts.res_type = contained_type(root, local);
            }
            reference_value(parts)
        }
        None => reference_value(ReferenceParts::default()),
    };
    let IndexValue::Reference {
        res_type,
        identifier,
        id,
        url,
        ..
    } = &mut value
    else {
        unreachable!()
    };
    if res_type.is_none()
        && let Some(t) = get(m, "type")
    {
        let t = t
            .strip_prefix("http://hl7.org/fhir/StructureDefinition/")
            .unwrap_or(t);
        *res_type = Some(t.to_string());
    }
    if let Some(ident) = m.get("identifier").and_then(Value::as_object)
        && let Some(v) = owned(ident, "value")
    {
        *identifier = Some((owned(ident, "system"), v));
    }
    // A display-only reference has nothing to search by.
    if id.is_some() || url.is_some() || identifier.is_some() {
        out.push(value);
    }
    true
}

fn range_of(s: &str) -> Result<(i64, i64), String> {
    instant::parse_range(s).ok_or_else(|| format!("not a date: {s:?}"))
}

fn date(
    ty: &str,
    node: &Node<'_>,
    obj: Option<&Map<String, Value>>,
    out: &mut Vec<IndexValue>,
) -> Result<bool, String> {
    let text = match node {
        Node::Date(_) | Node::DateTime(_) => Some(node.to_string()),
        // `scheduledString`, `occurrenceString`: text, indexed when it is a date
        // (`2011-06-27T09:30:10+01:00`), else not indexable (`daily`).
        _ if !matches!(ty, "" | "date" | "dateTime" | "instant") => match node.as_str() {
            Some(s) => match instant::parse_range(s) {
                Some((low, high)) => {
                    out.push(IndexValue::Date {
                        low: Some(low),
                        high: Some(high),
                    });
                    return Ok(true);
                }
                None => return Ok(false),
            },
            None => None,
        },
        _ => node.as_str().map(str::to_string),
    };
    if let Some(s) = text {
        let (low, high) = range_of(&s)?;
        out.push(IndexValue::Date {
            low: Some(low),
            high: Some(high),
        });
        return Ok(true);
    }
    let Some(m) = obj else { return Ok(false) };
    if is(ty, "Period") {
        if let Some(v) = period(m)? {
            out.push(v);
        }
        return Ok(true);
    }
    if is(ty, "Timing") {
        // One range over every event and the repeat bounds.
        let mut parts = Vec::new();
        for e in strings(m, "event") {
            let (low, high) = range_of(e)?;
            parts.push((Some(low), Some(high)));
        }
        let bounds = m
            .get("repeat")
            .and_then(|r| r.get("boundsPeriod"))
            .and_then(Value::as_object);
        if let Some(b) = bounds
            && let Some(IndexValue::Date { low, high }) = period(b)?
        {
            parts.push((low, high));
        }
        if !parts.is_empty() {
            let low = parts.iter().map(|p| p.0).min().flatten();
            let high = if parts.iter().any(|p| p.1.is_none()) {
                None
            } else {
                parts.iter().map(|p| p.1).max().flatten()
            };
            out.push(IndexValue::Date { low, high });
        }
        return Ok(true);
    }
    Ok(false)
}

/// `[start.low, end.high)`, open ends as None; None for an empty Period.
fn period(m: &Map<String, Value>) -> Result<Option<IndexValue>, String> {
    let low = get(m, "start").map(range_of).transpose()?.map(|r| r.0);
    let high = get(m, "end").map(range_of).transpose()?.map(|r| r.1);
    Ok((low.is_some() || high.is_some()).then_some(IndexValue::Date { low, high }))
}

/// The range a decimal written as `text` stands for: half a unit of its last written
/// digit either side, `[low, high)`: `100` → `99.5`..`100.5`, `1.50` → `1.495`..`1.505`,
/// `1e2` → `50`..`150`. None when `text` is not a decimal.
///
/// ```
/// use ember_fhir::index::number_range;
/// assert_eq!(number_range("100"), Some(("99.5".to_string(), "100.5".to_string())));
/// assert_eq!(number_range("-0.25"), Some(("-0.255".to_string(), "-0.245".to_string())));
/// ```
pub fn number_range(text: &str) -> Option<(String, String)> {
    let value = Decimal::parse(text)?;
    // The power of ten of the last written digit.
    let lower = text.to_ascii_lowercase();
    let (mantissa, exp) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (lower.as_str(), 0),
    };
    let frac_digits = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i64);
    let last = exp - frac_digits;
    let half = if last >= 1 {
        Decimal::new(5 * 10i128.checked_pow(u32::try_from(last - 1).ok()?)?, 0)
    } else {
        Decimal::new(5, u32::try_from(1 - last).ok()?)
    };
    let low = value.checked_sub(&half)?;
    let high = value.checked_add(&half)?;
    Some((low.to_string(), high.to_string()))
}

fn number(node: &Node<'_>, out: &mut Vec<IndexValue>) -> Result<bool, String> {
    let text = match node {
        Node::Integer(i) => i.to_string(),
        Node::Decimal(d) => d.to_string(),
        _ => match node.as_json() {
            Some(Value::Number(n)) => n.as_str().to_string(),
            _ => return Ok(false),
        },
    };
    let (low, high) = number_range(&text).ok_or_else(|| format!("not a number: {text}"))?;
    out.push(IndexValue::Number {
        value: text,
        low,
        high,
    });
    Ok(true)
}

/// A Quantity-like JSON object; None without a value.
fn quantity_object(m: &Map<String, Value>) -> Option<IndexValue> {
    let value = match m.get("value")? {
        Value::Number(n) => n.as_str().to_string(),
        _ => return None,
    };
    let (system, code) = (owned(m, "system"), owned(m, "code"));
    let canonical = match (system.as_deref(), code.as_deref()) {
        (Some(UCUM), Some(c)) => ucum::canonical_quantity(&value, c),
        _ => None,
    };
    Some(IndexValue::Quantity {
        value,
        system,
        code,
        unit: owned(m, "unit"),
        canonical,
    })
}

fn quantity(
    ty: &str,
    node: &Node<'_>,
    obj: Option<&Map<String, Value>>,
    out: &mut Vec<IndexValue>,
) -> bool {
    if let Node::Quantity(q) = node {
        let value = q.value.to_string();
        let (system, code) = if q.is_calendar() {
            (None, None)
        } else {
            (Some(UCUM.to_string()), Some(q.unit.to_string()))
        };
        let canonical = code
            .as_deref()
            .and_then(|c| ucum::canonical_quantity(&value, c));
        out.push(IndexValue::Quantity {
            value,
            system,
            code,
            unit: Some(q.unit.to_string()),
            canonical,
        });
        return true;
    }
    let Some(m) = obj else { return false };
    if is(ty, "Quantity") {
        out.extend(quantity_object(m));
    } else if is(ty, "Money") {
        if let Some(Value::Number(n)) = m.get("value") {
            out.push(IndexValue::Quantity {
                value: n.as_str().to_string(),
                system: Some(ISO_4217.to_string()),
                code: owned(m, "currency"),
                unit: None,
                canonical: None,
            });
        }
    } else if is(ty, "Range") {
        for end in ["low", "high"] {
            if let Some(q) = m.get(end).and_then(Value::as_object) {
                out.extend(quantity_object(q));
            }
        }
    } else {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = parse_reference("Practitioner/123");
        assert_eq!(
            r,
            ReferenceParts {
                res_type: Some("Practitioner"),
                id: Some("123"),
                version: None,
                url: None
            }
        );
        let r = parse_reference("https://ex.org/fhir/Observation/o1/_history/3");
        assert_eq!(r.res_type, Some("Observation"));
        assert_eq!(r.id, Some("o1"));
        assert_eq!(r.version, Some("3"));
        assert_eq!(r.url, Some("https://ex.org/fhir/Observation/o1"));
        let r = parse_reference("urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d");
        assert_eq!((r.res_type, r.id), (None, None));
        assert_eq!(r.url, Some("urn:uuid:04121321-4af5-424c-a0e1-ed3aab1c349d"));
        let r = parse_reference("#p1");
        assert_eq!((r.res_type, r.url), (None, Some("#p1")));
        // Not Type/id: kept as it is.
        for odd in ["Patient", "Foo/1", "a/Patient/1", "Patient/a_b"] {
            let r = parse_reference(odd);
            assert_eq!((r.res_type, r.url), (None, Some(odd)), "{odd}");
        }
        let r = parse_canonical("http://hl7.org/fhir/StructureDefinition/Patient");
        assert_eq!(
            (r.res_type, r.id),
            (Some("StructureDefinition"), Some("Patient"))
        );
        let r = parse_canonical("http://example.org/q|");
        assert_eq!(
            (r.res_type, r.version, r.url),
            (None, None, Some("http://example.org/q"))
        );
    }

    #[test]
    fn only_quantity_has_subtypes() {
        for t in definitions::types() {
            for base in [
                "HumanName",
                "Address",
                "Coding",
                "CodeableConcept",
                "Identifier",
                "ContactPoint",
                "Reference",
                "Period",
                "Timing",
                "Money",
                "Range",
                "Extension",
            ] {
                assert_eq!(
                    definitions::is_a(t.name, base),
                    t.name == base,
                    "{}",
                    t.name
                );
            }
        }
        assert!(is("Age", "Quantity") && is("SimpleQuantity", "Quantity"));
    }

    #[test]
    fn number_ranges() {
        let r = |s: &str| number_range(s).map(|(a, b)| format!("{a}..{b}"));
        assert_eq!(r("100").as_deref(), Some("99.5..100.5"));
        assert_eq!(r("100.0").as_deref(), Some("99.95..100.05"));
        assert_eq!(r("1.50").as_deref(), Some("1.495..1.505"));
        assert_eq!(r("0").as_deref(), Some("-0.5..0.5"));
        assert_eq!(r("1e2").as_deref(), Some("50..150"));
        assert_eq!(r("1.5E-3").as_deref(), Some("0.00145..0.00155"));
        assert_eq!(r("x"), None);
    }
}
