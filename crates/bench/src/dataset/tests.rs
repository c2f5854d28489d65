use std::collections::HashSet;

use super::*;

fn gen_with(patients: u64, days: u64, deep: &[u64]) -> Generator {
    Generator {
        seed: 42,
        patients,
        days,
        deep: deep.to_vec(),
    }
}

fn code_of(item: &Item) -> &str {
    item.resource["code"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

fn category_of(item: &Item) -> &str {
    item.resource["category"][0]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
}

fn effective(item: &Item) -> &str {
    item.resource["effectiveDateTime"]
        .as_str()
        .unwrap_or_default()
}

const ORDINARY: PatientKey = PatientKey::Ordinary(1);
const DEEP: PatientKey = PatientKey::Deep(1200);

#[test]
fn same_seed_same_resources() {
    let a = gen_with(3, 365, &[300, 1200]);
    let b = a.clone();
    for key in [PatientKey::Ordinary(0), PatientKey::Ordinary(2), DEEP] {
        let (ga, gb) = (a.patient_group(key), b.patient_group(key));
        let ha: Vec<Item> = a.history(key).take(200).collect();
        let hb: Vec<Item> = b.history(key).take(200).collect();
        assert_eq!(ha.len(), 200);
        for (x, y) in ga.iter().chain(&ha).zip(gb.iter().chain(&hb)) {
            assert_eq!(x.resource.to_string(), y.resource.to_string());
            assert_eq!(x.full_url, y.full_url);
        }
    }
    assert_eq!(a.practitioner(0).resource, b.practitioner(0).resource);
    let other = Generator {
        seed: 7,
        ..a.clone()
    };
    let values = |g: &Generator| -> Vec<String> {
        g.observations(PatientKey::Ordinary(0))[..50]
            .iter()
            .map(|o| format!("{}{}", o.resource["valueQuantity"], o.resource["component"]))
            .collect()
    };
    assert_ne!(values(&a), values(&other));
    // k = 0 is the first morning's blood pressure.
    let obs = a.observations(ORDINARY);
    assert_eq!(obs[0].id, "dataset-42-obs-1-0");
    assert_eq!(code_of(&obs[0]), "85354-9");
    assert!(
        effective(&obs[0]).starts_with("2024-01-01T0"),
        "{}",
        effective(&obs[0])
    );
    assert_eq!(
        a.patient_group(PatientKey::Ordinary(0))[0].id,
        "dataset-42-pat-0"
    );
    let deep = a.patient_group(DEEP);
    assert_eq!(deep[0].id, "dataset-42-pat-deep-1200");
    assert_eq!(deep[0].resource["identifier"][0]["value"], "DS0042D0001200");
    assert_eq!(
        deep[1].resource["participant"][0]["member"]["reference"],
        "Practitioner/dataset-42-prac-deep"
    );
    assert_eq!(a.observations(DEEP)[7].id, "dataset-42-obs-deep-1200-7");
    assert!(
        a.patient_group(PatientKey::Ordinary(0))[0].resource["identifier"][0]["value"]
            .as_str()
            .unwrap()
            .starts_with("DS")
    );
}

#[test]
fn counts_match_the_generated_resources() {
    let g = gen_with(2, 365, &[300, 1200]);
    let mut seen: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut ids = HashSet::new();
    let all = g
        .practitioner_items()
        .chain(g.patient_keys().flat_map(|k| g.patient_group(k)))
        .chain(g.patient_keys().flat_map(|k| g.history(k)));
    let mut home = 0;
    for item in all {
        assert_eq!(item.resource["resourceType"], item.res_type);
        assert_eq!(item.resource["id"], item.id.as_str());
        assert!(
            ids.insert(format!("{}/{}", item.res_type, item.id)),
            "{} twice",
            item.id
        );
        *seen.entry(item.res_type).or_default() += 1;
        if item.res_type == "Observation"
            && category_of(&item) == "vital-signs"
            && item.resource["subject"]["reference"]
                .as_str()
                .is_some_and(|s| !s.contains("deep"))
        {
            home += 1;
        }
    }
    assert_eq!(seen, g.counts());
    // Per ordinary patient and year: blood pressure twice a day, SpO2 and pulse daily,
    // weight on 53 days and glucose on 52.
    assert_eq!(home, 2 * (365 * 4 + 53 + 52));
    assert_eq!(g.practitioners(), 2);
    assert!(seen["Observation"] > 2 * 1565 + 1500, "{seen:?}");
    // A few Encounters a month.
    let encounters = g.encounters(ORDINARY).len();
    assert!((36..=50).contains(&encounters), "{encounters}");
}

#[test]
fn every_resource_is_complete() {
    let g = gen_with(3, 120, &[400]);
    let mut labs = 0;
    for key in g.patient_keys() {
        let patient = format!("Patient/{}", g.patient_id_of(key));
        for item in g.history(key) {
            let r = &item.resource;
            assert_eq!(r["subject"]["reference"], patient.as_str(), "{r}");
            match item.res_type {
                "Observation" => {
                    assert_eq!(r["status"], "final");
                    assert_eq!(r["code"]["coding"][0]["system"], LOINC);
                    assert!(!code_of(&item).is_empty());
                    assert!(effective(&item).ends_with('Z'));
                    match category_of(&item) {
                        "laboratory" => {
                            labs += 1;
                            let v = &r["valueQuantity"]["value"];
                            let c = &r["valueCodeableConcept"]["coding"][0]["code"];
                            assert!(v.is_number() || c.is_string(), "{r}");
                        }
                        "vital-signs" => {
                            let v = &r["valueQuantity"]["value"];
                            let c = &r["component"][1]["valueQuantity"]["value"];
                            assert!(v.is_number() || c.is_number(), "{r}");
                            assert!(r["basedOn"][0]["reference"].is_string(), "{r}");
                        }
                        other => panic!("category {other}"),
                    }
                }
                "Encounter" => {
                    assert_eq!(r["status"], "finished");
                    assert!(r["class"]["code"].is_string(), "{r}");
                    assert_eq!(r["type"][0]["coding"][0]["system"], SNOMED);
                    let (start, end) = (
                        r["period"]["start"].as_str().unwrap(),
                        r["period"]["end"].as_str().unwrap(),
                    );
                    assert!(start < end, "{r}");
                }
                "Condition" => {
                    assert_eq!(r["code"]["coding"][0]["system"], SNOMED);
                    assert!(r["code"]["coding"][0]["display"].is_string());
                    assert!(r["onsetDateTime"].as_str().unwrap() < "2024-01-01");
                }
                other => panic!("{other} in the history"),
            }
        }
    }
    assert!(labs > 20, "{labs}");
    let pulse = g
        .observations(ORDINARY)
        .into_iter()
        .find(|o| code_of(o) == "8867-4")
        .unwrap();
    assert_eq!(pulse.resource["valueQuantity"]["code"], "/min");
    let sr = &g.patient_group(ORDINARY)[2..7];
    let keys: Vec<&str> = sr
        .iter()
        .map(|s| s.resource["code"]["coding"][0]["code"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["85354-9", "59408-5", "8867-4", "29463-7", "15074-8"]);
    // The pulse alarm zones: red at or below 40 and at or above 120, yellow from 40 to
    // 50 and from 100 to 120.
    let zones: Vec<(String, Option<f64>, Option<f64>)> = sr[2].resource["extension"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| {
            let part = |name: &str| {
                z["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["url"] == name)
                    .cloned()
            };
            let bound = |name| part(name).and_then(|p| p["valueQuantity"]["value"].as_f64());
            let kind = part("type").unwrap()["valueCodeableConcept"]["coding"][0]["code"]
                .as_str()
                .unwrap()
                .to_owned();
            (kind, bound("low"), bound("high"))
        })
        .collect();
    let zone = |k: &str, l, h| (k.to_owned(), l, h);
    assert_eq!(
        zones,
        [
            zone("RAL", None, Some(40.0)),
            zone("GAL", Some(40.0), Some(50.0)),
            zone("GAL", Some(100.0), Some(120.0)),
            zone("RAL", Some(120.0), None),
        ]
    );
    // SpO2 cannot exceed 100 %: zones on the low side only.
    assert_eq!(sr[1].resource["extension"].as_array().unwrap().len(), 2);
    // Blood pressure zones are for the systolic component.
    assert_eq!(
        sr[0].resource["extension"][0]["extension"][1]["valueCodeableConcept"]["coding"][1]["code"],
        "8480-6"
    );
    let timing = &sr[2].resource["occurrenceTiming"]["repeat"];
    assert_eq!(
        (timing["frequency"].as_u64(), timing["periodUnit"].as_str()),
        (Some(1), Some("d"))
    );
    assert!(timing["boundsPeriod"]["end"].is_string());
}

#[test]
fn timelines_have_distinct_times_in_id_order() {
    let g = gen_with(2, 400, &[300, 5000]);
    for key in g.patient_keys() {
        let timeline = g.timeline(key);
        let obs = g.observations(key);
        assert_eq!(timeline.len(), obs.len());
        assert_eq!(g.observation_count(key), obs.len() as u64);
        for (k, (r, o)) in timeline.iter().zip(&obs).enumerate() {
            assert_eq!(o.id, g.observation_id_of(key, k as u64));
            assert_eq!(effective(o), r.effective());
            assert_eq!(code_of(o), r.loinc());
            assert_eq!(r.measure().is_some(), category_of(o) == "vital-signs");
        }
        for pair in obs.windows(2) {
            assert!(
                effective(&pair[0]) < effective(&pair[1]),
                "{key:?}: {} then {}",
                effective(&pair[0]),
                effective(&pair[1])
            );
        }
    }
}

#[test]
fn some_values_cross_the_alarm_limits() {
    let g = gen_with(5, 365, &[]);
    let outside = (0..5)
        .flat_map(|n| g.observations(PatientKey::Ordinary(n)))
        .filter(|o| code_of(o) == "59408-5")
        .filter(|o| {
            let v: f64 = o.resource["valueQuantity"]["value"]
                .to_string()
                .parse()
                .unwrap();
            v < 92.0
        })
        .count();
    assert!(outside > 0);
}

#[test]
fn lab_codes_and_conditions_are_skewed() {
    let g = gen_with(300, 365, &[]);
    let mut labs: BTreeMap<String, u64> = BTreeMap::new();
    let mut conditions: BTreeMap<String, u64> = BTreeMap::new();
    for n in 0..g.patients {
        let key = PatientKey::Ordinary(n);
        for c in 0..g.days.div_ceil(CYCLE_DAYS) {
            let p = g.panel(key, c);
            assert!((2..=7).contains(&p.codes.len()));
            let distinct: HashSet<u16> = p.codes.iter().copied().collect();
            assert_eq!(distinct.len(), p.codes.len());
            for code in p.codes {
                *labs
                    .entry(LAB_CODES[usize::from(code)].loinc.into())
                    .or_default() += 1;
            }
        }
        let conds = g.conditions(key);
        assert!((1..=4).contains(&conds.len()));
        for item in conds {
            *conditions.entry(code_of(&item).into()).or_default() += 1;
        }
    }
    let top = |counts: &BTreeMap<String, u64>, code: &str| counts.get(code).copied().unwrap_or(0);
    // Rank 1 is drawn about 20 times as often as rank 20, and most codes are in use.
    let (first, twentieth) = (
        top(&labs, LAB_CODES[0].loinc),
        top(&labs, LAB_CODES[19].loinc),
    );
    assert!(first > 8 * twentieth.max(1), "{first} vs {twentieth}");
    assert!(
        labs.len() * 10 > LAB_CODES.len() * 9,
        "{} codes used",
        labs.len()
    );
    assert!(LAB_CODES.len() > 300);
    let (first, tenth) = (
        top(&conditions, CONDITION_CODES[0].0),
        top(&conditions, CONDITION_CODES[9].0),
    );
    assert!(first > 3 * tenth.max(1), "{first} vs {tenth}");
    // No lab code is a home measure's.
    for m in &MEASURES {
        assert!(LAB_CODES.iter().all(|l| l.loinc != m.loinc));
    }
}

#[test]
fn facts_match_the_generated_resources() {
    let g = gen_with(45, 365, &[300]);
    for n in [0, 19, 20, 44] {
        let key = PatientKey::Ordinary(n);
        let facts = g.patient_facts(n);
        let group = g.patient_group(key);
        let p = &group[0].resource;
        assert_eq!(group[0].id, facts.id);
        assert_eq!(p["identifier"][0]["system"], facts.identifier_system);
        assert_eq!(p["identifier"][0]["value"], facts.identifier_value.as_str());
        assert_eq!(p["name"][0]["family"], facts.family);
        assert_eq!(p["name"][0]["given"][0], facts.given);
        let member = format!("Practitioner/{}", g.practitioner_id(facts.practitioner));
        assert_eq!(
            group[1].resource["participant"][0]["member"]["reference"],
            member.as_str()
        );
        assert!(g.patients_of_practitioner(facts.practitioner).contains(&n));
        let obs = g.observations(key);
        for m in Generator::measures() {
            for from in [0, 1, 3, 100, 364, 365] {
                let day = Generator::day(from);
                let expected = obs
                    .iter()
                    .filter(|o| code_of(o) == m.loinc)
                    .filter(|o| effective(o) >= day.as_str())
                    .count() as u64;
                assert_eq!(
                    g.observations_from(&m, from),
                    expected,
                    "{} from {from}",
                    m.loinc
                );
            }
        }
        assert_eq!(
            obs.last().map(|o| o.id.clone()),
            Some(g.observation_id(n, g.observation_count(key) - 1))
        );
    }
    assert_eq!(g.practitioners(), 4);
    assert_eq!(g.patients_of_practitioner(2), 40..45);
    assert_eq!(Generator::day(0), "2024-01-01");
    let measures = Generator::measures();
    assert_eq!(measures.len(), 5);
    assert_eq!((measures[0].loinc, measures[0].per_day), ("85354-9", 2));
    assert_eq!((measures[4].every_days, measures[4].day_offset), (7, 3));
}

#[test]
fn deep_patients_have_exact_counts_at_every_scale() {
    let small = gen_with(3, 10, &[300, 1200, 5000]);
    let large = gen_with(50, 800, &[1200]);
    for &count in &small.deep {
        let key = PatientKey::Deep(count);
        let timeline = small.timeline(key);
        assert_eq!(timeline.len() as u64, count);
        assert_eq!(small.observation_count(key), count);
        let last = timeline.last().unwrap();
        assert_eq!(small.days_of(key), u64::from(last.day) + 1);
    }
    // The same deep patient whatever --patients, the period and the other deep patients.
    let (a, b): (Vec<Item>, Vec<Item>) = (
        small
            .patient_group(DEEP)
            .into_iter()
            .chain(small.history(DEEP))
            .collect(),
        large
            .patient_group(DEEP)
            .into_iter()
            .chain(large.history(DEEP))
            .collect(),
    );
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.id, y.id);
        assert_eq!(x.resource, y.resource);
    }
    assert_eq!(
        small.counts()["Observation"],
        (0..3)
            .map(|n| small.observation_count(PatientKey::Ordinary(n)))
            .sum::<u64>()
            + 300
            + 1200
            + 5000
    );
    // More sessions a day the deeper the history: the default patients span about a year.
    assert_eq!(
        [1000, 4000, 16_000, 50_000].map(deep_sessions),
        [1, 4, 15, 46]
    );
    let heavy = gen_with(1, 1, &[50_000]);
    let span = heavy.days_of(PatientKey::Deep(50_000));
    assert!((300..=366).contains(&span), "{span}");
    assert_eq!(deep_sessions(MAX_DEEP), MAX_SESSIONS);
}

#[test]
fn deep_flag_parses() {
    assert_eq!(parse(&[]).deep.0, vec![1000, 4000, 16_000, 50_000]);
    assert_eq!(parse(&["--deep", "none"]).deep, Deep::default());
    assert_eq!(parse(&["--deep", ""]).deep, Deep::default());
    assert_eq!(parse(&["--deep", "5000, 300"]).deep.0, vec![300, 5000]);
    assert_eq!(parse_deep("NONE"), Ok(Deep::default()));
    for bad in ["0", "3,3", "x", "1,,2", "1000001"] {
        assert!(parse_deep(bad).is_err(), "{bad}");
    }
    assert_eq!(describe_deep(&[1000, 4000]), "1000, 4000 Observations");
    assert_eq!(describe_deep(&[]), "none");
}

/// `ember dataset`'s arguments as the command line parses them.
fn parse(args: &[&str]) -> DatasetArgs {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: DatasetArgs,
    }
    let argv = ["dataset", "--dry-run"].iter().chain(args);
    <Cli as clap::Parser>::try_parse_from(argv).unwrap().args
}

#[test]
fn days_set_the_period_and_override_years() {
    let years = parse(&["--patients", "45", "--years", "1"]);
    assert_eq!(years.days, None);
    let g = generator(&years);
    // The counts `ember dataset --patients 45 --years 1 --dry-run` prints.
    assert_eq!(
        g.counts(),
        BTreeMap::from([
            ("CarePlan", 49),
            ("CareTeam", 49),
            ("Condition", 126),
            ("Encounter", 2081),
            ("Observation", 144_069),
            ("Patient", 49),
            ("Practitioner", 4),
            ("ServiceRequest", 245),
        ])
    );
    assert_eq!(describe_period(years.years, years.days), "1 year(s)");

    // --days 365 is --years 1, resource for resource; --days wins over --years.
    for argv in [
        &["--patients", "45", "--days", "365"][..],
        &["--patients", "45", "--years", "3", "--days", "365"][..],
    ] {
        let days = parse(argv);
        let d = generator(&days);
        assert_eq!(d.measurement_days(), 365);
        assert_eq!(d.counts(), g.counts());
        for key in [PatientKey::Ordinary(0), PatientKey::Ordinary(44)] {
            let (a, b) = (g.observations(key), d.observations(key));
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b).step_by(97).chain(a.last().zip(b.last())) {
                assert_eq!(x.id, y.id);
                assert_eq!(x.resource, y.resource);
            }
        }
    }
    assert_eq!(
        describe_period(3, parse(&["--years", "3", "--days", "100"]).days),
        "100 day(s)"
    );

    // Home readings scale with the days: 100 days are 400 readings of blood pressure,
    // SpO2 and pulse, 15 of weight and 14 of glucose; the labs come on top.
    let short = generator(&parse(&[
        "--patients",
        "10000",
        "--days",
        "100",
        "--deep",
        "none",
    ]));
    let home: u64 = Generator::measures()
        .iter()
        .map(|m| short.observations_from(m, 0))
        .sum();
    assert_eq!(home, 400 + 15 + 14);
    let labs = short.observation_count(PatientKey::Ordinary(0)) - home;
    assert!((4..=28).contains(&labs), "{labs}");
    assert_eq!(
        short.observations(PatientKey::Ordinary(0)).len() as u64,
        home + labs
    );
    // The counts `ember dataset --patients 10000 --days 38 --dry-run` prints.
    let g38 = generator(&parse(&["--patients", "10000", "--days", "38"]));
    assert_eq!(
        g38.counts(),
        BTreeMap::from([
            ("CarePlan", 10_004),
            ("CareTeam", 10_004),
            ("Condition", 25_139),
            ("Encounter", 42_104),
            ("Observation", 1_761_678),
            ("Patient", 10_004),
            ("Practitioner", 501),
            ("ServiceRequest", 50_020),
        ])
    );
    // Of them 10,000 x 163 home readings, 71,000 of the deep patients, and labs.
    let labs38 = 1_761_678 - 10_000 * (38 * 4 + 6 + 5) - 71_000;
    assert_eq!(
        labs38,
        (0..10_000)
            .map(|n| g38.observation_count(PatientKey::Ordinary(n)) - 163)
            .sum::<u64>()
    );
    let one = Generator {
        days: 1,
        ..short.clone()
    };
    // Day 0: blood pressure twice, SpO2, pulse and weight.
    let home_one: u64 = Generator::measures()
        .iter()
        .map(|m| one.observations_from(m, 0))
        .sum();
    assert_eq!(home_one, 5);
    let none = Generator {
        days: 0,
        ..short.clone()
    };
    assert_eq!(none.counts()["Observation"], 0);
    assert_eq!(none.counts()["Encounter"], 0);
    // A shorter period is a prefix of a longer one: same ids, same resources.
    let long = generator(&parse(&["--patients", "10000", "--days", "200"]));
    let key = PatientKey::Ordinary(7);
    let (a, b): (Vec<Item>, Vec<Item>) =
        (short.history(key).collect(), long.history(key).collect());
    assert!(b.len() > a.len() + 400);
    let (a_obs, b_obs) = (short.observations(key), long.observations(key));
    let (a_enc, b_enc) = (short.encounters(key), long.encounters(key));
    assert!(a_enc.len() < b_enc.len());
    for (x, y) in a_obs.iter().zip(&b_obs).chain(a_enc.iter().zip(&b_enc)) {
        assert_eq!(x.id, y.id);
        assert_eq!(x.resource, y.resource);
    }
    assert_eq!(
        short.conditions(key)[0].resource,
        long.conditions(key)[0].resource
    );
}

#[test]
fn dates() {
    assert_eq!(date(0), "1970-01-01");
    assert_eq!(date(START_DAY), "2024-01-01");
    assert_eq!(date(START_DAY + 59), "2024-02-29");
    assert_eq!(date_time(59, 3600 * 7 + 61), "2024-02-29T07:01:01Z");
    assert_eq!(date_time(0, 86_399), "2024-01-01T23:59:59Z");
}

#[test]
fn files_carry_references_between_items_as_ids() {
    let item = |res_type: &'static str, id: &str, resource: Value| Item {
        res_type,
        id: id.to_owned(),
        full_url: format!("urn:uuid:{id}"),
        resource,
    };
    let lines = resolved(vec![
        item(
            "Patient",
            "p",
            json!({"resourceType": "Patient", "id": "p"}),
        ),
        item(
            "CarePlan",
            "c",
            json!({"resourceType": "CarePlan", "id": "c",
                "subject": {"reference": "urn:uuid:p"},
                "activity": [{"reference": {"reference": "urn:uuid:p"}}],
                "author": {"reference": "Practitioner/x"},
                "note": [{"text": "urn:uuid:p"}]}),
        ),
    ]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1].0, "CarePlan");
    let plan: Value = serde_json::from_str(&lines[1].1).unwrap();
    assert_eq!(plan["subject"]["reference"], "Patient/p");
    assert_eq!(plan["activity"][0]["reference"]["reference"], "Patient/p");
    assert_eq!(plan["author"]["reference"], "Practitioner/x");
    // Only `reference` elements are references.
    assert_eq!(plan["note"][0]["text"], "urn:uuid:p");
}
