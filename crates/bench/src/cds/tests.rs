use std::collections::HashMap;

use super::*;
use crate::submit::Colour;

/// Ember's discovery of the service, as `ember_cds::discovery` writes it.
fn discovery() -> Value {
    json!({"services": [
        {"hook": "order-sign", "id": "telemonitoring-order-check", "prefetch": {
            "orders": "ServiceRequest?patient={{context.patientId}}&status=active&_count=200"}},
        {"hook": "patient-view", "id": "telemonitoring-summary", "title": "t", "prefetch": {
            "tasks": "Task?patient={{context.patientId}}&status=requested,received,accepted,ready,in-progress,on-hold&_include=Task:focus&_include:iterate=ClinicalImpression:investigation&_count=200"}},
    ]})
}

#[test]
fn the_template_comes_from_discovery() {
    let template = tasks_template(&discovery()).expect("template");
    assert_eq!(
        render(&template, "dataset-42-pat-7"),
        "Task?patient=dataset-42-pat-7&status=requested,received,accepted,ready,in-progress,\
         on-hold&_include=Task:focus&_include:iterate=ClinicalImpression:investigation&_count=200"
    );
    let mut other_hook = discovery();
    other_hook["services"][1]["hook"] = json!("order-sign");
    assert!(tasks_template(&other_hook).is_err());
    let mut user_token = discovery();
    user_token["services"][1]["prefetch"]["tasks"] =
        json!("Task?patient={{context.patientId}}&owner={{userPractitionerId}}");
    let err = tasks_template(&user_token).expect_err("a token the bench cannot fill");
    assert!(format!("{err:#}").contains("has tokens besides"), "{err:#}");
    let mut no_prefetch = discovery();
    no_prefetch["services"][1]["prefetch"] = json!({});
    assert!(tasks_template(&no_prefetch).is_err());
    let err = tasks_template(&json!({"services": []})).expect_err("not listed");
    assert!(format!("{err:#}").contains("does not list"), "{err:#}");
}

#[test]
fn requests_with_prefetch_or_fhir_server() {
    let tasks = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Task", "id": "t1"}, "search": {"mode": "match"}}]});
    let uuid = "6f1c3a52-8d0e-4c5b-9a47-2f4e1d9b0c11";
    let with = patient_view_request(uuid, USER, "p1", Some(&tasks), None);
    assert_eq!(
        with,
        json!({"hook": "patient-view", "hookInstance": uuid,
            "context": {"userId": "Practitioner/ember-bench", "patientId": "p1"},
            "prefetch": {"tasks": tasks}})
    );
    let base = "http://127.0.0.1:8080/fhir";
    let own = patient_view_request(uuid, USER, "p1", None, Some(base));
    assert_eq!(
        own,
        json!({"hook": "patient-view", "hookInstance": uuid, "fhirServer": base,
            "context": {"userId": "Practitioner/ember-bench", "patientId": "p1"}})
    );

    // A template gives the same body with any hookInstance, and its length.
    for (tasks, server) in [(Some(&tasks), None), (None, Some(base))] {
        let t = BodyTemplate::new("p1", tasks, server);
        let body = t.body(uuid);
        assert_eq!(body.len(), t.size());
        let parsed: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            parsed,
            patient_view_request(uuid, USER, "p1", tasks, server)
        );
        let other: Value =
            serde_json::from_slice(&t.body("0b7f0f4e-1f1d-4a43-9c55-6d8f6a1b2c3d")).unwrap();
        assert_ne!(parsed["hookInstance"], other["hookInstance"]);
        assert_eq!(parsed["prefetch"], other["prefetch"]);
    }
}

#[test]
fn fresh_hook_instances_are_uuids() {
    let mut rng = Rng::new(3);
    let a = submit::uuid(&mut rng);
    let b = submit::uuid(&mut rng);
    assert_ne!(a, b);
    for id in [a, b] {
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 4, "{id}");
    }
}

/// The dataset's groups of the first `n` patients, by `Type/id`.
fn dataset_resources(seed: u64, n: u64) -> HashMap<String, Value> {
    let g = Generator {
        seed,
        patients: n,
        days: 0,
        deep: Vec::new(),
    };
    g.patient_keys()
        .flat_map(|k| g.patient_group(k))
        .map(|i| (format!("{}/{}", i.res_type, i.id), i.resource))
        .collect()
}

#[test]
fn the_population_names_the_datasets_resources() {
    let pop = dataset_population(7, 3);
    assert_eq!(pop.patients.len(), 3);
    let resources = dataset_resources(7, 3);
    for p in &pop.patients {
        assert!(p.patient.starts_with("dataset-7-pat-"), "{p:?}");
        assert!(resources.contains_key(&format!("Patient/{}", p.patient)));
        assert!(resources.contains_key(&format!("CareTeam/{}", p.team)));
        assert!(resources.contains_key(&format!("CarePlan/{}", p.plan)));
        assert_eq!(p.orders.len(), MEASURES.len());
        for (m, order) in MEASURES.iter().zip(&p.orders) {
            let sr = &resources[&format!("ServiceRequest/{order}")];
            assert_eq!(sr["code"]["coding"][0]["code"], m.loinc, "{sr}");
            assert_eq!(sr["status"], "active");
        }
    }
    assert_eq!(pop.patients[2].patient, "dataset-7-pat-2");
    assert_eq!(
        pop.patients[2].orders,
        ["dataset-7-sr-2-spo2", "dataset-7-sr-2-pulse"]
    );
}

#[test]
fn submissions_are_judged_by_the_dataset_orders_as_drawn() {
    // The dataset's alarm zones give every drawn value the colour it was drawn for,
    // so the Tasks' priorities are the mix drawn.
    let pop = dataset_population(42, 4);
    let resources = dataset_resources(42, 4);
    let mut rng = Rng::new(11);
    let draws = plan_submissions(4, 250, &mut rng);
    assert_eq!(draws.len(), 1000);
    let mut per_patient = [0; 4];
    let mut colours = ColourCounts::default();
    for d in &draws {
        per_patient[d.patient] += 1;
        colours.add(d.colour);
        let order = &pop.patients[d.patient].orders[d.measure];
        let sr = &resources[&format!("ServiceRequest/{order}")];
        assert_eq!(
            crate::submit::tests::judge(sr, d.value),
            d.colour,
            "{d:?} against {sr}"
        );
        let body = submit::submission(&pop, d, &mut rng);
        let obs = &body["parameter"][0]["resource"]["entry"][0]["resource"];
        assert_eq!(
            obs["basedOn"][0]["reference"],
            format!("ServiceRequest/{order}")
        );
        assert_eq!(
            obs["subject"]["reference"],
            format!("Patient/{}", pop.patients[d.patient].patient)
        );
    }
    assert_eq!(per_patient, [250; 4]);
    // About 80/15/5 %, red included.
    assert!((700..900).contains(&colours.green), "{colours:?}");
    assert!((100..200).contains(&colours.yellow), "{colours:?}");
    assert!((20..80).contains(&colours.red), "{colours:?}");
    assert!(
        draws
            .iter()
            .any(|d| d.colour == Colour::Red && d.patient == 0)
    );
    assert!(plan_submissions(3, 0, &mut rng).is_empty());
}

#[test]
fn queries_are_chunked() {
    let pop = dataset_population(42, 120);
    let counts = task_count_queries(&pop.patients);
    assert_eq!(counts.len(), 3);
    assert!(
        counts[0].starts_with("Task?patient=Patient/dataset-42-pat-0,Patient/dataset-42-pat-1,")
    );
    assert!(
        counts[0].ends_with("Patient/dataset-42-pat-49&_summary=count"),
        "{}",
        counts[0]
    );
    assert_eq!(counts[2].matches("Patient/").count(), 20);
    let found = patient_queries(&pop.patients);
    assert_eq!(found.len(), 3);
    assert!(found[1].starts_with("Patient?_id=dataset-42-pat-50,dataset-42-pat-51,"));
    assert!(
        found[1].ends_with("dataset-42-pat-99&_elements=id&_count=50"),
        "{}",
        found[1]
    );
    assert!(found[2].ends_with("&_count=20"), "{}", found[2]);
}

#[test]
fn counts_a_prefetch() {
    let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "Task", "id": "a"}, "search": {"mode": "match"}},
        {"resource": {"resourceType": "Task", "id": "b"}},
        {"resource": {"resourceType": "ClinicalImpression", "id": "c"}, "search": {"mode": "include"}},
        {"resource": {"resourceType": "Observation", "id": "o"}, "search": {"mode": "include"}},
        {"resource": {"resourceType": "Task", "id": "x"}, "search": {"mode": "include"}},
    ]});
    assert_eq!(searchset_counts(&bundle), (2, 5));
    assert_eq!(searchset_counts(&empty_prefetch()), (0, 0));
    assert_eq!(searchset_counts(&json!({})), (0, 0));
}

#[test]
fn counts_cards() {
    let answer = br#"{"cards": [{"indicator": "critical"}, {"indicator": "warning"},
        {"indicator": "critical"}, {"indicator": "info"}]}"#;
    let c = CardCounts::of_answer(answer).expect("cards");
    assert_eq!(
        c,
        CardCounts {
            answers: 1,
            critical: 2,
            warning: 1,
            info: 1
        }
    );
    let mut sum = c;
    sum.merge(&CardCounts::of_answer(br#"{"cards": []}"#).expect("none"));
    assert_eq!((sum.answers, sum.cards(), sum.per_answer()), (2, 4, 2.0));
    assert_eq!(CardCounts::default().per_answer(), 0.0);
    assert_eq!(CardCounts::of_answer(b"{}"), None);
    assert_eq!(CardCounts::of_answer(b"<html>"), None);
}

fn stats(name: &str, us: Vec<u64>, errors: u64) -> PhaseStats {
    PhaseStats::from_latencies(name, us, errors, Duration::from_secs(2), false, vec![])
}

pub(crate) fn result(prefetch_us: u64, own_us: u64) -> CdsResult {
    let with_prefetch = stats("cds prefetch", vec![prefetch_us; 100], 0);
    let own_store = stats("cds own store", vec![own_us; 100], 0);
    CdsResult {
        service: SERVICE.into(),
        dataset_seed: 42,
        patients_requested: 200,
        patients: 200,
        fhir_server: "http://127.0.0.1:18097/fhir".into(),
        submitted: 800,
        submit_errors: 0,
        drawn: ColourCounts {
            green: 640,
            yellow: 120,
            red: 40,
        },
        tasks_ready: true,
        tasks_wait_secs: 0.5,
        tasks: 800,
        prefetch_tasks: 800,
        prefetch_resources: 2400,
        body_bytes_mean: 12_345,
        patients_without_tasks: 0,
        prefetch_query: Latency::from_us(vec![4000, 6000]),
        p99_own_over_prefetch: p99_ratio(&own_store, &with_prefetch),
        with_prefetch,
        own_store,
        with_prefetch_cards: CardCounts {
            answers: 100,
            critical: 20,
            warning: 50,
            info: 60,
        },
        own_store_cards: CardCounts {
            answers: 100,
            critical: 20,
            warning: 50,
            info: 60,
        },
        card_mismatches: 0,
        with_prefetch_window_us: [1_000_000, 3_000_000],
        own_store_window_us: [3_100_000, 5_100_000],
    }
}

#[test]
fn the_ratio_and_the_targets() {
    let r = result(10_000, 30_000);
    assert_eq!(r.p99_own_over_prefetch, Some(3.0));
    assert!(r.notes().is_empty(), "{:?}", r.notes());
    assert_eq!(
        p99_ratio(&stats("o", vec![], 0), &r.with_prefetch),
        None,
        "no own-store calls"
    );
    assert_eq!(p99_ratio(&r.own_store, &stats("p", vec![], 0)), None);

    let mut missed = result(30_000, 75_000);
    missed.patients = 150;
    missed.submit_errors = 2;
    missed.tasks_ready = false;
    missed.patients_without_tasks = 3;
    missed.card_mismatches = 4;
    missed.own_store.errors = 1;
    let notes = missed.notes().join("\n");
    for expected in [
        "only 150 of the 200 patients dataset-42-pat-*",
        "2 of 802 submissions before measuring failed",
        "measured before every submission had its Task",
        "3 of 150 patients had no open Task",
        "cds own store: 1 of 100 calls failed",
        "4 own-store answers had another number of cards",
        "cds prefetch: p99 30.00 ms misses the 25 ms target by 5.00 ms (1.20x)",
        "cds own store: p99 75.00 ms misses the 50 ms target by 25.00 ms (1.50x)",
    ] {
        assert!(notes.contains(expected), "{expected:?} not in\n{notes}");
    }
}

#[test]
fn opts_trim_the_fhir_server() {
    let o = CdsOpts::new(
        16,
        Duration::ZERO,
        Duration::from_secs(1),
        1,
        " http://127.0.0.1:1/fhir/ ",
    );
    assert_eq!(o.fhir_server, "http://127.0.0.1:1/fhir");
    assert_eq!((o.patients, o.submissions, o.dataset_seed), (200, 4, 42));
}
