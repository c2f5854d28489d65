//! FHIRPath Patch: every case of the official suite
//! (`../shared/fhir/patch/fhir-patch-tests.xml` next to the workspace, or
//! `$EMBER_FHIR_PATCH_TESTS`), plus cases for malformed and inapplicable patches.
//!
//! The suite's resources are XML; they are converted to FHIR JSON here, using the
//! R4 definitions for arrays, choice names and primitive JSON types. Results are
//! compared as JSON, member order aside; narrative `div`s are compared as XHTML
//! (whitespace between and around text normalised).

use std::path::{Path, PathBuf};

use ember_fhir::definitions::{self, TypeKind};
use ember_fhir::fhirpath_patch::{PatchError, apply_fhirpath_patch};
use serde_json::{Map, Value, json};

const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";

fn suite_path() -> PathBuf {
    match std::env::var_os("EMBER_FHIR_PATCH_TESTS") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fhir/patch/fhir-patch-tests.xml"),
    }
}

// ------------------------------------------------------------------ XML → JSON

type XmlNode<'a, 'i> = roxmltree::Node<'a, 'i>;

fn child_elements<'a, 'i>(n: XmlNode<'a, 'i>) -> impl Iterator<Item = XmlNode<'a, 'i>> {
    n.children().filter(XmlNode::is_element)
}

fn is_primitive(ty: &str) -> bool {
    ty.starts_with("System.")
        || definitions::type_def(ty).is_some_and(|t| t.kind == TypeKind::Primitive)
}

fn is_resource(ty: &str) -> bool {
    definitions::type_def(ty).is_some_and(|t| t.kind == TypeKind::Resource)
}

/// A primitive's `value` attribute as FHIR JSON.
fn primitive_json(ty: &str, text: &str) -> Value {
    match ty {
        "boolean" | "System.Boolean" => Value::Bool(text == "true"),
        "integer" | "positiveInt" | "unsignedInt" | "decimal" | "System.Integer"
        | "System.Decimal" => serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("{ty} value '{text}' is not a number: {e}")),
        _ => Value::String(text.to_owned()),
    }
}

fn resource_json(el: XmlNode<'_, '_>) -> Value {
    let rt = el.tag_name().name();
    let rt = match definitions::type_def(rt) {
        Some(t) if t.kind == TypeKind::Resource => t.name,
        _ => panic!("<{rt}> is not a resource"),
    };
    let mut obj = Map::new();
    obj.insert("resourceType".into(), Value::String(rt.to_owned()));
    fill_object(el, rt, &mut obj);
    Value::Object(obj)
}

/// The `id`/`url` attributes of a (non-primitive) element.
fn attributes(el: XmlNode<'_, '_>, obj: &mut Map<String, Value>) {
    for a in el.attributes() {
        match a.name() {
            "id" | "url" => {
                obj.insert(a.name().to_owned(), Value::String(a.value().to_owned()));
            }
            other => panic!("unexpected attribute {other} on <{}>", el.tag_name().name()),
        }
    }
}

/// Adds the child elements of `el` to `obj`; the definitions list them under `parent`.
fn fill_object(el: XmlNode<'_, '_>, parent: &'static str, obj: &mut Map<String, Value>) {
    for c in child_elements(el) {
        let name = c.tag_name().name();
        if c.tag_name().namespace() == Some(XHTML_NS) {
            assert_eq!(name, "div", "unexpected XHTML element in {parent}");
            obj.insert("div".into(), Value::String(xhtml_string(c)));
            continue;
        }
        let (def, ty) = definitions::member(parent, name)
            .unwrap_or_else(|| panic!("{parent} has no element <{name}>"));
        let (value, ext) = if is_resource(ty) || matches!(ty, "Resource" | "DomainResource") {
            let inner = child_elements(c)
                .next()
                .unwrap_or_else(|| panic!("<{name}> holds no resource"));
            (Some(resource_json(inner)), None)
        } else if is_primitive(ty) {
            let value = c.attribute("value").map(|v| primitive_json(ty, v));
            let mut ext = Map::new();
            for a in c.attributes() {
                match a.name() {
                    "value" => {}
                    "id" => {
                        ext.insert("id".into(), Value::String(a.value().to_owned()));
                    }
                    other => panic!("unexpected attribute {other} on <{name}>"),
                }
            }
            fill_object(c, "Element", &mut ext);
            (value, (!ext.is_empty()).then_some(Value::Object(ext)))
        } else {
            let mut o = Map::new();
            attributes(c, &mut o);
            fill_object(c, definitions::child_parent(def, ty), &mut o);
            (Some(Value::Object(o)), None)
        };
        let ext_key = format!("_{name}");
        if def.is_array() {
            let n = obj.get(name).and_then(Value::as_array).map_or(0, Vec::len);
            let items = obj
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .expect("a list");
            items.push(value.unwrap_or(Value::Null));
            if ext.is_some() || obj.contains_key(&ext_key) {
                let exts = obj
                    .entry(ext_key)
                    .or_insert_with(|| Value::Array(Vec::new()))
                    .as_array_mut()
                    .expect("a list");
                exts.resize(n, Value::Null);
                exts.push(ext.unwrap_or(Value::Null));
            }
        } else {
            assert!(!obj.contains_key(name), "<{name}> repeats in {parent}");
            if let Some(v) = value {
                obj.insert(name.to_owned(), v);
            }
            if let Some(e) = ext {
                obj.insert(ext_key, e);
            }
        }
    }
}

fn escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The narrative `div` as an XHTML string (FHIR JSON's form).
fn xhtml_string(div: XmlNode<'_, '_>) -> String {
    fn write(n: XmlNode<'_, '_>, root: bool, out: &mut String) {
        if n.is_text() {
            out.push_str(&escape(n.text().unwrap_or(""), false));
            return;
        }
        if !n.is_element() {
            return;
        }
        let name = n.tag_name().name();
        out.push('<');
        out.push_str(name);
        if root {
            out.push_str(&format!(" xmlns=\"{XHTML_NS}\""));
        }
        for a in n.attributes() {
            out.push_str(&format!(" {}=\"{}\"", a.name(), escape(a.value(), true)));
        }
        if n.has_children() {
            out.push('>');
            for c in n.children() {
                write(c, false, out);
            }
            out.push_str(&format!("</{name}>"));
        } else {
            out.push_str("/>");
        }
    }
    let mut out = String::new();
    write(div, true, &mut out);
    out
}

/// XHTML in a canonical form: attributes sorted, text trimmed with whitespace runs
/// collapsed, whitespace-only text left out.
fn xhtml_canonical(s: &str) -> Result<String, String> {
    fn write(n: XmlNode<'_, '_>, out: &mut String) {
        if n.is_text() {
            let text = n
                .text()
                .unwrap_or("")
                .split_whitespace()
                .collect::<Vec<_>>();
            if !text.is_empty() {
                out.push_str(&format!("[{}]", text.join(" ")));
            }
            return;
        }
        if !n.is_element() {
            return;
        }
        let mut attrs: Vec<_> = n
            .attributes()
            .map(|a| format!("{}={:?}", a.name(), a.value()))
            .collect();
        attrs.sort();
        out.push_str(&format!(
            "<{}:{} {}>",
            n.tag_name().namespace().unwrap_or(""),
            n.tag_name().name(),
            attrs.join(" ")
        ));
        for c in n.children() {
            write(c, out);
        }
        out.push_str("</>");
    }
    let doc = roxmltree::Document::parse(s).map_err(|e| format!("not XHTML: {e}"))?;
    let mut out = String::new();
    write(doc.root_element(), &mut out);
    Ok(out)
}

/// Compares FHIR JSON: object members in any order, numbers by value, `div` as XHTML.
fn compare(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for k in a.keys().chain(e.keys()) {
                let here = format!("{at}.{k}");
                match (a.get(k), e.get(k)) {
                    (Some(Value::String(x)), Some(Value::String(y))) if k == "div" => {
                        if xhtml_canonical(x)? != xhtml_canonical(y)? {
                            return Err(format!("{here}: {x} != {y}"));
                        }
                    }
                    (Some(x), Some(y)) => compare(x, y, &here)?,
                    (Some(x), None) => return Err(format!("{here}: unexpected {x}")),
                    (None, Some(y)) => return Err(format!("{here}: missing (expected {y})")),
                    (None, None) => unreachable!(),
                }
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(e)) => {
            if a.len() != e.len() {
                return Err(format!("{at}: {} items, expected {}", a.len(), e.len()));
            }
            for (i, (x, y)) in a.iter().zip(e).enumerate() {
                compare(x, y, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(x), Value::Number(y)) => {
            let same =
                x.as_str() == y.as_str() || x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x == y);
            if same {
                Ok(())
            } else {
                Err(format!("{at}: {x} != {y}"))
            }
        }
        (x, y) if x == y => Ok(()),
        (x, y) => Err(format!("{at}: {x} != {y}")),
    }
}

// ------------------------------------------------------------------ the official suite

struct Case {
    name: String,
    input: Value,
    patch: Value,
    /// The expected resource, or None when an error is expected.
    output: Option<Value>,
}

fn first_resource(case: XmlNode<'_, '_>, section: &str) -> Option<Value> {
    let el = child_elements(case).find(|c| c.has_tag_name(section))?;
    let resource = child_elements(el)
        .next()
        .unwrap_or_else(|| panic!("<{section}> holds no resource"));
    Some(resource_json(resource))
}

fn load_cases(text: &str) -> Vec<Case> {
    let doc = roxmltree::Document::parse(text).expect("the suite is XML");
    let root = doc.root_element();
    assert!(root.has_tag_name("tests"), "unexpected root element");
    child_elements(root)
        .filter(|c| c.has_tag_name("case"))
        .map(|c| {
            let name = c.attribute("name").unwrap_or("?").to_owned();
            let input = first_resource(c, "input").unwrap_or_else(|| panic!("{name}: no input"));
            let patch = first_resource(c, "diff").unwrap_or_else(|| panic!("{name}: no diff"));
            let output = first_resource(c, "output");
            let error = child_elements(c).any(|e| e.has_tag_name("error"));
            assert!(
                output.is_some() != error,
                "{name}: a case has either an output or an error"
            );
            Case {
                name,
                input,
                patch,
                output,
            }
        })
        .collect()
}

fn run_case(case: &Case) -> Result<(), String> {
    let mut resource = case.input.clone();
    let result = apply_fhirpath_patch(&mut resource, &case.patch);
    match (&case.output, result) {
        (Some(expected), Ok(())) => compare(&resource, expected, "$"),
        (Some(_), Err(e)) => Err(format!("failed: {e}")),
        (None, Ok(())) => Err(format!("should fail, gave {resource}")),
        (None, Err(PatchError::Invalid(m))) => Err(format!("expected 422, got 400: {m}")),
        (None, Err(PatchError::NotApplicable(_))) => compare(&resource, &case.input, "$")
            .map_err(|e| format!("a failed patch changed the resource: {e}")),
    }
}

#[test]
fn official_fhirpath_patch_suite() {
    let path = suite_path();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} is missing ({e}): the official FHIRPath Patch suite is required",
            path.display()
        )
    });
    let cases = load_cases(&text);
    assert!(cases.len() >= 33, "only {} cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| run_case(c).err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    println!(
        "FHIRPath Patch suite: {}/{} cases pass",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

#[test]
fn xml_conversion() {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir">
        <id value="p1"/>
        <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Hi &amp; <b>bye</b></p></div></text>
        <active value="true"/>
        <name id="n1"><given value="A"/><given id="g2" value="B"/><given value="C"/></name>
        <birthDate value="1974-12-25">
          <extension url="http://example.org/x"><valueInteger value="3"/></extension>
        </birthDate>
        <deceasedBoolean value="false"/>
        <contained><Observation><status value="final"/><valueQuantity><value value="1.50"/></valueQuantity></Observation></contained>
      </Patient>"#;
    let doc = roxmltree::Document::parse(xml).unwrap();
    let expected = json!({
        "resourceType": "Patient",
        "id": "p1",
        "text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hi &amp; <b>bye</b></p></div>"},
        "active": true,
        "name": [{"id": "n1", "given": ["A", "B", "C"], "_given": [null, {"id": "g2"}, null]}],
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://example.org/x", "valueInteger": 3}]},
        "deceasedBoolean": false,
        "contained": [{"resourceType": "Observation", "status": "final",
            "valueQuantity": {"value": 1.50}}]
    });
    let actual = resource_json(doc.root_element());
    compare(&actual, &expected, "$").unwrap();
    assert_eq!(
        actual["contained"][0]["valueQuantity"]["value"].to_string(),
        "1.50"
    );
}

#[test]
fn comparison_sees_differences() {
    let div = |t: &str| json!({"div": format!("<div xmlns=\"{XHTML_NS}\">\n  <p>Peter <b>{t}</b> (\"Jim\")\n</p></div>")});
    let spaced = json!({"div": format!("<div xmlns=\"{XHTML_NS}\"><p>Peter\n <b>Chalmers</b>   (&quot;Jim&quot;)</p>\n</div>")});
    compare(&div("Chalmers"), &spaced, "$").unwrap();
    assert!(compare(&div("Chalmers1"), &spaced, "$").is_err());
    assert!(compare(&json!({"a": [1, 2]}), &json!({"a": [2, 1]}), "$").is_err());
    assert!(compare(&json!({"a": 1}), &json!({"a": 1, "b": 2}), "$").is_err());
    assert!(compare(&json!({"a": "1"}), &json!({"a": 1}), "$").is_err());
    compare(
        &json!({"a": 1, "b": [true]}),
        &json!({"b": [true], "a": 1}),
        "$",
    )
    .unwrap();
}

// ------------------------------------------------------------------ unit cases

fn parameters(ops: &[Value]) -> Value {
    let params: Vec<Value> = ops
        .iter()
        .map(|parts| json!({"name": "operation", "part": parts}))
        .collect();
    json!({"resourceType": "Parameters", "parameter": params})
}

fn part(name: &str, key: &str, value: Value) -> Value {
    json!({"name": name, key: value})
}

fn op(ty: &str, path: &str, rest: &[Value]) -> Value {
    let mut parts = vec![
        part("type", "valueCode", json!(ty)),
        part("path", "valueString", json!(path)),
    ];
    parts.extend_from_slice(rest);
    Value::Array(parts)
}

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"],
             "_given": [null, {"id": "g2"}]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://example.org/birthTime",
            "valueDateTime": "1974-12-25T14:35:45-05:00"}]}
    })
}

fn apply(resource: &Value, ops: &[Value]) -> Result<Value, PatchError> {
    let mut r = resource.clone();
    let result = apply_fhirpath_patch(&mut r, &parameters(ops));
    if result.is_err() {
        assert_eq!(
            &r, resource,
            "a failed patch must leave the resource unchanged"
        );
    }
    result.map(|()| r)
}

fn assert_invalid(resource: &Value, ops: &[Value]) {
    match apply(resource, ops) {
        Err(PatchError::Invalid(_)) => {}
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn assert_not_applicable(resource: &Value, ops: &[Value]) {
    match apply(resource, ops) {
        Err(PatchError::NotApplicable(_)) => {}
        other => panic!("expected NotApplicable, got {other:?}"),
    }
}

#[test]
fn malformed_patches_are_invalid() {
    let p = patient();
    // No type.
    assert_invalid(
        &p,
        &[json!([part(
            "path",
            "valueString",
            json!("Patient.birthDate")
        )])],
    );
    // Unknown type.
    assert_invalid(&p, &[op("upsert", "Patient.birthDate", &[])]);
    // Unparsable path.
    assert_invalid(&p, &[op("delete", "Patient.name[", &[])]);
    assert_invalid(&p, &[op("delete", "Patient.name.nosuchfunction()", &[])]);
    // Missing parts.
    assert_invalid(&p, &[op("replace", "Patient.birthDate", &[])]);
    assert_invalid(
        &p,
        &[op(
            "add",
            "Patient",
            &[part("value", "valueDate", json!("2000-01-01"))],
        )],
    );
    assert_invalid(
        &p,
        &[op(
            "insert",
            "Patient.name",
            &[json!({"name": "value", "part": [part("family", "valueString", json!("X"))]})],
        )],
    );
    assert_invalid(
        &p,
        &[op(
            "move",
            "Patient.name",
            &[part("source", "valueInteger", json!(0))],
        )],
    );
    // A negative index, an unknown part, a repeated part, a value of no known type.
    assert_invalid(
        &p,
        &[op(
            "move",
            "Patient.name",
            &[
                part("source", "valueInteger", json!(-1)),
                part("destination", "valueInteger", json!(0)),
            ],
        )],
    );
    assert_invalid(
        &p,
        &[op(
            "delete",
            "Patient.birthDate",
            &[part("bogus", "valueString", json!("x"))],
        )],
    );
    assert_invalid(
        &p,
        &[op(
            "delete",
            "Patient.birthDate",
            &[part("path", "valueString", json!("Patient.id"))],
        )],
    );
    assert_invalid(
        &p,
        &[op(
            "replace",
            "Patient.birthDate",
            &[part("value", "valueNope", json!("x"))],
        )],
    );
    assert_invalid(
        &p,
        &[op(
            "replace",
            "Patient.birthDate",
            &[json!({"name": "value"})],
        )],
    );
    // Not a Parameters resource, or a parameter other than `operation`.
    let mut r = p.clone();
    assert!(matches!(
        apply_fhirpath_patch(&mut r, &json!([{"op": "remove", "path": "/birthDate"}])),
        Err(PatchError::Invalid(_))
    ));
    assert!(matches!(
        apply_fhirpath_patch(
            &mut r,
            &json!({"resourceType": "Parameters", "parameter": [{"name": "op", "part": []}]})
        ),
        Err(PatchError::Invalid(_))
    ));
    assert_eq!(r, p);
    // A malformed later operation is reported even when an earlier one cannot apply.
    assert_invalid(
        &p,
        &[
            op(
                "replace",
                "Patient.gender",
                &[part("value", "valueCode", json!("male"))],
            ),
            op("nope", "Patient", &[]),
        ],
    );
}

#[test]
fn inapplicable_patches() {
    let p = patient();
    let value = |v: &str| part("value", "valueString", json!(v));
    // Replace of a missing element.
    assert_not_applicable(&p, &[op("replace", "Patient.gender", &[value("male")])]);
    // Replace or delete of more than one element.
    assert_not_applicable(&p, &[op("replace", "Patient.name.given", &[value("X")])]);
    assert_not_applicable(&p, &[op("delete", "Patient.name", &[])]);
    // Add to nothing, or to more than one element.
    assert_not_applicable(
        &p,
        &[op(
            "add",
            "Patient.contact",
            &[
                part("name", "valueString", json!("gender")),
                part("value", "valueCode", json!("male")),
            ],
        )],
    );
    assert_not_applicable(
        &p,
        &[op(
            "add",
            "Patient.name",
            &[part("name", "valueString", json!("text")), value("x")],
        )],
    );
    // Add of a non-repeating element that is there already.
    assert_not_applicable(
        &p,
        &[op(
            "add",
            "Patient",
            &[
                part("name", "valueString", json!("birthDate")),
                part("value", "valueDate", json!("2000-01-01")),
            ],
        )],
    );
    // An element the type does not have, a value of the wrong type.
    assert_not_applicable(
        &p,
        &[op(
            "add",
            "Patient",
            &[part("name", "valueString", json!("colour")), value("x")],
        )],
    );
    assert_not_applicable(
        &p,
        &[op(
            "replace",
            "Patient.birthDate",
            &[part("value", "valueBoolean", json!(true))],
        )],
    );
    assert_not_applicable(
        &p,
        &[op(
            "replace",
            "Patient.name[0]",
            &[part("value", "valueCoding", json!({"code": "x"}))],
        )],
    );
    // Indexes out of range; a list not selected whole.
    assert_not_applicable(
        &p,
        &[op(
            "insert",
            "Patient.name",
            &[
                part("index", "valueInteger", json!(3)),
                json!({"name": "value", "part": [part("family", "valueString", json!("X"))]}),
            ],
        )],
    );
    assert_not_applicable(
        &p,
        &[op(
            "move",
            "Patient.name",
            &[
                part("source", "valueInteger", json!(2)),
                part("destination", "valueInteger", json!(0)),
            ],
        )],
    );
    assert_not_applicable(
        &p,
        &[op(
            "move",
            "Patient.name.where(use = 'usual')",
            &[
                part("source", "valueInteger", json!(0)),
                part("destination", "valueInteger", json!(0)),
            ],
        )],
    );
    // A path selecting computed values, or one that fails to evaluate.
    assert_not_applicable(&p, &[op("delete", "Patient.name.given.first() + 'x'", &[])]);
    assert_not_applicable(
        &p,
        &[op("replace", "Patient.name.family + 1", &[value("x")])],
    );
    // The resource itself.
    assert_not_applicable(&p, &[op("delete", "Patient", &[])]);
}

#[test]
fn failed_patches_leave_the_resource_unchanged() {
    let p = patient();
    let mut r = p.clone();
    let patch = parameters(&[
        op("delete", "Patient.birthDate", &[]),
        op(
            "replace",
            "Patient.name[0].family",
            &[part("value", "valueString", json!("X"))],
        ),
        op(
            "replace",
            "Patient.gender",
            &[part("value", "valueCode", json!("male"))],
        ),
    ]);
    let err = apply_fhirpath_patch(&mut r, &patch).unwrap_err();
    assert!(matches!(err, PatchError::NotApplicable(_)), "{err}");
    assert!(err.to_string().contains("operation 3"), "{err}");
    assert_eq!(r, p);
}

#[test]
fn delete() {
    let p = patient();
    // Nothing selected: no-op.
    assert_eq!(
        apply(&p, &[op("delete", "Patient.gender", &[])]).unwrap(),
        p
    );
    // A primitive in a list keeps its `_x` aligned (and drops it when all null).
    let r = apply(&p, &[op("delete", "Patient.name[0].given[0]", &[])]).unwrap();
    assert_eq!(r["name"][0]["given"], json!(["James"]));
    assert_eq!(r["name"][0]["_given"], json!([{"id": "g2"}]));
    let r = apply(&p, &[op("delete", "Patient.name[0].given[1]", &[])]).unwrap();
    assert_eq!(r["name"][0]["given"], json!(["Peter"]));
    assert!(r["name"][0].get("_given").is_none());
    // A primitive goes with its extensions; emptied containers go too.
    let r = apply(&p, &[op("delete", "Patient.birthDate", &[])]).unwrap();
    assert!(r.get("birthDate").is_none() && r.get("_birthDate").is_none());
    let r = apply(&p, &[op("delete", "Patient.birthDate.extension", &[])]).unwrap();
    assert_eq!(r["birthDate"], "1974-12-25");
    assert!(r.get("_birthDate").is_none(), "{r}");
    let r = apply(&p, &[op("delete", "Patient.name[1].given", &[])]).unwrap();
    assert_eq!(r["name"][1], json!({"use": "usual"}));
    let r = apply(&r, &[op("delete", "Patient.name[1].use", &[])]).unwrap();
    assert_eq!(r["name"].as_array().unwrap().len(), 1);
}

#[test]
fn add() {
    let p = patient();
    // A HumanName from parts, `given` repeating.
    let r = apply(
        &p,
        &[op(
            "add",
            "Patient",
            &[
                part("name", "valueString", json!("name")),
                json!({"name": "value", "part": [
                    part("family", "valueString", json!("Smith")),
                    part("given", "valueString", json!("Ann")),
                    part("given", "valueString", json!("Beth")),
                ]}),
            ],
        )],
    )
    .unwrap();
    assert_eq!(
        r["name"][2],
        json!({"family": "Smith", "given": ["Ann", "Beth"]})
    );
    // A backbone element with a nested complex value built from parts.
    let r = apply(
        &p,
        &[op(
            "add",
            "Patient",
            &[
                part("name", "valueString", json!("contact")),
                json!({"name": "value", "part": [
                    {"name": "name", "part": [part("family", "valueString", json!("du Marché"))]},
                    part("gender", "valueCode", json!("female")),
                ]}),
            ],
        )],
    )
    .unwrap();
    assert_eq!(
        r["contact"],
        json!([{"name": {"family": "du Marché"}, "gender": "female"}])
    );
    // A choice gets the JSON name of the value's type.
    let obs = json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}});
    let r = apply(
        &obs,
        &[op(
            "add",
            "Observation",
            &[
                part("name", "valueString", json!("value")),
                part(
                    "value",
                    "valueQuantity",
                    json!({"value": 5.4, "unit": "mg"}),
                ),
            ],
        )],
    )
    .unwrap();
    assert_eq!(r["valueQuantity"], json!({"value": 5.4, "unit": "mg"}));
    // … once only, in whatever type.
    assert_not_applicable(
        &r,
        &[op(
            "add",
            "Observation",
            &[
                part("name", "valueString", json!("value")),
                part("value", "valueString", json!("x")),
            ],
        )],
    );
    // An extension on a primitive goes into its `_x`.
    let ext = json!({"name": "value", "part": [
        part("url", "valueUri", json!("http://example.org/e")),
        part("value", "valueString", json!("hello")),
    ]});
    let r = apply(
        &p,
        &[op(
            "add",
            "Patient.name[1].given[0]",
            &[part("name", "valueString", json!("extension")), ext.clone()],
        )],
    )
    .unwrap();
    assert_eq!(
        r["name"][1]["_given"],
        json!([{"extension": [{"url": "http://example.org/e", "valueString": "hello"}]}])
    );
    let r = apply(
        &p,
        &[op(
            "add",
            "Patient.birthDate",
            &[part("name", "valueString", json!("extension")), ext],
        )],
    )
    .unwrap();
    assert_eq!(r["_birthDate"]["extension"].as_array().unwrap().len(), 2);
    // A primitive with its own extension (`_valueX`), appended to a list.
    let r = apply(
        &p,
        &[op(
            "add",
            "Patient.name[1]",
            &[
                part("name", "valueString", json!("given")),
                json!({"name": "value", "valueString": "Jimmy", "_valueString": {"id": "j2"}}),
            ],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][1]["given"], json!(["Jim", "Jimmy"]));
    assert_eq!(r["name"][1]["_given"], json!([null, {"id": "j2"}]));
    // A contained resource.
    let r = apply(
        &p,
        &[op(
            "add",
            "Patient",
            &[
                part("name", "valueString", json!("contained")),
                json!({"name": "value", "resource": {"resourceType": "Organization", "id": "o1"}}),
            ],
        )],
    )
    .unwrap();
    assert_eq!(
        r["contained"],
        json!([{"resourceType": "Organization", "id": "o1"}])
    );
}

#[test]
fn replace() {
    let p = patient();
    // A choice changes name with the type, in place.
    let obs = json!({"resourceType": "Observation", "status": "final", "valueString": "x",
        "_valueString": {"id": "v"}, "note": [{"text": "n"}]});
    let r = apply(
        &obs,
        &[op(
            "replace",
            "Observation.value",
            &[part("value", "valueQuantity", json!({"value": 1}))],
        )],
    )
    .unwrap();
    let keys: Vec<_> = r.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["resourceType", "status", "valueQuantity", "note"]);
    // A primitive in a list: its old `_x` goes.
    let r = apply(
        &p,
        &[op(
            "replace",
            "Patient.name[0].given[1]",
            &[part("value", "valueString", json!("Jamie"))],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][0]["given"], json!(["Peter", "Jamie"]));
    assert!(r["name"][0].get("_given").is_none());
    // `code` into a `string`, and the narrative div from a string.
    let r = apply(
        &p,
        &[op(
            "replace",
            "Patient.name[0].family",
            &[part("value", "valueCode", json!("Chalmers1"))],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][0]["family"], "Chalmers1");
    // A contained resource by another.
    let with_contained = json!({"resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "id": "o1"}]});
    let r = apply(
        &with_contained,
        &[op(
            "replace",
            "Patient.contained[0]",
            &[json!({"name": "value", "resource": {"resourceType": "Practitioner", "id": "d1"}})],
        )],
    )
    .unwrap();
    assert_eq!(
        r["contained"],
        json!([{"resourceType": "Practitioner", "id": "d1"}])
    );
}

#[test]
fn insert_and_move() {
    let p = patient();
    // Into a list of primitives with extensions.
    let r = apply(
        &p,
        &[op(
            "insert",
            "Patient.name[0].given",
            &[
                part("index", "valueInteger", json!(1)),
                part("value", "valueString", json!("Q")),
            ],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][0]["given"], json!(["Peter", "Q", "James"]));
    assert_eq!(r["name"][0]["_given"], json!([null, null, {"id": "g2"}]));
    // At the end.
    let r = apply(
        &p,
        &[op(
            "insert",
            "Patient.name[0].given",
            &[
                part("index", "valueInteger", json!(2)),
                part("value", "valueString", json!("Z")),
            ],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][0]["given"], json!(["Peter", "James", "Z"]));
    assert_eq!(r["name"][0]["_given"], json!([null, {"id": "g2"}, null]));
    // Into a list that does not exist yet.
    let r = apply(
        &p,
        &[op(
            "insert",
            "Patient.name[0].prefix",
            &[
                part("index", "valueInteger", json!(0)),
                part("value", "valueString", json!("Mr")),
            ],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][0]["prefix"], json!(["Mr"]));
    assert_not_applicable(
        &p,
        &[op(
            "insert",
            "Patient.name[0].prefix",
            &[
                part("index", "valueInteger", json!(1)),
                part("value", "valueString", json!("Mr")),
            ],
        )],
    );
    // Not into a non-repeating element.
    assert_not_applicable(
        &p,
        &[op(
            "insert",
            "Patient.birthDate",
            &[
                part("index", "valueInteger", json!(0)),
                part("value", "valueDate", json!("2000")),
            ],
        )],
    );
    // Move with extensions.
    let r = apply(
        &p,
        &[op(
            "move",
            "Patient.name[0].given",
            &[
                part("source", "valueInteger", json!(1)),
                part("destination", "valueInteger", json!(0)),
            ],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][0]["given"], json!(["James", "Peter"]));
    assert_eq!(r["name"][0]["_given"], json!([{"id": "g2"}, null]));
    let r = apply(
        &p,
        &[op(
            "move",
            "Patient.name",
            &[
                part("source", "valueInteger", json!(0)),
                part("destination", "valueInteger", json!(1)),
            ],
        )],
    )
    .unwrap();
    assert_eq!(r["name"][0]["use"], "usual");
}
