//! Logging: JSON lines on stdout.

use tracing_subscriber::EnvFilter;

/// Installs the global JSON logger with the given filter (`info`, `debug`, …).
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(std::io::stdout)
        .try_init();
}
