//! `$everything` (`GET Patient/[id]/$everything`, `GET Patient/$everything`): the
//! patient first, every document of its compartment, what they reference, `_type`,
//! `_since`, paging through every page, and the errors.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{entries_with_mode, obs, put, reference, type_id};
use crate::common::issuer::{Issuer, settings};
use crate::common::{Backend, TestServer, TestSettings, expect, expect_outcome};

both_stores!(everything_of_one_patient, everything_of_every_patient);

async fn fixture(s: &TestServer) {
    put(
        s,
        "Practitioner",
        "doc",
        json!({"name": [{"family": "Doc"}]}),
    )
    .await;
    put(s, "Organization", "org", json!({"name": "Clinic"})).await;
    put(
        s,
        "Patient",
        "p1",
        json!({"managingOrganization": reference("Organization/org")}),
    )
    .await;
    put(s, "Patient", "p2", json!({})).await;
    put(s, "Patient", "lonely", json!({})).await;
    for i in 0..5 {
        put(
            s,
            "Observation",
            &format!("o{i}"),
            obs(json!({"subject": reference("Patient/p1")})),
        )
        .await;
    }
    put(
        s,
        "Observation",
        "other",
        obs(json!({"subject": reference("Patient/p2")})),
    )
    .await;
    put(
        s,
        "Encounter",
        "e1",
        json!({"status": "finished", "class": {"code": "AMB"}, "subject": reference("Patient/p1"),
               "participant": [{"individual": reference("Practitioner/doc")}]}),
    )
    .await;
    put(
        s,
        "Condition",
        "c1",
        json!({"subject": reference("Patient/p1")}),
    )
    .await;
}

/// Every entry of every page, following `next`, as `(mode, Type/id)`.
async fn all_pages(s: &TestServer, first: &str) -> (Vec<(String, String)>, usize) {
    let mut out = Vec::new();
    let mut url = first.to_owned();
    let mut pages = 0;
    loop {
        let r = s.get(&url).await;
        expect(&r, 200);
        let b = r.json();
        assert_eq!(b["type"], "searchset");
        pages += 1;
        for e in b["entry"].as_array().into_iter().flatten() {
            out.push((
                e["search"]["mode"].as_str().unwrap().to_owned(),
                type_id(&e["resource"]),
            ));
        }
        let next = b["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next");
        match next {
            Some(l) => url = l["url"].as_str().unwrap().to_owned(),
            None => return (out, pages),
        }
        assert!(pages < 50);
    }
}

fn matches(entries: &[(String, String)]) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|(m, _)| m == "match")
        .map(|(_, r)| r.clone())
        .collect()
}

async fn everything_of_one_patient(s: &TestServer) {
    fixture(s).await;
    let r = s.get("Patient/p1/$everything").await;
    expect(&r, 200);
    let b = r.json();
    let first = &b["entry"][0];
    assert_eq!(
        (
            first["search"]["mode"].as_str(),
            type_id(&first["resource"])
        ),
        (Some("match"), "Patient/p1".into())
    );
    let in_compartment: BTreeSet<String> = [
        "Patient/p1",
        "Observation/o0",
        "Observation/o1",
        "Observation/o2",
        "Observation/o3",
        "Observation/o4",
        "Encounter/e1",
        "Condition/c1",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let got: BTreeSet<String> = entries_with_mode(&b, "match").iter().map(type_id).collect();
    assert_eq!(got, in_compartment);
    assert_eq!(b["total"], 8);
    // What they reference, outside the compartment.
    let included: BTreeSet<String> = entries_with_mode(&b, "include")
        .iter()
        .map(type_id)
        .collect();
    assert_eq!(
        included,
        ["Organization/org", "Practitioner/doc"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    // Paging: three at a time, every match exactly once, the patient first.
    let (entries, pages) = all_pages(s, "Patient/p1/$everything?_count=3").await;
    assert_eq!(pages, 3);
    let listed: Vec<&String> = entries
        .iter()
        .filter(|(m, _)| m == "match")
        .map(|(_, r)| r)
        .collect();
    assert_eq!(listed.len(), 8, "{entries:?}");
    assert_eq!(listed[0], "Patient/p1");
    assert_eq!(matches(&entries), in_compartment);
    // _type.
    let (entries, _) = all_pages(s, "Patient/p1/$everything?_type=Encounter,Condition").await;
    assert_eq!(
        matches(&entries),
        ["Condition/c1", "Encounter/e1"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    // _since: only what changed from then on (the patient too).
    let since = b["entry"][0]["resource"]["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .to_owned();
    put(
        s,
        "Condition",
        "c1",
        json!({"subject": reference("Patient/p1"), "note": [{"text": "later"}]}),
    )
    .await;
    let after: Value = s.get("Condition/c1").await.json();
    let changed = after["meta"]["lastUpdated"]
        .as_str()
        .unwrap()
        .replace('+', "%2B");
    let (entries, _) = all_pages(s, &format!("Patient/p1/$everything?_since={changed}")).await;
    assert_eq!(
        matches(&entries),
        ["Condition/c1"].into_iter().map(str::to_owned).collect()
    );
    let (entries, _) = all_pages(
        s,
        &format!(
            "Patient/p1/$everything?_since={}",
            since.replace('+', "%2B")
        ),
    )
    .await;
    assert!(matches(&entries).contains("Patient/p1"));
    // Errors.
    expect_outcome(&s.get("Patient/nobody/$everything").await, 404);
    assert!(
        expect_outcome(
            &s.get("Patient/p1/$everything?_type=Organization").await,
            400
        )
        .contains("compartment")
    );
    assert!(
        expect_outcome(&s.get("Patient/p1/$everything?_since=yesterday").await, 400)
            .contains("_since")
    );
    let strict = s
        .send(
            "GET",
            "Patient/p1/$everything?code=x",
            &[("prefer", "handling=strict")],
            None,
        )
        .await;
    assert!(expect_outcome(&strict, 400).contains("$everything"));
    expect_outcome(&s.get("Observation/o1/$everything").await, 404);
    // Encounter's compartment: the encounter, and what names it.
    put(
        s,
        "Observation",
        "during",
        obs(json!({"subject": reference("Patient/p2"), "encounter": reference("Encounter/e1")})),
    )
    .await;
    let (entries, _) = all_pages(s, "Encounter/e1/$everything").await;
    assert_eq!(entries[0], ("match".to_owned(), "Encounter/e1".to_owned()));
    assert_eq!(
        matches(&entries),
        ["Encounter/e1", "Observation/during"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    // Declared in the CapabilityStatement.
    let cs = s.get("metadata").await.json();
    let patient = cs["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Patient")
        .unwrap();
    assert_eq!(patient["operation"][0]["name"], "everything");
}

async fn everything_of_every_patient(s: &TestServer) {
    fixture(s).await;
    let (entries, _) = all_pages(s, "Patient/$everything?_count=4").await;
    let expected: BTreeSet<String> = [
        "Patient/p1",
        "Patient/p2",
        "Patient/lonely",
        "Observation/o0",
        "Observation/o1",
        "Observation/o2",
        "Observation/o3",
        "Observation/o4",
        "Observation/other",
        "Encounter/e1",
        "Condition/c1",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(matches(&entries), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_token_gets_its_own_everything_only() {
    let issuer = Issuer::start().await;
    let open = TestServer::start(Backend::Sqlite).await;
    let s = TestServer::start_with(
        Backend::Sqlite,
        TestSettings {
            auth: Some(settings(&issuer)),
            ..Default::default()
        },
    )
    .await;
    // The fixture, written with a system token.
    let admin = format!("Bearer {}", issuer.token("system/*.cruds", None));
    fixture(&open).await;
    let (entries, _) = all_pages(&open, "Patient/$everything").await;
    for (_, r) in entries {
        let body = open.get(&r).await.json();
        let put = s
            .send(
                "PUT",
                &r,
                &[("authorization", &admin)],
                Some(&body.to_string()),
            )
            .await;
        assert!(put.status.is_success(), "{r}");
    }
    let get = |token: String, path: &'static str| {
        let s = &s;
        async move {
            s.send(
                "GET",
                path,
                &[("authorization", &format!("Bearer {token}"))],
                None,
            )
            .await
        }
    };
    let p1 = issuer.token("patient/*.read", Some("p1"));
    let r = get(p1.clone(), "Patient/p1/$everything").await;
    expect(&r, 200);
    let got: BTreeSet<String> = entries_with_mode(&r.json(), "match")
        .iter()
        .map(type_id)
        .collect();
    assert_eq!(got.len(), 8, "{got:?}");
    // The type level is confined to the token's patient, the patient first.
    let r = get(p1, "Patient/$everything").await;
    expect(&r, 200);
    let b = r.json();
    assert_eq!(type_id(&b["entry"][0]["resource"]), "Patient/p1");
    let got: BTreeSet<String> = entries_with_mode(&b, "match").iter().map(type_id).collect();
    assert_eq!(got.len(), 8, "{got:?}");
    let p2 = issuer.token("patient/*.read", Some("p2"));
    expect_outcome(&get(p2, "Patient/p1/$everything").await, 403);
}
