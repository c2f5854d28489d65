//! The official R4 examples package: reading it, and what the tests that load it share.

use std::io::Read;

use serde_json::Value;

use super::TestSettings;

/// The package next to the repository, when `EMBER_FHIR_PACKAGE` (set by `cargo xtask
/// test`, which also fetches and verifies the package when needed) does not name one.
const SHARED_PACKAGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz"
);

pub fn package_path() -> String {
    std::env::var("EMBER_FHIR_PACKAGE").unwrap_or_else(|_| SHARED_PACKAGE.to_owned())
}

/// Conformance and terminology resources: not examples of clinical or administrative data.
pub const DEFINITIONAL: &[&str] = &[
    "StructureDefinition",
    "SearchParameter",
    "ValueSet",
    "CodeSystem",
    "ConceptMap",
    "OperationDefinition",
    "CapabilityStatement",
    "CompartmentDefinition",
    "ImplementationGuide",
    "NamingSystem",
    "StructureMap",
    "GraphDefinition",
    "MessageDefinition",
    "TerminologyCapabilities",
];

/// The package holds Bundles of up to 35 MB (`Bundle-resources.json`), more than the
/// harness's 1 MiB and the server's default 16 MiB body limit: the round trip is about
/// fidelity, so the limit is raised here. Depth is the server's default.
pub fn settings() -> TestSettings {
    let mut settings = TestSettings {
        max_body_bytes: 64 * 1024 * 1024,
        ..TestSettings::default()
    };
    settings.limits.max_json_depth = 64;
    settings
}

/// One example file.
pub struct Example {
    pub member: String,
    pub res_type: String,
    /// The `id` in the resource, if it is a string.
    pub id: Option<String>,
    /// The id the member name gives (`<Type>-<id>.json`), used when `id` is missing.
    pub name_id: String,
    pub text: String,
}

impl Example {
    pub fn url_id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name_id)
    }
}

pub struct Package {
    /// Resource members (every `.json` member but `package.json` and `.index.json`).
    pub resources: usize,
    pub definitional: usize,
    pub examples: Vec<Example>,
}

pub fn load_package() -> Package {
    let path = package_path();
    let file = std::fs::File::open(&path).unwrap_or_else(|e| {
        panic!("cannot open the R4 examples package {path} ({e}); run the tests with `cargo xtask test`, which fetches it")
    });
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut package = Package {
        resources: 0,
        definitional: 0,
        examples: Vec::new(),
    };
    for member in archive.entries().expect("read the package") {
        let mut member = member.expect("package member");
        let name = member.path().expect("member path").display().to_string();
        let Some(file_name) = name.strip_prefix("package/") else {
            continue;
        };
        if file_name.contains('/')
            || !file_name.ends_with(".json")
            || matches!(file_name, "package.json" | ".index.json")
        {
            continue;
        }
        let mut text = String::new();
        member
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let json: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        let res_type = json["resourceType"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no resourceType"))
            .to_owned();
        package.resources += 1;
        if DEFINITIONAL.contains(&res_type.as_str()) {
            package.definitional += 1;
            continue;
        }
        let name_id = file_name
            .trim_end_matches(".json")
            .strip_prefix(&format!("{res_type}-"))
            .unwrap_or(file_name.trim_end_matches(".json"))
            .to_owned();
        package.examples.push(Example {
            member: name,
            id: json["id"].as_str().map(str::to_owned),
            res_type,
            name_id,
            text,
        });
    }
    package
}

/// A valid FHIR logical id: `[A-Za-z0-9\-\.]{1,64}`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

pub fn diagnostics(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    serde_json::from_str::<Value>(&s)
        .ok()
        .and_then(|v| v["issue"][0]["diagnostics"].as_str().map(str::to_owned))
        .unwrap_or_else(|| s.chars().take(200).collect())
}

/// The official examples that violate R4's structural rules, as established by the
/// validator's own test (`crates/fhir/tests/validation-expected-failures.txt`).
pub fn known_invalid() -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fhir/tests/validation-expected-failures.txt"
    );
    std::fs::read_to_string(path)
        .expect("the validator's expectation file")
        .lines()
        .filter_map(|l| l.split('#').next())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("package/{l}"))
        .collect()
}
