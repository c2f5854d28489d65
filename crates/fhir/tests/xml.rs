//! FHIR XML (`ember_fhir::xml`): every example of the R4 package goes JSON → XML → JSON
//! and must come back equal to the original JSON, and the XML written must be read back
//! the same by the indented form too.

use std::time::Instant;

use ember_fhir::xml::{from_xml, to_xml};

mod common;

const MAX_DEPTH: usize = 64;

#[test]
fn every_package_example_round_trips_through_xml() {
    let examples = common::examples();
    assert!(examples.len() > 5000, "{} examples", examples.len());
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut bytes = 0;
    for (name, json) in &examples {
        let result = to_xml(json, false).and_then(|xml| {
            bytes += xml.len();
            from_xml(xml.as_bytes(), MAX_DEPTH)
        });
        match result {
            Ok(back) if back == *json => {}
            Ok(back) => failures.push(format!(
                "{name}: differs\n{}",
                first_difference(json, &back, "")
            )),
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    eprintln!(
        "{} examples, {} MB of XML, round trip in {:?}",
        examples.len(),
        bytes / 1_000_000,
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} examples do not round-trip:\n{}",
        failures.len(),
        examples.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn indented_xml_reads_back_the_same() {
    for (name, json) in common::examples().iter().step_by(25) {
        let xml = to_xml(json, true).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back = from_xml(xml.as_bytes(), MAX_DEPTH).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&back, json, "{name}");
    }
}

/// Where two JSON values first differ, as a path with both values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, path: &str) -> String {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(p), Value::Object(q)) => {
            for (k, v) in p {
                match q.get(k) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(v, w, &format!("{path}.{k}")),
                    None => return format!("{path}.{k}: missing after the round trip"),
                }
            }
            let extra: Vec<_> = q.keys().filter(|k| !p.contains_key(*k)).collect();
            format!("{path}: added {extra:?}")
        }
        (Value::Array(p), Value::Array(q)) if p.len() == q.len() => {
            for (i, (v, w)) in p.iter().zip(q).enumerate() {
                if v != w {
                    return first_difference(v, w, &format!("{path}[{i}]"));
                }
            }
            String::new()
        }
        _ => format!("{path}: {a} became {b}"),
    }
}
