//! The progress of `ember import` on stderr: a bar when stderr is a terminal, else a
//! plain line every few seconds.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between two plain progress lines.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);
const BAR_EVERY: Duration = Duration::from_millis(200);

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

/// `1h02m`, `3m05s`, `12s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
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

fn percent(s: &Snapshot, total_bytes: u64) -> u64 {
    (s.bytes * 100).checked_div(total_bytes).unwrap_or(100)
}

/// Draws the progress until [`Reporter::finish`].
pub struct Reporter {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Reporter {
    /// Starts drawing: a bar when `terminal`, else a line every [`PLAIN_EVERY`].
    pub fn start(counters: Arc<Counters>, total_bytes: u64, terminal: bool) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(total_bytes.max(1)),
                ProgressDrawTarget::stderr(),
            );
            if let Ok(style) =
                ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {percent:>3}%  {msg}")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        let every = if terminal { BAR_EVERY } else { PLAIN_EVERY };
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                let done = tokio::select! {
                    _ = ticks.tick() => false,
                    _ = stopped.changed() => true,
                };
                let s = counters.snapshot();
                let line = status_line(&s, total_bytes, started.elapsed());
                match &bar {
                    Some(bar) => {
                        bar.set_position(s.bytes.min(total_bytes.max(1)));
                        bar.set_message(line);
                        if done {
                            bar.finish_and_clear();
                        }
                    }
                    None if !done => eprintln!("import: {:>3}%  {line}", percent(&s, total_bytes)),
                    None => {}
                }
                if done {
                    break;
                }
            }
        });
        Self { stop, task }
    }

    /// Stops drawing (and clears the bar).
    pub async fn finish(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}
