//! Read and vread (`GET [type]/[id]`, `GET [type]/[id]/_history/[vid]`), and conditional
//! read (`If-None-Match`, `If-Modified-Since`); a trailing slash is tolerated.

use serde_json::json;

use super::{http_date_tail, put};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    read_returns_current_version_with_headers,
    vread_returns_old_version_content,
    vread_unknown_version_is_404,
    read_unknown_id_is_404,
    read_unknown_type_is_404,
    conditional_read_if_none_match,
    conditional_read_if_modified_since,
    a_trailing_slash_is_tolerated,
    summary_and_elements_subset_a_read,
);

async fn summary_and_elements_subset_a_read(s: &TestServer) {
    let patient = json!({
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">P</div>"},
        "name": [{"family": "Lund"}], "gender": "female", "birthDate": "1970-01-01",
        "photo": [{"contentType": "image/png", "data": "AAAA"}]
    });
    expect(&put(s, "Patient", "sub", patient).await, 201);
    let subsetted = |body: &serde_json::Value| {
        body["meta"]["tag"]
            .as_array()
            .is_some_and(|tags| tags.iter().any(|t| t["code"] == "SUBSETTED"))
    };
    for path in [
        "Patient/sub?_elements=gender",
        "Patient/sub/_history/1?_elements=gender",
    ] {
        let read = s.get(path).await;
        expect(&read, 200);
        let body = read.json();
        assert_eq!(body["gender"], "female", "{path}");
        assert!(
            body.get("name").is_none() && body.get("birthDate").is_none(),
            "{body}"
        );
        assert_eq!(body["id"], "sub");
        assert!(subsetted(&body), "{body}");
    }
    // Summary elements only: name, gender, birthDate; no photo, no text.
    let summary = s.get("Patient/sub?_summary=true").await.json();
    assert_eq!(summary["birthDate"], "1970-01-01");
    assert!(
        summary.get("photo").is_none() && summary.get("text").is_none(),
        "{summary}"
    );
    assert!(subsetted(&summary));
    let data = s.get("Patient/sub?_summary=data").await.json();
    assert!(data.get("text").is_none() && data.get("photo").is_some());
    let text = s.get("Patient/sub?_summary=text").await.json();
    assert!(text.get("text").is_some() && text.get("photo").is_none());
    // Without them, the stored resource as it is.
    let full = s.get("Patient/sub?_summary=false").await.json();
    assert!(full.get("photo").is_some() && !subsetted(&full));
    expect_outcome(&s.get("Patient/sub?_summary=count").await, 400);
    expect_outcome(&s.get("Patient/sub?_summary=maybe").await, 400);
}

async fn a_trailing_slash_is_tolerated(s: &TestServer) {
    expect(
        &put(s, "Patient", "slash", json!({"gender": "male"})).await,
        201,
    );
    let read = s.get("Patient/slash/").await;
    expect(&read, 200);
    assert_eq!(read.json()["id"], "slash");
    let vread = s.get("Patient/slash/_history/1/").await;
    expect(&vread, 200);
    assert_eq!(vread.json()["gender"], "male");
    let search = s.get("Patient/?gender=male").await;
    expect(&search, 200);
    assert_eq!(search.json()["entry"][0]["resource"]["id"], "slash");
    let created = s
        .post("Patient/", &json!({"resourceType": "Patient"}))
        .await;
    expect(&created, 201);
    let history = s.get("Patient/slash/_history/").await;
    expect(&history, 200);
    assert_eq!(history.json()["type"], "history");
    expect(&s.get("metadata/").await, 200);
    expect_outcome(&s.get("Patient/nobody/").await, 404);
}

async fn read_returns_current_version_with_headers(s: &TestServer) {
    expect(
        &put(s, "Patient", "r1", json!({"gender": "male"})).await,
        201,
    );
    expect(
        &put(s, "Patient", "r1", json!({"gender": "female"})).await,
        200,
    );
    let read = s.get("Patient/r1").await;
    expect(&read, 200);
    assert!(
        read.header("content-type")
            .unwrap()
            .starts_with("application/fhir+json")
    );
    assert_eq!(read.header("etag"), Some("W/\"2\""));
    assert_eq!(
        read.header("content-location"),
        Some(format!("{}/Patient/r1/_history/2", s.base).as_str())
    );
    let body = read.json();
    assert_eq!(body["gender"], "female");
    assert_eq!(body["meta"]["versionId"], "2");
    let last_modified = read.header("last-modified").unwrap();
    assert!(last_modified.ends_with(&http_date_tail(
        body["meta"]["lastUpdated"].as_str().unwrap()
    )));
}

async fn vread_returns_old_version_content(s: &TestServer) {
    expect(
        &put(s, "Patient", "v", json!({"gender": "male"})).await,
        201,
    );
    expect(
        &put(s, "Patient", "v", json!({"gender": "female"})).await,
        200,
    );
    expect(
        &put(s, "Patient", "v", json!({"gender": "other"})).await,
        200,
    );
    for (version, gender) in [(1, "male"), (2, "female"), (3, "other")] {
        let resp = s.get(&format!("Patient/v/_history/{version}")).await;
        expect(&resp, 200);
        let body = resp.json();
        assert_eq!(body["gender"], gender, "version {version}");
        assert_eq!(body["meta"]["versionId"], version.to_string());
        assert_eq!(
            resp.header("etag"),
            Some(format!("W/\"{version}\"").as_str())
        );
        assert_eq!(
            resp.header("content-location"),
            Some(format!("{}/Patient/v/_history/{version}", s.base).as_str())
        );
    }
}

async fn vread_unknown_version_is_404(s: &TestServer) {
    expect(&put(s, "Patient", "v", json!({})).await, 201);
    for vid in ["2", "0", "-1", "abc", "99999999999999999999"] {
        expect_outcome(&s.get(&format!("Patient/v/_history/{vid}")).await, 404);
    }
    expect_outcome(&s.get("Patient/nobody/_history/1").await, 404);
}

async fn read_unknown_id_is_404(s: &TestServer) {
    let resp = s.get("Patient/does-not-exist").await;
    expect_outcome(&resp, 404);
    assert_eq!(resp.json()["issue"][0]["code"], "not-found");
    // Same id, other type.
    expect(&put(s, "Patient", "x1", json!({})).await, 201);
    expect_outcome(&s.get("Observation/x1").await, 404);
}

async fn read_unknown_type_is_404(s: &TestServer) {
    expect_outcome(&s.get("Foo/1").await, 404);
    expect_outcome(&s.get("patient/1").await, 404);
    expect_outcome(&s.get("Foo/1/_history/1").await, 404);
    expect_outcome(&s.get("DomainResource/1").await, 404);
}

async fn conditional_read_if_none_match(s: &TestServer) {
    expect(&put(s, "Patient", "c", json!({})).await, 201);
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "W/\"1\"")], None)
        .await;
    expect(&resp, 304);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("etag"), Some("W/\"1\""));
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "W/\"2\"")], None)
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], "c");
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "*")], None)
        .await;
    expect(&resp, 304);
    // After an update the old ETag no longer matches.
    expect(&put(s, "Patient", "c", json!({"active": true})).await, 200);
    let resp = s
        .send("GET", "Patient/c", &[("if-none-match", "W/\"1\"")], None)
        .await;
    expect(&resp, 200);
    assert_eq!(resp.header("etag"), Some("W/\"2\""));
}

async fn conditional_read_if_modified_since(s: &TestServer) {
    expect(&put(s, "Patient", "c", json!({})).await, 201);
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let resp = s
        .send("GET", "Patient/c", &[("if-modified-since", future)], None)
        .await;
    expect(&resp, 304);
    assert!(resp.body.is_empty());
    let past = "Mon, 01 Jan 1990 00:00:00 GMT";
    let resp = s
        .send("GET", "Patient/c", &[("if-modified-since", past)], None)
        .await;
    expect(&resp, 200);
    assert_eq!(resp.json()["id"], "c");
    // Its own Last-Modified is "not modified since".
    let last_modified = resp.header("last-modified").unwrap().to_owned();
    let resp = s
        .send(
            "GET",
            "Patient/c",
            &[("if-modified-since", &last_modified)],
            None,
        )
        .await;
    expect(&resp, 304);
}
