//! Date parameters on dates, dateTimes and Periods.

use serde_json::json;

use super::{Checks, obs, put, try_all_ids};
use crate::common::TestServer;

both_stores!(date_search_on_dates, date_search_on_datetimes_and_periods,);

async fn date_search_on_dates(s: &TestServer) {
    // Ranges: d1 = 1980-05-01 (a day), d2 = all of 1980, d3 = 1981-01-01, d4 = 1979-12-31,
    // d5 = December 1980; d6 has no birthDate.
    for (id, d) in [
        ("d1", "1980-05-01"),
        ("d2", "1980"),
        ("d3", "1981-01-01"),
        ("d4", "1979-12-31"),
        ("d5", "1980-12"),
    ] {
        put(s, "Patient", id, json!({"birthDate": d})).await;
    }
    put(s, "Patient", "d6", json!({"gender": "other"})).await;

    let mut c = Checks::new(s);
    // eq: the search range contains the target range.
    c.ids("Patient?birthdate=1980", &["d1", "d2", "d5"]).await;
    c.ids("Patient?birthdate=eq1980", &["d1", "d2", "d5"]).await;
    c.ids("Patient?birthdate=1980-05", &["d1"]).await; // all of 1980 is not inside May
    c.ids("Patient?birthdate=1980-05-01", &["d1"]).await;
    c.ids("Patient?birthdate=1980-12", &["d5"]).await;
    // ne: the search range does not contain the target range.
    c.ids("Patient?birthdate=ne1980", &["d3", "d4"]).await;
    // gt/lt: the range above/below the search value overlaps the target.
    c.ids("Patient?birthdate=gt1980", &["d3"]).await;
    c.ids("Patient?birthdate=gt1980-06", &["d2", "d3", "d5"])
        .await; // 1980 reaches past June
    c.ids("Patient?birthdate=lt1980", &["d4"]).await;
    c.ids("Patient?birthdate=lt1980-06", &["d1", "d2", "d4"])
        .await;
    // ge/le: as gt/lt, or contained in the search range.
    c.ids("Patient?birthdate=ge1980-05-01", &["d1", "d2", "d3", "d5"])
        .await;
    c.ids("Patient?birthdate=le1980-05-01", &["d1", "d2", "d4"])
        .await;
    c.ids("Patient?birthdate=ge1981", &["d3"]).await;
    // sa/eb: entirely after/before the search range, no overlap.
    c.ids("Patient?birthdate=sa1980-05", &["d3", "d5"]).await;
    c.ids("Patient?birthdate=eb1980-05", &["d4"]).await;
    c.ids("Patient?birthdate=eb1980", &["d4"]).await;
    // AND makes a range.
    c.ids(
        "Patient?birthdate=ge1980&birthdate=lt1981",
        &["d1", "d2", "d5"],
    )
    .await;
    // OR.
    c.ids("Patient?birthdate=1979,1981", &["d3", "d4"]).await;
    c.ids("Patient?birthdate:missing=true", &["d6"]).await;
    c.ids(
        "Patient?birthdate:missing=false",
        &["d1", "d2", "d3", "d4", "d5"],
    )
    .await;
    c.finish();

    // ap is implementation-defined, but must include the exact day and not a far date.
    let got = try_all_ids(s, "Patient?birthdate=ap1980-05-01").await;
    let got = got.unwrap_or_else(|e| panic!("birthdate=ap1980-05-01: {e}"));
    assert!(got.contains(&"d1".to_owned()), "ap1980-05-01 → {got:?}");
    assert!(!got.contains(&"d6".to_owned()), "ap1980-05-01 → {got:?}");
}

async fn date_search_on_datetimes_and_periods(s: &TestServer) {
    put(
        s,
        "Observation",
        "e1",
        obs(json!({"effectiveDateTime": "2020-01-01T00:00:00Z"})),
    )
    .await;
    put(
        s,
        "Observation",
        "e2",
        obs(json!({"effectiveDateTime": "2019-12-31T23:59:59Z"})),
    )
    .await;
    put(
        s,
        "Observation",
        "e3",
        obs(json!({"effectivePeriod": {"start": "2019-12-01", "end": "2020-02-01"}})),
    )
    .await;
    put(
        s,
        "Observation",
        "e4",
        obs(json!({"effectivePeriod": {"start": "2019-06-01", "end": "2019-07-01"}})),
    )
    .await;
    put(
        s,
        "Observation",
        "e5",
        obs(json!({"effectiveDateTime": "2020-06-15"})),
    )
    .await;
    put(
        s,
        "Observation",
        "e6",
        obs(json!({"effectivePeriod": {"start": "2021-01-01T10:00:00Z"}})), // open-ended
    )
    .await;
    put(s, "Observation", "e7", obs(json!({}))).await;

    let mut c = Checks::new(s);
    c.ids(
        "Observation?date=ge2020-01-01T00:00:00Z",
        &["e1", "e3", "e5", "e6"],
    )
    .await;
    c.ids(
        "Observation?date=gt2020-01-01T00:00:00Z",
        &["e3", "e5", "e6"],
    )
    .await;
    c.ids(
        "Observation?date=lt2020-01-01T00:00:00Z",
        &["e2", "e3", "e4"],
    )
    .await;
    c.ids(
        "Observation?date=le2020-01-01T00:00:00Z",
        &["e1", "e2", "e3", "e4"],
    )
    .await;
    c.ids("Observation?date=2020-01-01T00:00:00Z", &["e1"])
        .await;
    c.ids("Observation?date=2020-01", &["e1"]).await; // e3 runs past January
    c.ids("Observation?date=2020", &["e1", "e5"]).await;
    c.ids("Observation?date=2019-12-31", &["e2"]).await;
    c.ids("Observation?date=sa2019-12-31", &["e1", "e5", "e6"])
        .await;
    c.ids("Observation?date=eb2020", &["e2", "e4"]).await;
    c.ids("Observation?date=gt2020-12-31", &["e6"]).await;
    c.ids("Observation?date=ge2030-01-01", &["e6"]).await; // no end: still going
    // A time zone offset names the same instant as e1.
    c.ids("Observation?date=2020-01-01T01:00:00+01:00", &["e1"])
        .await;
    c.ids("Observation?date=ge2019-06-15&date=le2019-06-20", &["e4"])
        .await;
    c.finish();
}
