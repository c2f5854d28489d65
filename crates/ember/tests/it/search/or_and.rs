//! OR (comma-separated values) and AND (repeated parameters) combined.

use serde_json::json;

use super::{Checks, put};
use crate::common::TestServer;

both_stores!(or_and_combinations);

async fn or_and_combinations(s: &TestServer) {
    for (id, family, gender, birth) in [
        ("x1", "Nord", "female", "1990-01-01"),
        ("x2", "Nord", "male", "1985-01-01"),
        ("x3", "Syd", "female", "1985-06-01"),
        ("x4", "Vest", "male", "1990-06-01"),
        ("x5", "Östen", "other", "2000-01-01"),
    ] {
        put(
            s,
            "Patient",
            id,
            json!({"name": [{"family": family}], "gender": gender, "birthDate": birth}),
        )
        .await;
    }
    let mut c = Checks::new(s);
    c.ids("Patient?gender=female,other", &["x1", "x3", "x5"])
        .await;
    c.ids("Patient?family=nord,syd&gender=female", &["x1", "x3"])
        .await;
    c.ids("Patient?family=nord&gender=male", &["x2"]).await;
    c.ids("Patient?family=nord&family=syd", &[]).await; // no one has both
    c.ids(
        "Patient?birthdate=1985,2000&gender=male,other",
        &["x2", "x5"],
    )
    .await;
    c.ids(
        "Patient?birthdate=ge1985-03&birthdate=le1990",
        &["x1", "x3", "x4"],
    )
    .await;
    c.ids("Patient?family=ost", &["x5"]).await;
    c.ids("Patient?_id=x1,x2,x3&gender=male", &["x2"]).await;
    c.ids("Patient?gender=male&gender=female", &[]).await;
    c.finish();
}
