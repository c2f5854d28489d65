//! History (`_history` of an instance, a type and the system): order, paging, `_since`,
//! `_at`.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};

use super::{create, entries, history, history_len, patch, put};
use crate::common::{TestServer, expect, expect_outcome};

both_stores!(
    history_instance_newest_first,
    history_status_of_recreate_is_201,
    history_type_and_system_scopes,
    history_paging_follows_next_links,
    history_paging_is_stable_under_writes,
    history_since,
    history_at,
    history_invalid_parameters_are_400,
    history_unknown_is_404,
);

/// The version numbers of a history page, from each entry's ETag.
fn versions(bundle: &Value) -> Vec<u32> {
    entries(bundle)
        .iter()
        .map(|e| {
            let etag = e["response"]["etag"].as_str().expect("entry etag");
            etag.trim_start_matches("W/\"")
                .trim_end_matches('"')
                .parse()
                .expect("numeric etag")
        })
        .collect()
}

/// The current time as a FHIR instant, after a pause on both sides so it falls strictly
/// between the writes before and after it.
async fn instant_between_writes() -> String {
    tokio::time::sleep(Duration::from_millis(30)).await;
    let t = ember_fhir::instant::format_instant(ember_fhir::instant::now());
    tokio::time::sleep(Duration::from_millis(30)).await;
    t
}

async fn history_instance_newest_first(s: &TestServer) {
    let (id, _) = create(
        s,
        "Patient",
        json!({"resourceType": "Patient", "gender": "male"}),
    )
    .await;
    expect(
        &put(s, "Patient", &id, json!({"gender": "female"})).await,
        200,
    );
    expect(
        &patch(
            s,
            &format!("Patient/{id}"),
            r#"[{"op": "add", "path": "/active", "value": true}]"#,
            &[],
        )
        .await,
        200,
    );
    expect(&s.delete(&format!("Patient/{id}")).await, 204);
    let h = history(s, &format!("Patient/{id}/_history")).await;
    assert_eq!(versions(&h), [4, 3, 2, 1]);
    let e = entries(&h);
    let methods: Vec<&str> = e
        .iter()
        .map(|e| e["request"]["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["DELETE", "PATCH", "PUT", "POST"]);
    assert!(
        e[0]["response"]["status"]
            .as_str()
            .unwrap()
            .starts_with("20"),
        "{}",
        e[0]
    );
    assert_eq!(e[1]["response"]["status"], "200 OK");
    assert_eq!(e[2]["response"]["status"], "200 OK");
    assert_eq!(e[3]["response"]["status"], "201 Created");
    assert_eq!(e[3]["request"]["url"], "Patient");
    assert_eq!(e[2]["request"]["url"], format!("Patient/{id}"));
    for (entry, version) in e.iter().skip(1).zip([3, 2, 1]) {
        assert_eq!(entry["fullUrl"], format!("{}/Patient/{id}", s.base));
        assert_eq!(entry["resource"]["meta"]["versionId"], version.to_string());
    }
    assert_eq!(e[1]["resource"]["active"], true);
    assert_eq!(e[2]["resource"]["gender"], "female");
    assert_eq!(e[3]["resource"]["gender"], "male");
}

/// A PUT that re-creates a deleted resource answered 201; its history entry should say so.
async fn history_status_of_recreate_is_201(s: &TestServer) {
    expect(&put(s, "Patient", "re", json!({})).await, 201);
    expect(&s.delete("Patient/re").await, 204);
    expect(&put(s, "Patient", "re", json!({"active": true})).await, 201);
    let e = entries(&history(s, "Patient/re/_history").await);
    assert_eq!(e.len(), 3);
    assert_eq!(e[0]["request"]["method"], "PUT");
    assert_eq!(e[0]["response"]["status"], "201 Created", "{}", e[0]);
    assert_eq!(e[2]["response"]["status"], "201 Created", "{}", e[2]);
}

async fn history_type_and_system_scopes(s: &TestServer) {
    // Nothing yet: an empty history, not an error.
    let empty = history(s, "Encounter/_history").await;
    assert_eq!(entries(&empty).len(), 0);

    let (p1, _) = create(s, "Patient", json!({"resourceType": "Patient"})).await;
    let (p2, _) = create(s, "Patient", json!({"resourceType": "Patient"})).await;
    expect(&put(s, "Patient", &p1, json!({"active": true})).await, 200);
    let (o1, _) = create(
        s,
        "Observation",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    )
    .await;

    let patients = history(s, "Patient/_history").await;
    let e = entries(&patients);
    assert_eq!(e.len(), 3);
    assert!(e.iter().all(|e| e["resource"]["resourceType"] == "Patient"));
    let ids: Vec<&str> = e
        .iter()
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [p1.as_str(), p2.as_str(), p1.as_str()]);

    let observations = history(s, "Observation/_history").await;
    let e = entries(&observations);
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["resource"]["id"], o1.as_str());
    assert_eq!(e[0]["resource"]["resourceType"], "Observation");

    let all = history(s, "_history").await;
    let e = entries(&all);
    let refs: Vec<String> = e
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["resource"]["resourceType"].as_str().unwrap(),
                e["resource"]["id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        refs,
        [
            format!("Observation/{o1}"),
            format!("Patient/{p1}"),
            format!("Patient/{p2}"),
            format!("Patient/{p1}"),
        ]
    );
    assert_eq!(history_len(s, "Encounter/_history").await, 0);
}

/// Follows `next` links from `first`; returns the pages' sizes and (type/id, version) in order.
async fn follow_pages(s: &TestServer, first: &str) -> (Vec<usize>, Vec<(String, u32)>) {
    let mut url = first.to_owned();
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..50 {
        let resp = s.get(&url).await;
        expect(&resp, 200);
        let page = resp.json();
        assert_eq!(page["type"], "history");
        let e = entries(&page);
        sizes.push(e.len());
        for (entry, version) in e.iter().zip(versions(&page)) {
            let full_url = entry["fullUrl"].as_str().unwrap();
            let reference = full_url.trim_start_matches(&format!("{}/", s.base));
            seen.push((reference.to_owned(), version));
        }
        let links = page["link"].as_array().cloned().unwrap_or_default();
        assert!(links.iter().any(|l| l["relation"] == "self"), "{page}");
        match links.iter().find(|l| l["relation"] == "next") {
            None => return (sizes, seen),
            Some(next) => {
                let next = next["url"].as_str().unwrap();
                assert!(
                    next.starts_with(&format!("{}/", s.base)),
                    "next link is not absolute: {next}"
                );
                url = next.to_owned();
            }
        }
    }
    panic!("history paging did not end after 50 pages");
}

async fn history_paging_follows_next_links(s: &TestServer) {
    expect(
        &put(s, "Patient", "pg", json!({"birthDate": "2000-01-01"})).await,
        201,
    );
    for year in 2001..=2004 {
        let body = json!({"birthDate": format!("{year}-01-01")});
        expect(&put(s, "Patient", "pg", body).await, 200);
    }
    let (sizes, seen) = follow_pages(s, "Patient/pg/_history?_count=2").await;
    assert_eq!(sizes, [2, 2, 1]);
    let expected: Vec<(String, u32)> = (1..=5).rev().map(|v| ("Patient/pg".into(), v)).collect();
    assert_eq!(seen, expected);

    // A page size that divides the total evenly ends without an empty page.
    let (sizes, seen) = follow_pages(s, "Patient/pg/_history?_count=5").await;
    assert_eq!(sizes, [5]);
    assert_eq!(seen, expected);

    // System level, across types, every version exactly once, newest first.
    let (o, _) = create(
        s,
        "Observation",
        json!({"resourceType": "Observation", "status": "final", "code": {"text": "x"}}),
    )
    .await;
    expect(&put(s, "Patient", "pg2", json!({})).await, 201);
    let (sizes, seen) = follow_pages(s, "_history?_count=3").await;
    assert_eq!(sizes, [3, 3, 1]);
    let mut expected_all: Vec<(String, u32)> =
        vec![("Patient/pg2".into(), 1), (format!("Observation/{o}"), 1)];
    expected_all.extend(expected.iter().cloned());
    assert_eq!(seen, expected_all);
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len());

    // Type level.
    let (sizes, seen) = follow_pages(s, "Patient/_history?_count=4").await;
    assert_eq!(sizes, [4, 2]);
    let mut expected_patients: Vec<(String, u32)> = vec![("Patient/pg2".into(), 1)];
    expected_patients.extend(expected.iter().cloned());
    assert_eq!(seen, expected_patients);
}

async fn history_since(s: &TestServer) {
    expect(
        &put(s, "Patient", "hs", json!({"birthDate": "2001-01-01"})).await,
        201,
    );
    let between = instant_between_writes().await;
    let v2 = put(s, "Patient", "hs", json!({"birthDate": "2002-01-01"})).await;
    expect(&v2, 200);
    let v2_updated = v2.json()["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_owned();
    let v3 = put(s, "Patient", "hs", json!({"birthDate": "2003-01-01"})).await;
    expect(&v3, 200);
    let v3_updated = v3.json()["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_owned();

    for path in ["Patient/hs/_history", "Patient/_history", "_history"] {
        let h = history(s, &format!("{path}?_since={between}")).await;
        assert_eq!(versions(&h), [3, 2], "{path} _since={between}");
        // _since is inclusive.
        let h = history(s, &format!("{path}?_since={v2_updated}")).await;
        assert_eq!(versions(&h), [3, 2], "{path} _since={v2_updated}");
        let h = history(s, &format!("{path}?_since={v3_updated}")).await;
        assert_eq!(versions(&h), [3], "{path} _since={v3_updated}");
        let h = history(s, &format!("{path}?_since=2000-01-01")).await;
        assert_eq!(versions(&h), [3, 2, 1], "{path}");
        let h = history(s, &format!("{path}?_since=2999-01-01T00:00:00Z")).await;
        assert_eq!(versions(&h), Vec::<u32>::new(), "{path}");
    }
    // _since is kept in the next link.
    let (sizes, seen) =
        follow_pages(s, &format!("Patient/hs/_history?_since={between}&_count=1")).await;
    assert_eq!(sizes, [1, 1]);
    assert_eq!(
        seen,
        [("Patient/hs".to_owned(), 3), ("Patient/hs".to_owned(), 2)]
    );
}

async fn history_at(s: &TestServer) {
    expect(
        &put(s, "Patient", "ha", json!({"birthDate": "2001-01-01"})).await,
        201,
    );
    let t1 = instant_between_writes().await;
    expect(
        &put(s, "Patient", "ha", json!({"birthDate": "2002-01-01"})).await,
        200,
    );
    let t2 = instant_between_writes().await;
    expect(
        &put(s, "Patient", "ha", json!({"birthDate": "2003-01-01"})).await,
        200,
    );
    let t3 = instant_between_writes().await;

    let h = history(s, &format!("Patient/ha/_history?_at={t1}")).await;
    assert_eq!(versions(&h), [1], "_at={t1}");
    assert_eq!(entries(&h)[0]["resource"]["birthDate"], "2001-01-01");
    let h = history(s, &format!("Patient/ha/_history?_at={t2}")).await;
    assert_eq!(versions(&h), [2], "_at={t2}");
    let h = history(s, &format!("Patient/ha/_history?_at={t3}")).await;
    assert_eq!(versions(&h), [3], "_at={t3}");
    let h = history(s, &format!("_history?_at={t2}")).await;
    assert_eq!(versions(&h), [2], "system _at={t2}");
    let h = history(s, "Patient/ha/_history?_at=1999").await;
    assert_eq!(versions(&h), Vec::<u32>::new());
}

async fn history_invalid_parameters_are_400(s: &TestServer) {
    expect(&put(s, "Patient", "hi", json!({})).await, 201);
    for query in [
        "_since=yesterday",
        "_since=2024-13-01",
        "_since=",
        "_at=2024-02-30",
        "_at=soon",
        "_count=abc",
        "_count=-1",
    ] {
        for path in ["Patient/hi/_history", "Patient/_history", "_history"] {
            expect_outcome(&s.get(&format!("{path}?{query}")).await, 400);
        }
    }
}

async fn history_unknown_is_404(s: &TestServer) {
    expect_outcome(&s.get("Patient/nobody/_history").await, 404);
    expect_outcome(&s.get("Foo/_history").await, 404);
    expect_outcome(&s.get("Foo/x/_history").await, 404);
    // A deleted resource still has a history.
    expect(&put(s, "Patient", "del", json!({})).await, 201);
    expect(&s.delete("Patient/del").await, 204);
    assert_eq!(history_len(s, "Patient/del/_history").await, 2);
}

async fn history_paging_is_stable_under_writes(s: &TestServer) {
    expect(&put(s, "Patient", "st", json!({})).await, 201);
    for _ in 0..4 {
        expect(&put(s, "Patient", "st", json!({"active": true})).await, 200);
    }
    let first = s.get("Patient/_history?_count=2").await;
    expect(&first, 200);
    let first = first.json();
    assert_eq!(versions(&first), [5, 4]);
    // New writes after the first page neither shift nor repeat the later pages.
    expect(
        &put(s, "Patient", "st", json!({"active": false})).await,
        200,
    );
    expect(&put(s, "Patient", "other", json!({})).await, 201);
    let next = first["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "next")
        .expect("a next link")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let (sizes, seen) = follow_pages(s, &next).await;
    assert_eq!(sizes, [2, 1]);
    let seen: Vec<u32> = seen.into_iter().map(|(_, v)| v).collect();
    assert_eq!(seen, [3, 2, 1]);
}
