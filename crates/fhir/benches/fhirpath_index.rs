//! FHIRPath evaluation, search-index extraction, FHIR XML conversion and profile
//! validation on the R4 package examples
//! (`$EMBER_FHIR_PACKAGE` or `../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz` next to the
//! workspace).
//!
//! `cargo bench -p ember-fhir --bench fhirpath_index -- --warm-up-time 1 --measurement-time 3`
//! (`-- xml` for the XML conversion alone, `-- profile` for profile validation)

use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ember_fhir::fhirpath::{Env, Expression};
use ember_fhir::index::extract;
use ember_fhir::profile::{self, Profile};
use serde_json::Value;

fn package_path() -> PathBuf {
    match std::env::var_os("EMBER_FHIR_PACKAGE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz"),
    }
}

/// Every resource of the package, sorted by file name.
fn package() -> Vec<(String, Value)> {
    let path = package_path();
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().expect("read package") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        if !name.ends_with(".json")
            || name.ends_with("package.json")
            || name.ends_with(".index.json")
        {
            continue;
        }
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("read");
        out.push((name, serde_json::from_str(&text).expect("JSON")));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn find<'a>(all: &'a [(String, Value)], name: &str) -> &'a Value {
    &all.iter()
        .find(|(n, _)| n == &format!("package/{name}"))
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

fn benches(c: &mut Criterion) {
    let all = package();
    let observation = find(&all, "Observation-example.json");
    let patient = find(&all, "Patient-example.json");
    let env = Env::new();

    let mut g = c.benchmark_group("fhirpath");
    let cases: [(&str, &Value, &str); 6] = [
        ("patient-name", patient, "Patient.name"),
        (
            "patient-phone",
            patient,
            "Patient.telecom.where(system='phone')",
        ),
        ("patient-birthdate", patient, "Patient.birthDate"),
        ("observation-code", observation, "Observation.code"),
        (
            "observation-patient",
            observation,
            "Observation.subject.where(resolve() is Patient)",
        ),
        (
            "observation-value-quantity",
            observation,
            "(Observation.value as Quantity) | (Observation.value as SampledData)",
        ),
    ];
    for (name, resource, src) in cases {
        let expr = Expression::parse(src).expect("parse");
        assert!(!expr.evaluate(resource, &env).expect("evaluate").is_empty());
        g.bench_function(name, |b| {
            b.iter(|| expr.evaluate(black_box(resource), &env).unwrap().len())
        });
    }
    g.finish();

    // Warm the per-type plans, so parsing is not measured.
    for (_, r) in &all {
        extract(r).expect("extract");
    }
    let mut g = c.benchmark_group("extract");
    g.throughput(Throughput::Elements(1));
    g.bench_function("Observation-example", |b| {
        b.iter(|| extract(black_box(observation)).unwrap().entries.len())
    });
    g.bench_function("Patient-example", |b| {
        b.iter(|| extract(black_box(patient)).unwrap().entries.len())
    });
    // 200 examples spread evenly over the package (sorted by file name, so many types).
    let step = all.len() / 200;
    let mixed: Vec<&Value> = all.iter().step_by(step).take(200).map(|(_, v)| v).collect();
    g.throughput(Throughput::Elements(mixed.len() as u64));
    g.bench_function("mixed-200", |b| {
        b.iter(|| {
            mixed
                .iter()
                .map(|r| extract(black_box(r)).unwrap().entries.len())
                .sum::<usize>()
        })
    });
    g.finish();

    // What an XML answer adds to a read (the stored JSON text parsed, then written as
    // XML) and what an XML body adds to a write (XML read as JSON), beside JSON's own
    // parse; a JSON read sends the stored text as it is.
    let mut g = c.benchmark_group("xml");
    for name in ["Patient-example.json", "Bundle-bundle-example.json"] {
        let resource = find(&all, name);
        let json = resource.to_string();
        let xml = ember_fhir::xml::to_xml(resource, false).expect("to_xml");
        let label = name.trim_end_matches(".json");
        g.throughput(Throughput::Bytes(json.len() as u64));
        g.bench_function(format!("{label}/json-parse"), |b| {
            b.iter(|| serde_json::from_str::<Value>(black_box(&json)).unwrap())
        });
        g.bench_function(format!("{label}/json-parse+to_xml"), |b| {
            b.iter(|| {
                let value: Value = serde_json::from_str(black_box(&json)).unwrap();
                ember_fhir::xml::to_xml(&value, false).unwrap().len()
            })
        });
        g.bench_function(format!("{label}/from_xml"), |b| {
            b.iter(|| ember_fhir::xml::from_xml(black_box(xml.as_bytes()), 64).unwrap())
        });
    }
    g.finish();

    // Profile validation of the blood-pressure example against the bp profile (and
    // vitalsigns, which bp is based on, as the other profile known): cardinality, types,
    // fixed and pattern values, slicing and invariants, with the bindings handed back.
    let mut g = c.benchmark_group("profile");
    let profiles: std::collections::HashMap<String, std::sync::Arc<Profile>> = ["bp", "vitalsigns"]
        .iter()
        .map(|n| {
            let sd = find(&all, &format!("StructureDefinition-{n}.json"));
            let url = sd["url"].as_str().expect("url").to_owned();
            (
                url,
                std::sync::Arc::new(Profile::compile(sd).expect("compile")),
            )
        })
        .collect();
    let bp = &profiles["http://hl7.org/fhir/StructureDefinition/bp"];
    let example = find(&all, "Observation-blood-pressure.json");
    let report = profile::validate(example, bp, &profiles);
    assert!(
        report
            .outcome
            .issues
            .iter()
            .all(|i| i.severity != ember_fhir::Severity::Error),
        "{:?}",
        report.outcome.issues
    );
    g.throughput(Throughput::Elements(1));
    g.bench_function("blood-pressure/bp", |b| {
        b.iter(|| {
            profile::validate(black_box(example), bp, &profiles)
                .bindings
                .len()
        })
    });
    g.finish();
}

criterion_group!(fhirpath_index, benches);
criterion_main!(fhirpath_index);
