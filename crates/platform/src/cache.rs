//! In-memory caches that stay correct across instances (P2): every cache is bounded,
//! entries expire after a TTL, and an invalidation published on any instance reaches
//! the caches of every instance through a bus (the store's publish/subscribe).
//!
//! A bus message is `"<cache> <key>"` (one entry), `"<cache>"` (the whole cache) or
//! `"*"` (every cache: sent after a bus reconnect, when messages may have been lost).

use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metrics::Metrics;

/// Something the hub can invalidate.
pub trait Invalidate: Send + Sync {
    /// The name bus messages use for this cache.
    fn name(&self) -> &'static str;

    /// Drops one entry, or every entry when `key` is `None`.
    fn invalidate(&self, key: Option<&str>);
}

/// A bounded cache with a time-to-live, named for metrics and bus messages.
pub struct TtlCache<V: Clone + Send + Sync + 'static> {
    name: &'static str,
    inner: moka::sync::Cache<String, V>,
    metrics: Option<Arc<Metrics>>,
}

impl<V: Clone + Send + Sync + 'static> TtlCache<V> {
    pub fn new(
        name: &'static str,
        capacity: u64,
        ttl: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            name,
            inner: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            metrics,
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let found = self.inner.get(key);
        if let Some(m) = &self.metrics {
            m.cache_lookup(self.name, found.is_some());
        }
        found
    }

    pub fn insert(&self, key: impl Into<String>, value: V) {
        self.inner.insert(key.into(), value);
    }
}

impl<V: Clone + Send + Sync + 'static> Invalidate for TtlCache<V> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn invalidate(&self, key: Option<&str>) {
        match key {
            Some(k) => self.inner.invalidate(k),
            None => self.inner.invalidate_all(),
        }
    }
}

/// Routes bus messages to the caches of this instance.
#[derive(Default, Clone)]
pub struct CacheHub {
    caches: Arc<Mutex<Vec<Arc<dyn Invalidate>>>>,
}

impl CacheHub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `cache` for invalidation messages addressed to its name.
    pub fn register(&self, cache: Arc<dyn Invalidate>) {
        if let Ok(mut caches) = self.caches.lock() {
            caches.push(cache);
        }
    }

    /// Handles one bus message (see the module documentation).
    pub fn on_message(&self, message: &str) {
        let Ok(caches) = self.caches.lock() else {
            return;
        };
        if message == "*" {
            caches.iter().for_each(|c| c.invalidate(None));
            return;
        }
        let (name, key) = match message.split_once(' ') {
            Some((n, k)) => (n, Some(k)),
            None => (message, None),
        };
        caches
            .iter()
            .filter(|c| c.name() == name)
            .for_each(|c| c.invalidate(key));
    }

    /// The bus message that invalidates `key` (or all) of cache `name` everywhere.
    pub fn message<K: AsRef<str> + Hash>(name: &str, key: Option<K>) -> String {
        match key {
            Some(k) => format!("{name} {}", k.as_ref()),
            None => name.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_invalidations_and_expires() {
        let metrics = Arc::new(Metrics::new());
        let a = Arc::new(TtlCache::<u32>::new(
            "a",
            100,
            Duration::from_secs(60),
            Some(metrics.clone()),
        ));
        let b = Arc::new(TtlCache::<u32>::new(
            "b",
            100,
            Duration::from_millis(50),
            None,
        ));
        let hub = CacheHub::new();
        hub.register(a.clone());
        hub.register(b.clone());
        a.insert("x", 1);
        a.insert("y", 2);
        b.insert("x", 3);
        hub.on_message(&CacheHub::message("a", Some("x")));
        assert_eq!(a.get("x"), None);
        assert_eq!(a.get("y"), Some(2));
        assert_eq!(b.get("x"), Some(3), "other caches keep their entries");
        hub.on_message("a");
        assert_eq!(a.get("y"), None);
        a.insert("z", 4);
        hub.on_message("*");
        assert_eq!(a.get("z"), None);
        b.insert("t", 5);
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(b.get("t"), None, "the TTL is the backstop");
        let text = metrics.render();
        assert!(
            text.contains(r#"ember_cache_lookups_total{cache="a",result="miss"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ember_cache_lookups_total{cache="a",result="hit"} 1"#),
            "{text}"
        );
    }
}
