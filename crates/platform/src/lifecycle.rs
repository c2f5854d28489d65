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
}
