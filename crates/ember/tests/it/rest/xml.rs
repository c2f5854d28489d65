//! FHIR XML over HTTP: XML request bodies, XML answers (resources, Bundles, errors) for
//! `Accept` and `_format`, and the refusal of bad XML with nothing stored.

use ember_fhir::xml::from_xml;
use serde_json::{Value, json};

use super::{assert_nothing_stored, history_len};
use crate::common::{Resp, TestServer, expect, expect_outcome};

both_stores!(
    xml_body_is_stored_and_read_as_json_and_xml,
    searches_history_and_transactions_answer_in_xml,
    errors_are_xml_operation_outcomes,
    bad_xml_is_refused_and_nothing_is_stored,
);

const XML: &str = "application/fhir+xml";

/// An XML answer: checks its `Content-Type` and reads it back as JSON.
#[track_caller]
fn xml(resp: &Resp, status: u16) -> Value {
    expect(resp, status);
    let content_type = resp.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with(XML), "{content_type}");
    from_xml(&resp.body, 64)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&resp.body)))
}

async fn send_xml(s: &TestServer, method: &str, path: &str, body: &str, accept: &str) -> Resp {
    s.send(
        method,
        path,
        &[("content-type", XML), ("accept", accept)],
        Some(body),
    )
    .await
}

const OBSERVATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Observation xmlns="http://hl7.org/fhir">
  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Glucose &amp; more</p></div></text>
  <status value="final">
    <extension url="http://example.org/checked"><valueBoolean value="true"/></extension>
  </status>
  <code><coding><system value="http://loinc.org"/><code value="15074-8"/></coding></code>
  <subject><reference value="Patient/p1"/></subject>
  <valueQuantity><value value="6.30"/><unit value="mmol/L"/></valueQuantity>
</Observation>"#;

async fn xml_body_is_stored_and_read_as_json_and_xml(s: &TestServer) {
    let created = send_xml(
        s,
        "POST",
        "Observation",
        OBSERVATION,
        "application/fhir+json",
    )
    .await;
    expect(&created, 201);
    let created = created.json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["_status"]["extension"][0]["valueBoolean"], true);
    assert_eq!(
        created["text"]["div"],
        r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Glucose &amp; more</p></div>"#
    );

    let as_json = s.get(&format!("Observation/{id}")).await;
    expect(&as_json, 200);
    assert!(
        String::from_utf8_lossy(&as_json.body).contains(r#""value":6.30"#),
        "the decimal lost its text"
    );
    let as_json = as_json.json();
    for path in [
        format!("Observation/{id}?_format=xml"),
        format!("Observation/{id}?_format=application/fhir%2Bxml"),
    ] {
        let resp = s.get(&path).await;
        assert_eq!(xml(&resp, 200), as_json, "{path}");
        assert!(resp.header("etag").is_some());
    }
    let resp = s
        .send(
            "GET",
            &format!("Observation/{id}"),
            &[("accept", XML)],
            None,
        )
        .await;
    assert_eq!(xml(&resp, 200), as_json);
    let pretty = s
        .get(&format!("Observation/{id}?_format=xml&_pretty=true"))
        .await;
    assert!(String::from_utf8_lossy(&pretty.body).contains("\n  <status value=\"final\">"));
    assert_eq!(xml(&pretty, 200), as_json);
    // Plain XML media types are XML too, answered as application/xml.
    let plain = s
        .send(
            "GET",
            &format!("Observation/{id}"),
            &[("accept", "text/xml")],
            None,
        )
        .await;
    expect(&plain, 200);
    assert!(
        plain
            .header("content-type")
            .unwrap()
            .starts_with("application/xml")
    );

    // An update in XML, answered in XML.
    let update = OBSERVATION
        .replace(
            "<Observation xmlns=\"http://hl7.org/fhir\">",
            &format!("<Observation xmlns=\"http://hl7.org/fhir\"><id value=\"{id}\"/>"),
        )
        .replace("6.30", "6.40");
    let updated = xml(
        &send_xml(s, "PUT", &format!("Observation/{id}"), &update, XML).await,
        200,
    );
    assert_eq!(updated["meta"]["versionId"], "2");
    assert_eq!(updated["valueQuantity"]["value"].to_string(), "6.40");
    // A FHIRPath Patch sent as XML.
    let patch = r#"<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="operation"/>
        <part><name value="type"/><valueCode value="replace"/></part>
        <part><name value="path"/><valueString value="Observation.status"/></part>
        <part><name value="value"/><valueCode value="amended"/></part></parameter></Parameters>"#;
    let patched = xml(
        &send_xml(s, "PATCH", &format!("Observation/{id}"), patch, XML).await,
        200,
    );
    assert_eq!(patched["status"], "amended");
}

async fn searches_history_and_transactions_answer_in_xml(s: &TestServer) {
    let transaction = r#"<Bundle xmlns="http://hl7.org/fhir"><type value="transaction"/>
        <entry><fullUrl value="urn:uuid:5b1e5e5c-0000-4000-8000-000000000001"/>
          <resource><Patient><name><family value="Xml"/><given value="Ann"/></name></Patient></resource>
          <request><method value="POST"/><url value="Patient"/></request></entry>
        <entry><resource><Observation><status value="final"/><code><text value="weight"/></code>
            <subject><reference value="urn:uuid:5b1e5e5c-0000-4000-8000-000000000001"/></subject>
            <valueQuantity><value value="70.0"/></valueQuantity></Observation></resource>
          <request><method value="POST"/><url value="Observation"/></request></entry></Bundle>"#;
    let response = xml(&send_xml(s, "POST", "", transaction, XML).await, 200);
    assert_eq!(response["type"], "transaction-response");
    assert_eq!(response["entry"].as_array().unwrap().len(), 2);

    let search = xml(&s.get("Patient?family=Xml&_format=xml").await, 200);
    assert_eq!(search["type"], "searchset");
    assert_eq!(search["total"], 1);
    assert_eq!(search["entry"][0]["resource"]["name"][0]["given"][0], "Ann");
    let included = xml(
        &s.send(
            "GET",
            "Observation?_include=Observation:subject",
            &[("accept", XML)],
            None,
        )
        .await,
        200,
    );
    let entries = included["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{included}");
    assert_eq!(
        entries[0]["resource"]["valueQuantity"]["value"].to_string(),
        "70.0"
    );
    let history = xml(&s.get("_history?_format=xml").await, 200);
    assert_eq!(history["type"], "history");
    assert_eq!(history["entry"].as_array().unwrap().len(), 2);
    let metadata = xml(&s.get("metadata?_format=xml").await, 200);
    assert_eq!(metadata["resourceType"], "CapabilityStatement");
    assert!(
        metadata["format"]
            .as_array()
            .unwrap()
            .contains(&json!("application/fhir+xml"))
    );
}

async fn errors_are_xml_operation_outcomes(s: &TestServer) {
    for (path, status, code) in [
        ("Patient/missing?_format=xml", 404, "not-found"),
        ("Nope/1?_format=xml", 404, "not-supported"),
        ("Patient?birthdate=notadate&_format=xml", 400, "invalid"),
    ] {
        let outcome = xml(&s.get(path).await, status);
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{path}");
        assert_eq!(outcome["issue"][0]["code"], code, "{path}: {outcome}");
    }
    // A refused XML body, with the error in XML and its location.
    let outcome = xml(
        &send_xml(
            s,
            "POST",
            "Patient",
            r#"<Patient xmlns="http://hl7.org/fhir"><nickname value="x"/></Patient>"#,
            XML,
        )
        .await,
        400,
    );
    assert_eq!(outcome["issue"][0]["code"], "structure");
    assert_eq!(outcome["issue"][0]["expression"][0], "Patient.nickname");
    // An unsupported format is refused in JSON: there is no format to answer in.
    expect_outcome(&s.get("Patient?_format=turtle").await, 406);
}

async fn bad_xml_is_refused_and_nothing_is_stored(s: &TestServer) {
    for body in [
        r#"<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>"#,
        r#"<Patient xmlns="http://hl7.org/fhir"><active value="maybe"/></Patient>"#,
        r#"<Patient><active value="true"/></Patient>"#,
        r#"<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY e SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><name><family value="&e;"/></name></Patient>"#,
        "<Patient xmlns=\"http://hl7.org/fhir\">\n<name><given value=\"a\"/><family value=\"b\"/><family value=\"c\"/></name></Patient>",
        "",
        "{\"resourceType\": \"Patient\"}",
    ] {
        let resp = send_xml(s, "POST", "Patient", body, "application/fhir+json").await;
        let diagnostics = expect_outcome(&resp, 400);
        assert!(!diagnostics.is_empty(), "{body}");
        let resp = send_xml(s, "PUT", "Patient/bad", body, "application/fhir+json").await;
        expect_outcome(&resp, 400);
    }
    let doctype = send_xml(
        s,
        "POST",
        "Patient",
        r#"<!DOCTYPE Patient><Patient xmlns="http://hl7.org/fhir"/>"#,
        "application/fhir+json",
    )
    .await;
    assert!(expect_outcome(&doctype, 400).contains("DOCTYPE"));
    let located = send_xml(
        s,
        "POST",
        "Patient",
        "<Patient xmlns=\"http://hl7.org/fhir\">\n  <name><family value=\"b\"/><family value=\"c\"/></name>\n</Patient>",
        "application/fhir+json",
    )
    .await;
    let diagnostics = expect_outcome(&located, 400);
    assert!(
        diagnostics.contains("Patient.name[0].family") && diagnostics.contains("line 2"),
        "{diagnostics}"
    );
    assert_nothing_stored(s).await;
    assert_eq!(history_len(s, "Patient/_history").await, 0);
}
