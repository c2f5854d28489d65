//! Create (`POST [type]`): server-assigned ids, version headers, `meta`.

use serde_json::json;

use super::{create, http_date_tail};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    create_then_read,
    create_assigns_server_id_and_version_headers,
    create_overwrites_client_meta_but_keeps_tags,
    concurrent_creates_all_land,
);

async fn create_then_read(s: &TestServer) {
    let created = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "active": true}),
        )
        .await;
    assert_eq!(created.status, 201);
    let body = created.json();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["meta"]["versionId"], "1");
    let location = created.header("location").unwrap();
    assert!(
        location.ends_with(&format!("/fhir/Patient/{id}/_history/1")),
        "{location}"
    );
    let read = s.get(&format!("Patient/{id}")).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.header("etag"), Some("W/\"1\""));
    assert_eq!(read.json(), body);
    // Criteria in the URL are refused (R4 carries them in If-None-Exist), and nothing
    // is stored; formatting parameters are fine.
    let patient =
        json!({"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "1"}]});
    let r = s.post("Patient?identifier=urn:x|1", &patient).await;
    assert!(expect_outcome(&r, 400).contains("If-None-Exist"));
    let found = s.get("Patient?identifier=urn:x|1").await.json();
    assert_eq!(found["total"], 0, "{found}");
    expect(&s.post("Patient?_pretty=true", &patient).await, 201);
}

async fn create_assigns_server_id_and_version_headers(s: &TestServer) {
    let resp = s
        .post(
            "Patient",
            &json!({"resourceType": "Patient", "id": "client-chosen", "active": true}),
        )
        .await;
    expect(&resp, 201);
    let body = resp.json();
    let id = body["id"].as_str().unwrap();
    assert_ne!(id, "client-chosen");
    assert!(!id.is_empty() && id.len() <= 64, "{id}");
    assert_eq!(body["active"], true);
    assert_eq!(
        resp.header("location"),
        Some(format!("{}/Patient/{id}/_history/1", s.base).as_str())
    );
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let last_updated = body["meta"]["lastUpdated"].as_str().unwrap();
    let last_modified = resp.header("last-modified").expect("Last-Modified");
    assert!(
        last_modified.ends_with(&http_date_tail(last_updated)),
        "{last_modified} vs {last_updated}"
    );
    // The client's id did not become a resource.
    expect_outcome(&s.get("Patient/client-chosen").await, 404);
    // Two creates get two ids.
    let (other, _) = create(s, "Patient", json!({"resourceType": "Patient"})).await;
    assert_ne!(other, id);
}

async fn create_overwrites_client_meta_but_keeps_tags(s: &TestServer) {
    let before = ember_fhir::instant::now();
    let (id, body) = create(
        s,
        "Patient",
        json!({
            "resourceType": "Patient",
            "meta": {
                "versionId": "7",
                "lastUpdated": "2001-01-01T00:00:00Z",
                "tag": [{"system": "http://example.org/tags", "code": "keep-me"}]
            },
            "active": true
        }),
    )
    .await;
    assert_eq!(body["meta"]["versionId"], "1");
    let last_updated = body["meta"]["lastUpdated"].as_str().unwrap();
    assert_ne!(last_updated, "2001-01-01T00:00:00Z");
    let (stamped, _) = ember_fhir::instant::parse_range(last_updated).expect("an instant");
    assert!(
        stamped >= before - 1_000_000,
        "lastUpdated {last_updated} is not the server's time"
    );
    assert_eq!(
        body["meta"]["tag"],
        json!([{"system": "http://example.org/tags", "code": "keep-me"}])
    );
    let read = s.get(&format!("Patient/{id}")).await.json();
    assert_eq!(read["meta"], body["meta"]);
}

/// Creates sent at once (which the server stores in shared commits) each get their own
/// resource, read back as answered, and nothing else is stored.
async fn concurrent_creates_all_land(s: &TestServer) {
    const N: usize = 48;
    let mut tasks = Vec::new();
    for i in 0..N {
        let http = s.http.clone();
        tasks.push(tokio::spawn(async move {
            let body = json!({"resourceType": "Patient",
                "identifier": [{"system": "urn:concurrent", "value": i.to_string()}]});
            http.send("POST", "Patient", &[], Some(&body.to_string()))
                .await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let created = task.await.unwrap();
        assert_eq!(created.status, 201, "{i}");
        let body = created.json();
        assert_eq!(body["identifier"][0]["value"], i.to_string());
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(s.get(&format!("Patient/{id}")).await.json(), body);
        assert!(ids.insert(id));
    }
    let found = s
        .get("Patient?identifier=urn:concurrent|&_summary=count")
        .await
        .json();
    assert_eq!(found["total"], N, "{found}");
    let history = s.get("Patient/_history?_count=100").await.json();
    assert_eq!(
        history["entry"].as_array().map(Vec::len),
        Some(N),
        "{history}"
    );
}
