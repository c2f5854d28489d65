//! Configuration: every setting is a flag and an `EMBER_*` environment variable.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of `ember serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "EMBER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// `postgres://user@host/db` for production, or `sqlite://path` for the embedded store.
    #[arg(
        long,
        env = "EMBER_DATABASE_URL",
        default_value = "sqlite://ember-data/ember.db",
        hide_env_values = true
    )]
    pub database_url: String,

    /// Maximum database connections of this instance (SQLite: reader connections).
    #[arg(long, env = "EMBER_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: usize,

    /// How long a request waits for a database connection, in milliseconds.
    #[arg(long, env = "EMBER_DB_ACQUIRE_TIMEOUT_MS", default_value_t = 5000)]
    pub db_acquire_timeout_ms: u64,

    /// Path prefix of the FHIR API.
    #[arg(long, env = "EMBER_BASE_PATH", default_value = "/fhir")]
    pub base_path: String,

    /// The public base URL of the FHIR API (e.g. `https://fhir.example.org/fhir`), used in
    /// every absolute URL Ember emits. Derived from the `Host` header when unset.
    #[arg(long, env = "EMBER_PUBLIC_BASE_URL")]
    pub public_base_url: Option<String>,

    /// Largest accepted request body, in bytes.
    #[arg(long, env = "EMBER_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deepest accepted JSON nesting.
    #[arg(long, env = "EMBER_MAX_JSON_DEPTH", default_value_t = 64)]
    pub max_json_depth: usize,

    /// Most entries in a batch or transaction Bundle.
    #[arg(long, env = "EMBER_MAX_BUNDLE_ENTRIES", default_value_t = 10_000)]
    pub max_bundle_entries: usize,

    /// Largest page size a client may ask for with `_count`.
    #[arg(long, env = "EMBER_MAX_COUNT", default_value_t = 1000)]
    pub max_count: u32,

    /// Longest time one request may take, in milliseconds.
    #[arg(long, env = "EMBER_REQUEST_TIMEOUT_MS", default_value_t = 30_000)]
    pub request_timeout_ms: u64,

    /// After SIGTERM: how long to keep serving while load balancers notice, in milliseconds.
    #[arg(long, env = "EMBER_SHUTDOWN_DELAY_MS", default_value_t = 2000)]
    pub shutdown_delay_ms: u64,

    /// After SIGTERM: the most time until exit, in milliseconds (kept under 10 s).
    #[arg(long, env = "EMBER_SHUTDOWN_GRACE_MS", default_value_t = 8000)]
    pub shutdown_grace_ms: u64,

    /// Name of this deployment, reported in logs.
    #[arg(long, env = "EMBER_APP_NAME", default_value = "ember")]
    pub app_name: String,

    /// Log filter (`info`, `debug`, `ember_api=debug`, …).
    #[arg(long, env = "EMBER_LOG", default_value = "info")]
    pub log: String,
}

impl ServeConfig {
    pub fn db_acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.db_acquire_timeout_ms)
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn shutdown_delay(&self) -> Duration {
        Duration::from_millis(self.shutdown_delay_ms)
    }

    /// The shutdown grace, capped at 9.5 s so the platform's 10 s kill never comes first.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms.min(9500))
    }

    /// The base path normalized to `""` or `/segment…` without a trailing slash.
    pub fn normalized_base_path(&self) -> String {
        let trimmed = self.base_path.trim_matches('/');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("/{trimmed}")
        }
    }
}
