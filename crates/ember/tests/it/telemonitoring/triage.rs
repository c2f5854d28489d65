//! Triage of measurements, with hand-worked expected colours, priorities, Task
//! categories and owners.

use serde_json::json;

use super::*;
use crate::common::TestServer;

const INSIDE: &str = "442082004";
const OUTSIDE: &str = "442096005";

both_stores!(
    spo2_the_worst_colour_wins,
    pulse_with_two_red_zones,
    blood_pressure_by_component,
    a_kpa_threshold_against_a_mm_hg_value,
    an_unconvertible_unit_fails_auto_processing,
    no_zones_means_assessment,
    a_missing_value_fails_auto_processing,
);

async fn spo2_the_worst_colour_wins(s: &TestServer) {
    setup(s).await;
    let refs = submit(
        s,
        &[
            reading("spo2", "59408-5", 85.0, "%"),
            reading("spo2", "59408-5", 86.0, "%"),
            reading("spo2", "59408-5", 88.0, "%"),
            reading("spo2", "59408-5", 95.0, "%"),
        ],
    )
    .await;
    // 85 lies in the red zone (≤ 85) and the yellow one (85–88): red wins.
    let expected = [
        ("red", "asap"),
        ("yellow", "urgent"),
        ("yellow", "urgent"),
        ("green", "routine"),
    ];
    for (reference, (colour, priority)) in refs.iter().zip(expected) {
        let t = triaged(s, reference).await;
        assert_eq!(t.colour().as_deref(), Some(colour), "{reference}");
        assert_eq!(t.priority(), priority);
        assert_eq!(t.category(), "MeasurementForAssessment");
        assert_eq!(t.task["owner"]["reference"], "CareTeam/team");
        assert_eq!(t.task["for"]["reference"], "Patient/pat");
        assert_eq!(t.task["basedOn"][0]["reference"], "ServiceRequest/spo2");
        assert_eq!(t.task["status"], "requested");
        assert_eq!(t.impression["status"], "completed");
        assert_eq!(t.impression["code"]["coding"][0]["code"], "TriagingResult");
        assert_eq!(
            t.impression["investigation"][0]["item"][0]["reference"],
            reference.as_str()
        );
        assert_eq!(
            t.snomed(),
            vec![if colour == "green" { INSIDE } else { OUTSIDE }]
        );
        match &t.notice {
            Some(n) => {
                assert_ne!(colour, "green");
                assert_eq!(n["recipient"][0]["reference"], "CareTeam/team");
                assert_eq!(n["sender"]["reference"], "Device/ember-triage");
                assert_eq!(
                    n["about"][0]["reference"],
                    format!("Task/{}", t.task["id"].as_str().unwrap())
                );
            }
            None => assert_eq!(colour, "green", "{reference}: no Communication"),
        }
    }
    // The zones in force were copied into the measurement.
    let obs = s.get(&refs[0]).await.json();
    let ranges = obs["referenceRange"].as_array().unwrap();
    assert_eq!(ranges.len(), 2, "{obs}");
    assert_eq!(ranges[0]["type"]["coding"][0]["code"], "RAL");
    assert_eq!(ranges[0]["high"]["value"], json!(85.0));
    assert_eq!(s.get("Device/ember-triage").await.status, 200);
}

async fn pulse_with_two_red_zones(s: &TestServer) {
    setup(s).await;
    let refs = submit(
        s,
        &[
            reading("pulse", "8867-4", 50.0, "/min"),
            reading("pulse", "8867-4", 51.0, "/min"),
            reading("pulse", "8867-4", 129.0, "/min"),
            reading("pulse", "8867-4", 130.0, "/min"),
        ],
    )
    .await;
    for (reference, colour) in refs.iter().zip(["red", "green", "green", "red"]) {
        let t = triaged(s, reference).await;
        assert_eq!(t.colour().as_deref(), Some(colour), "{reference}");
        assert_eq!(t.notice.is_some(), colour == "red");
    }
}

async fn blood_pressure_by_component(s: &TestServer) {
    setup(s).await;
    let refs = submit(
        s,
        &[
            blood_pressure("bp", 120.0, 80.0, "mm[Hg]"),
            blood_pressure("bp", 160.0, 80.0, "mm[Hg]"),
            blood_pressure("bp", 140.0, 112.0, "mm[Hg]"),
        ],
    )
    .await;
    let green = triaged(s, &refs[0]).await;
    assert_eq!(green.colour().as_deref(), Some("green"));
    assert_eq!(green.snomed(), vec![INSIDE, INSIDE]);
    // Systolic 160 is yellow (≥ 150); diastolic 80 is inside.
    let yellow = triaged(s, &refs[1]).await;
    assert_eq!(yellow.colour().as_deref(), Some("yellow"));
    assert_eq!(yellow.priority(), "urgent");
    assert_eq!(yellow.snomed(), vec![OUTSIDE, INSIDE]);
    // Diastolic 112 is red (≥ 110), whatever the systolic value.
    let red = triaged(s, &refs[2]).await;
    assert_eq!(red.colour().as_deref(), Some("red"));
    assert_eq!(red.snomed(), vec![INSIDE, OUTSIDE]);
}

async fn a_kpa_threshold_against_a_mm_hg_value(s: &TestServer) {
    setup(s).await;
    // Zones: red ≥ 24 kPa (180.0 mm[Hg]), yellow ≥ 20 kPa (150.0 mm[Hg]).
    let refs = submit(
        s,
        &[
            reading("bp-kpa", "8480-6", 149.0, "mm[Hg]"),
            reading("bp-kpa", "8480-6", 151.0, "mm[Hg]"),
            reading("bp-kpa", "8480-6", 181.0, "mm[Hg]"),
        ],
    )
    .await;
    for (reference, colour) in refs.iter().zip(["green", "yellow", "red"]) {
        assert_eq!(
            triaged(s, reference).await.colour().as_deref(),
            Some(colour),
            "{reference}"
        );
    }
}

async fn an_unconvertible_unit_fails_auto_processing(s: &TestServer) {
    setup(s).await;
    let refs = submit(s, &[reading("spo2", "59408-5", 80.0, "kg")]).await;
    let t = triaged(s, &refs[0]).await;
    assert_eq!(t.colour(), None);
    assert_eq!(
        t.category(),
        "MeasurementForAssessmentFailureInAutoProcessing"
    );
    assert_eq!(t.priority(), "routine");
    let why = t.task["description"].as_str().unwrap();
    assert!(
        why.contains("kg") && why.contains("cannot be compared"),
        "{why}"
    );
    assert!(t.notice.is_none());
}

async fn no_zones_means_assessment(s: &TestServer) {
    setup(s).await;
    let refs = submit(s, &[reading("weight", "29463-7", 81.5, "kg")]).await;
    let t = triaged(s, &refs[0]).await;
    assert_eq!(t.colour(), None);
    assert_eq!(t.category(), "MeasurementForAssessment");
    assert_eq!(t.priority(), "routine");
    assert!(t.notice.is_none());
}

async fn a_missing_value_fails_auto_processing(s: &TestServer) {
    setup(s).await;
    let mut obs = reading("spo2", "59408-5", 0.0, "%");
    obs.as_object_mut().unwrap().remove("valueQuantity");
    obs["dataAbsentReason"] = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "error"}]});
    let refs = submit(s, &[obs]).await;
    let t = triaged(s, &refs[0]).await;
    assert_eq!(
        t.category(),
        "MeasurementForAssessmentFailureInAutoProcessing"
    );
    assert_eq!(t.priority(), "routine");
    assert!(t.task["description"].as_str().unwrap().contains("error"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_results_carry_the_coexistence_tag() {
    results_carry_the_coexistence_tag(crate::common::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_results_carry_the_coexistence_tag() {
    results_carry_the_coexistence_tag(crate::common::Backend::Postgres).await;
}

async fn results_carry_the_coexistence_tag(backend: crate::common::Backend) {
    let settings = crate::common::TestSettings {
        telemed: ember_telemed::Settings {
            coexistence_tag: Some(("http://example.org/solution".into(), "ember".into())),
            ..Default::default()
        },
        ..Default::default()
    };
    let s = TestServer::start_with(backend, settings).await;
    setup(&s).await;
    let refs = submit(&s, &[reading("spo2", "59408-5", 80.0, "%")]).await;
    let t = triaged(&s, &refs[0]).await;
    let notice = t.notice.clone().expect("a red result notifies");
    for resource in [&t.impression, &t.task, &notice] {
        assert_eq!(
            resource["meta"]["tag"][0],
            json!({"system": "http://example.org/solution", "code": "ember"}),
            "{resource}"
        );
    }
    let found = wait_for(&s, "Task?_tag=http://example.org/solution|ember", 1).await;
    assert_eq!(found.len(), 1);
}
