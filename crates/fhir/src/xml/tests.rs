use serde_json::{Value, json};

use super::*;

fn read(xml: &str) -> Result<Value, XmlError> {
    from_xml(xml.as_bytes(), 32)
}

/// Reads `xml`, checks the JSON, and checks that writing that JSON gives the XML back
/// (whitespace between tags aside).
fn both_ways(xml: &str, expected: Value) {
    let json = read(xml).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(json, expected);
    let written = to_xml(&json, false).unwrap();
    let compact: String = xml.lines().map(str::trim).collect();
    assert_eq!(
        written,
        format!(r#"<?xml version="1.0" encoding="UTF-8"?>{compact}"#)
    );
}

#[test]
fn primitives_carry_id_and_extensions_and_arrays_align() {
    both_ways(
        r#"<Patient xmlns="http://hl7.org/fhir">
            <id value="p1"/>
            <active value="true"/>
            <name>
              <given value="Peter"/>
              <given id="g2">
                <extension url="http://example.org/initial"><valueString value="J"/></extension>
              </given>
              <given value="Jim"/>
            </name>
            <birthDate value="1974-12-25">
              <extension url="http://hl7.org/fhir/StructureDefinition/patient-birthTime">
                <valueDateTime value="1974-12-25T14:35:45-05:00"/>
              </extension>
            </birthDate>
          </Patient>"#,
        json!({
            "resourceType": "Patient",
            "id": "p1",
            "active": true,
            "name": [{
                "given": ["Peter", null, "Jim"],
                "_given": [null, {"id": "g2", "extension": [
                    {"url": "http://example.org/initial", "valueString": "J"}
                ]}, null]
            }],
            "birthDate": "1974-12-25",
            "_birthDate": {"extension": [{
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
                "valueDateTime": "1974-12-25T14:35:45-05:00"
            }]}
        }),
    );
}

#[test]
fn only_extensions_leave_out_the_value_array() {
    both_ways(
        r#"<Basic xmlns="http://hl7.org/fhir"/>"#,
        json!({"resourceType": "Basic"}),
    );
    let json = json!({
        "resourceType": "Patient",
        "name": [{"_given": [{"extension": [{"url": "http://e.org/x", "valueBoolean": false}]}]}]
    });
    let xml = to_xml(&json, false).unwrap();
    assert!(xml.contains(r#"<given><extension url="http://e.org/x"><valueBoolean value="false"/></extension></given>"#), "{xml}");
    assert_eq!(read(&xml).unwrap(), json);
}

#[test]
fn choice_types_take_their_place_in_the_definition_order() {
    // valueQuantity is written after code and before interpretation, wherever it is in
    // the JSON; the decimal keeps its exact text.
    let json: Value = serde_json::from_str(
        r#"{"resourceType": "Observation", "interpretation": [{"text": "high"}],
            "valueQuantity": {"value": 1.50, "unit": "mmol/L"},
            "code": {"text": "glucose"}, "status": "final"}"#,
    )
    .unwrap();
    let xml = to_xml(&json, false).unwrap();
    assert_eq!(
        xml,
        concat!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Observation xmlns="http://hl7.org/fhir">"#,
            r#"<status value="final"/><code><text value="glucose"/></code>"#,
            r#"<valueQuantity><value value="1.50"/><unit value="mmol/L"/></valueQuantity>"#,
            r#"<interpretation><text value="high"/></interpretation></Observation>"#
        )
    );
    assert_eq!(read(&xml).unwrap(), json);
}

#[test]
fn decimals_keep_their_exact_text() {
    for text in [
        "1.50",
        "0.0000001",
        "100",
        "-0.0",
        "1e-7",
        "12345678901234567890.123456789",
    ] {
        let xml = format!(
            r#"<Observation xmlns="http://hl7.org/fhir"><status value="final"/><code><text value="x"/></code><valueQuantity><value value="{text}"/></valueQuantity></Observation>"#
        );
        let json = read(&xml).unwrap();
        let value = &json["valueQuantity"]["value"];
        assert_eq!(value.to_string(), text);
        assert_eq!(
            to_xml(&json, false).unwrap(),
            format!(r#"<?xml version="1.0" encoding="UTF-8"?>{xml}"#)
        );
    }
    for bad in ["1.", ".5", "+1", "01", "1,5", " 1", "NaN"] {
        let xml = format!(
            r#"<Observation xmlns="http://hl7.org/fhir"><valueQuantity><value value="{bad}"/></valueQuantity></Observation>"#
        );
        let e = read(&xml).unwrap_err();
        assert!(e.message.contains("is not a decimal"), "{bad}: {e}");
        assert_eq!(e.path.as_deref(), Some("Observation.valueQuantity.value"));
    }
    let e = read(
        r#"<Patient xmlns="http://hl7.org/fhir"><multipleBirthInteger value="1.0"/></Patient>"#,
    )
    .unwrap_err();
    assert!(e.message.contains("is not an integer"), "{e}");
}

#[test]
fn contained_resources_and_the_narrative() {
    let div = r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Ann &amp; <b>Bob</b> &lt;3 &#233;</p></div>"#;
    both_ways(
        &format!(
            r##"<Patient xmlns="http://hl7.org/fhir">
              <text><status value="generated"/>{div}</text>
              <contained><Organization><id value="o1"/><name value="Acme"/></Organization></contained>
              <managingOrganization><reference value="#o1"/></managingOrganization>
            </Patient>"##
        ),
        json!({
            "resourceType": "Patient",
            "text": {"status": "generated", "div": div},
            "contained": [{"resourceType": "Organization", "id": "o1", "name": "Acme"}],
            "managingOrganization": {"reference": "#o1"}
        }),
    );
}

#[test]
fn element_ids_and_extension_urls_are_attributes() {
    both_ways(
        r#"<Patient xmlns="http://hl7.org/fhir"><extension url="http://e.org/a"><valueCoding id="c1"><code value="x"/></valueCoding></extension><name id="n1"><family value="Doe"/></name></Patient>"#,
        json!({
            "resourceType": "Patient",
            "extension": [{"url": "http://e.org/a", "valueCoding": {"id": "c1", "code": "x"}}],
            "name": [{"id": "n1", "family": "Doe"}]
        }),
    );
}

#[test]
fn bundles_wrap_their_resources() {
    let json = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1,
        "entry": [{
            "fullUrl": "http://x/Patient/1",
            "resource": {"resourceType": "Patient", "id": "1"},
            "search": {"mode": "match"}
        }, {
            "resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "not-supported", "diagnostics": "a\tb\nc \"d\" <e>"}]},
            "search": {"mode": "outcome"}
        }]
    });
    let xml = to_xml(&json, false).unwrap();
    assert!(
        xml.contains(r#"<resource><Patient><id value="1"/></Patient></resource>"#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"value="a&#9;b&#10;c &quot;d&quot; &lt;e&gt;""#),
        "{xml}"
    );
    assert_eq!(read(&xml).unwrap(), json);
    let pretty = to_xml(&json, true).unwrap();
    assert!(
        pretty.contains("\n    <resource>\n      <Patient>\n"),
        "{pretty}"
    );
    assert_eq!(read(&pretty).unwrap(), json);
}

#[test]
fn foreign_attributes_comments_and_declarations_are_passed_over() {
    let json = read(
        r#"<?xml version="1.0" encoding="UTF-8"?>
        <!-- a comment -->
        <f:Patient xmlns:f="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir ../patient.xsd">
          <f:active value="false"/><!-- another -->
        </f:Patient>"#,
    )
    .unwrap();
    assert_eq!(json, json!({"resourceType": "Patient", "active": false}));
    // Literal line breaks in attributes are spaces, as XML says.
    let json = read(
        "<Patient xmlns=\"http://hl7.org/fhir\"><name><text value=\"a\nb\"/></name></Patient>",
    )
    .unwrap();
    assert_eq!(json["name"][0]["text"], "a b");
}

fn refused(xml: &str) -> XmlError {
    read(xml).expect_err(xml)
}

#[test]
fn bad_documents_are_refused_with_their_location() {
    let e = refused(
        r#"<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY x SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>"#,
    );
    assert!(e.message.contains("DOCTYPE"), "{e}");

    let e = refused(
        "<Patient xmlns=\"http://hl7.org/fhir\">\n  <name>\n    <nickname value=\"x\"/>\n  </name>\n</Patient>",
    );
    assert!(e.message.contains("unknown element <nickname>"), "{e}");
    assert_eq!(e.path.as_deref(), Some("Patient.name[0].nickname"));
    assert_eq!(e.line, Some((3, 26)));
    assert!(e.to_string().contains("line 3"), "{e}");

    let e = refused(r#"<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>"#);
    assert!(e.message.contains("malformed XML"), "{e}");
    assert!(refused("").message.contains("no root element"));
    assert!(refused("not xml").message.contains("text is not allowed"));
    let e = refused(r#"<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>"#);
    assert!(e.message.contains("not a boolean"), "{e}");
    let e = refused(r#"<Patient><active value="true"/></Patient>"#);
    assert!(e.message.contains("namespace"), "{e}");
    let e = refused(r#"<Nope xmlns="http://hl7.org/fhir"/>"#);
    assert!(e.message.contains("unknown resource type"), "{e}");
    let e = refused(
        r#"<Patient xmlns="http://hl7.org/fhir"><active value="true"/><active value="false"/></Patient>"#,
    );
    assert!(e.message.contains("repeats"), "{e}");
    let e = refused(
        r#"<Patient xmlns="http://hl7.org/fhir"><deceasedBoolean value="true"/><deceasedDateTime value="2020"/></Patient>"#,
    );
    assert!(e.message.contains("values of one element"), "{e}");
    let e = refused(r#"<Patient xmlns="http://hl7.org/fhir"><active valu="true"/></Patient>"#);
    assert!(e.message.contains("unknown attribute"), "{e}");
    let e = refused(r#"<Patient xmlns="http://hl7.org/fhir"><active/></Patient>"#);
    assert!(
        e.message.contains("neither a value nor an extension"),
        "{e}"
    );
    let e = refused(r#"<Patient xmlns="http://hl7.org/fhir"><name>Doe</name></Patient>"#);
    assert!(e.message.contains("text is not allowed"), "{e}");
    let e =
        refused(r#"<Patient xmlns="http://hl7.org/fhir"><name><id value="x"/></name></Patient>"#);
    assert!(e.message.contains("attribute here"), "{e}");
    let e = refused(
        r#"<Patient xmlns="http://hl7.org/fhir"><name><text value="a&#1;"/></name></Patient>"#,
    );
    assert!(e.message.contains("U+0001"), "{e}");
    let e = refused(r#"<Patient xmlns="http://hl7.org/fhir"><active value="&nbsp;"/></Patient>"#);
    assert!(e.message.contains("attribute value"), "{e}");
    let e = refused(
        r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div></text></Patient>"#,
    );
    assert!(e.message.contains("not an XML entity"), "{e}");
    let e = refused(
        r#"<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div>x</div></text></Patient>"#,
    );
    assert!(e.message.contains("namespace"), "{e}");
    let e = refused(
        r#"<Patient xmlns="http://hl7.org/fhir"></Patient><Patient xmlns="http://hl7.org/fhir"/>"#,
    );
    assert!(e.message.contains("after the resource"), "{e}");
    assert!(
        from_xml(
            b"<Patient xmlns=\"http://hl7.org/fhir\"><active value=\"\xff\"/></Patient>",
            8
        )
        .is_err()
    );
    let deep = format!(
        r#"<Questionnaire xmlns="http://hl7.org/fhir">{}{}</Questionnaire>"#,
        "<item>".repeat(40),
        "</item>".repeat(40)
    );
    assert!(refused(&deep).message.contains("deeper"));
}

#[test]
fn json_that_xml_cannot_carry_is_refused() {
    let cases = [
        (
            json!({"resourceType": "Patient", "nickname": "x"}),
            "unknown element",
        ),
        (json!({"resourceType": "Nope"}), "unknown resource type"),
        (
            json!({"resourceType": "Patient", "active": "true"}),
            "must be a boolean",
        ),
        (
            json!({"resourceType": "Patient", "name": {"family": "x"}}),
            "must be an array",
        ),
        (
            json!({"resourceType": "Patient", "name": []}),
            "empty array",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"family": "a\u{1}"}]}),
            "cannot be written",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"given": ["a"], "_given": [null, null]}]}),
            "differ in length",
        ),
        (
            json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<p>x</p>"}}),
            "one <div>",
        ),
        (
            json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>x"}}),
            "well-formed",
        ),
        (
            json!({"resourceType": "Patient", "deceasedBoolean": true, "deceasedDateTime": "2020"}),
            "values of one element",
        ),
        (
            json!({"resourceType": "Patient", "_active": {"foo": 1}}),
            "id and extension only",
        ),
        (
            json!({"resourceType": "Patient", "active": true, "_active": {}}),
            "_active is empty",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"given": ["a"], "_given": [null]}]}),
            "_given holds only nulls",
        ),
        (
            json!({"resourceType": "Patient", "name": [{"given": [null], "_given": [{"id": "x"}]}]}),
            "given holds only nulls",
        ),
        (
            json!({"resourceType": "Patient", "multipleBirthInteger": 1.5}),
            "not an integer",
        ),
    ];
    for (json, expected) in cases {
        let e = to_xml(&json, false).expect_err(&json.to_string());
        assert!(e.to_string().contains(expected), "{json}: {e}");
    }
    // A div without its namespace gets it.
    let json =
        json!({"resourceType": "Patient", "text": {"status": "generated", "div": "<div>x</div>"}});
    let xml = to_xml(&json, false).unwrap();
    assert!(
        xml.contains(r#"<div xmlns="http://www.w3.org/1999/xhtml">x</div>"#),
        "{xml}"
    );
}

#[test]
fn numbers_follow_the_json_grammar() {
    for ok in ["0", "-1", "1.5", "1e10", "1E+2", "0.001"] {
        assert!(is_number(ok, false), "{ok}");
    }
    for bad in ["", "-", "1.", ".1", "01", "1e", "+1", "1 ", "0x1"] {
        assert!(!is_number(bad, false), "{bad}");
    }
    assert!(is_number("-12", true));
    assert!(!is_number("1.0", true) && !is_number("1e2", true));
}
