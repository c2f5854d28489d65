//! Values in JSON: fixed and pattern matching, the members of an element by FHIR name
//! (choice elements included), the codes of a coded value.

use serde_json::{Map, Value};

/// `fixed[x]`: the value is exactly the fixed one (numbers by value).
pub fn fixed_matches(fixed: &Value, value: &Value) -> bool {
    match (fixed, value) {
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| fixed_matches(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| fixed_matches(v, w))
        }
        _ => fixed == value,
    }
}

/// `pattern[x]`: every member the pattern has, the value has with a matching value; a
/// pattern array's items each match some item of the value's array.
pub fn pattern_matches(pattern: &Value, value: &Value) -> bool {
    match (pattern, value) {
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::Object(p), Value::Object(v)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| pattern_matches(pv, vv))),
        (Value::Array(p), Value::Array(v)) => p
            .iter()
            .all(|pi| v.iter().any(|vi| pattern_matches(pi, vi))),
        // A pattern for a repeating element given as one value.
        (Value::Object(_), Value::Array(v)) => v.iter().any(|vi| pattern_matches(pattern, vi)),
        _ => pattern == value,
    }
}

fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    match (
        crate::fhirpath::Decimal::parse(&a.to_string()),
        crate::fhirpath::Decimal::parse(&b.to_string()),
    ) {
        (Some(x), Some(y)) => x.cmp_value(&y).is_eq(),
        _ => a == b,
    }
}

/// The lower-case-first form of a type suffix (`String` → `string`), as type codes of
/// primitives are written.
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The FHIR type a choice member's suffix names (`Quantity`, `string` for `String`),
/// when it names one.
pub fn suffix_type(suffix: &str) -> Option<String> {
    if crate::definitions::type_def(suffix).is_some() {
        return Some(suffix.to_owned());
    }
    let lower = lower_first(suffix);
    crate::definitions::type_def(&lower).map(|_| lower)
}

/// One member value of an element: the JSON value and, for a primitive, its `_name`
/// sibling; `ty` is the type a choice member's name gives.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    pub key: &'a str,
    pub value: Option<&'a Value>,
    pub ext: Option<&'a Value>,
    /// The position in the JSON array, for a repeating element.
    pub index: Option<usize>,
}

/// The members of `obj` for the element `base` (`component`, or `value` of a choice
/// element): with their JSON names, in document order, arrays expanded.
pub fn members<'a>(obj: &'a Map<String, Value>, base: &str, choice: bool) -> Vec<Member<'a>> {
    let mut out = Vec::new();
    for (key, v) in obj {
        let name = key.as_str();
        if let Some(plain) = name.strip_prefix('_') {
            // Only a primitive known by its `_name` alone counts here.
            if obj.contains_key(plain) || !names(plain, base, choice) {
                continue;
            }
            push(&mut out, plain, None, Some(v));
            continue;
        }
        if names(name, base, choice) {
            let ext = obj.get(&format!("_{name}"));
            push(&mut out, name, Some(v), ext);
        }
    }
    out
}

/// Whether the JSON name `name` is of the element `base`.
fn names(name: &str, base: &str, choice: bool) -> bool {
    if !choice {
        return name == base;
    }
    name.len() > base.len()
        && name.starts_with(base)
        && name.as_bytes()[base.len()].is_ascii_uppercase()
        && suffix_type(&name[base.len()..]).is_some()
}

fn push<'a>(out: &mut Vec<Member<'a>>, key: &'a str, v: Option<&'a Value>, ext: Option<&'a Value>) {
    match (v, ext) {
        (Some(Value::Array(items)), _) | (None, Some(Value::Array(items))) => {
            let exts = ext.and_then(Value::as_array);
            let values = v.and_then(Value::as_array);
            let len = items.len().max(exts.map_or(0, Vec::len));
            for i in 0..len {
                let value = values.and_then(|a| a.get(i)).filter(|x| !x.is_null());
                let e = exts.and_then(|a| a.get(i)).filter(|x| !x.is_null());
                if value.is_some() || e.is_some() {
                    out.push(Member {
                        key,
                        value,
                        ext: e,
                        index: Some(i),
                    });
                }
            }
        }
        (Some(Value::Null), None) | (None, None) => {}
        _ => out.push(Member {
            key,
            value: v.filter(|x| !x.is_null()),
            ext: ext.filter(|e| e.is_object()),
            index: None,
        }),
    }
}

/// The values at a simple dotted path under `v` (names, choice names by their base,
/// `$this`, `extension('url')`), arrays flattened. `None` when the path uses anything
/// else (such as `resolve()`).
pub fn at_path<'a>(v: &'a Value, path: &str) -> Option<Vec<&'a Value>> {
    let mut current = vec![v];
    for seg in segments(path) {
        if seg == "$this" {
            continue;
        }
        let mut next = Vec::new();
        if let Some(url) = seg
            .strip_prefix("extension('")
            .and_then(|s| s.strip_suffix("')"))
        {
            for c in &current {
                for e in c
                    .get("extension")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if e.get("url").and_then(Value::as_str) == Some(url) {
                        next.push(e);
                    }
                }
            }
        } else if seg.contains('(') {
            return None;
        } else {
            for c in &current {
                let Some(obj) = c.as_object() else { continue };
                let choice = !obj.contains_key(seg);
                for m in members(obj, seg, choice) {
                    if let Some(x) = m.value {
                        next.push(x);
                    }
                }
            }
        }
        current = next;
    }
    Some(current)
}

/// The segments of a dotted path; dots inside parentheses do not split.
pub fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in path.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            '.' if depth == 0 => {
                out.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&path[start..]);
    out.retain(|s| !s.is_empty());
    out
}

/// The codes of a coded value of type `ty`: `(system, code)`; `None` when `ty` is not
/// coded (code, Coding, CodeableConcept, Quantity).
pub fn codes(ty: &str, v: &Value) -> Option<Vec<(Option<String>, String)>> {
    let coding = |c: &Value| {
        let code = c.get("code").and_then(Value::as_str)?;
        let system = c.get("system").and_then(Value::as_str).map(str::to_owned);
        Some((system, code.to_owned()))
    };
    match ty {
        "code" => Some(
            v.as_str()
                .map(|c| (None, c.to_owned()))
                .into_iter()
                .collect(),
        ),
        "Coding" | "Quantity" => Some(coding(v).into_iter().collect()),
        "CodeableConcept" => Some(
            v.get("coding")
                .and_then(Value::as_array)
                .map(|cs| cs.iter().filter_map(coding).collect())
                .unwrap_or_default(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_are_contained_and_fixed_values_exact() {
        let pattern = json!({"coding": [{"system": "http://loinc.org", "code": "8480-6"}]});
        let value = json!({"coding": [
            {"system": "http://snomed.info/sct", "code": "271649006"},
            {"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}]});
        assert!(pattern_matches(&pattern, &value));
        assert!(!fixed_matches(&pattern, &value));
        let other = json!({"coding": [{"system": "http://loinc.org", "code": "8462-4"}]});
        assert!(!pattern_matches(&pattern, &other));
        assert!(fixed_matches(&json!(1.50), &json!(1.5)));
        assert!(!fixed_matches(&json!("a"), &json!("b")));
    }

    #[test]
    fn members_and_paths() {
        let obs = json!({"valueQuantity": {"value": 1}, "valueSet": 2,
            "component": [{"code": {"coding": [{"code": "a"}, {"code": "b"}]}}],
            "_status": {"extension": []}});
        let obj = obs.as_object().unwrap();
        let values = members(obj, "value", true);
        assert_eq!(values.len(), 1);
        assert_eq!(values[0].key, "valueQuantity");
        assert_eq!(members(obj, "status", false).len(), 1);
        assert_eq!(members(obj, "component", false)[0].index, Some(0));
        let codes: Vec<_> = at_path(&obs, "component.code.coding.code").unwrap();
        assert_eq!(codes, vec![&json!("a"), &json!("b")]);
        assert!(at_path(&obs, "subject.resolve()").is_none());
        assert_eq!(
            segments("extension('http://a.b/c').value"),
            vec!["extension('http://a.b/c')", "value"]
        );
    }
}
