//! The terminology modifiers of token parameters: `:in` and `:not-in` (a stored or an
//! R4 value set), `:below` and `:above` (a code's place in a stored CodeSystem's
//! hierarchy). The fixture is `crate::terminology`'s; each expected list is worked out
//! from its hierarchy:
//! `VS_CARDIO` = {asthma, hypertension, htn-stage1, afib}.

use serde_json::json;

use super::{Checks, coded, enc, obs, put};
use crate::common::{Backend, TestServer, TestSettings, expect, expect_outcome};
use crate::terminology::{FINDINGS, VS_CARDIO, fixture};

both_stores!(terminology_modifiers,);

/// One Observation per code, plus the same code under another system and one
/// without a coding.
async fn observations(s: &TestServer) {
    for (id, code) in [
        ("o-htn", "hypertension"),
        ("o-st1", "htn-stage1"),
        ("o-st2", "htn-stage2"),
        ("o-afib", "afib"),
        ("o-asthma", "asthma"),
        ("o-resp", "resp"),
    ] {
        put(
            s,
            "Observation",
            id,
            obs(json!({"code": coded(FINDINGS, code)})),
        )
        .await;
    }
    put(
        s,
        "Observation",
        "o-other",
        obs(json!({"code": coded("http://example.org/other", "hypertension")})),
    )
    .await;
    put(s, "Observation", "o-none", obs(json!({}))).await;
}

async fn terminology_modifiers(s: &TestServer) {
    fixture(s).await;
    observations(s).await;
    let mut c = Checks::new(s);
    c.ids(
        &format!("Observation?code:in={VS_CARDIO}"),
        &["o-htn", "o-st1", "o-afib", "o-asthma"],
    )
    .await;
    c.ids(
        &format!("Observation?code:not-in={VS_CARDIO}"),
        &["o-st2", "o-resp", "o-other", "o-none"],
    )
    .await;
    c.ids(
        &format!("Observation?code:below={FINDINGS}|hypertension"),
        &["o-htn", "o-st1", "o-st2"],
    )
    .await;
    c.ids(
        &format!("Observation?code:below={FINDINGS}|cardio"),
        &["o-htn", "o-st1", "o-st2", "o-afib"],
    )
    .await;
    c.ids(
        &format!("Observation?code:below={FINDINGS}|htn-stage2,{FINDINGS}|asthma"),
        &["o-st2", "o-asthma"],
    )
    .await;
    c.ids(
        &format!("Observation?code:above={FINDINGS}|htn-stage1"),
        &["o-htn", "o-st1"],
    )
    .await;
    c.ids(
        &format!("Observation?code:above={FINDINGS}|afib"),
        &["o-afib"],
    )
    .await;
    // Combined with another filter, and through a paging link.
    c.ids(
        &format!("Observation?code:in={VS_CARDIO}&_id=o-afib,o-st2,o-htn"),
        &["o-htn", "o-afib"],
    )
    .await;
    c.ids(
        &format!("Observation?code:in={VS_CARDIO}&_count=1"),
        &["o-htn", "o-st1", "o-afib", "o-asthma"],
    )
    .await;
    // An R4 value set of the tables.
    put(
        s,
        "Observation",
        "o-final",
        json!({"status": "final", "code": {"text": "x"}}),
    )
    .await;
    c.ids(
        "Observation?status:in=http://hl7.org/fhir/ValueSet/observation-status&_id=o-final,o-none",
        &["o-final", "o-none"],
    )
    .await;
    // Unknown value sets, systems and codes are 400s that name them.
    c.bad("Observation?code:in=http://example.org/nope").await;
    c.bad("Observation?code:not-in=http://example.org/nope")
        .await;
    c.bad("Observation?code:below=http://example.org/none|a")
        .await;
    c.bad(&format!("Observation?code:below={FINDINGS}|nope"))
        .await;
    c.bad("Observation?code:above=hypertension").await;
    c.finish();
    let text = expect_outcome(
        &s.get(&enc("Observation?code:in=http://example.org/nope"))
            .await,
        400,
    );
    assert!(text.contains("http://example.org/nope"), "{text}");
    // A change of the value set changes the search at once.
    let mut vs = crate::terminology::cardio_value_set();
    vs["compose"].as_object_mut().unwrap().remove("exclude");
    expect(&s.put("ValueSet/cardio", &vs).await, 200);
    let mut c = Checks::new(s);
    c.ids(
        &format!("Observation?code:in={VS_CARDIO}"),
        &["o-htn", "o-st1", "o-st2", "o-afib", "o-asthma"],
    )
    .await;
    c.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_codes_sqlite() {
    too_many_codes(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_codes_postgres() {
    too_many_codes(Backend::Postgres).await;
}

/// A search whose code set exceeds the limit is refused, not cut short.
async fn too_many_codes(backend: Backend) {
    let mut settings = TestSettings::default();
    settings.limits.max_search_codes = 3;
    let s = TestServer::start_with(backend, settings).await;
    fixture(&s).await;
    observations(&s).await;
    let mut c = Checks::new(&s);
    c.ids(
        &format!("Observation?code:below={FINDINGS}|hypertension"),
        &["o-htn", "o-st1", "o-st2"],
    )
    .await;
    c.finish();
    let text = expect_outcome(
        &s.get(&enc(&format!("Observation?code:in={VS_CARDIO}")))
            .await,
        400,
    );
    assert!(text.contains("at most 3"), "{text}");
}
