//! Progress on stderr for the commands that move data (`ember import`, `ember export`):
//! a bar (or a spinner, when the total is unknown) when stderr is a terminal, else a
//! plain line every few seconds.

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Seconds between two plain progress lines.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);
const BAR_EVERY: Duration = Duration::from_millis(200);

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

/// `12.3 MiB`.
pub fn format_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// A plain progress line: `label:  42%  status` (no percent without a total).
pub fn plain_line(label: &str, position: u64, total: Option<u64>, status: &str) -> String {
    match total {
        Some(total) => {
            let percent = (position * 100).checked_div(total).unwrap_or(100);
            format!("{label}: {percent:>3}%  {status}")
        }
        None => format!("{label}: {status}"),
    }
}

/// Draws the progress until [`Reporter::finish`] (or until dropped).
pub struct Reporter {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    bar: Option<ProgressBar>,
}

impl Reporter {
    /// Starts drawing: a bar over `total` (a spinner when `None`) when `terminal`, else a
    /// line every [`PLAIN_EVERY`]. `status` answers, for the time since the start, the
    /// position towards `total` and the text to show.
    pub fn start<F>(label: &'static str, total: Option<u64>, terminal: bool, status: F) -> Self
    where
        F: Fn(Duration) -> (u64, String) + Send + 'static,
    {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let started = Instant::now();
        let bar = terminal.then(|| {
            let (bar, template) = match total {
                Some(total) => (
                    ProgressBar::with_draw_target(Some(total.max(1)), ProgressDrawTarget::stderr()),
                    "{elapsed_precise} [{wide_bar}] {percent:>3}%  {msg}",
                ),
                None => (
                    ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                    "{elapsed_precise} {spinner}  {msg}",
                ),
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        let every = if terminal { BAR_EVERY } else { PLAIN_EVERY };
        let drawn = bar.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                let done = tokio::select! {
                    _ = ticks.tick() => false,
                    _ = stopped.changed() => true,
                };
                let (position, line) = status(started.elapsed());
                match &drawn {
                    Some(bar) => {
                        match total {
                            Some(total) => bar.set_position(position.min(total.max(1))),
                            None => bar.tick(),
                        }
                        bar.set_message(line);
                        if done {
                            bar.finish_and_clear();
                        }
                    }
                    None if !done => eprintln!("{}", plain_line(label, position, total, &line)),
                    None => {}
                }
                if done {
                    break;
                }
            }
        });
        Self { stop, task, bar }
    }

    /// Stops drawing (and clears the bar).
    pub async fn finish(mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(bar) = &self.bar {
            if !bar.is_finished() {
                bar.finish_and_clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_sizes_and_plain_lines() {
        assert_eq!(format_duration(Duration::from_secs(12)), "12s");
        assert_eq!(format_duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(format_duration(Duration::from_secs(3720)), "1h02m");
        assert_eq!(format_mib(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(plain_line("import", 50, Some(200), "x"), "import:  25%  x");
        assert_eq!(plain_line("import", 0, Some(0), "x"), "import: 100%  x");
        assert_eq!(plain_line("export", 7, None, "waiting"), "export: waiting");
    }
}
