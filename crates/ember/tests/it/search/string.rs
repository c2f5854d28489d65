//! String parameters.

use serde_json::json;

use super::{Checks, put};
use crate::common::TestServer;

both_stores!(string_search);

async fn string_search(s: &TestServer) {
    put(
        s,
        "Patient",
        "p1",
        json!({"name": [{"family": "Ångström", "given": ["Eva"]}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p2",
        json!({"name": [{"family": "Angstrom", "given": ["Erik"]}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p3",
        json!({"name": [{"family": "Anders", "given": ["Lena"]}], "address": [{"city": "Århus"}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p4",
        json!({"name": [{"family": "Berg", "given": ["Angelica"]}]}),
    )
    .await;
    put(
        s,
        "Patient",
        "p5",
        json!({"name": [{"family": "Lindang", "given": ["Ola"]}]}),
    )
    .await;

    let mut c = Checks::new(s);
    // Default: starts-with, case- and accent-insensitive. Lindang only contains "ang".
    c.ids("Patient?family=ang", &["p1", "p2"]).await;
    c.ids("Patient?family=ANGSTR", &["p1", "p2"]).await;
    c.ids("Patient?family=angstrom", &["p1", "p2"]).await;
    c.ids("Patient?family=Ångström", &["p1", "p2"]).await; // accents ignored in the query too
    c.ids("Patient?family=berg", &["p4"]).await;
    c.ids("Patient?family=zzz", &[]).await;
    // :exact is the whole string, case- and accent-sensitive.
    c.ids("Patient?family:exact=Angstrom", &["p2"]).await;
    c.ids("Patient?family:exact=Ångström", &["p1"]).await;
    c.ids("Patient?family:exact=angstrom", &[]).await;
    c.ids("Patient?family:exact=Angs", &[]).await;
    // :contains anywhere, case-insensitive.
    c.ids("Patient?family:contains=ang", &["p1", "p2", "p5"])
        .await;
    c.ids("Patient?family:contains=DANG", &["p5"]).await;
    // name covers given too: Angelica.
    c.ids("Patient?name=ang", &["p1", "p2", "p4"]).await;
    c.ids("Patient?name:contains=ang", &["p1", "p2", "p4", "p5"])
        .await;
    c.ids("Patient?given=er", &["p2"]).await;
    c.ids("Patient?address-city=arhus", &["p3"]).await;
    c.ids("Patient?address=århus", &["p3"]).await;
    // OR and AND.
    c.ids("Patient?name=eva,lena", &["p1", "p3"]).await;
    c.ids("Patient?name=ang&name=erik", &["p2"]).await; // p2 is the only Ang* with Erik
    c.ids("Patient?family=an&given=le", &["p3"]).await;
    c.ids("Patient?family:exact=Angstrom,Berg", &["p2", "p4"])
        .await;
    c.finish();
}
