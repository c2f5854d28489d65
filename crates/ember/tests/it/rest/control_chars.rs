//! Control characters (NUL and the other C0 characters but tab, CR and LF) in every
//! place a client can put them: resource bodies, search names and values, ids,
//! conditional headers and Bundle entries. Each is a 4xx OperationOutcome before it
//! reaches the database, on both stores, and nothing is stored.

use base64::Engine;
use serde_json::{Value, json};

use super::{assert_nothing_stored, patch, put};
use crate::common::{Resp, TestServer, TestSettings, expect, expect_outcome};

fn text(resp: &Resp) -> String {
    String::from_utf8_lossy(&resp.body).into_owned()
}

/// Asserts a 4xx with an OperationOutcome that says something (an invalid resource is
/// a 422, a malformed request a 400).
#[track_caller]
fn refused(resp: &Resp, what: &str) {
    assert!(
        resp.status.is_client_error(),
        "{what}: {} {}",
        resp.status,
        text(resp)
    );
    assert!(!resp.outcome().is_empty(), "{what}");
}

both_stores!(
    control_characters_in_bodies_are_400,
    control_characters_in_searches_are_400,
    control_characters_in_ids_and_headers_are_4xx,
    control_characters_in_bundle_entries_are_refused,
    control_characters_are_refused_with_validation_off,
);

/// The characters tried, as JSON escapes and as percent-encodings.
const CONTROLS: [(&str, &str); 4] = [
    ("\\u0000", "%00"),
    ("\\u0001", "%01"),
    ("\\u001b", "%1B"),
    ("\\u001f", "%1F"),
];

/// A Patient body with `raw` (JSON text) spliced in at one of several positions.
fn patients_with(raw: &str) -> Vec<String> {
    vec![
        format!(r#"{{"resourceType":"Patient","name":[{{"family":"a{raw}b"}}]}}"#),
        format!(r#"{{"resourceType":"Patient","name":[{{"family":"{raw}"}}]}}"#),
        format!(r#"{{"resourceType":"Patient","name":[{{"given":["x","{raw}y"]}}]}}"#),
        format!(
            r#"{{"resourceType":"Patient","extension":[{{"url":"http://e.org/x","valueString":"v{raw}"}}]}}"#
        ),
        format!(
            r#"{{"resourceType":"Patient","text":{{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">{raw}</div>"}}}}"#
        ),
        format!(r#"{{"resourceType":"Patient","gender":"male{raw}"}}"#),
        format!(r#"{{"resourceType":"Patient","birthDate":"2000-01-0{raw}"}}"#),
        format!(r#"{{"resourceType":"Patient","na{raw}me":[]}}"#),
        format!(
            r#"{{"resourceType":"Patient","identifier":[{{"system":"urn:x{raw}","value":"1"}}]}}"#
        ),
        format!(r#"{{"resourceType":"Patient","meta":{{"tag":[{{"code":"t{raw}"}}]}}}}"#),
    ]
}

async fn control_characters_in_bodies_are_400(s: &TestServer) {
    for (raw, _) in CONTROLS {
        for body in patients_with(raw) {
            let resp = s.send("POST", "Patient", &[], Some(&body)).await;
            refused(&resp, &body);
            let with_id = body.replacen('{', r#"{"id":"cc","#, 1);
            refused(
                &s.send("PUT", "Patient/cc", &[], Some(&with_id)).await,
                &with_id,
            );
            let validate = s.send("POST", "Patient/$validate", &[], Some(&body)).await;
            assert!(
                matches!(validate.status.as_u16(), 200 | 400),
                "$validate {body}: {}",
                validate.status
            );
            assert!(
                text(&validate).contains(r#""severity":"error""#),
                "$validate {body}: {}",
                text(&validate)
            );
        }
        // The location names the element.
        let body = &patients_with(raw)[0];
        let resp = s.send("POST", "Patient", &[], Some(body)).await;
        assert!(
            text(&resp).contains("Patient.name[0].family"),
            "{}",
            text(&resp)
        );
    }
    assert_nothing_stored(s).await;
    // A patch that would put one there is refused too, and the resource stays as it was.
    expect(&put(s, "Patient", "pc", json!({"active": true})).await, 201);
    for (raw, _) in CONTROLS {
        let ops = format!(r#"[{{"op":"add","path":"/gender","value":"male{raw}"}}]"#);
        let resp = patch(s, "Patient/pc", &ops, &[]).await;
        assert!(
            resp.status.is_client_error(),
            "patch: {} {}",
            resp.status,
            text(&resp)
        );
    }
    let read = s.get("Patient/pc").await;
    expect(&read, 200);
    assert_eq!(read.json()["meta"]["versionId"], "1");
    // Tab, CR and LF are allowed in strings.
    let body = json!({"resourceType": "Patient", "name": [{"text": "a\tb\r\nc"}]});
    expect(&s.post("Patient", &body).await, 201);
}

async fn control_characters_in_searches_are_400(s: &TestServer) {
    expect(
        &put(s, "Patient", "sp", json!({"name": [{"family": "x"}]})).await,
        201,
    );
    for (_, enc) in CONTROLS {
        let searches = [
            format!("Patient?name={enc}"),
            format!("Patient?name=a{enc}b"),
            format!("Patient?_id={enc}"),
            format!("Task?_security={enc}"),
            format!("Patient?_tag=http://x|{enc}"),
            format!("Patient?identifier={enc}|1"),
            format!("Patient?{enc}=x"),
            format!("Patient?name:{enc}=x"),
            format!("Patient?_sort={enc}"),
            format!("Patient?_include={enc}"),
            format!("Patient?_revinclude=Observation:{enc}"),
            format!("Observation?subject.name={enc}"),
            format!("Observation?subject:Patient.name={enc}"),
            format!("Patient?_has:Observation:subject:code={enc}"),
            format!("Patient?_cursor={enc}"),
            format!("Patient?_count={enc}"),
            format!("Patient?_summary={enc}"),
            format!("Patient?_elements=name{enc}"),
            format!("Observation?code-value-quantity=x{enc}$5"),
            format!("Observation?value-quantity=5||{enc}"),
            format!("Patient?birthdate={enc}"),
            format!("Patient/sp/Observation?code={enc}"),
            format!("?_type=Patient&name={enc}"),
            format!("?_type=Patient{enc}"),
            format!("_history?_since={enc}"),
            format!("Patient/sp/_history?_at={enc}"),
        ];
        for search in searches {
            let resp = s.get(&search).await;
            let diagnostics = expect_outcome(&resp, 400);
            assert!(!diagnostics.is_empty(), "{search}");
        }
        let form = format!("name={enc}");
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let resp = s
            .send("POST", "Patient/_search", &headers, Some(&form))
            .await;
        expect_outcome(&resp, 400);
        // Conditional interactions search first.
        let body = json!({"resourceType": "Patient"}).to_string();
        let resp = s
            .send("PUT", &format!("Patient?name={enc}"), &[], Some(&body))
            .await;
        expect_outcome(&resp, 400);
        expect_outcome(&s.delete(&format!("Patient?name={enc}")).await, 400);
        let resp = patch(s, &format!("Patient?name={enc}"), "[]", &[]).await;
        expect_outcome(&resp, 400);
        let criteria = format!("name={enc}");
        let resp = s
            .send(
                "POST",
                "Patient",
                &[("if-none-exist", &criteria)],
                Some(&body),
            )
            .await;
        expect_outcome(&resp, 400);
    }
    // A forged paging cursor whose sort key holds a NUL.
    let forged =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"[1,false,[{"t":"\u0000"}]]"#);
    let resp = s.get(&format!("Patient?_sort=name&_cursor={forged}")).await;
    expect_outcome(&resp, 400);
    let all = s.get("Patient?_count=100").await;
    expect(&all, 200);
    assert_eq!(all.json()["entry"].as_array().map(Vec::len), Some(1));
}

async fn control_characters_in_ids_and_headers_are_4xx(s: &TestServer) {
    expect(&put(s, "Patient", "ih", json!({})).await, 201);
    let body = json!({"resourceType": "Patient", "id": "ih"}).to_string();
    for (raw, enc) in CONTROLS {
        for path in [
            format!("Patient/{enc}"),
            format!("Patient/a{enc}"),
            format!("Patient/ih/_history/{enc}"),
            format!("Patient/ih/_history/1{enc}"),
            format!("Patient{enc}/ih"),
            format!("Patient/{enc}/_history"),
        ] {
            let resp = s.get(&path).await;
            assert!(resp.status.is_client_error(), "GET {path}: {}", resp.status);
            assert!(text(&resp).contains("OperationOutcome"), "GET {path}");
            refused(&s.delete(&path).await, &path);
        }
        let resp = s
            .send("PUT", &format!("Patient/ih{enc}"), &[], Some(&body))
            .await;
        expect_outcome(&resp, 400);
        let with_id = format!(r#"{{"resourceType":"Patient","id":"ih{raw}"}}"#);
        refused(
            &s.send("PUT", "Patient/ih", &[], Some(&with_id)).await,
            &with_id,
        );
    }
    // Header values: HTTP forbids NUL and most control characters in them, so a client
    // cannot send those; what it can send (percent-encoded criteria, odd ETags) is refused.
    for etag in ["W/\"1\t\"", "\"\t1\"", "W/\"%00\""] {
        let resp = s
            .send("PUT", "Patient/ih", &[("if-match", etag)], Some(&body))
            .await;
        assert!(
            resp.status.is_client_error(),
            "If-Match {etag:?}: {}",
            resp.status
        );
    }
    let read = s.get("Patient/ih").await;
    assert_eq!(read.json()["meta"]["versionId"], "1");
}

async fn control_characters_in_bundle_entries_are_refused(s: &TestServer) {
    for (raw, enc) in CONTROLS {
        let patient = |family: &str| -> Value {
            serde_json::from_str(&format!(
                r#"{{"resourceType":"Patient","name":[{{"family":"{family}"}}]}}"#
            ))
            .unwrap()
        };
        let entries = [
            json!({"resource": patient(&format!("a{raw}")), "request": {"method": "POST", "url": "Patient"}}),
            json!({"resource": patient("ok"), "request": {"method": "POST", "url": "Patient", "ifNoneExist": format!("name={enc}")}}),
            json!({"resource": patient("ok"), "request": {"method": "PUT", "url": format!("Patient?name={enc}")}}),
            json!({"request": {"method": "DELETE", "url": format!("Patient?name={enc}")}}),
            json!({"request": {"method": "GET", "url": format!("Patient?name={enc}")}}),
            json!({"request": {"method": "GET", "url": format!("Patient/{enc}")}}),
            json!({"resource": patient("ok"), "request": {"method": "PUT", "url": format!("Patient/x{enc}")}}),
        ];
        for entry in entries {
            // A transaction is refused whole, with the ok entry beside it not stored.
            let ok = json!({"resource": patient("fine"), "request": {"method": "POST", "url": "Patient"}});
            let tx = json!({"resourceType": "Bundle", "type": "transaction", "entry": [ok, entry.clone()]});
            let resp = s.post("", &tx).await;
            assert!(
                resp.status.is_client_error(),
                "transaction {entry}: {} {}",
                resp.status,
                text(&resp)
            );
            assert!(text(&resp).contains("OperationOutcome"), "{}", text(&resp));
            // A batch answers 200 with the entry's own 4xx.
            let batch =
                json!({"resourceType": "Bundle", "type": "batch", "entry": [entry.clone()]});
            let resp = s.post("", &batch).await;
            expect(&resp, 200);
            let status = resp.json()["entry"][0]["response"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(status.starts_with('4'), "batch {entry}: {status}");
        }
        // A control character in the Bundle's own elements.
        let tx = format!(
            r#"{{"resourceType":"Bundle","type":"transaction","entry":[{{"fullUrl":"urn:uuid:{raw}","resource":{{"resourceType":"Patient"}},"request":{{"method":"POST","url":"Patient"}}}}]}}"#
        );
        refused(&s.send("POST", "", &[], Some(&tx)).await, &tx);
    }
    assert_nothing_stored(s).await;
}

async fn control_characters_are_refused_with_validation_off(s: &TestServer) {
    let mut settings = TestSettings::default();
    settings.limits.validation = ember_fhir::validate::Mode::Off;
    let s = &TestServer::start_with(s.backend, settings).await;
    for (raw, _) in CONTROLS {
        for body in patients_with(raw) {
            let resp = s.send("POST", "Patient", &[], Some(&body)).await;
            refused(&resp, &body);
        }
    }
    assert_nothing_stored(s).await;
    // Anything else goes, as `off` promises.
    let body = r#"{"resourceType":"Patient","whatever":[1,{"a":"b\tc"}]}"#;
    expect(&s.send("POST", "Patient", &[], Some(body)).await, 201);
}
