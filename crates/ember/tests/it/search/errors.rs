//! Unknown parameters under lenient and strict handling, and bad input (400).

use serde_json::json;

use super::{
    Checks, body_text, check_searchset, enc, entries_with_mode, link, match_ids, put, search,
};
use crate::common::TestServer;

both_stores!(lenient_and_strict_handling, bad_input_is_400,);

async fn lenient_and_strict_handling(s: &TestServer) {
    put(s, "Patient", "h1", json!({"name": [{"family": "Lenient"}]})).await;
    put(s, "Patient", "h2", json!({"name": [{"family": "Other"}]})).await;

    let strict = [("prefer", "handling=strict")];
    let r = s
        .send("GET", "Patient?family=lenient&foo=bar", &strict, None)
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", body_text(&r));
    assert!(
        r.outcome().contains("foo"),
        "the outcome names the parameter"
    );
    // Modifiers control parameters do not have are named, not taken for something else.
    for (q, named) in [
        ("Patient?_sort:desc=family", "_sort takes no modifier"),
        (
            "Patient?_include:recursive=Patient:organization",
            ":recursive is not a modifier",
        ),
    ] {
        let r = s.send("GET", q, &strict, None).await;
        assert_eq!(r.status.as_u16(), 400, "{q}: {}", body_text(&r));
        assert!(r.outcome().contains(named), "{q}: {}", body_text(&r));
    }
    // Strict with only known parameters is fine.
    let r = s.send("GET", "Patient?family=lenient", &strict, None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", body_text(&r));
    assert_eq!(match_ids(&r.json()), ["h1"]);

    for headers in [&[][..], &[("prefer", "handling=lenient")][..]] {
        let r = s
            .send("GET", "Patient?family=lenient&foo=bar", headers, None)
            .await;
        assert_eq!(r.status.as_u16(), 200, "{headers:?}: {}", body_text(&r));
        let b = r.json();
        check_searchset(&b).unwrap();
        // The unknown parameter is ignored: it does not filter, and is not in self.
        assert_eq!(match_ids(&b), ["h1"], "{b}");
        let me = link(&b, "self").expect("self link");
        assert!(
            !me.contains("foo"),
            "the ignored parameter is in the self link: {me}"
        );
        assert!(me.contains("family=lenient"), "{me}");
        let outcomes = entries_with_mode(&b, "outcome");
        assert_eq!(outcomes.len(), 1, "{b}");
        assert_eq!(outcomes[0]["resourceType"], "OperationOutcome");
        assert!(
            outcomes[0].to_string().contains("foo"),
            "the outcome names the ignored parameter: {}",
            outcomes[0]
        );
    }

    // An unsupported modifier makes the parameter unsupported (R4: SHOULD be ignored
    // when lenient, rejected when strict): an unknown modifier, and :exact on a token.
    for q in ["Patient?family:nonsense=x", "Patient?gender:exact=male"] {
        let r = s.send("GET", &enc(q), &strict, None).await;
        assert_eq!(r.status.as_u16(), 400, "strict {q}: {}", body_text(&r));
        r.outcome();
        let r = s.get(&enc(q)).await;
        assert_eq!(r.status.as_u16(), 200, "lenient {q}: {}", body_text(&r));
        let b = r.json();
        let mut ids = match_ids(&b);
        ids.sort();
        assert_eq!(
            ids,
            ["h1", "h2"],
            "{q}: the parameter is ignored, not applied: {b}"
        );
        assert_eq!(entries_with_mode(&b, "outcome").len(), 1, "{q}: {b}");
        let me = link(&b, "self").expect("self link");
        assert!(
            !me.contains("family") && !me.contains("gender"),
            "{q}: self {me}"
        );
    }
}

async fn bad_input_is_400(s: &TestServer) {
    put(s, "Patient", "z1", json!({"birthDate": "1980-01-01"})).await;
    let mut c = Checks::new(s);
    c.bad("Patient?birthdate=1980-13-45").await;
    c.bad("Patient?birthdate=not-a-date").await;
    c.bad("Patient?birthdate=xx1980").await; // unknown prefix
    c.bad("Patient?birthdate=gt").await;
    c.bad("Patient?birthdate=1980-01-01T25:00:00Z").await;
    c.bad("Patient?_lastUpdated=yesterday").await;
    c.bad("RiskAssessment?probability=zz0.5").await;
    c.bad("RiskAssessment?probability=abc").await;
    c.bad("Observation?value-quantity=abc|http://unitsofmeasure.org|mg")
        .await;
    c.bad("Patient?_count=abc").await;
    c.bad("Patient?_count=-1").await;
    c.bad("Patient?_sort=nonexistent").await;
    c.bad("Patient?_sort=family,nonexistent").await;
    c.bad("Patient?_summary=sometimes").await;
    c.bad("Observation?code-value-quantity=http://loinc.org|8480-6$notanumber")
        .await;
    c.finish();
    // And nothing above broke the server.
    assert_eq!(
        match_ids(&search(s, "Patient?birthdate=1980").await),
        ["z1"]
    );
}
