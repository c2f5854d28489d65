//! Search: bytes → query string → `form_urlencoded` pairs → the repository's search
//! parsing, SQL building and execution on an SQLite store holding a few resources
//! (`explain_search`, then `search`). Errors are expected; panics are bugs, and so is
//! an error from the database itself (a 500 for what is a client's mistake).
//!
//! The first byte selects how the rest is used:
//! - bits 0-1: the scope: `Observation`, `Patient`, the whole system, or
//!   `Patient/p1/Observation`;
//! - bit 2: strict instead of lenient handling;
//! - bits 3-4: how the bytes become pairs: parsed as they are; as lossy UTF-8 text;
//!   split on `&` and the first `=` with each part percent-encoded again (so `%`, `+`
//!   and invalid UTF-8 reach the parser encoded); or the whole input as the value of
//!   one `code` parameter;
//! - bit 5: under a caller's grants (a compartment and a granular criterion).

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ember_repo::access::{self, Access, Narrowing, Need, Reach};
use ember_repo::{Handling, Limits, Repo, RepoError, SearchScope};
use ember_store::{StoreError, StoreOptions};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const BASE: &str = "http://ember.test/fhir";

struct Ctx {
    rt: tokio::runtime::Runtime,
    repo: Repo,
}

fn ctx() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        // A fresh database per process, under $TMPDIR (scripts/fuzz.sh points that
        // at a folder it removes afterwards).
        let dir = std::env::temp_dir().join(format!("ember-fuzz-search-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let url = format!("sqlite://{}", dir.join("fuzz.db").display());
        let repo = rt.block_on(async {
            let store = ember_store::open(&StoreOptions {
                url,
                pool_size: 2,
                acquire_timeout: Duration::from_secs(10),
            })
            .await
            .expect("opening the SQLite store");
            let repo = Repo::new(store, Limits::default());
            seed(&repo).await;
            repo.load_search_params()
                .await
                .expect("loading search parameters");
            // The fixture is what makes searches match: check it once.
            let pairs = [(
                "fuzz-value".to_owned(),
                "gt5|http://unitsofmeasure.org|mg".to_owned(),
            )];
            let found = repo.find("Observation", &pairs).await;
            assert_eq!(found.map(|v| v.len()).ok(), Some(1), "the seeded data");
            repo
        });
        Ctx { rt, repo }
    })
}

/// A few resources, so that searches match, sort, include and page.
async fn seed(repo: &Repo) {
    // The SearchParameter first, so that the Observations are indexed with it.
    let resources = [
        json!({"resourceType": "SearchParameter", "id": "sp1",
            "url": "http://ember.test/SearchParameter/fuzz-value",
            "name": "fuzz-value", "status": "active", "description": "fuzzing",
            "code": "fuzz-value", "base": ["Observation"], "type": "quantity",
            "expression": "Observation.value.as(Quantity)"}),
        json!({"resourceType": "Patient", "id": "p1", "active": true, "gender": "female",
            "birthDate": "1970-01-01", "name": [{"family": "Hansen", "given": ["Anne"]}],
            "identifier": [{"system": "urn:oid:1.2.208.176.1.2", "value": "0101701234"}],
            "managingOrganization": {"reference": "Organization/o1"}}),
        json!({"resourceType": "Organization", "id": "o1", "name": "Clinic"}),
        json!({"resourceType": "Observation", "id": "obs1", "status": "final",
            "category": [{"coding": [{"system":
                "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-05-01T09:30:00Z",
            "valueQuantity": {"value": 72, "unit": "/min",
                "system": "http://unitsofmeasure.org", "code": "/min"}}),
        json!({"resourceType": "Observation", "id": "obs2", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}],
                "text": "Glucose"},
            "subject": {"reference": "Patient/p1"},
            "effectiveDateTime": "2024-05",
            "valueQuantity": {"value": 5.5, "unit": "mg",
                "system": "http://unitsofmeasure.org", "code": "mg"}}),
    ];
    for resource in resources {
        let res_type = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let id = resource["id"].as_str().unwrap_or_default().to_owned();
        if let Err(e) = repo.update(&res_type, &id, resource, None).await {
            eprintln!("search_query: seeding {res_type}/{id} failed: {e}");
        }
    }
}

/// A caller allowed to search everything in Patient p1's compartment, and only
/// vital signs among Observations.
struct Grants;

impl Access for Grants {
    fn reach(&self, _res_type: &str, need: Need) -> Reach {
        match need {
            Need::Read | Need::Search => Reach::Some,
            _ => Reach::None("read only".into()),
        }
    }
    fn narrowing(&self, res_type: &str) -> Narrowing {
        Narrowing {
            compartment: Some(("Patient".into(), "p1".into())),
            criteria: match res_type {
                "Observation" => vec![vec![("category".into(), "vital-signs".into())]],
                _ => Vec::new(),
            },
        }
    }
    fn may_read(&self, _res_type: &str, _resource: &Value) -> bool {
        true
    }
    fn may_write(&self, _res_type: &str, _need: Need, _resource: &Value) -> bool {
        false
    }
}

fn pairs(mode: u8, rest: &[u8]) -> Vec<(String, String)> {
    match mode {
        0 => form_urlencoded::parse(rest).into_owned().collect(),
        1 => {
            let text = String::from_utf8_lossy(rest);
            form_urlencoded::parse(text.as_bytes())
                .into_owned()
                .collect()
        }
        2 => {
            let mut query = String::new();
            for part in rest.split(|b| *b == b'&') {
                let (name, value) = match part.iter().position(|b| *b == b'=') {
                    Some(at) => (&part[..at], &part[at + 1..]),
                    None => (part, &[][..]),
                };
                if !query.is_empty() {
                    query.push('&');
                }
                query.extend(form_urlencoded::byte_serialize(name));
                query.push('=');
                query.extend(form_urlencoded::byte_serialize(value));
            }
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        }
        _ => vec![("code".into(), String::from_utf8_lossy(rest).into_owned())],
    }
}

/// Errors are answers to the client; the database failing is not.
fn check(what: &str, result: &Result<String, RepoError>, pairs: &[(String, String)]) {
    if let Err(RepoError::Store(e @ StoreError::Backend(_))) = result {
        panic!("{what} failed in the database: {e}\npairs: {pairs:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let scope = match (selector & 3, selector & 64 != 0) {
        (0, false) => SearchScope::Type("Observation"),
        (1, false) => SearchScope::Type("Patient"),
        (2, false) => SearchScope::System,
        (_, false) => SearchScope::Compartment {
            compartment: "Patient",
            id: "p1",
            res_type: "Observation",
        },
        (0 | 1, true) => SearchScope::Everything {
            compartment: "Patient",
            id: Some("p1"),
        },
        (_, true) => SearchScope::Everything {
            compartment: "Patient",
            id: None,
        },
    };
    let handling = if selector & 4 == 0 {
        Handling::Lenient
    } else {
        Handling::Strict
    };
    let pairs = pairs((selector >> 3) & 3, rest);
    let ctx = ctx();
    let repo = &ctx.repo;
    let work = async {
        let explained = repo.explain_search(scope, &pairs, handling, "").await;
        check("explain_search", &explained, &pairs);
        let endpoint = match scope {
            SearchScope::Type(t) => format!("{BASE}/{t}"),
            SearchScope::System => BASE.to_owned(),
            SearchScope::Compartment { .. } => format!("{BASE}/Patient/p1/Observation"),
            SearchScope::Everything { id: Some(_), .. } => format!("{BASE}/Patient/p1/$everything"),
            SearchScope::Everything { id: None, .. } => format!("{BASE}/Patient/$everything"),
        };
        let found = repo.search(scope, &pairs, handling, BASE, &endpoint).await;
        check("search", &found, &pairs);
        if let Ok(bundle) = found {
            let bundle: Value = serde_json::from_str(&bundle).expect("a search returns JSON");
            assert_eq!(bundle["resourceType"], "Bundle");
        }
    };
    if selector & 32 == 0 {
        ctx.rt.block_on(work);
    } else {
        ctx.rt.block_on(access::with_access(Arc::new(Grants), work));
    }
});
