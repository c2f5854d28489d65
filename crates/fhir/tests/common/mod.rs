//! The official R4 examples package, shared by the tests that read every example.

#![allow(dead_code)] // each test binary uses part of it

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// `$EMBER_FHIR_PACKAGE`, or `../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz` next to the
/// workspace.
pub fn package_path() -> PathBuf {
    match std::env::var_os("EMBER_FHIR_PACKAGE") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fhir/hl7.fhir.r4.examples-4.0.1.tgz"),
    }
}

/// Every resource of the package (not `package.json`, not `.index.json`), by file name,
/// sorted. A missing package fails the test: these tests never skip.
pub fn examples() -> Vec<(String, Value)> {
    let mut out = package_files(|name| {
        name.ends_with(".json") && name != "package.json" && name != ".index.json"
    });
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The JSON files of the package whose file names `keep` accepts, in package order.
pub fn package_files(keep: impl Fn(&str) -> bool) -> Vec<(String, Value)> {
    let path = package_path();
    assert!(path.exists(), "{} is missing", path.display());
    let file = std::fs::File::open(&path).expect("open package");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut out = Vec::new();
    for entry in archive.entries().expect("read package") {
        let mut entry = entry.expect("package entry");
        let name = entry
            .path()
            .ok()
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
        let Some(name) = name.filter(|n| keep(n)) else {
            continue;
        };
        let mut text = String::new();
        entry.read_to_string(&mut text).expect("read example");
        let value: Value = serde_json::from_str(&text).expect("example JSON");
        out.push((name, value));
    }
    out
}
