//! The manifest of a finished Bulk Data export, the local name of each of its files,
//! and the count of a file's resources.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::import::{ERROR_FOLDER, MANIFEST, is_type_name};

/// The parts of a Bulk Data manifest the client uses; the file keeps all of it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub transaction_time: Option<String>,
    #[serde(default)]
    pub requires_access_token: bool,
    pub output: Vec<Item>,
    #[serde(default)]
    pub error: Vec<Item>,
    /// Bundles of deleted resources (Bulk Data 2.0); not downloaded.
    #[serde(default)]
    pub deleted: Vec<Item>,
}

/// One file of the manifest.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Item {
    #[serde(rename = "type")]
    pub res_type: String,
    pub url: String,
    pub count: Option<u64>,
}

impl Manifest {
    /// Reads the body of the status URL's 200 answer.
    pub fn parse(body: &[u8]) -> Result<Self> {
        let manifest: Self = serde_json::from_slice(body)
            .context("the export's manifest (the status URL's 200 answer) is not valid")?;
        for item in manifest.output.iter().chain(&manifest.error) {
            if !is_type_name(&item.res_type) {
                bail!(
                    "the manifest names a file of type {:?}, which is not a resource type",
                    item.res_type
                );
            }
        }
        Ok(manifest)
    }
}

/// A file to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub item: Item,
    /// Relative to the output folder.
    pub name: PathBuf,
    /// An error file (OperationOutcomes), not data.
    pub error: bool,
}

/// Where each file goes: `<Type>-<n>.ndjson` for the output, numbered from 1 per type
/// in manifest order, and `error/<Type>-<n>.ndjson` for the error files. `ember import`
/// loads the folder as it is: it leaves out `manifest.json` and `error/`.
pub fn plan(manifest: &Manifest) -> Vec<Download> {
    let mut out = Vec::new();
    for (items, error) in [(&manifest.output, false), (&manifest.error, true)] {
        let mut numbers: std::collections::HashMap<&str, u64> = Default::default();
        for item in items {
            let n = numbers.entry(item.res_type.as_str()).or_default();
            *n += 1;
            let file = format!("{}-{n}.ndjson", item.res_type);
            let name = if error {
                PathBuf::from(ERROR_FOLDER).join(file)
            } else {
                PathBuf::from(file)
            };
            out.push(Download {
                item: item.clone(),
                name,
                error,
            });
        }
    }
    out
}

/// Where the manifest is written in the output folder.
pub fn manifest_path() -> PathBuf {
    PathBuf::from(MANIFEST)
}

/// Counts the lines of NDJSON that hold something, as the bytes stream past; a last
/// line without its newline counts too.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineCounter {
    lines: u64,
    in_line: bool,
}

impl LineCounter {
    pub fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'\n' => {
                    if self.in_line {
                        self.lines += 1;
                    }
                    self.in_line = false;
                }
                b' ' | b'\t' | b'\r' => {}
                _ => self.in_line = true,
            }
        }
    }

    pub fn lines(&self) -> u64 {
        self.lines + u64::from(self.in_line)
    }
}
