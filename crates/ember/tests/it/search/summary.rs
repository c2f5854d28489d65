//! `_summary` and `_elements`.

use serde_json::{Value, json};

use super::{entries_with_mode, put, search};
use crate::common::TestServer;

both_stores!(summary_and_elements);

const SUBSETTED_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

fn has_subsetted(r: &Value) -> bool {
    r["meta"]["tag"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| t["code"] == "SUBSETTED" && t["system"] == SUBSETTED_SYSTEM)
}

async fn summary_and_elements(s: &TestServer) {
    put(
        s,
        "Patient",
        "sm1",
        json!({
            "meta": {"tag": [{"system": "http://ex.org/tags", "code": "keep"}]},
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Summary</div>"},
            "name": [{"family": "Summary"}],
            "gender": "female",
            "birthDate": "1990-01-01",
            "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
            "contact": [{"name": {"family": "Kin"}}]
        }),
    )
    .await;

    // (query, elements that must be there, elements that must not); every result is
    // marked SUBSETTED. Summary elements of Patient: name, gender, birthDate (not photo,
    // contact, text).
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "_summary=true",
            &["resourceType", "id", "meta", "name", "gender", "birthDate"],
            &["photo", "contact"],
        ),
        (
            "_summary=data",
            &["id", "meta", "name", "gender", "photo", "contact"],
            &["text"],
        ),
        (
            "_summary=text",
            &["id", "meta", "text"],
            &["name", "gender", "photo"],
        ),
        (
            "_elements=id,name",
            &["resourceType", "id", "meta", "name"],
            &["gender", "birthDate", "photo", "contact", "text"],
        ),
        ("_elements=gender", &["id", "gender"], &["name", "photo"]),
        (
            "_elements=name,birthDate",
            &["name", "birthDate"],
            &["gender", "photo"],
        ),
    ];
    let mut problems = Vec::new();
    for (params, present, absent) in cases {
        let b = search(s, &format!("Patient?_id=sm1&{params}")).await;
        let ms = entries_with_mode(&b, "match");
        let Some(r) = ms.first().filter(|_| ms.len() == 1) else {
            problems.push(format!("{params}: not one match: {b}"));
            continue;
        };
        let missing: Vec<&&str> = present.iter().filter(|k| r.get(**k).is_none()).collect();
        let extra: Vec<&&str> = absent.iter().filter(|k| r.get(**k).is_some()).collect();
        if !missing.is_empty() || !extra.is_empty() || !has_subsetted(r) {
            problems.push(format!(
                "{params}: missing {missing:?}, should be absent {extra:?}, SUBSETTED {}: {r}",
                has_subsetted(r)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The stored resource is untouched.
    let stored = s.get("Patient/sm1").await.json();
    assert!(stored.get("photo").is_some());
    assert!(!has_subsetted(&stored), "{stored}");
    assert_eq!(stored["meta"]["tag"].as_array().unwrap().len(), 1);
}
