//! The official FHIR R4 definitions package: finding it, verifying it, and loading the
//! conformance resources the generators need into memory (once per run).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The npm spec of the package.
pub const PACKAGE_SPEC: &str = "hl7.fhir.r4.examples@4.0.1";
/// The package's file name, as `npm pack` writes it.
pub const PACKAGE_FILE: &str = "hl7.fhir.r4.examples-4.0.1.tgz";
/// sha1 of the official tgz (npm's `dist.shasum`).
pub const PACKAGE_SHA1: &str = "537ea7db3f3c7b3575fe2eaa7808bad21261cca3";
/// Environment variable naming the package file.
pub const PACKAGE_ENV: &str = "EMBER_FHIR_PACKAGE";

/// The resource types loaded from the package. Members are named `package/<Type>-<id>.json`;
/// only files of these types are parsed (the package holds ~190 MB of JSON, mostly examples).
/// Add a type here when an emitter needs it.
pub const LOADED_TYPES: &[&str] = &[
    "StructureDefinition",
    "SearchParameter",
    "CompartmentDefinition",
    "ValueSet",
    "CodeSystem",
];

/// Finds the package file. Order: `explicit`, `$EMBER_FHIR_PACKAGE`,
/// `<root>/../shared/fhir/<file>`, `$HOME/.cache/ember/<file>` (fetched there with
/// `npm pack` if absent). The returned file has not been verified yet; [`Defs::load`] does.
pub fn locate_package(explicit: Option<&Path>, root: &Path) -> Result<PathBuf> {
    if let Some(path) = explicit {
        return existing(path, "--package");
    }
    if let Some(path) = std::env::var_os(PACKAGE_ENV).filter(|v| !v.is_empty()) {
        return existing(Path::new(&path), &format!("${PACKAGE_ENV}"));
    }
    let shared = root
        .join("..")
        .join("shared")
        .join("fhir")
        .join(PACKAGE_FILE);
    if shared.is_file() {
        return Ok(shared);
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .with_context(|| {
            format!(
                "FHIR package not found at {} and $HOME is not set for the cache; \
                 pass --package PATH or set ${PACKAGE_ENV}",
                shared.display()
            )
        })?;
    let cache_dir = PathBuf::from(home).join(".cache").join("ember");
    let cached = cache_dir.join(PACKAGE_FILE);
    if cached.is_file() {
        return Ok(cached);
    }
    fetch_with_npm(&cache_dir)
}

fn existing(path: &Path, from: &str) -> Result<PathBuf> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        bail!(
            "FHIR package {} (from {from}) does not exist",
            path.display()
        )
    }
}

/// Runs `npm pack <spec>` in a scratch folder inside `cache_dir`, verifies the download and
/// moves it into place, so an interrupted or bad download never poisons the cache.
fn fetch_with_npm(cache_dir: &Path) -> Result<PathBuf> {
    let target = cache_dir.join(PACKAGE_FILE);
    let scratch = cache_dir.join(format!(".fetch-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    eprintln!(
        "xtask: fetching {PACKAGE_SPEC} with `npm pack` into {}",
        cache_dir.display()
    );
    let result = (|| -> Result<()> {
        let status = Command::new("npm")
            .args(["pack", PACKAGE_SPEC, "--loglevel=warn"])
            .current_dir(&scratch)
            .status()
            .context("running `npm pack` (is npm installed?)")?;
        if !status.success() {
            bail!("`npm pack {PACKAGE_SPEC}` failed ({status})");
        }
        let downloaded = scratch.join(PACKAGE_FILE);
        let bytes = std::fs::read(&downloaded)
            .with_context(|| format!("`npm pack` did not produce {}", downloaded.display()))?;
        verify_sha1(&bytes, PACKAGE_SHA1, &downloaded)?;
        std::fs::rename(&downloaded, &target)
            .with_context(|| format!("moving the package to {}", target.display()))?;
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| target)
}

/// Lowercase hex sha1 of `bytes`.
pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

/// Fails unless `bytes` (read from `path`) have the sha1 `expected`.
pub fn verify_sha1(bytes: &[u8], expected: &str, path: &Path) -> Result<()> {
    let actual = sha1_hex(bytes);
    if actual.eq_ignore_ascii_case(expected) {
        Ok(())
    } else {
        bail!(
            "{}: sha1 mismatch: expected {expected}, got {actual}. This is not the official \
             {PACKAGE_SPEC} package; delete it if it is a corrupt download",
            path.display()
        )
    }
}

/// The conformance resources of the package, in memory.
pub struct Defs {
    /// resourceType -> member file name -> resource. BTreeMaps keep iteration deterministic.
    by_type: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Defs {
    /// Reads the package at `path`, verifies its sha1 and loads it.
    pub fn load(path: &Path) -> Result<Defs> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        verify_sha1(&bytes, PACKAGE_SHA1, path)?;
        Defs::from_tgz(&bytes).with_context(|| format!("loading {}", path.display()))
    }

    /// Loads the [`LOADED_TYPES`] resources from a package tgz (no sha1 check).
    pub fn from_tgz(tgz: &[u8]) -> Result<Defs> {
        let mut by_type: BTreeMap<String, BTreeMap<String, Value>> = LOADED_TYPES
            .iter()
            .map(|ty| (ty.to_string(), BTreeMap::new()))
            .collect();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
        for entry in archive.entries().context("reading the tar archive")? {
            let mut entry = entry.context("reading a tar entry")?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()
                .context("reading a tar entry's path")?
                .into_owned();
            let Some(file_name) = top_level_member(&path) else {
                continue;
            };
            let Some(ty) = LOADED_TYPES.iter().find(|ty| {
                file_name
                    .strip_prefix(**ty)
                    .is_some_and(|rest| rest.starts_with('-'))
            }) else {
                continue;
            };
            let mut json = Vec::with_capacity(entry.size() as usize);
            entry
                .read_to_end(&mut json)
                .with_context(|| format!("reading {}", path.display()))?;
            let value: Value = serde_json::from_slice(&json)
                .with_context(|| format!("parsing {}", path.display()))?;
            if value.get("resourceType").and_then(Value::as_str) != Some(*ty) {
                continue;
            }
            by_type
                .get_mut(*ty)
                .expect("every loaded type has a map")
                .insert(file_name, value);
        }
        Ok(Defs { by_type })
    }

    /// The loaded resources of type `ty` (one of [`LOADED_TYPES`]), ordered by file name.
    pub fn resources<'a>(&'a self, ty: &str) -> impl Iterator<Item = &'a Value> + 'a {
        assert!(
            LOADED_TYPES.contains(&ty),
            "{ty} is not loaded; add it to defs::LOADED_TYPES"
        );
        self.by_type.get(ty).into_iter().flat_map(|m| m.values())
    }

    pub fn structure_definitions(&self) -> impl Iterator<Item = &Value> {
        self.resources("StructureDefinition")
    }
}

/// `package/<name>.json` -> `<name>.json`; anything else (sub-folders, other files) -> None.
fn top_level_member(path: &Path) -> Option<String> {
    let mut components = path
        .components()
        .filter(|c| !matches!(c, Component::CurDir));
    let (Some(Component::Normal(dir)), Some(Component::Normal(file)), None) =
        (components.next(), components.next(), components.next())
    else {
        return None;
    };
    let file = file.to_str()?;
    (dir == "package" && file.ends_with(".json")).then(|| file.to_string())
}

/// Builds small package tgz files in memory for tests.
#[cfg(test)]
pub mod testing {
    use flate2::{Compression, write::GzEncoder};

    pub fn tgz(members: &[(&str, &str)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
        for (path, contents) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, contents.as_bytes())
                .unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_known_vectors() {
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn verify_sha1_accepts_match_and_rejects_mismatch() {
        let path = Path::new("pkg.tgz");
        verify_sha1(b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d", path).unwrap();
        verify_sha1(b"abc", "A9993E364706816ABA3E25717850C26C9CD0D89D", path).unwrap();
        let err = verify_sha1(b"abd", "a9993e364706816aba3e25717850c26c9cd0d89d", path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("pkg.tgz: sha1 mismatch"), "{err}");
        assert!(err.contains("expected a9993e36"), "{err}");
    }

    #[test]
    fn load_only_top_level_conformance_members() {
        let tgz = testing::tgz(&[
            (
                "package/StructureDefinition-Patient.json",
                r#"{"resourceType":"StructureDefinition","id":"Patient"}"#,
            ),
            (
                "package/SearchParameter-Patient-name.json",
                r#"{"resourceType":"SearchParameter","id":"Patient-name"}"#,
            ),
            // An example, not a conformance resource: never parsed (it is not even JSON).
            ("package/Patient-example.json", "not json"),
            // Sub-folders and non-JSON members are ignored.
            (
                "package/other/StructureDefinition-X.json",
                r#"{"resourceType":"StructureDefinition","id":"X"}"#,
            ),
            ("package/StructureDefinition-Y.xml", "<x/>"),
            // Named like a StructureDefinition but is not one.
            (
                "package/StructureDefinition-Z.json",
                r#"{"resourceType":"Basic","id":"Z"}"#,
            ),
        ]);
        let defs = Defs::from_tgz(&tgz).unwrap();
        let ids: Vec<_> = defs
            .structure_definitions()
            .map(|sd| sd["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["Patient"]);
        assert_eq!(defs.resources("SearchParameter").count(), 1);
    }
}
