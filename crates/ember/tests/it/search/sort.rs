//! `_sort`.

use std::time::Duration;

use serde_json::json;

use super::{Checks, obs, put};
use crate::common::TestServer;

both_stores!(sorting);

async fn sorting(s: &TestServer) {
    // Created in the order s3, s1, s5, s2, s4 so _lastUpdated order differs from _id order.
    let rows = [
        ("s3", "Berg", "Carl", "1970-01-01", "male"),
        ("s1", "Berg", "Anna", "1990-03-01", "female"),
        ("s5", "Alm", "Eva", "1999-01-01", "female"),
        ("s2", "Alm", "Bo", "1985-07-15", "male"),
        ("s4", "Cedergren", "Dan", "2001-11-30", "other"),
    ];
    for (id, family, given, birth, gender) in rows {
        put(
            s,
            "Patient",
            id,
            json!({"name": [{"family": family, "given": [given]}], "birthDate": birth, "gender": gender}),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut c = Checks::new(s);
    c.ordered("Patient?_sort=birthdate", &["s3", "s2", "s1", "s5", "s4"])
        .await;
    c.ordered("Patient?_sort=-birthdate", &["s4", "s5", "s1", "s2", "s3"])
        .await;
    c.ordered("Patient?_sort=given", &["s1", "s2", "s3", "s4", "s5"])
        .await;
    c.ordered("Patient?_sort=-given", &["s5", "s4", "s3", "s2", "s1"])
        .await;
    // Ties on family broken by the second key.
    c.ordered(
        "Patient?_sort=family,birthdate",
        &["s2", "s5", "s3", "s1", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=family,-birthdate",
        &["s5", "s2", "s1", "s3", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=-family,given",
        &["s4", "s1", "s3", "s2", "s5"],
    )
    .await;
    // A token: female < male < other.
    c.ordered(
        "Patient?_sort=gender,birthdate",
        &["s1", "s5", "s3", "s2", "s4"],
    )
    .await;
    c.ordered("Patient?_sort=_id", &["s1", "s2", "s3", "s4", "s5"])
        .await;
    c.ordered("Patient?_sort=-_id", &["s5", "s4", "s3", "s2", "s1"])
        .await;
    c.ordered(
        "Patient?_sort=_lastUpdated",
        &["s3", "s1", "s5", "s2", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=-_lastUpdated",
        &["s4", "s2", "s5", "s1", "s3"],
    )
    .await;
    // Sort with a filter, and across pages.
    c.ordered(
        "Patient?gender=male,female&_sort=-birthdate",
        &["s5", "s1", "s2", "s3"],
    )
    .await;
    c.ordered(
        "Patient?_sort=birthdate&_count=2",
        &["s3", "s2", "s1", "s5", "s4"],
    )
    .await;
    c.ordered(
        "Patient?_sort=family,given&_count=1",
        &["s2", "s5", "s1", "s3", "s4"],
    )
    .await;
    c.finish();

    // Sorting on a date across Observations, with a Period (sorted by its start).
    put(
        s,
        "Observation",
        "w1",
        obs(json!({"effectiveDateTime": "2021-03-01T10:00:00Z"})),
    )
    .await;
    put(
        s,
        "Observation",
        "w2",
        obs(json!({"effectiveDateTime": "2020-01-01"})),
    )
    .await;
    put(
        s,
        "Observation",
        "w3",
        obs(json!({"effectivePeriod": {"start": "2020-06-01", "end": "2020-07-01"}})),
    )
    .await;
    let mut c = Checks::new(s);
    c.ordered("Observation?_sort=date", &["w2", "w3", "w1"])
        .await;
    c.ordered("Observation?_sort=-date", &["w1", "w3", "w2"])
        .await;
    c.finish();
}
