//! Platform concerns every other layer uses: configuration, logging, the instance
//! lifecycle (readiness, draining) and shutdown signals.

pub mod cache;
pub mod config;
pub mod http_client;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod otlp;
pub mod public_url;
pub mod shutdown;
pub mod trace;

pub use config::ServeConfig;
pub use lifecycle::Lifecycle;
