//! The missing-measurement check: a daily order without yesterday's reading gets one
//! `MissingMeasurementResolving` Task and one Communication, however often the check
//! runs; an order whose reading came gets none.

use std::time::Duration;

use ember_fhir::instant;
use serde_json::json;

use super::*;
use crate::common::{Backend, TestServer, TestSettings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_missing_daily_measurement() {
    a_missing_daily_measurement(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_missing_daily_measurement() {
    a_missing_daily_measurement(Backend::Postgres).await;
}

async fn a_missing_daily_measurement(backend: Backend) {
    let settings = TestSettings {
        telemed: ember_telemed::Settings {
            missing_check: Some(Duration::from_secs(1)),
            ..Default::default()
        },
        ..Default::default()
    };
    let s = TestServer::start_with(backend, settings).await;
    // Yesterday's pulse reading came (stored before the orders, so no check can run
    // between them); no other order got one.
    let yesterday = instant::format_instant(instant::now() - 24 * 3_600_000_000);
    let mut pulse = reading("pulse", "8867-4", 70.0, "/min");
    pulse["effectiveDateTime"] = json!(yesterday);
    expect(&s.post("Observation", &pulse).await, 201);
    setup(&s).await;

    let query = "Task?code=http://ehealth.sundhed.dk/cs/task-category|MissingMeasurementResolving";
    // Active daily orders of `pat` without yesterday's reading: spo2, bp, bp-kpa, weight;
    // and `pulse-other` of the other patient.
    let tasks = wait_for(&s, query, 5).await;
    // Several more checks run; the same gaps are not reported again.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let tasks_after = wait_for(&s, query, 5).await;
    assert_eq!(tasks_after.len(), 5, "{tasks_after:?}");
    assert_eq!(tasks.len(), 5);
    let mut focus: Vec<&str> = tasks_after
        .iter()
        .map(|t| t["focus"]["reference"].as_str().unwrap())
        .collect();
    focus.sort_unstable();
    assert_eq!(
        focus,
        [
            "ServiceRequest/bp",
            "ServiceRequest/bp-kpa",
            "ServiceRequest/pulse-other",
            "ServiceRequest/spo2",
            "ServiceRequest/weight"
        ]
    );
    let spo2 = tasks_after
        .iter()
        .find(|t| t["focus"]["reference"] == "ServiceRequest/spo2")
        .unwrap();
    assert_eq!(spo2["priority"], "routine");
    assert_eq!(spo2["owner"]["reference"], "CareTeam/team");
    assert_eq!(spo2["for"]["reference"], "Patient/pat");
    let about = format!("Communication?about=Task/{}", spo2["id"].as_str().unwrap());
    let notices = wait_for(&s, &about, 1).await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0]["recipient"][0]["reference"], "CareTeam/team");
    let all_notices = wait_for(&s, "Communication?_count=100", 5).await;
    assert_eq!(all_notices.len(), 5);
}
