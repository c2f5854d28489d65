//! Query generation, answer checks, and whole runs against an in-process mock server
//! that answers from the same [`Generator`].

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Mutex;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::*;

/// The deep patients of the tests: small, so the mock answers quickly.
const DEEP: [u64; 2] = [300, 1200];

fn generator(patients: u64, deep: &[u64]) -> Generator {
    Generator {
        seed: 42,
        patients,
        days: 365,
        deep: deep.to_vec(),
    }
}

fn pop() -> Population {
    Population::new(generator(25, &DEEP))
}

fn queries(kind: QueryKind, seed: u64, worker: usize, n: usize) -> Vec<Query> {
    let pop = pop();
    let mut rng = Rng::for_worker(seed, kind.salt(), worker);
    (0..n).map(|_| generate(kind, &mut rng, &pop)).collect()
}

#[test]
fn generation_is_deterministic_and_seeded() {
    for kind in QueryKind::ALL {
        let a = queries(kind, 7, 3, 40);
        assert_eq!(a, queries(kind, 7, 3, 40), "{kind:?}");
        if matches!(kind, QueryKind::HeavyLatestAll | QueryKind::Everything) {
            // One patient, one query.
            assert!(a.iter().all(|q| q == &a[0]));
            continue;
        }
        if kind != QueryKind::CodeCount {
            assert_ne!(a, queries(kind, 8, 3, 40), "{kind:?}");
            assert_ne!(a, queries(kind, 7, 4, 40), "{kind:?}");
        }
        let distinct: std::collections::HashSet<&str> = a.iter().map(|q| q.path.as_str()).collect();
        assert!(distinct.len() > 1, "{kind:?} always sends the same query");
    }
}

#[test]
fn queries_cover_the_population_and_name_its_resources() {
    let pop = pop();
    let mut seen = std::collections::HashSet::new();
    for q in queries(QueryKind::Identifier, 1, 0, 500) {
        let Expect::Patients { ids } = &q.expect else {
            panic!("{q:?}")
        };
        seen.insert(ids[0].clone());
        let n: u64 = ids[0].rsplit('-').next().unwrap().parse().unwrap();
        let f = pop.g.patient_facts(n);
        assert_eq!(
            q.path,
            format!(
                "Patient?identifier=urn:oid:1.2.208.176.1.2%7C{}",
                f.identifier_value
            )
        );
    }
    assert_eq!(seen.len(), 25, "every patient is drawn");

    for q in queries(QueryKind::SubjectCodeDate, 1, 0, 50) {
        let Expect::Observations {
            patient,
            loinc,
            from_day: Some(day),
            matches,
            total,
            include_patient: false,
        } = &q.expect
        else {
            panic!("{q:?}")
        };
        assert_eq!(
            q.path,
            format!(
                "Observation?subject=Patient/{patient}&code=http://loinc.org%7C{loinc}&date=ge{day}&_sort=-date&_count=50"
            )
        );
        assert_eq!(*matches, (*total).min(50));
        assert!(*total >= 1);
    }
    // Family names are encoded as UTF-8.
    let q = queries(QueryKind::Name, 1, 0, 300)
        .into_iter()
        .find(|q| q.path.contains('%'))
        .expect("a name with ø");
    assert!(q.path.contains("%C3%B8"), "{}", q.path);
    let q = &queries(QueryKind::HasCareTeam, 1, 0, 1)[0];
    assert!(
        q.path
            .starts_with("Patient?_has:CareTeam:subject:participant=Practitioner/dataset-42-prac-")
    );
    let Expect::Patients { ids } = &q.expect else {
        panic!()
    };
    assert!(ids.len() == 20 || ids.len() == 5, "{ids:?}");
    let q = &queries(QueryKind::CodeCount, 1, 0, 1)[0];
    assert!(matches!(q.expect, Expect::Count { at_least } if at_least >= 25 * 52));
    // Twenty distinct Observations of the data set, all asked for.
    let q = &queries(QueryKind::Ids, 1, 0, 1)[0];
    let Expect::ObservationIds { ids } = &q.expect else {
        panic!("{q:?}")
    };
    assert_eq!(ids.len(), 20);
    assert!(
        ids.iter().all(|i| i.starts_with("dataset-42-obs-")),
        "{ids:?}"
    );
    assert_eq!(
        q.path,
        format!("Observation?_id={}&_count=20", ids.join(","))
    );
}

/// The patient, code and ids of an `Expect::Ordered` query.
fn ordered(q: &Query) -> (&str, Option<&'static str>, &[String], u64) {
    let Expect::Ordered {
        patient,
        loinc,
        ids,
        total,
    } = &q.expect
    else {
        panic!("{q:?}")
    };
    (patient, *loinc, ids, *total)
}

/// `k` of an Observation id.
fn k_of(id: &str) -> u64 {
    id.rsplit('-').next().unwrap().parse().unwrap()
}

#[test]
fn depth_queries_expect_the_newest_ids_in_order() {
    let pop = pop();
    let loincs: Vec<&str> = Generator::measures().iter().map(|m| m.loinc).collect();
    let mut patients = HashSet::new();
    for q in queries(QueryKind::LatestCode, 1, 0, 60) {
        let (patient, loinc, ids, total) = ordered(&q);
        let loinc = loinc.unwrap();
        assert!(loincs.contains(&loinc));
        assert!(patient.starts_with("dataset-42-pat-") && !patient.contains("deep"));
        assert_eq!(
            q.path,
            format!(
                "Observation?subject=Patient/{patient}&code=http://loinc.org%7C{loinc}&_sort=-date&_count=50"
            )
        );
        patients.insert(patient.to_owned());
        // A year of a home measure: 52 to 730 readings, the page holds the newest 50.
        assert!((52..=730).contains(&total), "{total}");
        assert_eq!(ids.len(), 50);
        let ks: Vec<u64> = ids.iter().map(|id| k_of(id)).collect();
        assert!(ks.windows(2).all(|w| w[0] > w[1]), "{ks:?}");
    }
    assert!(patients.len() > 10);

    // The heavy patient's newest Observations are the last ids of its timeline.
    let q = &queries(QueryKind::HeavyLatestAll, 1, 0, 1)[0];
    let (patient, loinc, ids, total) = ordered(q);
    assert_eq!(patient, "dataset-42-pat-deep-1200");
    assert_eq!(loinc, None);
    assert_eq!(total, 1200);
    assert_eq!(ids[0], "dataset-42-obs-deep-1200-1199");
    assert_eq!(ids[49], "dataset-42-obs-deep-1200-1150");
    assert_eq!(
        q.path,
        "Observation?subject=Patient/dataset-42-pat-deep-1200&_sort=-date&_count=50"
    );

    for q in queries(QueryKind::HeavyWindowCode, 1, 0, 40)
        .into_iter()
        .chain(queries(QueryKind::WindowCode, 1, 0, 40))
    {
        let (patient, _, ids, total) = ordered(&q);
        let date = |p: &str| -> String {
            let at = q.path.find(p).unwrap() + p.len();
            q.path[at..at + 10].to_owned()
        };
        let (from, to) = (date("&date=ge"), date("&date=lt"));
        assert!(from < to, "{}", q.path);
        assert_eq!(ids.len() as u64, total.min(50));
        if q.kind == QueryKind::HeavyWindowCode {
            assert_eq!(patient, "dataset-42-pat-deep-1200");
        }
        // Every expected Observation is inside the window, on the patient's timeline.
        let g = &pop.g;
        let key = g
            .patient_keys()
            .find(|k| g.patient_id_of(*k) == patient)
            .unwrap();
        let timeline = g.timeline(key);
        for id in ids {
            let eff = timeline[k_of(id) as usize].effective();
            assert!(
                eff.as_str() >= from.as_str() && eff.as_str() < to.as_str(),
                "{eff}"
            );
        }
    }
    for kind in [QueryKind::WindowCode, QueryKind::HeavyWindowCode] {
        assert!(queries(kind, 2, 0, 200).iter().all(|q| ordered(q).3 > 0));
    }

    // depth: latest-code on the deep patients.
    let seen: HashSet<String> = queries(QueryKind::Depth, 1, 0, 40)
        .iter()
        .map(|q| ordered(q).0.to_owned())
        .collect();
    assert_eq!(
        seen,
        HashSet::from([
            "dataset-42-pat-deep-300".to_owned(),
            "dataset-42-pat-deep-1200".to_owned()
        ])
    );
}

// ---- A mock FHIR server that answers the queries from the generator. ----

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flaw {
    None,
    /// Every search answers 501.
    NoSearch,
    /// `Patient?name=` also returns a Patient of another name.
    WrongName,
    /// `_sort=-date` sorts oldest first.
    OldestFirst,
}

struct Mock {
    g: Generator,
    flaw: Flaw,
    /// Patients by the label of their ids (`7`, `deep-300`).
    keys: HashMap<String, PatientKey>,
    observations: Mutex<HashMap<PatientKey, Arc<Vec<Value>>>>,
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn searchset(entries: Vec<Value>, total: Option<usize>) -> Value {
    let mut b = json!({"resourceType": "Bundle", "type": "searchset", "entry": entries});
    if let Some(t) = total {
        b["total"] = json!(t);
    }
    b
}

fn entry(resource: &Value, mode: &str) -> Value {
    json!({"resource": resource, "search": {"mode": mode}})
}

impl Mock {
    fn new(g: Generator, flaw: Flaw) -> Self {
        let keys = g.patient_keys().map(|k| (k.label(), k)).collect();
        Self {
            g,
            flaw,
            keys,
            observations: Mutex::new(HashMap::new()),
        }
    }

    fn patient_key(&self, id: &str) -> Option<PatientKey> {
        let label = id.strip_prefix(&format!("dataset-{}-pat-", self.g.seed))?;
        self.keys.get(label).copied()
    }

    fn patient_index(&self, id: &str) -> Option<u64> {
        match self.patient_key(id)? {
            PatientKey::Ordinary(n) => Some(n),
            PatientKey::Deep(_) => None,
        }
    }

    fn patient(&self, key: PatientKey) -> Value {
        self.g.patient_group(key)[0].resource.clone()
    }

    fn observations(&self, key: PatientKey) -> Arc<Vec<Value>> {
        let mut cache = self.observations.lock().unwrap();
        cache
            .entry(key)
            .or_insert_with(|| {
                Arc::new(
                    self.g
                        .observations(key)
                        .into_iter()
                        .map(|o| o.resource)
                        .collect(),
                )
            })
            .clone()
    }

    fn handle(&self, path: &str, query: Option<&str>) -> (u16, Value) {
        let rest = path.trim_start_matches("/fhir/");
        let params: Vec<(String, String)> = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let segs: Vec<&str> = rest.split('/').collect();
        let not_found = (404, json!({"resourceType": "OperationOutcome"}));
        match segs.as_slice() {
            ["metadata"] => (200, json!({"resourceType": "CapabilityStatement"})),
            ["Patient", id] => match self.patient_key(id) {
                Some(key) => (200, self.patient(key)),
                None => not_found,
            },
            ["Observation", id] => {
                let known = id
                    .strip_prefix(&format!("dataset-{}-obs-", self.g.seed))
                    .and_then(|r| r.rsplit_once('-'))
                    .and_then(|(label, k)| Some((*self.keys.get(label)?, k.parse::<u64>().ok()?)))
                    .is_some_and(|(key, k)| k < self.g.observation_count(key));
                if known {
                    (200, json!({"resourceType": "Observation", "id": id}))
                } else {
                    not_found
                }
            }
            _ if self.flaw == Flaw::NoSearch => (501, json!({"resourceType": "OperationOutcome"})),
            ["Patient", id, "$everything"] => {
                let Some(key) = self.patient_key(id) else {
                    return not_found;
                };
                let count: usize = param("_count").unwrap().parse().unwrap();
                let page: usize = param("_page").map_or(0, |p| p.parse().unwrap());
                // Other types shape elements differently: a CareTeam's name is a string.
                let team = json!({"resourceType": "CareTeam", "id": format!("team-{id}"),
                    "name": "Telemonitoring team", "subject": {"reference": format!("Patient/{id}")}});
                let all: Vec<Value> = std::iter::once(self.patient(key))
                    .chain(std::iter::once(team))
                    .chain(self.observations(key).iter().cloned())
                    .collect();
                let mut entries: Vec<Value> = all
                    .iter()
                    .skip(page * count)
                    .take(count)
                    .map(|r| entry(r, "match"))
                    .collect();
                if page > 0 {
                    // The Observations' subject, included again on each later page.
                    entries.push(entry(&all[0], "include"));
                }
                let mut bundle = searchset(entries, None);
                if (page + 1) * count < all.len() {
                    let next = format!(
                        "/fhir/Patient/{id}/$everything?_count={count}&_page={}",
                        page + 1
                    );
                    bundle["link"] = json!([{"relation": "next", "url": next}]);
                }
                (200, bundle)
            }
            ["Observation"] => {
                let code = param("code").map(|c| c.split('|').nth(1).unwrap().to_owned());
                if param("_summary") == Some("count") {
                    let total: usize = self
                        .g
                        .patient_keys()
                        .map(|k| {
                            self.g
                                .timeline(k)
                                .iter()
                                .filter(|r| Some(r.loinc()) == code.as_deref())
                                .count()
                        })
                        .sum();
                    return (200, searchset(vec![], Some(total)));
                }
                if let Some(ids) = param("_id") {
                    let ids: Vec<&str> = ids.split(',').collect();
                    let entries: Vec<Value> = self
                        .g
                        .patient_keys()
                        .flat_map(|k| self.observations(k).to_vec())
                        .filter(|o| ids.contains(&o["id"].as_str().unwrap()))
                        .map(|o| entry(&o, "match"))
                        .collect();
                    let total = entries.len();
                    return (200, searchset(entries, Some(total)));
                }
                let id = param("subject").unwrap().trim_start_matches("Patient/");
                let key = self.patient_key(id).unwrap();
                let dates: Vec<&str> = params
                    .iter()
                    .filter(|(k, _)| k == "date")
                    .map(|(_, v)| v.as_str())
                    .collect();
                let all = self.observations(key);
                let mut hits: Vec<&Value> = all
                    .iter()
                    .filter(|o| {
                        code.as_deref()
                            .is_none_or(|c| o["code"]["coding"][0]["code"] == c)
                    })
                    .filter(|o| {
                        let eff = o["effectiveDateTime"].as_str().unwrap();
                        dates.iter().all(|d| match d.split_at(2) {
                            ("ge", day) => eff >= day,
                            ("lt", day) => eff < day,
                            _ => panic!("date={d}"),
                        })
                    })
                    .collect();
                if param("_sort") == Some("-date") {
                    hits.sort_by(|a, b| {
                        b["effectiveDateTime"]
                            .as_str()
                            .cmp(&a["effectiveDateTime"].as_str())
                    });
                    if self.flaw == Flaw::OldestFirst {
                        hits.reverse();
                    }
                }
                let total = hits.len();
                let count: usize = param("_count").unwrap().parse().unwrap();
                let mut entries: Vec<Value> = hits
                    .into_iter()
                    .take(count)
                    .map(|o| entry(o, "match"))
                    .collect();
                if param("_include").is_some() {
                    entries.push(entry(&self.patient(key), "include"));
                }
                (200, searchset(entries, Some(total)))
            }
            ["Patient"] => {
                let ns: Vec<u64> = if let Some(name) = param("name") {
                    let mut ns: Vec<u64> = (0..self.g.patients)
                        .filter(|n| self.g.patient_facts(*n).family.starts_with(name))
                        .collect();
                    if self.flaw == Flaw::WrongName {
                        ns.extend(
                            (0..self.g.patients).find(|n| self.g.patient_facts(*n).family != name),
                        );
                    }
                    ns
                } else if let Some(ident) = param("identifier") {
                    let value = ident.split('|').nth(1).unwrap();
                    (0..self.g.patients)
                        .filter(|n| self.g.patient_facts(*n).identifier_value == value)
                        .collect()
                } else if let Some(id) = param("_id") {
                    assert!(param("_has:Observation:subject:code").is_some());
                    self.patient_index(id).into_iter().collect()
                } else if let Some(prac) = param("_has:CareTeam:subject:participant") {
                    (0..self.g.patients)
                        .filter(|n| {
                            format!(
                                "Practitioner/{}",
                                self.g
                                    .practitioner_id(self.g.patient_facts(*n).practitioner)
                            ) == prac
                        })
                        .collect()
                } else {
                    panic!("unexpected Patient search {query:?}")
                };
                let entries = ns
                    .iter()
                    .map(|n| entry(&self.patient(PatientKey::Ordinary(*n)), "match"))
                    .collect();
                (200, searchset(entries, Some(ns.len())))
            }
            _ => not_found,
        }
    }
}

async fn start_mock(patients: u64, deep: &[u64], flaw: Flaw) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mock = Arc::new(Mock::new(generator(patients, deep), flaw));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let mock = mock.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let mock = mock.clone();
                    async move {
                        let (status, body) = mock.handle(req.uri().path(), req.uri().query());
                        let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
                        *r.status_mut() = StatusCode::from_u16(status).expect("status");
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    format!("http://{addr}/fhir")
}

#[test]
fn correct_answers_pass_the_checks() {
    let mock = Mock::new(pop().g, Flaw::None);
    for kind in QueryKind::ALL {
        if kind == QueryKind::Everything {
            continue; // Over several pages: see everything_is_checked_over_its_pages.
        }
        for q in queries(kind, 3, 0, 15) {
            let (path, query) = q.path.split_once('?').unwrap();
            let (status, body) = mock.handle(&format!("/fhir/{path}"), Some(query));
            let body = body.to_string();
            let result = check(&q, StatusCode::from_u16(status).unwrap(), body.as_bytes());
            assert_eq!(result, Ok(()), "{}", q.path);
        }
    }
}

/// Follows the mock's next links from `path`.
fn everything_pages(mock: &Mock, path: &str) -> Vec<(StatusCode, Vec<u8>)> {
    let mut pages = Vec::new();
    let mut next = Some(format!("/fhir/{path}"));
    while let Some(url) = next.take() {
        let (path, query) = url.split_once('?').unwrap();
        let (status, body) = mock.handle(path, Some(query));
        next = body["link"][0]["url"].as_str().map(str::to_owned);
        pages.push((
            StatusCode::from_u16(status).unwrap(),
            body.to_string().into_bytes(),
        ));
    }
    pages
}

#[test]
fn everything_is_checked_over_its_pages() {
    let mock = Mock::new(pop().g, Flaw::None);
    let q = &queries(QueryKind::Everything, 3, 0, 1)[0];
    let Expect::Everything {
        patient,
        observations,
    } = &q.expect
    else {
        panic!("{q:?}")
    };
    // The deep patient nearest to 5,000 Observations of this data set, over 2 pages.
    assert_eq!(*observations, 1200);
    let pages = everything_pages(&mock, &q.path);
    assert_eq!(pages.len(), 2);
    assert_eq!(check_everything(patient, *observations, &pages), Ok(()));
    // A page missing, a page twice, another patient's data: each is wrong.
    let first = &pages[..1];
    assert!(
        check_everything(patient, *observations, first)
            .unwrap_err()
            .contains("Observations over 1 pages")
    );
    let twice = [pages[0].clone(), pages[0].clone(), pages[1].clone()];
    assert!(
        check_everything(patient, *observations, &twice)
            .unwrap_err()
            .contains("on two pages")
    );
    let other = everything_pages(&mock, &q.path.replace("deep-1200", "deep-300"));
    assert!(check_everything(patient, *observations, &other).is_err());
}

#[test]
fn a_short_period_only_asks_for_measures_it_has() {
    // Two days: no glucose yet (weekly, from day 3).
    let g = Generator {
        days: 2,
        ..generator(5, &[])
    };
    let pop = Population::new(g.clone());
    let mock = Mock::new(g, Flaw::None);
    let mut rng = Rng::new(1);
    for kind in QueryKind::ALL.into_iter().filter(|k| !k.needs_deep()) {
        for _ in 0..30 {
            let q = generate(kind, &mut rng, &pop);
            let (path, query) = q.path.split_once('?').unwrap();
            let (status, body) = mock.handle(&format!("/fhir/{path}"), Some(query));
            let body = body.to_string();
            let result = check(&q, StatusCode::from_u16(status).unwrap(), body.as_bytes());
            assert_eq!(result, Ok(()), "{}", q.path);
        }
    }
}

/// The answer of the mock to `q`, changed by `f`, then checked.
fn check_changed(q: &Query, f: impl FnOnce(&mut Value)) -> Result<(), String> {
    let mock = Mock::new(pop().g, Flaw::None);
    let (path, query) = q.path.split_once('?').unwrap();
    let (_, mut body) = mock.handle(&format!("/fhir/{path}"), Some(query));
    f(&mut body);
    check(q, StatusCode::OK, body.to_string().as_bytes())
}

#[test]
fn wrong_answers_fail_the_checks() {
    let obs = queries(QueryKind::SubjectCodeDate, 3, 0, 20)
        .into_iter()
        .find(|q| matches!(q.expect, Expect::Observations { matches, .. } if matches >= 3))
        .unwrap();
    let err = |q: &Query, f: fn(&mut Value)| check_changed(q, f).expect_err(&q.path);
    assert!(
        check(&obs, StatusCode::NOT_IMPLEMENTED, b"{}")
            .unwrap_err()
            .contains("501")
    );
    assert!(
        check(&obs, StatusCode::OK, b"not json")
            .unwrap_err()
            .contains("not a Bundle")
    );
    assert!(err(&obs, |b| b["resourceType"] = json!("Patient")).contains("instead of Bundle"));
    assert!(err(&obs, |b| b["type"] = json!("collection")).contains("searchset"));
    assert!(err(&obs, |b| b["total"] = json!(1)).contains("total 1"));
    assert!(
        err(&obs, |b| {
            b["entry"].as_array_mut().unwrap().pop();
        })
        .contains("matches")
    );
    assert!(
        err(&obs, |b| {
            b["entry"][1]["resource"]["subject"]["reference"] = json!("Patient/other")
        })
        .contains("Patient/other")
    );
    assert!(
        err(&obs, |b| {
            b["entry"][0]["resource"]["code"]["coding"][0]["code"] = json!("1-1")
        })
        .contains("does not have code")
    );
    assert!(err(&obs, |b| b["entry"].as_array_mut().unwrap().swap(0, 2)).contains("sorted"));
    assert!(
        err(&obs, |b| {
            b["entry"][2]["resource"]["effectiveDateTime"] = json!("2023-01-01T00:00:00Z")
        })
        .contains("before")
    );
    // Absolute references and entries without search.mode are fine.
    assert_eq!(
        check_changed(&obs, |b| {
            let r = b["entry"][0]["resource"]["subject"]["reference"]
                .as_str()
                .unwrap();
            b["entry"][0]["resource"]["subject"]["reference"] = json!(format!("http://h/fhir/{r}"));
            b["entry"][1].as_object_mut().unwrap().remove("search");
            b.as_object_mut().unwrap().remove("total");
        }),
        Ok(())
    );

    let inc = &queries(QueryKind::Include, 3, 0, 1)[0];
    assert!(
        err(inc, |b| {
            b["entry"].as_array_mut().unwrap().pop();
        })
        .contains("included []")
    );
    assert!(
        err(inc, |b| {
            let last = b["entry"].as_array().unwrap().len() - 1;
            b["entry"][last]["resource"]["id"] = json!("x")
        })
        .contains("Patient/x")
    );

    let one = &queries(QueryKind::Identifier, 3, 0, 1)[0];
    assert!(
        err(one, |b| {
            let e = b["entry"][0].clone();
            b["entry"].as_array_mut().unwrap().push(e);
            b["total"] = json!(2);
        })
        .contains("matched 2 Patients")
    );
    assert!(err(one, |b| b["entry"] = json!([])).contains("matched 0"));

    let count = &queries(QueryKind::CodeCount, 3, 0, 1)[0];
    assert!(err(count, |b| b["total"] = json!(0)).contains("total 0"));
    assert!(
        err(count, |b| {
            b.as_object_mut().unwrap().remove("total");
        })
        .contains("no total")
    );
    assert!(
        err(count, |b| b["entry"] =
            json!([{"resource": {"resourceType": "Observation"}}]))
        .contains("entries")
    );

    let name = &queries(QueryKind::Name, 3, 0, 1)[0];
    assert!(err(name, |b| b["entry"] = json!([])).contains("no Patient named"));
    assert!(
        err(name, |b| {
            b["entry"][0]["resource"]["name"] = json!([{"family": "Zed"}])
        })
        .contains("not named")
    );

    for kind in [
        QueryKind::LatestCode,
        QueryKind::HeavyLatestCode,
        QueryKind::LatestAll,
        QueryKind::HeavyWindowCode,
    ] {
        let q = queries(kind, 3, 0, 20)
            .into_iter()
            .find(|q| ordered(q).2.len() >= 3)
            .unwrap();
        assert_eq!(check_changed(&q, |_| {}), Ok(()));
        // Right Observations, wrong order.
        assert!(err(&q, |b| b["entry"].as_array_mut().unwrap().swap(0, 2)).contains("entry 0 is"));
        // One missing, or an older Observation instead of one of the newest.
        assert!(
            err(&q, |b| {
                b["entry"].as_array_mut().unwrap().remove(1);
            })
            .contains("matches")
        );
        let older = |b: &mut Value| {
            let last = b["entry"].as_array().unwrap().len() - 1;
            let id = b["entry"][last]["resource"]["id"]
                .as_str()
                .unwrap()
                .to_owned();
            let (prefix, k) = id.rsplit_once('-').unwrap();
            let k: u64 = k.parse().unwrap();
            b["entry"][last]["resource"]["id"] = json!(format!("{prefix}-{}", k - 1));
        };
        assert!(
            check_changed(&q, older)
                .unwrap_err()
                .contains("is Observation/")
        );
        assert!(err(&q, |b| b["total"] = json!(3)).contains("total 3"));
        assert!(
            err(&q, |b| {
                b["entry"][1]["resource"]["subject"]["reference"] = json!("Patient/other")
            })
            .contains("Patient/other")
        );
        assert!(
            err(&q, |b| {
                let e = b["entry"][0].clone();
                b["entry"][1] = e;
            })
            .contains("entry 1 is")
        );
        assert!(
            err(&q, |b| {
                b["entry"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"resource": {"resourceType": "Patient", "id": "x"}, "search": {"mode": "include"}}))
            })
            .contains("unexpected included")
        );
    }
    let q = queries(QueryKind::LatestCode, 3, 0, 1).remove(0);
    assert!(
        err(&q, |b| {
            b["entry"][4]["resource"]["code"]["coding"][0]["code"] = json!("1-1")
        })
        .contains("does not have code")
    );
}

fn args(url: String, patients: u64) -> SearchBenchArgs {
    SearchBenchArgs {
        url,
        patients,
        years: 1,
        days: None,
        deep: Deep(DEEP.to_vec()),
        dataset_seed: 42,
        seed: 5,
        connections: 2,
        duration: 1,
        warmup: 0,
        queries: QueryKind::ALL.to_vec(),
        json: None,
    }
}

fn json_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ember-bench-search-{name}-{}.json",
        std::process::id()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_against_a_correct_server() {
    let url = start_mock(25, &DEEP, Flaw::None).await;
    let path = json_path("ok");
    let mut a = args(url, 25);
    a.json = Some(path.clone());
    run(a).await.expect("no errors");
    let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(report["errors"], 0);
    let queries = report["queries"].as_array().unwrap();
    let kinds: Vec<&str> = queries
        .iter()
        .map(|q| q["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "subject-code-date",
            "name",
            "identifier",
            "code-count",
            "include",
            "has-observation",
            "has-care-team",
            "latest-code",
            "window-code",
            "latest-all",
            "heavy-latest-code",
            "heavy-window-code",
            "heavy-latest-all",
            "depth-300",
            "depth-1200",
            "everything",
            "ids",
        ]
    );
    for q in queries {
        assert!(q["stats"]["requests"].as_u64().unwrap() > 0, "{q}");
        assert_eq!(q["stats"]["errors"], 0, "{q}");
        if !q["kind"].as_str().unwrap().starts_with("depth-") {
            assert!(q["targets"][0]["met"].is_boolean(), "{q}");
        }
    }
    assert_eq!(queries[0]["targets"][1]["percentile"], "p99");
    assert_eq!(queries[0]["targets"][1]["below_ms"], 25.0);
    assert_eq!(queries[7]["targets"][0]["below_ms"], 5.0);
    assert_eq!(queries[10]["targets"][0]["below_ms"], 50.0);
    let depth = &report["depth"];
    assert_eq!(depth["rows"][0]["observations"], 300);
    assert_eq!(depth["rows"][1]["patient"], "dataset-42-pat-deep-1200");
    assert!(depth["rows"][1]["requests"].as_u64().unwrap() > 0);
    assert!(depth["p50_ratio"].is_number(), "{depth}");
    assert!(depth["met"].is_boolean(), "{depth}");
    assert_eq!(depth["below_ratio"], 2.0);
    assert_eq!(report["args"]["deep"], json!([300, 1200]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_deep_patients_the_heavy_kinds_are_left_out() {
    let url = start_mock(25, &[], Flaw::None).await;
    let path = json_path("nodeep");
    let mut a = args(url, 25);
    a.deep = Deep::default();
    a.queries = vec![
        QueryKind::LatestAll,
        QueryKind::HeavyLatestAll,
        QueryKind::Depth,
    ];
    a.json = Some(path.clone());
    run(a).await.expect("no errors");
    let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(report["queries"].as_array().unwrap().len(), 1);
    assert!(report.get("depth").is_none());
    let notes = report["notes"].to_string();
    assert!(notes.contains("heavy-latest-all: not run"), "{notes}");
    assert!(notes.contains("depth: not run"), "{notes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_the_sort_order_is_wrong() {
    let url = start_mock(25, &DEEP, Flaw::OldestFirst).await;
    let path = json_path("oldest");
    let mut a = args(url, 25);
    a.queries = vec![QueryKind::LatestCode, QueryKind::Depth];
    a.json = Some(path.clone());
    assert!(run(a).await.is_err());
    let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    for q in report["queries"].as_array().unwrap() {
        assert_eq!(q["stats"]["errors"], q["stats"]["requests"], "{q}");
    }
    assert!(report["depth"]["met"].is_null());
    assert!(
        report["queries"][0]["stats"]["error_samples"][0]
            .as_str()
            .unwrap()
            .contains("entry 0 is")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_and_fail_the_run() {
    // A server without search: every kind is skipped after its first answer.
    let url = start_mock(25, &DEEP, Flaw::NoSearch).await;
    let path = json_path("501");
    let mut a = args(url, 25);
    a.json = Some(path.clone());
    let e = run(a).await.expect_err("must fail");
    // 15 kinds and depth on two deep patients.
    assert!(
        format!("{e:#}").contains("17 wrong or failed answers"),
        "{e:#}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    // Every latency target, and the depth ratio.
    let targets: usize = QueryKind::ALL.iter().map(|k| k.targets().len()).sum();
    assert_eq!(targets, 17);
    assert_eq!(report["targets_not_judged"], targets + 1);
    assert!(
        report["queries"][0]["skipped"]
            .as_str()
            .unwrap()
            .contains("501")
    );

    // One wrong kind: its errors are counted, the others are judged.
    let url = start_mock(25, &DEEP, Flaw::WrongName).await;
    let path = json_path("name");
    let mut a = args(url, 25);
    a.queries = vec![QueryKind::Name, QueryKind::Identifier];
    a.json = Some(path.clone());
    assert!(run(a).await.is_err());
    let report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    let q = &report["queries"];
    assert_eq!(q[0]["kind"], "name");
    assert_eq!(q[0]["stats"]["errors"], q[0]["stats"]["requests"]);
    assert!(q[0]["targets"][0]["met"].is_null());
    assert_eq!(q[1]["stats"]["errors"], 0);
    assert!(q[1]["targets"][0]["met"].is_boolean());
}

#[tokio::test]
async fn a_different_data_set_is_refused() {
    let url = start_mock(25, &DEEP, Flaw::None).await;
    // More patients than loaded.
    let e = run(args(url.clone(), 30)).await.expect_err("must fail");
    assert!(format!("{e:#}").contains("not 30 patients"), "{e:#}");
    // More years than loaded.
    let mut a = args(url.clone(), 25);
    a.years = 2;
    assert!(run(a).await.is_err());
    // Fewer days than loaded, and --days overriding a matching --years.
    let mut a = args(url.clone(), 25);
    a.days = Some(100);
    let e = run(a).await.expect_err("must fail");
    assert!(format!("{e:#}").contains("x 100 day(s)"), "{e:#}");
    // Another seed.
    let mut a = args(url.clone(), 25);
    a.dataset_seed = 7;
    assert!(run(a).await.is_err());
    // A deep patient that was not loaded, or with another count.
    for deep in [vec![300, 1200, 5000], vec![300, 1300]] {
        let mut a = args(url.clone(), 25);
        a.deep = Deep(deep);
        let e = run(a).await.expect_err("must fail");
        assert!(format!("{e:#}").contains("deep patients: 300, 1"), "{e:#}");
    }
    // A deep patient with fewer Observations than loaded.
    let mut a = args(url, 25);
    a.deep = Deep(vec![300, 1100]);
    assert!(run(a).await.is_err());
}

#[test]
fn report_renders_targets_and_errors_loudly() {
    let stats = |errors| {
        PhaseStats::from_latencies(
            "x",
            vec![1000, 2000, 30_000],
            errors,
            Duration::from_secs(1),
            false,
            if errors > 0 {
                vec!["GET /x: status 500".into()]
            } else {
                vec![]
            },
        )
    };
    let mut r = SearchReport {
        timestamp: String::new(),
        version: "v".into(),
        args: SearchReportArgs {
            url: "u".into(),
            patients: 1,
            years: 1,
            days: 365,
            deep: vec![],
            dataset_seed: 42,
            seed: 1,
            connections: 1,
            duration_secs: 1,
            warmup_secs: 0,
        },
        queries: vec![
            result(QueryKind::SubjectCodeDate, "/a", Duration::ZERO, stats(0)),
            result(QueryKind::Name, "/b", Duration::ZERO, stats(2)),
        ],
        depth: None,
        errors: 0,
        targets_met: 0,
        targets_missed: 0,
        targets_not_judged: 0,
        empty: vec![],
        notes: vec![],
    };
    r.tally();
    assert_eq!(
        (
            r.targets_met,
            r.targets_missed,
            r.targets_not_judged,
            r.errors
        ),
        (1, 1, 1, 2)
    );
    let text = r.render();
    assert!(text.contains("<5 met"), "{text}");
    assert!(text.contains("<25 MISSED"), "{text}");
    assert!(text.contains("<3 n/a"), "{text}");
    assert!(text.contains("!!! 2 ERRORS in name:"), "{text}");
    assert!(text.contains("[name] GET /x: status 500"), "{text}");
    r.queries.pop();
    r.tally();
    assert!(r.valid());
    assert!(!r.render().contains("!!!"));
    // A kind where no request finished in the window is not valid either.
    r.queries.push(result(
        QueryKind::Include,
        "/c",
        Duration::from_secs(40),
        PhaseStats::from_latencies("include", vec![], 0, Duration::ZERO, false, vec![]),
    ));
    r.tally();
    assert!(!r.valid());
    let text = r.render();
    assert!(
        text.contains("!!! NO ANSWER within the measured window in include"),
        "{text}"
    );
    assert!(text.contains("40000.00 ms  /c"), "{text}");
}

fn result(kind: QueryKind, example: &str, first: Duration, stats: PhaseStats) -> QueryResult {
    QueryResult::named(
        kind.name(),
        kind.targets(),
        example.into(),
        first,
        stats,
        None,
    )
}

fn depth_row(observations: u64, p50_ms: f64, errors: u64) -> DepthRow {
    DepthRow {
        observations,
        patient: format!("dataset-42-pat-deep-{observations}"),
        requests: 10,
        errors,
        p50_ms,
        p99_ms: p50_ms * 3.0,
    }
}

#[test]
fn depth_is_judged_by_the_growth_of_its_p50() {
    let met = DepthReport::new(vec![depth_row(1000, 2.0, 0), depth_row(50_000, 3.0, 0)]);
    assert_eq!((met.p50_ratio, met.met), (Some(1.5), Some(true)));
    let missed = DepthReport::new(vec![
        depth_row(1000, 2.0, 0),
        depth_row(4000, 2.5, 0),
        depth_row(50_000, 4.0, 0),
    ]);
    assert_eq!((missed.p50_ratio, missed.met), (Some(2.0), Some(false)));
    let wrong = DepthReport::new(vec![depth_row(1000, 2.0, 0), depth_row(50_000, 3.0, 4)]);
    assert_eq!(wrong.met, None);
    let single = DepthReport::new(vec![depth_row(1000, 2.0, 0)]);
    assert_eq!((single.p50_ratio, single.met), (None, None));

    let mut r = SearchReport {
        timestamp: String::new(),
        version: "v".into(),
        args: SearchReportArgs {
            url: "u".into(),
            patients: 1,
            years: 1,
            days: 365,
            deep: vec![1000, 50_000],
            dataset_seed: 42,
            seed: 1,
            connections: 1,
            duration_secs: 1,
            warmup_secs: 0,
        },
        queries: vec![],
        depth: Some(met),
        errors: 0,
        targets_met: 0,
        targets_missed: 0,
        targets_not_judged: 0,
        empty: vec![],
        notes: vec![],
    };
    r.tally();
    assert_eq!((r.targets_met, r.targets_missed), (1, 0));
    let text = r.render();
    assert!(text.contains("deep=1000,50000"), "{text}");
    assert!(
        text.contains("p50 at 50000 / p50 at 1000 Observations: 1.50x  <2x met"),
        "{text}"
    );
    r.depth = Some(missed);
    r.tally();
    assert_eq!((r.targets_met, r.targets_missed), (0, 1));
    assert!(r.render().contains("2.00x  <2x MISSED"));
    r.depth = Some(single);
    r.tally();
    assert_eq!(r.targets_not_judged, 1);
    assert!(r.render().contains("p50 ratio: n/a"));
}
