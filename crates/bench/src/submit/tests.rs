use std::collections::HashSet;

use super::*;

/// Judges `value` against the zones in a ServiceRequest's extensions the way
/// docs/telemonitoring.md describes: bounds inclusive, a missing one open, the worst
/// colour wins. Reads the JSON, not [`MEASURES`], so it checks the format too.
pub(crate) fn judge(order: &Value, value: f64) -> Colour {
    let mut colour = Colour::Green;
    for ext in order["extension"].as_array().into_iter().flatten() {
        if ext["url"] != THRESHOLD_URL {
            continue;
        }
        let (mut low, mut high, mut kind) = (None, None, None);
        for part in ext["extension"].as_array().into_iter().flatten() {
            match part["url"].as_str() {
                Some("low") => low = part["valueQuantity"]["value"].as_f64(),
                Some("high") => high = part["valueQuantity"]["value"].as_f64(),
                Some("type") => {
                    let c = &part["valueCodeableConcept"]["coding"][0];
                    assert_eq!(c["system"], ZONE_TYPE_SYSTEM, "{ext}");
                    kind = c["code"].as_str().map(str::to_owned);
                }
                other => panic!("unexpected part {other:?} in {ext}"),
            }
        }
        let inside = low.is_none_or(|l| value >= l) && high.is_none_or(|h| value <= h);
        let zone = match kind.as_deref() {
            Some("RAL") => Colour::Red,
            Some("GAL") => Colour::Yellow,
            other => panic!("zone type {other:?} in {ext}"),
        };
        if inside && zone.index() > colour.index() {
            colour = zone;
        }
    }
    colour
}

fn entries(bundle: &Value) -> &Vec<Value> {
    bundle["entry"].as_array().expect("entries")
}

/// Every resource of the setup, by `Type/id`.
fn setup_resources(pop: &Population) -> std::collections::HashMap<String, Value> {
    pop.setup_bundles()
        .iter()
        .flat_map(|b| entries(b).clone())
        .map(|e| {
            (
                e["request"]["url"].as_str().expect("url").to_owned(),
                e["resource"].clone(),
            )
        })
        .collect()
}

#[test]
fn setup_is_transactions_of_puts_with_the_run_in_every_id() {
    let pop = Population::new("0badcafe", 40);
    let bundles = pop.setup_bundles();
    // 40 patients in chunks of 16.
    assert_eq!(bundles.len(), 3);
    let mut urls = HashSet::new();
    for b in &bundles {
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "transaction");
        for e in entries(b) {
            let r = &e["resource"];
            let url = format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            );
            assert_eq!(e["request"]["method"], "PUT", "{e}");
            assert_eq!(e["request"]["url"], url.as_str(), "{e}");
            assert!(url.contains("/bsub-0badcafe-"), "{url}");
            assert!(urls.insert(url.clone()), "{url} twice");
        }
    }
    // A nurse, then per patient: Patient, CareTeam, CarePlan and one order per measure.
    assert_eq!(urls.len(), 1 + 40 * (3 + MEASURES.len()));
    // Another run has other ids.
    let other = Population::new("00000001", 40);
    assert!(
        other
            .patients
            .iter()
            .all(|p| !urls.contains(&format!("Patient/{}", p.patient)))
    );
}

#[test]
fn orders_link_patient_plan_and_team_and_carry_the_documented_zones() {
    let pop = Population::new("r1", 3);
    let all = setup_resources(&pop);
    for p in &pop.patients {
        let patient = format!("Patient/{}", p.patient);
        assert!(all.contains_key(&patient));
        let plan = &all[&format!("CarePlan/{}", p.plan)];
        assert_eq!(plan["status"], "active");
        assert_eq!(plan["subject"]["reference"], patient.as_str());
        let team = plan["careTeam"][0]["reference"].as_str().expect("careTeam");
        assert_eq!(team, format!("CareTeam/{}", p.team));
        assert_eq!(all[team]["subject"]["reference"], patient.as_str());
        for (m, id) in MEASURES.iter().zip(&p.orders) {
            let sr = &all[&format!("ServiceRequest/{id}")];
            assert_eq!(sr["status"], "active");
            assert_eq!(sr["intent"], "order");
            assert_eq!(sr["subject"]["reference"], patient.as_str());
            assert_eq!(
                sr["basedOn"][0]["reference"],
                format!("CarePlan/{}", p.plan)
            );
            assert_eq!(sr["code"]["coding"][0]["system"], LOINC);
            assert_eq!(sr["code"]["coding"][0]["code"], m.loinc);
            for ext in sr["extension"].as_array().expect("zones") {
                assert_eq!(ext["url"], THRESHOLD_URL);
                for part in ext["extension"].as_array().expect("parts") {
                    if let Some(q) = part.get("valueQuantity") {
                        assert_eq!(
                            q,
                            &json!({"value": q["value"], "unit": m.unit,
                            "system": UCUM, "code": m.unit})
                        );
                    }
                }
            }
        }
    }
    // The documented thresholds, read back through the judge.
    let spo2 = &all[&format!("ServiceRequest/{}", pop.patients[0].orders[0])];
    assert_eq!(spo2["code"]["coding"][0]["code"], "59408-5");
    let at = |v: f64| judge(spo2, v);
    assert_eq!(
        [at(70.0), at(88.0), at(88.5), at(92.0), at(92.5), at(99.0)],
        [
            Colour::Red,
            Colour::Red,
            Colour::Yellow,
            Colour::Yellow,
            Colour::Green,
            Colour::Green
        ]
    );
    let pulse = &all[&format!("ServiceRequest/{}", pop.patients[0].orders[1])];
    assert_eq!(pulse["code"]["coding"][0]["code"], "8867-4");
    let at = |v: f64| judge(pulse, v);
    assert_eq!(
        [
            at(40.0),
            at(45.0),
            at(51.0),
            at(99.0),
            at(100.0),
            at(119.0),
            at(120.0),
            at(180.0)
        ],
        [
            Colour::Red,
            Colour::Yellow,
            Colour::Green,
            Colour::Green,
            Colour::Yellow,
            Colour::Yellow,
            Colour::Red,
            Colour::Red
        ]
    );
    // The exact extension of the SpO2 yellow zone.
    assert_eq!(
        spo2["extension"][1],
        json!({"url": THRESHOLD_URL, "extension": [
            {"url": "low", "valueQuantity": {"value": 88.0, "unit": "%", "system": UCUM, "code": "%"}},
            {"url": "high", "valueQuantity": {"value": 92.0, "unit": "%", "system": UCUM, "code": "%"}},
            {"url": "type", "valueCodeableConcept": {"coding": [{"system": "urn:oid:1.2.208.184.100.1", "code": "GAL"}]}},
        ]})
    );
}

#[test]
fn draws_are_80_15_5_and_every_value_has_its_colour() {
    let pop = Population::new("r2", 8);
    let all = setup_resources(&pop);
    let mut rng = Rng::for_worker(42, SALT, 0);
    let mut counts = ColourCounts::default();
    let mut measures = [0u32; 2];
    let n = 20_000;
    for _ in 0..n {
        let d = draw(&mut rng, pop.patients.len());
        let order = &all[&format!(
            "ServiceRequest/{}",
            pop.patients[d.patient].orders[d.measure]
        )];
        assert_eq!(judge(order, d.value), d.colour, "{d:?}");
        counts.add(d.colour);
        measures[d.measure] += 1;
    }
    let share = |c: u64| c as f64 / f64::from(n) * 100.0;
    assert!((78.0..82.0).contains(&share(counts.green)), "{counts:?}");
    assert!((13.5..16.5).contains(&share(counts.yellow)), "{counts:?}");
    assert!((4.0..6.0).contains(&share(counts.red)), "{counts:?}");
    assert!(measures.iter().all(|&m| m > n / 3), "{measures:?}");
}

#[test]
fn submission_is_a_well_formed_parameters_and_deterministic_by_seed() {
    let pop = Population::new("r3", 16);
    let all = setup_resources(&pop);
    let body = |seed: u64| {
        let mut rng = Rng::for_worker(seed, SALT, 3);
        (0..20)
            .map(|_| {
                let d = draw(&mut rng, pop.patients.len());
                (d, submission(&pop, &d, &mut rng))
            })
            .collect::<Vec<_>>()
    };
    let a = body(7);
    let texts = |v: &[(Draw, Value)]| v.iter().map(|(_, s)| s.to_string()).collect::<Vec<_>>();
    assert_eq!(texts(&a), texts(&body(7)), "same seed, same bodies");
    assert_ne!(texts(&a), texts(&body(8)), "another seed, other bodies");
    let mut full_urls = HashSet::new();
    for (d, s) in &a {
        assert_eq!(s["resourceType"], "Parameters");
        assert_eq!(s["parameter"].as_array().map(Vec::len), Some(1));
        assert_eq!(s["parameter"][0]["name"], "measurement");
        let bundle = &s["parameter"][0]["resource"];
        assert_eq!(
            (&bundle["resourceType"], &bundle["type"]),
            (&json!("Bundle"), &json!("transaction"))
        );
        let entry = &entries(bundle)[0];
        assert_eq!(entries(bundle).len(), 1);
        assert_eq!(
            entry["request"],
            json!({"method": "POST", "url": "Observation"})
        );
        let full_url = entry["fullUrl"].as_str().expect("fullUrl");
        assert!(
            full_url.starts_with("urn:uuid:") && full_url.len() == 45,
            "{full_url}"
        );
        assert!(full_urls.insert(full_url.to_owned()), "{full_url} twice");
        let obs = &entry["resource"];
        let m = &MEASURES[d.measure];
        let patient = format!("Patient/{}", pop.patients[d.patient].patient);
        assert_eq!(obs["resourceType"], "Observation");
        assert_eq!(obs["subject"]["reference"], patient.as_str());
        assert_eq!(obs["performer"][0]["reference"], patient.as_str());
        assert_eq!(obs["code"]["coding"][0]["code"], m.loinc);
        let order = obs["basedOn"][0]["reference"].as_str().expect("basedOn");
        // The order is this patient's, for this measure, and judges the value as drawn.
        assert_eq!(all[order]["subject"]["reference"], patient.as_str());
        assert_eq!(all[order]["code"]["coding"][0]["code"], m.loinc);
        assert_eq!(
            judge(&all[order], obs["valueQuantity"]["value"].as_f64().unwrap()),
            d.colour
        );
        assert_eq!(
            obs["valueQuantity"],
            json!({"value": d.value, "unit": m.unit,
            "system": UCUM, "code": m.unit})
        );
        let t = obs["effectiveDateTime"].as_str().expect("effective");
        assert!(
            t.len() == 25 && t.starts_with("2026-") && t.ends_with("+01:00"),
            "{t}"
        );
        // What $submit-measurement checks: every Coding has a system and a code.
        for c in [&obs["code"]["coding"][0], &obs["category"][0]["coding"][0]] {
            assert!(c["system"].is_string() && c["code"].is_string(), "{c}");
        }
    }
}

#[test]
fn the_observation_id_comes_from_the_first_entry_location() {
    let answer = |location: &str| {
        json!({"resourceType": "Parameters", "parameter": [{"name": "bundle", "resource": {
            "resourceType": "Bundle", "type": "transaction-response",
            "entry": [{"response": {"status": "201 Created", "location": location}}]}}]})
        .to_string()
    };
    assert_eq!(
        observation_id(answer("Observation/abc-1/_history/1").as_bytes()).as_deref(),
        Some("abc-1")
    );
    assert_eq!(
        observation_id(answer("http://h/fhir/Observation/9/_history/1").as_bytes()).as_deref(),
        Some("9")
    );
    assert_eq!(observation_id(answer("Task/x/_history/1").as_bytes()), None);
    assert_eq!(
        observation_id(b"{\"resourceType\":\"OperationOutcome\"}"),
        None
    );
    assert_eq!(observation_id(b"not json"), None);
}

#[test]
fn task_count_query_names_every_patient() {
    let pop = Population::new("r4", 3);
    let q = pop.task_count_query("&priority=asap");
    assert_eq!(
        q,
        "Task?patient=Patient/bsub-r4-p0,Patient/bsub-r4-p1,Patient/bsub-r4-p2\
         &priority=asap&_summary=count"
    );
    // It is a valid request target, also with every patient of a default run.
    assert!(format!("/fhir/{q}").parse::<http::Uri>().is_ok());
    let q = Population::new("0123abcd", 64).task_count_query("");
    assert!(
        q.contains("Patient/bsub-0123abcd-p63&_summary=count"),
        "{q}"
    );
    assert!(format!("/fhir/{q}").parse::<http::Uri>().is_ok());
}

#[test]
fn settle_records_found_and_late_samples_and_keeps_the_rest() {
    let now = Instant::now();
    let ago = |ms: u64| now.checked_sub(Duration::from_millis(ms)).expect("clock");
    let batch = vec![
        ("a".to_owned(), ago(40)),
        ("b".to_owned(), ago(20)),
        ("c".to_owned(), ago(31_000)),
        ("d".to_owned(), ago(10)),
    ];
    let found = [
        "task-obs-b".to_owned(),
        "task-obs-a".to_owned(),
        "other".to_owned(),
    ];
    let mut out = Probes::default();
    let kept = settle(batch, &found, now, Duration::from_secs(30), &mut out);
    assert_eq!(out.lags_us, [40_000, 20_000]);
    assert_eq!(out.timeouts, 1);
    assert_eq!(
        kept.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["d"]
    );
}

fn stats(requests: usize, errors: u64) -> PhaseStats {
    PhaseStats::from_latencies(
        "submit",
        (1..=requests as u64).map(|i| i * 100).collect(),
        errors,
        Duration::from_secs(2),
        false,
        vec![],
    )
}

#[test]
fn result_sums_probes_and_notes_what_missed_the_targets() {
    let drawn = ColourCounts {
        green: 80,
        yellow: 15,
        red: 5,
    };
    // 100 samples, lag 10..=1000 ms, and one given up.
    let mut probes = Probes {
        lags_us: (1..=100).map(|i| i * 10_000).collect(),
        timeouts: 1,
        polls: 307,
    };
    let prio = PriorityCounts {
        routine: 80,
        urgent: 15,
        asap: 5,
    };
    let drained = Drained {
        drained: true,
        secs: 0.1234,
        tasks: 100,
        priorities: Some(prio),
    };
    let mut r = SubmitResult::new("abc", 64, stats(400, 0), drawn, 10, &probes, drained);
    assert_eq!(
        (r.submitted, r.lag_samples, r.lag_timeouts, r.lag_polls),
        (100, 100, 1, 307)
    );
    assert_eq!(
        (r.lag.p50_ms, r.lag.p99_ms, r.lag.max_ms),
        (500.0, 990.0, 1000.0)
    );
    assert_eq!(r.drain_secs, 0.12);
    assert_eq!(r.http.requests_per_sec, 200.0);
    r.compare_with_create(Some(&PhaseStats {
        requests_per_sec: 400.0,
        ..stats(1, 0)
    }));
    assert_eq!(r.percent_of_create, Some(50.0));
    let notes = r.notes().join("\n");
    assert!(
        notes.contains("1 of 101 lag samples were given up"),
        "{notes}"
    );
    assert!(
        !notes.contains("target") && !notes.contains("differ"),
        "{notes}"
    );

    // Slow, behind, wrong: every one is a note.
    probes.lags_us.extend([5_000_000, 5_000_000]);
    let wrong = PriorityCounts {
        routine: 100,
        urgent: 0,
        asap: 0,
    };
    // (The phase counts priorities after a drain only; the note does not depend on it.)
    let late = Drained {
        drained: false,
        secs: 60.0,
        tasks: 90,
        priorities: Some(wrong),
    };
    let mut r = SubmitResult::new("abc", 64, stats(400, 4), drawn, 10, &probes, late);
    r.compare_with_create(Some(&PhaseStats {
        requests_per_sec: 1000.0,
        ..stats(1, 0)
    }));
    assert_eq!(r.percent_of_create, Some(20.0));
    let notes = r.notes().join("\n");
    for expected in [
        "4 of 400 submissions failed",
        "did not drain: 90 of 100 Tasks",
        "lag p99 5000.00 ms is not below",
        "20.00 % of the create rate is below the 40 % target",
        "routine/urgent/asap 100/0/0 differ from the colours drawn green/yellow/red 80/15/5",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
    // Without a create phase there is no ratio, and no note about one.
    r.compare_with_create(None);
    assert_eq!(r.percent_of_create, None);
    assert!(!r.notes().join("\n").contains("create rate"));
}

#[test]
fn found_ids_reads_a_searchset() {
    let page = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Task", "id": "task-obs-1"}},
        {"resource": {"resourceType": "Task", "id": "task-obs-22"}},
    ]});
    assert_eq!(
        found_ids(page.to_string().as_bytes()),
        ["task-obs-1", "task-obs-22"]
    );
    assert!(found_ids(br#"{"resourceType":"Bundle","type":"searchset"}"#).is_empty());
    assert!(found_ids(b"<html>").is_empty());
}
