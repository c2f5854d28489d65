//! Runs every case of the official FHIRPath R4 test suite
//! (`shared/fhir/fhirpath/tests-fhir-r4.xml`) against the engine.
//!
//! Inputs named `patient-example.xml` etc. are read as the JSON examples of the FHIR
//! package (`Patient-example.json`, from `$EMBER_FHIR_PACKAGE` or
//! `../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz` next to the workspace); inputs
//! the package does not have are read from the suite's XML with `ember_fhir::xml`.
//! `*.json` inputs are read as they are.
//!
//! Cases listed in `fhirpath-expected-failures.txt` must fail, all others must
//! pass. `EMBER_FHIRPATH_BLESS=1` rewrites that file from the current results.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use ember_fhir::definitions;
use ember_fhir::fhirpath::{Env, Expression, Node};
use serde_json::{Map, Value};

mod common;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn suite_dir() -> PathBuf {
    match std::env::var_os("EMBER_FHIRPATH_TESTS") {
        Some(p) => PathBuf::from(p),
        None => workspace().join("../shared/fhir/fhirpath"),
    }
}

fn require(path: &Path) {
    assert!(
        path.exists(),
        "{} is missing: the FHIRPath suite never skips{}",
        path.display(),
        if std::env::var_os("CI").is_some() {
            " (CI is set)"
        } else {
            ""
        }
    );
}

/// The package's JSON examples wanted by the suite, by file name.
fn package_files(wanted: &[String]) -> HashMap<String, Value> {
    require(&common::package_path());
    common::package_files(|name| wanted.iter().any(|w| w == name))
        .into_iter()
        .collect()
}

/// `patient-example.xml` → `Patient-example.json`.
fn package_name(input: &str) -> Option<String> {
    let stem = input.strip_suffix(".xml")?;
    let (ty, rest) = stem.split_once('-')?;
    let type_name = definitions::types()
        .iter()
        .find(|t| t.name.eq_ignore_ascii_case(ty))?
        .name;
    Some(format!("{type_name}-{rest}.json"))
}

// ------------------------------------------------------------------ XML → JSON

/// A suite input in XML, read by Ember's own FHIR XML reader.
fn xml_to_json(text: &str) -> Value {
    ember_fhir::xml::from_xml(text.as_bytes(), 64).expect("input XML")
}

/// JSON equality with numbers compared by their text (as `arbitrary_precision`
/// keeps it) and the narrative ignored (XML and JSON serialise it differently).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(p), Value::Object(q)) => {
            let keys = |m: &Map<String, Value>| {
                m.keys()
                    .filter(|k| *k != "div")
                    .cloned()
                    .collect::<std::collections::BTreeSet<_>>()
            };
            keys(p) == keys(q)
                && p.iter()
                    .filter(|(k, _)| *k != "div")
                    .all(|(k, v)| json_equal(v, &q[k]))
        }
        (Value::Array(p), Value::Array(q)) => {
            p.len() == q.len() && p.iter().zip(q).all(|(x, y)| json_equal(x, y))
        }
        _ => a == b,
    }
}

#[test]
fn xml_conversion_reproduces_the_package_examples() {
    // The reader is trusted for inputs the package lacks because it gives the
    // package's JSON for one it has (the suite's other inputs are edited copies).
    let dir = suite_dir();
    let path = dir.join("patient-example.xml");
    require(&path);
    let package = package_files(&["Patient-example.json".to_string()]);
    let converted = xml_to_json(&std::fs::read_to_string(&path).expect("read"));
    assert!(
        json_equal(&package["Patient-example.json"], &converted),
        "{converted:#}"
    );
}

// ------------------------------------------------------------------ cases

struct Case {
    name: String,
    input: Option<String>,
    expression: String,
    invalid: bool,
    predicate: bool,
    ordered: bool,
    outputs: Vec<(Option<String>, String)>,
}

fn load_cases(xml: &str) -> Vec<Case> {
    let doc = roxmltree::Document::parse(xml).expect("suite XML");
    let mut cases = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for test in doc.descendants().filter(|n| n.has_tag_name("test")) {
        let group = test
            .parent()
            .and_then(|p| p.attribute("name"))
            .unwrap_or("");
        let base = test.attribute("name").unwrap_or(group).to_string();
        let count = seen.entry(base.clone()).or_default();
        *count += 1;
        let name = if *count > 1 {
            format!("{base}#{count}")
        } else {
            base
        };
        let expr_node = test
            .children()
            .find(|c| c.has_tag_name("expression"))
            .expect("expression");
        cases.push(Case {
            name,
            input: test.attribute("inputfile").map(str::to_string),
            expression: expr_node.text().unwrap_or("").to_string(),
            invalid: expr_node.attribute("invalid").is_some(),
            predicate: test.attribute("predicate") == Some("true"),
            ordered: test.attribute("ordered") != Some("false"),
            outputs: test
                .children()
                .filter(|c| c.has_tag_name("output"))
                .map(|o| {
                    (
                        o.attribute("type").map(str::to_string),
                        o.text().unwrap_or("").to_string(),
                    )
                })
                .collect(),
        });
    }
    cases
}

/// The suite's type name for a result item.
fn suite_type(n: &Node<'_>) -> String {
    match n {
        Node::Element(e) => {
            let t = e.type_name();
            t.strip_prefix("System.")
                .map(|s| {
                    let mut c = s.chars();
                    c.next()
                        .map(|f| f.to_ascii_lowercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .unwrap_or_else(|| t.to_string())
        }
        Node::Boolean(_) => "boolean".into(),
        Node::Integer(_) => "integer".into(),
        Node::Decimal(_) => "decimal".into(),
        Node::String(_) => "string".into(),
        Node::Date(_) => "date".into(),
        Node::DateTime(_) => "dateTime".into(),
        Node::Time(_) => "time".into(),
        Node::Quantity(_) => "Quantity".into(),
        Node::TypeInfo { .. } => "TypeInfo".into(),
    }
}

/// The suite's text for a result item.
fn suite_text(n: &Node<'_>) -> String {
    match n {
        Node::Date(_) => format!("@{n}"),
        Node::DateTime(d) => format!("@{}", d.to_string_with(false)),
        Node::Time(_) => format!("@T{n}"),
        Node::Element(e) if matches!(e.type_name(), "date" | "dateTime" | "instant") => {
            format!("@{n}")
        }
        Node::Element(e) if e.type_name() == "time" => format!("@T{n}"),
        _ => n.to_string(),
    }
}

fn run_case(case: &Case, inputs: &HashMap<String, Value>, empty: &Value) -> Result<(), String> {
    let expr = match Expression::parse(&case.expression) {
        Ok(e) => e,
        Err(_) if case.invalid => return Ok(()),
        Err(e) => return Err(format!("parse error: {e}")),
    };
    let resource = match &case.input {
        Some(i) => inputs.get(i).ok_or_else(|| format!("no input {i}"))?,
        None => empty,
    };
    let env = Env::new();
    let result = match expr.evaluate(resource, &env) {
        Ok(r) => r,
        Err(_) if case.invalid => return Ok(()),
        Err(e) => return Err(format!("evaluation error: {e}")),
    };
    if case.invalid {
        return Err(format!("expected an error, got {} item(s)", result.len()));
    }
    let got: Vec<(String, String)> = if case.predicate {
        vec![("boolean".into(), (!result.is_empty()).to_string())]
    } else {
        result
            .iter()
            .map(|n| (suite_type(n), suite_text(n)))
            .collect()
    };
    let mut want: Vec<(Option<String>, String)> = case.outputs.clone();
    let mut got_sorted = got.clone();
    if !case.ordered {
        want.sort_by(|a, b| a.1.cmp(&b.1));
        got_sorted.sort_by(|a, b| a.1.cmp(&b.1));
    }
    let matches = want.len() == got_sorted.len()
        && want
            .iter()
            .zip(&got_sorted)
            .all(|((wt, wv), (gt, gv))| wv == gv && wt.as_ref().is_none_or(|t| t == gt));
    if matches {
        Ok(())
    } else {
        let show = |v: Vec<String>| format!("[{}]", v.join(", "));
        Err(format!(
            "expected {} got {}",
            show(
                case.outputs
                    .iter()
                    .map(|(t, v)| format!("{}:{v}", t.as_deref().unwrap_or("?")))
                    .collect()
            ),
            show(got.iter().map(|(t, v)| format!("{t}:{v}")).collect())
        ))
    }
}

fn expectations_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhirpath-expected-failures.txt")
}

fn read_expectations() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(expectations_path()).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once('#') {
            Some((n, r)) => (n.trim().to_string(), r.trim().to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

#[test]
fn official_fhirpath_suite() {
    let dir = suite_dir();
    let suite = dir.join("tests-fhir-r4.xml");
    require(&suite);
    let cases = load_cases(&std::fs::read_to_string(&suite).expect("read suite"));

    // Inputs.
    let mut names: Vec<String> = cases.iter().filter_map(|c| c.input.clone()).collect();
    names.sort();
    names.dedup();
    let wanted: Vec<String> = names.iter().filter_map(|n| package_name(n)).collect();
    let package = package_files(&wanted);
    let mut inputs = HashMap::new();
    for name in &names {
        let path = dir.join(name);
        let json = if name.ends_with(".json") {
            require(&path);
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read input"))
                .expect("input JSON")
        } else {
            // The suite's XML is the reference: the package example is used when it
            // has the same content (most do), else the converted XML.
            require(&path);
            let converted = xml_to_json(&std::fs::read_to_string(&path).expect("read input"));
            match package_name(name).and_then(|p| package.get(&p)) {
                Some(v) if json_equal(v, &converted) => v.clone(),
                Some(_) => {
                    eprintln!(
                        "{name}: the package example differs from the suite's XML; using the XML"
                    );
                    converted
                }
                None => converted,
            }
        };
        inputs.insert(name.clone(), json);
    }
    let empty = Value::Object(Map::new());

    let mut failures = BTreeMap::new();
    for case in &cases {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_case(case, &inputs, &empty)
        }))
        .unwrap_or_else(|_| Err("panicked".into()));
        if let Err(reason) = outcome {
            failures.insert(case.name.clone(), reason);
        }
    }

    let total = cases.len();
    let passed = total - failures.len();
    let summary = format!(
        "fhirpath suite: {passed} of {total} cases pass ({:.1}%)\n",
        passed as f64 * 100.0 / total as f64
    );
    // Not captured by the test harness: always shown.
    let _ = std::io::stderr().write_all(summary.as_bytes());

    if std::env::var_os("EMBER_FHIRPATH_BLESS").is_some() {
        let mut text = String::from(
            "# FHIRPath suite cases that are known to fail: `name  # reason`.\n\
             # Regenerate with EMBER_FHIRPATH_BLESS=1 cargo test -p ember-fhir --test fhirpath_suite\n",
        );
        for (name, reason) in &failures {
            let reason: String = reason.replace('\n', " ").chars().take(160).collect();
            text.push_str(&format!("{name}  # {reason}\n"));
        }
        std::fs::write(expectations_path(), text).expect("write expectations");
        return;
    }

    let expected = read_expectations();
    let mut problems = Vec::new();
    for (name, reason) in &failures {
        if !expected.contains_key(name) {
            problems.push(format!("new failure: {name}: {reason}"));
        }
    }
    for name in expected.keys() {
        if !failures.contains_key(name) {
            if cases.iter().any(|c| &c.name == name) {
                problems.push(format!("now passes (remove it from the list): {name}"));
            } else {
                problems.push(format!("listed but not in the suite: {name}"));
            }
        }
    }
    assert!(problems.is_empty(), "{summary}{}", problems.join("\n"));
    assert!(passed * 10 >= total * 9, "{summary}below the 90% target");
}
