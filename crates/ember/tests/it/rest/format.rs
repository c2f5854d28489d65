//! Formats and content negotiation: `_format`, `_pretty`, `Accept`, `Content-Type`.

use serde_json::json;

use super::{history_len, put};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    pretty_and_format_json,
    other_formats_are_not_acceptable,
    accept_plain_json,
    unsupported_content_types_are_415,
);

async fn pretty_and_format_json(s: &TestServer) {
    expect(&put(s, "Patient", "f", json!({"active": true})).await, 201);
    let plain = s.get("Patient/f").await;
    expect(&plain, 200);
    assert!(!plain.body.contains(&b'\n'));
    let pretty = s.get("Patient/f?_pretty=true").await;
    expect(&pretty, 200);
    let text = String::from_utf8(pretty.body.to_vec()).unwrap();
    assert!(
        text.contains("\n  \"resourceType\": \"Patient\""),
        "not indented: {text}"
    );
    assert_eq!(pretty.json(), plain.json());
    let pretty_meta = s.get("metadata?_pretty=true").await;
    expect(&pretty_meta, 200);
    assert!(pretty_meta.body.contains(&b'\n'));

    for format in ["json", "application/fhir%2Bjson", "application/fhir+json"] {
        let resp = s.get(&format!("Patient/f?_format={format}")).await;
        expect(&resp, 200);
        assert!(
            resp.header("content-type")
                .unwrap()
                .starts_with("application/fhir+json"),
            "{format}: {:?}",
            resp.header("content-type")
        );
        assert_eq!(resp.json()["id"], "f");
    }
    // _format wins over Accept.
    let resp = s
        .send(
            "GET",
            "Patient/f?_format=json",
            &[("accept", "application/fhir+xml")],
            None,
        )
        .await;
    expect(&resp, 200);
}

async fn other_formats_are_not_acceptable(s: &TestServer) {
    expect(&put(s, "Patient", "f", json!({})).await, 201);
    for path in ["Patient/f?_format=turtle", "metadata?_format=text/html"] {
        expect_outcome(&s.get(path).await, 406);
    }
    for accept in ["text/plain", "application/fhir+json;q=0, text/html"] {
        let resp = s
            .send("GET", "Patient/f", &[("accept", accept)], None)
            .await;
        expect_outcome(&resp, 406);
    }
}

async fn accept_plain_json(s: &TestServer) {
    expect(&put(s, "Patient", "f", json!({})).await, 201);
    let resp = s
        .send("GET", "Patient/f", &[("accept", "application/json")], None)
        .await;
    expect(&resp, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/json"),
        "{:?}",
        resp.header("content-type")
    );
    assert_eq!(resp.json()["id"], "f");
    let resp = s
        .send(
            "GET",
            "Patient/f",
            &[("accept", "application/fhir+json")],
            None,
        )
        .await;
    expect(&resp, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    let resp = s.send("GET", "Patient/f", &[("accept", "*/*")], None).await;
    expect(&resp, 200);
}

async fn unsupported_content_types_are_415(s: &TestServer) {
    let body = json!({"resourceType": "Patient"}).to_string();
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let resp = s
            .send(
                "POST",
                "Patient",
                &[("content-type", content_type)],
                Some(&body),
            )
            .await;
        expect_outcome(&resp, 415);
        let put_body = json!({"resourceType": "Patient", "id": "ct"}).to_string();
        let resp = s
            .send(
                "PUT",
                "Patient/ct",
                &[("content-type", content_type)],
                Some(&put_body),
            )
            .await;
        expect_outcome(&resp, 415);
    }
    // application/json and a charset parameter are fine.
    let resp = s
        .send(
            "POST",
            "Patient",
            &[("content-type", "application/json; charset=utf-8")],
            Some(&body),
        )
        .await;
    expect(&resp, 201);
    assert_eq!(history_len(s, "_history").await, 1);
}
