use super::*;

const UCUM: &str = "http://unitsofmeasure.org";
const LOINC: &str = "http://loinc.org";

fn q(value: f64, code: &str) -> Value {
    json!({"value": value, "unit": code, "system": UCUM, "code": code})
}

fn threshold(
    kind: &str,
    low: Option<Value>,
    high: Option<Value>,
    component: Option<&str>,
) -> Value {
    let mut coding = vec![json!({"system": ZONE_TYPE_SYSTEMS[0], "code": kind})];
    if let Some(c) = component {
        coding.push(json!({"system": LOINC, "code": c}));
    }
    let mut parts = vec![json!({"url": "type", "valueCodeableConcept": {"coding": coding}})];
    if let Some(l) = low {
        parts.push(json!({"url": "low", "valueQuantity": l}));
    }
    if let Some(h) = high {
        parts.push(json!({"url": "high", "valueQuantity": h}));
    }
    json!({"url": THRESHOLD_URL, "extension": parts})
}

fn colour(zones: &[Value], obs: Value) -> Result<Colour, Unjudgeable> {
    let sr = json!({"resourceType": "ServiceRequest", "extension": zones});
    let zones = of_service_request(&sr)?;
    let judged = judge(&measured(&obs)?, &zones)?;
    Ok(judged
        .iter()
        .map(|j| j.colour)
        .max()
        .unwrap_or(Colour::Green))
}

fn value(v: f64, unit: &str) -> Value {
    json!({"resourceType": "Observation", "valueQuantity": q(v, unit)})
}

#[test]
fn spo2_red_at_or_below_85_yellow_from_85_to_88() {
    let zones = [
        threshold("RAL", None, Some(q(85.0, "%")), None),
        threshold("GAL", Some(q(85.0, "%")), Some(q(88.0, "%")), None),
    ];
    // 85 is in both zones: the worst colour wins.
    for (v, expected) in [
        (80.0, Colour::Red),
        (85.0, Colour::Red),
        (86.0, Colour::Yellow),
        (88.0, Colour::Yellow),
        (89.0, Colour::Green),
        (98.0, Colour::Green),
    ] {
        assert_eq!(colour(&zones, value(v, "%")).unwrap(), expected, "{v}");
    }
}

#[test]
fn pulse_with_two_red_zones() {
    let zones = [
        threshold("RAL", None, Some(q(50.0, "/min")), None),
        threshold("RAL", Some(q(130.0, "/min")), None, None),
    ];
    for (v, expected) in [
        (45.0, Colour::Red),
        (50.0, Colour::Red),
        (51.0, Colour::Green),
        (129.0, Colour::Green),
        (130.0, Colour::Red),
        (180.0, Colour::Red),
    ] {
        assert_eq!(colour(&zones, value(v, "/min")).unwrap(), expected, "{v}");
    }
}

#[test]
fn blood_pressure_by_component() {
    let zones = [
        threshold("RAL", Some(q(180.0, "mm[Hg]")), None, Some("8480-6")),
        threshold("GAL", Some(q(150.0, "mm[Hg]")), None, Some("8480-6")),
        threshold("RAL", Some(q(110.0, "mm[Hg]")), None, Some("8462-4")),
        threshold("GAL", Some(q(95.0, "mm[Hg]")), None, Some("8462-4")),
    ];
    let bp = |sys: f64, dia: f64| {
        json!({"resourceType": "Observation", "component": [
            {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": q(sys, "mm[Hg]")},
            {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": q(dia, "mm[Hg]")},
        ]})
    };
    assert_eq!(colour(&zones, bp(120.0, 80.0)).unwrap(), Colour::Green);
    assert_eq!(colour(&zones, bp(155.0, 80.0)).unwrap(), Colour::Yellow);
    // The diastolic zone decides: a systolic value of 100 is not compared with it.
    assert_eq!(colour(&zones, bp(100.0, 112.0)).unwrap(), Colour::Red);
    let sr = json!({"extension": zones});
    let judged = judge(
        &measured(&bp(155.0, 96.0)).unwrap(),
        &of_service_request(&sr).unwrap(),
    )
    .unwrap();
    assert_eq!(judged.len(), 2);
    assert!(judged.iter().all(|j| j.colour == Colour::Yellow));
}

#[test]
fn a_kpa_threshold_against_a_mm_hg_value() {
    // 20 kPa is 150.01 mm[Hg]; 24 kPa is 180.01 mm[Hg].
    let zones = [
        threshold("RAL", Some(q(24.0, "kPa")), None, None),
        threshold("GAL", Some(q(20.0, "kPa")), None, None),
    ];
    assert_eq!(
        colour(&zones, value(150.0, "mm[Hg]")).unwrap(),
        Colour::Green
    );
    assert_eq!(
        colour(&zones, value(151.0, "mm[Hg]")).unwrap(),
        Colour::Yellow
    );
    assert_eq!(colour(&zones, value(181.0, "mm[Hg]")).unwrap(), Colour::Red);
    // Grams against kilograms convert too.
    let weight = [threshold("GAL", Some(q(100.0, "kg")), None, None)];
    assert_eq!(
        colour(&weight, value(99_000.0, "g")).unwrap(),
        Colour::Green
    );
    assert_eq!(
        colour(&weight, value(100_500.0, "g")).unwrap(),
        Colour::Yellow
    );
}

#[test]
fn an_unconvertible_unit_is_never_guessed() {
    let zones = [threshold("RAL", None, Some(q(85.0, "%")), None)];
    let err = colour(&zones, value(80.0, "kg")).unwrap_err();
    assert!(err.0.contains("cannot be compared"), "{err}");
}

#[test]
fn no_zones_no_value_and_malformed_zones() {
    let sr = json!({"extension": [{"url": "http://example.org/other", "valueString": "x"}]});
    assert!(of_service_request(&sr).unwrap().is_empty());
    let absent = json!({"resourceType": "Observation", "dataAbsentReason": {"coding": [{"code": "asked-declined"}]}});
    let err = measured(&absent).unwrap_err();
    assert!(err.0.contains("asked-declined"), "{err}");
    let unbounded = [threshold("RAL", None, None, None)];
    assert!(colour(&unbounded, value(1.0, "%")).is_err());
    let upside_down = [threshold(
        "GAL",
        Some(q(90.0, "%")),
        Some(q(80.0, "%")),
        None,
    )];
    assert!(colour(&upside_down, value(85.0, "%")).is_err());
    let no_unit = json!({"resourceType": "Observation", "valueQuantity": {"value": 80}});
    assert!(measured(&no_unit).is_err());
}

#[test]
fn zones_copied_into_reference_ranges_read_back_the_same() {
    let ext = [
        threshold("RAL", None, Some(q(85.0, "%")), None),
        threshold("GAL", Some(q(85.0, "%")), Some(q(88.0, "%")), None),
    ];
    let zones = of_service_request(&json!({"extension": ext})).unwrap();
    let obs = json!({"referenceRange": zones.iter().map(|z| z.range.clone()).collect::<Vec<_>>()});
    assert_eq!(of_observation(&obs).unwrap(), zones);
}
