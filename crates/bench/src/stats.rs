//! Latency statistics for one phase.

use std::time::Duration;

use serde::Serialize;

/// Nearest-rank percentile of an ascending-sorted slice (`p` in 0..=100).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn us_to_ms(us: u64) -> f64 {
    round2(us as f64 / 1000.0)
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Result of one timed phase or baseline.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseStats {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub elapsed_secs: f64,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// True when the phase stopped before `--duration` (delete ran out of ids).
    pub ended_early: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

impl PhaseStats {
    /// Builds stats from recorded latencies (microseconds, any order).
    pub fn from_latencies(
        name: &str,
        mut latencies_us: Vec<u64>,
        errors: u64,
        elapsed: Duration,
        ended_early: bool,
        error_samples: Vec<String>,
    ) -> Self {
        latencies_us.sort_unstable();
        let requests = latencies_us.len() as u64;
        let secs = elapsed.as_secs_f64();
        let rps = if secs > 0.0 {
            requests as f64 / secs
        } else {
            0.0
        };
        Self {
            name: name.to_owned(),
            requests,
            errors,
            elapsed_secs: round2(secs),
            requests_per_sec: round2(rps),
            p50_ms: us_to_ms(percentile(&latencies_us, 50.0)),
            p90_ms: us_to_ms(percentile(&latencies_us, 90.0)),
            p99_ms: us_to_ms(percentile(&latencies_us, 99.0)),
            max_ms: us_to_ms(latencies_us.last().copied().unwrap_or(0)),
            ended_early,
            error_samples,
        }
    }
}

/// Keeps the first few error descriptions of a phase.
#[derive(Debug, Default)]
pub struct ErrorSamples {
    inner: std::sync::Mutex<Vec<String>>,
}

pub const MAX_ERROR_SAMPLES: usize = 5;

impl ErrorSamples {
    pub fn push(&self, msg: impl FnOnce() -> String) {
        // A poisoned lock only means another worker panicked; keep going.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if guard.len() < MAX_ERROR_SAMPLES {
            guard.push(truncate(&msg(), 200));
        }
    }

    pub fn take(&self) -> Vec<String> {
        match self.inner.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        }
    }
}

/// Truncates to at most `max` characters (not bytes), adding an ellipsis.
pub fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(max) {
        Some((idx, _)) => format!("{}...", &s[..idx]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.0), 7);
        let v = [10, 20, 30, 40];
        assert_eq!(percentile(&v, 50.0), 20);
        assert_eq!(percentile(&v, 51.0), 30);
    }

    #[test]
    fn stats_from_unsorted() {
        let lat = vec![3000, 1000, 2000, 4000, 5000, 1500, 2500, 3500, 4500, 10_000];
        let s = PhaseStats::from_latencies("x", lat, 1, Duration::from_secs(2), false, vec![]);
        assert_eq!(s.requests, 10);
        assert_eq!(s.requests_per_sec, 5.0);
        assert_eq!(s.p50_ms, 3.0);
        assert_eq!(s.p90_ms, 5.0);
        assert_eq!(s.p99_ms, 10.0);
        assert_eq!(s.max_ms, 10.0);
        assert_eq!(s.errors, 1);
    }

    #[test]
    fn truncation_is_char_safe() {
        assert_eq!(truncate("héllo", 2), "hé...");
        assert_eq!(truncate("abc", 5), "abc");
        let samples = ErrorSamples::default();
        for i in 0..10 {
            samples.push(|| format!("e{i}"));
        }
        assert_eq!(samples.take().len(), MAX_ERROR_SAMPLES);
    }
}
