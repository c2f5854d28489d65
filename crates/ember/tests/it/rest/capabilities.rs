//! Capabilities (`GET metadata`): the CapabilityStatement advertises exactly what the
//! server answers.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};

use super::{assert_nothing_stored, patch, put};
use crate::common::{Resp, TestServer, expect, expect_outcome};

both_stores!(
    metadata_advertises_exactly_what_is_supported,
    metadata_interactions_all_answer,
    metadata_conditional_read_matches_behaviour,
    search_is_advertised_and_answers,
    metadata_modes,
    metadata_operations_all_answer,
);

/// Every operation the statement declares on a type answers there (ValueSet's and
/// CodeSystem's terminology operations, Patient's and Encounter's `$everything`,
/// Patient's and Group's `$export`).
async fn metadata_operations_all_answer(s: &TestServer) {
    let cs = capability(s).await;
    expect(&put(s, "Patient", "op", json!({})).await, 201);
    expect(
        &put(s, "Group", "op", json!({"type": "person", "actual": true})).await,
        201,
    );
    let code_system = json!({"resourceType": "CodeSystem", "url": "http://example.org/ops",
        "status": "active", "content": "complete", "concept": [{"code": "a", "display": "A"}]});
    expect(&put(s, "CodeSystem", "ops", code_system).await, 201);
    let value_set = json!({"resourceType": "ValueSet", "url": "http://example.org/ops-vs",
        "status": "active", "compose": {"include": [{"system": "http://example.org/ops"}]}});
    expect(&put(s, "ValueSet", "ops", value_set).await, 201);
    let mut declared = Vec::new();
    for r in cs["rest"][0]["resource"].as_array().unwrap() {
        for op in r["operation"].as_array().into_iter().flatten() {
            declared.push((
                r["type"].as_str().unwrap().to_owned(),
                op["name"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert!(declared.len() >= 7, "{declared:?}");
    for (t, name) in &declared {
        let path = match (t.as_str(), name.as_str()) {
            ("ValueSet", "expand") => "ValueSet/$expand?url=http://example.org/ops-vs".to_owned(),
            ("ValueSet", "validate-code") => {
                "ValueSet/ops/$validate-code?system=http://example.org/ops&code=a".to_owned()
            }
            ("CodeSystem", "lookup") => {
                "CodeSystem/$lookup?system=http://example.org/ops&code=a".to_owned()
            }
            (_, "everything") => format!("{t}/$everything"),
            (_, "export") => format!("{t}/op/$export"),
            other => panic!("no probe for the declared operation {other:?}"),
        };
        let path = match (t.as_str(), name.as_str()) {
            ("Patient", "export") => "Patient/$export".to_owned(),
            _ => path,
        };
        let resp = s
            .send("GET", &path, &[("prefer", "respond-async")], None)
            .await;
        assert!(
            resp.status.is_success(),
            "{t} declares ${name} but {path} answered {}: {}",
            resp.status,
            String::from_utf8_lossy(&resp.body)
        );
    }
}

async fn metadata_modes(s: &TestServer) {
    let full = s.get("metadata?mode=full").await;
    expect(&full, 200);
    assert_eq!(full.json()["resourceType"], "CapabilityStatement");
    let resp = s.get("metadata?mode=terminology").await;
    expect(&resp, 200);
    let tc = resp.json();
    assert_eq!(tc["resourceType"], "TerminologyCapabilities");
    assert_eq!(tc["kind"], "instance");
    assert_eq!(tc["software"]["name"], "Ember");
    assert_eq!(tc["implementation"]["url"], s.base.as_str());
    // It claims the terminology services Ember gives, and no others.
    for absent in ["codeSystem", "translation", "closure"] {
        assert!(tc.get(absent).is_none(), "{absent}: {tc}");
    }
    let claimed: Vec<&str> = tc["expansion"]["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(claimed, ["filter", "count", "offset", "activeOnly"]);
    assert_eq!(tc["expansion"]["paging"], true);
    assert_eq!(tc["validateCode"]["translations"], false);
    // Each expansion parameter is honoured (count and offset page, filter narrows,
    // activeOnly is accepted).
    let gender = "url=http://hl7.org/fhir/ValueSet/administrative-gender";
    let resp = s
        .get(&format!(
            "ValueSet/$expand?{gender}&filter=e&count=1&offset=1&activeOnly=true"
        ))
        .await;
    expect(&resp, 200);
    let e = &resp.json()["expansion"];
    // female, male and other contain an "e"; the second of them.
    assert_eq!(e["total"], 3, "{e}");
    assert_eq!(e["contains"][0]["code"], "male", "{e}");
    assert_eq!(e["contains"].as_array().unwrap().len(), 1, "{e}");
    // A stored CodeSystem with content is listed.
    let cs = json!({"resourceType": "CodeSystem", "url": "http://example.org/cs", "version": "2",
        "status": "active", "content": "complete", "concept": [{"code": "a"}]});
    expect(&put(s, "CodeSystem", "cs", cs).await, 201);
    let tc = s.get("metadata?mode=terminology").await.json();
    assert_eq!(
        tc["codeSystem"],
        json!([{"uri": "http://example.org/cs", "version": [{"code": "2"}]}])
    );
    // And it is a valid R4 resource.
    let checked = s.post("TerminologyCapabilities/$validate", &tc).await;
    expect(&checked, 200);
    let issues = checked.json()["issue"].clone();
    assert!(
        issues
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["severity"] != "error" && i["severity"] != "fatal"),
        "{issues}"
    );
    for mode in ["normative", "nonsense"] {
        let refused = s.get(&format!("metadata?mode={mode}")).await;
        let diagnostics = expect_outcome(&refused, 400);
        assert!(
            diagnostics.contains(&format!("mode={mode}")),
            "{diagnostics}"
        );
    }
}

fn codes(interactions: &Value) -> BTreeSet<String> {
    interactions
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["code"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn capability(s: &TestServer) -> Value {
    let resp = s.get("metadata").await;
    expect(&resp, 200);
    let body = resp.json();
    assert_eq!(body["resourceType"], "CapabilityStatement");
    body
}

async fn metadata_advertises_exactly_what_is_supported(s: &TestServer) {
    let cs = capability(s).await;
    assert_eq!(cs["fhirVersion"], "4.0.1");
    assert_eq!(cs["kind"], "instance");
    assert_eq!(cs["implementation"]["url"], s.base.as_str());
    let rest = &cs["rest"][0];
    assert_eq!(rest["mode"], "server");
    let expected_type: BTreeSet<String> = [
        "read",
        "vread",
        "update",
        "patch",
        "delete",
        "history-instance",
        "history-type",
        "create",
        "search-type",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let resources = rest["resource"].as_array().unwrap();
    assert!(resources.len() > 140, "{}", resources.len());
    let mut types = HashSet::new();
    for r in resources {
        let t = r["type"].as_str().unwrap();
        assert!(types.insert(t.to_owned()), "{t} listed twice");
        assert!(t != "Resource" && t != "DomainResource", "{t}");
        assert_eq!(codes(&r["interaction"]), expected_type, "{t}");
        // Conditional interactions (`conditional`); R4 has no conditionalPatch.
        assert_eq!(r["conditionalCreate"], true, "{t}");
        assert_eq!(r["conditionalUpdate"], true, "{t}");
        assert_eq!(r["conditionalDelete"], "multiple", "{t}");
        let params = r["searchParam"].as_array().unwrap();
        assert!(
            params.iter().any(|p| p["name"] == "_lastUpdated"),
            "{t} does not advertise _lastUpdated"
        );
        assert!(
            params.iter().all(|p| p["type"] != "special"
                || ["_list", "_text", "_content"].contains(&p["name"].as_str().unwrap())),
            "{t} advertises a special parameter it cannot search"
        );
    }
    for t in [
        "Patient",
        "Observation",
        "Bundle",
        "Binary",
        "OperationOutcome",
    ] {
        assert!(types.contains(t), "{t} missing");
    }
    let expected_system: BTreeSet<String> =
        ["transaction", "batch", "history-system", "search-system"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(codes(&rest["interaction"]), expected_system);
    // A fresh server has stored nothing by answering metadata.
    assert_nothing_stored(s).await;
}

/// Exercises one advertised interaction on `res_type`; answers the response.
async fn exercise(s: &TestServer, res_type: &str, code: &str, body: &Value) -> Resp {
    let mut resource = body.clone();
    resource["resourceType"] = json!(res_type);
    let id = format!("probe-{}", code.replace('-', ""));
    if code != "create" {
        expect(&put(s, res_type, &id, resource.clone()).await, 201);
    }
    match code {
        "create" => s.post(res_type, &resource).await,
        "read" => s.get(&format!("{res_type}/{id}")).await,
        "vread" => s.get(&format!("{res_type}/{id}/_history/1")).await,
        "update" => put(s, res_type, &id, resource).await,
        "patch" => {
            let doc = r#"[{"op": "add", "path": "/language", "value": "en"}]"#;
            patch(s, &format!("{res_type}/{id}"), doc, &[]).await
        }
        "delete" => s.delete(&format!("{res_type}/{id}")).await,
        "history-instance" => s.get(&format!("{res_type}/{id}/_history")).await,
        "history-type" => s.get(&format!("{res_type}/_history")).await,
        "search-type" => s.get(&format!("{res_type}?_id={id}")).await,
        other => panic!("{res_type}: no probe for the advertised interaction {other:?}"),
    }
}

async fn metadata_interactions_all_answer(s: &TestServer) {
    let cs = capability(s).await;
    let rest = &cs["rest"][0];
    let bodies = [
        ("Patient", json!({"active": true})),
        (
            "Observation",
            json!({"status": "final", "code": {"text": "probe"}}),
        ),
    ];
    for (res_type, body) in bodies {
        let r = rest["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == res_type)
            .unwrap_or_else(|| panic!("{res_type} is not in the CapabilityStatement"));
        let advertised = codes(&r["interaction"]);
        assert!(!advertised.is_empty());
        for code in &advertised {
            let resp = exercise(s, res_type, code, &body).await;
            let status = resp.status.as_u16();
            assert!(
                status != 405 && status != 501 && resp.status.is_success(),
                "{res_type} advertises {code} but it answered {status}: {}",
                String::from_utf8_lossy(&resp.body)
            );
        }
    }
    for code in codes(&rest["interaction"]) {
        let resp = match code.as_str() {
            "transaction" | "batch" => {
                let bundle = json!({"resourceType": "Bundle", "type": code, "entry": [
                    {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}
                ]});
                s.post(&s.base, &bundle).await
            }
            "history-system" => s.get("_history").await,
            "search-system" => s.get("?_id=x").await,
            other => panic!("no probe for the advertised system interaction {other:?}"),
        };
        let status = resp.status.as_u16();
        assert!(
            status != 405 && status != 501 && resp.status.is_success(),
            "the server advertises {code} but it answered {status}: {}",
            String::from_utf8_lossy(&resp.body)
        );
    }
}

/// The server honours If-None-Match and If-Modified-Since (see the conditional read
/// tests), so the CapabilityStatement should not say it does not.
async fn metadata_conditional_read_matches_behaviour(s: &TestServer) {
    let cs = capability(s).await;
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    // Both conditional reads really work…
    expect(&put(s, "Patient", "cr", json!({})).await, 201);
    let resp = s
        .send("GET", "Patient/cr", &[("if-none-match", "W/\"1\"")], None)
        .await;
    expect(&resp, 304);
    let resp = s
        .send(
            "GET",
            "Patient/cr",
            &[("if-modified-since", "Fri, 01 Jan 2100 00:00:00 GMT")],
            None,
        )
        .await;
    expect(&resp, 304);
    // …so the statement should say so.
    assert_eq!(
        patient["conditionalRead"], "full-support",
        "conditionalRead does not describe the server's behaviour"
    );
}

async fn search_is_advertised_and_answers(s: &TestServer) {
    let cs = capability(s).await;
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap()
        .clone();
    let names: Vec<&str> = patient["searchParam"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "name",
        "identifier",
        "birthdate",
        "general-practitioner",
        "_id",
    ] {
        assert!(names.contains(&name), "Patient does not advertise {name}");
    }
    // Every declared include and revinclude is accepted by a strict search.
    let strict = [("prefer", "handling=strict")];
    for (element, param) in [
        ("searchInclude", "_include"),
        ("searchRevInclude", "_revinclude"),
    ] {
        let declared = patient[element].as_array().unwrap();
        assert!(declared.len() > 3, "{element}: {declared:?}");
        for value in declared {
            let query = format!("Patient?{param}={}", value.as_str().unwrap());
            expect(&s.send("GET", &query, &strict, None).await, 200);
        }
    }
    let revincludes = patient["searchRevInclude"].as_array().unwrap();
    assert!(revincludes.contains(&json!("Observation:subject")));
    assert!(revincludes.contains(&json!("Encounter:patient")));
    expect(
        &put(s, "Patient", "x1", json!({"name": [{"family": "Xu"}]})).await,
        201,
    );
    let resp = s.get("Patient?name=x").await;
    expect(&resp, 200);
    assert_eq!(resp.json()["type"], "searchset");
    assert_eq!(resp.json()["entry"][0]["resource"]["id"], "x1");
    let resp = s
        .send(
            "POST",
            "Patient/_search",
            &[("content-type", "application/x-www-form-urlencoded")],
            Some("name=x"),
        )
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["entry"][0]["resource"]["id"], "x1");
    // A _search body must be a form.
    let resp = s
        .send(
            "POST",
            "Patient/_search",
            &[("content-type", "application/fhir+json")],
            Some("{}"),
        )
        .await;
    expect_outcome(&resp, 415);
}
