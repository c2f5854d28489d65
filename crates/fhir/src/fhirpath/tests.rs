//! Unit tests for the trickier semantics (the official suite runs in
//! `tests/fhirpath_suite.rs`).

use serde_json::{Value, json};

use super::*;

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p1",
        "active": true,
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthTime",
            "valueDateTime": "1974-12-25T14:35:45-05:00"
        }]},
        "name": [
            {"use": "official", "family": "Chalmers", "given": ["Peter", "James"],
             "_given": [null, {"extension": [{"url": "http://example.org/x", "valueString": "J"}]}]},
            {"use": "usual", "given": ["Jim"]}
        ],
        "managingOrganization": {"reference": "Organization/1"},
        "generalPractitioner": [{"reference": "#pr1"}],
        "contained": [{"resourceType": "Practitioner", "id": "pr1", "active": true}],
        "deceasedBoolean": false
    })
}

fn observation() -> Value {
    json!({
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "subject": {"reference": "Patient/example"},
        "effectiveDateTime": "2016-03-28T09:30:10+01:00",
        "valueQuantity": {"value": 185, "unit": "lbs", "system": "http://unitsofmeasure.org", "code": "[lb_av]"},
        "component": [
            {"code": {"text": "systolic"}, "valueQuantity": {"value": 120.0, "code": "mm[Hg]"}},
            {"code": {"text": "note"}, "valueString": "fine"}
        ]
    })
}

/// Evaluates and renders `type:value` items.
fn run(src: &str, resource: &Value) -> Vec<String> {
    let e = Expression::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
    e.evaluate(resource, &Env::new())
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .iter()
        .map(|n| format!("{}:{n}", n.type_name()))
        .collect()
}

fn check(src: &str, resource: &Value, want: &[&str]) {
    assert_eq!(run(src, resource), want, "{src}");
}

fn truth(src: &str, resource: &Value) -> Option<bool> {
    Expression::parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .evaluate_bool(resource, &Env::new())
        .unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn fails(src: &str, resource: &Value) -> EvalError {
    Expression::parse(src)
        .unwrap_or_else(|e| panic!("{src}: {e}"))
        .evaluate(resource, &Env::new())
        .expect_err(src)
}

#[test]
fn empty_propagates_through_operators() {
    let p = patient();
    for src in [
        "{} = 1",
        "1 = {}",
        "1 + {}",
        "{} < 2",
        "Patient.foo = 'x'",
        "Patient.foo.length()",
        "true and {}",
        "{} or false",
        "{} implies false",
        "({} | {}).first()",
    ] {
        assert_eq!(run(src, &p), Vec::<String>::new(), "{src}");
    }
    assert_eq!(truth("false and {}", &p), Some(false));
    assert_eq!(truth("{} or true", &p), Some(true));
    assert_eq!(truth("false implies {}", &p), Some(true));
    assert_eq!(truth("{}.empty()", &p), Some(true));
    assert_eq!(truth("Patient.foo.exists()", &p), Some(false));
    assert_eq!(truth("{} ~ {}", &p), Some(true));
    check("Patient.name.given.count()", &p, &["Integer:3"]);
}

#[test]
fn singleton_rules() {
    let p = patient();
    // Several items where one is expected is an error, not a guess.
    assert!(matches!(
        fails("Patient.name.given + 'x'", &p),
        EvalError::NotSingleton { .. }
    ));
    assert!(matches!(
        fails("Patient.name.given.single()", &p),
        EvalError::NotSingleton { .. }
    ));
    // A single non-boolean item counts as true where a boolean is expected.
    assert_eq!(
        truth("Patient.name.where(family).count() = 1", &p),
        Some(true)
    );
}

#[test]
fn decimals_are_exact() {
    let p = patient();
    assert_eq!(truth("0.10 = 0.1", &p), Some(true));
    assert_eq!(truth("0.1 + 0.2 = 0.3", &p), Some(true));
    assert_eq!(truth("1.0 ~ 1.04", &p), Some(true));
    assert_eq!(truth("1.0 = 1.04", &p), Some(false));
    check("1.0.toString()", &p, &["String:1.0"]);
    check("10 / 4", &p, &["Decimal:2.5"]);
    check("7 div 2", &p, &["Integer:3"]);
    check("(1.2 / 1.8).round(2)", &p, &["Decimal:0.67"]);
}

#[test]
fn date_precision_rules() {
    let p = patient();
    // Different precisions: unknown, so empty.
    assert_eq!(truth("@2012-04-15 < @2012-04-15T10:00", &p), None);
    assert_eq!(truth("@2012 = @2012-01", &p), None);
    assert_eq!(truth("@T10:00 = @T10:00:00", &p), None);
    // ...unless the parts both have already differ.
    assert_eq!(truth("@2012 < @2013-06", &p), Some(true));
    assert_eq!(truth("@2012-01 ~ @2012-01-01", &p), Some(false));
    // Seconds and milliseconds are one precision; zones are normalised.
    assert_eq!(truth("@T10:00:00 = @T10:00:00.000", &p), Some(true));
    assert_eq!(
        truth(
            "@2012-04-15T15:00:00+02:00 = @2012-04-15T16:00:00+03:00",
            &p
        ),
        Some(true)
    );
    // Model types: birthDate is a date.
    assert_eq!(truth("Patient.birthDate < @2000-01-01", &p), Some(true));
    assert_eq!(truth("Patient.birthDate = @1974-12-25", &p), Some(true));
    assert_eq!(truth("Patient.birthDate.is(date)", &p), Some(true));
    // Calendar arithmetic.
    check("@2016-01-31 + 1 month", &p, &["Date:2016-02-29"]);
    check("@2016-02-29 - 1 year", &p, &["Date:2015-02-28"]);
    check(
        "@2016-03-28T09:30:10+01:00 + 90 minutes",
        &p,
        &["DateTime:2016-03-28T11:00:10+01:00"],
    );
    assert!(
        fails("@2016-01-01 + 1 'mo'", &p)
            .to_string()
            .contains("date")
    );
}

#[test]
fn quantities_compare_across_units() {
    let p = patient();
    let o = observation();
    assert_eq!(truth("1000 'mg' = 1 'g'", &p), Some(true));
    assert_eq!(truth("1 'kg' > 999 'g'", &p), Some(true));
    assert_eq!(truth("120 'mm[Hg]' = 12 'cm[Hg]'", &p), Some(true));
    assert_eq!(truth("2 'h' = 120 'min'", &p), Some(true));
    assert_eq!(truth("7 days = 1 'wk'", &p), Some(true));
    assert_eq!(truth("1 year = 12 months", &p), Some(true));
    // A calendar year is not the UCUM (Julian) year: unknown.
    assert_eq!(truth("1 year = 1 'a'", &p), None);
    // Different dimensions: unknown.
    assert_eq!(truth("1 'mg' = 1 'mL'", &p), None);
    check("4 'g' + 500 'mg'", &p, &["Quantity:4.5 'g'"]);
    // FHIR Quantity elements take their UCUM code.
    assert_eq!(truth("Observation.value > 80 'kg'", &o), Some(true));
    assert_eq!(truth("Observation.value < 90 'kg'", &o), Some(true));
    assert_eq!(
        truth(
            "Observation.component.value.where($this is Quantity) = 16 'kPa'",
            &o
        ),
        Some(false)
    );
}

#[test]
fn choice_types() {
    let o = observation();
    check("Observation.value.unit", &o, &["string:lbs"]);
    check("Observation.value.value", &o, &["decimal:185"]);
    assert_eq!(truth("Observation.value is Quantity", &o), Some(true));
    assert_eq!(truth("Observation.value.is(Period)", &o), Some(false));
    check(
        "(Observation.value as Quantity).code",
        &o,
        &["code:[lb_av]"],
    );
    check(
        "Observation.component.value.ofType(string)",
        &o,
        &["string:fine"],
    );
    check(
        "Observation.effective",
        &o,
        &["dateTime:2016-03-28T09:30:10+01:00"],
    );
    // The JSON name of a choice is not a FHIRPath name.
    assert!(
        fails("Observation.valueQuantity", &o)
            .to_string()
            .contains("choice")
    );
}

#[test]
fn types_and_inheritance() {
    let p = patient();
    assert_eq!(truth("Patient.is(DomainResource)", &p), Some(true));
    assert_eq!(truth("Patient.is(FHIR.Patient)", &p), Some(true));
    assert_eq!(truth("Patient.active.is(boolean)", &p), Some(true));
    assert_eq!(truth("Patient.active.is(System.Boolean)", &p), Some(false));
    assert_eq!(truth("true.is(Boolean)", &p), Some(true));
    check("Patient.id", &p, &["id:p1"]);
    check("Patient.name.use", &p, &["code:official", "code:usual"]);
    check(
        "Patient.name.type().name.first()",
        &p,
        &["String:HumanName"],
    );
    assert!(
        fails("Patient.active.as(boolean1)", &p)
            .to_string()
            .contains("unknown type")
    );
}

#[test]
fn resolve_references() {
    let p = patient();
    let o = observation();
    assert_eq!(
        truth(
            "Observation.subject.where(resolve() is Patient).exists()",
            &o
        ),
        Some(true)
    );
    assert_eq!(
        truth("Observation.subject.where(resolve() is Group).exists()", &o),
        Some(false)
    );
    check(
        "Patient.managingOrganization.resolve().type().name",
        &p,
        &["String:Organization"],
    );
    // Contained references resolve to the contained resource itself.
    check(
        "Patient.generalPractitioner.resolve().ofType(Practitioner).active",
        &p,
        &["boolean:true"],
    );
    // In a Bundle, references resolve to the entries.
    let bundle = json!({
        "resourceType": "Bundle", "type": "collection",
        "entry": [
            {"fullUrl": "http://x.org/fhir/Patient/a", "resource": {"resourceType": "Patient", "id": "a", "gender": "female"}},
            {"resource": {"resourceType": "Observation", "id": "b", "subject": {"reference": "Patient/a"}}}
        ]
    });
    check(
        "Bundle.entry.resource.ofType(Observation).subject.resolve().gender",
        &bundle,
        &["code:female"],
    );
}

#[test]
fn primitive_extensions() {
    let p = patient();
    check(
        "Patient.birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
        &p,
        &["dateTime:1974-12-25T14:35:45-05:00"],
    );
    check(
        "Patient.name.given.where(extension.exists())",
        &p,
        &["string:James"],
    );
    assert_eq!(truth("Patient.birthDate.hasValue()", &p), Some(true));
    assert_eq!(truth("Patient.name.hasValue()", &p), Some(false));
    let only_ext = json!({"resourceType": "Patient", "_gender": {"extension": [{"url": "u", "valueCode": "x"}]}});
    check("Patient.gender.exists()", &only_ext, &["Boolean:true"]);
    check("Patient.gender.hasValue()", &only_ext, &["Boolean:false"]);
}

#[test]
fn lambdas_and_aggregates() {
    let p = patient();
    check(
        "(1 | 2 | 3).aggregate($this + $total, 0)",
        &p,
        &["Integer:6"],
    );
    check(
        "Patient.name.given.select($this + $index.toString())",
        &p,
        &["String:Peter0", "String:James1", "String:Jim2"],
    );
    check(
        "Patient.name.given.where($this.startsWith('J'))",
        &p,
        &["string:James", "string:Jim"],
    );
    check("Patient.iif(active, 'yes', 'no')", &p, &["String:yes"]);
    check(
        "(3 | 1 | 2).sort(-$this)",
        &p,
        &["Integer:3", "Integer:2", "Integer:1"],
    );
    assert_eq!(
        truth("Patient.descendants().where($this = 'Jim').exists()", &p),
        Some(true)
    );
}

#[test]
fn variables() {
    let p = patient();
    let env = Env::new().with_string("greeting", "hello");
    let e = Expression::parse("%greeting.length() + %resource.name.count()").unwrap();
    let out = e.evaluate(&p, &env).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].to_string(), "7");
    check("%ucum", &p, &["String:http://unitsofmeasure.org"]);
    check(
        "%`vs-administrative-gender`",
        &p,
        &["String:http://hl7.org/fhir/ValueSet/administrative-gender"],
    );
    assert!(matches!(
        fails("%nope", &p),
        EvalError::UnknownVariable(v) if v == "nope"
    ));
    // A fixed clock.
    let now = DateTime::parse_datetime("2020-02-03T04:05:06.007Z").unwrap();
    let env = Env::new().with_now(now);
    let e = Expression::parse("today()").unwrap();
    assert_eq!(e.evaluate(&p, &env).unwrap()[0].to_string(), "2020-02-03");
}

#[test]
fn parse_errors_have_positions() {
    let err = Expression::parse("Patient.name.").unwrap_err();
    assert_eq!(err.position(), 13);
    let err = Expression::parse("Patient.name.frobnicate()").unwrap_err();
    assert!(
        matches!(err, ParseError::UnknownFunction { position: 13, .. }),
        "{err}"
    );
    let err = Expression::parse("Patient.name.where()").unwrap_err();
    assert!(matches!(err, ParseError::Arity { .. }), "{err}");
    let err = Expression::parse("'unterminated").unwrap_err();
    assert_eq!(err.position(), 0);
    let err = Expression::parse("@2015-13-01").unwrap_err();
    assert!(matches!(err, ParseError::InvalidLiteral { .. }), "{err}");
    assert!(Expression::parse("1 + /* open").is_err());
    assert!(Expression::parse("a.b(1,)").is_err());
}

#[test]
fn expressions_are_reusable_across_threads() {
    let e = Expression::parse("Patient.name.given.count()").unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let e = e.clone();
            std::thread::spawn(move || {
                let p = patient();
                e.evaluate(&p, &Env::new()).unwrap()[0].to_string()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "3");
    }
}

#[test]
fn works_without_model_information() {
    let o = observation();
    let e = Expression::parse("Observation.value.unit").unwrap();
    let env = Env::new().with_model(&NoModel);
    let out = e.evaluate(&o, &env).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].as_str(), Some("lbs"));
}

#[test]
fn search_parameter_expressions_all_parse() {
    for sp in crate::definitions::all_search_params() {
        if let Some(src) = sp.expression {
            Expression::parse(src).unwrap_or_else(|e| panic!("{}: {src}: {e}", sp.url));
        }
    }
}

#[test]
fn nodes_borrow_the_resource() {
    let p = patient();
    let out = Expression::parse("Patient.name[0]")
        .unwrap()
        .evaluate(&p, &Env::new())
        .unwrap();
    assert!(std::ptr::eq(out[0].as_json().unwrap(), &p["name"][0]));
    assert_eq!(out[0].type_name(), "HumanName");
    assert_eq!(out[0].namespace(), "FHIR");
}

#[test]
fn hostile_input_is_rejected_not_crashing() {
    let deep = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
    assert!(Expression::parse(&deep).is_err());
    let negs = format!("{}1", "-".repeat(5000));
    assert!(Expression::parse(&negs).is_err());
    let chain = vec!["1"; 5000].join(" | ");
    assert!(Expression::parse(&chain).is_err());
    let p = patient();
    assert_eq!(run("9223372036854775807 + 1", &p), Vec::<String>::new());
    assert_eq!(truth("1 'm999999999' = 1 'm'", &p), None);
}

#[test]
fn core_invariants() {
    let p = patient();
    // dom-3: every contained resource is referenced from the container.
    let dom3 = "contained.where((('#'+id in (%resource.descendants().reference | \
        %resource.descendants().as(canonical) | %resource.descendants().as(uri) | \
        %resource.descendants().as(url))) or descendants().where(reference = '#').exists() or \
        descendants().where(as(canonical) = '#').exists() or \
        descendants().where(as(canonical) = '#').exists()).not()).trace('unmatched', id).empty()";
    assert_eq!(truth(dom3, &p), Some(true));
    let mut orphan = p.clone();
    orphan["generalPractitioner"] = json!([]);
    assert_eq!(truth(dom3, &orphan), Some(false));
    // ele-1 on every element, per-1 on a Period.
    let ele1 = Expression::parse("hasValue() or (children().count() > id.count())").unwrap();
    let all = Expression::parse("descendants()")
        .unwrap()
        .evaluate(&p, &Env::new())
        .unwrap();
    assert!(all.len() > 20);
    for n in all {
        let out = ele1.evaluate_node(n.clone(), &Env::new()).unwrap();
        assert_eq!(out[0].as_bool(), Some(true), "{n}");
    }
    let per1 =
        Expression::parse("start.hasValue().not() or end.hasValue().not() or (start <= end)")
            .unwrap();
    let period = json!({"resourceType": "Encounter", "period": {"start": "2020-01-02", "end": "2020-01-01T10:00:00Z"}});
    let node = Expression::parse("Encounter.period")
        .unwrap()
        .evaluate(&period, &Env::new())
        .unwrap()
        .remove(0);
    assert_eq!(
        per1.evaluate_node(node, &Env::new()).unwrap()[0].as_bool(),
        Some(false)
    );
}

#[test]
fn root_elements_of_paths_and_their_unions() {
    let roots = |src: &str| Expression::parse(src).unwrap().root_elements();
    let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(
        roots("Observation.code.coding"),
        names(&["Observation", "code"])
    );
    assert_eq!(roots("code.coding"), names(&["code"]));
    assert_eq!(
        roots("(Observation.value as Quantity) | Observation.component.value.ofType(Quantity)"),
        names(&["Observation", "value", "Observation", "component"])
    );
    assert_eq!(
        roots("Observation.subject.where(resolve() is Patient).first()"),
        names(&["Observation", "subject"])
    );
    assert_eq!(
        roots("Bundle.entry[0].resource"),
        names(&["Bundle", "entry"])
    );
    assert_eq!(
        roots("Patient.extension('http://example.org/x').value"),
        names(&["Patient", "extension"])
    );
    // The resource itself, or a result that is not empty on an empty focus.
    assert_eq!(roots("Observation"), None);
    assert_eq!(roots("Patient.name.exists()"), None);
    assert_eq!(roots("Patient.name | %resource.id"), None);
    assert_eq!(
        roots("Patient.deceased.exists() and Patient.deceased != false"),
        None
    );
}

#[test]
fn has_any_element_knows_choices_and_primitive_extensions() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let obs = observation();
    assert!(has_any_element(&obs, &names(&["Observation", "value"])));
    assert!(!has_any_element(&obs, &names(&["Observation", "specimen"])));
    let birth = json!({"resourceType": "Patient", "_birthDate": {"extension": []}});
    assert!(has_any_element(&birth, &names(&["birthDate"])));
    // `identifier` is not `id`, and a choice's type starts upper-case.
    let p = json!({"resourceType": "Patient", "identifier": [], "idle": true});
    assert!(!has_any_element(&p, &names(&["id"])));
}
