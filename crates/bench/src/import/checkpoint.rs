//! The checkpoint of `ember import`: per input file, how far it is done and which of
//! its lines (or Bundle entries) were rejected, as JSON, replaced atomically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// What the checkpoint file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Progress per input file, by its canonical path.
    pub files: BTreeMap<String, FileProgress>,
}

/// How far one input file is done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// NDJSON: lines 1 to `done` were sent (or found invalid). A Bundle file: its
    /// `done` entries were posted; 0 while it was not.
    pub done: u64,
    /// Lines (NDJSON, from 1) or entry indexes (Bundle, from 0) that were rejected and
    /// are sent again by the next run, written as ranges: `"4,7,10-12"`.
    #[serde(
        default,
        skip_serializing_if = "BTreeSet::is_empty",
        serialize_with = "ser_ranges",
        deserialize_with = "de_ranges"
    )]
    pub rejected: BTreeSet<u64>,
}

impl FileProgress {
    /// Whether NDJSON line `line` (from 1) is done and not to be sent again.
    pub fn skips_line(&self, line: u64) -> bool {
        line <= self.done && !self.rejected.contains(&line)
    }

    /// Whether a Bundle file was posted and none of its entries was rejected.
    pub fn bundle_complete(&self) -> bool {
        self.done > 0 && self.rejected.is_empty()
    }

    /// The entry indexes of a Bundle with `len` entries to post: all of them when it
    /// was not posted yet, else the rejected ones.
    pub fn bundle_entries(&self, len: u64) -> Vec<u64> {
        if self.done == 0 {
            (0..len).collect()
        } else {
            self.rejected.range(..len).copied().collect()
        }
    }
}

impl Checkpoint {
    /// Reads `path`; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("reading the checkpoint {}", path.display()));
            }
        };
        serde_json::from_str(&text).map(Some).with_context(|| {
            format!(
                "the checkpoint {} is not one of ember import (use --restart to start over, or another --checkpoint)",
                path.display()
            )
        })
    }

    /// Writes to `path` through a temporary file renamed over it, so that a reader
    /// (or the next run after a crash) sees the old or the new checkpoint, never a torn one.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = temp_path(path);
        let text = serde_json::to_string_pretty(self).context("serializing the checkpoint")?;
        std::fs::write(&tmp, text + "\n")
            .with_context(|| format!("writing the checkpoint {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("replacing the checkpoint {}", path.display()))
    }
}

/// `<path>.tmp`, beside the checkpoint (a rename within one folder is atomic).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// `{1, 2, 3, 7}` as `"1-3,7"`.
pub fn format_ranges(set: &BTreeSet<u64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

/// The inverse of [`format_ranges`].
pub fn parse_ranges(s: &str) -> Result<BTreeSet<u64>> {
    let mut set = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u64, u64) = (
            a.trim().parse().with_context(|| format!("{part:?}"))?,
            b.trim().parse().with_context(|| format!("{part:?}"))?,
        );
        if b < a {
            bail!("{part:?} is an empty range");
        }
        set.extend(a..=b);
    }
    Ok(set)
}

fn ser_ranges<S: serde::Serializer>(set: &BTreeSet<u64>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ranges(set))
}

fn de_ranges<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<u64>, D::Error> {
    let s = String::deserialize(d)?;
    parse_ranges(&s).map_err(|e| serde::de::Error::custom(format!("rejected: {e:#}")))
}
