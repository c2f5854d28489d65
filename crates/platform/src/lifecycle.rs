//! The instance lifecycle: whether it is ready for traffic, and whether it is draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared readiness state of this instance. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    inner: Arc<Flags>,
}

#[derive(Debug, Default)]
struct Flags {
    started: AtomicBool,
    draining: AtomicBool,
    database_ok: AtomicBool,
}

impl Lifecycle {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start-up work (migrations) is done.
    pub fn mark_started(&self) {
        self.inner.started.store(true, Ordering::SeqCst);
    }

    /// Shutdown has begun: stop taking new traffic.
    pub fn mark_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_started(&self) -> bool {
        self.inner.started.load(Ordering::SeqCst)
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Records the latest database check (see [`Lifecycle::watch_database`]).
    pub fn set_database_ok(&self, ok: bool) {
        let was = self.inner.database_ok.swap(ok, Ordering::SeqCst);
        match (was, ok) {
            (true, false) => tracing::error!("the database stopped answering; not ready"),
            (false, true) if self.is_started() => {
                tracing::info!("the database answers again; ready")
            }
            _ => {}
        }
    }

    pub fn database_ok(&self) -> bool {
        self.inner.database_ok.load(Ordering::SeqCst)
    }

    /// Why this instance should not get traffic now, or `None` when it is ready.
    /// Makes no database call: it reads the cached check.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        if !self.is_started() {
            Some("starting")
        } else if self.is_draining() {
            Some("draining")
        } else if !self.database_ok() {
            Some("database unavailable")
        } else {
            None
        }
    }

    /// Checks the database every `interval` with `check` (which should time out by
    /// itself) and records the result, until the process ends.
    pub fn watch_database<F, Fut>(
        &self,
        interval: std::time::Duration,
        check: F,
    ) -> tokio::task::JoinHandle<()>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = bool> + Send,
    {
        let lifecycle = self.clone();
        tokio::spawn(async move {
            loop {
                lifecycle.set_database_ok(check().await);
                tokio::time::sleep(interval).await;
            }
        })
    }
}
