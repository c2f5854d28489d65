//! Server memory sampling from `/proc/PID/status`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};

/// Value in KiB of a `Key:   1234 kB` line of `/proc/PID/status`.
pub fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let value: u64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(value),
            Some("mB") | Some("MB") => Some(value * 1024),
            _ => None,
        }
    })
}

fn status_path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/status"))
}

pub fn read_status(pid: u32) -> Result<String> {
    std::fs::read_to_string(status_path(pid)).with_context(|| {
        format!(
            "--pid {pid}: cannot read /proc/{pid}/status (is the process running on this host?)"
        )
    })
}

/// Samples VmRSS every 200 ms in a background task.
pub struct RssSampler {
    pid: u32,
    peak_kib: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Result<Self> {
        let first = read_status(pid)?;
        let peak_kib = Arc::new(AtomicU64::new(
            parse_status_kib(&first, "VmRSS").unwrap_or(0),
        ));
        let peak = peak_kib.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let Ok(status) = std::fs::read_to_string(status_path(pid)) else {
                    break;
                };
                if let Some(kib) = parse_status_kib(&status, "VmRSS") {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
            }
        });
        Ok(Self {
            pid,
            peak_kib,
            task,
        })
    }

    /// Stops sampling; returns (peak sampled VmRSS, VmHWM) in KiB.
    pub fn finish(self) -> (u64, Option<u64>) {
        self.task.abort();
        let hwm = std::fs::read_to_string(status_path(self.pid))
            .ok()
            .and_then(|s| parse_status_kib(&s, "VmHWM"));
        (self.peak_kib.load(Ordering::Relaxed), hwm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let s = "Name:\tember\nVmHWM:\t  204800 kB\nVmRSS:\t   102400 kB\nThreads:\t8\n";
        assert_eq!(parse_status_kib(s, "VmRSS"), Some(102_400));
        assert_eq!(parse_status_kib(s, "VmHWM"), Some(204_800));
        assert_eq!(parse_status_kib(s, "VmSwap"), None);
        assert_eq!(parse_status_kib("VmRSSX: 5 kB", "VmRSS"), None);
    }
}
