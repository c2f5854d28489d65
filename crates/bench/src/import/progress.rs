//! The progress of `ember import` on stderr: a bar when stderr is a terminal, else a
//! plain line every few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use crate::progress::{Reporter, format_duration};

/// What the run has done so far, shared with the reporter.
#[derive(Debug, Default)]
pub struct Counters {
    pub imported: AtomicU64,
    pub failed: AtomicU64,
    pub skipped: AtomicU64,
    /// Input bytes done (sent, skipped or found invalid).
    pub bytes: AtomicU64,
    /// Of which skipped as done by the checkpoint.
    pub skipped_bytes: AtomicU64,
}

/// A copy of [`Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub imported: u64,
    pub failed: u64,
    pub skipped: u64,
    pub bytes: u64,
    pub skipped_bytes: u64,
}

impl Counters {
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            imported: self.imported.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            skipped_bytes: self.skipped_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Time left, from the rate of the bytes sent so far (skipped bytes cost nothing);
/// `None` before anything was sent.
pub fn eta(s: &Snapshot, total_bytes: u64, elapsed: Duration) -> Option<Duration> {
    let worked = s.bytes.saturating_sub(s.skipped_bytes);
    if worked == 0 {
        return None;
    }
    let left = total_bytes.saturating_sub(s.bytes) as f64;
    Some(Duration::from_secs_f64(
        left * elapsed.as_secs_f64() / worked as f64,
    ))
}

/// `1234 imported, 2 failed, 456/s, ETA 1m05s` (and the skipped ones, if any).
pub fn status_line(s: &Snapshot, total_bytes: u64, elapsed: Duration) -> String {
    let rate = s.imported as f64 / elapsed.as_secs_f64().max(1e-3);
    let eta = eta(s, total_bytes, elapsed).map_or_else(|| "?".to_owned(), format_duration);
    let mut line = format!(
        "{} imported, {} failed, {rate:.0}/s, ETA {eta}",
        s.imported, s.failed
    );
    if s.skipped > 0 {
        line.push_str(&format!(", {} skipped (done before)", s.skipped));
    }
    line
}

/// Starts drawing the progress of a run over `total_bytes` of input.
pub fn start(counters: Arc<Counters>, total_bytes: u64, terminal: bool) -> Reporter {
    Reporter::start("import", Some(total_bytes), terminal, move |elapsed| {
        let s = counters.snapshot();
        (s.bytes, status_line(&s, total_bytes, elapsed))
    })
}
