//! Compartment search (`GET Patient/[id]/[type]?…`).

use serde_json::json;

use super::{Checks, clinical_fixture, obs, put, reference};
use crate::common::TestServer;

both_stores!(compartment_search);

async fn compartment_search(s: &TestServer) {
    clinical_fixture(s).await;
    let mut c = Checks::new(s);
    c.ids("Patient/p1/Observation", &["o1", "o3"]).await;
    c.ids("Patient/p1/Observation?code=8480-6", &["o1"]).await;
    c.ids("Patient/p2/Observation?code=29463-7", &[]).await;
    c.ids("Patient/p2/Observation", &["o2"]).await;
    c.ids("Patient/nobody/Observation", &[]).await;
    c.ordered("Patient/p1/Observation?_sort=-_id", &["o3", "o1"])
        .await;
    // Linked by another parameter of the compartment (performer), once even when two
    // parameters link it.
    put(
        s,
        "Observation",
        "o9",
        obs(json!({"subject": reference("Patient/p2"), "performer": [reference("Patient/p1")]})),
    )
    .await;
    put(
        s,
        "Observation",
        "o10",
        obs(json!({"subject": reference("Patient/p1"), "performer": [reference("Patient/p1")]})),
    )
    .await;
    c.ids("Patient/p1/Observation", &["o1", "o3", "o9", "o10"])
        .await;
    c.ids("Patient/p2/Observation", &["o2", "o9"]).await;
    c.finish();
}
